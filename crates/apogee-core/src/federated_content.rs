//! What a message says, between Rocket.Chat and Matrix: its text (markdown ⇄ `formatted_body`
//! HTML, `apogee_domain::matrix_html`) and its mentions (`m.mentions.user_ids` and pills ⇄ the
//! message's `mentions`). Local users are `@username:<our server>` on the Matrix side; remote
//! users' usernames are their Matrix ids, so `@alice:example.org` in a message's text is both
//! what a Rocket.Chat user types and what a pill from Matrix becomes.
//!
//! Relations: a thread reply (`tmid`) is `m.thread` on the root's event; a quote (the
//! attachment Rocket.Chat builds for a message link) is `m.in_reply_to` the quoted message's
//! event, and an incoming reply becomes that same quote attachment. A relation to an event we
//! do not know leaves the message as plain text.

use crate::Core;
use crate::error::CoreResult;
use crate::federated_power::PowerLevels;
use crate::federated_rooms::server_of;
use crate::store::FederatedRoom;
use apogee_domain::message::Mention;
use apogee_domain::quote::{put_quote, quote_attachment, quoted_message_id};
use apogee_domain::{Message, Room, RoomType, markdown, matrix_html, mentions};
use serde_json::{Value, json};
use std::collections::HashMap;

/// At most this many users are taken from one remote message's mentions.
const MAX_MENTIONS: usize = 50;

/// The HTML format Matrix clients render.
pub const HTML_FORMAT: &str = "org.matrix.custom.html";

/// A remote message's text as Rocket.Chat markdown, and whom it mentions.
pub(crate) struct IncomingText {
    pub text: String,
    pub mentions: Vec<Mention>,
    /// Ids of the mentioned users (for their notifications).
    pub mentioned_ids: Vec<String>,
}

/// The Matrix id of a username here: remote users' usernames are their ids; `all`/`here` are
/// no user.
pub(crate) fn matrix_id_of(username: &str, ours: &str) -> Option<String> {
    if username.starts_with('@') && server_of(username).is_some() {
        Some(username.to_string())
    } else if username == "all" || username == "here" || username.is_empty() {
        None
    } else {
        Some(format!("@{username}:{ours}"))
    }
}

/// `m.text` content of a local message: `body` is its markdown text, `formatted_body` the
/// HTML of its `md` with mentioned users as pills, `m.mentions` the users it mentions
/// (`room` for `@all`/`@here`).
pub(crate) fn text_content(message: &Message, ours: &str) -> Value {
    let mut content = json!({"msgtype": "m.text", "body": message.msg});
    let pill = |name: &str| {
        message
            .mentions
            .iter()
            .find(|m| m.username == name || m.username.strip_prefix('@') == Some(name))
            .and_then(|m| matrix_id_of(&m.username, ours))
    };
    if let Some(md) = message
        .md
        .as_ref()
        .filter(|md| md.as_array().is_some_and(|a| !a.is_empty()))
    {
        content["format"] = json!(HTML_FORMAT);
        content["formatted_body"] = json!(matrix_html::to_html(md, &pill));
    }
    let mut user_ids: Vec<String> = Vec::new();
    let mut room = false;
    for m in &message.mentions {
        match matrix_id_of(&m.username, ours) {
            Some(id) if !user_ids.contains(&id) => user_ids.push(id),
            Some(_) => {}
            None => room |= m.username == "all" || m.username == "here",
        }
    }
    let mut mentions = json!({"user_ids": user_ids});
    if room {
        mentions["room"] = json!(true);
    }
    content["m.mentions"] = mentions;
    content
}

/// A reply's plain-text fallback: the quoted lines (`> …`) and the blank line after them.
fn strip_reply_fallback(body: &str) -> &str {
    let mut rest = body;
    while rest.starts_with('>') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    if rest.len() == body.len() {
        body
    } else {
        rest.trim_start_matches('\n')
    }
}

/// Rocket.Chat's link to a message (`<site>/channel/<name>?msg=<id>`).
pub(crate) fn permalink(site_url: &str, room: &Room, message_id: &str) -> String {
    let kind = match room.t {
        RoomType::Channel => "channel",
        RoomType::Group => "group",
        _ => "direct",
    };
    let name = room.name.as_deref().unwrap_or(&room.id);
    format!(
        "{}/{kind}/{name}?msg={message_id}",
        site_url.trim_end_matches('/')
    )
}

impl Core {
    /// The content of a local message's `m.room.message`: [`text_content`], and its relation
    /// — `m.thread` to its thread root's event, `m.in_reply_to` the event of the first message
    /// it quotes (the quote's link left out of the text, as Matrix shows the reply itself).
    pub(crate) async fn outgoing_message_content(
        &self,
        message: &Message,
        ours: &str,
    ) -> CoreResult<Value> {
        let site = self.settings.string("Site_Url");
        let mut replied = None;
        let mut text = message.clone();
        if let Some(md) = &message.md {
            let quote_links: Vec<String> = apogee_domain::quote::linked_urls(md)
                .into_iter()
                .filter(|u| quoted_message_id(u, &site).is_some())
                .collect();
            for url in &quote_links {
                if replied.is_none()
                    && let Some(id) = quoted_message_id(url, &site)
                    && let Some(quoted) = self.store.message_by_id(&id).await?
                    && quoted.rid == message.rid
                {
                    replied = Self::event_id_of(&quoted).map(str::to_string);
                }
                text.msg = text
                    .msg
                    .replace(&format!("[ ]({url})"), "")
                    .replace(url, "");
            }
            if !quote_links.is_empty() {
                text.msg = text.msg.trim().to_string();
                text.md = Some(markdown::parse(&text.msg));
            }
        }
        let mut content = crate::federated_media::file_content(message, ours)
            .unwrap_or_else(|| text_content(&text, ours));
        let root = match &message.tmid {
            Some(tmid) => self
                .store
                .message_by_id(tmid)
                .await?
                .and_then(|root| Self::event_id_of(&root).map(str::to_string)),
            None => None,
        };
        match (root, replied) {
            (Some(root), reply) => {
                // Clients without threads show a reply: to the quoted event, else the root.
                let falling_back = reply.is_none();
                let to = reply.unwrap_or_else(|| root.clone());
                content["m.relates_to"] = json!({"rel_type": "m.thread", "event_id": root,
                    "is_falling_back": falling_back, "m.in_reply_to": {"event_id": to}});
            }
            (None, Some(reply)) => {
                content["m.relates_to"] = json!({"m.in_reply_to": {"event_id": reply}});
            }
            (None, None) => {}
        }
        Ok(content)
    }

    /// The thread and quote of a remote message (`m.thread`, `m.in_reply_to`) applied to
    /// `message`: returns the thread root to update. Relations to unknown events, or to
    /// another room's, are ignored.
    pub(crate) async fn incoming_relations(
        &self,
        content: &Value,
        message: &mut Message,
    ) -> CoreResult<Option<Message>> {
        let Some(rel) = content.get("m.relates_to") else {
            return Ok(None);
        };
        let event_of = |v: Option<&Value>| {
            v.and_then(|r| r.get("event_id"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let mut root = None;
        if rel.get("rel_type").and_then(Value::as_str) == Some("m.thread")
            && let Some(event_id) = event_of(Some(rel))
            && let Some(parent) = self.federated_message(&event_id, &message.rid).await?
        {
            let parent = self.thread_root(parent).await?;
            root = Some(crate::messages::join_thread(parent, message));
        }
        let falling_back = rel.get("is_falling_back").and_then(Value::as_bool) == Some(true);
        if !(root.is_some() && falling_back)
            && let Some(event_id) = event_of(rel.get("m.in_reply_to"))
            && let Some(quoted) = self.federated_message(&event_id, &message.rid).await?
            && let Some(room) = self.store.room_by_id(&message.rid).await?
        {
            let link = permalink(&self.settings.string("Site_Url"), &room, &quoted.id);
            let mut attachments = match message.extra.remove("attachments") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            put_quote(
                &mut attachments,
                quote_attachment(
                    &quoted,
                    &link,
                    self.settings.bool("UI_Use_Real_Name"),
                    self.settings.int("Message_QuoteChainLimit"),
                ),
            );
            message
                .extra
                .insert("attachments".into(), Value::Array(attachments));
            // As a Rocket.Chat quote: the link first, then the answer.
            message.msg = format!("[ ]({link}) {}", message.msg);
            message.md = Some(markdown::parse(&message.msg));
        }
        Ok(root)
    }

    /// The message a Matrix event made in room `rid`, if any.
    async fn federated_message(&self, event_id: &str, rid: &str) -> CoreResult<Option<Message>> {
        let Some(event) = self.store.federation_event(event_id).await? else {
            return Ok(None);
        };
        let Some(id) = event.message_id else {
            return Ok(None);
        };
        Ok(self
            .store
            .message_by_id(&id)
            .await?
            .filter(|m| m.rid == rid))
    }

    /// The text of a remote message's content (its `formatted_body` read as markdown when it
    /// has one, else its `body`) and the users it mentions: its `m.mentions.user_ids` when it
    /// says whom it mentions, else the users named in its text.
    /// Whether a remote message notifies the whole room: `m.mentions.room`, or without
    /// `m.mentions` an `@room` in its body — kept (as Rocket.Chat's `@all`) only when the
    /// sender's power reaches the room's `notifications.room` level, as Matrix servers check.
    pub(crate) async fn incoming_room_mention(
        &self,
        room: &FederatedRoom,
        sender: &str,
        content: &Value,
    ) -> CoreResult<bool> {
        let asked = match content.get("m.mentions") {
            Some(m) => m.get("room").and_then(Value::as_bool) == Some(true),
            None => content
                .get("body")
                .and_then(Value::as_str)
                .is_some_and(|b| {
                    b.split(|c: char| !c.is_alphanumeric() && c != '@')
                        .any(|w| w == "@room")
                }),
        };
        if !asked {
            return Ok(false);
        }
        let state = self
            .store
            .federation_room_state(&room.matrix_room_id)
            .await?;
        let mut pdu_of = HashMap::new();
        for entry in state.iter().filter(|e| {
            e.state_key.is_empty()
                && matches!(
                    e.event_type.as_str(),
                    "m.room.create" | "m.room.power_levels"
                )
        }) {
            if let Some(event) = self.store.federation_event(&entry.event_id).await? {
                pdu_of.insert(entry.event_type.clone(), event.pdu);
            }
        }
        let power = PowerLevels::new(
            &room.room_version,
            pdu_of.get("m.room.power_levels").map(|p| &p["content"]),
            pdu_of.get("m.room.create"),
        );
        Ok(power.user(sender) >= power.notification("room"))
    }

    pub(crate) async fn incoming_text(&self, content: &Value) -> CoreResult<IncomingText> {
        let ours = self
            .federation
            .get()
            .map(|g| g.server_name().to_string())
            .unwrap_or_default();
        let mention_text = |user_id: &str| match user_id.strip_suffix(&format!(":{ours}")) {
            Some(local) if !ours.is_empty() => local.to_string(),
            _ => user_id.to_string(),
        };
        let body = content.get("body").and_then(Value::as_str).unwrap_or("");
        let is_reply = content
            .get("m.relates_to")
            .and_then(|r| r.get("m.in_reply_to"))
            .is_some();
        let body = if is_reply {
            strip_reply_fallback(body)
        } else {
            body
        };
        let html = (content.get("format").and_then(Value::as_str) == Some(HTML_FORMAT))
            .then(|| content.get("formatted_body").and_then(Value::as_str))
            .flatten()
            .map(|h| matrix_html::from_html(h, &mention_text))
            .filter(|t| !t.trim().is_empty());
        let text = html.unwrap_or_else(|| body.to_string());

        let named: Vec<String> = match content
            .get("m.mentions")
            .and_then(|m| m.get("user_ids"))
            .and_then(Value::as_array)
        {
            Some(ids) => ids
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => mentions::mentioned_usernames(&text)
                .into_iter()
                .filter(|n| n != "all" && n != "here")
                .map(|n| format!("@{n}:{ours}"))
                .chain(mentions::mentioned_matrix_users(&text))
                .collect(),
        };
        let mut found = IncomingText {
            text,
            mentions: Vec::new(),
            mentioned_ids: Vec::new(),
        };
        for id in named.into_iter().take(MAX_MENTIONS) {
            let username = match id.strip_suffix(&format!(":{ours}")) {
                Some(local) if !ours.is_empty() => local.trim_start_matches('@').to_string(),
                _ => id,
            };
            let Some(user) = self.store.user_by_username(&username).await? else {
                continue;
            };
            if found.mentioned_ids.contains(&user.id) {
                continue;
            }
            found.mentioned_ids.push(user.id.clone());
            found.mentions.push(Mention {
                id: user.id,
                username: user.username,
                name: user.name,
                kind: Some("user".into()),
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::{UserRef, markdown};

    #[test]
    fn local_messages_carry_html_and_mentions() {
        let mut m = Message::new(
            "m1".into(),
            "r1",
            UserRef {
                id: "u1".into(),
                username: "carol".into(),
                name: None,
            },
            "*hi* @bob and @alice:remote.test, @all".into(),
        );
        m.md = Some(markdown::parse(&m.msg));
        for (id, username) in [("u2", "bob"), ("u3", "@alice:remote.test"), ("all", "all")] {
            m.mentions.push(Mention {
                id: id.into(),
                username: username.into(),
                name: None,
                kind: Some("user".into()),
            });
        }
        let content = text_content(&m, "us.test");
        assert_eq!(content["body"], m.msg.as_str());
        assert_eq!(content["format"], HTML_FORMAT);
        assert_eq!(
            content["formatted_body"],
            "<p><strong>hi</strong> <a href=\"https://matrix.to/#/@bob:us.test\">@bob</a> and \
             <a href=\"https://matrix.to/#/@alice:remote.test\">@alice:remote.test</a>, @all</p>"
        );
        assert_eq!(
            content["m.mentions"],
            json!({"user_ids": ["@bob:us.test", "@alice:remote.test"], "room": true})
        );
    }

    #[test]
    fn reply_fallbacks_are_dropped() {
        assert_eq!(
            strip_reply_fallback("> <@a:x> old\n> more\n\nnew text"),
            "new text"
        );
        assert_eq!(strip_reply_fallback("plain"), "plain");
    }
}
