//! Messages: sending (idempotent on client-chosen ids), editing, deleting, reactions, pins,
//! stars, thread following, history, search and sync.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::federated_outgoing::Outgoing;
use crate::rooms::{RoomRef, RoomView};
use crate::store::{Change, HistoryQuery, Tombstone};
use apogee_domain::ids::is_acceptable_id;
use apogee_domain::message::{ChannelMention, EditedBy, Mention, Reaction, Starred};
use apogee_domain::{
    Message, Room, Subscription, Timestamp, User, markdown, mentions, time_ordered_id,
};
use serde_json::{Map, Value, json};

/// A message as a client submits it.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub id: Option<String>,
    pub rid: String,
    pub msg: String,
    pub tmid: Option<String>,
    pub tshow: bool,
    /// `alias`, `emoji`, `avatar`, `attachments`, `blocks`, `customFields`, … kept as sent.
    pub extra: Map<String, Value>,
}

/// Fields that make a message look like it came from someone else.
const IMPERSONATION_FIELDS: &[&str] = &["alias", "avatar", "emoji"];

impl Core {
    /// Sends a message. A retry with the same client-chosen `_id` returns the stored message.
    pub async fn send_message(&self, actor: &User, new: NewMessage) -> CoreResult<Message> {
        self.send_message_with(actor, new, Vec::new()).await
    }

    /// [`Core::send_message`] committing `more` changes in the same batch.
    pub(crate) async fn send_message_with(
        &self,
        actor: &User,
        new: NewMessage,
        more: Vec<Change>,
    ) -> CoreResult<Message> {
        self.send_message_inner(actor, new, more, false).await
    }

    /// A message an incoming webhook posts: the integration's configuration (set up by someone
    /// allowed to manage integrations) is what lets it show another name or avatar, so the
    /// poster needs no `message-impersonate`.
    pub(crate) async fn send_integration_message(
        &self,
        actor: &User,
        new: NewMessage,
    ) -> CoreResult<Message> {
        self.send_message_inner(actor, new, Vec::new(), true).await
    }

    async fn send_message_inner(
        &self,
        actor: &User,
        new: NewMessage,
        more: Vec<Change>,
        impersonation_configured: bool,
    ) -> CoreResult<Message> {
        let id = match &new.id {
            Some(id) if !is_acceptable_id(id) => {
                return Err(CoreError::bad("error-invalid-id", "Invalid message id"));
            }
            Some(id) => id.clone(),
            // Time-ordered: the messages' primary key grows at its end (see the function).
            None => time_ordered_id(),
        };
        // Only a client-chosen id can be a retry; a fresh one is not looked up (the insert's
        // unique key still refuses a collision).
        if new.id.is_some()
            && let Some(existing) = self.store.message_by_id(&id).await?
        {
            if existing.rid == new.rid && existing.u.id == actor.id {
                return Ok(existing);
            }
            return Err(CoreError::bad(
                "error-message-id-in-use",
                "Message id already in use",
            ));
        }
        let target = self.send_target(actor, &new.rid).await?;
        let (room, sub) = (target.room.as_ref(), target.sub.as_deref());
        self.check_can_post(actor, room, sub)?;
        let max = self.settings.int("Message_MaxAllowedSize");
        if max > 0 && new.msg.chars().count() as i64 > max {
            return Err(CoreError::bad(
                "error-message-size-exceeded",
                "Message size exceeds Message_MaxAllowedSize",
            ));
        }
        if !impersonation_configured
            && IMPERSONATION_FIELDS
                .iter()
                .any(|f| new.extra.get(*f).is_some_and(|v| !v.is_null() && v != ""))
        {
            self.authz
                .require(actor, "message-impersonate", sub)
                .map_err(|_| CoreError::bad("error-action-not-allowed", "Not enough permission"))?;
        }
        let mut extra = new.extra;
        let encrypted = extra.remove("t").is_some_and(|t| t == "e2e");
        if encrypted {
            crate::e2e::check_encrypted_message(&new.msg, extra.get("content"))?;
            crate::e2e::check_e2e_mentions(extra.get("e2eMentions"))?;
            if !matches!(
                extra.get("e2e").and_then(Value::as_str),
                Some("pending" | "done")
            ) {
                extra.remove("e2e");
            }
        } else {
            for k in ["content", "e2e", "e2eMentions"] {
                extra.remove(k);
            }
            if room.is_encrypted()
                && self.settings.bool("E2E_Enable")
                && !self.settings.bool("E2E_Allow_Unencrypted_Messages")
            {
                return Err(CoreError::not_allowed(
                    "Not allowed to send un-encrypted messages in an encrypted room",
                ));
            }
        }
        let mut message = Message::new(id, &room.id, actor.as_ref(), new.msg);
        message.extra = extra;
        message.extra.retain(|_, v| !v.is_null());
        // Rocket.Chat marks messages sent while read receipts are on as not yet read by
        // everyone; readers never write to the message (see `read_receipts::settle_read_flags`).
        message.extra.remove("unread");
        if self.settings.bool("Message_Read_Receipt_Enabled") {
            message.extra.insert("unread".into(), Value::Bool(true));
        }
        let (mentioned, mentions_all) = if encrypted {
            message.t = Some("e2e".into());
            self.resolve_e2e_mentions(actor, &mut message, sub).await?
        } else {
            message.md = Some(markdown::parse(&message.msg));
            self.attach_quotes(actor, &mut message).await?;
            self.resolve_mentions(actor, &mut message, sub).await?
        };
        let mut changes = Vec::new();
        if !encrypted {
            changes.extend(self.prepare_url_previews(&mut message));
            changes.extend(self.outgoing_webhook_calls(room, &message, false).await?);
        }
        if let Some(tmid) = new.tmid {
            let mut parent = self
                .store
                .message_by_id(&tmid)
                .await?
                .filter(|p| p.rid == message.rid)
                .ok_or_else(|| CoreError::bad("error-invalid-message", "Invalid thread"))?;
            parent = self.thread_root(parent).await?;
            message.tshow = new.tshow.then_some(true);
            changes.push(Change::UpdateMessage(join_thread(parent, &mut message)));
        }
        let sent = if encrypted {
            None
        } else {
            self.federation_outgoing(
                &message.rid,
                actor,
                &message.id,
                Outgoing::Message { message: &message },
            )
            .await?
        };
        if let Some(sent) = sent {
            message.extra.insert(
                "federation".into(),
                serde_json::json!({"eventId": sent.event_id}),
            );
            changes.extend(sent.changes);
        }
        changes.insert(
            0,
            Change::AppendMessage {
                message: message.clone(),
                mentioned_user_ids: mentioned,
                mentions_all,
            },
        );
        changes.extend(more);
        self.commit(changes).await.map_err(|e| {
            if e.code == "error-duplicate" {
                CoreError::bad("error-message-id-in-use", "Message id already in use")
            } else {
                e
            }
        })?;
        Ok(message)
    }

    /// The root of `parent`'s thread: replies to a reply join the root thread.
    pub(crate) async fn thread_root(&self, parent: Message) -> CoreResult<Message> {
        Ok(match parent.tmid.clone() {
            Some(root_id) => self.store.message_by_id(&root_id).await?.unwrap_or(parent),
            None => parent,
        })
    }

    /// Read-only rooms need `post-readonly`; archived rooms and muted users cannot post.
    pub(crate) fn check_can_post(
        &self,
        actor: &User,
        room: &Room,
        sub: Option<&Subscription>,
    ) -> CoreResult<()> {
        if room.archived {
            return Err(CoreError::bad("error-room-archived", "Room is archived"));
        }
        if room.ro && !self.authz.has_in(actor, "post-readonly", sub) {
            return Err(CoreError::not_allowed(
                "You can't send messages because the room is readonly.",
            ));
        }
        if room.muted.contains(&actor.username) {
            return Err(CoreError::not_allowed(
                "You have been muted and cannot speak in this room",
            ));
        }
        Ok(())
    }

    /// Mentions of an encrypted message come from its plaintext `e2eMentions` lists (the text
    /// is ciphertext), when `E2E_Enabled_Mentions` is on.
    async fn resolve_e2e_mentions(
        &self,
        actor: &User,
        m: &mut Message,
        sub: Option<&Subscription>,
    ) -> CoreResult<(Vec<String>, bool)> {
        if !self.settings.bool("E2E_Enabled_Mentions") {
            return Ok((Vec::new(), false));
        }
        let list = |k: &str, prefix: char| -> Vec<String> {
            m.extra
                .get("e2eMentions")
                .and_then(|e| e.get(k))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter(|s| s.starts_with(prefix) && s.len() <= 128)
                        .take(100)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut names = list("e2eUserMentions", '@');
        names.extend(list("e2eChannelMentions", '#'));
        let ciphertext = std::mem::replace(&mut m.msg, names.join(" "));
        let found = self.resolve_mentions(actor, m, sub).await;
        m.msg = ciphertext;
        found
    }

    /// Fills `mentions` and `channels`; returns the mentioned user ids and whether `@all`/`@here`
    /// was used with permission.
    async fn resolve_mentions(
        &self,
        actor: &User,
        m: &mut Message,
        sub: Option<&Subscription>,
    ) -> CoreResult<(Vec<String>, bool)> {
        let mut ids = Vec::new();
        let mut group = false;
        for name in mentions::mentioned_usernames(&m.msg) {
            if name == "all" || name == "here" {
                if self.authz.has_in(actor, &format!("mention-{name}"), sub) {
                    group = true;
                    m.mentions.push(Mention {
                        id: name.clone(),
                        username: name,
                        name: None,
                        kind: Some("user".into()),
                    });
                }
                continue;
            }
            if let Some(user) = self.store.user_by_username(&name).await? {
                ids.push(user.id.clone());
                m.mentions.push(Mention {
                    id: user.id,
                    username: user.username,
                    name: user.name,
                    kind: Some("user".into()),
                });
            }
        }
        // Users of other Matrix servers, whose usernames are their Matrix ids.
        for matrix_id in mentions::mentioned_matrix_users(&m.msg) {
            if let Some(user) = self.store.user_by_username(&matrix_id).await?
                && !ids.contains(&user.id)
            {
                ids.push(user.id.clone());
                m.mentions.push(Mention {
                    id: user.id,
                    username: user.username,
                    name: user.name,
                    kind: Some("user".into()),
                });
            }
        }
        for name in mentions::mentioned_channels(&m.msg) {
            if let Some(room) = self.store.room_by_name(&name).await?
                && room.t == apogee_domain::RoomType::Channel
            {
                m.channels.push(ChannelMention { id: room.id, name });
            }
        }
        Ok((ids, group))
    }

    /// A message the actor may read.
    pub async fn readable_message(
        &self,
        actor: &User,
        id: &str,
    ) -> CoreResult<(Message, RoomView)> {
        let message = self
            .store
            .message_by_id(id)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-message", "Message not found"))?;
        let view = self
            .readable_room(actor, &RoomRef::Id(message.rid.clone()))
            .await?;
        let mut one = [message];
        self.settle_read_flags(&view.room.id, &mut one).await?;
        let [message] = one;
        Ok((message, view))
    }

    /// `chat.update`: edits the text. Own messages while editing is allowed, or `edit-message`.
    pub async fn update_message(
        &self,
        actor: &User,
        rid: &str,
        id: &str,
        text: String,
        extra: Map<String, Value>,
    ) -> CoreResult<Message> {
        let (mut message, view) = self.readable_message(actor, id).await?;
        if message.rid != rid {
            return Err(CoreError::bad(
                "error-invalid-message",
                "The room id provided does not match where the message is from.",
            ));
        }
        let own = message.u.id == actor.id;
        let may_edit = self.authz.has_in(actor, "edit-message", view.sub.as_ref())
            || (own
                && self.settings.bool("Message_AllowEditing")
                && self.within_limit(&message, "Message_AllowEditing_BlockEditInMinutes", actor));
        let encrypted = message.t.as_deref() == Some("e2e");
        if !may_edit || (message.is_system() && !encrypted) {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Message editing not allowed",
            ));
        }
        let max = self.settings.int("Message_MaxAllowedSize");
        if max > 0 && text.chars().count() as i64 > max {
            return Err(CoreError::bad(
                "error-message-size-exceeded",
                "Message size exceeds Message_MaxAllowedSize",
            ));
        }
        let mut extra = extra;
        message.mentions.clear();
        message.channels.clear();
        if encrypted {
            // The new text is a new envelope; the server sees no plaintext to parse.
            crate::e2e::check_encrypted_message(&text, extra.get("content"))?;
            crate::e2e::check_e2e_mentions(extra.get("e2eMentions"))?;
            message.msg = text;
            message.extra.remove("e2eMentions");
            message.extra.extend(extra);
            self.resolve_e2e_mentions(actor, &mut message, view.sub.as_ref())
                .await?;
        } else {
            extra.remove("content");
            extra.remove("e2eMentions");
            message.msg = text;
            message.md = Some(markdown::parse(&message.msg));
            message.extra.extend(extra);
            self.attach_quotes(actor, &mut message).await?;
            self.resolve_mentions(actor, &mut message, view.sub.as_ref())
                .await?;
        }
        let preview = if encrypted {
            message.urls = None;
            None
        } else {
            self.prepare_url_previews(&mut message)
        };
        let now = Timestamp::now();
        message.edited_at = Some(now);
        message.edited_by = Some(EditedBy {
            id: actor.id.clone(),
            username: actor.username.clone(),
        });
        message.updated_at = now;
        let mut changes = vec![Change::UpdateMessage(message.clone())];
        changes.extend(preview);
        if !encrypted {
            changes.extend(
                self.outgoing_webhook_calls(&view.room, &message, true)
                    .await?,
            );
        }
        if !encrypted
            && let Some(target) = Self::event_id_of(&message)
            && let Some(sent) = self
                .federation_outgoing(
                    &message.rid,
                    actor,
                    &message.id,
                    Outgoing::Edit {
                        target,
                        message: &message,
                    },
                )
                .await?
        {
            changes.extend(sent.changes);
        }
        self.commit(changes).await?;
        Ok(message)
    }

    fn within_limit(&self, m: &Message, setting: &str, actor: &User) -> bool {
        let minutes = self.settings.int(setting);
        minutes <= 0
            || self.authz.has(actor, "bypass-time-limit-edit-and-delete")
            || Timestamp::now().millis() - m.ts.millis() <= minutes * 60_000
    }

    /// `chat.delete`: own messages with `delete-own-message`, anyone's with `delete-message`.
    pub async fn delete_message(&self, actor: &User, rid: &str, id: &str) -> CoreResult<Message> {
        let (message, view) = self.readable_message(actor, id).await?;
        if message.rid != rid {
            return Err(CoreError::bad(
                "error-invalid-message",
                "The room id provided does not match where the message is from.",
            ));
        }
        let own = message.u.id == actor.id;
        let sub = view.sub.as_ref();
        let allowed = self.authz.has_in(actor, "force-delete-message", sub)
            || (self.settings.bool("Message_AllowDeleting")
                && (self.authz.has_in(actor, "delete-message", sub)
                    || (own
                        && self.authz.has_in(actor, "delete-own-message", sub)
                        && self.within_limit(
                            &message,
                            "Message_AllowDeleting_BlockDeleteInMinutes",
                            actor,
                        ))));
        if !allowed {
            return Err(CoreError::bad("error-action-not-allowed", "Not allowed"));
        }
        let mut changes = self.message_deletion(&message).await?;
        if let Some(target) = Self::event_id_of(&message)
            && let Some(sent) = self
                .federation_outgoing(
                    &message.rid,
                    actor,
                    &message.id,
                    Outgoing::Redaction { target },
                )
                .await?
        {
            changes.extend(sent.changes);
        }
        if !own {
            // Moderation: someone else's message removed.
            let details = serde_json::json!({"rid": message.rid, "messageId": message.id, "author": message.u.id});
            changes.push(self.audit("message.deleted", Some(actor), details));
        }
        self.commit(changes).await?;
        Ok(message)
    }

    /// The changes that delete `message`: the message, its thread count on the parent, its files.
    pub(crate) async fn message_deletion(&self, message: &Message) -> CoreResult<Vec<Change>> {
        let mut changes = vec![Change::DeleteMessage {
            id: message.id.clone(),
            rid: message.rid.clone(),
        }];
        if let Some(tmid) = &message.tmid
            && let Some(mut parent) = self.store.message_by_id(tmid).await?
        {
            parent.tcount = Some((parent.tcount.unwrap_or(1) - 1).max(0));
            parent.updated_at = Timestamp::now();
            changes.push(Change::UpdateMessage(parent));
        }
        changes.extend(self.message_file_removals(message).await?);
        Ok(changes)
    }

    /// `chat.react`: toggles (or sets, with `should_react`) the actor's reaction.
    pub async fn react(
        &self,
        actor: &User,
        id: &str,
        emoji: &str,
        should_react: Option<bool>,
    ) -> CoreResult<Message> {
        let (mut message, view) = self.readable_message(actor, id).await?;
        if view.room.archived {
            return Err(CoreError::bad("error-not-allowed", "Not allowed"));
        }
        let name = emoji.trim_matches(':');
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(CoreError::bad(
                "error-not-allowed",
                "Invalid emoji provided.",
            ));
        }
        let key = format!(":{name}:");
        let reactions = message.reactions.get_or_insert_with(Default::default);
        let entry = reactions
            .entry(key.clone())
            .or_insert_with(Reaction::default);
        let has = entry.usernames.contains(&actor.username);
        let react = should_react.unwrap_or(!has);
        if react && !has {
            entry.usernames.push(actor.username.clone());
        } else if !react && has {
            entry.usernames.retain(|u| *u != actor.username);
        }
        // In a federated room a new reaction is an `m.annotation` event, and taking one back
        // redacts the events that made it (tracked per user in `federationReactionEventIds`).
        let mut federated = Vec::new();
        if let Some(target) = Self::event_id_of(&message).map(str::to_string) {
            if react && !has {
                let out = Outgoing::Reaction {
                    target: &target,
                    key: crate::federated_events::reaction_key(&key),
                };
                if let Some(sent) = self
                    .federation_outgoing(&message.rid, actor, &message.id, out)
                    .await?
                {
                    if let Some(entry) = message.reactions.as_mut().and_then(|r| r.get_mut(&key)) {
                        entry
                            .federation_event_ids
                            .insert(sent.event_id.clone(), actor.username.clone());
                    }
                    federated.extend(sent.changes);
                }
            } else if !react && has {
                let ours: Vec<String> = message
                    .reactions
                    .as_ref()
                    .and_then(|r| r.get(&key))
                    .map(|e| {
                        e.federation_event_ids
                            .iter()
                            .filter(|(_, u)| **u == actor.username)
                            .map(|(id, _)| id.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for event_id in &ours {
                    if let Some(sent) = self
                        .federation_outgoing(
                            &message.rid,
                            actor,
                            &message.id,
                            Outgoing::Redaction { target: event_id },
                        )
                        .await?
                    {
                        federated.extend(sent.changes);
                    }
                }
                if let Some(entry) = message.reactions.as_mut().and_then(|r| r.get_mut(&key)) {
                    entry
                        .federation_event_ids
                        .retain(|id, _| !ours.contains(id));
                }
            }
        }
        if let Some(reactions) = message.reactions.as_mut() {
            if reactions.get(&key).is_some_and(|e| e.usernames.is_empty()) {
                reactions.remove(&key);
            }
            if reactions.is_empty() {
                message.reactions = None;
            }
        }
        message.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpdateMessage(message.clone())];
        changes.extend(federated);
        self.commit(changes).await?;
        Ok(message)
    }

    /// `chat.pinMessage` / `chat.unPinMessage`. Pinning posts a `message_pinned` system message
    /// quoting the original, which is returned.
    pub async fn set_pinned(
        &self,
        actor: &User,
        id: &str,
        pinned: bool,
    ) -> CoreResult<Option<Message>> {
        if !self.settings.bool("Message_AllowPinning") {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Message pinning not allowed",
            ));
        }
        let (mut message, view) = self.readable_message(actor, id).await?;
        self.authz
            .require(actor, "pin-message", view.sub.as_ref())
            .map_err(|_| CoreError::bad("error-action-not-allowed", "Not allowed"))?;
        let now = Timestamp::now();
        message.pinned = Some(pinned);
        message.updated_at = now;
        if pinned {
            message.pinned_at = Some(now);
            message.pinned_by = Some(EditedBy {
                id: actor.id.clone(),
                username: actor.username.clone(),
            });
        }
        let mut changes = vec![Change::UpdateMessage(message.clone())];
        let mut notice = None;
        if pinned {
            // As Rocket.Chat: an encrypted message is pinned as `message_pinned_e2e` carrying its
            // envelope (`content`), which readers' clients decrypt; the server adds no plaintext.
            let encrypted = message.t.as_deref() == Some("e2e");
            let mut pin = Message::system(
                &message.rid,
                if encrypted {
                    "message_pinned_e2e"
                } else {
                    "message_pinned"
                },
                String::new(),
                actor.as_ref(),
            );
            let mut quote = json!({
                "text": message.msg,
                "author_name": message.u.username,
                "author_icon": format!("/avatar/{}", message.u.username),
                "ts": message.ts,
                "message_link": format!("{}/{}?msg={}", self.settings.string("Site_Url").trim_end_matches('/'), message.rid, message.id),
            });
            if let Some(content) = message.extra.get("content").filter(|_| encrypted) {
                quote["content"] = content.clone();
            }
            pin.extra.insert("attachments".into(), json!([quote]));
            changes.push(Change::AppendMessage {
                message: pin.clone(),
                mentioned_user_ids: vec![],
                mentions_all: false,
            });
            notice = Some(pin);
        }
        self.commit(changes).await?;
        Ok(notice)
    }

    /// `chat.starMessage` / `chat.unStarMessage`.
    pub async fn set_starred(&self, actor: &User, id: &str, starred: bool) -> CoreResult<()> {
        if !self.settings.bool("Message_AllowStarring") {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Message starring not allowed",
            ));
        }
        let (mut message, view) = self.readable_message(actor, id).await?;
        if view.sub.is_none() {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let list = message.starred.get_or_insert_with(Vec::new);
        list.retain(|s| s.id != actor.id);
        if starred {
            list.push(Starred {
                id: actor.id.clone(),
            });
        }
        message.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateMessage(message)]).await
    }

    /// `chat.followMessage` / `chat.unfollowMessage`: thread followers are the `replies` list.
    pub async fn set_following(&self, actor: &User, id: &str, follow: bool) -> CoreResult<()> {
        if !self.settings.bool("Threads_enabled") {
            return Err(CoreError::bad("error-not-allowed", "not allowed"));
        }
        let (mut message, _) = self.readable_message(actor, id).await?;
        let replies = message.replies.get_or_insert_with(Vec::new);
        replies.retain(|u| *u != actor.id);
        if follow {
            replies.push(actor.id.clone());
        }
        message.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateMessage(message)]).await
    }

    /// Room history, newest first (keyset on `(ts, _id)`), for a room the actor can read.
    pub async fn history(
        &self,
        actor: &User,
        room: &Room,
        query: &HistoryQuery,
    ) -> CoreResult<(Vec<Message>, i64)> {
        let sub = self.store.subscription(&room.id, &actor.id).await?;
        if !self.authz.can_read_room(actor, room, sub.as_ref()) {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let (mut messages, mut total) = self.store.history(&room.id, query).await?;
        // A federated room's history before our join is fetched when a reader reaches it.
        let mut round = 0;
        while self
            .backfill_short_page(room, query, messages.len(), round)
            .await
        {
            (messages, total) = self.store.history(&room.id, query).await?;
            round += 1;
        }
        self.settle_read_flags(&room.id, &mut messages).await?;
        Ok((messages, total))
    }

    /// Messages and deletions in a room since `since` (`chat.syncMessages`).
    pub async fn sync_messages(
        &self,
        actor: &User,
        rid: &str,
        since: Timestamp,
    ) -> CoreResult<(Vec<Message>, Vec<Tombstone>)> {
        let view = self
            .readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await?;
        // Every change since `since`, as Rocket.Chat answers `lastUpdate` (no page for the
        // client to ask for next), read in keyset pages of `(_updatedAt, _id)`.
        const PAGE: i64 = 500;
        let mut updated: Vec<Message> = Vec::new();
        let (mut from, mut after_id) = (since, None::<String>);
        loop {
            let page = self
                .store
                .messages_updated_since(&view.room.id, from, after_id.as_deref(), PAGE)
                .await?;
            let full = page.len() as i64 == PAGE;
            if let Some(last) = page.last() {
                (from, after_id) = (last.updated_at, Some(last.id.clone()));
            }
            updated.extend(page);
            if !full {
                break;
            }
        }
        self.settle_read_flags(&view.room.id, &mut updated).await?;
        let deleted = self
            .store
            .deleted_messages_since(&view.room.id, since)
            .await?;
        Ok((updated, deleted))
    }
}

/// Makes `message` a reply in `root`'s thread; returns the root with its count, last reply
/// time and repliers updated.
pub(crate) fn join_thread(mut root: Message, message: &mut Message) -> Message {
    message.tmid = Some(root.id.clone());
    root.tcount = Some(root.tcount.unwrap_or(0) + 1);
    root.tlm = Some(message.ts);
    let replies = root.replies.get_or_insert_with(Vec::new);
    for uid in [&root.u.id, &message.u.id] {
        if !replies.contains(uid) {
            replies.push(uid.clone());
        }
    }
    root.updated_at = message.ts;
    root
}
