//! `rooms.saveRoomSettings` (REST) and the `saveRoomSettings` method (DDP): Rocket.Chat's
//! settings object read into core's [`RoomSettings`], applied by `Core::update_room` in one batch
//! (a `roomAvatar` `data:` URL or null included).

use super::registry::{Routes, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiResult, ok};
use crate::params::Params;
use apogee_core::Core;
use apogee_core::avatars::RoomAvatar;
use apogee_core::domain::{RoomType, User};
use apogee_core::error::{CoreError, CoreResult};
use apogee_core::rooms::{RoomRef, RoomSettings};
use axum::extract::State;
use serde_json::{Map, Value, json};

pub fn routes() -> Routes {
    Routes::new().route("/api/v1/rooms.saveRoomSettings", post(save))
}

fn invalid_settings() -> CoreError {
    CoreError::bad("error-invalid-settings", "Invalid settings provided")
}

/// Reads Rocket.Chat's settings object. Settings Apogee does not keep (`featured`,
/// `reactWhenReadOnly`, `systemMessages`, `retention*`, `favorite`, `sidepanel`) are refused
/// like unknown ones, so nothing is silently ignored.
pub(crate) fn parse_settings(fields: &Map<String, Value>) -> CoreResult<RoomSettings> {
    let mut s = RoomSettings::default();
    let text = |v: &Value| v.as_str().map(str::to_string).ok_or_else(invalid_settings);
    let flag = |v: &Value| v.as_bool().ok_or_else(invalid_settings);
    for (key, value) in fields {
        match key.as_str() {
            "roomAvatar" => s.avatar = Some(RoomAvatar::from_value(value)?),
            "roomName" => s.name = Some(text(value)?),
            "roomTopic" => s.topic = Some(text(value)?),
            "roomAnnouncement" => s.announcement = Some(text(value)?),
            "roomDescription" => s.description = Some(text(value)?),
            "roomType" => {
                let t = value
                    .as_str()
                    .and_then(RoomType::from_code)
                    .filter(|t| *t != RoomType::Direct)
                    .ok_or_else(invalid_settings)?;
                s.room_type = Some(t);
            }
            "readOnly" => s.read_only = Some(flag(value)?),
            "default" => s.default = Some(flag(value)?),
            "encrypted" => s.encrypted = Some(flag(value)?),
            "joinCode" => s.join_code = Some(text(value)?),
            "roomCustomFields" if value.is_object() => s.custom_fields = Some(value.clone()),
            _ => return Err(invalid_settings()),
        }
    }
    Ok(s)
}

/// Applies a settings object to room `rid` → `{rid}`.
pub(crate) async fn save_room_settings(
    core: &Core,
    actor: &User,
    rid: &str,
    fields: &Map<String, Value>,
) -> CoreResult<Value> {
    let settings = parse_settings(fields)?;
    let room = core
        .update_room(actor, &RoomRef::Id(rid.to_string()), settings)
        .await
        .map_err(|e| {
            if e.code == "error-room-not-found" {
                CoreError::invalid_room()
            } else {
                e
            }
        })?;
    Ok(json!({"rid": room.id}))
}

/// `POST rooms.saveRoomSettings {rid, …settings}` → `{rid}`.
async fn save(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("rid")?.to_string();
    let mut fields = p.0.clone();
    fields.remove("rid");
    ok(save_room_settings(&s.core, &a.user, &rid, &fields).await?)
}
