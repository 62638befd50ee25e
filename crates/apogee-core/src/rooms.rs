//! Rooms and memberships: channels, private groups and direct messages; joining, leaving,
//! inviting and kicking; subscriptions and read state; room settings and room roles.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::store::{Change, Page, RoomQuery, Tombstone};
use apogee_domain::permissions::ROOM_ROLES;
use apogee_domain::room::is_valid_room_name;
use apogee_domain::{
    Message, Room, RoomType, Subscription, Timestamp, User, dm_room_id, random_id,
};
use serde_json::Value;

/// How a request names a room.
#[derive(Debug, Clone)]
pub enum RoomRef {
    Id(String),
    Name(String),
}

/// A new channel or group.
#[derive(Debug, Clone, Default)]
pub struct NewRoom {
    pub name: String,
    pub members: Vec<String>,
    pub read_only: bool,
    pub extra: serde_json::Map<String, Value>,
}

/// Changes to a room's settings; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct RoomSettings {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub announcement: Option<String>,
    pub description: Option<String>,
    pub read_only: Option<bool>,
    pub room_type: Option<RoomType>,
    pub default: Option<bool>,
    pub join_code: Option<String>,
    pub custom_fields: Option<Value>,
    pub encrypted: Option<bool>,
    /// A new room avatar, or back to the initials (`edit-room-avatar`).
    pub avatar: Option<crate::avatars::RoomAvatar>,
}

/// A room as one user sees it: the room and their subscription, if any.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub room: Room,
    pub sub: Option<Subscription>,
}

impl Core {
    /// Finds a room by id or name.
    pub async fn find_room(&self, room: &RoomRef) -> CoreResult<Room> {
        let found = match room {
            RoomRef::Id(id) => self.store.room_by_id(id).await?,
            RoomRef::Name(name) => {
                self.store
                    .room_by_name(name.trim_start_matches('#'))
                    .await?
            }
        };
        found.ok_or_else(CoreError::room_not_found)
    }

    /// A room the actor may read, with their subscription.
    pub async fn readable_room(&self, actor: &User, room: &RoomRef) -> CoreResult<RoomView> {
        let room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        if !self.authz.can_read_room(actor, &room, sub.as_ref()) {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        Ok(RoomView { room, sub })
    }

    /// A room of the expected kind (`channels.*` only see channels, `groups.*` only groups).
    pub async fn readable_room_of(
        &self,
        actor: &User,
        room: &RoomRef,
        t: RoomType,
    ) -> CoreResult<RoomView> {
        let view = self.readable_room(actor, room).await;
        match view {
            Ok(v) if v.room.t == t => Ok(v),
            Ok(_) | Err(_) if t == RoomType::Group => Err(CoreError::bad(
                "error-room-not-found",
                "The required \"roomId\" or \"roomName\" param provided does not match any group",
            )),
            Ok(_) => Err(CoreError::room_not_found()),
            Err(e) => Err(e),
        }
    }

    /// `channels.create` / `groups.create`.
    pub async fn create_room(&self, actor: &User, t: RoomType, new: NewRoom) -> CoreResult<Room> {
        let permission = if t == RoomType::Channel {
            "create-c"
        } else {
            "create-p"
        };
        self.authz.require(actor, permission, None)?;
        let name = new.name.trim().to_string();
        if !is_valid_room_name(&name) {
            return Err(CoreError::bad(
                "error-invalid-room-name",
                format!("{name} is not a valid room name"),
            )
            .with_details(serde_json::json!({"channel_name": name})));
        }
        if self.store.room_by_name(&name).await?.is_some() {
            return Err(CoreError::bad(
                "error-duplicate-channel-name",
                format!("A channel with name '{name}' exists"),
            )
            .with_details(serde_json::json!({"channel_name": name})));
        }
        let mut room = Room::new(random_id(), t, Some(name), Some(actor.as_ref()));
        room.ro = new.read_only;
        room.extra = new.extra;
        if t == RoomType::Group && self.e2e_default_on("E2E_Enabled_Default_PrivateRooms") {
            room.extra.entry("encrypted").or_insert(Value::Bool(true));
        }
        let mut members = vec![actor.clone()];
        for username in &new.members {
            let user = self
                .store
                .user_by_username(username)
                .await?
                .ok_or_else(CoreError::invalid_user)?;
            if !members.iter().any(|m| m.id == user.id) {
                members.push(user);
            }
        }
        room.users_count = members.len() as i64;
        // Rocket.Chat's create option `federated: true`: the room gets its Matrix side now.
        let federation = if room.extra.get("federated") == Some(&Value::Bool(true)) {
            Some(self.federate_new_room(actor, &mut room, &members)?)
        } else {
            room.extra.remove("federated");
            None
        };
        let mut changes = vec![Change::InsertRoom(room.clone())];
        changes.extend(federation.into_iter().flatten());
        for member in &members {
            let mut sub = self.new_subscription(&room, member);
            if member.id == actor.id {
                sub.roles = vec!["owner".into()];
            }
            changes.push(Change::InsertSubscription(sub));
        }
        self.commit(changes).await?;
        Ok(room)
    }

    pub(crate) fn new_subscription(&self, room: &Room, user: &User) -> Subscription {
        let (name, fname) = match room.t {
            RoomType::Direct => {
                let other = room
                    .usernames
                    .iter()
                    .find(|u| **u != user.username)
                    .unwrap_or(&user.username);
                (other.clone(), Some(other.clone()))
            }
            _ => (room.name.clone().unwrap_or_default(), room.fname.clone()),
        };
        let mut sub = Subscription::new(&room.id, room.t, name, fname, user.as_ref(), room.seq);
        sub.prid = room.prid.clone();
        sub
    }

    /// The changes that make `user` a member of `room` (which is updated in place), with the
    /// join system message: `uj` for a self-join, `au` when `inviter` added them.
    pub(crate) fn join_changes(
        &self,
        mut room: Room,
        user: &User,
        inviter: Option<&User>,
        announce: bool,
    ) -> Vec<Change> {
        room.users_count += 1;
        room.updated_at = Timestamp::now();
        let mut changes = vec![Change::InsertSubscription(
            self.new_subscription(&room, user),
        )];
        changes.push(Change::UpdateRoom(room.clone()));
        if announce && !room.is_direct() {
            let msg = match inviter {
                Some(by) => Message::system(&room.id, "au", user.username.clone(), by.as_ref()),
                None => Message::system(&room.id, "uj", user.username.clone(), user.as_ref()),
            };
            changes.push(Change::AppendMessage {
                message: msg,
                mentioned_user_ids: vec![],
                mentions_all: false,
            });
        }
        changes
    }

    /// `channels.join`: joins a public channel.
    pub async fn join_room(
        &self,
        actor: &User,
        room: &RoomRef,
        join_code: Option<&str>,
    ) -> CoreResult<Room> {
        let view = self.readable_room(actor, room).await?;
        if view.sub.is_some() {
            return Ok(view.room);
        }
        if view.room.t != RoomType::Channel {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        if let Some(code) = view
            .room
            .extra
            .get("joinCode")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            && join_code != Some(code)
            && !self.authz.has(actor, "join-without-join-code")
        {
            return Err(CoreError::bad(
                "error-code-invalid",
                "Invalid Room Password",
            ));
        }
        let rid = view.room.id.clone();
        let key_request = self.e2e_key_request_on_join(&view.room, &actor.id);
        let mut changes = self.join_changes(view.room, actor, None, true);
        changes.extend(
            self.federated_local_joins(&rid, actor, std::slice::from_ref(actor))
                .await?,
        );
        self.commit(changes).await?;
        if let Some(e) = key_request {
            self.publish(e);
        }
        self.find_room(&RoomRef::Id(rid)).await
    }

    /// `channels.invite` / `groups.invite`: adds another user to a room.
    pub async fn invite(&self, actor: &User, room: &RoomRef, invitee: &User) -> CoreResult<Room> {
        // A remote user joins through their server: they get a Matrix invite.
        if invitee
            .roles
            .iter()
            .any(|r| r == crate::federated_rooms::FEDERATED_ROLE)
        {
            let room = self.find_room(room).await?;
            return self
                .invite_remote_user(actor, &room.id, &invitee.username)
                .await;
        }
        self.add_users(actor, room, std::slice::from_ref(invitee))
            .await
    }

    /// Adds users to a room in one batch (`addUsersToRoom`): the actor needs
    /// `add-user-to-joined-room` as a member, or `add-user-to-any-c-room` / `-p-room`. Users
    /// already in the room are skipped.
    pub async fn add_users(
        &self,
        actor: &User,
        room: &RoomRef,
        invitees: &[User],
    ) -> CoreResult<Room> {
        let mut room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        let allowed = (sub.is_some()
            && self
                .authz
                .has_in(actor, "add-user-to-joined-room", sub.as_ref()))
            || (room.t == RoomType::Channel && self.authz.has(actor, "add-user-to-any-c-room"))
            || (room.t == RoomType::Group && self.authz.has(actor, "add-user-to-any-p-room"));
        if room.is_direct() || !allowed {
            return Err(CoreError::unauthorized());
        }
        let members = self.every_subscription(&room.id).await?;
        let mut changes = Vec::new();
        let mut key_requests = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let is_remote = |u: &User| {
            u.roles
                .iter()
                .any(|r| r == crate::federated_rooms::FEDERATED_ROLE)
        };
        for invitee in invitees {
            if members.iter().any(|m| m.u.id == invitee.id) || !seen.insert(&invitee.id) {
                continue;
            }
            // Remote users are invited over federation below; they join through their server.
            if is_remote(invitee) {
                continue;
            }
            key_requests.extend(self.e2e_key_request_on_join(&room, &invitee.id));
            changes.extend(self.join_changes(room.clone(), invitee, Some(actor), true));
            room.users_count += 1;
        }
        let rid = room.id.clone();
        if !changes.is_empty() {
            let added: Vec<User> = invitees
                .iter()
                .filter(|u| !members.iter().any(|m| m.u.id == u.id) && !is_remote(u))
                .cloned()
                .collect();
            changes.extend(self.federated_local_joins(&rid, actor, &added).await?);
            self.commit(changes).await?;
        }
        for remote in invitees.iter().filter(|u| is_remote(u)) {
            if !members.iter().any(|m| m.u.id == remote.id) {
                self.invite_remote_user(actor, &rid, &remote.username)
                    .await?;
            }
        }
        for e in key_requests {
            self.publish(e);
        }
        self.find_room(&RoomRef::Id(rid)).await
    }

    /// `muteUserInRoom` / `unmuteUserInRoom` (`rooms.muteUser` / `rooms.unmuteUser`): muted
    /// members of a channel or group cannot send messages. Needs `mute-user` in the room.
    pub async fn set_muted(
        &self,
        actor: &User,
        rid: &str,
        user_id: Option<&str>,
        username: Option<&str>,
        muted: bool,
    ) -> CoreResult<Room> {
        let sub = self.store.subscription(rid, &actor.id).await?;
        if !self.authz.has_in(actor, "mute-user", sub.as_ref()) {
            let what = if muted { "Mute" } else { "Unmute" };
            return Err(CoreError::bad(
                "error-action-not-allowed",
                format!("{what} user is not allowed"),
            ));
        }
        let mut room = self
            .store
            .room_by_id(rid)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-room", "Invalid room"))?;
        if room.is_direct() {
            return Err(CoreError::bad(
                "error-invalid-room-type",
                format!("{} is not a valid room type", room.t.code()),
            ));
        }
        let target = match (user_id, username) {
            (Some(id), _) => self.store.user_by_id(id).await?,
            (None, Some(name)) => self.store.user_by_username(name).await?,
            (None, None) => None,
        };
        let target = target.ok_or_else(CoreError::invalid_user)?;
        if self.store.subscription(rid, &target.id).await?.is_none() {
            return Err(CoreError::bad(
                "error-user-not-in-room",
                "User is not in this room",
            ));
        }
        let present = room.muted.contains(&target.username);
        if present == muted {
            return Ok(room);
        }
        if muted {
            room.muted.push(target.username.clone());
        } else {
            room.muted.retain(|u| *u != target.username);
        }
        room.updated_at = Timestamp::now();
        let t = if muted { "user-muted" } else { "user-unmuted" };
        let msg = Message::system(&room.id, t, target.username.clone(), actor.as_ref());
        self.commit(vec![
            Change::UpdateRoom(room.clone()),
            Change::AppendMessage {
                message: msg,
                mentioned_user_ids: vec![],
                mentions_all: false,
            },
        ])
        .await?;
        self.find_room(&RoomRef::Id(room.id)).await
    }

    /// `channels.leave` / `groups.leave` / `rooms.leave`.
    pub async fn leave_room(&self, actor: &User, room: &RoomRef) -> CoreResult<Room> {
        let room = self.find_room(room).await?;
        let sub = self
            .store
            .subscription(&room.id, &actor.id)
            .await?
            .ok_or_else(|| CoreError::bad("error-user-not-in-room", "You are not in this room"))?;
        let permission = match room.t {
            RoomType::Channel => "leave-c",
            RoomType::Group => "leave-p",
            RoomType::Direct => return Err(CoreError::not_allowed("Not allowed")),
        };
        self.authz.require(actor, permission, Some(&sub))?;
        // As Rocket.Chat: the only owner stays, even alone (delete the room instead).
        if sub.has_role("owner") && self.owners(&room.id).await? == 1 {
            return Err(CoreError::bad(
                "error-you-are-last-owner",
                "You are the last owner. Please set new owner before leaving the room.",
            ));
        }
        self.remove_member(room, actor, None).await
    }

    /// `channels.kick` / `groups.kick`.
    pub async fn kick(&self, actor: &User, room: &RoomRef, target: &User) -> CoreResult<Room> {
        let room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        self.authz.require(actor, "remove-user", sub.as_ref())?;
        if self
            .store
            .subscription(&room.id, &target.id)
            .await?
            .is_none()
        {
            return Err(CoreError::bad(
                "error-user-not-in-room",
                "User is not in this room",
            ));
        }
        self.remove_member(room, target, Some(actor)).await
    }

    async fn owners(&self, rid: &str) -> CoreResult<usize> {
        let members = self.every_subscription(rid).await?;
        Ok(members.iter().filter(|s| s.has_role("owner")).count())
    }

    /// Every member's subscription of `rid` (for changes that touch each member's copy of the
    /// room; never on the per-message path, which stays O(1) in the room's size).
    pub(crate) async fn every_subscription(&self, rid: &str) -> CoreResult<Vec<Subscription>> {
        Ok(self.store.subscriptions_of_room(rid, Page::ALL).await?.0)
    }

    async fn remove_member(
        &self,
        mut room: Room,
        user: &User,
        by: Option<&User>,
    ) -> CoreResult<Room> {
        room.users_count = (room.users_count - 1).max(0);
        room.updated_at = Timestamp::now();
        let msg = match by {
            Some(by) => Message::system(&room.id, "ru", user.username.clone(), by.as_ref()),
            None => Message::system(&room.id, "ul", user.username.clone(), user.as_ref()),
        };
        // In a federated room the leave (or kick) is a Matrix event sent with it.
        let federation = self
            .federated_membership_out(&room.id, user, by, "leave")
            .await?;
        let mut changes = vec![
            Change::DeleteSubscription {
                rid: room.id.clone(),
                user_id: user.id.clone(),
            },
            Change::UpdateRoom(room.clone()),
            Change::AppendMessage {
                message: msg,
                mentioned_user_ids: vec![],
                mentions_all: false,
            },
        ];
        changes.extend(federation.into_iter().flatten());
        self.commit(changes).await?;
        self.find_room(&RoomRef::Id(room.id)).await
    }

    /// `im.create` / `dm.create`: opens (creating if needed) the DM between the actor and others.
    pub async fn create_direct(&self, actor: &User, usernames: &[String]) -> CoreResult<Room> {
        self.authz.require(actor, "create-d", None)?;
        let mut members = vec![actor.clone()];
        let mut new_users = Vec::new();
        for name in usernames {
            let user = match self.store.user_by_username(name).await? {
                Some(u) => u,
                // A Matrix id: the remote user, made as Rocket.Chat does.
                None if crate::federated_membership::is_matrix_id(name)
                    && self.federation.get().is_some() =>
                {
                    let (user, insert) = self
                        .remote_user(&crate::federated_rooms::RemoteMember {
                            user_id: name.clone(),
                            displayname: None,
                        })
                        .await?;
                    new_users.extend(insert);
                    user
                }
                None => return Err(CoreError::bad("error-invalid-user", "Invalid user")),
            };
            if !members.iter().any(|m| m.id == user.id) {
                members.push(user);
            }
        }
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let rid = dm_room_id(&ids);
        if let Some(room) = self.store.room_by_id(&rid).await? {
            if self.store.subscription(&rid, &actor.id).await?.is_none() {
                self.commit(vec![Change::InsertSubscription(
                    self.new_subscription(&room, actor),
                )])
                .await?;
            }
            return Ok(room);
        }
        let mut room = Room::new(rid, RoomType::Direct, None, None);
        room.usernames = members.iter().map(|m| m.username.clone()).collect();
        room.uids = members.iter().map(|m| m.id.clone()).collect();
        room.users_count = members.len() as i64;
        let federated = members.iter().any(|m| {
            m.roles
                .iter()
                .any(|r| r == crate::federated_rooms::FEDERATED_ROLE)
        });
        if self.e2e_default_on("E2E_Enabled_Default_DirectRooms") && !federated {
            room.extra.insert("encrypted".into(), Value::Bool(true));
        }
        // With remote users the DM is a Matrix room too; they are invited (`is_direct`).
        let federation = if federated {
            self.federate_direct(actor, &mut room, &members).await?
        } else {
            vec![]
        };
        let mut changes = new_users;
        changes.push(Change::InsertRoom(room.clone()));
        changes.extend(federation);
        changes.extend(
            members
                .iter()
                .map(|m| Change::InsertSubscription(self.new_subscription(&room, m))),
        );
        self.commit(changes).await?;
        Ok(room)
    }

    /// Rooms visible in public listings (`channels.list`) or, for `groups.list`, the actor's own.
    pub async fn list_rooms(
        &self,
        actor: &User,
        mut query: RoomQuery,
        page: Page,
    ) -> CoreResult<(Vec<Room>, i64)> {
        let only_public = query.types.iter().all(|t| *t == RoomType::Channel);
        let sees_all = self.authz.has(actor, "view-room-administration")
            || (only_public && self.authz.has(actor, "view-c-room"));
        if !sees_all {
            query.member = Some(actor.id.clone());
        }
        Ok(self.store.list_rooms(&query, page).await?)
    }

    /// `channels.list`, `groups.listAll`, `im.list.everyone`: every room of the types, not only
    /// the actor's. Needs `view-c-room` for channels and `view-room-administration` otherwise, as
    /// in Rocket.Chat.
    pub async fn list_all_rooms(
        &self,
        actor: &User,
        query: RoomQuery,
        page: Page,
    ) -> CoreResult<(Vec<Room>, i64)> {
        let only_public = query.types.iter().all(|t| *t == RoomType::Channel);
        let permission = if only_public {
            "view-c-room"
        } else {
            "view-room-administration"
        };
        self.authz.require(actor, permission, None)?;
        Ok(self.store.list_rooms(&query, page).await?)
    }

    /// Members of a room the actor can read.
    pub async fn members(
        &self,
        actor: &User,
        room: &RoomRef,
        t: Option<RoomType>,
        page: Page,
    ) -> CoreResult<(Vec<Subscription>, i64)> {
        let view = match t {
            Some(t) => self.readable_room_of(actor, room, t).await?,
            None => self.readable_room(actor, room).await?,
        };
        Ok(self
            .store
            .subscriptions_of_room(&view.room.id, page)
            .await?)
    }

    /// The actor's subscriptions, optionally only those changed after `since`, with removals.
    pub async fn subscriptions(
        &self,
        actor: &User,
        since: Option<Timestamp>,
    ) -> CoreResult<(Vec<Subscription>, Vec<Tombstone>)> {
        let subs = self.store.subscriptions_of_user(&actor.id).await?;
        let Some(since) = since else {
            return Ok((subs, Vec::new()));
        };
        let changed = subs.into_iter().filter(|s| s.updated_at > since).collect();
        Ok((
            changed,
            self.store
                .deleted_subscriptions_since(&actor.id, since)
                .await?,
        ))
    }

    /// The actor's rooms, optionally only those changed after `since`, with removals.
    pub async fn rooms_of(
        &self,
        actor: &User,
        since: Option<Timestamp>,
    ) -> CoreResult<(Vec<Room>, Vec<Tombstone>)> {
        let subs = self.store.subscriptions_of_user(&actor.id).await?;
        let ids: Vec<String> = subs.iter().map(|s| s.rid.clone()).collect();
        let rooms = self.store.rooms_by_ids(&ids).await?;
        let Some(since) = since else {
            return Ok((rooms, Vec::new()));
        };
        let changed = rooms.into_iter().filter(|r| r.updated_at > since).collect();
        // A room left and joined again since then is in `changed`, not removed.
        let removed = self
            .store
            .left_rooms_since(&actor.id, since)
            .await?
            .into_iter()
            .filter(|t| !ids.contains(&t.id))
            .collect();
        Ok((changed, removed))
    }

    /// The actor's subscription to a room.
    pub async fn subscription(&self, actor: &User, rid: &str) -> CoreResult<Option<Subscription>> {
        Ok(self.store.subscription(rid, &actor.id).await?)
    }

    /// `subscriptions.read`: marks the room read.
    pub async fn mark_read(&self, actor: &User, rid: &str) -> CoreResult<()> {
        if self.store.subscription(rid, &actor.id).await?.is_none() {
            return Err(CoreError::bad(
                "error-invalid-subscription",
                "Invalid subscription",
            ));
        }
        self.commit(vec![Change::MarkRead {
            rid: rid.to_string(),
            user_id: actor.id.clone(),
        }])
        .await?;
        if self.settings.bool("Message_Read_Receipt_Enabled") {
            self.announce_read_by_all(rid).await?;
        }
        self.federate_read(rid, actor).await;
        Ok(())
    }

    /// With read receipts on, tells the room how far everyone has read (`messagesRead`).
    async fn announce_read_by_all(&self, rid: &str) -> CoreResult<()> {
        let members = self.every_subscription(rid).await?;
        let read_by_all = members.iter().map(|s| s.ls).collect::<Option<Vec<_>>>();
        if let Some(until) = read_by_all.and_then(|ls| ls.into_iter().min()) {
            self.publish(crate::events::Event::MessagesRead {
                rid: rid.to_string(),
                until,
            });
        }
        Ok(())
    }

    /// `subscriptions.unread`: marks the room unread from a message on.
    pub async fn mark_unread(&self, actor: &User, message_id: &str) -> CoreResult<()> {
        let message = self.store.message_by_id(message_id).await?.ok_or_else(|| {
            CoreError::bad("error-no-message-for-unread", "No message found for unread")
        })?;
        if self
            .store
            .subscription(&message.rid, &actor.id)
            .await?
            .is_none()
        {
            return Err(CoreError::bad(
                "error-invalid-subscription",
                "Invalid subscription",
            ));
        }
        self.commit(vec![Change::MarkUnreadFrom {
            rid: message.rid,
            user_id: actor.id.clone(),
            message_id: message.id,
        }])
        .await
    }

    /// `channels.open` / `channels.close` (hide) and `rooms.favorite`: per-user room flags.
    pub async fn update_own_subscription(
        &self,
        actor: &User,
        rid: &str,
        open: Option<bool>,
        favorite: Option<bool>,
    ) -> CoreResult<Subscription> {
        let mut sub = self
            .store
            .subscription(rid, &actor.id)
            .await?
            .ok_or_else(|| {
                CoreError::bad(
                    "error-invalid-subscription",
                    "The user is not subscribed to the room",
                )
            })?;
        if let Some(open) = open {
            sub.open = open;
        }
        if let Some(f) = favorite {
            sub.f = Some(f);
        }
        sub.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateSubscription(sub.clone())])
            .await?;
        Ok(sub)
    }

    /// Room settings (topic, name, type, read-only, …). Needs `edit-room` in the room, plus the
    /// specific permission for some fields. Announces changes with system messages.
    pub async fn update_room(
        &self,
        actor: &User,
        room: &RoomRef,
        s: RoomSettings,
    ) -> CoreResult<Room> {
        let mut room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        self.authz.require(actor, "edit-room", sub.as_ref())?;
        if s.read_only.is_some() {
            self.authz.require(actor, "set-readonly", sub.as_ref())?;
        }
        if s.default.is_some() {
            self.authz
                .require(actor, "view-room-administration", None)?;
        }
        if s.avatar.is_some() && !self.authz.has_in(actor, "edit-room-avatar", sub.as_ref()) {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Editing a room avatar is not allowed",
            ));
        }
        let mut changes = Vec::new();
        let mut announce = |t: &str, msg: String| {
            let m = Message::system(&room.id, t, msg, actor.as_ref());
            changes.push(Change::AppendMessage {
                message: m,
                mentioned_user_ids: vec![],
                mentions_all: false,
            });
        };
        // A new image's etag is chosen now: a federated room's `m.room.avatar` names it.
        let avatar_etag = random_id();
        let federated_out = crate::federated_sync::SettingsOut {
            avatar: s.avatar.as_ref().map(|a| match a {
                crate::avatars::RoomAvatar::Reset => None,
                crate::avatars::RoomAvatar::Image(_) => Some(avatar_etag.clone()),
            }),
            name: s.name.clone().filter(|n| Some(n) != room.name.as_ref()),
            topic: s.topic.clone().filter(|t| Some(t) != room.topic.as_ref()),
            read_only: s.read_only.filter(|ro| *ro != room.ro),
            public: s
                .room_type
                .filter(|t| *t != room.t)
                .map(|t| t == RoomType::Channel),
        };
        if let Some(topic) = s.topic {
            announce("room_changed_topic", topic.clone());
            room.topic = Some(topic);
        }
        if let Some(a) = s.announcement {
            announce("room_changed_announcement", a.clone());
            room.announcement = Some(a);
        }
        if let Some(d) = s.description {
            announce("room_changed_description", d.clone());
            room.description = Some(d);
        }
        if let Some(ro) = s.read_only {
            announce(
                if ro {
                    "room-set-read-only"
                } else {
                    "room-removed-read-only"
                },
                String::new(),
            );
            room.ro = ro;
        }
        if let Some(t) = s.room_type.filter(|t| *t != room.t) {
            if room.is_direct() || t == RoomType::Direct {
                return Err(CoreError::bad(
                    "error-invalid-room-type",
                    "Invalid room type",
                ));
            }
            let perm = if t == RoomType::Channel {
                "create-c"
            } else {
                "create-p"
            };
            self.authz.require(actor, perm, None)?;
            announce(
                "room_changed_privacy",
                if t == RoomType::Channel {
                    "public"
                } else {
                    "private"
                }
                .into(),
            );
            room.t = t;
        }
        if let Some(e) = s.encrypted {
            if e != room.is_encrypted() && !Core::e2e_allowed_for(room.t) {
                return Err(CoreError::bad(
                    "error-action-not-allowed",
                    "Only groups or direct channels can enable encryption",
                ));
            }
            // DMs: either participant may toggle encryption.
            if !room.is_direct() {
                self.authz
                    .require(actor, "toggle-room-e2e-encryption", sub.as_ref())?;
            }
            if room.is_encrypted() != e {
                let t = if e {
                    "room_e2e_enabled"
                } else {
                    "room_e2e_disabled"
                };
                announce(t, room.name.clone().unwrap_or_default());
            }
            room.extra.insert("encrypted".into(), Value::Bool(e));
        }
        if let Some(d) = s.default {
            room.default = d;
        }
        if let Some(code) = s.join_code {
            room.extra
                .insert("joinCodeRequired".into(), Value::Bool(!code.is_empty()));
            room.extra.insert("joinCode".into(), Value::String(code));
        }
        if let Some(fields) = s.custom_fields {
            room.extra.insert("customFields".into(), fields);
        }
        let mut renamed = None;
        if let Some(name) = s.name.filter(|n| Some(n) != room.name.as_ref()) {
            if !is_valid_room_name(&name) {
                return Err(CoreError::bad(
                    "error-invalid-room-name",
                    format!("{name} is not a valid room name"),
                ));
            }
            if self.store.room_by_name(&name).await?.is_some() {
                return Err(CoreError::bad(
                    "error-duplicate-channel-name",
                    format!("A channel with name '{name}' exists"),
                ));
            }
            announce("r", name.clone());
            room.name = Some(name.clone());
            room.fname = Some(name.clone());
            renamed = Some(name);
        }
        if s.avatar.is_some() {
            announce("room_changed_avatar", String::new());
        }
        room.updated_at = Timestamp::now();
        if renamed.is_some() || s.room_type.is_some() {
            let members = self.every_subscription(&room.id).await?;
            for mut m in members {
                m.name = room.name.clone().unwrap_or_default();
                m.fname = room.fname.clone();
                m.t = room.t;
                m.updated_at = room.updated_at;
                changes.push(Change::UpdateSubscription(m));
            }
        }
        // In a federated room, name, topic, read-only, type and avatar are Matrix events too (refused
        // without the power there, before any image is stored).
        changes.extend(
            self.federated_settings_out(actor, &room.id, federated_out)
                .await?,
        );
        // The image is stored last, once everything else is known to be acceptable.
        let staged_avatar = match s.avatar {
            Some(avatar) => {
                let (staged, more) = self
                    .stage_room_avatar(actor, &mut room, avatar, &avatar_etag)
                    .await?;
                changes.extend(more);
                Some(staged)
            }
            None => None,
        };
        // System messages re-read the room, so write the room first.
        changes.insert(0, Change::UpdateRoom(room.clone()));
        let committed = self.commit(changes).await;
        if let Some(staged) = staged_avatar {
            self.room_avatar_done(staged, committed.is_ok()).await;
        }
        committed?;
        self.find_room(&RoomRef::Id(room.id)).await
    }

    /// Archives or unarchives a room (`archive-room` / `unarchive-room`).
    pub async fn set_archived(
        &self,
        actor: &User,
        room: &RoomRef,
        archived: bool,
    ) -> CoreResult<()> {
        let mut room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        self.authz.require(
            actor,
            if archived {
                "archive-room"
            } else {
                "unarchive-room"
            },
            sub.as_ref(),
        )?;
        if room.archived == archived {
            let (code, msg) = if archived {
                ("error-room-archived", "The channel is already archived")
            } else {
                ("error-room-not-archived", "The channel is not archived")
            };
            return Err(CoreError::bad(code, msg));
        }
        room.archived = archived;
        room.updated_at = Timestamp::now();
        let t = if archived {
            "room-archived"
        } else {
            "room-unarchived"
        };
        let msg = Message::system(&room.id, t, String::new(), actor.as_ref());
        let mut changes = vec![Change::UpdateRoom(room.clone())];
        changes.push(Change::AppendMessage {
            message: msg,
            mentioned_user_ids: vec![],
            mentions_all: false,
        });
        let members = self.every_subscription(&room.id).await?;
        for mut m in members {
            m.archived = Some(archived);
            m.open = !archived;
            m.updated_at = room.updated_at;
            changes.push(Change::UpdateSubscription(m));
        }
        self.commit(changes).await
    }

    /// Deletes a room with its messages (`delete-c` / `delete-p` / `delete-d`).
    pub async fn delete_room(&self, actor: &User, room: &RoomRef) -> CoreResult<()> {
        let room = self.find_room(room).await?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        let perm = match room.t {
            RoomType::Channel => "delete-c",
            RoomType::Group => "delete-p",
            RoomType::Direct => "delete-d",
        };
        self.authz.require(actor, perm, sub.as_ref())?;
        let details = serde_json::json!({"rid": room.id, "name": room.name, "t": room.t});
        let audit = self.audit("room.deleted", Some(actor), details);
        let mut changes = self.room_file_removals(&room.id).await?;
        // A federated room: our members leave it (and close it, if it was made here) first.
        changes.extend(self.federated_room_deletion(&room.id).await?);
        changes.extend([Change::DeleteRoom(room.id), audit]);
        self.commit(changes).await
    }

    /// Grants or revokes a room role (`owner`, `moderator`, `leader`) on a member.
    pub async fn set_room_role(
        &self,
        actor: &User,
        room: &RoomRef,
        target: &User,
        role: &str,
        grant: bool,
    ) -> CoreResult<()> {
        if !ROOM_ROLES.contains(&role) {
            return Err(CoreError::bad("error-invalid-role", "Invalid role"));
        }
        let room = self.find_room(room).await?;
        let actor_sub = self.store.subscription(&room.id, &actor.id).await?;
        self.authz
            .require(actor, &format!("set-{role}"), actor_sub.as_ref())?;
        let mut sub = self
            .store
            .subscription(&room.id, &target.id)
            .await?
            .ok_or_else(|| CoreError::bad("error-user-not-in-room", "User is not in this room"))?;
        let has = sub.has_role(role);
        if grant == has {
            let (code, msg) = if grant {
                (
                    "error-user-already-owner",
                    format!("User is already {role}"),
                )
            } else {
                ("error-user-not-owner", format!("User is not {role}"))
            };
            let code = code.replace("owner", role);
            return Err(CoreError::bad(&code, msg));
        }
        if !grant && role == "owner" && self.owners(&room.id).await? <= 1 {
            return Err(CoreError::bad(
                "error-remove-last-owner",
                "This is the last owner. Please set a new owner before removing this one.",
            ));
        }
        if grant {
            sub.roles.push(role.to_string());
        } else {
            sub.roles.retain(|r| r != role);
        }
        sub.updated_at = Timestamp::now();
        let t = if grant {
            "subscription-role-added"
        } else {
            "subscription-role-removed"
        };
        let mut msg = Message::system(&room.id, t, target.username.clone(), actor.as_ref());
        msg.extra
            .insert("role".into(), Value::String(role.to_string()));
        let event = if grant {
            "room.role_added"
        } else {
            "room.role_removed"
        };
        let details = serde_json::json!({"rid": room.id, "userId": target.id, "role": role});
        // In a federated room the new level is a power-levels event the actor must be able
        // to send.
        let federation = self
            .federated_role_out(actor, &room.id, target, &sub.roles)
            .await?;
        let mut changes = vec![
            self.audit(event, Some(actor), details),
            Change::UpdateSubscription(sub),
            Change::AppendMessage {
                message: msg,
                mentioned_user_ids: vec![],
                mentions_all: false,
            },
        ];
        changes.extend(federation);
        self.commit(changes).await?;
        self.publish(crate::events::Event::UserRole {
            role_id: role.to_string(),
            user_id: target.id.clone(),
            username: target.username.clone(),
            scope: Some(room.id.clone()),
            added: grant,
        });
        Ok(())
    }

    /// Members holding room roles, for `channels.roles` / `groups.roles`.
    pub async fn room_roles(&self, actor: &User, room: &RoomRef) -> CoreResult<Vec<Subscription>> {
        let view = self.readable_room(actor, room).await?;
        let members = self.every_subscription(&view.room.id).await?;
        Ok(members
            .into_iter()
            .filter(|s| !s.roles.is_empty())
            .collect())
    }
}
