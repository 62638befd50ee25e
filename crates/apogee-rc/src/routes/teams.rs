//! `teams.*` and `channels.convertToTeam` / `groups.convertToTeam`.

use super::registry::{Routes, get, post};
use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ok};
use crate::params::Params;
use crate::render;
use apogee_core::domain::RoomType;
use apogee_core::error::CoreError;
use apogee_core::rooms::RoomRef;
use apogee_core::store::Page;
use apogee_core::teams::{MemberFilter, NewTeam, TeamInfo, TeamRef};
use axum::extract::State;
use serde_json::{Value, json};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/teams.create", post(create))
        .route("/api/v1/teams.delete", post(delete))
        .route("/api/v1/teams.info", get(info))
        .route("/api/v1/teams.list", get(list))
        .route("/api/v1/teams.listAll", get(list_all))
        .route("/api/v1/teams.members", get(members))
        .route("/api/v1/teams.addMembers", post(add_members))
        .route("/api/v1/teams.updateMember", post(update_member))
        .route("/api/v1/teams.removeMember", post(remove_member))
        .route("/api/v1/teams.listRooms", get(list_rooms))
        .route("/api/v1/teams.listRoomsOfUser", get(list_rooms_of_user))
        .route("/api/v1/teams.addRooms", post(add_rooms))
        .route("/api/v1/teams.removeRoom", post(remove_room))
        .route("/api/v1/teams.updateRoom", post(update_room))
        .route("/api/v1/teams.autocomplete", get(autocomplete))
        .route("/api/v1/teams.leave", post(leave))
        .route("/api/v1/teams.update", post(update))
        .route(
            "/api/v1/channels.convertToTeam",
            post(|s: State<AppState>, a: Auth, p: Params| {
                convert_to_team(s, a, p, RoomType::Channel)
            }),
        )
        .route(
            "/api/v1/groups.convertToTeam",
            post(|s: State<AppState>, a: Auth, p: Params| {
                convert_to_team(s, a, p, RoomType::Group)
            }),
        )
}

fn page(s: &AppState, p: &Params) -> Page {
    p.page(
        s.core.settings.int("API_Default_Count"),
        s.core.settings.int("API_Upper_Count_Limit"),
    )
}

/// `teamId` or `teamName`, as Rocket.Chat's `getTeamByIdOrName`.
fn team_ref(p: &Params) -> Result<TeamRef, ApiError> {
    if let Some(id) = p.str("teamId") {
        return Ok(TeamRef::Id(id.to_string()));
    }
    if let Some(name) = p.str("teamName") {
        return Ok(TeamRef::Name(name.to_string()));
    }
    Err(ApiError::invalid_params(
        "must have required property 'teamId'\n must have required property 'teamName'\n must match exactly one schema in oneOf",
    ))
}

/// An optional string parameter that must be a string when present.
fn opt_str<'a>(p: &'a Params, key: &str) -> Result<Option<&'a str>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
        Some(_) => Err(ApiError::invalid_params(format!(
            "Match error: Expected string, got {key} of another type"
        ))),
    }
}

fn string_list(v: &Value, key: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid_params(format!("Match error: Expected string in {key}"))
                })
            })
            .collect(),
        _ => Err(ApiError::invalid_params(format!(
            "Match error: Expected array in {key}"
        ))),
    }
}

async fn create(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let name = match p.get("name") {
        Some(Value::String(n)) => n.clone(),
        _ => {
            return Err(ApiError::invalid_params(
                "Match error: Missing key 'name' or it is not a string",
            ));
        }
    };
    let kind = match p.get("type") {
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            n.as_i64().unwrap_or(0)
        }
        _ => {
            return Err(ApiError::invalid_params(
                "Match error: Expected 0 or 1 in field type",
            ));
        }
    };
    let members = match p.get("members") {
        None => Vec::new(),
        Some(v) => string_list(v, "members")?,
    };
    let owner = opt_str(&p, "owner")?.map(str::to_string);
    let mut read_only = false;
    let mut extra = serde_json::Map::new();
    if let Some(Value::Object(room)) = p.get("room") {
        read_only = room
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(Value::Object(e)) = room.get("extraData") {
            for key in [
                "description",
                "topic",
                "announcement",
                "broadcast",
                "encrypted",
            ] {
                if let Some(v) = e.get(key) {
                    extra.insert(key.to_string(), v.clone());
                }
            }
        }
    }
    let team = s
        .core
        .create_team(
            &a.user,
            NewTeam {
                name,
                kind,
                members,
                owner,
                read_only,
                extra,
            },
        )
        .await?;
    ok(json!({"team": team}))
}

async fn delete(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rooms = match p.get("roomsToRemove") {
        None => Vec::new(),
        Some(v) => string_list(v, "roomsToRemove")?,
    };
    s.core.delete_team(&a.user, &team_ref(&p)?, &rooms).await?;
    ok(json!({}))
}

async fn info(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = s.core.team_info(&a.user, &team_ref(&p)?).await?;
    ok(json!({"teamInfo": team}))
}

fn team_info_json(t: &TeamInfo) -> Value {
    let mut v = render::to_json(&t.team);
    v["rooms"] = json!(t.rooms);
    v["numberOfUsers"] = json!(t.number_of_users);
    v
}

async fn list(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let (teams, total) = s.core.list_teams(&a.user, false, page).await?;
    let teams: Vec<Value> = teams.iter().map(team_info_json).collect();
    ok(json!({"teams": teams, "total": total, "count": teams.len(), "offset": page.offset}))
}

async fn list_all(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let page = page(&s, &p);
    let (teams, total) = s.core.list_teams(&a.user, true, page).await?;
    let teams: Vec<Value> = teams.iter().map(team_info_json).collect();
    ok(json!({"teams": teams, "total": total, "count": teams.len(), "offset": page.offset}))
}

async fn members(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let page = page(&s, &p);
    let filter = MemberFilter {
        username: opt_str(&p, "username")?.map(str::to_string),
        name: opt_str(&p, "name")?.map(str::to_string),
        status: p.list("status"),
    };
    let (members, total) = s.core.team_members(&a.user, &team, &filter, page).await?;
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "user": {
                    "_id": m.user.id,
                    "username": m.user.username,
                    "name": m.user.name,
                    "status": m.user.status,
                    "settings": m.user.extra.get("settings"),
                },
                "roles": m.member.roles,
                "createdBy": {"_id": m.member.created_by.id, "username": m.member.created_by.username},
                "createdAt": m.member.created_at,
            })
        })
        .collect();
    ok(json!({"members": members, "total": total, "count": members.len(), "offset": page.offset}))
}

async fn add_members(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let mut members = Vec::new();
    for m in p
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let user_id = m.get("userId").and_then(Value::as_str).unwrap_or_default();
        let roles = match m.get("roles") {
            None | Some(Value::Null) => None,
            Some(v) => Some(string_list(v, "roles")?),
        };
        members.push((user_id.to_string(), roles));
    }
    s.core.add_team_members(&a.user, &team, &members).await?;
    ok(json!({}))
}

async fn update_member(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let member = p.get("member").cloned().unwrap_or(Value::Null);
    let user_id = member
        .get("userId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if user_id.is_empty() {
        return Err(ApiError::failure("invalid-user"));
    }
    let roles = match member.get("roles") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string_list(v, "roles")?),
    };
    s.core
        .update_team_member(&a.user, &team, user_id, roles)
        .await?;
    ok(json!({}))
}

async fn remove_member(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let user_id = p.required("userId")?.to_string();
    let rooms = match p.get("rooms") {
        None => Vec::new(),
        Some(v) => string_list(v, "rooms")?,
    };
    s.core
        .remove_team_member(&a.user, &team, &user_id, &rooms)
        .await?;
    ok(json!({}))
}

async fn list_rooms(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let page = page(&s, &p);
    let filter = opt_str(&p, "filter")?;
    let auto_join = opt_str(&p, "type")? == Some("autoJoin");
    let (rooms, total) = s
        .core
        .list_team_rooms(&a.user, &team, filter, auto_join, page)
        .await?;
    let rooms: Vec<Value> = rooms.iter().map(render::to_json).collect();
    ok(json!({"rooms": rooms, "total": total, "count": rooms.len(), "offset": page.offset}))
}

async fn list_rooms_of_user(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let user_id = opt_str(&p, "userId")?
        .ok_or_else(|| ApiError::invalid_params("must have required property 'userId'"))?
        .to_string();
    let can_delete = opt_str(&p, "canUserDelete")? == Some("true");
    let page = page(&s, &p);
    let (rooms, total) = s
        .core
        .list_team_rooms_of_user(&a.user, &team, &user_id, can_delete, page)
        .await?;
    let rooms: Vec<Value> = rooms
        .iter()
        .map(|r| {
            let mut v = render::to_json(&r.room);
            v["isLastOwner"] = json!(r.is_last_owner);
            v
        })
        .collect();
    ok(json!({"rooms": rooms, "total": total, "count": rooms.len(), "offset": 0}))
}

async fn add_rooms(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let rooms = match p.get("rooms") {
        Some(v) => string_list(v, "rooms")?,
        None => {
            return Err(ApiError::invalid_params("Match error: Missing key 'rooms'"));
        }
    };
    let rooms = s.core.add_team_rooms(&a.user, &team, &rooms).await?;
    let rooms: Vec<Value> = rooms.iter().map(render::to_json).collect();
    ok(json!({"rooms": rooms}))
}

async fn remove_room(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let rid = p.required("roomId")?.to_string();
    let room = s.core.remove_team_room(&a.user, &team, &rid).await?;
    ok(json!({"room": render::to_json(&room)}))
}

async fn update_room(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let rid = match p.get("roomId") {
        Some(Value::String(r)) => r.clone(),
        _ => {
            return Err(ApiError::invalid_params(
                "Match error: Missing key 'roomId' or it is not a string",
            ));
        }
    };
    let Some(Value::Bool(is_default)) = p.get("isDefault") else {
        return Err(ApiError::invalid_params(
            "Match error: Missing key 'isDefault' or it is not a boolean",
        ));
    };
    let room = s.core.update_team_room(&a.user, &rid, *is_default).await?;
    ok(json!({"room": render::to_json(&room)}))
}

async fn autocomplete(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let name = match p.get("name") {
        Some(Value::String(n)) => n.clone(),
        _ => {
            return Err(ApiError::invalid_params("Match error: Missing key 'name'"));
        }
    };
    let rooms = s.core.autocomplete_teams(&a.user, &name).await?;
    let teams: Vec<Value> = rooms
        .iter()
        .map(|r| {
            let mut v = json!({"_id": r.id, "fname": r.fname, "teamId": r.team_id, "name": r.name, "t": r.t});
            if let Some(etag) = r.extra.get("avatarETag") {
                v["avatarETag"] = etag.clone();
            }
            v
        })
        .collect();
    ok(json!({"teams": teams}))
}

async fn leave(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let rooms = match p.get("rooms") {
        None => Vec::new(),
        Some(v) => string_list(v, "rooms")?,
    };
    s.core.leave_team(&a.user, &team, &rooms).await?;
    ok(json!({}))
}

async fn update(State(s): State<AppState>, Auth(a): Auth, p: Params) -> ApiResult {
    let team = team_ref(&p)?;
    let data = p.get("data").cloned().unwrap_or(Value::Null);
    let name = data.get("name").and_then(Value::as_str).map(str::to_string);
    let kind = data.get("type").and_then(Value::as_i64);
    let update_room = p.bool("updateRoom").unwrap_or(true);
    s.core
        .update_team(&a.user, &team, name, kind, update_room)
        .await?;
    ok(json!({}))
}

async fn convert_to_team(
    State(s): State<AppState>,
    Auth(a): Auth,
    p: Params,
    t: RoomType,
) -> ApiResult {
    let schema = if t == RoomType::Group {
        "isGroupsConvertToTeamProps"
    } else {
        "isChannelsConvertToTeamProps"
    };
    p.validate(schema)?;
    let (id_key, name_key) = if t == RoomType::Group {
        ("roomId", "roomName")
    } else {
        ("channelId", "channelName")
    };
    let room = if let Some(id) = p.str(id_key) {
        RoomRef::Id(id.to_string())
    } else if let Some(name) = p.str(name_key) {
        RoomRef::Name(name.to_string())
    } else {
        return Err(ApiError(CoreError::bad(
            "error-room-param-not-provided",
            "The parameter \"roomId\" or \"roomName\" is required",
        )));
    };
    let team = s.core.convert_to_team(&a.user, &room, t).await?;
    ok(json!({"team": team}))
}
