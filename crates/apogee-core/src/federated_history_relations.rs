//! Edits (`m.replace`), reactions (`m.annotation`) and redactions in history paged back
//! (`federated_backfill.rs`).
//!
//! Paging back brings a change before its target: an edit is newer than the message it edits,
//! so it comes in an earlier page (or the same one). Such changes are kept pending rather than
//! their targets fetched with `/event`: every edit, reaction and redaction is stored with the
//! event it changes (`relates_to`, migration 22) whether the target is here or not, and when a
//! backfilled message is made, every stored change of it — from earlier pages, from its own
//! page, or received live before its target was backfilled — is applied to it before it is
//! inserted. The message appears edited, with its reactions, or not at all when redacted, in
//! the one insert: nothing is announced live, counted unread or notified. A target is only
//! ever accepted through the checked path back from what we hold (a fetched `/event` could be
//! any validly signed event of the sender's making).
//!
//! A change whose target is already a message here (history on a fork, a redaction of a
//! reaction applied earlier) updates that message like a live change. A change whose target
//! we hold in another room is dropped and nothing of it written. Rules as live: only the
//! author edits a message, the newest edit wins; a redaction counts when its sender is the
//! target's author, of the author's server, or has the room's `redact` power level; a
//! redacted edit or reaction no longer counts.
//!
//! Thread replies (`m.thread`) are kept by their root the same way: a reply made before its
//! root was here joins the root's thread when the root is made (`waiting_replies`).

use crate::Core;
use crate::error::CoreResult;
use crate::federated_events::reaction_name;
use crate::federated_power::PowerLevels;
use crate::federated_rooms::{RemoteMember, server_of};
use crate::store::{Change, FederatedRoom, FederationEvent};
use apogee_domain::message::EditedBy;
use apogee_domain::{Message, Timestamp, User, markdown};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What an event does to the event it relates to.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// An edit: the message's new content.
    Edit(Value),
    /// A reaction: its key (the emoji).
    Reaction(String),
    Redaction,
}

/// An edit, reaction or redaction of another event.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub event_id: String,
    pub sender: String,
    pub target: String,
    pub depth: i64,
    pub origin_server_ts: i64,
    pub effect: Effect,
}

impl Relation {
    /// The relation a stored event is, if it is one.
    pub(crate) fn of(event: &FederationEvent) -> Option<Self> {
        let target = event.relates_to()?.to_string();
        let pdu = &event.pdu;
        let content = pdu.get("content").unwrap_or(&Value::Null);
        let rel_type = content
            .get("m.relates_to")
            .and_then(|r| r.get("rel_type"))
            .and_then(Value::as_str);
        let effect = match (pdu.get("type").and_then(Value::as_str)?, rel_type) {
            ("m.room.redaction", _) => Effect::Redaction,
            ("m.room.message", Some("m.replace")) => {
                Effect::Edit(content.get("m.new_content").unwrap_or(content).clone())
            }
            ("m.reaction", Some("m.annotation")) => Effect::Reaction(
                content["m.relates_to"]
                    .get("key")
                    .and_then(Value::as_str)?
                    .to_string(),
            ),
            _ => return None,
        };
        Some(Self {
            event_id: event.event_id.clone(),
            sender: pdu.get("sender").and_then(Value::as_str)?.to_string(),
            target,
            depth: event.depth,
            origin_server_ts: pdu
                .get("origin_server_ts")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            effect,
        })
    }
}

/// One page of backfilled history being turned into changes: its relations by target, the
/// senders made so far, and what was applied.
pub(crate) struct HistoryPage {
    pub room: FederatedRoom,
    power: PowerLevels,
    /// The page's own relations, by the event they change.
    relations: HashMap<String, Vec<Relation>>,
    /// Senders by Matrix id, and the inserts of those new here.
    senders: HashMap<String, User>,
    pub user_inserts: Vec<Change>,
    /// Relation event id → the message it changed (kept on its row).
    pub applied: HashMap<String, String>,
    /// Relation events of the page pointing into another room: not written.
    pub dropped: HashSet<String>,
}

/// What a message's relations make of it.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub redacted: bool,
    /// The newest edit by the author.
    pub edit: Option<Relation>,
    /// The reactions not taken back, oldest first.
    pub reactions: Vec<Relation>,
}

impl HistoryPage {
    fn may_redact(&self, redactor: &str, author: &str) -> bool {
        redactor == author
            || server_of(redactor).is_some_and(|s| Some(s) == server_of(author))
            || self.power.user(redactor) >= self.power.redact()
    }
}

impl Core {
    /// A page of history for `room`, its relations indexed; those pointing into another room
    /// are marked dropped.
    pub(crate) async fn history_page(
        &self,
        room: FederatedRoom,
        rows: &[FederationEvent],
    ) -> CoreResult<HistoryPage> {
        let power = self.current_power(&room).await?;
        let in_page: HashSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
        let mut relations: HashMap<String, Vec<Relation>> = HashMap::new();
        let mut dropped = HashSet::new();
        for relation in rows.iter().filter_map(Relation::of) {
            if !in_page.contains(relation.target.as_str())
                && let Some(target) = self.store.federation_event(&relation.target).await?
                && target.matrix_room_id != room.matrix_room_id
            {
                tracing::info!(event_id = %relation.event_id, "backfilled relation into another room dropped");
                dropped.insert(relation.event_id.clone());
                continue;
            }
            relations
                .entry(relation.target.clone())
                .or_default()
                .push(relation);
        }
        Ok(HistoryPage {
            room,
            power,
            relations,
            senders: HashMap::new(),
            user_inserts: Vec::new(),
            applied: HashMap::new(),
            dropped,
        })
    }

    /// The room's power levels in its current state.
    async fn current_power(&self, room: &FederatedRoom) -> CoreResult<PowerLevels> {
        let state = self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?;
        let mut pdus: HashMap<&str, Value> = HashMap::new();
        for entry in &state {
            if entry.state_key.is_empty()
                && let kind @ ("m.room.power_levels" | "m.room.create") = entry.event_type.as_str()
                && let Some(event) = self.store.federation_event(&entry.event_id).await?
            {
                pdus.insert(kind, event.pdu);
            }
        }
        let levels = pdus.get("m.room.power_levels");
        let create = pdus.get("m.room.create");
        Ok(PowerLevels::new(
            &room.room_version,
            levels.and_then(|p| p.get("content")),
            create,
        ))
    }

    /// The user a Matrix sender of the page is (made, once, when new).
    pub(crate) async fn history_sender(
        &self,
        page: &mut HistoryPage,
        user_id: &str,
    ) -> CoreResult<User> {
        if let Some(user) = page.senders.get(user_id) {
            return Ok(user.clone());
        }
        let (user, insert) = self
            .remote_user(&RemoteMember {
                user_id: user_id.to_string(),
                displayname: None,
            })
            .await?;
        page.user_inserts.extend(insert);
        page.senders.insert(user_id.to_string(), user.clone());
        Ok(user)
    }

    /// Every relation of `target` (stored, and of the page), oldest first.
    async fn relations_of(&self, page: &HistoryPage, target: &str) -> CoreResult<Vec<Relation>> {
        let mut all: Vec<Relation> = self
            .store
            .federation_relations(&page.room.matrix_room_id, target)
            .await?
            .iter()
            .filter_map(Relation::of)
            .collect();
        all.extend(page.relations.get(target).cloned().unwrap_or_default());
        all.sort_by(|a, b| (a.depth, &a.event_id).cmp(&(b.depth, &b.event_id)));
        Ok(all)
    }

    /// Whether an event by `author` was redacted (by someone allowed to).
    async fn is_redacted(
        &self,
        page: &HistoryPage,
        event_id: &str,
        author: &str,
    ) -> CoreResult<bool> {
        Ok(self
            .relations_of(page, event_id)
            .await?
            .iter()
            .any(|r| matches!(r.effect, Effect::Redaction) && page.may_redact(&r.sender, author)))
    }

    /// What the relations of a message event by `author` make of it.
    pub(crate) async fn message_outcome(
        &self,
        page: &HistoryPage,
        event_id: &str,
        author: &str,
    ) -> CoreResult<Outcome> {
        let mut outcome = Outcome::default();
        for relation in self.relations_of(page, event_id).await? {
            match &relation.effect {
                Effect::Redaction if page.may_redact(&relation.sender, author) => {
                    outcome.redacted = true;
                }
                Effect::Edit(_)
                    if relation.sender == author
                        && !self.is_redacted(page, &relation.event_id, author).await? =>
                {
                    outcome.edit = Some(relation);
                }
                Effect::Reaction(_)
                    if !self
                        .is_redacted(page, &relation.event_id, &relation.sender)
                        .await? =>
                {
                    outcome.reactions.push(relation);
                }
                _ => {}
            }
        }
        Ok(outcome)
    }

    /// Applies an outcome's edit and reactions to a message about to be inserted, noting the
    /// relations applied.
    pub(crate) async fn apply_outcome(
        &self,
        page: &mut HistoryPage,
        message: &mut Message,
        outcome: Outcome,
    ) -> CoreResult<()> {
        if let Some(edit) = outcome.edit
            && let Effect::Edit(content) = &edit.effect
        {
            self.apply_edit(message, content, edit.origin_server_ts)
                .await?;
            page.applied.insert(edit.event_id, message.id.clone());
        }
        for reaction in outcome.reactions {
            let user = self.history_sender(page, &reaction.sender).await?;
            if let Effect::Reaction(key) = &reaction.effect {
                add_reaction(message, key, &reaction.event_id, &user);
                page.applied.insert(reaction.event_id, message.id.clone());
            }
        }
        Ok(())
    }

    async fn apply_edit(&self, message: &mut Message, content: &Value, ts: i64) -> CoreResult<()> {
        let text = self.incoming_text(content).await?;
        message.md = Some(markdown::parse(&text.text));
        message.msg = text.text;
        message.mentions = text.mentions;
        message.edited_at = Some(Timestamp::from_millis(ts));
        message.edited_by = Some(EditedBy {
            id: message.u.id.clone(),
            username: message.u.username.clone(),
        });
        Ok(())
    }

    /// The page's relations whose targets are neither new in the page nor waiting (messages
    /// already here, or a reaction applied to one): the updates and deletions they make,
    /// `changed` (messages here the page changed already) included.
    pub(crate) async fn relations_to_held(
        &self,
        page: &mut HistoryPage,
        new_in_page: &HashSet<String>,
        changed: Vec<Message>,
    ) -> CoreResult<Vec<Change>> {
        let mut relations: Vec<Relation> = page
            .relations
            .iter()
            .filter(|(target, _)| !new_in_page.contains(*target))
            .flat_map(|(_, r)| r.iter().cloned())
            .collect();
        relations.sort_by(|a, b| (a.depth, &a.event_id).cmp(&(b.depth, &b.event_id)));
        // Message id → the message as changed so far (`None`: deleted).
        let mut touched: BTreeMap<String, Option<Message>> = changed
            .into_iter()
            .map(|m| (m.id.clone(), Some(m)))
            .collect();
        let mut deleted: Vec<Message> = Vec::new();
        for relation in relations {
            let redacted = !matches!(relation.effect, Effect::Redaction)
                && self
                    .is_redacted(page, &relation.event_id, &relation.sender)
                    .await?;
            if redacted {
                continue;
            }
            let Some(target) = self.store.federation_event(&relation.target).await? else {
                continue; // Pending: applied when the target is backfilled.
            };
            let author = target.pdu["sender"].as_str().unwrap_or("").to_string();
            let target_type = target.pdu["type"].as_str().unwrap_or("");
            // The message a reaction event was counted on, for its redaction.
            let message_id = match (&relation.effect, target_type) {
                (Effect::Redaction, "m.reaction") => match target.message_id.clone() {
                    Some(id) => Some(id),
                    None => match target.relates_to() {
                        Some(of) => self
                            .store
                            .federation_event(of)
                            .await?
                            .filter(|e| e.matrix_room_id == page.room.matrix_room_id)
                            .and_then(|e| e.message_id),
                        None => None,
                    },
                },
                // Only a plain message's event made its message (an edit's only changed it).
                (_, "m.room.message") if Relation::of(&target).is_none() => target.message_id,
                _ => None,
            };
            let Some(message_id) = message_id else {
                continue;
            };
            if !touched.contains_key(&message_id) {
                let held = self
                    .store
                    .message_by_id(&message_id)
                    .await?
                    .filter(|m| m.rid == page.room.rid);
                let Some(held) = held else { continue };
                touched.insert(message_id.clone(), Some(held));
            }
            let Some(Some(message)) = touched.get_mut(&message_id) else {
                continue; // Deleted already.
            };
            match &relation.effect {
                Effect::Edit(content) if relation.sender == author => {
                    // An older edit than the one shown does not replace it.
                    if message
                        .edited_at
                        .is_none_or(|at| at.millis() <= relation.origin_server_ts)
                    {
                        self.apply_edit(message, content, relation.origin_server_ts)
                            .await?;
                    }
                }
                Effect::Reaction(key) => {
                    let user = self.history_sender(page, &relation.sender).await?;
                    add_reaction(message, key, &relation.event_id, &user);
                }
                Effect::Redaction if page.may_redact(&relation.sender, &author) => {
                    if target_type == "m.reaction" {
                        let key = target.pdu["content"]["m.relates_to"]["key"]
                            .as_str()
                            .unwrap_or("");
                        let user = self.history_sender(page, &author).await?;
                        remove_reaction(message, key, &relation.target, &user.username);
                    } else {
                        touched.insert(message_id.clone(), None);
                        let held = self.store.message_by_id(&message_id).await?;
                        page.applied.insert(relation.event_id, message_id);
                        if let Some(held) = held {
                            deleted.push(held);
                        }
                        continue;
                    }
                }
                _ => continue,
            }
            page.applied.insert(relation.event_id, message_id);
        }
        let mut changes = Vec::new();
        for message in touched.into_values().flatten() {
            let mut message = message;
            message.updated_at = Timestamp::now();
            changes.push(Change::UpdateMessage(message));
        }
        for message in deleted {
            changes.extend(self.message_deletion(&message).await?);
        }
        Ok(changes)
    }
}

/// The thread root a message's content names (`m.thread`).
pub(crate) fn thread_root_of(content: &Value) -> Option<&str> {
    let rel = content.get("m.relates_to")?;
    (rel.get("rel_type").and_then(Value::as_str)? == "m.thread")
        .then(|| rel.get("event_id").and_then(Value::as_str))
        .flatten()
}

impl Core {
    /// Messages made as thread replies of `root_event` before it was here (a newer page, or
    /// received live), not yet in a thread, oldest first.
    pub(crate) async fn waiting_replies(
        &self,
        page: &HistoryPage,
        root_event: &str,
    ) -> CoreResult<Vec<Message>> {
        let mut replies = Vec::new();
        for event in self
            .store
            .federation_relations(&page.room.matrix_room_id, root_event)
            .await?
        {
            let content = event.pdu.get("content").unwrap_or(&Value::Null);
            if event.pdu.get("type").and_then(Value::as_str) != Some("m.room.message")
                || thread_root_of(content) != Some(root_event)
            {
                continue;
            }
            let Some(id) = event.message_id else { continue };
            if let Some(reply) = self.store.message_by_id(&id).await?
                && reply.rid == page.room.rid
                && reply.tmid.is_none()
            {
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    /// The message a held event made in the page's room (a thread root here already).
    pub(crate) async fn held_message_of(
        &self,
        page: &HistoryPage,
        event_id: &str,
    ) -> CoreResult<Option<Message>> {
        let Some(event) = self.store.federation_event(event_id).await? else {
            return Ok(None);
        };
        if event.matrix_room_id != page.room.matrix_room_id {
            return Ok(None);
        }
        let Some(id) = event.message_id else {
            return Ok(None);
        };
        Ok(self
            .store
            .message_by_id(&id)
            .await?
            .filter(|m| m.rid == page.room.rid))
    }
}

/// Counts `user`'s reaction `key` (made by `event_id`) on `message`.
fn add_reaction(message: &mut Message, key: &str, event_id: &str, user: &User) {
    let entry = message
        .reactions
        .get_or_insert_with(Default::default)
        .entry(reaction_name(key))
        .or_default();
    if !entry.usernames.contains(&user.username) {
        entry.usernames.push(user.username.clone());
    }
    entry
        .federation_event_ids
        .insert(event_id.to_string(), user.username.clone());
}

/// Takes back the reaction `key` that `event_id` of `username` made.
fn remove_reaction(message: &mut Message, key: &str, event_id: &str, username: &str) {
    let name = reaction_name(key);
    if let Some(reactions) = message.reactions.as_mut() {
        if let Some(entry) = reactions.get_mut(&name) {
            entry.federation_event_ids.remove(event_id);
            if !entry.federation_event_ids.values().any(|u| u == username) {
                entry.usernames.retain(|u| u != username);
            }
            if entry.usernames.is_empty() {
                reactions.remove(&name);
            }
        }
        if reactions.is_empty() {
            message.reactions = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FederationEventKind;
    use apogee_domain::random_id;
    use serde_json::json;

    fn event(pdu: Value) -> FederationEvent {
        FederationEvent {
            event_id: "$e".into(),
            matrix_room_id: "!r:s".into(),
            message_id: None,
            kind: FederationEventKind::Backfilled,
            depth: 3,
            pdu,
        }
    }

    #[test]
    fn relations_are_read_from_their_events() {
        let edit = event(
            json!({"type": "m.room.message", "sender": "@a:s", "content": {
            "body": "* b", "m.new_content": {"body": "b"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$t"}}}),
        );
        let r = Relation::of(&edit).unwrap();
        assert_eq!((r.target.as_str(), r.sender.as_str()), ("$t", "@a:s"));
        assert!(matches!(r.effect, Effect::Edit(ref c) if c["body"] == "b"));
        let reaction = event(json!({"type": "m.reaction", "sender": "@a:s", "content": {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": "$t", "key": "👍"}}}));
        assert!(
            matches!(Relation::of(&reaction).unwrap().effect, Effect::Reaction(ref k) if k == "👍")
        );
        for redaction in [
            json!({"type": "m.room.redaction", "sender": "@a:s", "content": {"redacts": "$t"}}),
            json!({"type": "m.room.redaction", "sender": "@a:s", "redacts": "$t", "content": {}}),
        ] {
            let r = Relation::of(&event(redaction)).unwrap();
            assert_eq!(r.target, "$t");
            assert!(matches!(r.effect, Effect::Redaction));
        }
        // Not relations: a thread reply, a reaction without a key, an annotation as a
        // message, a plain message, a redacted (content-less) reaction.
        for pdu in [
            json!({"type": "m.room.message", "sender": "@a:s", "content": {"body": "x",
                "m.relates_to": {"rel_type": "m.thread", "event_id": "$t"}}}),
            json!({"type": "m.reaction", "sender": "@a:s", "content": {
                "m.relates_to": {"rel_type": "m.annotation", "event_id": "$t"}}}),
            json!({"type": "m.room.message", "sender": "@a:s", "content": {
                "m.relates_to": {"rel_type": "m.annotation", "event_id": "$t", "key": "x"}}}),
            json!({"type": "m.room.message", "sender": "@a:s", "content": {"body": "x"}}),
            json!({"type": "m.reaction", "sender": "@a:s", "content": {}}),
        ] {
            assert!(Relation::of(&event(pdu.clone())).is_none(), "{pdu}");
        }
    }

    #[test]
    fn reactions_are_counted_and_taken_back_per_event() {
        let mut user = User::new(random_id(), "@a:s".into(), None, "user", vec![]);
        user.username = "@a:s".into();
        let mut m = Message::new(random_id(), "rid", user.as_ref(), "hi".into());
        add_reaction(&mut m, "👍", "$1", &user);
        add_reaction(&mut m, "👍", "$2", &user);
        assert_eq!(
            m.reactions.as_ref().unwrap()[":thumbsup:"].usernames,
            ["@a:s"]
        );
        // One of two events of the same reaction taken back: still counted.
        remove_reaction(&mut m, "👍", "$1", "@a:s");
        assert_eq!(
            m.reactions.as_ref().unwrap()[":thumbsup:"].usernames,
            ["@a:s"]
        );
        remove_reaction(&mut m, "👍", "$2", "@a:s");
        assert!(m.reactions.is_none());
    }
}
