//! `rooms.createDiscussion` and `chat.getDiscussions`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::discussions::NewDiscussion;
use apogee_core::error::CoreError;
use apogee_core::rooms::RoomRef;
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/rooms.createDiscussion", post(create))
        .route("/api/v1/chat.getDiscussions", get(list))
        .route("/api/v1/rooms.getDiscussions", get(rooms_list))
}

async fn create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let prid = text("prid").unwrap_or_default();
    let name = text("t_name").unwrap_or_default();
    if prid.is_empty() {
        return Err(ApiError::failure("Body parameter \"prid\" is required."));
    }
    if name.is_empty() {
        return Err(ApiError::failure("Body parameter \"t_name\" is required."));
    }
    let users = p.list("users");
    let new = NewDiscussion {
        prid,
        pmid: text("pmid").filter(|m| !m.is_empty()),
        name,
        reply: text("reply"),
        users,
        encrypted: p.get("encrypted").and_then(Value::as_bool),
        topic: text("topic"),
    };
    let room = s.core.create_discussion(&a.user, new).await?;
    let mut discussion = render::to_json(&room);
    discussion["rid"] = json!(room.id);
    ok(json!({"discussion": discussion}))
}

async fn rooms_list(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let room = if let Some(id) = p.str("roomId") {
        RoomRef::Id(id.to_string())
    } else if let Some(name) = p.str("roomName") {
        RoomRef::Name(name.to_string())
    } else {
        return Err(ApiError(CoreError::bad(
            "error-roomid-param-not-provided",
            "The parameter \"roomId\" or \"roomName\" is required",
        )));
    };
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (rooms, total) = s.core.discussion_rooms(&a.user, &room, page).await?;
    let discussions: Vec<_> = rooms.iter().map(render::to_json).collect();
    ok(
        json!({"discussions": discussions, "count": discussions.len(), "offset": page.offset, "total": total}),
    )
}

async fn list(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?.to_string();
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let (messages, total) = s
        .core
        .discussions(&a.user, &rid, p.str("text"), page)
        .await?;
    ok(
        json!({"messages": messages, "count": messages.len(), "offset": page.offset, "total": total}),
    )
}
