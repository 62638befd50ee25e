//! Keeping a federated room's two sides in step after it is made (`docs/FEDERATION.md`,
//! "Deletion sync" and "Changes after creation"):
//!
//! - a room deleted here: for a room made here, a local member with the power to (its creator,
//!   else the most powerful) closes it — join rule `invite`, every remote member kicked — and
//!   then every local member leaves; for a room made elsewhere our members leave. The events
//!   go in the deletion's own batch, so the deletion and its announcement commit together;
//! - a local user deactivated or deleted: they leave every federated room;
//! - a room made elsewhere that is closed (`m.room.tombstone`) or abandoned (the last member of
//!   every other server gone) is archived here: readable, no longer writable;
//! - name, topic, read-only, room roles, room type and room image, as `m.room.name`,
//!   `m.room.topic`, `m.room.power_levels` (`events_default` 50 for read-only; owner 100 /
//!   moderator 50), `m.room.join_rules` (a channel public, a group invite-only) and
//!   `m.room.avatar` (see `federated_avatars`), both ways. Our events are checked against the room's power levels before they are signed.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_avatars::room_avatar_mxc;
use crate::federated_membership::{RoomEvents, matrix_id};
use crate::federated_power::{PowerLevels, level_of_roles, roles_for_level};
use crate::federated_rooms::server_of;
use crate::store::{Change, FederatedRoom};
use apogee_domain::{Message, Room, RoomType, Timestamp, User};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Level `events_default` takes in a read-only room: owners and moderators still post, as
/// Rocket.Chat's `post-readonly` allows by default.
pub const READ_ONLY_LEVEL: i64 = 50;

/// Room settings changed here that have a Matrix event.
#[derive(Debug, Default)]
pub(crate) struct SettingsOut {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub read_only: Option<bool>,
    /// A new room type: public (a channel) or not (a private group).
    pub public: Option<bool>,
    /// A new room image (its etag), or `Some(None)` when the image is removed.
    pub avatar: Option<Option<String>>,
}

impl Core {
    /// The room's power levels as stored.
    pub(crate) async fn room_power(&self, events: &RoomEvents<'_>) -> CoreResult<PowerLevels> {
        let create = match events
            .state
            .get(&("m.room.create".to_string(), String::new()))
        {
            Some(id) => self.store.federation_event(id).await?.map(|e| e.pdu),
            None => None,
        };
        Ok(PowerLevels::new(
            &events.version,
            events.content("m.room.power_levels", ""),
            create.as_ref(),
        ))
    }

    /// Stores the events made in `events` and queues each to `servers` (but ours), oldest
    /// first per destination.
    fn store_and_send(
        &self,
        events: &RoomEvents<'_>,
        removed: Vec<String>,
        servers: &BTreeSet<String>,
        ours: &str,
    ) -> Vec<Change> {
        let mut changes = events.changes(removed);
        for (i, e) in events.made.iter().enumerate() {
            for mut c in self.pdu_deliveries(servers, ours, &e.pdu) {
                // Items of one queue are due in `created_at` order: keep the events' order.
                if let Change::Enqueue(item) = &mut c {
                    item.created_at = Timestamp::from_millis(item.created_at.millis() + i as i64);
                }
                changes.push(c);
            }
        }
        changes
    }

    /// The Matrix user ids with `membership` in the room's current state, sorted.
    fn members_with(events: &RoomEvents<'_>, membership: &str) -> Vec<String> {
        let mut out: Vec<String> = events
            .state
            .keys()
            .filter(|(t, _)| t == "m.room.member")
            .map(|(_, k)| k.clone())
            .filter(|k| events.membership(k).as_deref() == Some(membership))
            .collect();
        out.sort();
        out
    }

    /// The Matrix side of deleting federated room `rid` here (empty when it is not one): see
    /// the module's description. To commit before the room's `DeleteRoom`.
    pub(crate) async fn federated_room_deletion(&self, rid: &str) -> CoreResult<Vec<Change>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(vec![]);
        };
        let Some(room) = self.store.federated_room(rid).await? else {
            return Ok(vec![]);
        };
        let ours = gateway.server_name().to_string();
        let mut events = self.room_events(gateway.as_ref(), &room).await?;
        let power = self.room_power(&events).await?;
        let removed = events.prev.clone();
        let joined = Self::members_with(&events, "join");
        let (local, remote): (Vec<String>, Vec<String>) = joined
            .into_iter()
            .partition(|id| server_of(id) == Some(ours.as_str()));
        // Every server that hears of the room's end: those with a member now.
        let mut servers: BTreeSet<String> = remote
            .iter()
            .filter_map(|id| server_of(id).map(str::to_string))
            .collect();
        if room.origin == ours {
            // The closer: the creator when still here, else our most powerful member.
            let closer = local
                .iter()
                .max_by_key(|id| (power.user(id), std::cmp::Reverse((*id).clone())))
                .cloned();
            if let Some(closer) = closer {
                let reason = json!(format!("The room was deleted on {ours}"));
                if events.join_rule().as_deref() != Some("invite")
                    && power.user(&closer) >= power.state_event("m.room.join_rules")
                {
                    events.add(
                        "m.room.join_rules",
                        &closer,
                        Some(""),
                        json!({"join_rule": "invite"}),
                    )?;
                }
                let mut targets = remote.clone();
                targets.extend(
                    Self::members_with(&events, "invite")
                        .into_iter()
                        .filter(|id| server_of(id) != Some(ours.as_str())),
                );
                for target in targets {
                    if power.may_remove(&closer, &target, power.kick()) {
                        if let Some(server) = server_of(&target) {
                            servers.insert(server.to_string());
                        }
                        events.add(
                            "m.room.member",
                            &closer,
                            Some(&target),
                            json!({"membership": "leave", "reason": reason}),
                        )?;
                    }
                }
            }
        }
        for id in &local {
            events.add(
                "m.room.member",
                id,
                Some(id),
                json!({"membership": "leave"}),
            )?;
        }
        if events.made.is_empty() {
            return Ok(vec![]);
        }
        Ok(self.store_and_send(&events, removed, &servers, &ours))
    }

    /// A local user deactivated or deleted: their leave of every federated room they are
    /// joined to, to commit with that change.
    pub(crate) async fn federated_departure(&self, user: &User) -> CoreResult<Vec<Change>> {
        if self.federation.get().is_none() {
            return Ok(vec![]);
        }
        let mut changes = Vec::new();
        for sub in self.store.subscriptions_of_user(&user.id).await? {
            if let Some(more) = self
                .federated_membership_out(&sub.rid, user, None, "leave")
                .await?
            {
                changes.extend(more);
            }
        }
        Ok(changes)
    }

    /// A local user activated again: their join of each public federated room they are still
    /// subscribed to (an invite-only room needs a new invite).
    pub(crate) async fn federated_return(&self, user: &User) -> CoreResult<Vec<Change>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(vec![]);
        };
        let mut changes = Vec::new();
        for sub in self.store.subscriptions_of_user(&user.id).await? {
            let Some(room) = self.store.federated_room(&sub.rid).await? else {
                continue;
            };
            let events = self.room_events(gateway.as_ref(), &room).await?;
            if events.join_rule().as_deref() != Some("public") {
                continue;
            }
            changes.extend(
                self.federated_local_joins(&sub.rid, user, std::slice::from_ref(user))
                    .await?,
            );
        }
        Ok(changes)
    }

    /// The Matrix events of room settings changed by `actor` here (`update_room`): refused
    /// with `error-federation-not-allowed` when the actor's power in the Matrix room does not
    /// allow one of them.
    pub(crate) async fn federated_settings_out(
        &self,
        actor: &User,
        rid: &str,
        settings: SettingsOut,
    ) -> CoreResult<Vec<Change>> {
        if settings.name.is_none()
            && settings.topic.is_none()
            && settings.read_only.is_none()
            && settings.public.is_none()
            && settings.avatar.is_none()
        {
            // Nothing Matrix knows of (an announcement, say): no Matrix membership needed.
            return Ok(vec![]);
        }
        let Some((room, mut events, ours)) = self.federated_room_events(rid).await? else {
            return Ok(vec![]);
        };
        let sender = self.joined_sender(&events, actor, &ours)?;
        let power = self.room_power(&events).await?;
        let removed = events.prev.clone();
        let add = |events: &mut RoomEvents<'_>, t: &str, content: Value, allowed: bool| {
            if !allowed {
                return Err(not_allowed());
            }
            events.add(t, &sender, Some(""), content).map(|_| ())
        };
        if let Some(name) = settings.name {
            let allowed = power.user(&sender) >= power.state_event("m.room.name");
            add(&mut events, "m.room.name", json!({"name": name}), allowed)?;
        }
        if let Some(topic) = settings.topic {
            let allowed = power.user(&sender) >= power.state_event("m.room.topic");
            add(
                &mut events,
                "m.room.topic",
                json!({"topic": topic}),
                allowed,
            )?;
        }
        if let Some(ro) = settings.read_only {
            let level = if ro { READ_ONLY_LEVEL } else { 0 };
            if (power.events_default() >= READ_ONLY_LEVEL) != ro {
                let (content, allowed) = power.with_events_default(&sender, level);
                add(&mut events, "m.room.power_levels", content, allowed)?;
            }
        }
        if let Some(public) = settings.public {
            // A channel made private must stop taking joins from other servers, and back.
            let rule = if public { "public" } else { "invite" };
            if events.join_rule().as_deref() != Some(rule) {
                let allowed = power.user(&sender) >= power.state_event("m.room.join_rules");
                let content = json!({"join_rule": rule});
                add(&mut events, "m.room.join_rules", content, allowed)?;
            }
        }
        if let Some(etag) = settings.avatar {
            let allowed = power.user(&sender) >= power.state_event("m.room.avatar");
            let content = match etag {
                Some(etag) => json!({"url": room_avatar_mxc(&room.rid, &etag, &ours)}),
                None => json!({}),
            };
            add(&mut events, "m.room.avatar", content, allowed)?;
        }
        if events.made.is_empty() {
            return Ok(vec![]);
        }
        let servers = self.joined_servers(&room).await?;
        Ok(self.store_and_send(&events, removed, &servers, &ours))
    }

    /// An incoming `m.room.join_rules` by `by`: a `public` room is a channel here, any other
    /// rule a private group (DMs stay DMs), announced with `room_changed_privacy`.
    pub(crate) async fn incoming_join_rules(
        &self,
        room: &FederatedRoom,
        content: &Value,
        by: &User,
    ) -> CoreResult<Vec<Change>> {
        let mut r = self
            .store
            .room_by_id(&room.rid)
            .await?
            .ok_or_else(CoreError::room_not_found)?;
        let public = content.get("join_rule").and_then(Value::as_str) == Some("public");
        let t = if public {
            RoomType::Channel
        } else {
            RoomType::Group
        };
        if r.is_direct() || r.t == t {
            return Ok(vec![]);
        }
        r.t = t;
        r.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpdateRoom(r.clone())];
        for mut sub in self.every_subscription(&r.id).await? {
            sub.t = t;
            sub.updated_at = r.updated_at;
            changes.push(Change::UpdateSubscription(sub));
        }
        let privacy = if public { "public" } else { "private" };
        changes.push(Change::AppendMessage {
            message: Message::system(&r.id, "room_changed_privacy", privacy.into(), by.as_ref()),
            mentioned_user_ids: vec![],
            mentions_all: false,
        });
        Ok(changes)
    }

    /// A room role granted or revoked here (`set_room_role`): the target's new power level
    /// (owner 100, moderator 50, else 0) sent by `actor`, who needs the power to set it.
    pub(crate) async fn federated_role_out(
        &self,
        actor: &User,
        rid: &str,
        target: &User,
        roles_after: &[String],
    ) -> CoreResult<Vec<Change>> {
        let Some((room, mut events, ours)) = self.federated_room_events(rid).await? else {
            return Ok(vec![]);
        };
        let power = self.room_power(&events).await?;
        let target_id = matrix_id(target, &ours);
        let level = level_of_roles(roles_after);
        if power.user(&target_id) == level || power.is_creator(&target_id) {
            // Nothing to say (a `leader`, say; a v12 creator is above every level).
            return Ok(vec![]);
        }
        let sender = self.joined_sender(&events, actor, &ours)?;
        let (content, allowed) = power.with_user(&sender, &target_id, level);
        if !allowed {
            return Err(not_allowed());
        }
        let removed = events.prev.clone();
        events.add("m.room.power_levels", &sender, Some(""), content)?;
        let servers = self.joined_servers(&room).await?;
        Ok(self.store_and_send(&events, removed, &servers, &ours))
    }

    async fn federated_room_events(
        &self,
        rid: &str,
    ) -> CoreResult<Option<(FederatedRoom, RoomEvents<'_>, String)>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(None);
        };
        let Some(room) = self.store.federated_room(rid).await? else {
            return Ok(None);
        };
        let events = self.room_events(gateway.as_ref(), &room).await?;
        Ok(Some((room, events, gateway.server_name().to_string())))
    }

    /// The actor's Matrix id, when they are joined to the Matrix room.
    fn joined_sender(
        &self,
        events: &RoomEvents<'_>,
        actor: &User,
        ours: &str,
    ) -> CoreResult<String> {
        let sender = matrix_id(actor, ours);
        if server_of(&sender) != Some(ours) || events.membership(&sender).as_deref() != Some("join")
        {
            return Err(CoreError::bad(
                "error-federation-not-joined",
                "You are not joined to this room on the Matrix side",
            ));
        }
        Ok(sender)
    }

    /// An incoming `m.room.power_levels` by `by` (already allowed by the auth rules): room
    /// roles of the members we hold follow the levels (owner ≥ 100, moderator ≥ 50; v12
    /// creators are owners), read-only follows `events_default` ≥ 50; each change announced
    /// with Rocket.Chat's system line.
    pub(crate) async fn incoming_power_levels(
        &self,
        room: &FederatedRoom,
        content: &Value,
        by: &User,
    ) -> CoreResult<Vec<Change>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(vec![]);
        };
        let ours = gateway.server_name().to_string();
        let events = self.room_events(gateway.as_ref(), room).await?;
        let create = match events
            .state
            .get(&("m.room.create".to_string(), String::new()))
        {
            Some(id) => self.store.federation_event(id).await?.map(|e| e.pdu),
            None => None,
        };
        let power = PowerLevels::new(&room.room_version, Some(content), create.as_ref());
        let mut r = self
            .store
            .room_by_id(&room.rid)
            .await?
            .ok_or_else(CoreError::room_not_found)?;
        let mut changes = Vec::new();
        let mut lines = Vec::new();
        let ro = power.events_default() >= READ_ONLY_LEVEL;
        if r.ro != ro {
            r.ro = ro;
            r.updated_at = Timestamp::now();
            changes.push(Change::UpdateRoom(r.clone()));
            let t = if ro {
                "room-set-read-only"
            } else {
                "room-removed-read-only"
            };
            lines.push(Message::system(&r.id, t, String::new(), by.as_ref()));
        }
        for mut sub in self.every_subscription(&room.rid).await? {
            let Some(user) = self.store.user_by_id(&sub.u.id).await? else {
                continue;
            };
            let level = power.user(&matrix_id(&user, &ours));
            let roles = roles_for_level(&sub.roles, level);
            let mut before = sub.roles.clone();
            let mut after = roles.clone();
            before.sort();
            after.sort();
            if before != after {
                for role in ["owner", "moderator"] {
                    let (had, has) = (
                        before.iter().any(|r| r == role),
                        after.iter().any(|r| r == role),
                    );
                    if had != has {
                        let t = if has {
                            "subscription-role-added"
                        } else {
                            "subscription-role-removed"
                        };
                        let mut line =
                            Message::system(&r.id, t, user.username.clone(), by.as_ref());
                        line.extra.insert("role".into(), json!(role));
                        lines.push(line);
                    }
                }
                sub.roles = roles;
                sub.updated_at = Timestamp::now();
                changes.push(Change::UpdateSubscription(sub));
            }
        }
        // System lines re-read the room: after its update.
        changes.extend(lines.into_iter().map(|message| Change::AppendMessage {
            message,
            mentioned_user_ids: vec![],
            mentions_all: false,
        }));
        Ok(changes)
    }

    /// A room made elsewhere closed (`m.room.tombstone`) or abandoned (`by` was the last
    /// member of any other server): archived here, readable and no longer writable, with
    /// Rocket.Chat's `room-archived` line by the user who closed or left it. A room made
    /// here, or already archived, is left as it is.
    pub(crate) async fn archive_federated_room(
        &self,
        room: &FederatedRoom,
        by: &User,
        reason: &str,
    ) -> CoreResult<Vec<Change>> {
        let ours = match self.federation.get() {
            Some(g) => g.server_name().to_string(),
            None => return Ok(vec![]),
        };
        if room.origin == ours {
            return Ok(vec![]);
        }
        let Some(mut r) = self.store.room_by_id(&room.rid).await? else {
            return Ok(vec![]);
        };
        if r.archived {
            return Ok(vec![]);
        }
        r.archived = true;
        r.updated_at = Timestamp::now();
        mark_abandoned(&mut r, reason);
        let mut changes = vec![Change::UpdateRoom(r.clone())];
        changes.push(Change::AppendMessage {
            message: Message::system(&r.id, "room-archived", String::new(), by.as_ref()),
            mentioned_user_ids: vec![],
            mentions_all: false,
        });
        for mut sub in self.every_subscription(&r.id).await? {
            if sub.u.id == by.id {
                // Leaving in the same batch.
                continue;
            }
            // Still listed (`open` kept), as an archived room.
            sub.archived = Some(true);
            sub.updated_at = r.updated_at;
            changes.push(Change::UpdateSubscription(sub));
        }
        Ok(changes)
    }

    /// Whether, once `leaving` has left, no member of any server but ours is joined.
    pub(crate) async fn abandoned_without(
        &self,
        room: &FederatedRoom,
        leaving: &str,
    ) -> CoreResult<bool> {
        let Some(gateway) = self.federation.get() else {
            return Ok(false);
        };
        let ours = gateway.server_name().to_string();
        let events = self.room_events(gateway.as_ref(), room).await?;
        Ok(!Self::members_with(&events, "join")
            .iter()
            .any(|id| id != leaving && server_of(id) != Some(ours.as_str())))
    }
}

fn not_allowed() -> CoreError {
    CoreError::bad(
        "error-federation-not-allowed",
        "Your power level in the Matrix room does not allow this change",
    )
}

/// Notes on the room why it was archived (`federation.closed`: `tombstone` or `abandoned`).
fn mark_abandoned(room: &mut Room, reason: &str) {
    if let Some(f) = room
        .extra
        .get_mut("federation")
        .and_then(Value::as_object_mut)
    {
        f.insert("closed".into(), json!(reason));
    }
}
