//! End-to-end encryption key relay: `e2e.*` and `users.resetE2EKey`. Handlers read parameters
//! and call one core use-case; core checks and decides (`apogee_core::e2e`).

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::{Params, query_values};
use apogee_core::e2e::{ResetTarget, SuggestedKey};
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/e2e.fetchMyKeys", get(fetch_my_keys))
        .route(
            "/api/v1/e2e.setUserPublicAndPrivateKeys",
            post(set_user_keys),
        )
        .route(
            "/api/v1/e2e.getUsersOfRoomWithoutKey",
            get(users_without_key),
        )
        .route("/api/v1/e2e.setRoomKeyID", post(set_room_key_id))
        .route("/api/v1/e2e.updateGroupKey", post(update_group_key))
        .route("/api/v1/e2e.acceptSuggestedGroupKey", post(accept))
        .route("/api/v1/e2e.rejectSuggestedGroupKey", post(reject))
        .route(
            "/api/v1/e2e.fetchUsersWaitingForGroupKey",
            get(users_waiting),
        )
        .route(
            "/api/v1/e2e.provideUsersSuggestedGroupKeys",
            post(provide_suggested),
        )
        .route("/api/v1/e2e.resetRoomKey", post(reset_room_key))
        .route("/api/v1/users.resetE2EKey", post(reset_user_key))
        // Encrypted participants (bots), Apogee's own (docs/E2EE.md): admin side…
        .route("/api/v1/e2e.bots.authorize", post(bot_authorize))
        .route("/api/v1/e2e.bots.revoke", post(bot_revoke))
        .route("/api/v1/e2e.bots.info", get(bot_info))
        // …and the bot's own.
        .route("/api/v1/e2e.bot.sendMessage", post(bot_send))
        .route("/api/v1/e2e.bot.encrypt", post(bot_encrypt))
        .route("/api/v1/e2e.bot.messages", get(bot_messages))
        .route("/api/v1/e2e.bot.decrypt", get(bot_decrypt))
        .route("/api/v1/e2e.bot.createRoomKey", post(bot_create_room_key))
        .route("/api/v1/e2e.bot.file", get(bot_file))
}

/// `roomIds` as an array of strings (or one string).
fn room_ids(p: &Params) -> Result<Vec<String>, ApiError> {
    match p.get("roomIds") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::invalid_params("roomIds must be an array of room ids")),
        _ => Err(ApiError::invalid_params("The 'roomIds' param is required")),
    }
}

async fn bot_authorize(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let user_id = p.required("userId")?;
    let rids = room_ids(&p)?;
    ok(s.core.e2e_bot_authorize(&a.user, user_id, &rids).await?)
}

async fn bot_revoke(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let user_id = p.required("userId")?;
    s.core.e2e_bot_revoke(&a.user, user_id).await?;
    ok(json!({}))
}

async fn bot_info(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let user_id = p.str("userId").unwrap_or(&a.user.id).to_string();
    ok(s.core.e2e_bot_info(&a.user, &user_id).await?)
}

async fn bot_send(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    let msg = p.required("msg")?;
    let tmid = p.str("tmid").map(str::to_string);
    let message = s.core.e2e_bot_send(&a.user, rid, msg, tmid).await?;
    ok(json!({ "message": message }))
}

async fn bot_encrypt(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    let payload = p
        .get("payload")
        .ok_or_else(|| ApiError::invalid_params("The 'payload' param is required"))?;
    ok(s.core.e2e_bot_encrypt(&a.user, rid, payload).await?)
}

async fn bot_messages(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    let oldest = p.date("oldest")?;
    let count = p.int("count").unwrap_or(50);
    ok(s.core.e2e_bot_messages(&a.user, rid, oldest, count).await?)
}

async fn bot_create_room_key(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    ok(s.core.e2e_bot_create_room_key(&a.user, rid).await?)
}

async fn bot_file(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let msg_id = p.required("msgId")?;
    let file_id = p.required("fileId")?;
    ok(s.core.e2e_bot_file(&a.user, msg_id, file_id).await?)
}

async fn bot_decrypt(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let id = p.required("msgId")?;
    ok(s.core.e2e_bot_decrypt(&a.user, id).await?)
}

async fn fetch_my_keys(State(s): State<AppState>, Auth(a): Auth) -> ApiResult {
    ok(s.core.e2e_fetch_my_keys(&a.user).await?)
}

async fn set_user_keys(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let public = p.required("public_key")?;
    let private = p.required("private_key")?;
    let force = p.bool("force").unwrap_or(false);
    s.core
        .e2e_set_user_keys(&a.user, public, private, force)
        .await?;
    ok(json!({}))
}

async fn users_without_key(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    ok(s.core.e2e_users_without_key(&a.user, rid).await?)
}

async fn set_room_key_id(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    let key_id = p.required("keyID")?;
    s.core.e2e_set_room_key_id(&a.user, rid, key_id).await?;
    ok(json!({}))
}

async fn update_group_key(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let uid = p.required("uid")?;
    let rid = p.required("rid")?;
    let key = p.required("key")?;
    s.core.e2e_update_group_key(&a.user, rid, uid, key).await?;
    ok(json!({}))
}

async fn accept(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    s.core.e2e_accept_suggested_key(&a.user, rid).await?;
    ok(json!({}))
}

async fn reject(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    s.core.e2e_reject_suggested_key(&a.user, rid).await?;
    ok(json!({}))
}

async fn users_waiting(
    State(s): State<AppState>,
    Auth(a): Auth,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let ids = query_values(q.as_deref().unwrap_or_default(), "roomIds");
    if ids.is_empty() {
        return Err(ApiError::invalid_params(
            "must have required property 'roomIds'",
        ));
    }
    ok(s.core.e2e_users_waiting(&a.user, &ids).await?)
}

/// `{usersSuggestedGroupKeys: {[rid]: [{_id, key, oldKeys?}]}}`.
fn suggested_keys(p: &Params) -> Result<Vec<(String, Vec<SuggestedKey>)>, ApiError> {
    let bad = |m: &str| ApiError::invalid_params(m.to_string());
    let Some(Value::Object(rooms)) = p.get("usersSuggestedGroupKeys") else {
        return Err(bad("must have required property 'usersSuggestedGroupKeys'"));
    };
    rooms
        .iter()
        .map(|(rid, users)| {
            let users = users
                .as_array()
                .ok_or_else(|| bad("must be array"))?
                .iter()
                .map(|u| {
                    let text = |k: &str| u.get(k).and_then(Value::as_str).map(str::to_string);
                    let old_keys = match u.get("oldKeys") {
                        None | Some(Value::Null) => None,
                        Some(Value::Array(a)) => Some(a.clone()),
                        Some(_) => return Err(bad("must be array")),
                    };
                    Ok(SuggestedKey {
                        user_id: text("_id")
                            .ok_or_else(|| bad("must have required property '_id'"))?,
                        key: text("key").ok_or_else(|| bad("must have required property 'key'"))?,
                        old_keys,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rid.clone(), users))
        })
        .collect()
}

async fn provide_suggested(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let keys = suggested_keys(&p)?;
    s.core.e2e_provide_suggested_keys(&a.user, keys).await?;
    ok(json!({}))
}

async fn reset_room_key(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?;
    let key = p.required("e2eKey")?;
    let key_id = p.required("e2eKeyId")?;
    s.core.e2e_reset_room_key(&a.user, rid, key, key_id).await?;
    ok(json!({}))
}

async fn reset_user_key(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let target = if let Some(id) = p.str("userId") {
        ResetTarget::Id(id.to_string())
    } else if let Some(name) = p.str("username").or_else(|| p.str("user")) {
        ResetTarget::Username(name.to_string())
    } else if p.get("userId").is_some() || p.get("username").is_some() || p.get("user").is_some() {
        return Err(ApiError(apogee_core::error::CoreError::bad(
            "error-invalid-user-id",
            "Invalid user id",
        )));
    } else {
        ResetTarget::Me
    };
    s.core.e2e_reset_user_keys(&a.user, target).await?;
    ok(json!({}))
}
