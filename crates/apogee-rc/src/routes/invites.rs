//! Invite links: `findOrCreateInvite`, `listInvites`, `removeInvite/:_id`,
//! `validateInviteToken`, `useInviteToken`.

use super::registry::{Routes, delete, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/findOrCreateInvite", post(find_or_create))
        .route("/api/v1/listInvites", get(list))
        .route("/api/v1/removeInvite/{id}", delete(remove))
        .route("/api/v1/validateInviteToken", post(validate))
        .route("/api/v1/useInviteToken", post(use_token))
        .route("/api/v1/sendInvitationEmail", post(send_invitation_email))
}

async fn send_invitation_email(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let emails: Vec<String> = match p.get("emails") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => {
            return Err(ApiError::invalid_params(
                "must have required property 'emails'",
            ));
        }
    };
    s.core.send_invitation_emails(&a.user, &emails).await?;
    ok(json!({}))
}

async fn find_or_create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.get("rid").and_then(Value::as_str).unwrap_or_default();
    let int = |k: &str| p.int(k).unwrap_or(-1);
    let invite = s
        .core
        .find_or_create_invite(&a.user, rid, int("days"), int("maxUses"))
        .await?;
    ok(json!(invite))
}

async fn list(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    let invites = s.core.list_invites(&a.user).await?;
    Ok(Json(json!(invites)).into_response())
}

async fn remove(State(s): State<AppState>, Auth(a): Auth, Path(id): Path<String>) -> ApiResult {
    s.core.remove_invite(&a.user, &id).await?;
    Ok(Json(json!(true)).into_response())
}

async fn validate(State(s): State<AppState>, p: Params) -> ApiResult {
    let token = p.get("token").and_then(Value::as_str).unwrap_or_default();
    let valid = s.core.validate_invite_token(token).await.is_ok();
    ok(json!({"valid": valid}))
}

async fn use_token(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let token = p.get("token").and_then(Value::as_str).unwrap_or_default();
    let joined = s.core.use_invite_token(&a.user, token).await?;
    let r = joined.room;
    let mut room = json!({"rid": r.id, "t": r.t});
    for (k, v) in [("prid", &r.prid), ("fname", &r.fname), ("name", &r.name)] {
        if let Some(v) = v {
            room[k] = json!(v);
        }
    }
    ok(json!({"room": room}))
}
