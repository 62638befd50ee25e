//! A user's membership of a room, as Rocket.Chat's `ISubscription`.
//!
//! Unread counts are not stored per message: a subscription remembers the room sequence its user
//! has read up to (`read_seq`), and the store derives `unread` from the room's sequence on read.

use crate::{RoomType, Timestamp, UserRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(rename = "_id")]
    pub id: String,
    pub rid: String,
    pub u: UserRef,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fname: Option<String>,
    pub t: RoomType,
    pub ts: Timestamp,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    /// Last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ls: Option<Timestamp>,
    /// Last reply seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<Timestamp>,
    pub open: bool,
    pub alert: bool,
    pub unread: i64,
    pub user_mentions: i64,
    pub group_mentions: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunread: Vec<String>,
    /// Long-tail fields (notification preferences, `E2EKey`, `hideUnreadStatus`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Room sequence read up to; `unread = room.seq - read_seq`.
    #[serde(skip)]
    pub read_seq: i64,
}

impl Subscription {
    /// A subscription that starts fully read at `room_seq`.
    pub fn new(
        rid: &str,
        t: RoomType,
        name: String,
        fname: Option<String>,
        user: UserRef,
        room_seq: i64,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            id: crate::random_id(),
            rid: rid.to_string(),
            u: user,
            name,
            fname,
            t,
            ts: now,
            updated_at: now,
            ls: Some(now),
            lr: None,
            open: true,
            alert: false,
            unread: 0,
            user_mentions: 0,
            group_mentions: 0,
            roles: Vec::new(),
            f: None,
            archived: None,
            prid: None,
            tunread: Vec::new(),
            extra: Map::new(),
            read_seq: room_seq,
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}
