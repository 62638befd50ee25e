//! Rocket.Chat's streams over DDP subscriptions. A connection's [`Streams`] holds what it
//! subscribed to and turns committed [`Event`]s into `changed` frames. Who may subscribe to what
//! is asked of core when subscribing; membership for `__my_messages__` and `stream-notify-user`
//! comes from core's list of the user's subscriptions, kept current from the user's own events.

use crate::ddp::hub::{Delivery, Interest};
use apogee_core::Core;
use apogee_core::domain::{Message, RoomType, User};
use apogee_core::error::{CoreError, CoreResult};
use apogee_core::events::Event;
use apogee_core::rooms::RoomRef;
use apogee_domain::user::status_code;
use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// Subscriptions one connection may hold, so a client cannot grow its memory without bound.
const MAX_SUBS: usize = 512;
/// Users one `stream-user-presence` subscription may watch.
const MAX_PRESENCE: usize = 5_000;

#[derive(Debug, Clone, PartialEq)]
enum Stream {
    RoomMessages,
    NotifyUser,
    NotifyRoom,
    NotifyLogged,
    NotifyAll,
    Roles,
    Presence(HashSet<String>),
}

/// Kinds of stream, each a slot of [`Streams`]' index.
const KINDS: usize = 7;

impl Stream {
    /// This stream's slot in the index by stream and event name.
    fn slot(&self) -> usize {
        match self {
            Stream::RoomMessages => 0,
            Stream::NotifyUser => 1,
            Stream::NotifyRoom => 2,
            Stream::NotifyLogged => 3,
            Stream::NotifyAll => 4,
            Stream::Roles => 5,
            Stream::Presence(_) => 6,
        }
    }

    fn collection(&self) -> &'static str {
        match self {
            Stream::RoomMessages => "stream-room-messages",
            Stream::NotifyUser => "stream-notify-user",
            Stream::NotifyRoom => "stream-notify-room",
            Stream::NotifyLogged => "stream-notify-logged",
            Stream::NotifyAll => "stream-notify-all",
            Stream::Roles => "stream-roles",
            Stream::Presence(_) => "stream-user-presence",
        }
    }
}

struct Sub {
    stream: Stream,
    event: String,
}

/// The room facts `__my_messages__` sends along with each message.
struct MyRoom {
    t: RoomType,
    name: String,
}

#[derive(Default)]
pub struct Streams {
    subs: HashMap<String, Sub>,
    /// The subscriptions indexed by stream and event name (how many hold each), so a recipient
    /// finds what it listens to with one lookup instead of comparing every subscription's names
    /// per delivery.
    wanted: [HashMap<String, u32>; KINDS],
    /// The suffixes of `stream-notify-user` events listened to (`notification` of
    /// `<uid>/notification`), so the per-message checks format no names for connections that
    /// do not listen.
    user_suffixes: HashMap<String, u32>,
    my_rooms: HashMap<String, MyRoom>,
    /// What the connection follows changed since [`Streams::interest_if_changed`] answered.
    interest_changed: bool,
}

/// A frame to send: built for this connection, or rendered once for every recipient.
pub enum Frame {
    Own(Value),
    /// Bytes every recipient sends as they are (cloning shares them).
    Shared(Utf8Bytes),
}

/// `{"msg":"changed","collection":…,"id":"id","fields":{"eventName":…,"args":[…]}}`.
fn changed(collection: &str, event: &str, args: Value) -> Value {
    json!({"msg": "changed", "collection": collection, "id": "id", "fields": {"eventName": event, "args": args}})
}

/// A `changed` frame whose args are the same for every recipient of `d` but whose event name is
/// the recipient's own (`<uid>/rooms-changed`): the args are rendered once per delivery under
/// `key`, the few bytes around them per recipient.
fn changed_with_shared_args(
    d: &Delivery,
    key: &str,
    collection: &str,
    event: &str,
    args: impl FnOnce() -> Value,
) -> Frame {
    let args = d.render(key, args);
    let frame = format!(
        r#"{{"msg":"changed","collection":{},"id":"id","fields":{{"eventName":{},"args":{}}}}}"#,
        Value::from(collection),
        Value::from(event),
        args.as_str(),
    );
    Frame::Shared(frame.into())
}

/// A `changed` frame for this connection alone.
fn own(collection: &str, event: &str, args: Value) -> Frame {
    Frame::Own(changed(collection, event, args))
}

fn presence_frame(user: &User) -> Value {
    let code = status_code(&user.status).unwrap_or(0);
    json!({"msg": "changed", "collection": "stream-user-presence", "id": user.id, "fields": {
        "uid": user.id, "eventName": user.id,
        "args": [[user.username, code, user.status_text]],
    }})
}

/// Counts one holder of `key` less, dropping the key with its last holder.
fn forget(counts: &mut HashMap<String, u32>, key: &str) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

fn not_found(name: &str) -> CoreError {
    CoreError::bad("404", format!("Subscription '{name}' not found"))
}

impl Streams {
    /// Forgets every subscription (on logout or a login as someone else) and loads the rooms of
    /// the newly logged-in user.
    pub async fn reset(&mut self, core: &Core, user: Option<&User>) -> CoreResult<()> {
        self.clear_subs();
        self.my_rooms.clear();
        self.interest_changed = true;
        if let Some(user) = user {
            let (subs, _) = core.subscriptions(user, None).await?;
            self.my_rooms = subs
                .into_iter()
                .map(|s| {
                    let room = MyRoom {
                        t: s.t,
                        name: s.name,
                    };
                    (s.rid, room)
                })
                .collect();
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// What this connection needs to hear about (memberships, room streams, watched users),
    /// when that changed since the last call.
    pub fn interest_if_changed(&mut self) -> Option<Interest> {
        if !std::mem::take(&mut self.interest_changed) {
            return None;
        }
        let mut interest = Interest {
            rooms: self.my_rooms.keys().cloned().collect(),
            ..Interest::default()
        };
        for sub in self.subs.values() {
            match &sub.stream {
                Stream::RoomMessages if sub.event != "__my_messages__" => {
                    interest.rooms.insert(sub.event.clone());
                }
                Stream::NotifyRoom => {
                    if let Some((rid, _)) = sub.event.split_once('/') {
                        interest.rooms.insert(rid.to_string());
                    }
                }
                Stream::NotifyLogged if sub.event == "user-status" => interest.all_users = true,
                Stream::Presence(ids) => interest.users.extend(ids.iter().cloned()),
                _ => {}
            }
        }
        Some(interest)
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// `sub`: checks the read rule and registers; returns frames to send after `ready`.
    pub async fn subscribe(
        &mut self,
        core: &Core,
        user: Option<&User>,
        id: &str,
        name: &str,
        params: &[Value],
    ) -> CoreResult<Vec<Value>> {
        if self.subs.len() >= MAX_SUBS {
            return Err(CoreError::bad(
                "too-many-requests",
                "Too many subscriptions",
            ));
        }
        let event = params
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let logged = || user.ok_or_else(|| CoreError::not_allowed("not-allowed"));
        let mut initial = Vec::new();
        let stream = match name {
            "stream-room-messages" => {
                let user = logged()?;
                if event != "__my_messages__" {
                    core.stream_room(user, &event).await?;
                }
                Stream::RoomMessages
            }
            "stream-notify-user" => {
                let user = logged()?;
                match event.split_once('/') {
                    Some((uid, _)) if uid == user.id => Stream::NotifyUser,
                    _ => return Err(CoreError::not_allowed("not-allowed")),
                }
            }
            "stream-notify-room" => {
                let user = logged()?;
                let (rid, _) = event
                    .split_once('/')
                    .ok_or_else(|| CoreError::not_allowed("not-allowed"))?;
                core.stream_room(user, rid).await?;
                Stream::NotifyRoom
            }
            "stream-notify-logged" => {
                logged()?;
                Stream::NotifyLogged
            }
            "stream-notify-all" => Stream::NotifyAll,
            "stream-roles" => {
                logged()?;
                Stream::Roles
            }
            "stream-user-presence" => {
                logged()?;
                let added: Vec<String> = params
                    .get(1)
                    .and_then(|o| o.get("added"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .take(MAX_PRESENCE)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                initial = core
                    .users_by_ids(&added)
                    .await?
                    .iter()
                    .map(presence_frame)
                    .collect();
                Stream::Presence(added.into_iter().collect())
            }
            _ => return Err(not_found(name)),
        };
        self.interest_changed |= matches!(
            stream,
            Stream::RoomMessages | Stream::NotifyRoom | Stream::NotifyLogged | Stream::Presence(_)
        );
        self.insert_sub(id, Sub { stream, event });
        Ok(initial)
    }

    /// `unsub`: true if there was such a subscription.
    pub fn unsubscribe(&mut self, id: &str) -> bool {
        self.interest_changed = true;
        self.remove_sub(id)
    }

    fn insert_sub(&mut self, id: &str, sub: Sub) {
        self.remove_sub(id);
        *self.wanted[sub.stream.slot()]
            .entry(sub.event.clone())
            .or_default() += 1;
        if let (Stream::NotifyUser, Some((_, suffix))) = (&sub.stream, sub.event.split_once('/')) {
            *self.user_suffixes.entry(suffix.to_string()).or_default() += 1;
        }
        self.subs.insert(id.to_string(), sub);
    }

    fn remove_sub(&mut self, id: &str) -> bool {
        let Some(sub) = self.subs.remove(id) else {
            return false;
        };
        forget(&mut self.wanted[sub.stream.slot()], &sub.event);
        if let (Stream::NotifyUser, Some((_, suffix))) = (&sub.stream, sub.event.split_once('/')) {
            forget(&mut self.user_suffixes, suffix);
        }
        true
    }

    fn clear_subs(&mut self) {
        self.subs.clear();
        self.wanted.iter_mut().for_each(HashMap::clear);
        self.user_suffixes.clear();
    }

    /// `stream-notify-user` `<uid>/force_logout`, when subscribed: sent to a connection whose
    /// session was ended (revoked, logged out elsewhere, password changed) before it closes.
    pub fn force_logout_frame(&self, user_id: &str) -> Option<Frame> {
        let name = format!("{user_id}/force_logout");
        self.wants(&Stream::NotifyUser, &name)
            .then(|| own("stream-notify-user", &name, json!([])))
    }

    fn wants(&self, stream: &Stream, event: &str) -> bool {
        self.wanted[stream.slot()].contains_key(event)
    }

    /// Whether the connection listens to `stream-notify-user` `<uid>/<suffix>`; the name is
    /// formatted only for connections listening to some `<…>/<suffix>` (this runs for every
    /// recipient of every message).
    fn wants_own(&self, uid: &str, suffix: &str) -> bool {
        self.user_suffixes.contains_key(suffix)
            && self.wants(&Stream::NotifyUser, &format!("{uid}/{suffix}"))
    }

    /// Adds the frames one event produces for this connection's user to `out`, and returns the
    /// ids of subscriptions ended because the user lost access (to be answered with `nosub`).
    pub async fn on_event(
        &mut self,
        core: &Core,
        me: &User,
        d: &Delivery,
        out: &mut Vec<Frame>,
    ) -> Vec<String> {
        let mut ended = Vec::new();
        match &*d.event {
            Event::Message { message, created } => {
                let rid = message.rid.as_str();
                if self.wants(&Stream::RoomMessages, rid) {
                    out.push(Frame::Shared(d.render_room_messages(|| {
                        changed("stream-room-messages", rid, json!([message]))
                    })));
                }
                if let Some(room) = self.my_rooms.get(rid)
                    && self.wants(&Stream::RoomMessages, "__my_messages__")
                {
                    let (t, name) = (room.t.code(), room.name.as_str());
                    let key = format!("__my_messages__/{t}/{name}");
                    out.push(Frame::Shared(d.render(&key, || {
                        let extra =
                            json!({"roomParticipant": true, "roomType": t, "roomName": name});
                        changed(
                            "stream-room-messages",
                            "__my_messages__",
                            json!([message, extra]),
                        )
                    })));
                }
                if *created && self.my_rooms.contains_key(rid) {
                    self.notify(me, message, out);
                    self.room_touched(core, me, d, rid, message.u.id != me.id, out)
                        .await;
                }
            }
            Event::MessageDeleted { rid, id } => {
                let name = format!("{rid}/deleteMessage");
                if self.wants(&Stream::NotifyRoom, &name) {
                    out.push(own("stream-notify-room", &name, json!([{"_id": id}])));
                }
            }
            Event::MessagesDeleted { rid, ids } => {
                let name = format!("{rid}/deleteMessageBulk");
                if self.wants(&Stream::NotifyRoom, &name) {
                    let bulk = json!({"rid": rid, "excludePinned": false, "ignoreDiscussion": false, "ts": {}, "users": [], "ids": ids});
                    out.push(Frame::Shared(d.render(&name, || {
                        changed("stream-notify-room", &name, json!([bulk]))
                    })));
                }
            }
            Event::MessagesRead { rid, until } => {
                let name = format!("{rid}/messagesRead");
                if self.wants(&Stream::NotifyRoom, &name) {
                    out.push(own("stream-notify-room", &name, json!([{"until": until}])));
                }
            }
            Event::Activity {
                rid,
                username,
                activities,
            } if *username != me.username => {
                let name = format!("{rid}/user-activity");
                if self.wants(&Stream::NotifyRoom, &name) {
                    out.push(own(
                        "stream-notify-room",
                        &name,
                        json!([username, activities, {}]),
                    ));
                }
                let name = format!("{rid}/typing");
                if self.wants(&Stream::NotifyRoom, &name) {
                    let typing = activities.iter().any(|a| a == "user-typing");
                    out.push(own("stream-notify-room", &name, json!([username, typing])));
                }
            }
            Event::Activity { .. } => {}
            Event::E2eKeyRequest { rid, key_id, from } => {
                let name = format!("{rid}/e2e.keyRequest");
                if self.wants(&Stream::NotifyRoom, &name) {
                    out.push(own("stream-notify-room", &name, json!([key_id])));
                }
                let name = format!("{}/e2ekeyRequest", me.id);
                if self.my_rooms.contains_key(rid)
                    && from.as_deref() != Some(me.id.as_str())
                    && self.wants(&Stream::NotifyUser, &name)
                {
                    out.push(own("stream-notify-user", &name, json!([rid, key_id])));
                }
            }
            Event::Ephemeral { user_id, message } if *user_id == me.id => {
                let name = format!("{}/message", me.id);
                if self.wants(&Stream::NotifyUser, &name) {
                    out.push(own("stream-notify-user", &name, json!([message])));
                }
            }
            Event::Ephemeral { .. } => {}
            Event::Subscription {
                user_id,
                rid,
                removed,
            } if *user_id == me.id => {
                self.own_subscription(core, me, rid, *removed, out, &mut ended)
                    .await;
            }
            Event::Subscription { .. } => {}
            Event::Room { rid, removed } if self.my_rooms.contains_key(rid) => {
                let name = format!("{}/rooms-changed", me.id);
                if *removed {
                    self.my_rooms.remove(rid);
                    self.interest_changed = true;
                    if self.wants(&Stream::NotifyUser, &name) {
                        out.push(own(
                            "stream-notify-user",
                            &name,
                            json!(["removed", {"_id": rid}]),
                        ));
                    }
                } else if let Some(room) = d.room(core, rid).await {
                    if let (Some(mine), Some(n)) = (self.my_rooms.get_mut(rid), &room.name) {
                        mine.name = n.clone();
                    }
                    if self.wants(&Stream::NotifyUser, &name) {
                        out.push(own("stream-notify-user", &name, json!(["updated", room])));
                    }
                }
            }
            Event::Room { .. } => {}
            Event::User { user } => self.user_changed(me, user, d, out),
            Event::Role { role, removed } => {
                if self.wants(&Stream::Roles, "roles") {
                    let kind = if *removed { "removed" } else { "changed" };
                    out.push(Frame::Shared(d.render("roles", || {
                        let mut role = json!(role);
                        role["type"] = json!(kind);
                        changed("stream-roles", "roles", json!([role]))
                    })));
                }
            }
            Event::UserRole {
                role_id,
                user_id,
                username,
                scope,
                added,
            } => {
                if self.wants(&Stream::Roles, "roles") {
                    out.push(Frame::Shared(d.render("roles", || {
                        let mut update = json!({
                            "type": if *added { "added" } else { "removed" },
                            "_id": role_id,
                            "u": {"_id": user_id, "username": username},
                        });
                        if let Some(rid) = scope {
                            update["scope"] = json!(rid);
                        }
                        changed("stream-roles", "roles", json!([update]))
                    })));
                }
            }
            Event::Setting { .. } => out.extend(self.public_event(d)),
            Event::Permission { id, roles } => {
                let name = "permissions-changed";
                if self.wants(&Stream::NotifyLogged, name) {
                    out.push(Frame::Shared(d.render(name, || {
                        let permission = json!({"_id": id, "roles": roles});
                        changed("stream-notify-logged", name, json!(["updated", permission]))
                    })));
                }
            }
            Event::Logged { name, args } => {
                if self.wants(&Stream::NotifyLogged, name) {
                    out.push(Frame::Shared(d.render(name, || {
                        changed("stream-notify-logged", name, args.clone())
                    })));
                }
            }
            Event::Avatar {
                username,
                rid,
                etag,
            } => {
                let name = "updateAvatar";
                if self.wants(&Stream::NotifyLogged, name) {
                    out.push(Frame::Shared(d.render(name, || {
                        // `{username, etag}` or `{rid, etag}`; no `etag` after a reset.
                        let mut update = serde_json::Map::new();
                        if let Some(username) = username {
                            update.insert("username".into(), json!(username));
                        }
                        if let Some(rid) = rid {
                            update.insert("rid".into(), json!(rid));
                        }
                        if let Some(etag) = etag {
                            update.insert("etag".into(), json!(etag));
                        }
                        changed("stream-notify-logged", name, json!([update]))
                    })));
                }
            }
            Event::E2eRecoveryRequest {
                officer_id,
                request_id,
                user_id,
                username,
                restore_key_sha256,
            } if *officer_id == me.id => {
                let name = format!("{}/e2e.recoveryRequest", me.id);
                if self.wants(&Stream::NotifyUser, &name) {
                    let notice = json!({
                        "requestId": request_id,
                        "user": {"_id": user_id, "username": username},
                        "restoreKeyFingerprint": restore_key_sha256,
                    });
                    out.push(own("stream-notify-user", &name, json!([notice])));
                }
            }
            Event::E2eRecoveryRequest { .. } => {}
            // The connection sends `force_logout` itself (`force_logout_frame`): only it knows
            // whether the ended session is its own.
            Event::SessionsEnded { .. } => {}
            // For the nodes' caches only.
            Event::Integrations => {}
        }
        ended
    }

    /// What an event shows to anyone, logged in or not: `public-settings-changed`.
    pub fn public_event(&self, d: &Delivery) -> Option<Frame> {
        let Event::Setting {
            id,
            value,
            public: true,
        } = &*d.event
        else {
            return None;
        };
        let name = "public-settings-changed";
        self.wants(&Stream::NotifyAll, name).then(|| {
            Frame::Shared(d.render(name, || {
                let setting = json!({"_id": id, "value": value});
                changed("stream-notify-all", name, json!(["updated", setting]))
            }))
        })
    }

    /// A profile or presence change: the user's own `userData`, `user-status` for everyone
    /// listening, and presence watchers.
    fn user_changed(&self, me: &User, user: &User, d: &Delivery, out: &mut Vec<Frame>) {
        let user_data = format!("{}/userData", me.id);
        if user.id == me.id && self.wants(&Stream::NotifyUser, &user_data) {
            let mut diff = json!(user);
            if let Value::Object(d) = &mut diff {
                d.remove("_id");
            }
            out.push(own(
                "stream-notify-user",
                &user_data,
                json!([{"type": "updated", "diff": diff, "unset": {}}]),
            ));
        }
        if self.wants(&Stream::NotifyLogged, "user-status") {
            out.push(Frame::Shared(d.render("user-status", || {
                let code = status_code(&user.status).unwrap_or(0);
                let args = json!([[
                    user.id,
                    user.username,
                    code,
                    user.status_text,
                    user.name,
                    user.roles
                ]]);
                changed("stream-notify-logged", "user-status", args)
            })));
        }
        let watched = self
            .subs
            .values()
            .any(|s| matches!(&s.stream, Stream::Presence(ids) if ids.contains(&user.id)));
        if watched {
            out.push(Frame::Shared(d.render("presence", || presence_frame(user))));
        }
    }

    /// `<uid>/notification` for a new message in a direct room or one that mentions the user
    /// (or `@all`/`@here`), from someone else.
    fn notify(&self, me: &User, message: &Message, out: &mut Vec<Frame>) {
        let Some(room) = self.my_rooms.get(&message.rid) else {
            return;
        };
        let direct = room.t == RoomType::Direct;
        let mentioned = message
            .mentions
            .iter()
            .any(|m| m.id == me.id || m.id == "all" || m.id == "here");
        // Most recipients stop here, before any stream name is formatted.
        if message.u.id == me.id || message.t.is_some() || !(direct || mentioned) {
            return;
        }
        if !self.wants_own(&me.id, "notification") {
            return;
        }
        let event = format!("{}/notification", me.id);
        let sender = &message.u.username;
        let (title, text) = if direct {
            (format!("@{sender}"), message.msg.clone())
        } else {
            (
                format!("#{}", room.name),
                format!("{sender}: {}", message.msg),
            )
        };
        let payload = json!({
            "_id": message.id, "rid": message.rid, "tmid": message.tmid, "sender": message.u,
            "type": room.t.code(), "name": room.name, "message": {"msg": message.msg},
        });
        out.push(own(
            "stream-notify-user",
            &event,
            json!([{"title": title, "text": text, "duration": 0, "payload": payload}]),
        ));
    }

    /// A new message in one of the user's rooms: the room's `lastMessage` and (for others'
    /// messages) the user's unread counts changed, though nothing per member was written. The
    /// room and the members' subscriptions are read once for all recipients on this node.
    async fn room_touched(
        &self,
        core: &Core,
        me: &User,
        d: &Delivery,
        rid: &str,
        unread_changed: bool,
        out: &mut Vec<Frame>,
    ) {
        if unread_changed
            && self.wants_own(&me.id, "subscriptions-changed")
            && let Some(sub) = d.subscription(core, rid, &me.id).await
        {
            let subs_changed = format!("{}/subscriptions-changed", me.id);
            out.push(own(
                "stream-notify-user",
                &subs_changed,
                json!(["updated", sub]),
            ));
        }
        if self.wants_own(&me.id, "rooms-changed")
            && let Some(room) = d.room(core, rid).await
        {
            let rooms_changed = format!("{}/rooms-changed", me.id);
            out.push(changed_with_shared_args(
                d,
                "rooms-changed",
                "stream-notify-user",
                &rooms_changed,
                || json!(["updated", room]),
            ));
        }
    }

    /// The user's own subscription to `rid` changed: keep `my_rooms` current, tell
    /// `subscriptions-changed` / `rooms-changed`, and end room streams they can no longer read.
    async fn own_subscription(
        &mut self,
        core: &Core,
        me: &User,
        rid: &str,
        removed: bool,
        out: &mut Vec<Frame>,
        ended: &mut Vec<String>,
    ) {
        let subs_changed = format!("{}/subscriptions-changed", me.id);
        let rooms_changed = format!("{}/rooms-changed", me.id);
        let current = if removed {
            None
        } else {
            core.subscription(me, rid).await.ok().flatten()
        };
        match current {
            Some(sub) => {
                let inserted = !self.my_rooms.contains_key(rid);
                self.interest_changed |= inserted;
                let action = if inserted { "inserted" } else { "updated" };
                self.my_rooms.insert(
                    rid.to_string(),
                    MyRoom {
                        t: sub.t,
                        name: sub.name.clone(),
                    },
                );
                if self.wants(&Stream::NotifyUser, &subs_changed) {
                    out.push(own(
                        "stream-notify-user",
                        &subs_changed,
                        json!([action, sub]),
                    ));
                }
                if inserted
                    && self.wants(&Stream::NotifyUser, &rooms_changed)
                    && let Ok(room) = core.find_room(&RoomRef::Id(rid.to_string())).await
                {
                    out.push(own(
                        "stream-notify-user",
                        &rooms_changed,
                        json!(["inserted", room]),
                    ));
                }
            }
            None => {
                let Some(room) = self.my_rooms.remove(rid) else {
                    return;
                };
                self.interest_changed = true;
                if self.wants(&Stream::NotifyUser, &subs_changed) {
                    let gone = json!({"rid": rid, "u": {"_id": me.id}, "t": room.t.code()});
                    out.push(own(
                        "stream-notify-user",
                        &subs_changed,
                        json!(["removed", gone]),
                    ));
                }
                if self.wants(&Stream::NotifyUser, &rooms_changed) {
                    out.push(own(
                        "stream-notify-user",
                        &rooms_changed,
                        json!(["removed", {"_id": rid}]),
                    ));
                }
                let prefix = format!("{rid}/");
                let room_subs: Vec<String> = self
                    .subs
                    .iter()
                    .filter(|(_, s)| {
                        (s.stream == Stream::RoomMessages && s.event == rid)
                            || (s.stream == Stream::NotifyRoom && s.event.starts_with(&prefix))
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                if !room_subs.is_empty() && core.stream_room(me, rid).await.is_err() {
                    for id in room_subs {
                        self.remove_sub(&id);
                        ended.push(id);
                    }
                }
            }
        }
    }

    /// The collection a subscription id belongs to (for logging and tests).
    pub fn collection_of(&self, id: &str) -> Option<&'static str> {
        self.subs.get(id).map(|s| s.stream.collection())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(stream: Stream, event: &str) -> Sub {
        Sub {
            stream,
            event: event.into(),
        }
    }

    #[test]
    fn the_index_follows_subscribing_and_unsubscribing() {
        let mut s = Streams::default();
        s.insert_sub("1", sub(Stream::RoomMessages, "r1"));
        s.insert_sub("2", sub(Stream::RoomMessages, "r1"));
        s.insert_sub("3", sub(Stream::NotifyUser, "u1/notification"));
        assert!(s.wants(&Stream::RoomMessages, "r1"));
        assert!(!s.wants(&Stream::NotifyRoom, "r1"), "another stream");
        assert!(s.wants_own("u1", "notification"));
        assert!(!s.wants_own("u2", "notification"), "someone else's name");
        assert!(!s.wants_own("u1", "rooms-changed"));

        assert!(s.unsubscribe("1"));
        assert!(s.wants(&Stream::RoomMessages, "r1"), "still held by 2");
        assert!(s.unsubscribe("2"));
        assert!(!s.wants(&Stream::RoomMessages, "r1"));
        assert!(!s.unsubscribe("2"));

        // The same id subscribed again replaces what it held.
        s.insert_sub("3", sub(Stream::NotifyUser, "u1/rooms-changed"));
        assert!(!s.wants_own("u1", "notification"));
        assert!(s.wants_own("u1", "rooms-changed"));
        s.clear_subs();
        assert!(!s.wants_own("u1", "rooms-changed"));
        assert!(s.wanted.iter().all(HashMap::is_empty) && s.user_suffixes.is_empty());
    }
}
