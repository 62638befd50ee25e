//! What a sent message moves in its room — the sequence, the mention count, the message count
//! (`msgs`), the newest message's time (`lm`) and a reference to that message (`lastMessage`),
//! and `_updatedAt` — lives in `room_activity`, a narrow row per room, not in the room's row:
//! appends then write a few dozen bytes per room and neither decode nor encode the room's
//! document (which carries all the rest Rocket.Chat keeps on a room). The document's copies of
//! these fields are not kept current; every room read takes them from `room_activity`, and the
//! last message from its row in `messages`, so an edit shows there too.

use crate::{Row, SqlTx, args, from_json};
use apogee_core::error::StoreError;
use apogee_core::store::StoreResult;
use apogee_domain::{Room, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The start of a room query: a room's row (`r`), its activity (`a`) and its last message
/// (`lm`), in the columns [`room_from_row`] reads. Queries go on with `WHERE` on `r.`.
macro_rules! select_rooms {
    () => {
        "SELECT r.doc, a.seq, a.msgs, a.lm, lm.doc, r.updated_at, a.updated_at
         FROM rooms r JOIN room_activity a ON a.rid = r.id
         LEFT JOIN messages lm ON lm.id = a.last_message_id"
    };
}
pub(crate) use select_rooms;

/// A room from a row of [`select_rooms!`].
pub(crate) fn room_from_row(r: &Row) -> StoreResult<Room> {
    let mut room: Room = from_json(&r[0])?;
    room.seq = r[1].int();
    room.msgs = r[2].int();
    room.lm = r[3].int_or_null().map(Timestamp::from_millis);
    room.last_message = r[4]
        .text()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::Backend(format!("decode lastMessage: {e}")))?;
    // Changes of the room itself, and messages sent to it.
    room.updated_at = Timestamp::from_millis(r[5].int().max(r[6].int()));
    Ok(room)
}

/// The id of `room`'s last message, if it has one.
pub(crate) fn last_message_id(room: &Room) -> Option<&str> {
    room.last_message.as_ref()?.get("_id")?.as_str()
}

/// The fields migration 24 moves out of the documents stored before it.
#[derive(Deserialize)]
struct StoredBefore<'a> {
    #[serde(default)]
    msgs: i64,
    #[serde(default)]
    lm: Option<Timestamp>,
    #[serde(default, rename = "lastMessage", borrow)]
    last_message: Option<&'a RawValue>,
}

/// Fills the columns of migration 24 from the documents of the rooms stored before it.
pub(crate) async fn fill_from_documents(tx: &mut dyn SqlTx) -> StoreResult<()> {
    let rooms = tx.query("SELECT id, doc FROM rooms", vec![]).await?;
    for room in rooms {
        let doc = room[1].text().unwrap_or("{}");
        let stored: StoredBefore = serde_json::from_str(doc)
            .map_err(|e| StoreError::Backend(format!("decode room: {e}")))?;
        tx.exec(
            "UPDATE rooms SET msgs = $2, lm = $3, last_message = $4 WHERE id = $1",
            args![
                room[0].text().unwrap_or_default(),
                stored.msgs,
                stored.lm.map(|lm| lm.millis()),
                stored.last_message.map(|m| m.get().to_string())
            ],
        )
        .await?;
    }
    Ok(())
}

/// A stored last message's id.
#[derive(Deserialize)]
struct MessageId {
    #[serde(rename = "_id")]
    id: String,
}

/// Points each room's activity at its stored last message by id (migration 25). A room whose
/// last message has no id keeps none; one whose message was deleted since reads without one
/// (the join finds no row).
pub(crate) async fn fill_last_message_ids(tx: &mut dyn SqlTx) -> StoreResult<()> {
    let rooms = tx
        .query(
            "SELECT id, last_message FROM rooms WHERE last_message IS NOT NULL",
            vec![],
        )
        .await?;
    for room in rooms {
        let Ok(last) = serde_json::from_str::<MessageId>(room[1].text().unwrap_or("{}")) else {
            continue;
        };
        tx.exec(
            "UPDATE room_activity SET last_message_id = $2 WHERE rid = $1",
            args![room[0].text().unwrap_or_default(), last.id],
        )
        .await?;
    }
    Ok(())
}
