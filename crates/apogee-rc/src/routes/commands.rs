//! `commands.*`: the built-in slash commands (list, get, run, preview).

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::commands::{CommandCall, CommandSort, list_commands};
use apogee_core::domain::commands;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/commands.list", get(list))
        .route("/api/v1/commands.get", get(get_one))
        .route("/api/v1/commands.run", post(run))
        .route("/api/v1/commands.preview", get(preview).post(run_preview))
}

/// Rocket.Chat answers an unknown command with a bare failure before anything else.
fn unknown(command: &str) -> Result<(), ApiError> {
    match commands::find(command) {
        Some(_) => Ok(()),
        None => Err(ApiError::failure(
            "The command provided does not exist (or is disabled).",
        )),
    }
}

/// `sort={"command":1}` (JSON, Rocket.Chat's `parseJsonQuery`).
fn sort(p: &Params) -> Result<Option<(CommandSort, bool)>, ApiError> {
    let Some(raw) = p.str("sort") else {
        return Ok(None);
    };
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(raw) else {
        return Err(ApiError::failure("Invalid sort parameter provided"));
    };
    Ok(m.iter().find_map(|(k, v)| {
        let field = match k.as_str() {
            "command" => CommandSort::Command,
            "description" => CommandSort::Description,
            "params" => CommandSort::Params,
            _ => return None,
        };
        Some((field, v.as_i64() == Some(-1)))
    }))
}

/// `query={"command":"join"}`: the one filter Rocket.Chat applies.
fn command_filter(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(raw) = p.str("query") else {
        return Ok(None);
    };
    let Ok(q) = serde_json::from_str::<Value>(raw) else {
        return Err(ApiError::failure("Invalid query parameter provided"));
    };
    Ok(q.get("command").and_then(Value::as_str).map(str::to_string))
}

async fn list(State(s): State<AppState>, Auth(_): Auth, p: Params) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let filter = command_filter(&p)?;
    let (found, total) = list_commands(filter.as_deref(), sort(&p)?, page);
    ok(json!({
        "commands": found,
        "appsLoaded": true,
        "offset": page.offset,
        "count": found.len(),
        "total": total,
    }))
}

async fn get_one(Auth(_): Auth, p: Params) -> ApiResult {
    let name = p.required("command")?;
    let cmd = commands::find(name).ok_or_else(|| {
        ApiError::failure(format!(
            "There is no command in the system by the name of: {name}"
        ))
    })?;
    ok(json!({"command": cmd}))
}

fn call(p: &Params) -> Result<CommandCall, ApiError> {
    let command = p.required("command")?.to_lowercase();
    let rid = p.required("roomId")?.to_string();
    unknown(&command)?;
    Ok(CommandCall {
        command,
        params: p.str("params").unwrap_or_default().to_string(),
        rid,
        tmid: p.str("tmid").map(str::to_string),
    })
}

async fn run(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core.run_command(&a.user, call(&p)?).await?;
    ok(json!({}))
}

/// Built-in commands have no previews: an empty one.
async fn preview(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    s.core.command_preview(&a.user, call(&p)?).await?;
    ok(json!({"preview": {"i18nTitle": "", "items": []}}))
}

/// Running a preview item: built-in commands have none, so nothing runs.
async fn run_preview(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let item = p.get("previewItem").and_then(Value::as_object);
    let complete = item.is_some_and(|i| {
        ["id", "type", "value"]
            .iter()
            .all(|k| i.get(*k).is_some_and(Value::is_string))
    });
    if !complete {
        return Err(ApiError::invalid_params(
            "must have required property 'previewItem'",
        ));
    }
    s.core.command_preview(&a.user, call(&p)?).await?;
    ok(json!({}))
}
