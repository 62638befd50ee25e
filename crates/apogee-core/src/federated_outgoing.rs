//! Local changes to a federated room become Matrix events: built here as JSON (auth events
//! from the room's state, `prev_events` = its forward extremities, depth one more than theirs),
//! hashed and signed by the adapter, and committed in the use-case's own batch with the event
//! row, the new extremity and one outbox item per other server in the room (kind
//! [`FEDERATION_PDU`], queue `federation:<server>`): delivered in order per destination,
//! retried with a backoff capped at an hour and never given up.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_rooms::{FEDERATED_ROLE, server_of};
use crate::store::{Change, FederatedRoom, FederationEvent, FederationEventKind};
use apogee_domain::{User, random_id};
use serde_json::{Value, json};

/// The outbox kind of a PDU for one destination: `{destination, txn_id, pdu}`.
pub const FEDERATION_PDU: &str = "federation.pdu";

/// What a local user did, as a Matrix event.
pub(crate) enum Outgoing<'a> {
    Message { body: &'a str },
    Edit { target: &'a str, body: &'a str },
    Reaction { target: &'a str, key: String },
    Redaction { target: &'a str },
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
            Outgoing::Message { body } => {
                ("m.room.message", json!({"msgtype": "m.text", "body": body}))
            }
            Outgoing::Edit { target, body } => (
                "m.room.message",
                json!({
                    "msgtype": "m.text",
                    "body": format!("* {body}"),
                    "m.new_content": {"msgtype": "m.text", "body": body},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": target},
                }),
            ),
            Outgoing::Reaction { target, key } => (
                "m.reaction",
                json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}),
            ),
            Outgoing::Redaction { target } => ("m.room.redaction", json!({"redacts": target})),
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
        let (event_id, pdu) = gateway
            .sign_event(&room.room_version, event)
            .map_err(|e| CoreError::bad("error-federation", format!("Cannot sign event: {e}")))?;
        let mut changes = vec![
            Change::SaveFederationEvents(vec![FederationEvent {
                event_id: event_id.clone(),
                matrix_room_id: room.matrix_room_id.clone(),
                message_id: Some(message_id.to_string()),
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
        for destination in self.federation_destinations(&room, &ours).await? {
            changes.push(self.enqueue_in(
                FEDERATION_PDU,
                Some(format!("federation:{destination}")),
                json!({"destination": destination, "txn_id": random_id(), "pdu": pdu}),
            ));
        }
        Ok(Some(Sent { changes, event_id }))
    }

    /// The other servers with a joined member in the room, sorted.
    async fn federation_destinations(
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
        Ok(servers.into_iter().collect())
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
