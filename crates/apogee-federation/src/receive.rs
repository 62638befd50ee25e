//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs (at most 50) and EDUs (at
//! most 100) from another server. Every PDU is answered on its own: accepted (`{}`), or an
//! error naming why. A PDU goes through the receipt checks (format, signatures, hash, auth
//! against its auth events: drop or reject; against current state: soft-fail) and is then
//! applied by core in one batch with its event row. EDUs: typing (`m.typing`) and read
//! receipts (`m.receipt`, `m.read`) of the sending server's own users in rooms we share, and
//! presence (`m.presence`) of its users we know, are handed to core; others (device lists,
//! to-device) are accepted and ignored. An EDU
//! has no answer: one that cannot be applied is dropped with a log line.

use crate::Federation;
use crate::pdu::{self, Pdu, PduError};
use apogee_core::federated_events::IncomingEvent;
use ruma::OwnedEventId;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const MAX_PDUS: usize = 50;
pub const MAX_EDUS: usize = 100;
/// At most this many users' presence are read from one `m.presence` EDU.
const MAX_PRESENCE_PUSHES: usize = 500;

impl Federation {
    /// Handles the PDUs of one transaction from `origin`, in the order given (sorted by depth
    /// per room, so an event's predecessors of the same transaction come first); returns the
    /// per-PDU answers.
    pub async fn receive_pdus(&self, origin: &str, pdus: &[Value]) -> Map<String, Value> {
        let mut answers = Map::new();
        let mut ordered: Vec<&Value> = pdus.iter().collect();
        ordered.sort_by_key(|p| p.get("depth").and_then(Value::as_i64).unwrap_or(0));
        for raw in ordered {
            match self.receive_pdu(origin, raw).await {
                Ok(id) => {
                    answers.insert(id, json!({}));
                }
                Err((Some(id), e)) => {
                    tracing::info!(%origin, event_id = %id, error = %e, "PDU not accepted");
                    answers.insert(id, json!({"error": e.to_string()}));
                }
                Err((None, e)) => {
                    tracing::info!(%origin, error = %e, "unreadable PDU dropped");
                }
            }
        }
        answers
    }

    /// Applies the EDUs of one transaction from `origin` (after its PDUs, so a receipt may
    /// name an event of the same transaction).
    pub async fn receive_edus(&self, origin: &str, edus: &[Value]) {
        for edu in edus {
            let content = &edu["content"];
            match edu.get("edu_type").and_then(Value::as_str) {
                Some("m.typing") => {
                    let (Some(room), Some(user)) = (
                        content.get("room_id").and_then(Value::as_str),
                        content.get("user_id").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let typing = content.get("typing").and_then(Value::as_bool) == Some(true);
                    if let Err(e) = self
                        .core
                        .receive_federated_typing(origin, room, user, typing)
                        .await
                    {
                        tracing::debug!(%origin, %room, %user, error = %e.message, "typing EDU dropped");
                    }
                }
                Some("m.presence") => {
                    let pushes = content.get("push").and_then(Value::as_array);
                    for push in pushes.into_iter().flatten().take(MAX_PRESENCE_PUSHES) {
                        let (Some(user), Some(presence)) = (
                            push.get("user_id").and_then(Value::as_str),
                            push.get("presence").and_then(Value::as_str),
                        ) else {
                            continue;
                        };
                        let status_msg = push.get("status_msg").and_then(Value::as_str);
                        if let Err(e) = self
                            .core
                            .receive_federated_presence(origin, user, presence, status_msg)
                            .await
                        {
                            tracing::debug!(%origin, %user, error = %e.message, "presence EDU dropped");
                        }
                    }
                }
                Some("m.receipt") => {
                    let Some(rooms) = content.as_object() else {
                        continue;
                    };
                    for (room, receipts) in rooms {
                        let Some(readers) = receipts.get("m.read").and_then(Value::as_object)
                        else {
                            continue;
                        };
                        for user in readers.keys() {
                            if let Err(e) = self
                                .core
                                .receive_federated_receipt(origin, room, user)
                                .await
                            {
                                tracing::debug!(%origin, %room, %user, error = %e.message, "receipt EDU dropped");
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    async fn receive_pdu(
        &self,
        origin: &str,
        raw: &Value,
    ) -> Result<String, (Option<String>, PduError)> {
        self.receive_pdu_with(origin, raw, true).await
    }

    /// Receives one PDU; with `catch_up`, a gap before it is fetched from `origin` first (the
    /// gap's own events are received without catch-up, so one PDU costs at most one fetch).
    async fn receive_pdu_with(
        &self,
        origin: &str,
        raw: &Value,
        catch_up: bool,
    ) -> Result<String, (Option<String>, PduError)> {
        let room_id = raw
            .get("room_id")
            .and_then(Value::as_str)
            .ok_or((None, PduError::Format("no room_id".into())))?;
        let room = self
            .core
            .federated_room_by_matrix_id(room_id)
            .await
            .map_err(|e| (None, PduError::Format(e.to_string())))?
            .ok_or((
                None,
                PduError::Format(format!("{room_id} is not a room we are in")),
            ))?;
        let rules = pdu::rules_for(&room.room_version).map_err(|e| (None, e))?;
        let parsed = Pdu::parse(raw, &rules).map_err(|e| (None, e))?;
        let id = parsed.event_id.to_string();
        let fail = |e: PduError| (Some(id.clone()), e);
        if self
            .core
            .federation_event(&id)
            .await
            .map_err(|e| fail(PduError::Format(e.to_string())))?
            .is_some()
        {
            return Ok(id);
        }
        // Events of a server we do not federate with are refused, whoever relays them.
        if !self
            .core
            .federation_server_allowed(parsed.sender().server_name().as_str())
        {
            return Err(fail(PduError::Auth(
                "the sender's server is not allowed here".into(),
            )));
        }
        // Only servers in the room relay its events; a sender's own server signs them.
        if parsed.sender().server_name().as_str() != origin {
            tracing::debug!(%origin, sender = %parsed.sender(), "event relayed by another server");
        }
        let pdu = pdu::verify(parsed, &rules, &self.keys)
            .await
            .map_err(fail)?;
        if catch_up {
            self.fill_gap(origin, room_id, &pdu).await;
        }
        // Beyond the gap: the state before this event comes from its sender.
        let mut fork_state = None;
        if self.lacks_prev_events(&pdu).await {
            match self.fetch_state_at(origin, room_id, &rules, &id).await {
                Ok(entries) => fork_state = Some(entries),
                Err(e) => {
                    tracing::info!(%origin, event_id = %id, error = %e, "state fetch failed")
                }
            }
        }
        let mut auth = self.stored_events(pdu.auth_event_ids()).await;
        if auth.len() != pdu.auth_event_ids().len() {
            if let Err(e) = self.fetch_auth_chain(origin, room_id, &rules, &id).await {
                tracing::info!(%origin, event_id = %id, error = %e, "auth chain fetch failed");
            }
            auth = self.stored_events(pdu.auth_event_ids()).await;
        }
        if auth.len() != pdu.auth_event_ids().len() {
            return Err(fail(PduError::Auth(
                "some auth events are unknown to us".into(),
            )));
        }
        let prevs: Vec<String> = pdu.prev_events().iter().map(|e| e.to_string()).collect();
        // The state before the event: what its sender told us beyond a gap, else the state
        // after its predecessors (resolved when there are several).
        let state_before = match fork_state {
            Some(entries) => Some(entries),
            None => self.state_from_prevs(&rules, &prevs).await,
        };
        let current = self.current_state(room_id).await;
        // The room's server ACL applies to the server that sent us the event.
        if let Some(acl) = current.get(&("m.room.server_acl".to_string(), String::new()))
            && !apogee_core::federation_policy::acl_allows(&acl.content_json(), origin)
        {
            return Err(fail(PduError::Auth(
                "the room's server ACL denies the sending server".into(),
            )));
        }
        // From v12 the create event is not among the auth events: it is the room's.
        if let Some(create) = current.get(&("m.room.create".to_string(), String::new())) {
            auth.entry(create.event_id.clone())
                .or_insert_with(|| create.clone());
        }
        pdu::check_auth_events(&pdu, &rules, &auth).map_err(fail)?;
        // Not allowed by the state before it: rejected.
        if let Some(before) = &state_before {
            pdu::check_against_state(&pdu, &rules, &self.state_of(before).await)
                .map_err(|e| fail(PduError::Auth(e.to_string())))?;
        }
        // Not allowed by the room's current (resolved) state: soft-failed.
        let soft_failed = match pdu::check_against_state(&pdu, &rules, &current) {
            Ok(()) => false,
            Err(e) => {
                tracing::info!(event_id = %id, error = %e, "PDU soft-failed");
                true
            }
        };
        let current_state = match (&state_before, soft_failed) {
            (Some(before), false) => {
                self.state_after_event(room_id, &rules, &pdu, before, &prevs)
                    .await
            }
            _ => None,
        };
        let incoming = IncomingEvent {
            event_id: id.clone(),
            matrix_room_id: room_id.to_string(),
            sender: pdu.sender().to_string(),
            event_type: pdu.kind().to_string(),
            state_key: pdu.state_key().map(str::to_string),
            content: pdu.content_json(),
            redacts: pdu.redacts().map(|r| r.to_string()),
            prev_events: prevs,
            depth: pdu.depth,
            origin_server_ts: pdu.origin_server_ts(),
            pdu: pdu.to_json(),
            soft_failed,
            state_before,
            current_state,
        };
        self.core
            .receive_federated_event(incoming)
            .await
            .map_err(|e| fail(PduError::Format(format!("not applied: {e}"))))?;
        Ok(id)
    }

    /// When some of `pdu`'s `prev_events` are unknown, fetches the gap from `origin` and
    /// receives its events oldest first. Whatever fails is logged: the PDU itself is then
    /// checked against the state we have, as before.
    async fn fill_gap(&self, origin: &str, room_id: &str, pdu: &Pdu) {
        if !self.lacks_prev_events(pdu).await {
            return;
        }
        let event_id = pdu.event_id.as_str();
        let gap = match self.fetch_gap(origin, room_id, event_id).await {
            Ok(gap) => gap,
            Err(e) => {
                tracing::info!(%origin, %event_id, error = %e, "gap fetch failed");
                return;
            }
        };
        tracing::info!(%origin, %event_id, events = gap.len(), "filling a gap");
        for raw in &gap {
            if let Err((id, e)) = Box::pin(self.receive_pdu_with(origin, raw, false)).await {
                tracing::info!(%origin, event_id = ?id, error = %e, "event of a gap not accepted");
            }
        }
    }

    /// The room's state once `pdu` (whose state before it is `before`) is applied: the state
    /// after it when it becomes the only forward extremity, else the resolution of the
    /// states after every extremity. `None` when an extremity's state is unknown.
    async fn state_after_event(
        &self,
        room_id: &str,
        rules: &ruma::room_version_rules::RoomVersionRules,
        pdu: &Pdu,
        before: &[apogee_core::store::FederationStateEntry],
        prevs: &[String],
    ) -> Option<Vec<apogee_core::store::FederationStateEntry>> {
        let mut after = before.to_vec();
        if let Some(key) = pdu.state_key() {
            let kind = pdu.kind().to_string();
            after.retain(|e| !(e.event_type == kind && e.state_key == key));
            after.push(apogee_core::store::FederationStateEntry {
                event_type: kind,
                state_key: key.to_string(),
                event_id: pdu.event_id.to_string(),
            });
        }
        let mut maps = vec![after];
        for other in self
            .core
            .federation_extremities(room_id)
            .await
            .ok()?
            .into_iter()
            .filter(|x| !prevs.contains(x) && x != pdu.event_id.as_str())
        {
            maps.push(self.state_after(&other).await?);
        }
        self.resolve_states(rules, maps, Some(pdu)).await
    }

    /// Whether some of `pdu`'s `prev_events` are unknown to us.
    async fn lacks_prev_events(&self, pdu: &Pdu) -> bool {
        for prev in pdu.prev_events() {
            if !matches!(self.core.federation_event(prev.as_str()).await, Ok(Some(_))) {
                return true;
            }
        }
        false
    }

    /// State entries as parsed events, keyed by (type, state key).
    async fn state_of(
        &self,
        entries: &[apogee_core::store::FederationStateEntry],
    ) -> HashMap<(String, String), Pdu> {
        let mut state = HashMap::new();
        for entry in entries {
            if let Some(pdu) = self.stored_pdu(&entry.event_id).await {
                state.insert((entry.event_type.clone(), entry.state_key.clone()), pdu);
            }
        }
        state
    }

    /// The stored events among `ids` (as PDUs in the room's version).
    async fn stored_events(&self, ids: &[OwnedEventId]) -> HashMap<OwnedEventId, Pdu> {
        let mut found = HashMap::new();
        for id in ids {
            if let Some(pdu) = self.stored_pdu(id.as_str()).await {
                found.insert(id.clone(), pdu);
            }
        }
        found
    }

    /// A stored event, parsed again (it passed every check when it was stored).
    pub(crate) async fn stored_pdu(&self, event_id: &str) -> Option<Pdu> {
        let event = self.core.federation_event(event_id).await.ok()??;
        let room = self
            .core
            .federated_room_by_matrix_id(&event.matrix_room_id)
            .await
            .ok()??;
        let rules = pdu::rules_for(&room.room_version).ok()?;
        Pdu::parse(&event.pdu, &rules).ok()
    }

    /// The room's current state as parsed events, keyed by (type, state key).
    pub(crate) async fn current_state(&self, room_id: &str) -> HashMap<(String, String), Pdu> {
        let mut state = HashMap::new();
        for entry in self
            .core
            .federation_room_state(room_id)
            .await
            .unwrap_or_default()
        {
            if let Some(pdu) = self.stored_pdu(&entry.event_id).await {
                state.insert((entry.event_type, entry.state_key), pdu);
            }
        }
        state
    }
}
