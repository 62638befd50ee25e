//! History from before our join, for local readers. When a reader pages back (`loadHistory`,
//! `channels.history`) past the oldest message we hold in a federated room, core asks the
//! adapter to `/backfill` the events before the room's oldest timeline events from a server
//! in the room; the adapter checks each (signatures, hash, auth, that it is in the room's
//! history we asked for) and hands them here. They are kept as `backfilled` event rows, and
//! the messages among them become Rocket.Chat messages of their original time that are never
//! unread, never the room's last message, never notify and are not announced live
//! ([`Change::InsertBackfilledMessage`]). A message's id is derived from its event id, so two
//! readers backfilling the same page at once cannot make it twice: the second batch conflicts
//! and writes nothing.
//!
//! What a local reader may see of it is decided here: only events whose room history
//! visibility is `shared` or `world_readable` (the specification's default when unknown)
//! become messages; others are kept as events only. A file message is downloaded as it would
//! be live. Edits, reactions, redactions and thread replies apply to their targets whichever
//! page either comes in (`federated_history_relations.rs`).

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_history_relations::thread_root_of;
use crate::messages::join_thread;
use crate::store::{Change, FederationEvent, FederationEventKind, HistoryQuery};
use apogee_domain::{Message, Room, Timestamp, id_from_digest, markdown};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// How many events one `/backfill` request asks for.
pub const BACKFILL_PAGE: usize = 50;
/// A history page still short of its count is topped up at most this many times.
const MAX_ROUNDS: usize = 3;
/// How long one top-up may keep a reader waiting.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One event of a backfill answer, checked by the adapter: strings and JSON.
#[derive(Debug, Clone)]
pub struct BackfilledEvent {
    pub event_id: String,
    pub sender: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: Value,
    pub depth: i64,
    pub origin_server_ts: i64,
    /// The stored form of the PDU.
    pub pdu: Value,
    /// The room's `m.room.history_visibility` at the event as the adapter could tell from
    /// the events around it; `None` when the room never set one.
    pub history_visibility: Option<String>,
}

/// Whether a local reader may see an event of before our join under `visibility`.
pub fn history_visible(visibility: Option<&str>) -> bool {
    matches!(visibility, None | Some("shared" | "world_readable"))
}

/// The id of the message a backfilled event makes: the same event always makes the same id.
pub fn backfilled_message_id(event_id: &str) -> String {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(b"apogee backfilled message\0")
        .chain_update(event_id.as_bytes())
        .finalize()
        .into();
    id_from_digest(&digest)
}

/// Whether a history query reads back from the newest messages without a lower bound or a
/// filter: the only kind a short answer of which means "we hold no older messages".
fn reads_back_unbounded(query: &HistoryQuery) -> bool {
    query.oldest.is_none()
        && query.after.is_none()
        && !query.ascending
        && query.offset == 0
        && query.text.is_none()
        && query.tmid.is_none()
        && !query.threads_only
        && !query.pinned_only
        && query.starred_by.is_none()
        && query.mentioning.is_none()
}

impl Core {
    /// A history page (`got` messages of `query`): when it is short of its count in a
    /// federated room, fetches older history from the room's servers, a page at a time, at
    /// most [`MAX_ROUNDS`] times. Returns whether anything new was stored (the page is then
    /// read again). Failures are logged: the reader gets what we hold.
    pub(crate) async fn backfill_short_page(
        &self,
        room: &Room,
        query: &HistoryQuery,
        got: usize,
        round: usize,
    ) -> bool {
        if round >= MAX_ROUNDS
            || i64::try_from(got).unwrap_or(i64::MAX) >= query.count
            || !reads_back_unbounded(query)
        {
            return false;
        }
        let Some(gateway) = self.federation.get() else {
            return false;
        };
        let mapping = match self.store.federated_room(&room.id).await {
            Ok(Some(m)) => m,
            _ => return false,
        };
        // A reader waits at most this long; a backfill cut short wrote nothing (its batch is
        // one commit) and the next page asks again.
        match tokio::time::timeout(
            MAX_WAIT,
            gateway.backfill(&mapping.matrix_room_id, BACKFILL_PAGE),
        )
        .await
        {
            Ok(Ok(stored)) => stored > 0,
            Ok(Err(e)) => {
                tracing::info!(room = %mapping.matrix_room_id, error = %e, "backfill failed");
                false
            }
            Err(_) => {
                tracing::info!(room = %mapping.matrix_room_id, "backfill took too long for the reader");
                false
            }
        }
    }

    /// The servers (ours excluded) with a member joined to a mapped room, the room's origin
    /// first: whom to ask for its history.
    pub async fn federated_history_servers(&self, matrix_room_id: &str) -> CoreResult<Vec<String>> {
        let Some(mapping) = self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
        else {
            return Ok(vec![]);
        };
        let ours = self.federation.get().map(|g| g.server_name().to_string());
        let joined = self.joined_servers(&mapping).await?;
        let mut servers: Vec<String> = Vec::new();
        for server in std::iter::once(&mapping.origin).chain(joined.iter()) {
            if Some(server) != ours.as_ref()
                && !servers.contains(server)
                && self.federation_server_allowed(server)
            {
                servers.push(server.clone());
            }
        }
        Ok(servers)
    }

    /// Keeps checked backfilled events of a mapped room, and makes the messages among them
    /// with their edits, reactions and redactions (see the module and
    /// `federated_history_relations.rs`). Events already held are skipped. Returns how many
    /// were new.
    pub async fn save_backfilled_events(
        &self,
        matrix_room_id: &str,
        mut events: Vec<BackfilledEvent>,
    ) -> CoreResult<usize> {
        let mapping = self
            .store
            .federated_room_by_matrix_id(matrix_room_id)
            .await?
            .ok_or_else(|| CoreError::bad("error-room-not-found", "Not a room of this server"))?;
        events.sort_by_key(|e| e.depth);
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        for event in events {
            if seen.insert(event.event_id.clone())
                && self
                    .store
                    .federation_event(&event.event_id)
                    .await?
                    .is_none()
            {
                fresh.push(event);
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let mut rows: Vec<FederationEvent> = fresh
            .iter()
            .map(|event| FederationEvent {
                event_id: event.event_id.clone(),
                matrix_room_id: matrix_room_id.to_string(),
                message_id: None,
                kind: FederationEventKind::Backfilled,
                depth: event.depth,
                pdu: event.pdu.clone(),
            })
            .collect();
        let mut page = self.history_page(mapping.clone(), &rows).await?;
        let mut messages: Vec<Message> = Vec::new();
        let mut made_at: HashMap<String, usize> = HashMap::new();
        // Thread roots already here that gain replies, and replies that find their root.
        let mut held_roots: HashMap<String, Message> = HashMap::new();
        let mut replies: Vec<Message> = Vec::new();
        let mut files: Vec<Change> = Vec::new();
        let mut made: HashSet<String> = HashSet::new();
        for (event, row) in fresh.iter().zip(rows.iter_mut()) {
            if !shows_as_message(event) {
                continue;
            }
            let outcome = self
                .message_outcome(&page, &event.event_id, &event.sender)
                .await?;
            made.insert(event.event_id.clone());
            if outcome.redacted {
                continue;
            }
            let sender = self.history_sender(&mut page, &event.sender).await?;
            let text = self.incoming_text(&event.content).await?;
            let mut message = Message::new(
                backfilled_message_id(&event.event_id),
                &mapping.rid,
                sender.as_ref(),
                text.text,
            );
            message.md = Some(markdown::parse(&message.msg));
            message.mentions = text.mentions;
            message.ts = Timestamp::from_millis(event.origin_server_ts);
            // A file as it would be live: downloaded within the same limits, else text.
            if let Some(file) = self
                .incoming_file(&mapping.rid, &sender, &event.content)
                .await?
            {
                self.attach_incoming_file(&mut message, file, &mut files);
            }
            self.apply_outcome(&mut page, &mut message, outcome).await?;
            // Its thread: a root made in this page, or here already, takes it in.
            if let Some(root_event) = thread_root_of(&event.content) {
                if let Some(&i) = made_at.get(root_event) {
                    messages[i] = join_thread(messages[i].clone(), &mut message);
                    messages[i].updated_at = Timestamp::now();
                } else if let Some(root) = match held_roots.remove(root_event) {
                    Some(root) => Some(root),
                    None => self.held_message_of(&page, root_event).await?,
                } {
                    let tlm = root.tlm;
                    let mut root = join_thread(root, &mut message);
                    // A reply older than the thread's last keeps its last reply time.
                    root.tlm = root.tlm.max(tlm);
                    root.updated_at = Timestamp::now();
                    held_roots.insert(root_event.to_string(), root);
                }
            }
            // Replies that came before their root (a newer page, or live) join it now.
            for mut reply in self.waiting_replies(&page, &event.event_id).await? {
                message = join_thread(message, &mut reply);
                reply.updated_at = Timestamp::now();
                replies.push(reply);
            }
            // Clients syncing the room (`chat.syncMessages`) learn of it as of now.
            message.updated_at = Timestamp::now();
            message
                .extra
                .insert("federation".into(), json!({"eventId": event.event_id}));
            row.message_id = Some(message.id.clone());
            made_at.insert(event.event_id.clone(), messages.len());
            messages.push(message);
        }
        // Roots here already that gained replies are changed further by the page's
        // relations to them, if any: one update each.
        let roots: Vec<Message> = held_roots.into_values().collect();
        let updates = self.relations_to_held(&mut page, &made, roots).await?;
        rows.retain(|row| !page.dropped.contains(&row.event_id));
        for row in &mut rows {
            if row.message_id.is_none()
                && let Some(message_id) = page.applied.get(&row.event_id)
            {
                row.message_id = Some(message_id.clone());
            }
        }
        let count = rows.len();
        let mut changes = std::mem::take(&mut page.user_inserts);
        changes.extend(messages.into_iter().map(Change::InsertBackfilledMessage));
        changes.extend(replies.into_iter().map(Change::UpdateMessage));
        // Uploads after their messages: a thumbnail's outbox item names its message.
        changes.extend(files);
        changes.extend(updates);
        if !rows.is_empty() {
            changes.push(Change::SaveFederationEvents(rows));
        }
        if changes.is_empty() {
            return Ok(0);
        }
        self.commit(changes).await?;
        Ok(count)
    }
}

/// A plain message (not an edit) with a text, which the room's history visibility lets local
/// readers see.
fn shows_as_message(event: &BackfilledEvent) -> bool {
    event.event_type == "m.room.message"
        && event.state_key.is_none()
        && history_visible(event.history_visibility.as_deref())
        && event
            .content
            .get("body")
            .and_then(Value::as_str)
            .is_some_and(|b| !b.trim().is_empty())
        && event
            .content
            .get("m.relates_to")
            .and_then(|r| r.get("rel_type"))
            .and_then(Value::as_str)
            != Some("m.replace")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = backfilled_message_id("$a");
        assert_eq!(a.len(), 17);
        assert_eq!(a, backfilled_message_id("$a"));
        assert_ne!(a, backfilled_message_id("$b"));
    }

    #[test]
    fn visibility() {
        assert!(history_visible(None));
        assert!(history_visible(Some("shared")));
        assert!(history_visible(Some("world_readable")));
        assert!(!history_visible(Some("joined")));
        assert!(!history_visible(Some("invited")));
    }
}
