//! A room's stored document as appends move it: only the fields a sent message changes are
//! decoded and re-encoded; every other field is copied through as its JSON text. A room's
//! document carries its last message and whatever else Rocket.Chat keeps on a room, and
//! decoding all of it into a [`apogee_domain::Room`] and encoding it again for each room of a
//! group commit was a tenth of the writer's time under load.

use apogee_core::error::StoreError;
use apogee_core::store::StoreResult;
use apogee_domain::{Message, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::{RawValue, to_raw_value};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The fields of a room's document that appends read.
#[derive(Deserialize)]
pub(crate) struct RoomHead {
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
    pub msgs: i64,
    #[serde(default)]
    pub lm: Option<Timestamp>,
    #[serde(default)]
    pub prid: Option<String>,
}

impl RoomHead {
    pub(crate) fn decode(doc: &str) -> StoreResult<Self> {
        serde_json::from_str(doc).map_err(decode_error)
    }
}

/// `doc` with `head`'s counters and times and, when given, `lastMessage`.
pub(crate) fn patched(
    doc: &str,
    head: &RoomHead,
    last_message: Option<&Message>,
) -> StoreResult<String> {
    let mut fields: BTreeMap<Key, &RawValue> = serde_json::from_str(doc).map_err(decode_error)?;
    let updated_at = raw(&head.updated_at)?;
    let msgs = raw(&head.msgs)?;
    let lm = head.lm.map(|lm| raw(&lm)).transpose()?;
    let last_message = last_message.map(raw).transpose()?;
    fields.insert(Key::from("_updatedAt"), &updated_at);
    fields.insert(Key::from("msgs"), &msgs);
    if let Some(lm) = &lm {
        fields.insert(Key::from("lm"), lm);
    }
    if let Some(last) = &last_message {
        fields.insert(Key::from("lastMessage"), last);
    }
    serde_json::to_string(&fields).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn raw<T: Serialize>(value: &T) -> StoreResult<Box<RawValue>> {
    to_raw_value(value).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn decode_error(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("decode room: {e}"))
}

/// A field name, borrowed from the document unless it had escapes to undo.
#[derive(PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct Key<'a>(Cow<'a, str>);

impl<'a> From<&'a str> for Key<'a> {
    fn from(name: &'a str) -> Self {
        Key(Cow::Borrowed(name))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(name.to_owned())))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::Room;
    use serde_json::{Value, json};

    #[test]
    fn only_the_moved_fields_change() {
        let doc = json!({
            "_id": "r1", "t": "c", "name": "general", "msgs": 3, "ts": "2025-01-01T00:00:00.000Z",
            "_updatedAt": "2026-01-01T00:00:00.000Z", "usersCount": 2,
            "customFields": {"a": [1, {"b": "c"}]}, "quoted\"key": true,
        })
        .to_string();
        let mut head = RoomHead::decode(&doc).unwrap();
        assert_eq!((head.msgs, head.lm, head.prid.as_deref()), (3, None, None));
        let ts = Timestamp::parse("2026-01-02T00:00:00.000Z").unwrap();
        head.msgs = 4;
        head.updated_at = ts;
        head.lm = Some(ts);
        let user = apogee_domain::UserRef {
            id: "u1".into(),
            username: "alice".into(),
            name: None,
        };
        let message = Message::new("m1".into(), "r1", user, "hi".into());

        let out: Value =
            serde_json::from_str(&patched(&doc, &head, Some(&message)).unwrap()).unwrap();
        let mut expected: Value = serde_json::from_str(&doc).unwrap();
        expected["msgs"] = json!(4);
        expected["_updatedAt"] = json!("2026-01-02T00:00:00.000Z");
        expected["lm"] = json!("2026-01-02T00:00:00.000Z");
        expected["lastMessage"] = serde_json::to_value(&message).unwrap();
        assert_eq!(out, expected);
        let room: Room = serde_json::from_value(out).unwrap();
        assert_eq!((room.msgs, room.lm), (4, Some(ts)));
    }

    #[test]
    fn a_room_without_a_new_main_message_keeps_its_last_one() {
        let doc = json!({"_id": "r1", "t": "c", "msgs": 1, "lm": "2026-01-01T00:00:00.000Z",
            "_updatedAt": "2026-01-01T00:00:00.000Z", "lastMessage": {"_id": "m0"}, "prid": "p"})
        .to_string();
        let mut head = RoomHead::decode(&doc).unwrap();
        assert_eq!(head.prid.as_deref(), Some("p"));
        head.msgs = 2;
        let out: Value = serde_json::from_str(&patched(&doc, &head, None).unwrap()).unwrap();
        assert_eq!(out["msgs"], 2);
        assert_eq!(out["lastMessage"], json!({"_id": "m0"}));
        assert_eq!(out["lm"], "2026-01-01T00:00:00.000Z");
    }
}
