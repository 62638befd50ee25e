//! `channels.addAll`, `channels.online` / `groups.online`, `channels.getAllUserMentionsByChannel`,
//! `groups.setEncrypted`, `rooms.cleanHistory` and `rooms.adminRooms`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::domain::RoomType;
use apogee_core::error::CoreError;
use apogee_core::room_admin::CleanHistory;
use apogee_core::rooms::{RoomRef, RoomSettings};
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/channels.addAll", post(add_all))
        .route(
            "/api/v1/channels.online",
            get(|s: State<AppState>, a: Auth, p: Params| online(s, a, p, RoomType::Channel)),
        )
        .route(
            "/api/v1/groups.online",
            get(|s: State<AppState>, a: Auth, p: Params| online(s, a, p, RoomType::Group)),
        )
        .route(
            "/api/v1/channels.getAllUserMentionsByChannel",
            get(mentions),
        )
        .route("/api/v1/groups.setEncrypted", post(set_encrypted))
        .route("/api/v1/rooms.cleanHistory", post(clean_history))
        .route("/api/v1/rooms.adminRooms", get(admin_rooms))
}

fn room_ref(p: &Params) -> Result<RoomRef, ApiError> {
    if let Some(id) = p.str("roomId") {
        return Ok(RoomRef::Id(id.to_string()));
    }
    if let Some(name) = p.str("roomName") {
        return Ok(RoomRef::Name(name.to_string()));
    }
    Err(ApiError(CoreError::bad(
        "error-room-param-not-provided",
        "The parameter \"roomId\" or \"roomName\" is required",
    )))
}

async fn add_all(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let r = room_ref(&p)?;
    let room = s.core.find_room(&r).await?;
    if room.t != RoomType::Channel {
        return Err(ApiError(CoreError::room_not_found()));
    }
    let room = s
        .core
        .add_all_users(
            &a.user,
            &RoomRef::Id(room.id),
            p.bool("activeUsersOnly") == Some(true),
        )
        .await?;
    ok(json!({"channel": render::to_json(&room)}))
}

/// `_id`, or a JSON `query` naming the room by `_id` or `name`.
async fn online(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let query = match p.str("query") {
        Some(q) => Some(
            serde_json::from_str::<Value>(q)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| ApiError::failure("Invalid query"))?,
        ),
        None => None,
    };
    let from_query = |key: &str| {
        query
            .as_ref()
            .and_then(|q| q.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let r = match (
        p.str("_id").map(str::to_string),
        from_query("_id"),
        from_query("name"),
    ) {
        (Some(id), _, _) | (None, Some(id), _) => RoomRef::Id(id),
        (None, None, Some(name)) => RoomRef::Name(name),
        _ => return Err(ApiError::failure("Invalid query")),
    };
    let users = s.core.online_members(&a.user, &r, t).await?;
    let online: Vec<Value> = users
        .iter()
        .map(|u| json!({"_id": u.id, "username": u.username}))
        .collect();
    ok(json!({"online": online}))
}

async fn mentions(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p
        .str("roomId")
        .ok_or_else(|| ApiError::failure("The required \"roomId\" query param is missing."))?;
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (mentions, total) = s
        .core
        .mentions_of(&a.user, &RoomRef::Id(rid.to_string()), page)
        .await?;
    ok(
        json!({"mentions": mentions, "count": mentions.len(), "offset": page.offset, "total": total}),
    )
}

async fn set_encrypted(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let encrypted = match p.get("encrypted") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid_params("must be boolean")),
        None => return Err(ApiError::failure("The bodyParam \"encrypted\" is required")),
    };
    let r = room_ref(&p)?;
    let group_not_found = || {
        ApiError(CoreError::bad(
            "error-room-not-found",
            "The required \"roomId\" or \"roomName\" param provided does not match any group",
        ))
    };
    let room = s.core.find_room(&r).await.map_err(|_| group_not_found())?;
    if room.t != RoomType::Group {
        return Err(group_not_found());
    }
    let settings = RoomSettings {
        encrypted: Some(encrypted),
        ..Default::default()
    };
    let room = s
        .core
        .update_room(&a.user, &RoomRef::Id(room.id), settings)
        .await?;
    ok(json!({"group": render::to_json(&room)}))
}

async fn clean_history(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?.to_string();
    let latest = p
        .date("latest")?
        .ok_or_else(|| ApiError::failure("Body parameter \"latest\" is required."))?;
    let oldest = p
        .date("oldest")?
        .ok_or_else(|| ApiError::failure("Body parameter \"oldest\" is required."))?;
    let opts = CleanHistory {
        latest,
        oldest,
        inclusive: p.bool("inclusive").unwrap_or(false),
        exclude_pinned: p.bool("excludePinned").unwrap_or(false),
        files_only: p.bool("filesOnly").unwrap_or(false),
        users: p.list("users"),
        ignore_threads: p.bool("ignoreThreads").unwrap_or(false),
        limit: p.int("limit"),
    };
    let count = s
        .core
        .clean_history(&a.user, &RoomRef::Id(rid.clone()), opts)
        .await?;
    ok(json!({"_id": rid, "count": count}))
}

async fn admin_rooms(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let mut types = Vec::new();
    for key in ["types", "types[]"] {
        for code in p.list(key) {
            // Omnichannel, discussion and team listings have no rooms of their own here.
            if ["l", "v", "discussions", "teams"].contains(&code.as_str()) {
                continue;
            }
            let t = RoomType::from_code(&code).ok_or_else(|| {
                ApiError::invalid_params("must be equal to one of the allowed values")
            })?;
            types.push(t);
        }
    }
    let filter = p.str("filter").map(str::to_string);
    let (rooms, total) = s.core.admin_rooms(&a.user, filter, types, page).await?;
    let rooms: Vec<Value> = rooms.iter().map(render::to_json).collect();
    ok(json!({"rooms": rooms, "count": rooms.len(), "offset": page.offset, "total": total}))
}
