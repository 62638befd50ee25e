//! Membership across servers: making a local room federated (its Matrix side built by us),
//! the state events of local users (invites, joins, leaves, kicks) in a federated room, and the
//! decisions behind serving other servers' joins, leaves and invites.
//!
//! Events are built here as JSON — auth events chosen from the room's state as the
//! specification says, `prev_events` = the forward extremities — and signed by the adapter;
//! they are committed with the use-case's batch (event rows, state, extremities, one outbox
//! item per other server with a joined member).

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_outgoing::FEDERATION_PDU;
use crate::federated_rooms::{FederationGateway, RemoteMember, server_of};
use crate::store::{
    Change, FederatedRoom, FederationEvent, FederationEventKind, FederationStateEntry,
};
use apogee_domain::{Room, RoomType, User, random_id};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// The room version of rooms we create when `Federation_Room_Version` is not one we support.
pub const DEFAULT_ROOM_VERSION: &str = "10";
const SUPPORTED_VERSIONS: &[&str] = &["10", "11", "12"];

/// A room's state as event ids by (type, state key), and where new events go.
pub(crate) struct RoomEvents<'g> {
    gateway: &'g dyn FederationGateway,
    pub version: String,
    /// `None` until a v12 room's create event is made (its hash is the room id).
    pub room_id: Option<String>,
    pub state: HashMap<(String, String), String>,
    /// Contents of the state events, for membership and join-rule reads.
    contents: HashMap<String, Value>,
    pub(crate) prev: Vec<String>,
    depth: i64,
    /// Events made here, in order.
    pub made: Vec<FederationEvent>,
    /// The state before each event of `made` (for `state_ids` and state resolution).
    states_before: Vec<Vec<FederationStateEntry>>,
}

impl<'g> RoomEvents<'g> {
    /// The auth events the specification selects for an event: create (implied from v12),
    /// power levels, the sender's member event, and for a membership change the target's
    /// member event and (to join or be invited) the join rules.
    fn auth_events(
        &self,
        event_type: &str,
        sender: &str,
        state_key: Option<&str>,
        content: &Value,
    ) -> Vec<String> {
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        if self.version != "12" {
            wanted.push(("m.room.create", ""));
        }
        wanted.push(("m.room.power_levels", ""));
        wanted.push(("m.room.member", sender));
        if event_type == "m.room.member"
            && let Some(target) = state_key
        {
            wanted.push(("m.room.member", target));
            if matches!(
                content.get("membership").and_then(Value::as_str),
                Some("join" | "invite" | "knock")
            ) {
                wanted.push(("m.room.join_rules", ""));
            }
        }
        let mut ids: Vec<String> = Vec::new();
        for (t, k) in wanted {
            if let Some(id) = self.state.get(&(t.to_string(), k.to_string()))
                && !ids.contains(id)
            {
                ids.push(id.clone());
            }
        }
        ids
    }

    /// Builds, signs and records one event; returns its id and PDU.
    pub fn add(
        &mut self,
        event_type: &str,
        sender: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> CoreResult<(String, Value)> {
        let create = event_type == "m.room.create";
        let auth = if create {
            vec![]
        } else {
            self.auth_events(event_type, sender, state_key, &content)
        };
        let mut event = json!({
            "type": event_type,
            "sender": sender,
            "content": content,
            "prev_events": self.prev,
            "auth_events": auth,
            "depth": self.depth + 1,
        });
        if let Some(key) = state_key {
            event["state_key"] = json!(key);
        }
        if let Some(room_id) = &self.room_id {
            event["room_id"] = json!(room_id);
        }
        let (event_id, pdu) = self
            .gateway
            .sign_event(&self.version, event)
            .map_err(|e| CoreError::bad("error-federation", format!("Cannot sign event: {e}")))?;
        if self.room_id.is_none() {
            // Room version 12: the room id is the create event's reference hash.
            self.room_id = Some(format!("!{}", event_id.trim_start_matches('$')));
        }
        self.depth += 1;
        self.prev = vec![event_id.clone()];
        let mut before: Vec<FederationStateEntry> = self
            .state
            .iter()
            .map(|((t, k), id)| FederationStateEntry {
                event_type: t.clone(),
                state_key: k.clone(),
                event_id: id.clone(),
            })
            .collect();
        before.sort();
        self.states_before.push(before);
        if let Some(key) = state_key {
            self.state
                .insert((event_type.to_string(), key.to_string()), event_id.clone());
            self.contents
                .insert(event_id.clone(), pdu["content"].clone());
        }
        self.made.push(FederationEvent {
            event_id: event_id.clone(),
            matrix_room_id: self.room_id.clone().unwrap_or_default(),
            message_id: None,
            kind: FederationEventKind::Timeline,
            depth: self.depth,
            pdu: pdu.clone(),
        });
        Ok((event_id, pdu))
    }

    /// Replaces the PDU of an event made here (an invite counter-signed by the invitee's
    /// server: same event id, one more signature).
    pub fn replace_pdu(&mut self, event_id: &str, pdu: Value) {
        if let Some(e) = self.made.iter_mut().find(|e| e.event_id == event_id) {
            e.pdu = pdu;
        }
    }

    /// `membership` of `user_id` in the current state.
    pub fn membership(&self, user_id: &str) -> Option<String> {
        let id = self
            .state
            .get(&("m.room.member".to_string(), user_id.to_string()))?;
        self.contents
            .get(id)?
            .get("membership")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The content of the current state event (type, state key), if any.
    pub fn content(&self, event_type: &str, state_key: &str) -> Option<&Value> {
        let id = self
            .state
            .get(&(event_type.to_string(), state_key.to_string()))?;
        self.contents.get(id)
    }

    pub fn join_rule(&self) -> Option<String> {
        let id = self
            .state
            .get(&("m.room.join_rules".to_string(), String::new()))?;
        self.contents
            .get(id)?
            .get("join_rule")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The changes that store what was made: event rows, state, the new extremity.
    pub fn changes(&self, removed_extremities: Vec<String>) -> Vec<Change> {
        let room_id = self.room_id.clone().unwrap_or_default();
        let made: Vec<FederationEvent> = self
            .made
            .iter()
            .cloned()
            .map(|mut e| {
                e.matrix_room_id = room_id.clone();
                e
            })
            .collect();
        let entries: Vec<FederationStateEntry> = made
            .iter()
            .filter_map(|e| {
                let key = e.pdu.get("state_key")?.as_str()?;
                Some(FederationStateEntry {
                    event_type: e.pdu["type"].as_str()?.to_string(),
                    state_key: key.to_string(),
                    event_id: e.event_id.clone(),
                })
            })
            .collect();
        let mut snapshots = Vec::new();
        for (event, before) in made.iter().zip(&self.states_before) {
            // A second copy of a snapshot is ignored by the store.
            let snapshot_id = crate::federated_catchup::snapshot_id(before);
            snapshots.push(Change::InsertFederationStateSnapshot {
                snapshot_id: snapshot_id.clone(),
                entries: before.clone(),
            });
            snapshots.push(Change::SetFederationEventState {
                event_id: event.event_id.clone(),
                snapshot_id,
            });
        }
        let mut changes = vec![Change::SaveFederationEvents(made)];
        changes.extend(snapshots);
        if !entries.is_empty() {
            changes.push(Change::SetFederationRoomState {
                matrix_room_id: room_id.clone(),
                entries,
            });
        }
        changes.push(Change::SetFederationExtremities {
            matrix_room_id: room_id,
            remove: removed_extremities,
            add: self.prev.clone(),
        });
        changes
    }
}

/// The Matrix id of a user: a remote user's username is theirs; a local one's is made.
pub fn matrix_id(user: &User, server: &str) -> String {
    if user.username.starts_with('@') && server_of(&user.username).is_some() {
        user.username.clone()
    } else {
        format!("@{}:{server}", user.username)
    }
}

/// Whether a name is a Matrix user id (`@localpart:server`).
pub fn is_matrix_id(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('@') else {
        return false;
    };
    match rest.split_once(':') {
        Some((local, server)) => {
            !local.is_empty()
                && !server.is_empty()
                && name.len() <= 255
                && !name.chars().any(|c| c.is_whitespace() || c == '/')
        }
        None => false,
    }
}

/// Who a local member is in the new room's power levels.
pub(crate) struct LocalMember<'a> {
    pub user: &'a User,
    /// Room roles (`owner`, `moderator`).
    pub roles: &'a [String],
}

impl Core {
    /// The room version new federated rooms get (`Federation_Room_Version`).
    fn new_room_version(&self) -> String {
        let v = self.settings.string("Federation_Room_Version");
        if SUPPORTED_VERSIONS.contains(&v.as_str()) {
            v
        } else {
            DEFAULT_ROOM_VERSION.to_string()
        }
    }

    pub(crate) fn federation_gateway(&self) -> CoreResult<&std::sync::Arc<dyn FederationGateway>> {
        self.federation.get().ok_or_else(|| {
            CoreError::bad(
                "error-federation-disabled",
                "Federation is not enabled on this server",
            )
        })
    }

    /// The Matrix side of a local room being federated: create, the creator's join, power
    /// levels (owner 100, moderator 50, as Rocket.Chat maps them), join rules (public for a
    /// channel, invite otherwise), history visibility, name, topic, then the other local
    /// members' joins (invited by the creator first where the room is invite-only). Marks
    /// `room` federated; returns the mapping and the events made (to add more to, then store
    /// with [`RoomEvents::changes`]).
    pub(crate) fn federate_room<'g>(
        &self,
        gateway: &'g dyn FederationGateway,
        room: &mut Room,
        creator: &User,
        members: &[LocalMember<'_>],
    ) -> CoreResult<(FederatedRoom, RoomEvents<'g>)> {
        let ours = gateway.server_name().to_string();
        let version = self.new_room_version();
        let mut events = RoomEvents {
            gateway,
            version: version.clone(),
            room_id: (version != "12").then(|| format!("!{}:{ours}", random_id())),
            state: HashMap::new(),
            contents: HashMap::new(),
            prev: vec![],
            depth: 0,
            made: vec![],
            states_before: vec![],
        };
        let creator_id = matrix_id(creator, &ours);
        let mut create = json!({"room_version": version, "m.federate": true});
        if version == "10" {
            create["creator"] = json!(creator_id);
        }
        events.add("m.room.create", &creator_id, Some(""), create)?;
        events.add(
            "m.room.member",
            &creator_id,
            Some(&creator_id),
            member_content("join", creator, &ours),
        )?;
        let mut users = Map::new();
        if version != "12" {
            // From v12 creators have unlimited power and must not be listed.
            users.insert(creator_id.clone(), json!(100));
        }
        for m in members {
            let id = matrix_id(m.user, &ours);
            if id == creator_id {
                continue;
            }
            if m.roles.iter().any(|r| r == "owner") {
                users.insert(id, json!(100));
            } else if m.roles.iter().any(|r| r == "moderator") {
                users.insert(id, json!(50));
            }
        }
        events.add(
            "m.room.power_levels",
            &creator_id,
            Some(""),
            json!({
                "users": users, "users_default": 0, "events_default": 0, "state_default": 50,
                "ban": 50, "kick": 50, "redact": 50, "invite": 0,
                "events": {
                    "m.room.name": 50, "m.room.topic": 50, "m.room.avatar": 50,
                    "m.room.canonical_alias": 50, "m.room.power_levels": 100,
                    "m.room.history_visibility": 100, "m.room.server_acl": 100,
                    "m.room.encryption": 100, "m.room.tombstone": 100,
                },
            }),
        )?;
        let public = room.t == RoomType::Channel;
        events.add(
            "m.room.join_rules",
            &creator_id,
            Some(""),
            json!({"join_rule": if public { "public" } else { "invite" }}),
        )?;
        events.add(
            "m.room.history_visibility",
            &creator_id,
            Some(""),
            json!({"history_visibility": "shared"}),
        )?;
        if !room.is_direct() {
            let name = room.fname.clone().or_else(|| room.name.clone());
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                events.add("m.room.name", &creator_id, Some(""), json!({"name": name}))?;
            }
        }
        if let Some(topic) = room
            .extra
            .get("topic")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            events.add(
                "m.room.topic",
                &creator_id,
                Some(""),
                json!({"topic": topic}),
            )?;
        }
        for m in members {
            let id = matrix_id(m.user, &ours);
            if id == creator_id || server_of(&id) != Some(ours.as_str()) {
                continue;
            }
            if !public {
                let mut invite = member_content("invite", m.user, &ours);
                if room.is_direct() {
                    invite["is_direct"] = json!(true);
                }
                events.add("m.room.member", &creator_id, Some(&id), invite)?;
            }
            events.add(
                "m.room.member",
                &id,
                Some(&id),
                member_content("join", m.user, &ours),
            )?;
        }
        let matrix_room_id = events.room_id.clone().unwrap_or_default();
        room.extra.insert("federated".into(), Value::Bool(true));
        room.extra.insert(
            "federation".into(),
            json!({"mrid": matrix_room_id, "origin": ours}),
        );
        let mapped = FederatedRoom {
            rid: room.id.clone(),
            matrix_room_id,
            room_version: version,
            origin: ours,
        };
        Ok((mapped, events))
    }

    /// The Matrix side of a room being created with `federated: true` (`access-federation`):
    /// the actor is its creator and owner.
    pub(crate) fn federate_new_room(
        &self,
        actor: &User,
        room: &mut Room,
        members: &[User],
    ) -> CoreResult<Vec<Change>> {
        self.authz.require(actor, "access-federation", None)?;
        let gateway = self.federation_gateway()?.clone();
        let owner = vec!["owner".to_string()];
        let none = Vec::new();
        let local: Vec<LocalMember<'_>> = members
            .iter()
            .map(|u| LocalMember {
                user: u,
                roles: if u.id == actor.id { &owner } else { &none },
            })
            .collect();
        let (mapped, events) = self.federate_room(gateway.as_ref(), room, actor, &local)?;
        let mut changes = vec![Change::InsertFederatedRoom(mapped)];
        changes.extend(events.changes(vec![]));
        Ok(changes)
    }

    /// A federated room's state as stored, ready for new events.
    pub(crate) async fn room_events<'g>(
        &self,
        gateway: &'g dyn FederationGateway,
        room: &FederatedRoom,
    ) -> CoreResult<RoomEvents<'g>> {
        let mut state = HashMap::new();
        let mut contents = HashMap::new();
        for entry in self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?
        {
            if let Some(e) = self.store.federation_event(&entry.event_id).await? {
                contents.insert(entry.event_id.clone(), e.pdu["content"].clone());
            }
            state.insert((entry.event_type, entry.state_key), entry.event_id);
        }
        let prev = self
            .store
            .federation_extremities(&room.matrix_room_id)
            .await?;
        let mut depth = 0;
        for id in &prev {
            if let Some(e) = self.store.federation_event(id).await? {
                depth = depth.max(e.depth);
            }
        }
        Ok(RoomEvents {
            gateway,
            version: room.room_version.clone(),
            room_id: Some(room.matrix_room_id.clone()),
            state,
            contents,
            prev,
            depth,
            made: vec![],
            states_before: vec![],
        })
    }

    /// The outbox items sending `pdu` to every server in `servers` but ours.
    pub(crate) fn pdu_deliveries(
        &self,
        servers: &BTreeSet<String>,
        ours: &str,
        pdu: &Value,
    ) -> Vec<Change> {
        servers
            .iter()
            .filter(|s| s.as_str() != ours)
            .map(|destination| {
                self.enqueue_in(
                    FEDERATION_PDU,
                    Some(format!("federation:{destination}")),
                    json!({"destination": destination, "txn_id": random_id(), "pdu": pdu}),
                )
            })
            .collect()
    }

    /// The servers with a joined member in a room, as stored, that we may send its events to.
    pub(crate) async fn joined_servers(
        &self,
        room: &FederatedRoom,
    ) -> CoreResult<BTreeSet<String>> {
        let mut servers = BTreeSet::new();
        for entry in self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?
        {
            if entry.event_type != "m.room.member" {
                continue;
            }
            let Some(server) = server_of(&entry.state_key) else {
                continue;
            };
            if servers.contains(server) {
                continue;
            }
            let joined = self
                .store
                .federation_event(&entry.event_id)
                .await?
                .is_some_and(|e| e.pdu["content"]["membership"] == json!("join"));
            if joined {
                servers.insert(server.to_string());
            }
        }
        // Only servers we may send the room's events to (policy and the room's server ACL).
        self.sendable_servers(&room.matrix_room_id, servers).await
    }

    /// A local user's membership change in a federated room (`leave` for a leave or a kick by
    /// `by`): the event and its deliveries, to commit with the Rocket.Chat change. `None`
    /// when the room is not federated or the user is not in it on the Matrix side.
    pub(crate) async fn federated_membership_out(
        &self,
        rid: &str,
        user: &User,
        by: Option<&User>,
        membership: &str,
    ) -> CoreResult<Option<Vec<Change>>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(None);
        };
        let Some(room) = self.store.federated_room(rid).await? else {
            return Ok(None);
        };
        let ours = gateway.server_name().to_string();
        let target = matrix_id(user, &ours);
        let sender = matrix_id(by.unwrap_or(user), &ours);
        // Remote users leave through their own servers; we can only kick them.
        if by.is_none() && server_of(&target) != Some(ours.as_str()) {
            return Ok(None);
        }
        let mut events = self.room_events(gateway.as_ref(), &room).await?;
        if !matches!(
            events.membership(&target).as_deref(),
            Some("join" | "invite")
        ) {
            return Ok(None);
        }
        if events.membership(&sender).as_deref() != Some("join") {
            return Ok(None);
        }
        let mut servers = self.joined_servers(&room).await?;
        if let Some(s) = server_of(&target) {
            servers.insert(s.to_string());
        }
        let servers = self.sendable_servers(&room.matrix_room_id, servers).await?;
        let removed = events.prev.clone();
        let (_, pdu) = events.add(
            "m.room.member",
            &sender,
            Some(&target),
            json!({"membership": membership}),
        )?;
        let mut changes = events.changes(removed);
        changes.extend(self.pdu_deliveries(&servers, &ours, &pdu));
        Ok(Some(changes))
    }

    /// Local users joining a federated room (`channels.join`, added by `by`): each one's join
    /// event, after an invite by `by` where the room is invite-only. Nothing when the room is
    /// not federated; remote users are skipped (they join through their servers).
    pub(crate) async fn federated_local_joins(
        &self,
        rid: &str,
        by: &User,
        users: &[User],
    ) -> CoreResult<Vec<Change>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(vec![]);
        };
        let Some(room) = self.store.federated_room(rid).await? else {
            return Ok(vec![]);
        };
        let ours = gateway.server_name().to_string();
        let mut events = self.room_events(gateway.as_ref(), &room).await?;
        let servers = self.joined_servers(&room).await?;
        let removed = events.prev.clone();
        let inviter = matrix_id(by, &ours);
        for user in users {
            let id = matrix_id(user, &ours);
            if server_of(&id) != Some(ours.as_str())
                || events.membership(&id).as_deref() == Some("join")
            {
                continue;
            }
            if events.membership(&id).as_deref() == Some("ban") {
                return Err(CoreError::bad(
                    "error-federation-banned",
                    "That user is banned from this room on the Matrix side",
                ));
            }
            let public = events.join_rule().as_deref() == Some("public");
            if !public && events.membership(&id).as_deref() != Some("invite") {
                if events.membership(&inviter).as_deref() != Some("join") {
                    return Err(CoreError::bad(
                        "error-federation-not-joined",
                        "You are not joined to this room on the Matrix side",
                    ));
                }
                events.add(
                    "m.room.member",
                    &inviter,
                    Some(&id),
                    member_content("invite", user, &ours),
                )?;
            }
            events.add(
                "m.room.member",
                &id,
                Some(&id),
                member_content("join", user, &ours),
            )?;
        }
        if events.made.is_empty() {
            return Ok(vec![]);
        }
        let mut changes = events.changes(removed);
        for (i, e) in events.made.iter().enumerate() {
            // A destination's items go oldest first: the invite before the join it allows.
            for mut c in self.pdu_deliveries(&servers, &ours, &e.pdu) {
                if let Change::Enqueue(item) = &mut c {
                    item.created_at =
                        apogee_domain::Timestamp::from_millis(item.created_at.millis() + i as i64);
                }
                changes.push(c);
            }
        }
        Ok(changes)
    }

    /// Invites the Matrix user `mxid` into a room (`channels.invite` / `groups.invite` with a
    /// Matrix id, `/federation invite`): the room is federated first if it is not, the remote
    /// user made as Rocket.Chat does, the invite sent to their server with `v2/invite` and,
    /// counter-signed, committed with the rest. They become a member when they join.
    pub async fn invite_remote_user(
        &self,
        actor: &User,
        rid: &str,
        mxid: &str,
    ) -> CoreResult<Room> {
        self.authz.require(actor, "access-federation", None)?;
        let gateway = self.federation_gateway()?.clone();
        let ours = gateway.server_name().to_string();
        let mxid = mxid.trim();
        if !is_matrix_id(mxid) {
            return Err(CoreError::bad("error-invalid-user", "Not a Matrix user id"));
        }
        if server_of(mxid) == Some(ours.as_str()) {
            return Err(CoreError::bad(
                "error-invalid-user",
                "That user is on this server: invite them by username",
            ));
        }
        let mut room = self
            .store
            .room_by_id(rid)
            .await?
            .ok_or_else(CoreError::room_not_found)?;
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        let allowed = (sub.is_some()
            && self
                .authz
                .has_in(actor, "add-user-to-joined-room", sub.as_ref()))
            || (room.t == RoomType::Channel && self.authz.has(actor, "add-user-to-any-c-room"))
            || (room.t == RoomType::Group && self.authz.has(actor, "add-user-to-any-p-room"));
        // As `add_users`: a DM's members are fixed when it is made.
        if room.is_direct() || !allowed {
            return Err(CoreError::unauthorized());
        }
        let (remote, insert_user) = self
            .remote_user(&RemoteMember {
                user_id: mxid.to_string(),
                displayname: None,
            })
            .await?;
        if self
            .store
            .subscription(&room.id, &remote.id)
            .await?
            .is_some()
        {
            return Ok(room);
        }
        let mut changes: Vec<Change> = insert_user.into_iter().collect();
        let mut users = Vec::new();
        let mapped = self.store.federated_room(&room.id).await?;
        let (_mapped, mut events, servers, removed) = match mapped {
            Some(m) => {
                let events = self.room_events(gateway.as_ref(), &m).await?;
                let servers = self.joined_servers(&m).await?;
                let removed = events.prev.clone();
                (m, events, servers, removed)
            }
            None => {
                // The first remote user: the room gets its Matrix side in this batch.
                let (subs, _) = self
                    .store
                    .subscriptions_of_room(&room.id, crate::store::Page::ALL)
                    .await?;
                for s in &subs {
                    if let Some(u) = self.store.user_by_id(&s.u.id).await? {
                        users.push((u, s.roles.clone()));
                    }
                }
                let members: Vec<LocalMember<'_>> = users
                    .iter()
                    .map(|(u, roles)| LocalMember { user: u, roles })
                    .collect();
                let creator = match room.u.as_ref() {
                    Some(owner) => users.iter().find(|(u, _)| u.id == owner.id),
                    None => None,
                }
                .map(|(u, _)| u.clone())
                .unwrap_or_else(|| actor.clone());
                let (m, events) =
                    self.federate_room(gateway.as_ref(), &mut room, &creator, &members)?;
                room.updated_at = apogee_domain::Timestamp::now();
                changes.push(Change::UpdateRoom(room.clone()));
                changes.push(Change::InsertFederatedRoom(m.clone()));
                (m, events, BTreeSet::new(), vec![])
            }
        };
        let sender = matrix_id(actor, &ours);
        if events.membership(&sender).as_deref() != Some("join") {
            return Err(CoreError::bad(
                "error-federation-not-joined",
                "You are not joined to this room on the Matrix side",
            ));
        }
        if matches!(events.membership(mxid).as_deref(), Some("join" | "ban")) {
            return Err(CoreError::bad(
                "error-federation-invite",
                "That user is already in the room or banned from it",
            ));
        }
        let signed = self
            .send_matrix_invite(
                gateway.as_ref(),
                &mut events,
                &sender,
                mxid,
                room.is_direct(),
            )
            .await?;
        changes.extend(events.changes(removed));
        changes.extend(self.pdu_deliveries(&servers, &ours, &signed));
        self.commit(changes).await?;
        self.store
            .room_by_id(&room.id)
            .await?
            .ok_or_else(CoreError::room_not_found)
    }

    /// Makes the invite of `mxid` by `sender`, has the invitee's server counter-sign it
    /// (`v2/invite`) and keeps that copy; returns it.
    async fn send_matrix_invite(
        &self,
        gateway: &dyn FederationGateway,
        events: &mut RoomEvents<'_>,
        sender: &str,
        mxid: &str,
        is_direct: bool,
    ) -> CoreResult<Value> {
        let mut content = json!({"membership": "invite"});
        if is_direct {
            content["is_direct"] = json!(true);
        }
        let (event_id, pdu) = events.add("m.room.member", sender, Some(mxid), content)?;
        let stripped = stripped_state(events, self).await;
        let signed = gateway
            .send_invite(&events.version, &event_id, pdu, stripped)
            .await
            .map_err(|e| {
                tracing::info!(invitee = mxid, error = %e, "federated invite refused");
                CoreError::bad("error-federation-invite", format!("Could not invite: {e}"))
            })?;
        events.replace_pdu(&event_id, signed.clone());
        Ok(signed)
    }

    /// A new DM with remote users (`im.create` with Matrix ids): a Matrix room whose join rule
    /// is invite, the local members joined, each remote one invited with `is_direct`.
    pub(crate) async fn federate_direct(
        &self,
        actor: &User,
        room: &mut Room,
        members: &[User],
    ) -> CoreResult<Vec<Change>> {
        self.authz.require(actor, "access-federation", None)?;
        let gateway = self.federation_gateway()?.clone();
        let ours = gateway.server_name().to_string();
        let none = Vec::new();
        let local: Vec<LocalMember<'_>> = members
            .iter()
            .filter(|u| {
                !u.roles
                    .iter()
                    .any(|r| r == crate::federated_rooms::FEDERATED_ROLE)
            })
            .map(|u| LocalMember {
                user: u,
                roles: &none,
            })
            .collect();
        let (mapped, mut events) = self.federate_room(gateway.as_ref(), room, actor, &local)?;
        let sender = matrix_id(actor, &ours);
        for remote in members.iter().filter(|u| {
            u.roles
                .iter()
                .any(|r| r == crate::federated_rooms::FEDERATED_ROLE)
        }) {
            self.send_matrix_invite(
                gateway.as_ref(),
                &mut events,
                &sender,
                &remote.username,
                true,
            )
            .await?;
        }
        let mut changes = vec![Change::InsertFederatedRoom(mapped)];
        changes.extend(events.changes(vec![]));
        Ok(changes)
    }

    /// Serving `make_join` / `make_leave`: the event template for `user_id` (of the asking
    /// server) to join or leave the Matrix room. A join needs the room public or an invite; a
    /// leave needs the user joined or invited. Returns the room version and the template.
    pub async fn federation_membership_template(
        &self,
        matrix_room_id: &str,
        user_id: &str,
        membership: &str,
    ) -> CoreResult<(String, Value)> {
        let gateway = self.federation_gateway()?.clone();
        let ours = gateway.server_name().to_string();
        if !is_matrix_id(user_id) || server_of(user_id) == Some(ours.as_str()) {
            return Err(CoreError::bad("error-invalid-user", "Not a remote user"));
        }
        let room = self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
            .ok_or_else(CoreError::room_not_found)?;
        self.require_room_acl(matrix_room_id, server_of(user_id).unwrap_or_default())
            .await?;
        let events = self.room_events(gateway.as_ref(), &room).await?;
        let current = events.membership(user_id);
        let allowed = match membership {
            "join" => match current.as_deref() {
                Some("ban") => false,
                Some("join" | "invite") => true,
                _ => events.join_rule().as_deref() == Some("public"),
            },
            "leave" => matches!(current.as_deref(), Some("join" | "invite")),
            _ => false,
        };
        if !allowed {
            return Err(CoreError::not_allowed(format!(
                "{user_id} may not {membership} this room"
            )));
        }
        let content = json!({"membership": membership});
        let auth = events.auth_events("m.room.member", user_id, Some(user_id), &content);
        let mut template = json!({
            "type": "m.room.member",
            "room_id": matrix_room_id,
            "sender": user_id,
            "state_key": user_id,
            "content": content,
            "prev_events": events.prev,
            "auth_events": auth,
            "depth": events.depth + 1,
            "origin_server_ts": apogee_domain::Timestamp::now().millis(),
        });
        if room.room_version == "10" {
            template["origin"] = json!(server_of(user_id).unwrap_or_default());
        }
        Ok((room.room_version, template))
    }

    /// Serving `v2/invite`: whether the local user `localpart` may be invited (an active
    /// person). Returns them.
    pub async fn federation_invitee(&self, localpart: &str) -> CoreResult<User> {
        self.federation_gateway()?;
        let user = self
            .store
            .user_by_username(localpart)
            .await?
            .filter(|u| u.active && u.kind == "user")
            .ok_or_else(|| CoreError::bad("error-invalid-user", "No such user"))?;
        Ok(user)
    }

    /// Accepts a remote invite for `user` as Rocket.Chat does: joins the Matrix room through
    /// the inviting server, which maps it and subscribes the user (a DM when the invite says
    /// `is_direct`). The invite is the permission: no `access-federation` check.
    pub async fn accept_federated_invite(
        &self,
        user: &User,
        matrix_room_id: &str,
        via: &str,
        is_direct: bool,
    ) -> CoreResult<Room> {
        self.join_matrix_room(user, matrix_room_id, Some(via), is_direct)
            .await
    }
}

fn member_content(membership: &str, user: &User, ours: &str) -> Value {
    let mut content = json!({"membership": membership});
    if let Some(name) = user.name.as_ref().filter(|n| !n.trim().is_empty()) {
        content["displayname"] = json!(name);
    }
    // Our users' pictures are served from our media endpoint (remote users have none here).
    if server_of(&matrix_id(user, ours)) == Some(ours)
        && let Some(url) = crate::federated_avatars::avatar_mxc(user, ours)
    {
        content["avatar_url"] = json!(url);
    }
    content
}

/// The state sent with an invite: join rules, name, topic stripped (type, state key, sender,
/// content), and the create event whole (newer Synapses check it).
async fn stripped_state(events: &RoomEvents<'_>, core: &Core) -> Vec<Value> {
    let mut out = Vec::new();
    for ((t, k), id) in &events.state {
        if !matches!(
            t.as_str(),
            "m.room.create" | "m.room.join_rules" | "m.room.name" | "m.room.topic"
        ) {
            continue;
        }
        let pdu = match events.made.iter().find(|e| &e.event_id == id) {
            Some(e) => e.pdu.clone(),
            None => match core.store.federation_event(id).await {
                Ok(Some(e)) => e.pdu,
                _ => continue,
            },
        };
        if t == "m.room.create" {
            out.push(pdu);
        } else {
            out.push(json!({
                "type": t, "state_key": k, "sender": pdu["sender"], "content": pdu["content"],
            }));
        }
    }
    out
}
