//! Rooms as Rocket.Chat's `IRoom`: public channels (`c`), private groups (`p`) and DMs (`d`).

use crate::{Timestamp, UserRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomType {
    #[serde(rename = "c")]
    Channel,
    #[serde(rename = "p")]
    Group,
    #[serde(rename = "d")]
    Direct,
}

impl RoomType {
    pub fn code(self) -> &'static str {
        match self {
            RoomType::Channel => "c",
            RoomType::Group => "p",
            RoomType::Direct => "d",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "c" => Some(RoomType::Channel),
            "p" => Some(RoomType::Group),
            "d" => Some(RoomType::Direct),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    #[serde(rename = "_id")]
    pub id: String,
    pub t: RoomType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fname: Option<String>,
    /// The creator; DMs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u: Option<UserRef>,
    pub ts: Timestamp,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    pub msgs: i64,
    pub users_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lm: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<Value>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub ro: bool,
    #[serde(default)]
    pub sys_mes: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announcement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// DM participants, usernames and ids in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usernames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub muted: Vec<String>,
    /// Discussion parent room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_main: Option<bool>,
    /// Long-tail fields (`customFields`, `featured`, `encrypted`, `joinCodeRequired`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Count of room messages ever posted (never decremented); unread counts derive from it.
    #[serde(skip)]
    pub seq: i64,
}

impl Room {
    pub fn new(id: String, t: RoomType, name: Option<String>, creator: Option<UserRef>) -> Self {
        let now = Timestamp::now();
        Self {
            id,
            t,
            fname: name.clone(),
            name,
            u: creator,
            ts: now,
            updated_at: now,
            msgs: 0,
            users_count: 0,
            lm: None,
            last_message: None,
            default: false,
            ro: false,
            sys_mes: true,
            archived: false,
            topic: None,
            announcement: None,
            description: None,
            usernames: Vec::new(),
            uids: Vec::new(),
            muted: Vec::new(),
            prid: None,
            team_id: None,
            team_main: None,
            extra: Map::new(),
            seq: 0,
        }
    }

    pub fn is_direct(&self) -> bool {
        self.t == RoomType::Direct
    }

    pub fn is_encrypted(&self) -> bool {
        self.extra
            .get("encrypted")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Room names Rocket.Chat accepts with its default `UTF8_Channel_Names_Validation` (`[0-9a-zA-Z-_.]+`).
pub fn is_valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_serializes_as_rocket_chat_iroom() {
        let mut r = Room::new(
            "GENERAL".into(),
            RoomType::Channel,
            Some("general".into()),
            None,
        );
        r.default = true;
        r.seq = 7;
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["t"], "c");
        assert_eq!(v["usersCount"], 0);
        assert_eq!(v["default"], true);
        assert!(v.get("seq").is_none());
        assert!(v.get("usernames").is_none());
    }

    #[test]
    fn room_names_are_validated() {
        assert!(is_valid_room_name("my-room_1.x"));
        assert!(!is_valid_room_name("has space"));
        assert!(!is_valid_room_name(""));
    }
}
