//! Backfill for local readers: the history of a room from before our join, fetched when a
//! reader pages back past the oldest message we hold (core asks, see
//! `apogee_core::federated_backfill`). One `GET /backfill/{roomId}?v=…&limit=…` to a server in
//! the room (its origin first), from the room's oldest timeline events. Every event of the
//! answer is checked before core keeps it:
//! - format, reference hash, signatures (a hash mismatch keeps the redacted form), the room;
//! - it must be in the history we asked for: reachable from what we hold through
//!   `prev_events` (a server cannot slip in events of its own making with old timestamps);
//! - the auth rules against its own auth events (fetched with `event_auth` when missing);
//! - the room's history visibility at it, read from the visibility events around it.
//!
//! A page at a time, one backfill at a time on a node; a room whose history ends (an answer
//! with nothing new) is not asked again from the same place until the process restarts.

use crate::join::encode_segment;
use crate::pdu::{self, Pdu};
use crate::{FedError, Federation};
use apogee_core::federated_backfill::{BackfilledEvent, history_visible};
use ruma::OwnedEventId;
use ruma::room_version_rules::RoomVersionRules;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// We build `v` from at most this many of the room's oldest events.
const FRONTIER: i64 = 5;
/// At most this many `event_auth` fetches for one page.
const MAX_AUTH_FETCHES: usize = 5;

/// Which rooms' history is known to end where, on this node.
#[derive(Default)]
pub struct Backfills {
    /// Room → the frontier from which a server answered nothing new. Held while a backfill
    /// runs, so a node backfills one page at a time.
    exhausted: tokio::sync::Mutex<HashMap<String, Vec<String>>>,
}

impl Federation {
    /// Fetches, checks and keeps up to `limit` events before `room_id`'s oldest timeline
    /// events; returns how many were new.
    pub async fn backfill_room(&self, room_id: &str, limit: usize) -> Result<usize, FedError> {
        let internal = |e: apogee_core::error::CoreError| FedError::Internal(e.to_string());
        let mut exhausted = self.backfills.exhausted.lock().await;
        let room = self
            .core
            .federated_room_by_matrix_id(room_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| FedError::Internal(format!("{room_id} is not mapped")))?;
        let rules =
            pdu::rules_for(&room.room_version).map_err(|e| FedError::Internal(e.to_string()))?;
        let oldest = self
            .core
            .federation_oldest_events(room_id, FRONTIER)
            .await
            .map_err(internal)?;
        let frontier: Vec<String> = oldest.iter().map(|e| e.event_id.clone()).collect();
        if frontier.is_empty() || exhausted.get(room_id) == Some(&frontier) {
            return Ok(0);
        }
        // What we asked for: the predecessors of the frontier, and theirs.
        let mut wanted: HashSet<String> = HashSet::new();
        for event in &oldest {
            if let Some(prevs) = event.pdu.get("prev_events").and_then(Value::as_array) {
                wanted.extend(prevs.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
        if wanted.is_empty() {
            // The create event: the room's history starts here.
            exhausted.insert(room_id.to_string(), frontier);
            return Ok(0);
        }
        let servers = self
            .core
            .federated_history_servers(room_id)
            .await
            .map_err(internal)?;
        let mut last_error = FedError::Unreachable("no server in the room to ask".into());
        for server in servers {
            let raw = match self
                .request_backfill(&server, room_id, &frontier, limit)
                .await
            {
                Ok(raw) => raw,
                Err(e) => {
                    tracing::info!(%server, room = %room_id, error = %e, "backfill request failed");
                    last_error = e;
                    continue;
                }
            };
            let events = self
                .check_backfill(&server, room_id, &rules, &raw, wanted.clone(), limit)
                .await;
            let stored = self
                .core
                .save_backfilled_events(room_id, events)
                .await
                .map_err(internal)?;
            tracing::info!(%server, room = %room_id, answered = raw.len(), stored, "backfilled");
            if stored == 0 {
                exhausted.insert(room_id.to_string(), frontier);
            }
            return Ok(stored);
        }
        Err(last_error)
    }

    async fn request_backfill(
        &self,
        server: &str,
        room_id: &str,
        frontier: &[String],
        limit: usize,
    ) -> Result<Vec<Value>, FedError> {
        let mut target = format!(
            "/_matrix/federation/v1/backfill/{}?limit={limit}",
            encode_segment(room_id)
        );
        for id in frontier {
            target.push_str("&v=");
            target.push_str(&encode_segment(id));
        }
        let mut pdus = self
            .client
            .get_json(&crate::parse_server_name(server)?, &target, "backfill")
            .await?
            .get("pdus")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // A server answers at most what was asked (the frontier events themselves included).
        pdus.truncate(limit + frontier.len());
        Ok(pdus)
    }

    /// The events of a backfill answer that pass every check (see the module), oldest first.
    async fn check_backfill(
        &self,
        server: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        raw: &[Value],
        mut wanted: HashSet<String>,
        limit: usize,
    ) -> Vec<BackfilledEvent> {
        let mut parsed: Vec<Pdu> = Vec::new();
        for r in raw {
            let checked = match Pdu::parse(r, rules) {
                Ok(p) => pdu::verify(p, rules, &self.keys).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(p) if p.room_id_str() != room_id => {
                    tracing::info!(%server, event_id = %p.event_id, "backfilled event of another room dropped")
                }
                Ok(p)
                    if !self
                        .core
                        .federation_server_allowed(p.sender().server_name().as_str()) =>
                {
                    tracing::info!(%server, event_id = %p.event_id, "backfilled event of a denied server dropped")
                }
                Ok(p) => parsed.push(p),
                Err(e) => tracing::info!(%server, error = %e, "backfilled event dropped"),
            }
        }
        // Newest first: keep what the frontier leads to through prev_events.
        parsed.sort_by_key(|p| std::cmp::Reverse(p.depth));
        let mut reachable = Vec::new();
        for p in parsed {
            // Events we hold (the frontier itself, state learnt when joining) lead on too.
            let held = self.stored_pdu(p.event_id.as_str()).await.is_some();
            if !wanted.remove(p.event_id.as_str()) && !held {
                tracing::info!(%server, event_id = %p.event_id, "backfilled event outside the history asked for dropped");
                continue;
            }
            wanted.extend(p.prev_events().iter().map(|e| e.to_string()));
            if held {
                continue;
            }
            reachable.push(p);
            if reachable.len() >= limit {
                break;
            }
        }
        reachable.reverse();
        let accepted = self
            .check_backfill_auth(server, room_id, rules, reachable)
            .await;
        self.with_visibility(room_id, accepted).await
    }

    /// Checks the auth rules of each event (oldest first) against its auth events, ours or
    /// earlier ones of the answer; missing ones are fetched with `event_auth` (a few times a
    /// page). Returns the events that pass.
    async fn check_backfill_auth(
        &self,
        server: &str,
        room_id: &str,
        rules: &RoomVersionRules,
        events: Vec<Pdu>,
    ) -> Vec<Pdu> {
        let mut known: HashMap<OwnedEventId, Pdu> = HashMap::new();
        // The create event authorises everything (v12 events do not list it).
        let current = self.current_state(room_id).await;
        if let Some(create) = current.get(&("m.room.create".to_string(), String::new())) {
            known.insert(create.event_id.clone(), create.clone());
        }
        let mut fetches = 0;
        let mut accepted = Vec::new();
        for event in events {
            let mut missing = false;
            for id in event.auth_event_ids() {
                if known.contains_key(id) {
                    continue;
                }
                match self.stored_pdu(id.as_str()).await {
                    Some(p) => {
                        known.insert(id.clone(), p);
                    }
                    None => missing = true,
                }
            }
            if missing && fetches < MAX_AUTH_FETCHES {
                fetches += 1;
                if let Err(e) = self
                    .fetch_auth_chain(server, room_id, rules, event.event_id.as_str())
                    .await
                {
                    tracing::info!(%server, event_id = %event.event_id, error = %e, "auth chain fetch failed");
                }
                for id in event.auth_event_ids() {
                    if !known.contains_key(id)
                        && let Some(p) = self.stored_pdu(id.as_str()).await
                    {
                        known.insert(id.clone(), p);
                    }
                }
            }
            match pdu::check_auth_events(&event, rules, &known) {
                Ok(()) => {
                    known.insert(event.event_id.clone(), event.clone());
                    accepted.push(event);
                }
                Err(e) => {
                    tracing::info!(%server, event_id = %event.event_id, error = %e, "backfilled event rejected")
                }
            }
        }
        accepted
    }

    /// Core's view of the accepted events, each with the room's history visibility at it:
    /// the newest visibility event before it (of the answer, or the room's current one); when
    /// none is known before it, the most restrictive of those known after it (a room that
    /// was ever restricted is not guessed open), else none.
    async fn with_visibility(&self, room_id: &str, events: Vec<Pdu>) -> Vec<BackfilledEvent> {
        let visibility_of = |p: &Pdu| {
            p.content_json()
                .get("history_visibility")
                .and_then(Value::as_str)
                .unwrap_or("shared")
                .to_string()
        };
        let mut changes: Vec<(i64, String)> = events
            .iter()
            .filter(|p| {
                p.kind().to_string() == "m.room.history_visibility" && p.state_key() == Some("")
            })
            .map(|p| (p.depth, visibility_of(p)))
            .collect();
        let current = self.current_state(room_id).await;
        if let Some(p) = current.get(&("m.room.history_visibility".to_string(), String::new())) {
            changes.push((p.depth, visibility_of(p)));
        }
        changes.sort();
        events
            .into_iter()
            .map(|p| {
                let before = changes.iter().rev().find(|(d, _)| *d < p.depth);
                let history_visibility = match before {
                    Some((_, v)) => Some(v.clone()),
                    None => changes
                        .iter()
                        .find(|(_, v)| !history_visible(Some(v)))
                        .or(changes.first())
                        .map(|(_, v)| v.clone()),
                };
                BackfilledEvent {
                    event_id: p.event_id.to_string(),
                    sender: p.sender().to_string(),
                    event_type: p.kind().to_string(),
                    state_key: p.state_key().map(str::to_string),
                    content: p.content_json(),
                    depth: p.depth,
                    origin_server_ts: p.origin_server_ts(),
                    pdu: p.to_json(),
                    history_visibility,
                }
            })
            .collect()
    }
}
