//! Rooms shared with Matrix servers. The `apogee-federation` adapter speaks the protocol
//! (signatures, hashes, auth rules) behind [`FederationGateway`]; core decides who may do what
//! and commits the Rocket.Chat side together with the Matrix rows in one batch, so a crash can
//! never leave a message without its event or an event without its message.
//!
//! Remote users are users whose username is their full Matrix id (`@alice:synapse.test`), role
//! `federated-external`, with `federated: true` and `federation: {version, mui, origin}` on the
//! document, as Rocket.Chat does; they have no password and cannot log in.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::rooms::RoomRef;
use crate::store::{
    Change, FederatedRoom, FederationEvent, FederationEventKind, FederationStateEntry,
};
use apogee_domain::{Room, RoomType, User, random_id};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// The role remote users hold (it grants nothing here: they act only through federation).
pub const FEDERATED_ROLE: &str = "federated-external";

/// The protocol side of federation, implemented by the `apogee-federation` adapter. Errors are
/// plain text for the operator; the remote party's words are never trusted as an error id.
/// It also delivers the outbox's `federation.pdu` items (as a [`crate::outbox::Deliverer`]).
#[async_trait]
pub trait FederationGateway: crate::outbox::Deliverer + Send + Sync {
    /// Our Matrix server name.
    fn server_name(&self) -> &str;
    /// Completes one of our events (`type`, `room_id`, `sender`, `content`, `prev_events`,
    /// `auth_events`, `depth`) in room version `room_version`: timestamp, content hash,
    /// signature. Returns its event id and the PDU.
    fn sign_event(&self, room_version: &str, event: Value) -> Result<(String, Value), String>;
    /// Queues an ephemeral event (typing, receipt) for each of `destinations`; one waiting
    /// with the same `key` is replaced. Never stored: lost on a restart.
    fn send_edu(&self, destinations: &[String], key: Option<String>, edu: Value);
    /// Joins `localpart` to the Matrix room `room_id` through `via` (make_join / send_join),
    /// checking every PDU of the room's state and auth chain.
    async fn join_remote_room(
        &self,
        localpart: &str,
        room_id: &str,
        via: &str,
    ) -> Result<JoinedRoom, String>;
    /// Downloads `mxc://server/media_id` through the server's federation media endpoint:
    /// its declared type and bytes, refused past `max` bytes.
    async fn fetch_media(
        &self,
        server: &str,
        media_id: &str,
        max: u64,
    ) -> Result<(String, Vec<u8>), String>;
    /// Fetches up to `limit` events of `matrix_room_id`'s history before the oldest we hold
    /// (`/backfill` from a server in the room), checks them and keeps them through
    /// [`Core::save_backfilled_events`]. Returns how many were new (0: nothing older).
    async fn backfill(&self, matrix_room_id: &str, limit: usize) -> Result<usize, String>;
    /// Sends our invite event `event_id` (`pdu`, signed by us) to the invitee's server with
    /// `v2/invite` and `invite_room_state`; returns the event counter-signed by that server.
    async fn send_invite(
        &self,
        room_version: &str,
        event_id: &str,
        pdu: Value,
        invite_room_state: Vec<Value>,
    ) -> Result<Value, String>;
}

/// A Matrix room as joined: what core needs to map it, all checked by the adapter.
#[derive(Debug, Clone)]
pub struct JoinedRoom {
    pub matrix_room_id: String,
    pub room_version: String,
    /// The server we joined through.
    pub origin: String,
    /// `m.room.name`, `m.room.topic`.
    pub name: Option<String>,
    pub topic: Option<String>,
    /// `join_rule: public` (a channel) or not (a private group).
    pub public: bool,
    /// Remote users joined to the room, with their display names.
    pub members: Vec<RemoteMember>,
    /// Users invited and not yet joined, ours included (in a DM they are members already).
    pub invited: Vec<RemoteMember>,
    /// `(user id, mxc:// URL)` of the joined remote members that have an `avatar_url`.
    pub avatars: Vec<(String, String)>,
    /// `(sender, mxc:// URL)` of the room's `m.room.avatar`, if it has a picture.
    pub picture: Option<(String, String)>,
    /// The room's state and auth chain (outliers) and our join (timeline).
    pub events: Vec<FederationEvent>,
    /// Current state after our join.
    pub state: Vec<FederationStateEntry>,
    /// Our join event: the room's only forward extremity we know.
    pub join_event_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteMember {
    /// `@localpart:server`.
    pub user_id: String,
    pub displayname: Option<String>,
}

/// The server part of a Matrix user id.
pub fn server_of(user_id: &str) -> Option<&str> {
    user_id
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, server)| server)
        .filter(|s| !s.is_empty())
}

impl Core {
    /// Lets this node federate (set once, at start, when `--server-name` is given).
    pub fn attach_federation(&self, gateway: Arc<dyn FederationGateway>) {
        let _ = self.federation.set(gateway);
    }

    fn gateway(&self) -> CoreResult<&Arc<dyn FederationGateway>> {
        self.federation.get().ok_or_else(|| {
            CoreError::bad(
                "error-federation-disabled",
                "Federation is not enabled on this server",
            )
        })
    }

    /// The Matrix room a Rocket.Chat room is, if federated.
    pub async fn federated_room(&self, rid: &str) -> CoreResult<Option<FederatedRoom>> {
        Ok(self.store.federated_room(rid).await?)
    }

    /// The Rocket.Chat room a Matrix room is mapped to.
    pub async fn federated_room_by_matrix_id(
        &self,
        matrix_room_id: &str,
    ) -> CoreResult<Option<FederatedRoom>> {
        Ok(self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?)
    }

    /// A stored PDU.
    pub async fn federation_event(&self, event_id: &str) -> CoreResult<Option<FederationEvent>> {
        Ok(self.store.federation_event(event_id).await?)
    }

    /// A Matrix room's current state.
    pub async fn federation_room_state(
        &self,
        matrix_room_id: &str,
    ) -> CoreResult<Vec<FederationStateEntry>> {
        Ok(self.store.federation_room_state(matrix_room_id).await?)
    }

    /// A Matrix room's forward extremities.
    pub async fn federation_extremities(&self, matrix_room_id: &str) -> CoreResult<Vec<String>> {
        Ok(self.store.federation_extremities(matrix_room_id).await?)
    }

    /// A Matrix room's oldest timeline events (see [`crate::store::FederationStore::federation_oldest_events`]).
    pub async fn federation_oldest_events(
        &self,
        matrix_room_id: &str,
        limit: i64,
    ) -> CoreResult<Vec<FederationEvent>> {
        Ok(self
            .store
            .federation_oldest_events(matrix_room_id, limit)
            .await?)
    }

    /// `federation/joinExternalPublicRoom`: `actor` joins the Matrix room `external_room_id`
    /// (`!id:server`; `via` names the server to ask when the id has no server part, as in
    /// room version 12). Makes the mapped room, the remote members and everyone's
    /// subscriptions; `access-federation` is needed.
    pub async fn join_external_room(
        &self,
        actor: &User,
        external_room_id: &str,
        via: Option<&str>,
    ) -> CoreResult<Room> {
        self.authz.require(actor, "access-federation", None)?;
        self.join_matrix_room(actor, external_room_id, via, false)
            .await
    }

    /// Joins a Matrix room (checked by the caller); `direct`: it becomes a DM (an invite with
    /// `is_direct`).
    pub(crate) async fn join_matrix_room(
        &self,
        actor: &User,
        external_room_id: &str,
        via: Option<&str>,
        direct: bool,
    ) -> CoreResult<Room> {
        let gateway = self.gateway()?.clone();
        let bad_id = || {
            CoreError::bad(
                "error-invalid-room-id",
                "externalRoomId must be a Matrix room id (!id:server)",
            )
        };
        let room_id = external_room_id.trim();
        if !room_id.starts_with('!') || room_id.len() < 2 || room_id.len() > 255 {
            return Err(bad_id());
        }
        let via = match (
            via.map(str::trim).filter(|v| !v.is_empty()),
            room_id.split_once(':'),
        ) {
            (Some(v), _) => v.to_string(),
            (None, Some((_, server))) if !server.is_empty() => server.to_string(),
            _ => return Err(bad_id()),
        };
        if via == gateway.server_name() {
            return Err(bad_id());
        }
        self.require_federation_server(&via)?;
        if let Some((_, server)) = room_id.split_once(':') {
            self.require_federation_server(server)?;
        }
        let mapped = self.store.federated_room_by_matrix_id(room_id).await?;
        let existing = match &mapped {
            Some(m) => Some(self.find_room(&RoomRef::Id(m.rid.clone())).await?),
            None => None,
        };
        // Already a member on both sides: joining again answers the room. (A DM's members are
        // subscribed when it is made; an invited one still makes their own Matrix join.)
        let subscribed = match &existing {
            Some(room) => self
                .store
                .subscription(&room.id, &actor.id)
                .await?
                .is_some(),
            None => false,
        };
        if let Some(room) = &existing
            && subscribed
            && self
                .matrix_membership(
                    room_id,
                    &format!("@{}:{}", actor.username, gateway.server_name()),
                )
                .await?
                .as_deref()
                == Some("join")
        {
            return Ok(room.clone());
        }
        let joined = gateway
            .join_remote_room(&actor.username, room_id, &via)
            .await
            .map_err(|e| {
                tracing::info!(room = room_id, error = %e, "federated join failed");
                CoreError::bad("error-federation-join", format!("Could not join: {e}"))
            })?;
        // The state before our join: what send_join answered (our join is its last entry).
        let before_join: Vec<FederationStateEntry> = joined
            .state
            .iter()
            .filter(|e| e.event_id != joined.join_event_id)
            .cloned()
            .collect();
        let mut join_state = self
            .event_state_changes(&joined.join_event_id, before_join)
            .await?;
        // The pictures of the members already there, fetched after the join (outbox).
        let avatars = self.member_avatars_item(&joined.avatars);
        let picture = joined.picture.clone();
        let mut wake_outbox = avatars.is_some();
        join_state.extend(avatars);
        let mut changes = match existing {
            // Another local user is in the room already: this one's join is one more event.
            Some(room) => {
                let rid = room.id.clone();
                let mut changes = if subscribed {
                    vec![]
                } else {
                    self.join_changes(room, actor, None, true)
                };
                changes.push(Change::SaveFederationEvents(joined.events));
                changes.push(Change::SetFederationRoomState {
                    matrix_room_id: joined.matrix_room_id.clone(),
                    entries: joined.state,
                });
                let known = self.store.federation_extremities(room_id).await?;
                changes.push(Change::SetFederationExtremities {
                    matrix_room_id: joined.matrix_room_id,
                    remove: known,
                    add: vec![joined.join_event_id],
                });
                changes.extend(join_state);
                self.commit(changes).await?;
                if wake_outbox {
                    self.outbox_wake.notify_one();
                }
                return self.find_room(&RoomRef::Id(rid)).await;
            }
            None if direct => self.joined_direct_changes(actor, joined).await?,
            None => self.joined_room_changes(actor, joined).await?,
        };
        changes.extend(join_state);
        let rid = changes
            .iter()
            .find_map(|c| match c {
                Change::InsertFederatedRoom(m) => Some(m.rid.clone()),
                _ => None,
            })
            .ok_or_else(|| CoreError::internal("federated join made no room"))?;
        // A new room's picture, fetched after the join (outbox) like later changes of it.
        if let Some((sender, url)) = picture {
            changes.push(self.room_picture_item(&rid, &sender, &url));
            wake_outbox = true;
        }
        self.commit(changes).await?;
        if wake_outbox {
            self.outbox_wake.notify_one();
        }
        self.find_room(&RoomRef::Id(rid)).await
    }

    /// The membership (`join`, `invite`, `leave`, `ban`) of `user_id` in a Matrix room's
    /// current state as we hold it.
    pub(crate) async fn matrix_membership(
        &self,
        matrix_room_id: &str,
        user_id: &str,
    ) -> CoreResult<Option<String>> {
        let state = self.store.federation_room_state(matrix_room_id).await?;
        let Some(entry) = state
            .iter()
            .find(|e| e.event_type == "m.room.member" && e.state_key == user_id)
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .federation_event(&entry.event_id)
            .await?
            .and_then(|e| e.pdu["content"]["membership"].as_str().map(str::to_string)))
    }

    pub(crate) async fn joined_room_changes(
        &self,
        actor: &User,
        joined: JoinedRoom,
    ) -> CoreResult<Vec<Change>> {
        // Rocket.Chat's name for a room made from a Matrix room: the id without `!`, `:` → `_`.
        let name = joined
            .matrix_room_id
            .trim_start_matches('!')
            .replace(':', "_");
        let t = if joined.public {
            RoomType::Channel
        } else {
            RoomType::Group
        };
        let mut room = Room::new(random_id(), t, Some(name), None);
        room.fname = joined.name.clone().filter(|n| !n.trim().is_empty());
        room.topic = joined.topic.clone();
        mark_federated(&mut room, &joined);
        let (members, mut changes) = self.room_members(actor, &joined.members).await?;
        // `usersCount` follows from the subscriptions (the store counts them).
        changes.insert(0, Change::InsertRoom(room.clone()));
        for member in &members {
            changes.push(Change::InsertSubscription(
                self.new_subscription(&room, member),
            ));
        }
        changes.extend(mapping_changes(&room.id, joined));
        Ok(changes)
    }

    /// `actor` and the users standing for `others` (made when new: the changes), each once.
    pub(crate) async fn room_members(
        &self,
        actor: &User,
        others: &[RemoteMember],
    ) -> CoreResult<(Vec<User>, Vec<Change>)> {
        let mut changes = Vec::new();
        let mut members = vec![actor.clone()];
        for member in others {
            let (user, insert) = self.remote_user(member).await?;
            changes.extend(insert);
            if !members.iter().any(|m| m.id == user.id) {
                members.push(user);
            }
        }
        Ok((members, changes))
    }

    /// The user standing for a remote Matrix user, and the change that creates them when they
    /// are new.
    pub(crate) async fn remote_user(
        &self,
        member: &RemoteMember,
    ) -> CoreResult<(User, Option<Change>)> {
        if let Some(user) = self.store.user_by_username(&member.user_id).await? {
            return Ok((user, None));
        }
        // One of ours named by Matrix id (a kick of a local user by another server, say).
        if let Some(gateway) = self.federation.get()
            && server_of(&member.user_id) == Some(gateway.server_name())
        {
            let localpart = member.user_id[1..].split_once(':').map_or("", |(l, _)| l);
            let user = self
                .store
                .user_by_username(localpart)
                .await?
                .ok_or_else(|| CoreError::bad("error-invalid-user", "No such local user"))?;
            return Ok((user, None));
        }
        let origin = server_of(&member.user_id)
            .ok_or_else(|| CoreError::bad("error-invalid-user", "Not a Matrix user id"))?;
        let mut user = User::new(
            random_id(),
            member.user_id.clone(),
            member
                .displayname
                .clone()
                .filter(|n| !n.trim().is_empty())
                .or_else(|| Some(member.user_id.clone())),
            "user",
            vec![FEDERATED_ROLE.into()],
        );
        user.extra.insert("federated".into(), Value::Bool(true));
        user.extra.insert(
            "federation".into(),
            json!({"version": 1, "mui": member.user_id, "origin": origin}),
        );
        Ok((
            user.clone(),
            Some(Change::InsertUser {
                user,
                password_hash: None,
            }),
        ))
    }
}

/// `federated: true` and `federation: {mrid, origin}` on a room mapped to `joined`.
pub(crate) fn mark_federated(room: &mut Room, joined: &JoinedRoom) {
    room.extra.insert("federated".into(), Value::Bool(true));
    room.extra.insert(
        "federation".into(),
        json!({"mrid": joined.matrix_room_id, "origin": joined.origin}),
    );
}

/// The Matrix side of a room we joined, mapped to `rid`: the mapping, the events, the state
/// and our join as the only extremity.
pub(crate) fn mapping_changes(rid: &str, joined: JoinedRoom) -> Vec<Change> {
    vec![
        Change::InsertFederatedRoom(FederatedRoom {
            rid: rid.to_string(),
            matrix_room_id: joined.matrix_room_id.clone(),
            room_version: joined.room_version,
            origin: joined.origin,
        }),
        Change::SaveFederationEvents(joined.events),
        Change::SetFederationRoomState {
            matrix_room_id: joined.matrix_room_id.clone(),
            entries: joined.state,
        },
        Change::SetFederationExtremities {
            matrix_room_id: joined.matrix_room_id,
            remove: vec![],
            add: vec![joined.join_event_id],
        },
    ]
}

/// An outlier event row (state or auth chain learned when joining).
pub fn outlier(event_id: &str, matrix_room_id: &str, depth: i64, pdu: Value) -> FederationEvent {
    FederationEvent {
        event_id: event_id.into(),
        matrix_room_id: matrix_room_id.into(),
        message_id: None,
        kind: FederationEventKind::Outlier,
        depth,
        pdu,
    }
}

#[cfg(test)]
mod tests {
    use super::server_of;

    #[test]
    fn server_of_a_user_id() {
        assert_eq!(server_of("@alice:synapse.test"), Some("synapse.test"));
        assert_eq!(server_of("@alice:localhost:8448"), Some("localhost:8448"));
        assert_eq!(server_of("@alice:"), None);
        assert_eq!(server_of("alice:x"), None);
    }
}
