//! Catch-up for federated rooms, served to other servers: an event, the state at an event
//! (`state`, `state_ids`), an event's auth chain (`event_auth`), history before some events
//! (`backfill`) and the events between what a server has and what it was sent
//! (`get_missing_events`). Core decides who may read what: only a server with a member joined
//! to the room is answered, and an event the room's history visibility hides from that server
//! (`joined`/`invited` while it had no such member) is handed out redacted.
//!
//! It also keeps the state *before* every timeline event as a snapshot (migration 18), which
//! is what `state`/`state_ids` answer and what a fork's state is worked out from. Snapshots are
//! content-addressed, so consecutive events with the same state share one.

use crate::Core;
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::federated_rooms::server_of;
use crate::store::{Change, FederatedRoom, FederationEvent, FederationStateEntry};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet, VecDeque};

/// At most this many events a `backfill` answers.
pub const MAX_BACKFILL: usize = 100;
/// At most this many events a `get_missing_events` answers (Synapse's cap too).
pub const MAX_MISSING_EVENTS: usize = 20;
/// An auth chain longer than this is cut (a room's whole membership history is in it).
const MAX_AUTH_CHAIN: usize = 10_000;

/// An event handed to another server; `redact` when history visibility hides its content
/// from that server (the adapter redacts by the room version's rules).
#[derive(Debug, Clone)]
pub struct ServedEvent {
    pub event: FederationEvent,
    pub redact: bool,
}

/// The state at an event and the auth chain of that state.
#[derive(Debug, Clone)]
pub struct ServedState {
    pub state: Vec<FederationEvent>,
    pub auth_chain: Vec<FederationEvent>,
}

/// The id of a state snapshot: a digest of its sorted entries.
pub fn snapshot_id(entries: &[FederationStateEntry]) -> String {
    let mut sorted: Vec<&FederationStateEntry> = entries.iter().collect();
    sorted.sort();
    let mut hash = Sha256::new();
    for e in sorted {
        for part in [&e.event_type, &e.state_key, &e.event_id] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
    }
    hex::encode(hash.finalize())
}

fn ids(pdu: &Value, key: &str) -> Vec<String> {
    pdu.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn not_found(what: &str) -> CoreError {
    CoreError::new(ErrorKind::NotFound, "M_NOT_FOUND", what.to_string())
}

impl Core {
    /// The changes recording `state` as the state before `event_id` (the snapshot is written
    /// only when no event had that state before).
    pub(crate) async fn event_state_changes(
        &self,
        event_id: &str,
        state: Vec<FederationStateEntry>,
    ) -> CoreResult<Vec<Change>> {
        let id = snapshot_id(&state);
        let mut changes = Vec::new();
        if self.store.federation_state_snapshot(&id).await?.is_empty() {
            changes.push(Change::InsertFederationStateSnapshot {
                snapshot_id: id.clone(),
                entries: state,
            });
        }
        changes.push(Change::SetFederationEventState {
            event_id: event_id.to_string(),
            snapshot_id: id,
        });
        Ok(changes)
    }

    /// The room state before `event_id`, if it was recorded (timeline events).
    pub async fn federation_state_before(
        &self,
        event_id: &str,
    ) -> CoreResult<Option<Vec<FederationStateEntry>>> {
        match self.store.federation_event_snapshot(event_id).await? {
            Some(id) => Ok(Some(self.store.federation_state_snapshot(&id).await?)),
            None => Ok(None),
        }
    }

    /// The room state after `event_id`: the state before it, with it if it is a state event.
    pub async fn federation_state_after(
        &self,
        event_id: &str,
    ) -> CoreResult<Option<Vec<FederationStateEntry>>> {
        let (Some(mut state), Some(event)) = (
            self.federation_state_before(event_id).await?,
            self.store.federation_event(event_id).await?,
        ) else {
            return Ok(None);
        };
        if let (Some(t), Some(k)) = (
            event.pdu.get("type").and_then(Value::as_str),
            event.pdu.get("state_key").and_then(Value::as_str),
        ) {
            state.retain(|e| !(e.event_type == t && e.state_key == k));
            state.push(FederationStateEntry {
                event_type: t.to_string(),
                state_key: k.to_string(),
                event_id: event_id.to_string(),
            });
            state.sort();
        }
        Ok(Some(state))
    }

    /// Keeps events fetched to authorise others (an `event_auth` answer the adapter checked)
    /// as outliers of a mapped room.
    pub async fn save_federated_outliers(
        &self,
        matrix_room_id: &str,
        events: Vec<FederationEvent>,
    ) -> CoreResult<()> {
        self.store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
            .ok_or_else(|| not_found("Unknown room"))?;
        if events.iter().any(|e| e.matrix_room_id != matrix_room_id) {
            return Err(CoreError::bad(
                "error-invalid-room",
                "Event of another room",
            ));
        }
        self.commit(vec![Change::SaveFederationEvents(events)])
            .await
    }

    /// The mapped room `matrix_room_id`, if `server` has a member joined to it now: the
    /// condition for answering any catch-up request about it.
    pub async fn federated_room_for_server(
        &self,
        server: &str,
        matrix_room_id: &str,
    ) -> CoreResult<FederatedRoom> {
        let room = self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
            .ok_or_else(|| not_found("Unknown room"))?;
        self.require_room_acl(matrix_room_id, server).await?;
        let state = self.store.federation_room_state(matrix_room_id).await?;
        if !self.server_has_member(&state, server, &["join"]).await? {
            return Err(CoreError::new(
                ErrorKind::Forbidden,
                "M_FORBIDDEN",
                "Host not in room",
            ));
        }
        Ok(room)
    }

    /// Whether `state` holds a member of `server` whose membership is one of `memberships`.
    async fn server_has_member(
        &self,
        state: &[FederationStateEntry],
        server: &str,
        memberships: &[&str],
    ) -> CoreResult<bool> {
        for entry in state
            .iter()
            .filter(|e| e.event_type == "m.room.member" && server_of(&e.state_key) == Some(server))
        {
            if let Some(event) = self.store.federation_event(&entry.event_id).await?
                && let Some(m) = event.pdu["content"]["membership"].as_str()
                && memberships.contains(&m)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `server` may read `event`'s content under the history visibility at it (the
    /// state before it; the current state for outliers, whose state we never had).
    async fn visible_to(&self, server: &str, event: &FederationEvent) -> CoreResult<bool> {
        let state = match self.federation_state_before(&event.event_id).await? {
            Some(s) => s,
            None => {
                self.store
                    .federation_room_state(&event.matrix_room_id)
                    .await?
            }
        };
        let visibility = match state
            .iter()
            .find(|e| e.event_type == "m.room.history_visibility" && e.state_key.is_empty())
        {
            Some(entry) => self
                .store
                .federation_event(&entry.event_id)
                .await?
                .and_then(|e| {
                    e.pdu["content"]["history_visibility"]
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "shared".into()),
            None => "shared".into(),
        };
        Ok(match visibility.as_str() {
            "invited" => {
                self.server_has_member(&state, server, &["join", "invite"])
                    .await?
            }
            "joined" => self.server_has_member(&state, server, &["join"]).await?,
            // `world_readable`, `shared`, and values we do not know (the spec's default).
            _ => true,
        })
    }

    /// An event of `matrix_room_id` we hold, or 404.
    async fn room_event(
        &self,
        matrix_room_id: &str,
        event_id: &str,
    ) -> CoreResult<FederationEvent> {
        self.store
            .federation_event(event_id)
            .await?
            .filter(|e| e.matrix_room_id == matrix_room_id)
            .ok_or_else(|| not_found("Event not found"))
    }

    /// `GET /event/{eventId}`: one event, for a server in its room.
    pub async fn federation_serve_event(
        &self,
        server: &str,
        event_id: &str,
    ) -> CoreResult<ServedEvent> {
        let event = self
            .store
            .federation_event(event_id)
            .await?
            .ok_or_else(|| not_found("Event not found"))?;
        self.federated_room_for_server(server, &event.matrix_room_id)
            .await?;
        let redact = !self.visible_to(server, &event).await?;
        Ok(ServedEvent { event, redact })
    }

    /// `GET /state/{roomId}?event_id=` and `state_ids`: the state before `event_id` and its
    /// auth chain.
    pub async fn federation_serve_state(
        &self,
        server: &str,
        matrix_room_id: &str,
        event_id: &str,
    ) -> CoreResult<ServedState> {
        self.federated_room_for_server(server, matrix_room_id)
            .await?;
        self.room_event(matrix_room_id, event_id).await?;
        let entries = self
            .federation_state_before(event_id)
            .await?
            .ok_or_else(|| not_found("No state is known at this event"))?;
        let mut state = Vec::with_capacity(entries.len());
        for entry in &entries {
            if let Some(e) = self.store.federation_event(&entry.event_id).await? {
                state.push(e);
            }
        }
        let starts: Vec<String> = entries.iter().map(|e| e.event_id.clone()).collect();
        let auth_chain = self.auth_chain(matrix_room_id, &starts, true).await?;
        Ok(ServedState { state, auth_chain })
    }

    /// `GET /event_auth/{roomId}/{eventId}`: the event's whole auth chain.
    pub async fn federation_serve_event_auth(
        &self,
        server: &str,
        matrix_room_id: &str,
        event_id: &str,
    ) -> CoreResult<Vec<FederationEvent>> {
        self.federated_room_for_server(server, matrix_room_id)
            .await?;
        let event = self.room_event(matrix_room_id, event_id).await?;
        self.auth_chain(matrix_room_id, &ids(&event.pdu, "auth_events"), true)
            .await
    }

    /// The auth events of `starts`, recursively (with `starts` themselves when
    /// `include_starts`), plus the room's create event, which v12 events no longer list.
    async fn auth_chain(
        &self,
        matrix_room_id: &str,
        starts: &[String],
        include_starts: bool,
    ) -> CoreResult<Vec<FederationEvent>> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut chain = Vec::new();
        for id in starts {
            if include_starts {
                queue.push_back(id.clone());
            } else if let Some(e) = self.store.federation_event(id).await? {
                queue.extend(ids(&e.pdu, "auth_events"));
            }
        }
        if let Some(create) = self
            .store
            .federation_room_state(matrix_room_id)
            .await?
            .into_iter()
            .find(|e| e.event_type == "m.room.create")
        {
            queue.push_back(create.event_id);
        }
        while let Some(id) = queue.pop_front() {
            if chain.len() >= MAX_AUTH_CHAIN || !seen.insert(id.clone()) {
                continue;
            }
            if let Some(e) = self.store.federation_event(&id).await?
                && e.matrix_room_id == matrix_room_id
            {
                queue.extend(ids(&e.pdu, "auth_events"));
                chain.push(e);
            }
        }
        chain.sort_by_key(|e| e.depth);
        Ok(chain)
    }

    /// `GET /backfill/{roomId}?v=…&limit=`: the events `from` and those before them, newest
    /// first, at most `limit` (capped at [`MAX_BACKFILL`]).
    pub async fn federation_serve_backfill(
        &self,
        server: &str,
        matrix_room_id: &str,
        from: &[String],
        limit: usize,
    ) -> CoreResult<Vec<ServedEvent>> {
        self.federated_room_for_server(server, matrix_room_id)
            .await?;
        let limit = limit.clamp(1, MAX_BACKFILL);
        let mut found = self
            .walk_back(matrix_room_id, from.to_vec(), &HashSet::new(), 0, limit)
            .await?;
        found.sort_by_key(|e| std::cmp::Reverse(e.depth));
        self.served(server, found).await
    }

    /// `POST /get_missing_events/{roomId}`: the events before `latest` back to (not
    /// including) `earliest`, not below `min_depth`, oldest first, at most `limit` (capped at
    /// [`MAX_MISSING_EVENTS`]).
    pub async fn federation_serve_missing_events(
        &self,
        server: &str,
        matrix_room_id: &str,
        earliest: &[String],
        latest: &[String],
        limit: usize,
        min_depth: i64,
    ) -> CoreResult<Vec<ServedEvent>> {
        self.federated_room_for_server(server, matrix_room_id)
            .await?;
        let limit = limit.clamp(1, MAX_MISSING_EVENTS);
        let mut starts = Vec::new();
        for id in latest {
            if let Some(e) = self.store.federation_event(id).await?
                && e.matrix_room_id == matrix_room_id
            {
                starts.extend(ids(&e.pdu, "prev_events"));
            }
        }
        let stop: HashSet<String> = earliest.iter().chain(latest).cloned().collect();
        let mut found = self
            .walk_back(matrix_room_id, starts, &stop, min_depth, limit)
            .await?;
        found.sort_by_key(|e| e.depth);
        self.served(server, found).await
    }

    /// Breadth-first back through `prev_events` from `starts` (included), newest depth first,
    /// stopping at `stop` and below `min_depth`.
    async fn walk_back(
        &self,
        matrix_room_id: &str,
        starts: Vec<String>,
        stop: &HashSet<String>,
        min_depth: i64,
        limit: usize,
    ) -> CoreResult<Vec<FederationEvent>> {
        let mut seen: HashSet<String> = HashSet::new();
        // Ordered by depth so the newest events are taken first when the limit cuts.
        let mut frontier: BTreeSet<(std::cmp::Reverse<i64>, String)> = BTreeSet::new();
        for id in starts {
            if stop.contains(&id) || !seen.insert(id.clone()) {
                continue;
            }
            if let Some(e) = self.store.federation_event(&id).await?
                && e.matrix_room_id == matrix_room_id
            {
                frontier.insert((std::cmp::Reverse(e.depth), id));
            }
        }
        let mut found = Vec::new();
        while let Some((_, id)) = frontier.pop_first() {
            if found.len() >= limit {
                break;
            }
            let Some(event) = self.store.federation_event(&id).await? else {
                continue;
            };
            if event.depth < min_depth {
                continue;
            }
            for prev in ids(&event.pdu, "prev_events") {
                if stop.contains(&prev) || !seen.insert(prev.clone()) {
                    continue;
                }
                if let Some(e) = self.store.federation_event(&prev).await?
                    && e.matrix_room_id == matrix_room_id
                {
                    frontier.insert((std::cmp::Reverse(e.depth), prev));
                }
            }
            found.push(event);
        }
        Ok(found)
    }

    async fn served(
        &self,
        server: &str,
        events: Vec<FederationEvent>,
    ) -> CoreResult<Vec<ServedEvent>> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let redact = !self.visible_to(server, &event).await?;
            out.push(ServedEvent { event, redact });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_id;
    use crate::store::FederationStateEntry;

    fn entry(t: &str, k: &str, id: &str) -> FederationStateEntry {
        FederationStateEntry {
            event_type: t.into(),
            state_key: k.into(),
            event_id: id.into(),
        }
    }

    #[test]
    fn snapshot_ids_depend_on_content_not_order() {
        let a = vec![
            entry("m.room.create", "", "$c"),
            entry("m.room.member", "@a:x", "$m"),
        ];
        let b = vec![a[1].clone(), a[0].clone()];
        assert_eq!(snapshot_id(&a), snapshot_id(&b));
        let c = vec![
            entry("m.room.create", "", "$c"),
            entry("m.room.member", "@a:x", "$n"),
        ];
        assert_ne!(snapshot_id(&a), snapshot_id(&c));
        // Field boundaries count: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            snapshot_id(&[entry("ab", "c", "$e")]),
            snapshot_id(&[entry("a", "bc", "$e")])
        );
    }
}
