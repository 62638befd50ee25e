//! `custom-user-status.*`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/custom-user-status.list", get(list))
        .route("/api/v1/custom-user-status.create", post(create))
        .route("/api/v1/custom-user-status.update", post(update))
        .route("/api/v1/custom-user-status.delete", post(delete))
}

async fn list(State(s): State<AppState>, Auth(_a): Auth, p: Params) -> ApiResult {
    for key in p.0.keys() {
        if !["count", "offset", "sort", "name", "_id", "query"].contains(&key.as_str()) {
            return Err(ApiError::invalid_params(
                "must NOT have additional properties",
            ));
        }
    }
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (statuses, total) = s
        .core
        .custom_user_statuses(p.str("name"), p.str("_id"), page)
        .await?;
    ok(
        json!({"statuses": statuses, "count": statuses.len(), "offset": page.offset, "total": total}),
    )
}

/// A required string body field (Meteor `check` semantics).
fn field<'a>(p: &'a Params, key: &str) -> Result<&'a str, ApiError> {
    match p.get(key) {
        Some(Value::String(v)) => Ok(v),
        _ => Err(ApiError::invalid_params(format!(
            "Match error: Missing key '{key}'"
        ))),
    }
}

fn status_type(p: &Params) -> Result<Option<&str>, ApiError> {
    match p.get("statusType") {
        None => Ok(None),
        Some(Value::String(v)) => Ok(Some(v)),
        Some(_) => Err(ApiError::invalid_params(
            "Match error: Expected string, got statusType of another type",
        )),
    }
}

async fn create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let name = field(&p, "name")?;
    let status = s
        .core
        .save_custom_user_status(&a.user, None, name, status_type(&p)?)
        .await?;
    ok(json!({"customUserStatus": status}))
}

async fn update(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = field(&p, "_id")?;
    let name = field(&p, "name")?;
    let status = s
        .core
        .save_custom_user_status(&a.user, Some(id), name, status_type(&p)?)
        .await?;
    ok(json!({"customUserStatus": status}))
}

async fn delete(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let Some(id) = p.str("customUserStatusId") else {
        return Err(ApiError::failure(
            "The \"customUserStatusId\" params is required!",
        ));
    };
    s.core.delete_custom_user_status(&a.user, id).await?;
    ok(json!({}))
}
