//! `subscriptions.*`: the caller's memberships and read state.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/subscriptions.get", get(get_all))
        .route("/api/v1/subscriptions.getOne", get(get_one))
        .route("/api/v1/subscriptions.read", post(read))
        .route("/api/v1/subscriptions.unread", post(unread))
}

async fn get_all(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let (subs, removed) = s
        .core
        .subscriptions(&a.user, p.date("updatedSince")?)
        .await?;
    let removed: Vec<Value> = removed
        .iter()
        .map(|t| json!({"_id": t.id, "_deletedAt": t.deleted_at}))
        .collect();
    ok(json!({"update": subs, "remove": removed}))
}

async fn get_one(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    ok(json!({"subscription": s.core.subscription(&a.user, rid).await?}))
}

async fn read(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p
        .str("rid")
        .or_else(|| p.str("roomId"))
        .ok_or_else(|| ApiError::invalid_params("must have required property 'rid'"))?;
    s.core.mark_read(&a.user, rid).await?;
    ok(json!({}))
}

async fn unread(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let message_id = match (p.get("firstUnreadMessage"), p.str("roomId")) {
        (Some(m), _) => m.get("_id").and_then(Value::as_str).map(str::to_string),
        (None, Some(rid)) => {
            // Rocket.Chat marks the room's last message unread.
            let room = s
                .core
                .find_room(&apogee_core::rooms::RoomRef::Id(rid.to_string()))
                .await?;
            room.last_message
                .as_ref()
                .and_then(|m| m.get("_id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        _ => {
            return Err(ApiError::invalid_params(
                "must have required property 'firstUnreadMessage'",
            ));
        }
    };
    let message_id = message_id.ok_or_else(|| {
        ApiError(apogee_core::error::CoreError::bad(
            "error-no-message-for-unread",
            "No message found for unread",
        ))
    })?;
    s.core.mark_unread(&a.user, &message_id).await?;
    ok(json!({}))
}
