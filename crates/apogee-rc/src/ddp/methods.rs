//! The DDP method dispatcher, shared by DDP connections and the REST tunnel
//! (`method.call/:method`). Each method reads its parameters, calls one core use-case and shapes
//! the result; core decides who may do what. Results are plain JSON with ISO dates; callers turn
//! them into EJSON before sending.

use crate::ddp::ejson;
use crate::render;
use apogee_core::Core;
use apogee_core::accounts::{Credentials, Identifier, LoginResult, Session};
use apogee_core::commands::CommandCall;
use apogee_core::credentials::NewPassword;
use apogee_core::domain::{Message, User};
use apogee_core::error::{CoreError, CoreResult};
use apogee_core::files::FileToConfirm;
use apogee_core::messages::NewMessage;
use apogee_core::passwords::{digest, hash_token};
use apogee_core::rooms::RoomRef;
use apogee_core::store::{HistoryQuery, MessageKey, Page, Tombstone};
use apogee_core::two_factor::SecondFactorProof;
use serde_json::{Map, Value, json};

/// Longest `loadHistory` page.
const MAX_HISTORY: i64 = 100;

/// What a method call runs with and leaves behind.
#[derive(Default)]
pub struct Ctx {
    /// The logged-in caller, if any; `login` and `logout` change it.
    pub session: Option<Session>,
    /// Frames to send before the result (the `users` document after a login).
    pub before_result: Vec<Value>,
    /// Close the connection after answering (`logout`).
    pub close_after: bool,
    /// On a DDP connection, presence is the connection's own: `UserPresence:online`/`away`
    /// leave the requested state here (`Some(away)`) for the connection to apply. Over REST
    /// (`method.call`) the status is set directly.
    pub presence: Option<Option<bool>>,
    /// The client's address (failed-login blocks, device management).
    pub addr: Option<std::net::IpAddr>,
    /// The `User-Agent` of the WebSocket upgrade (device management).
    pub user_agent: Option<String>,
}

impl Ctx {
    fn client(&self) -> apogee_core::accounts::Client {
        apogee_core::accounts::Client {
            addr: self.addr,
            user_agent: self.user_agent.clone(),
        }
    }
}

impl Ctx {
    pub fn for_user(session: Option<Session>) -> Self {
        Ctx {
            session,
            ..Default::default()
        }
    }

    fn user(&self) -> CoreResult<&User> {
        self.session
            .as_ref()
            .map(|s| &s.user)
            .ok_or_else(|| CoreError::bad("error-invalid-user", "Invalid user"))
    }

    fn logged_in(&self) -> CoreResult<&Session> {
        self.session
            .as_ref()
            .ok_or_else(|| CoreError::bad("error-invalid-user", "Invalid user"))
    }
}

/// Rocket.Chat's `twoFactorRequired` methods take the second factor as their last argument:
/// `{twoFactorCode, twoFactorMethod}`.
fn two_factor_arg(params: &[Value]) -> Option<SecondFactorProof> {
    let last = params.last()?.as_object()?;
    let code = last.get("twoFactorCode")?.as_str()?;
    let method = last.get("twoFactorMethod")?.as_str()?;
    Some(SecondFactorProof {
        code: code.to_string(),
        method: Some(method.to_string()),
    })
}

fn bad_params(method: &str) -> CoreError {
    CoreError::bad(
        "error-invalid-params",
        format!("Invalid parameters for {method}"),
    )
}

fn str_param<'a>(params: &'a [Value], i: usize, method: &str) -> CoreResult<&'a str> {
    params
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_params(method))
}

fn obj_param<'a>(
    params: &'a [Value],
    i: usize,
    method: &str,
) -> CoreResult<&'a Map<String, Value>> {
    params
        .get(i)
        .and_then(Value::as_object)
        .ok_or_else(|| bad_params(method))
}

fn since_listing<T: serde::Serialize>(
    since: bool,
    items: Vec<T>,
    removed: Vec<Tombstone>,
) -> Value {
    if !since {
        return json!(items);
    }
    let removed: Vec<Value> = removed
        .iter()
        .map(|t| json!({"_id": t.id, "_deletedAt": t.deleted_at}))
        .collect();
    json!({"update": items, "remove": removed})
}

/// Runs one method. `Value::Null` means "no result" (Meteor's `undefined`).
pub async fn call(core: &Core, ctx: &mut Ctx, method: &str, params: &[Value]) -> CoreResult<Value> {
    let m = method;
    if let Some(session) = &ctx.session {
        core.require_two_factor_setup(&session.user, method)?;
    }
    match method {
        "login" => login(core, ctx, params).await,
        "2fa:enable" => {
            let proof = two_factor_arg(params);
            let setup = core.enable_totp(ctx.logged_in()?, proof.as_ref()).await?;
            Ok(json!({"secret": setup.secret, "url": setup.url}))
        }
        "2fa:validateTempToken" => {
            let codes = core
                .validate_totp(ctx.user()?, str_param(params, 0, m)?)
                .await?;
            Ok(json!({ "codes": codes }))
        }
        "2fa:disable" => {
            let done = core
                .disable_totp(ctx.user()?, str_param(params, 0, m)?)
                .await?;
            Ok(json!(done))
        }
        "2fa:regenerateCodes" => {
            let codes = core
                .regenerate_totp_codes(ctx.user()?, str_param(params, 0, m)?)
                .await?;
            Ok(codes.map_or(Value::Null, |codes| json!({ "codes": codes })))
        }
        "2fa:checkCodesRemaining" => {
            let remaining = core.totp_codes_remaining(ctx.user()?).await?;
            Ok(json!({ "remaining": remaining }))
        }
        "resetPassword" => reset_password(core, ctx, params).await,
        "setUserPassword" => {
            let password = str_param(params, 0, m)?;
            let session = ctx.session.clone().ok_or_else(CoreError::invalid_user)?;
            core.set_required_password(&session, password).await?;
            Ok(Value::Null)
        }
        // Rocket.Chat's (dataURI, contentType, service, targetUserId?); only service `url` (an
        // image fetched by the outbound client) is served here, uploads go over REST.
        "setAvatarFromService" => {
            let source = str_param(params, 0, m)?;
            let service = params.get(2).and_then(Value::as_str).unwrap_or_default();
            let me = ctx.user()?.clone();
            if service != "url" {
                return Err(CoreError::bad(
                    "error-avatar-invalid-service",
                    "Only avatars from a URL can be set over DDP; upload images with users.setAvatar",
                ));
            }
            let target = match params.get(3).and_then(Value::as_str) {
                Some(uid) if uid != me.id => core.find_user(Some(uid), None).await?,
                _ => me.clone(),
            };
            core.set_avatar_from_url(&me, &target, source).await?;
            Ok(Value::Null)
        }
        "logout" => {
            if let Some(session) = ctx.session.take() {
                core.logout(&session).await?;
            }
            ctx.close_after = true;
            Ok(Value::Null)
        }
        "sendMessage" => {
            let msg = obj_param(params, 0, m)?;
            let text = |k: &str| msg.get(k).and_then(Value::as_str).map(str::to_string);
            let new = NewMessage {
                id: text("_id"),
                rid: text("rid").ok_or_else(|| bad_params(m))?,
                msg: text("msg").unwrap_or_default(),
                tmid: text("tmid"),
                tshow: msg.get("tshow").and_then(Value::as_bool).unwrap_or(false),
                extra: crate::routes::chat::send_extras(msg),
            };
            // Rocket.Chat 7: `(message, previewUrls, filesToConfirm [{_id, name?, content?}])`.
            let files = match params.get(2) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(files)) => files
                    .iter()
                    .map(|f| {
                        let id = f
                            .get("_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad_params(m))?;
                        Ok(FileToConfirm {
                            id: id.to_string(),
                            name: f.get("name").and_then(Value::as_str).map(str::to_string),
                            content: f.get("content").filter(|c| !c.is_null()).cloned(),
                        })
                    })
                    .collect::<CoreResult<Vec<_>>>()?,
                Some(_) => return Err(bad_params(m)),
            };
            Ok(json!(
                core.send_message_with_files(ctx.user()?, new, files)
                    .await?
            ))
        }
        "updateMessage" => {
            let msg = obj_param(params, 0, m)?;
            let text = |k: &str| {
                msg.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_params(m))
            };
            core.update_message(
                ctx.user()?,
                text("rid")?,
                text("_id")?,
                text("msg")?.to_string(),
                crate::routes::chat::update_extras(msg),
            )
            .await?;
            Ok(Value::Null)
        }
        "deleteMessage" => {
            let id = obj_param(params, 0, m)?
                .get("_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_params(m))?;
            let user = ctx.user()?;
            let (message, _) = core.readable_message(user, id).await?;
            core.delete_message(user, &message.rid, id).await?;
            Ok(json!({"_id": id}))
        }
        "setReaction" => {
            let emoji = str_param(params, 0, m)?;
            let id = str_param(params, 1, m)?;
            let should = params.get(2).and_then(Value::as_bool);
            core.react(ctx.user()?, id, emoji, should).await?;
            Ok(Value::Null)
        }
        "loadHistory" => load_history(core, ctx.user()?, params).await,
        "loadNextMessages" => {
            let rid = str_param(params, 0, m)?;
            let room = core.find_room(&RoomRef::Id(rid.to_string())).await?;
            let query = HistoryQuery {
                oldest: ejson::date(params.get(1)),
                count: limit(params.get(2), 20),
                ascending: true,
                whole_last_millisecond: true,
                ..Default::default()
            };
            let (messages, _) = core.history(ctx.user()?, &room, &query).await?;
            Ok(json!({"messages": messages}))
        }
        "loadSurroundingMessages" => surrounding(core, ctx.user()?, params).await,
        "getThreadMessages" => {
            let p = obj_param(params, 0, m)?;
            let tmid = p
                .get("tmid")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_params(m))?;
            let user = ctx.user()?;
            let (parent, view) = core.readable_message(user, tmid).await?;
            let query = HistoryQuery {
                tmid: Some(parent.id.clone()),
                count: limit(p.get("limit"), 50),
                offset: p.get("skip").and_then(Value::as_i64).unwrap_or(0).max(0),
                include_thread_replies: true,
                ..Default::default()
            };
            let (replies, _) = core.history(user, &view.room, &query).await?;
            let mut all = vec![json!(parent)];
            all.extend(replies.iter().map(|r| json!(r)));
            Ok(Value::Array(all))
        }
        "getRoomByTypeAndName" => {
            let t = str_param(params, 0, m)?;
            let name = str_param(params, 1, m)?;
            let key = match t {
                "d" => RoomRef::Id(name.to_string()),
                _ => RoomRef::Name(name.to_string()),
            };
            let view = core.readable_room(ctx.user()?, &key).await?;
            if view.room.t.code() != t {
                return Err(CoreError::room_not_found());
            }
            Ok(json!(view.room))
        }
        "joinRoom" => {
            let rid = str_param(params, 0, m)?;
            let code = params.get(1).and_then(Value::as_str);
            core.join_room(ctx.user()?, &RoomRef::Id(rid.to_string()), code)
                .await?;
            Ok(json!(true))
        }
        "slashCommand" => {
            let arg = obj_param(params, 0, m)?;
            let text = |k: &str| arg.get(k).and_then(Value::as_str);
            let msg = arg.get("msg").and_then(Value::as_object);
            let command = text("cmd").filter(|c| !c.is_empty()).ok_or_else(|| {
                CoreError::bad("error-invalid-command", "Invalid Command Provided")
            })?;
            let call = CommandCall {
                command: command.to_string(),
                params: text("params").unwrap_or_default().to_string(),
                rid: msg
                    .and_then(|m| m.get("rid"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        CoreError::bad(
                            "invalid-command-usage",
                            "Executing a command requires at least a message with a room id.",
                        )
                    })?
                    .to_string(),
                tmid: msg
                    .and_then(|m| m.get("tmid"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            core.run_command(ctx.user()?, call).await?;
            Ok(Value::Null)
        }
        "getReadReceipts" => {
            let id = obj_param(params, 0, m)?
                .get("messageId")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_params(m))?;
            let receipts = core.message_read_receipts(ctx.user()?, id, None).await?;
            Ok(json!(receipts))
        }
        "muteUserInRoom" | "unmuteUserInRoom" => {
            let arg = obj_param(params, 0, m)?;
            let rid = arg.get("rid").and_then(Value::as_str);
            let username = arg.get("username").and_then(Value::as_str);
            let (Some(rid), Some(username)) = (rid, username) else {
                return Err(bad_params(m));
            };
            let muted = m == "muteUserInRoom";
            core.set_muted(ctx.user()?, rid, None, Some(username), muted)
                .await?;
            Ok(json!(true))
        }
        "leaveRoom" => {
            let rid = str_param(params, 0, m)?;
            core.leave_room(ctx.user()?, &RoomRef::Id(rid.to_string()))
                .await?;
            Ok(json!(true))
        }
        "createDirectMessage" => {
            let names: Vec<String> = params
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            if names.is_empty() {
                return Err(bad_params(m));
            }
            let room = core.create_direct(ctx.user()?, &names).await?;
            let mut v = json!(room);
            v["rid"] = json!(room.id);
            Ok(v)
        }
        "getRoomIdByNameOrId" => {
            let key = str_param(params, 0, m)?;
            let user = ctx.user()?;
            let view = match core
                .readable_room(user, &RoomRef::Id(key.to_string()))
                .await
            {
                Err(e) if e.code == "error-room-not-found" => {
                    core.readable_room(user, &RoomRef::Name(key.to_string()))
                        .await?
                }
                other => other?,
            };
            Ok(json!(view.room.id))
        }
        "getRoomNameById" => {
            let rid = str_param(params, 0, m)?;
            let view = core
                .readable_room(ctx.user()?, &RoomRef::Id(rid.to_string()))
                .await?;
            Ok(json!(view.room.name))
        }
        "rooms/get" => {
            let since = ejson::date(params.first());
            let (rooms, removed) = core.rooms_of(ctx.user()?, since).await?;
            Ok(since_listing(since.is_some(), rooms, removed))
        }
        "subscriptions/get" => {
            let since = ejson::date(params.first());
            let (subs, removed) = core.subscriptions(ctx.user()?, since).await?;
            Ok(since_listing(since.is_some(), subs, removed))
        }
        "saveRoomSettings" => {
            // `(rid, {settings})` or `(rid, name, value)`.
            let rid = str_param(params, 0, m)?;
            let fields = match (params.get(1), params.get(2)) {
                (Some(Value::Object(fields)), _) => fields.clone(),
                (Some(Value::String(name)), value) => {
                    let mut one = Map::new();
                    one.insert(name.clone(), value.cloned().unwrap_or(Value::Null));
                    one
                }
                _ => return Err(bad_params(m)),
            };
            let saved =
                crate::routes::room_settings::save_room_settings(core, ctx.user()?, rid, &fields)
                    .await?;
            Ok(json!({"result": true, "rid": saved["rid"]}))
        }
        "getUsersOfRoom" => users_of_room(core, ctx.user()?, params).await,
        "sendSMTPTestEmail" => {
            let to = core.send_smtp_test_email(ctx.user()?).await?;
            Ok(json!({"message": "Sending_your_mail_to_s", "params": [to]}))
        }
        "getUserRoles" => {
            ctx.user()?;
            let users = core.users_with_public_roles().await?;
            Ok(users
                .into_iter()
                .map(|(u, roles)| json!({"_id": u.id, "username": u.username, "roles": roles}))
                .collect())
        }
        "UserPresence:online" | "UserPresence:away" => {
            let status = m.trim_start_matches("UserPresence:");
            let user_id = ctx.user()?.id.clone();
            match &mut ctx.presence {
                Some(requested) => *requested = Some(status == "away"),
                None => {
                    core.set_connection_status(&user_id, status).await?;
                }
            }
            Ok(json!(true))
        }
        "UserPresence:setDefaultStatus" => {
            let status = str_param(params, 0, m)?;
            core.set_status(ctx.user()?, Some(status), None).await?;
            Ok(json!(true))
        }
        "setUserStatus" => {
            let status = params.first().and_then(Value::as_str);
            let text = params.get(1).and_then(Value::as_str);
            core.set_status(ctx.user()?, status, text).await?;
            Ok(Value::Null)
        }
        "stream-notify-room" => notify_room(core, ctx.user()?, params).await,
        "stream-notify-room-users" => {
            // Only `<rid>/e2ekeyRequest` [rid, keyId] is written by clients.
            let event = str_param(params, 0, m)?;
            match event.split_once('/') {
                Some((rid, "e2ekeyRequest")) => {
                    let key_id = str_param(params, 2, m)?;
                    core.e2e_key_request(ctx.user()?, rid, key_id).await?;
                    Ok(Value::Null)
                }
                _ => Err(CoreError::not_allowed("not-allowed")),
            }
        }
        "e2e.fetchMyKeys" => core.e2e_fetch_my_keys(ctx.user()?).await,
        "e2e.setUserPublicAndPrivateKeys" => {
            let keys = obj_param(params, 0, m)?;
            let text = |k: &str| {
                keys.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_params(m))
            };
            let force = keys.get("force").and_then(Value::as_bool).unwrap_or(false);
            core.e2e_set_user_keys(
                ctx.user()?,
                text("public_key")?,
                text("private_key")?,
                force,
            )
            .await?;
            Ok(Value::Null)
        }
        "e2e.getUsersOfRoomWithoutKey" => {
            core.e2e_users_without_key(ctx.user()?, str_param(params, 0, m)?)
                .await
        }
        "e2e.setRoomKeyID" => {
            let (rid, key_id) = (str_param(params, 0, m)?, str_param(params, 1, m)?);
            core.e2e_set_room_key_id(ctx.user()?, rid, key_id).await?;
            Ok(Value::Null)
        }
        "e2e.updateGroupKey" => {
            let rid = str_param(params, 0, m)?;
            let (uid, key) = (str_param(params, 1, m)?, str_param(params, 2, m)?);
            core.e2e_update_group_key(ctx.user()?, rid, uid, key)
                .await?;
            Ok(Value::Null)
        }
        "e2e.acceptSuggestedGroupKey" => {
            core.e2e_accept_suggested_key(ctx.user()?, str_param(params, 0, m)?)
                .await?;
            Ok(Value::Null)
        }
        "e2e.rejectSuggestedGroupKey" => {
            core.e2e_reject_suggested_key(ctx.user()?, str_param(params, 0, m)?)
                .await?;
            Ok(Value::Null)
        }
        "e2e.requestSubscriptionKeys" => {
            core.e2e_request_subscription_keys(ctx.user()?).await?;
            Ok(Value::Bool(true))
        }
        "e2e.resetOwnE2EKey" => {
            core.e2e_reset_user_keys(ctx.user()?, apogee_core::e2e::ResetTarget::Me)
                .await?;
            Ok(Value::Bool(true))
        }
        "insertOrUpdateSound" => {
            let data = obj_param(params, 0, m)?;
            let text = |k: &str| data.get(k).and_then(Value::as_str);
            let id = text("_id").filter(|i| !i.is_empty());
            let name = text("name").unwrap_or_default();
            let extension = text("extension").unwrap_or_default();
            let id = core
                .save_custom_sound(ctx.user()?, id, name, extension)
                .await?;
            Ok(json!(id))
        }
        "deleteCustomSound" => {
            let id = str_param(params, 0, m)?;
            core.delete_custom_sound(ctx.user()?, id).await?;
            Ok(json!(true))
        }
        _ => Err(CoreError::bad(
            "404",
            format!("Method '{method}' not found"),
        )),
    }
}

/// `login`: `{user, password}` (sha-256 digest or plain), `{resume}`, or either wrapped in
/// `{totp: {login, code}}`.
async fn login(core: &Core, ctx: &mut Ctx, params: &[Value]) -> CoreResult<Value> {
    let mut p = obj_param(params, 0, "login")?;
    let second_factor = p
        .get("totp")
        .and_then(|t| t.get("code"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|code| SecondFactorProof {
            code: code.to_string(),
            method: None,
        });
    if let Some(inner) = p
        .get("totp")
        .and_then(|t| t.get("login"))
        .and_then(Value::as_object)
    {
        p = inner;
    }
    let (credentials, kind) = if let Some(token) = p.get("resume").and_then(Value::as_str) {
        let token = token.to_string();
        (Credentials::Resume { token }, "resume")
    } else {
        let identifier = match p.get("user") {
            Some(Value::String(s)) => Identifier::Either(s.clone()),
            Some(Value::Object(u)) => match (
                u.get("username").and_then(Value::as_str),
                u.get("email").and_then(Value::as_str),
            ) {
                (Some(name), _) => Identifier::Username(name.to_string()),
                (None, Some(email)) => Identifier::Email(email.to_string()),
                _ => return Err(bad_params("login")),
            },
            _ => return Err(CoreError::bad("400", "Match failed")),
        };
        let digest = match p.get("password") {
            Some(Value::String(plain)) => digest(plain),
            Some(Value::Object(d)) => d
                .get("digest")
                .and_then(Value::as_str)
                .ok_or_else(|| CoreError::bad("400", "Match failed"))?
                .to_ascii_lowercase(),
            _ => return Err(CoreError::bad("400", "Match failed")),
        };
        (Credentials::Password { identifier, digest }, "password")
    };
    let done = core
        .login_with_code(credentials, second_factor, &ctx.client())
        .await?;
    Ok(logged_in(core, ctx, done, kind))
}

/// A login's answer: the `users` document first, then `{id, token, tokenExpires, type}`; the
/// connection is logged in from here on.
fn logged_in(core: &Core, ctx: &mut Ctx, done: LoginResult, kind: &str) -> Value {
    let mut fields = render::me(core, &done.user);
    if let Value::Object(map) = &mut fields {
        map.remove("_id");
        map.remove("services");
    }
    ctx.before_result.push(json!({
        "msg": "added", "collection": "users", "id": done.user.id, "fields": fields,
    }));
    let result = json!({
        "id": done.user.id,
        "token": done.token,
        "tokenExpires": done.token_expires,
        "type": kind,
    });
    ctx.session = Some(Session {
        token_hash: hash_token(&done.token),
        user: done.user,
    });
    result
}

/// `resetPassword(token, newPassword)`: the new password plain or as Meteor's
/// `{digest, algorithm}`; logs the connection in on success.
async fn reset_password(core: &Core, ctx: &mut Ctx, params: &[Value]) -> CoreResult<Value> {
    let m = "resetPassword";
    let token = str_param(params, 0, m)?;
    let password = match params.get(1) {
        Some(Value::String(plain)) => NewPassword::Plain(plain),
        Some(Value::Object(d)) => NewPassword::Digest(
            d.get("digest")
                .and_then(Value::as_str)
                .ok_or_else(|| CoreError::bad("400", "Match failed"))?,
        ),
        _ => return Err(CoreError::bad("400", "Match failed")),
    };
    let done = core.reset_password(token, password, &ctx.client()).await?;
    Ok(logged_in(core, ctx, done, "password"))
}

/// `loadHistory(rid, end?, limit = 20, ls?, showThreadMessages = true)`.
async fn load_history(core: &Core, user: &User, params: &[Value]) -> CoreResult<Value> {
    let rid = str_param(params, 0, "loadHistory")?;
    let Ok(room) = core.find_room(&RoomRef::Id(rid.to_string())).await else {
        return Ok(json!(false));
    };
    let end = ejson::date(params.get(1));
    let limit = limit(params.get(2), 20);
    let ls = ejson::date(params.get(3));
    let threads = params.get(4).and_then(Value::as_bool).unwrap_or(true);
    let query = HistoryQuery {
        latest: end,
        count: limit,
        include_thread_replies: threads,
        whole_last_millisecond: true,
        ..Default::default()
    };
    let (messages, _): (Vec<Message>, i64) = core.history(user, &room, &query).await?;
    let mut result = json!({"messages": messages});
    if let Some(ls) = ls {
        let unread: Vec<&Message> = messages.iter().filter(|m| m.ts > ls).collect();
        let after_ls = HistoryQuery {
            oldest: Some(ls),
            latest: end,
            count: 1,
            include_thread_replies: threads,
            with_total: true,
            ..Default::default()
        };
        let (_, total) = core.history(user, &room, &after_ls).await?;
        if let Some(first) = unread.last() {
            result["firstUnread"] = json!(first);
        }
        result["unreadNotLoaded"] = json!((total - unread.len() as i64).max(0));
    }
    Ok(result)
}

/// A page size parameter within `1..=MAX_HISTORY`.
fn limit(v: Option<&Value>, default: i64) -> i64 {
    v.and_then(Value::as_i64)
        .unwrap_or(default)
        .clamp(1, MAX_HISTORY)
}

/// `loadSurroundingMessages({_id}, limit = 50)` → `{messages, moreBefore, moreAfter}`: the older
/// half newest first, the message, then the newer half oldest first (as Rocket.Chat orders them).
/// The halves are keyed by the message's place `(ts, _id)`, so messages sent in its millisecond
/// land in one half or the other; each half ends with a whole millisecond, so the client's next
/// `loadHistory`/`loadNextMessages` from its edge (a timestamp, exclusive) skips nothing.
async fn surrounding(core: &Core, user: &User, params: &[Value]) -> CoreResult<Value> {
    let m = "loadSurroundingMessages";
    let id = obj_param(params, 0, m)?
        .get("_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_params(m))?;
    let limit = limit(params.get(1), 50);
    let (message, view) = core.readable_message(user, id).await?;
    let half_before = (limit + 1) / 2;
    let half_after = limit / 2;
    let before = HistoryQuery {
        before: Some(MessageKey::of(&message)),
        count: half_before,
        whole_last_millisecond: true,
        ..Default::default()
    };
    let (mut messages, _) = core.history(user, &view.room, &before).await?;
    let more_before = messages.len() as i64 >= half_before;
    messages.push(message.clone());
    let mut more_after = false;
    if half_after > 0 {
        let after = HistoryQuery {
            after: Some(MessageKey::of(&message)),
            count: half_after,
            ascending: true,
            whole_last_millisecond: true,
            ..Default::default()
        };
        let (newer, _) = core.history(user, &view.room, &after).await?;
        more_after = newer.len() as i64 >= half_after;
        messages.extend(newer);
    }
    Ok(json!({"messages": messages, "moreBefore": more_before, "moreAfter": more_after}))
}

/// `getUsersOfRoom(rid, showAll, {limit, skip}, filter)` → `{total, records}`.
async fn users_of_room(core: &Core, user: &User, params: &[Value]) -> CoreResult<Value> {
    let rid = str_param(params, 0, "getUsersOfRoom")?;
    let show_all = params.get(1).and_then(Value::as_bool).unwrap_or(false);
    let opts = params.get(2);
    let num = |k: &str| opts.and_then(|o| o.get(k)).and_then(Value::as_i64);
    let page = Page {
        offset: num("skip").unwrap_or(0).max(0),
        count: num("limit").unwrap_or(50).clamp(1, 500),
    };
    let filter = params
        .get(3)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let (subs, total) = core
        .members(user, &RoomRef::Id(rid.to_string()), None, page)
        .await?;
    let ids: Vec<String> = subs.iter().map(|s| s.u.id.clone()).collect();
    let records: Vec<Value> = core
        .users_by_ids(&ids)
        .await?
        .iter()
        .filter(|u| show_all || u.status != "offline")
        .filter(|u| {
            filter.is_empty()
                || u.username.to_lowercase().contains(&filter)
                || u.name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&filter))
        })
        .map(render::member)
        .collect();
    Ok(json!({"total": total, "records": records}))
}

/// Writes on `stream-notify-room`: `["<rid>/user-activity", username, activities, extra]` or
/// the legacy `["<rid>/typing", username, bool]`.
async fn notify_room(core: &Core, user: &User, params: &[Value]) -> CoreResult<Value> {
    let event = str_param(params, 0, "stream-notify-room")?;
    let (rid, name) = event
        .split_once('/')
        .ok_or_else(|| CoreError::not_allowed("not-allowed"))?;
    let username = str_param(params, 1, "stream-notify-room")?;
    let activities = match (name, params.get(2)) {
        ("typing", Some(Value::Bool(typing))) => {
            if *typing {
                vec!["user-typing".to_string()]
            } else {
                vec![]
            }
        }
        ("user-activity", Some(Value::Array(list))) => list
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_params("stream-notify-room"))?,
        _ => return Err(CoreError::not_allowed("not-allowed")),
    };
    core.room_activity(user, rid, username, activities).await?;
    Ok(Value::Null)
}
