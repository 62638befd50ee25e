//! Messages as Rocket.Chat's `IMessage`.

use crate::{Timestamp, UserRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A mention of a user (`type: "user"`) or of `all`/`here` (ids `all` and `here`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMention {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    pub usernames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Federated rooms: the Matrix `m.annotation` events that made this reaction, event id →
    /// username (Rocket.Chat's `federationReactionEventIds`), so taking it back redacts them.
    #[serde(
        rename = "federationReactionEventIds",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub federation_event_ids: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditedBy {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Starred {
    #[serde(rename = "_id")]
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: String,
    pub rid: String,
    pub msg: String,
    pub ts: Timestamp,
    pub u: UserRef,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    /// System message type (`uj`, `ul`, `au`, `ru`, `message_pinned`, …); absent for user messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md: Option<Value>,
    #[serde(default)]
    pub mentions: Vec<Mention>,
    #[serde(default)]
    pub channels: Vec<ChannelMention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tshow: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlm: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions: Option<BTreeMap<String, Reaction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starred: Option<Vec<Starred>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_by: Option<EditedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_by: Option<EditedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groupable: Option<bool>,
    /// Long-tail fields kept as sent: `alias`, `emoji`, `avatar`, `attachments`, `blocks`,
    /// `customFields`, `parseUrls`, `file`, `files`, E2EE `content`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// A new message by `u` in `rid` at the current time.
    pub fn new(id: String, rid: &str, u: UserRef, msg: String) -> Self {
        let now = Timestamp::now();
        Self {
            id,
            rid: rid.to_string(),
            msg,
            ts: now,
            u,
            updated_at: now,
            t: None,
            md: None,
            mentions: Vec::new(),
            channels: Vec::new(),
            urls: None,
            tmid: None,
            tshow: None,
            tcount: None,
            tlm: None,
            replies: None,
            reactions: None,
            starred: None,
            pinned: None,
            pinned_at: None,
            pinned_by: None,
            edited_at: None,
            edited_by: None,
            groupable: None,
            extra: Map::new(),
        }
    }

    /// A system message (`t` set, not groupable), as Rocket.Chat writes for joins, leaves, pins…
    pub fn system(rid: &str, t: &str, msg: String, u: UserRef) -> Self {
        let mut m = Self::new(crate::random_id(), rid, u, msg);
        m.t = Some(t.to_string());
        m.groupable = Some(false);
        m
    }

    pub fn is_system(&self) -> bool {
        self.t.is_some()
    }

    /// Whether this message is shown in the room's main timeline (not a hidden thread reply).
    pub fn in_main_timeline(&self) -> bool {
        self.tmid.is_none() || self.tshow == Some(true)
    }

    /// Whether `user_id` is mentioned directly.
    pub fn mentions_user(&self, user_id: &str) -> bool {
        self.mentions.iter().any(|m| m.id == user_id)
    }

    /// Whether the message mentions `@all` or `@here`.
    pub fn mentions_group(&self) -> bool {
        self.mentions
            .iter()
            .any(|m| m.id == "all" || m.id == "here")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keeps_extra_fields() {
        let raw = serde_json::json!({
            "_id": "m1", "rid": "GENERAL", "msg": "hi", "ts": "2020-01-01T00:00:00.000Z",
            "u": {"_id": "u1", "username": "bob"}, "_updatedAt": "2020-01-01T00:00:00.000Z",
            "alias": "Gruggy", "attachments": [{"text": "x"}], "mentions": [], "channels": []
        });
        let m: Message = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(m.extra["alias"], "Gruggy");
        assert_eq!(serde_json::to_value(&m).unwrap(), raw);
    }

    #[test]
    fn thread_replies_leave_the_main_timeline_unless_shown() {
        let u = UserRef {
            id: "u".into(),
            username: "u".into(),
            name: None,
        };
        let mut m = Message::new("m".into(), "r", u, "x".into());
        assert!(m.in_main_timeline());
        m.tmid = Some("p".into());
        assert!(!m.in_main_timeline());
        m.tshow = Some(true);
        assert!(m.in_main_timeline());
    }
}
