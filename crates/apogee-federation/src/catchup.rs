//! Catch-up used when receiving: a PDU whose `prev_events` we lack makes us ask the server
//! that sent it for the gap (`get_missing_events`, at most [`GAP_LIMIT`] events, as Synapse
//! does), and the gap's events are received oldest first through the same checks as any PDU;
//! a PDU whose auth events we lack makes us fetch its auth chain (`event_auth`), every event
//! of which is checked (signatures, hashes, auth rules against its own auth events) before it
//! is kept as an outlier. A forged or unauthorised event in an answer is dropped and nothing
//! of it is written.

use crate::join::encode_segment;
use crate::pdu::{self, Pdu};
use crate::{FedError, Federation};
use apogee_core::federated_rooms::outlier;
use apogee_core::store::FederationStateEntry;
use http::Method;
use ruma::OwnedEventId;
use ruma::room_version_rules::RoomVersionRules;
use serde_json::{Value, json};
use std::collections::HashMap;

/// How many missing events one gap fetch asks for.
pub const GAP_LIMIT: usize = 10;
/// At most this many events a state fetch asks for one by one.
const MAX_STATE_FETCH: usize = 500;
/// At most this many events of an `event_auth` answer are considered.
const MAX_AUTH_EVENTS: usize = 1000;

impl Federation {
    /// Asks `origin` for the events between our forward extremities and `event_id`; returns
    /// them oldest first, unchecked (the caller receives each like a PDU of a transaction).
    pub(crate) async fn fetch_gap(
        &self,
        origin: &str,
        room_id: &str,
        event_id: &str,
    ) -> Result<Vec<Value>, FedError> {
        let earliest = self
            .core
            .federation_extremities(room_id)
            .await
            .map_err(|e| FedError::Internal(e.to_string()))?;
        let mut min_depth = i64::MAX;
        for id in &earliest {
            if let Ok(Some(e)) = self.core.federation_event(id).await {
                min_depth = min_depth.min(e.depth);
            }
        }
        let body = json!({
            "earliest_events": earliest,
            "latest_events": [event_id],
            "limit": GAP_LIMIT,
            "min_depth": if min_depth == i64::MAX { 0 } else { min_depth },
        });
        let target = format!(
            "/_matrix/federation/v1/get_missing_events/{}",
            encode_segment(room_id)
        );
        let answer = self
            .client
            .request(
                &crate::parse_server_name(origin)?,
                Method::POST,
                &target,
                Some(&body),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(FedError::BadResponse(format!(
                "get_missing_events: {}",
                answer.status
            )));
        }
        let mut events = answer
            .json()?
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        events.truncate(GAP_LIMIT);
        events.sort_by_key(|e| e.get("depth").and_then(Value::as_i64).unwrap_or(0));
        Ok(events)
    }

    /// Fetches `event_id`'s auth chain from `origin`, checks every event of it oldest first
    /// and keeps those that pass as outliers. Returns how many were new.
    pub(crate) async fn fetch_auth_chain(
        &self,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        event_id: &str,
    ) -> Result<usize, FedError> {
        let target = format!(
            "/_matrix/federation/v1/event_auth/{}/{}",
            encode_segment(room_id),
            encode_segment(event_id)
        );
        let raw = self
            .client
            .get_json(&crate::parse_server_name(origin)?, &target, "event_auth")
            .await?
            .get("auth_chain")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut parsed = Vec::new();
        for r in raw.iter().take(MAX_AUTH_EVENTS) {
            let checked = match Pdu::parse(r, rules) {
                Ok(p) => pdu::verify(p, rules, &self.keys).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(p) if p.room_id_str() == room_id => parsed.push(p),
                Ok(p) => {
                    tracing::info!(event_id = %p.event_id, "auth event of another room dropped")
                }
                Err(e) => tracing::info!(error = %e, "auth event dropped"),
            }
        }
        let accepted = self.check_chain(room_id, rules, parsed).await;
        let count = accepted.len();
        if count > 0 {
            self.core
                .save_federated_outliers(room_id, accepted)
                .await
                .map_err(|e| FedError::Internal(e.to_string()))?;
        }
        Ok(count)
    }

    /// Beyond the gap: asks `origin` for the state before `event_id` (`state_ids`), fetches
    /// the events of it we lack (`event`, at most [`MAX_STATE_FETCH`]), checks them like an
    /// auth chain and keeps those that pass as outliers. Returns the state as entries (only
    /// events we hold and that passed).
    pub(crate) async fn fetch_state_at(
        &self,
        origin: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        event_id: &str,
    ) -> Result<Vec<FederationStateEntry>, FedError> {
        let server = crate::parse_server_name(origin)?;
        let target = format!(
            "/_matrix/federation/v1/state_ids/{}?event_id={}",
            encode_segment(room_id),
            encode_segment(event_id)
        );
        let body = self.client.get_json(&server, &target, "state_ids").await?;
        let list = |k: &str| -> Vec<String> {
            body.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (state_ids, auth_ids) = (list("pdu_ids"), list("auth_chain_ids"));
        let mut fetched = Vec::new();
        let mut asked = 0;
        for id in state_ids.iter().chain(&auth_ids) {
            if self.stored_pdu(id).await.is_some()
                || fetched.iter().any(|p: &Pdu| p.event_id.as_str() == id)
            {
                continue;
            }
            asked += 1;
            if asked > MAX_STATE_FETCH {
                return Err(FedError::BadResponse("state too large to fetch".into()));
            }
            match self.fetch_event(&server, rules, id).await {
                Ok(p) if p.room_id_str() == room_id && p.event_id.as_str() == id => fetched.push(p),
                Ok(p) => {
                    tracing::info!(event_id = %p.event_id, "fetched event is not the one asked for")
                }
                Err(e) => tracing::info!(event_id = %id, error = %e, "state event not fetched"),
            }
        }
        let accepted = self.check_chain(room_id, rules, fetched).await;
        if !accepted.is_empty() {
            self.core
                .save_federated_outliers(room_id, accepted)
                .await
                .map_err(|e| FedError::Internal(e.to_string()))?;
        }
        let mut entries = Vec::new();
        for id in &state_ids {
            if let Some(p) = self.stored_pdu(id).await
                && p.room_id_str() == room_id
                && let Some(key) = p.state_key()
            {
                entries.push(FederationStateEntry {
                    event_type: p.kind().to_string(),
                    state_key: key.to_string(),
                    event_id: id.clone(),
                });
            }
        }
        Ok(entries)
    }

    /// `GET /event/{eventId}` from `server`, signatures and hash checked.
    async fn fetch_event(
        &self,
        server: &ruma::ServerName,
        rules: &RoomVersionRules,
        event_id: &str,
    ) -> Result<Pdu, FedError> {
        let target = format!("/_matrix/federation/v1/event/{}", encode_segment(event_id));
        let raw = self
            .client
            .get_json(server, &target, "event")
            .await?
            .get("pdus")
            .and_then(|p| p.get(0))
            .cloned()
            .ok_or_else(|| FedError::BadResponse("event: no PDU".into()))?;
        let parsed = Pdu::parse(&raw, rules).map_err(|e| FedError::BadResponse(e.to_string()))?;
        pdu::verify(parsed, rules, &self.keys)
            .await
            .map_err(|e| FedError::BadResponse(e.to_string()))
    }

    /// Checks events against their own auth events (ours, or earlier ones of the same list),
    /// oldest first; returns those that pass and that we did not hold, as outlier rows.
    async fn check_chain(
        &self,
        room_id: &str,
        rules: &RoomVersionRules,
        mut events: Vec<Pdu>,
    ) -> Vec<apogee_core::store::FederationEvent> {
        events.sort_by_key(|p| p.depth);
        let mut known: HashMap<OwnedEventId, Pdu> = HashMap::new();
        // The create event authorises everything (v12 events do not list it).
        for entry in self
            .core
            .federation_room_state(room_id)
            .await
            .unwrap_or_default()
        {
            if entry.event_type == "m.room.create"
                && let Some(p) = self.stored_pdu(&entry.event_id).await
            {
                known.insert(p.event_id.clone(), p);
            }
        }
        let mut accepted = Vec::new();
        for event in events {
            if known.contains_key(&event.event_id) {
                continue;
            }
            if self.stored_pdu(event.event_id.as_str()).await.is_some() {
                known.insert(event.event_id.clone(), event);
                continue;
            }
            for id in event.auth_event_ids() {
                if !known.contains_key(id)
                    && let Some(p) = self.stored_pdu(id.as_str()).await
                {
                    known.insert(id.clone(), p);
                }
            }
            match pdu::check_auth_events(&event, rules, &known) {
                Ok(()) => {
                    accepted.push(outlier(
                        event.event_id.as_str(),
                        room_id,
                        event.depth,
                        event.to_json(),
                    ));
                    known.insert(event.event_id.clone(), event);
                }
                Err(e) => {
                    tracing::info!(event_id = %event.event_id, error = %e, "auth event rejected")
                }
            }
        }
        accepted
    }
}
