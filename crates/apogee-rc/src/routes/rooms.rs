//! `channels.*`, `groups.*`, `im.*`/`dm.*` and `rooms.*`. Channels and groups share handlers,
//! parameterised by room type; only the response keys differ.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::domain::{Room, RoomType, User};
use apogee_core::error::CoreError;
use apogee_core::rooms::{NewRoom, RoomRef, RoomSettings};
use apogee_core::store::{HistoryQuery, RoomQuery};
use axum::extract::State;
use serde_json::{Value, json};

/// Response keys per family: (one room, many rooms).
fn keys(t: RoomType) -> (&'static str, &'static str) {
    match t {
        RoomType::Channel => ("channel", "channels"),
        RoomType::Group => ("group", "groups"),
        RoomType::Direct => ("room", "ims"),
    }
}

macro_rules! family {
    ($router:expr, $prefix:literal, $t:expr, [$($name:literal => $method:ident($handler:ident)),* $(,)?]) => {
        $router$(.route(concat!("/api/v1/", $prefix, ".", $name),
            $method(|s: State<AppState>, a: Auth, p: Params| $handler(s, a, p, $t))))*
    };
}

pub fn routes() -> Routes {
    let r = Routes::new();
    let r = family!(r, "channels", RoomType::Channel, [
        "create" => post(create), "info" => get(info), "list" => get(list), "list.joined" => get(list_joined),
        "members" => get(members), "history" => get(history), "messages" => get(history), "join" => post(join),
        "leave" => post(leave), "invite" => post(invite), "kick" => post(kick), "open" => post(open),
        "close" => post(close), "rename" => post(rename), "setTopic" => post(set_topic),
        "setDescription" => post(set_description), "setAnnouncement" => post(set_announcement),
        "setReadOnly" => post(set_read_only), "setType" => post(set_type), "setJoinCode" => post(set_join_code),
        "setDefault" => post(set_default), "setCustomFields" => post(set_custom_fields),
        "archive" => post(archive), "unarchive" => post(unarchive), "delete" => post(delete),
        "addOwner" => post(add_owner), "removeOwner" => post(remove_owner),
        "addModerator" => post(add_moderator), "removeModerator" => post(remove_moderator),
        "addLeader" => post(add_leader), "removeLeader" => post(remove_leader),
        "roles" => get(roles), "counters" => get(counters), "moderators" => get(moderators),
    ]);
    let r = family!(r, "groups", RoomType::Group, [
        "create" => post(create), "info" => get(info), "list" => get(list_joined), "listAll" => get(list),
        "members" => get(members), "history" => get(history), "messages" => get(history),
        "leave" => post(leave), "invite" => post(invite), "kick" => post(kick), "open" => post(open),
        "close" => post(close), "rename" => post(rename), "setTopic" => post(set_topic),
        "setDescription" => post(set_description), "setAnnouncement" => post(set_announcement),
        "setReadOnly" => post(set_read_only), "setType" => post(set_type), "setCustomFields" => post(set_custom_fields),
        "archive" => post(archive), "unarchive" => post(unarchive), "delete" => post(delete),
        "addOwner" => post(add_owner), "removeOwner" => post(remove_owner),
        "addModerator" => post(add_moderator), "removeModerator" => post(remove_moderator),
        "addLeader" => post(add_leader), "removeLeader" => post(remove_leader),
        "roles" => get(roles), "counters" => get(counters), "moderators" => get(moderators),
    ]);
    let mut r = r;
    for prefix in ["im", "dm"] {
        r = r
            .route(&format!("/api/v1/{prefix}.create"), post(dm_create))
            .route(
                &format!("/api/v1/{prefix}.open"),
                post(|s: State<AppState>, a: Auth, p: Params| open(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.close"),
                post(|s: State<AppState>, a: Auth, p: Params| close(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.list"),
                get(|s: State<AppState>, a: Auth, p: Params| {
                    list_joined(s, a, p, RoomType::Direct)
                }),
            )
            .route(
                &format!("/api/v1/{prefix}.list.everyone"),
                get(|s: State<AppState>, a: Auth, p: Params| list(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.history"),
                get(|s: State<AppState>, a: Auth, p: Params| history(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.messages"),
                get(|s: State<AppState>, a: Auth, p: Params| history(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.members"),
                get(|s: State<AppState>, a: Auth, p: Params| members(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.counters"),
                get(|s: State<AppState>, a: Auth, p: Params| counters(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.delete"),
                post(|s: State<AppState>, a: Auth, p: Params| delete(s, a, p, RoomType::Direct)),
            )
            .route(
                &format!("/api/v1/{prefix}.setTopic"),
                post(|s: State<AppState>, a: Auth, p: Params| set_topic(s, a, p, RoomType::Direct)),
            );
    }
    r.route("/api/v1/rooms.get", get(rooms_get))
        .route("/api/v1/rooms.info", get(rooms_info))
        .route("/api/v1/rooms.leave", post(rooms_leave))
        .route(
            "/api/v1/rooms.muteUser",
            post(|s: State<AppState>, a: Auth, p: Params| mute(s, a, p, true)),
        )
        .route(
            "/api/v1/rooms.unmuteUser",
            post(|s: State<AppState>, a: Auth, p: Params| mute(s, a, p, false)),
        )
        .route("/api/v1/rooms.favorite", post(rooms_favorite))
}

/// `roomId` or `roomName` (DMs: `roomId` or `username`).
pub(super) async fn room_ref(
    s: &AppState,
    actor: &User,
    p: &Params,
    t: RoomType,
) -> Result<RoomRef, ApiError> {
    if let Some(id) = p.str("roomId") {
        return Ok(RoomRef::Id(id.to_string()));
    }
    if t == RoomType::Direct {
        if let Some(username) = p.str("username") {
            let room = s.core.create_direct(actor, &[username.to_string()]).await?;
            return Ok(RoomRef::Id(room.id));
        }
        return Err(ApiError(CoreError::bad(
            "error-room-param-not-provided",
            "Body param \"roomId\" or \"username\" is required",
        )));
    }
    if let Some(name) = p.str("roomName") {
        return Ok(RoomRef::Name(name.to_string()));
    }
    Err(ApiError(CoreError::bad(
        "error-room-param-not-provided",
        "The parameter \"roomId\" or \"roomName\" is required",
    )))
}

/// The room of the family's type that the actor may read.
async fn readable(s: &AppState, actor: &User, p: &Params, t: RoomType) -> Result<Room, ApiError> {
    let r = room_ref(s, actor, p, t).await?;
    Ok(s.core.readable_room_of(actor, &r, t).await?.room)
}

/// Like [`readable`], but only checks the room exists and has the type (for admin actions whose
/// permission check is in core).
async fn existing(s: &AppState, actor: &User, p: &Params, t: RoomType) -> Result<Room, ApiError> {
    let r = room_ref(s, actor, p, t).await?;
    let room = s.core.find_room(&r).await.map_err(|e| match t {
        RoomType::Group => ApiError(CoreError::bad(
            "error-room-not-found",
            "The required \"roomId\" or \"roomName\" param provided does not match any group",
        )),
        _ => ApiError(e),
    })?;
    if room.t != t {
        return Err(ApiError(CoreError::room_not_found()));
    }
    Ok(room)
}

fn room_json(room: &Room) -> Value {
    render::to_json(room)
}

async fn create(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let name = p.required("name")?.to_string();
    let mut extra = serde_json::Map::new();
    if let Some(Value::Object(e)) = p.get("extraData") {
        for key in [
            "description",
            "topic",
            "announcement",
            "encrypted",
            "broadcast",
            "customFields",
            "federated",
        ] {
            if let Some(v) = e.get(key) {
                extra.insert(key.to_string(), v.clone());
            }
        }
    }
    let new = NewRoom {
        name,
        members: p.list("members"),
        read_only: p.bool("readOnly").unwrap_or(false),
        extra,
    };
    let room = s.core.create_room(&a.user, t, new).await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn info(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn list(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let query = RoomQuery {
        types: vec![t],
        name_contains: p.str("name").map(str::to_string),
        member: None,
    };
    let (rooms, total) = s.core.list_all_rooms(&a.user, query, page).await?;
    let rooms: Vec<Value> = rooms.iter().map(room_json).collect();
    ok(json!({keys(t).1: rooms, "count": rooms.len(), "offset": page.offset, "total": total}))
}

async fn list_joined(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let query = RoomQuery {
        types: vec![t],
        name_contains: None,
        member: Some(a.user.id.clone()),
    };
    let (rooms, total) = s.core.list_rooms(&a.user, query, page).await?;
    let rooms: Vec<Value> = rooms.iter().map(room_json).collect();
    ok(json!({keys(t).1: rooms, "count": rooms.len(), "offset": page.offset, "total": total}))
}

async fn members(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let page = p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    );
    let r = room_ref(&s, &a.user, &p, t).await?;
    let (subs, total) = s.core.members(&a.user, &r, Some(t), page).await?;
    let ids: Vec<String> = subs.iter().map(|s| s.u.id.clone()).collect();
    let users = s.core.users_by_ids(&ids).await?;
    let members: Vec<Value> = ids
        .iter()
        .filter_map(|id| users.iter().find(|u| u.id == *id))
        .map(render::member)
        .collect();
    ok(json!({"members": members, "count": members.len(), "offset": page.offset, "total": total}))
}

async fn history(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    let query = HistoryQuery {
        latest: p.date("latest")?,
        oldest: p.date("oldest")?,
        inclusive: p.bool("inclusive").unwrap_or(false),
        count: p
            .int("count")
            .unwrap_or(20)
            .clamp(1, s.core.settings.int("API_Upper_Count_Limit").max(1)),
        offset: p.int("offset").unwrap_or(0).max(0),
        include_thread_replies: p.bool("showThreadMessages").unwrap_or(true),
        // Clients page on with the last message's `ts` as their next `latest` (exclusive).
        whole_last_millisecond: true,
        ..Default::default()
    };
    // Rocket.Chat answers history with the messages alone (no total: counting a long room's
    // whole history on every page would defeat keyset paging).
    let (messages, _) = s.core.history(&a.user, &room, &query).await?;
    let mut body = json!({"messages": messages});
    if p.bool("unreads") == Some(true)
        && let Some(sub) = s.core.subscription(&a.user, &room.id).await?
    {
        body["unreadNotLoaded"] = json!((sub.unread - messages.len() as i64).max(0));
    }
    ok(body)
}

async fn join(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let r = room_ref(&s, &a.user, &p, t).await?;
    let room = s.core.join_room(&a.user, &r, p.str("joinCode")).await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn leave(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = existing(&s, &a.user, &p, t).await?;
    let room = s.core.leave_room(&a.user, &RoomRef::Id(room.id)).await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn target(s: &AppState, p: &Params) -> Result<User, ApiError> {
    if p.str("userId").is_none() && p.str("username").is_none() {
        return Err(ApiError(CoreError::bad(
            "error-user-param-not-provided",
            "The required \"userId\" or \"username\" param was not provided",
        )));
    }
    Ok(s.core.find_user(p.str("userId"), p.str("username")).await?)
}

async fn invite(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = existing(&s, &a.user, &p, t).await?;
    // A Matrix id (`@user:server`) invites a remote user over federation, as Rocket.Chat does.
    if let Some(mxid) = p
        .str("username")
        .filter(|u| apogee_core::federated_membership::is_matrix_id(u))
    {
        let room = s.core.invite_remote_user(&a.user, &room.id, mxid).await?;
        return ok(json!({keys(t).0: room_json(&room)}));
    }
    let user = target(&s, &p).await?;
    let room = s.core.invite(&a.user, &RoomRef::Id(room.id), &user).await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn kick(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = existing(&s, &a.user, &p, t).await?;
    let user = target(&s, &p).await?;
    let room = s.core.kick(&a.user, &RoomRef::Id(room.id), &user).await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn open(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    let sub = s.core.subscription(&a.user, &room.id).await?;
    if sub.as_ref().is_some_and(|s| s.open) && t != RoomType::Direct {
        let name = room.name.unwrap_or_default();
        return Err(ApiError(CoreError::bad(
            "",
            format!(
                "The {} \"{}\" is already open to the sender",
                keys(t).0,
                name
            ),
        )));
    }
    s.core
        .update_own_subscription(&a.user, &room.id, Some(true), None)
        .await?;
    ok(json!({}))
}

async fn close(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    let sub = s.core.subscription(&a.user, &room.id).await?;
    if sub.as_ref().is_some_and(|s| !s.open) && t != RoomType::Direct {
        let name = room.name.unwrap_or_default();
        return Err(ApiError(CoreError::bad(
            "",
            format!(
                "The {} \"{}\" is already closed to the sender",
                keys(t).0,
                name
            ),
        )));
    }
    s.core
        .update_own_subscription(&a.user, &room.id, Some(false), None)
        .await?;
    ok(json!({}))
}

/// Applies one settings change and answers with the room.
async fn apply(
    s: &AppState,
    a: &User,
    p: &Params,
    t: RoomType,
    settings: RoomSettings,
) -> Result<Room, ApiError> {
    let room = existing(s, a, p, t).await?;
    Ok(s.core
        .update_room(a, &RoomRef::Id(room.id), settings)
        .await?)
}

async fn rename(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let name = p.required("name")?.to_string();
    let room = apply(
        &s,
        &a.user,
        &p,
        t,
        RoomSettings {
            name: Some(name),
            ..Default::default()
        },
    )
    .await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

/// `setTopic` / `setDescription` / `setAnnouncement`: one text field, echoed back.
async fn set_text(s: &AppState, a: &User, p: &Params, t: RoomType, key: &str) -> ApiResult {
    let text = p
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let value = Some(text.clone());
    let settings = match key {
        "topic" => RoomSettings {
            topic: value,
            ..Default::default()
        },
        "description" => RoomSettings {
            description: value,
            ..Default::default()
        },
        _ => RoomSettings {
            announcement: value,
            ..Default::default()
        },
    };
    apply(s, a, p, t, settings).await?;
    ok(json!({key: text}))
}

async fn set_topic(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    set_text(&s, &a.user, &p, t, "topic").await
}

async fn set_description(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    set_text(&s, &a.user, &p, t, "description").await
}

async fn set_announcement(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    set_text(&s, &a.user, &p, t, "announcement").await
}

async fn set_read_only(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    let ro = p
        .bool("readOnly")
        .ok_or_else(|| ApiError::invalid_params("must have required property 'readOnly'"))?;
    let room = apply(
        &s,
        &a.user,
        &p,
        t,
        RoomSettings {
            read_only: Some(ro),
            ..Default::default()
        },
    )
    .await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn set_type(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let new_t = p
        .required("type")
        .map(RoomType::from_code)?
        .ok_or_else(|| {
            ApiError(CoreError::bad(
                "error-invalid-room-type",
                "The room type is not valid",
            ))
        })?;
    let room = apply(
        &s,
        &a.user,
        &p,
        t,
        RoomSettings {
            room_type: Some(new_t),
            ..Default::default()
        },
    )
    .await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn set_join_code(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    let code = p.required("joinCode")?.to_string();
    let room = apply(
        &s,
        &a.user,
        &p,
        t,
        RoomSettings {
            join_code: Some(code),
            ..Default::default()
        },
    )
    .await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn set_default(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    let d = p
        .bool("default")
        .ok_or_else(|| ApiError::invalid_params("must have required property 'default'"))?;
    let room = apply(
        &s,
        &a.user,
        &p,
        t,
        RoomSettings {
            default: Some(d),
            ..Default::default()
        },
    )
    .await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn set_custom_fields(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    let fields = p
        .get("customFields")
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| ApiError::invalid_params("must have required property 'customFields'"))?;
    let room = apply(
        &s,
        &a.user,
        &p,
        t,
        RoomSettings {
            custom_fields: Some(fields),
            ..Default::default()
        },
    )
    .await?;
    ok(json!({keys(t).0: room_json(&room)}))
}

async fn archive(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = existing(&s, &a.user, &p, t).await?;
    s.core
        .set_archived(&a.user, &RoomRef::Id(room.id), true)
        .await?;
    ok(json!({}))
}

async fn unarchive(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = existing(&s, &a.user, &p, t).await?;
    s.core
        .set_archived(&a.user, &RoomRef::Id(room.id), false)
        .await?;
    ok(json!({}))
}

async fn delete(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = existing(&s, &a.user, &p, t).await?;
    s.core.delete_room(&a.user, &RoomRef::Id(room.id)).await?;
    ok(json!({}))
}

async fn set_role(
    s: &AppState,
    a: &User,
    p: &Params,
    t: RoomType,
    role: &str,
    grant: bool,
) -> ApiResult {
    let room = existing(s, a, p, t).await?;
    let user = target(s, p).await?;
    s.core
        .set_room_role(a, &RoomRef::Id(room.id), &user, role, grant)
        .await?;
    ok(json!({}))
}

/// One handler per room-role endpoint, all through [`set_role`].
macro_rules! role_handlers {
    ($($name:ident => $role:literal, $grant:literal;)*) => {$(
        async fn $name(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
            set_role(&s, &a.user, &p, t, $role, $grant).await
        }
    )*};
}

role_handlers! {
    add_owner => "owner", true;
    remove_owner => "owner", false;
    add_moderator => "moderator", true;
    remove_moderator => "moderator", false;
    add_leader => "leader", true;
    remove_leader => "leader", false;
}

async fn roles(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    let subs = s.core.room_roles(&a.user, &RoomRef::Id(room.id)).await?;
    let roles: Vec<Value> = subs
        .iter()
        .map(|s| json!({"_id": s.id, "rid": s.rid, "u": s.u, "roles": s.roles}))
        .collect();
    ok(json!({"roles": roles}))
}

async fn moderators(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    let subs = s.core.room_roles(&a.user, &RoomRef::Id(room.id)).await?;
    let mods: Vec<Value> = subs
        .iter()
        .filter(|s| s.has_role("moderator"))
        .map(|s| render::to_json(&s.u))
        .collect();
    ok(json!({"moderators": mods}))
}

async fn counters(State(s): State<AppState>, Auth(a): Auth, p: Params, t: RoomType) -> ApiResult {
    let room = readable(&s, &a.user, &p, t).await?;
    let sub = s.core.subscription(&a.user, &room.id).await?;
    ok(json!({
        "joined": sub.is_some(),
        "members": room.users_count,
        "unreads": sub.as_ref().map(|s| s.unread),
        "unreadsFrom": sub.as_ref().and_then(|s| s.ls),
        "msgs": room.msgs,
        "latest": room.lm,
        "userMentions": sub.as_ref().map_or(0, |s| s.user_mentions),
    }))
}

async fn dm_create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let mut usernames = p.list("usernames");
    if let Some(u) = p.str("username") {
        usernames.push(u.to_string());
    }
    if usernames.is_empty() {
        return Err(ApiError::invalid_params(
            "must have required property 'username'",
        ));
    }
    let room = s.core.create_direct(&a.user, &usernames).await?;
    let mut v = room_json(&room);
    v["rid"] = json!(room.id);
    ok(json!({"room": v}))
}

async fn rooms_get(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let (rooms, removed) = s.core.rooms_of(&a.user, p.date("updatedSince")?).await?;
    let removed: Vec<Value> = removed
        .iter()
        .map(|t| json!({"_id": t.id, "_deletedAt": t.deleted_at}))
        .collect();
    ok(json!({"update": rooms, "remove": removed}))
}

async fn rooms_info(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let r = match (p.str("roomId"), p.str("roomName")) {
        (Some(id), _) => RoomRef::Id(id.to_string()),
        (None, Some(name)) => RoomRef::Name(name.to_string()),
        _ => {
            return Err(ApiError::invalid_params(
                "must have required property 'roomId'",
            ));
        }
    };
    let view = s.core.readable_room(&a.user, &r).await?;
    ok(json!({"room": room_json(&view.room)}))
}

async fn rooms_leave(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = p.required("roomId")?;
    s.core
        .leave_room(&a.user, &RoomRef::Id(rid.to_string()))
        .await?;
    ok(json!({}))
}

/// `rooms.muteUser` / `rooms.unmuteUser` (`{roomId, userId}` or `{roomId, username}`).
async fn mute(State(s): State<AppState>, Auth(a): Auth, p: Params, muted: bool) -> ApiResult {
    let rid = p.required("roomId")?;
    s.core
        .set_muted(&a.user, rid, p.str("userId"), p.str("username"), muted)
        .await?;
    ok(json!({}))
}

async fn rooms_favorite(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let room = match (p.str("roomId"), p.str("roomName")) {
        (Some(id), _) => s.core.find_room(&RoomRef::Id(id.to_string())).await?,
        (None, Some(name)) => s.core.find_room(&RoomRef::Name(name.to_string())).await?,
        _ => {
            return Err(ApiError::invalid_params(
                "must have required property 'roomId'",
            ));
        }
    };
    let fav = p
        .bool("favorite")
        .ok_or_else(|| ApiError::invalid_params("must have required property 'favorite'"))?;
    s.core
        .update_own_subscription(&a.user, &room.id, None, Some(fav))
        .await?;
    ok(json!({}))
}
