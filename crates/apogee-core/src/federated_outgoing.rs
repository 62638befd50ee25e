//! Local changes to a federated room become Matrix events: built here as JSON (auth events
//! from the room's state, `prev_events` = its forward extremities, depth one more than theirs),
//! hashed and signed by the adapter, and committed in the use-case's own batch with the event
//! row, the new extremity and one outbox item per other server in the room (kind
//! [`FEDERATION_PDU`], queue `federation:<server>`): delivered in order per destination,
//! retried with a backoff capped at an hour and never given up.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_content::text_content;
use crate::federated_rooms::{FEDERATED_ROLE, server_of};
use crate::store::{
    Change, FederatedRoom, FederationEvent, FederationEventKind, FederationStateEntry,
};
use apogee_domain::{Message, User, random_id};
use serde_json::{Value, json};

/// The outbox kind of a PDU for one destination: `{destination, txn_id, pdu}`.
pub const FEDERATION_PDU: &str = "federation.pdu";
/// A destination's outbox queue is this followed by its server name.
pub const QUEUE_PREFIX: &str = "federation:";

/// What a local user did, as a Matrix event.
pub(crate) enum Outgoing<'a> {
    Message {
        message: &'a Message,
    },
    Edit {
        target: &'a str,
        message: &'a Message,
    },
    Reaction {
        target: &'a str,
        key: String,
    },
    Redaction {
        target: &'a str,
    },
    /// The sender's display name or avatar changed: a new `m.room.member` join carrying them.
    Profile {
        displayname: Option<&'a str>,
        avatar_url: Option<String>,
    },
}

/// The changes that send one event, and its id.
pub(crate) struct Sent {
    pub changes: Vec<Change>,
    pub event_id: String,
}

impl Core {
    /// The Matrix event for a local change in room `rid`, if the room is federated (and this
    /// server federates; remote users' events come from their own servers). `message_id` is
    /// the Rocket.Chat message the event is about.
    pub(crate) async fn federation_outgoing(
        &self,
        rid: &str,
        actor: &User,
        message_id: &str,
        out: Outgoing<'_>,
    ) -> CoreResult<Option<Sent>> {
        self.federation_outgoing_event(rid, actor, Some(message_id), out)
            .await
    }

    /// [`Core::federation_outgoing`] for events about no message (`message_id` `None`).
    pub(crate) async fn federation_outgoing_event(
        &self,
        rid: &str,
        actor: &User,
        message_id: Option<&str>,
        out: Outgoing<'_>,
    ) -> CoreResult<Option<Sent>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(None);
        };
        if actor.roles.iter().any(|r| r == FEDERATED_ROLE) {
            return Ok(None);
        }
        let Some(room) = self.store.federated_room(rid).await? else {
            return Ok(None);
        };
        let ours = gateway.server_name().to_string();
        let sender = format!("@{}:{ours}", actor.username);
        let state = self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?;
        let state_id = |t: &str, k: &str| {
            state
                .iter()
                .find(|e| e.event_type == t && e.state_key == k)
                .map(|e| e.event_id.clone())
        };
        let not_joined = || {
            CoreError::bad(
                "error-federation-not-joined",
                "You are not joined to this room on the Matrix side",
            )
        };
        let mut auth_events = Vec::new();
        // From v12 the create event is implied by the room id.
        if room.room_version != "12" {
            auth_events.push(state_id("m.room.create", "").ok_or_else(not_joined)?);
        }
        auth_events.extend(state_id("m.room.power_levels", ""));
        auth_events.push(state_id("m.room.member", &sender).ok_or_else(not_joined)?);
        if matches!(out, Outgoing::Profile { .. }) {
            // A join (even to the same membership) is authorised by the join rules.
            auth_events.extend(state_id("m.room.join_rules", ""));
        }
        let prev_events = self
            .store
            .federation_extremities(&room.matrix_room_id)
            .await?;
        let mut depth = 0;
        for id in &prev_events {
            if let Some(e) = self.store.federation_event(id).await? {
                depth = depth.max(e.depth);
            }
        }
        let (event_type, content) = match &out {
            Outgoing::Message { message } => (
                "m.room.message",
                self.outgoing_message_content(message, &ours).await?,
            ),
            Outgoing::Edit { target, message } => {
                let new = text_content(message, &ours);
                let mut content = new.clone();
                content["body"] = json!(format!("* {}", message.msg));
                if let Some(html) = new.get("formatted_body").and_then(Value::as_str) {
                    content["formatted_body"] = json!(format!("* {html}"));
                }
                content["m.new_content"] = new;
                content["m.relates_to"] = json!({"rel_type": "m.replace", "event_id": target});
                ("m.room.message", content)
            }
            Outgoing::Reaction { target, key } => (
                "m.reaction",
                json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}),
            ),
            Outgoing::Redaction { target } => ("m.room.redaction", json!({"redacts": target})),
            Outgoing::Profile {
                displayname,
                avatar_url,
            } => {
                let mut content = json!({"membership": "join"});
                if let Some(name) = displayname {
                    content["displayname"] = json!(name);
                }
                if let Some(url) = avatar_url {
                    content["avatar_url"] = json!(url);
                }
                ("m.room.member", content)
            }
        };
        let mut event = json!({
            "type": event_type,
            "room_id": room.matrix_room_id,
            "sender": sender,
            "content": content,
            "prev_events": prev_events,
            "auth_events": auth_events,
            "depth": depth + 1,
        });
        if let Outgoing::Redaction { target } = &out
            && room.room_version == "10"
        {
            // Before v11 `redacts` is a top-level key.
            event["redacts"] = json!(target);
        }
        let state_key = matches!(out, Outgoing::Profile { .. }).then(|| sender.clone());
        if let Some(key) = &state_key {
            event["state_key"] = json!(key);
        }
        let (event_id, pdu) = gateway
            .sign_event(&room.room_version, event)
            .map_err(|e| CoreError::bad("error-federation", format!("Cannot sign event: {e}")))?;
        let mut changes = vec![
            Change::SaveFederationEvents(vec![FederationEvent {
                event_id: event_id.clone(),
                matrix_room_id: room.matrix_room_id.clone(),
                message_id: message_id.map(str::to_string),
                kind: FederationEventKind::Timeline,
                depth: depth + 1,
                pdu: pdu.clone(),
            }]),
            Change::SetFederationExtremities {
                matrix_room_id: room.matrix_room_id.clone(),
                remove: prev_events,
                add: vec![event_id.clone()],
            },
        ];
        changes.extend(self.event_state_changes(&event_id, state).await?);
        if let Some(key) = state_key {
            changes.push(Change::SetFederationRoomState {
                matrix_room_id: room.matrix_room_id.clone(),
                entries: vec![FederationStateEntry {
                    event_type: event_type.to_string(),
                    state_key: key,
                    event_id: event_id.clone(),
                }],
            });
        }
        for destination in self.federation_destinations(&room, &ours).await? {
            changes.push(self.enqueue_in(
                FEDERATION_PDU,
                Some(format!("{QUEUE_PREFIX}{destination}")),
                json!({"destination": destination, "txn_id": random_id(), "pdu": pdu}),
            ));
        }
        Ok(Some(Sent { changes, event_id }))
    }

    /// A local user's new display name or avatar, as a member event in each federated room
    /// they are in.
    pub(crate) async fn federated_profile_changes(&self, user: &User) -> CoreResult<Vec<Change>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(Vec::new());
        };
        let ours = gateway.server_name().to_string();
        let mut changes = Vec::new();
        for sub in self.store.subscriptions_of_user(&user.id).await? {
            if self.store.federated_room(&sub.rid).await?.is_none() {
                continue;
            }
            let out = Outgoing::Profile {
                displayname: user.name.as_deref().filter(|n| !n.trim().is_empty()),
                avatar_url: crate::federated_avatars::avatar_mxc(user, &ours),
            };
            match self
                .federation_outgoing_event(&sub.rid, user, None, out)
                .await
            {
                Ok(sent) => changes.extend(sent.into_iter().flat_map(|s| s.changes)),
                // A room the user has no Matrix membership in yet keeps the old name.
                Err(e) if e.code == "error-federation-not-joined" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changes)
    }

    /// The other servers with a joined member in the room that we federate with, sorted.
    pub(crate) async fn federation_destinations(
        &self,
        room: &FederatedRoom,
        ours: &str,
    ) -> CoreResult<Vec<String>> {
        let mut servers = std::collections::BTreeSet::new();
        for entry in self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?
        {
            if entry.event_type != "m.room.member" {
                continue;
            }
            let Some(server) = server_of(&entry.state_key).filter(|s| *s != ours) else {
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
        Ok(self
            .sendable_servers(&room.matrix_room_id, servers)
            .await?
            .into_iter()
            .collect())
    }

    /// The Matrix event a message was made by (its `federation.eventId`).
    pub(crate) fn event_id_of(message: &apogee_domain::Message) -> Option<&str> {
        message
            .extra
            .get("federation")
            .and_then(|f| f.get("eventId"))
            .and_then(Value::as_str)
    }
}
