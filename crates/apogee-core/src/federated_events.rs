//! Events received from other Matrix servers (`/send`), already checked by the adapter
//! (format, signatures, hash, auth rules), become Rocket.Chat changes committed in the same
//! batch as the event row, the room state and the extremities: a message, an edit
//! (`m.replace`), a reaction (`m.annotation`), a redaction (of a message or a reaction), a
//! membership change, a name or topic. Soft-failed events are stored and change nothing else.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_rooms::{FEDERATED_ROLE, RemoteMember};
use crate::store::{
    Change, FederatedRoom, FederationEvent, FederationEventKind, FederationStateEntry,
};
use apogee_domain::message::{EditedBy, Mention, Reaction};
use apogee_domain::{Message, Timestamp, User, markdown, random_id};
use serde_json::{Value, json};

/// One checked PDU for a mapped room, as core sees it: strings and JSON.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event_id: String,
    pub matrix_room_id: String,
    pub sender: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: Value,
    /// The event a redaction removes (top level before v11, in `content` since).
    pub redacts: Option<String>,
    pub prev_events: Vec<String>,
    pub depth: i64,
    pub origin_server_ts: i64,
    /// The stored form of the PDU.
    pub pdu: Value,
    /// Allowed by its auth events but not by the room's current state.
    pub soft_failed: bool,
    /// The state before the event (after its predecessors, resolved; or, beyond a gap, as
    /// its sender told us). `None`: the room's current state.
    pub state_before: Option<Vec<FederationStateEntry>>,
    /// The room's state once the event is applied, when the adapter worked it out (resolved
    /// over the forward extremities). `None`: the event's own entry replaces its key.
    pub current_state: Option<Vec<FederationStateEntry>>,
}

/// What became of an incoming event.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// Already known: nothing done.
    Duplicate,
    /// Stored; `message_id` is the Rocket.Chat message it made or changed.
    Applied { message_id: Option<String> },
    /// Stored as soft-failed; nothing shown.
    SoftFailed,
}

/// Matrix reaction keys (the emoji itself) and the emojione short names Rocket.Chat clients key
/// reactions by. Read both ways, first match wins: `👍` is named `thumbsup` while `+1` also maps
/// back to it; `heart` maps to `❤️` while the bare `❤` is also named `heart`.
const REACTION_NAMES: &[(&str, &str)] = &[
    ("👍", "thumbsup"),
    ("👍", "+1"),
    ("👎", "thumbsdown"),
    ("😄", "smile"),
    ("😀", "grinning"),
    ("🙂", "slight_smile"),
    ("😂", "joy"),
    ("😢", "cry"),
    ("😮", "open_mouth"),
    ("🎉", "tada"),
    ("❤️", "heart"),
    ("❤", "heart"),
    ("🔥", "fire"),
    ("👀", "eyes"),
    ("🚀", "rocket"),
    ("🙏", "pray"),
    ("✅", "white_check_mark"),
    ("👏", "clap"),
    ("😉", "wink"),
    ("🤔", "thinking"),
    ("💯", "100"),
];

/// The Rocket.Chat name of a reaction key (`👍` → `:thumbsup:`). Keys outside the table keep
/// their text (`:👍:` style), which clients show as text.
pub fn reaction_name(key: &str) -> String {
    let name = REACTION_NAMES
        .iter()
        .find(|(emoji, _)| *emoji == key)
        .map_or_else(|| key.trim_matches(':'), |(_, name)| name);
    format!(":{name}:")
}

/// The Matrix key of a Rocket.Chat reaction name (the inverse of [`reaction_name`]).
pub fn reaction_key(name: &str) -> String {
    let bare = name.trim_matches(':');
    REACTION_NAMES
        .iter()
        .find(|(_, n)| *n == bare)
        .map_or(bare, |(emoji, _)| emoji)
        .to_string()
}

fn relation(content: &Value) -> Option<(&str, &str)> {
    let rel = content.get("m.relates_to")?;
    Some((
        rel.get("rel_type")?.as_str()?,
        rel.get("event_id")?.as_str()?,
    ))
}

impl Core {
    /// Applies one checked event of a mapped room: the Rocket.Chat change and the Matrix rows
    /// in one batch.
    pub async fn receive_federated_event(&self, event: IncomingEvent) -> CoreResult<Received> {
        self.receive_federated_event_relayed(event, None).await
    }

    /// As [`Core::receive_federated_event`], for an event a server handed to us as the room's
    /// resident (`send_join`, `send_leave`): also queued to every other server in the room
    /// but `relay_from`, which has it.
    pub async fn receive_federated_event_relayed(
        &self,
        event: IncomingEvent,
        relay_from: Option<&str>,
    ) -> CoreResult<Received> {
        if self
            .store
            .federation_event(&event.event_id)
            .await?
            .is_some()
        {
            return Ok(Received::Duplicate);
        }
        let room = self
            .store
            .federated_room_by_matrix_id(&event.matrix_room_id)
            .await?
            .ok_or_else(|| CoreError::bad("error-room-not-found", "Not a room of this server"))?;
        let mut row = FederationEvent {
            event_id: event.event_id.clone(),
            matrix_room_id: event.matrix_room_id.clone(),
            message_id: None,
            kind: FederationEventKind::Timeline,
            depth: event.depth,
            pdu: event.pdu.clone(),
        };
        // The state before the event, for `state_ids` and forks.
        let state_before = match &event.state_before {
            Some(before) => before.clone(),
            None => {
                self.store
                    .federation_room_state(&event.matrix_room_id)
                    .await?
            }
        };
        let state_changes = self
            .event_state_changes(&event.event_id, state_before)
            .await?;
        if event.soft_failed {
            row.kind = FederationEventKind::SoftFailed;
            let mut changes = vec![Change::SaveFederationEvents(vec![row])];
            changes.extend(state_changes);
            self.commit(changes).await?;
            return Ok(Received::SoftFailed);
        }
        let (mut changes, message_id) = self.rocket_chat_changes(&room, &event).await?;
        row.message_id = message_id.clone();
        changes.push(Change::SaveFederationEvents(vec![row]));
        changes.extend(state_changes);
        if let Some(resolved) = &event.current_state {
            changes.push(Change::SetFederationRoomState {
                matrix_room_id: event.matrix_room_id.clone(),
                entries: resolved.clone(),
            });
        } else if let Some(key) = &event.state_key {
            changes.push(Change::SetFederationRoomState {
                matrix_room_id: event.matrix_room_id.clone(),
                entries: vec![FederationStateEntry {
                    event_type: event.event_type.clone(),
                    state_key: key.clone(),
                    event_id: event.event_id.clone(),
                }],
            });
        }
        changes.push(Change::SetFederationExtremities {
            matrix_room_id: event.matrix_room_id.clone(),
            remove: event.prev_events.clone(),
            add: vec![event.event_id.clone()],
        });
        if let (Some(origin), Some(gateway)) = (relay_from, self.federation.get()) {
            let mut servers = self.joined_servers(&room).await?;
            servers.remove(origin);
            changes.extend(self.pdu_deliveries(&servers, gateway.server_name(), &event.pdu));
        }
        self.commit(changes).await?;
        if event.event_type == "m.room.member"
            && event.state_key.as_deref() == Some(event.sender.as_str())
            && event.content.get("membership").and_then(Value::as_str) == Some("join")
        {
            self.follow_remote_avatar(&event.sender, &event.content)
                .await;
        }
        if event.event_type == "m.room.avatar" && event.state_key.as_deref() == Some("") {
            self.follow_remote_room_avatar(&room.rid, &event.sender, &event.content)
                .await;
        }
        Ok(Received::Applied { message_id })
    }

    async fn rocket_chat_changes(
        &self,
        room: &FederatedRoom,
        event: &IncomingEvent,
    ) -> CoreResult<(Vec<Change>, Option<String>)> {
        let (sender, mut changes) = match self
            .remote_user(&RemoteMember {
                user_id: event.sender.clone(),
                displayname: None,
            })
            .await?
        {
            (user, Some(insert)) => (user, vec![insert]),
            (user, None) => (user, vec![]),
        };
        let ts = Timestamp::from_millis(event.origin_server_ts);
        match (event.event_type.as_str(), &event.state_key) {
            ("m.room.member", Some(target)) => {
                if *target == event.sender {
                    // A new user joining: made once, below, with their display name.
                    changes.clear();
                }
                changes.extend(self.membership_changes(room, event, target).await?);
                Ok((changes, None))
            }
            ("m.room.name" | "m.room.topic", Some(key)) if key.is_empty() => {
                let mut r = self
                    .store
                    .room_by_id(&room.rid)
                    .await?
                    .ok_or_else(CoreError::room_not_found)?;
                let text = |f: &str| {
                    event
                        .content
                        .get(f)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                // Announced with Rocket.Chat's own lines, as a local change would be.
                let line = if event.event_type == "m.room.name" {
                    r.fname = text("name").filter(|n| !n.trim().is_empty());
                    // The room list shows the subscription's copy of the name.
                    for mut sub in self.every_subscription(&r.id).await? {
                        sub.fname = r.fname.clone();
                        sub.updated_at = Timestamp::now();
                        changes.push(Change::UpdateSubscription(sub));
                    }
                    ("r", r.fname.clone().unwrap_or_default())
                } else {
                    r.topic = text("topic");
                    ("room_changed_topic", r.topic.clone().unwrap_or_default())
                };
                r.updated_at = Timestamp::now();
                changes.insert(0, Change::UpdateRoom(r));
                changes.push(Change::AppendMessage {
                    message: Message::system(&room.rid, line.0, line.1, sender.as_ref()),
                    mentioned_user_ids: vec![],
                    mentions_all: false,
                });
                Ok((changes, None))
            }
            ("m.room.avatar", Some(key)) if key.is_empty() => {
                // Announced now; the image follows once downloaded (`follow_remote_room_avatar`).
                changes.push(Change::AppendMessage {
                    message: Message::system(
                        &room.rid,
                        "room_changed_avatar",
                        String::new(),
                        sender.as_ref(),
                    ),
                    mentioned_user_ids: vec![],
                    mentions_all: false,
                });
                Ok((changes, None))
            }
            ("m.room.power_levels", Some(key)) if key.is_empty() => {
                changes.extend(
                    self.incoming_power_levels(room, &event.content, &sender)
                        .await?,
                );
                Ok((changes, None))
            }
            ("m.room.join_rules", Some(key)) if key.is_empty() => {
                changes.extend(
                    self.incoming_join_rules(room, &event.content, &sender)
                        .await?,
                );
                Ok((changes, None))
            }
            ("m.room.tombstone", Some(key)) if key.is_empty() => {
                changes.extend(
                    self.archive_federated_room(room, &sender, "tombstone")
                        .await?,
                );
                Ok((changes, None))
            }
            ("m.room.message", None) => match relation(&event.content) {
                Some(("m.replace", target)) => {
                    let Some(mut message) = self.message_of_event(target).await? else {
                        return Ok((changes, None));
                    };
                    // Only the author edits a message.
                    if message.u.id != sender.id {
                        return Ok((changes, None));
                    }
                    let new = event.content.get("m.new_content").unwrap_or(&event.content);
                    let text = self.incoming_text(new).await?;
                    message.md = Some(markdown::parse(&text.text));
                    message.msg = text.text;
                    message.mentions = text.mentions;
                    message.edited_at = Some(ts);
                    message.edited_by = Some(EditedBy {
                        id: sender.id.clone(),
                        username: sender.username.clone(),
                    });
                    message.updated_at = Timestamp::now();
                    let id = message.id.clone();
                    changes.push(Change::UpdateMessage(message));
                    Ok((changes, Some(id)))
                }
                _ => {
                    let text = self.incoming_text(&event.content).await?;
                    let mut message =
                        Message::new(random_id(), &room.rid, sender.as_ref(), text.text);
                    message.md = Some(markdown::parse(&message.msg));
                    message.mentions = text.mentions;
                    let mentions_all = self
                        .incoming_room_mention(room, &event.sender, &event.content)
                        .await?;
                    if mentions_all {
                        message.mentions.push(Mention {
                            id: "all".into(),
                            username: "all".into(),
                            name: None,
                            kind: Some("user".into()),
                        });
                    }
                    message.ts = ts;
                    let root = self
                        .incoming_relations(&event.content, &mut message)
                        .await?;
                    if let Some(file) = self
                        .incoming_file(&room.rid, &sender, &event.content)
                        .await?
                    {
                        self.attach_incoming_file(&mut message, file, &mut changes);
                    }
                    message.updated_at = Timestamp::now();
                    message
                        .extra
                        .insert("federation".into(), json!({"eventId": event.event_id}));
                    let id = message.id.clone();
                    changes.push(Change::AppendMessage {
                        message,
                        mentioned_user_ids: text.mentioned_ids,
                        mentions_all,
                    });
                    changes.extend(root.map(Change::UpdateMessage));
                    Ok((changes, Some(id)))
                }
            },
            ("m.reaction", None) => {
                let Some(("m.annotation", target)) = relation(&event.content) else {
                    return Ok((changes, None));
                };
                let Some(key) = event.content["m.relates_to"]
                    .get("key")
                    .and_then(Value::as_str)
                else {
                    return Ok((changes, None));
                };
                let Some(mut message) = self.message_of_event(target).await? else {
                    return Ok((changes, None));
                };
                let reactions = message.reactions.get_or_insert_with(Default::default);
                let entry = reactions
                    .entry(reaction_name(key))
                    .or_insert_with(Reaction::default);
                if !entry.usernames.contains(&sender.username) {
                    entry.usernames.push(sender.username.clone());
                }
                entry
                    .federation_event_ids
                    .insert(event.event_id.clone(), sender.username.clone());
                message.updated_at = Timestamp::now();
                let id = message.id.clone();
                changes.push(Change::UpdateMessage(message));
                Ok((changes, Some(id)))
            }
            ("m.room.redaction", None) => {
                let Some(target_id) = &event.redacts else {
                    return Ok((changes, None));
                };
                let Some(target) = self.store.federation_event(target_id).await? else {
                    return Ok((changes, None));
                };
                let Some(message_id) = target.message_id.clone() else {
                    return Ok((changes, None));
                };
                let Some(mut message) = self.store.message_by_id(&message_id).await? else {
                    return Ok((changes, None));
                };
                // The auth rules allowed the redaction (own event, or power to redact).
                match target.pdu.get("type").and_then(Value::as_str) {
                    Some("m.reaction") => {
                        let key = target.pdu["content"]["m.relates_to"]["key"]
                            .as_str()
                            .unwrap_or("");
                        let author = target.pdu["sender"].as_str().unwrap_or("");
                        let name = reaction_name(key);
                        if let Some(reactions) = message.reactions.as_mut() {
                            if let Some(entry) = reactions.get_mut(&name) {
                                entry.federation_event_ids.remove(target_id);
                                entry.usernames.retain(|u| u != author);
                                if entry.usernames.is_empty() {
                                    reactions.remove(&name);
                                }
                            }
                            if reactions.is_empty() {
                                message.reactions = None;
                            }
                        }
                        message.updated_at = Timestamp::now();
                        changes.push(Change::UpdateMessage(message));
                    }
                    // A message, a thread reply included (an edit's event only changed it).
                    Some("m.room.message")
                        if !matches!(relation(&target.pdu["content"]), Some(("m.replace", _))) =>
                    {
                        changes.extend(self.message_deletion(&message).await?);
                    }
                    _ => {}
                }
                Ok((changes, Some(message_id)))
            }
            _ => Ok((changes, None)),
        }
    }

    /// The message a Matrix event made, if it made one.
    async fn message_of_event(&self, event_id: &str) -> CoreResult<Option<Message>> {
        let Some(event) = self.store.federation_event(event_id).await? else {
            return Ok(None);
        };
        match event.message_id {
            Some(id) => Ok(self.store.message_by_id(&id).await?),
            None => Ok(None),
        }
    }

    /// A member joining (subscription) or leaving / banned (subscription removed).
    async fn membership_changes(
        &self,
        room: &FederatedRoom,
        event: &IncomingEvent,
        target: &str,
    ) -> CoreResult<Vec<Change>> {
        let membership = event
            .content
            .get("membership")
            .and_then(Value::as_str)
            .unwrap_or("");
        let member = RemoteMember {
            user_id: target.to_string(),
            displayname: event
                .content
                .get("displayname")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let (mut user, insert): (User, Option<Change>) = self.remote_user(&member).await?;
        let mut changes: Vec<Change> = insert.into_iter().collect();
        // A remote user's display name follows their member events (a join to a join is how
        // Matrix announces a new one); only their own event speaks for them.
        if changes.is_empty()
            && membership == "join"
            && event.sender == target
            && user.roles.iter().any(|r| r == FEDERATED_ROLE)
        {
            let name = member
                .displayname
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| target.to_string());
            if user.name.as_deref() != Some(name.as_str()) {
                user.name = Some(name);
                user.updated_at = Timestamp::now();
                changes.push(Change::UpdateUser(user.clone()));
            }
        }
        let r = self
            .store
            .room_by_id(&room.rid)
            .await?
            .ok_or_else(CoreError::room_not_found)?;
        let sub = self.store.subscription(&r.id, &user.id).await?;
        match membership {
            "join" if sub.is_none() => changes.extend(self.join_changes(r, &user, None, true)),
            // The store counts the membership out of `usersCount`.
            "leave" | "ban" if sub.is_some() => changes.push(Change::DeleteSubscription {
                rid: r.id.clone(),
                user_id: user.id.clone(),
            }),
            _ => {}
        }
        // The last member of the other servers gone: a room made elsewhere is abandoned.
        if matches!(membership, "leave" | "ban")
            && user.roles.iter().any(|r| r == FEDERATED_ROLE)
            && self.abandoned_without(room, target).await?
        {
            changes.extend(
                self.archive_federated_room(room, &user, "abandoned")
                    .await?,
            );
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::{reaction_key, reaction_name};

    #[test]
    fn reaction_names_both_ways() {
        assert_eq!(reaction_name("👍"), ":thumbsup:");
        assert_eq!(reaction_name("🎉"), ":tada:");
        assert_eq!(reaction_name("🦀"), ":🦀:");
        assert_eq!(reaction_key(":thumbsup:"), "👍");
        assert_eq!(reaction_key(":+1:"), "👍");
        assert_eq!(reaction_key(":tada:"), "🎉");
        assert_eq!(reaction_key(":🦀:"), "🦀");
    }
}
