//! `chat.getDeletedMessages`, `chat.syncThreadsList`, `chat.syncThreadMessages` and
//! `chat.ignoreUser`.

use super::registry::{Routes, get};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use apogee_core::chat_sync::Delta;
use apogee_core::domain::Timestamp;
use apogee_core::error::CoreError;
use apogee_core::store::Tombstone;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/chat.getDeletedMessages", get(deleted))
        .route("/api/v1/chat.syncThreadsList", get(sync_threads))
        .route("/api/v1/chat.syncThreadMessages", get(sync_thread_messages))
        .route("/api/v1/chat.ignoreUser", get(ignore_user))
}

fn removed(t: &[Tombstone]) -> Vec<Value> {
    t.iter()
        .map(|t| json!({"_id": t.id, "_deletedAt": t.deleted_at}))
        .collect()
}

fn delta_json(d: &Delta) -> Value {
    json!({"update": d.update, "remove": removed(&d.remove)})
}

fn updated_since(p: &Params) -> Result<Timestamp, ApiError> {
    let raw = p.str("updatedSince").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-updatedSince-param-invalid",
            "The required param \"updatedSince\" is missing.",
        ))
    })?;
    Timestamp::parse(raw).ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-updatedSince-param-invalid",
            "The \"updatedSince\" query parameter must be a valid date.",
        ))
    })
}

async fn deleted(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p
        .str("roomId")
        .ok_or_else(|| ApiError::failure("The required \"roomId\" query param is missing."))?;
    let since = match p.str("since") {
        None => {
            return Err(ApiError::failure(
                "The required \"since\" query param is missing.",
            ));
        }
        Some(raw) => Timestamp::parse(raw).ok_or_else(|| {
            ApiError::failure("The \"since\" query parameter must be a valid date.")
        })?,
    };
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (items, total) = s.core.deleted_messages(&a.user, rid, since, page).await?;
    let messages: Vec<Value> = items.iter().map(|t| json!({"_id": t.id})).collect();
    ok(
        json!({"messages": messages, "count": messages.len(), "offset": page.offset, "total": total}),
    )
}

async fn sync_threads(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.str("rid").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-room-id-param-not-provided",
            "The required \"rid\" query param is missing.",
        ))
    })?;
    let since = updated_since(&p)?;
    let delta = s.core.sync_threads(&a.user, rid, since).await?;
    ok(json!({"threads": delta_json(&delta)}))
}

async fn sync_thread_messages(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let tmid = p.str("tmid").ok_or_else(|| {
        ApiError(CoreError::bad(
            "error-invalid-params",
            "The required \"tmid\" query param is missing.",
        ))
    })?;
    let since = updated_since(&p)?;
    let delta = s.core.sync_thread_messages(&a.user, tmid, since).await?;
    ok(json!({"messages": delta_json(&delta)}))
}

async fn ignore_user(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p
        .str("rid")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError(CoreError::bad(
                "error-room-id-param-not-provided",
                "The required \"rid\" param is missing.",
            ))
        })?;
    let user_id = p
        .str("userId")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            ApiError(CoreError::bad(
                "error-user-id-param-not-provided",
                "The required \"userId\" param is missing.",
            ))
        })?;
    // Rocket.Chat reads a string flag as true when it contains `true` or `1`.
    let ignore = match p.get("ignore") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.contains("true") || s.contains('1'),
        Some(_) => return Err(ApiError::invalid_params("must be string")),
    };
    s.core.ignore_user(&a.user, rid, user_id, ignore).await?;
    ok(json!({}))
}
