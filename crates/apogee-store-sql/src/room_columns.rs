//! What a sent message moves in its room — the message count (`msgs`), the newest message's time
//! (`lm`) and the message itself (`lastMessage`), and `_updatedAt` — is kept in columns of its
//! own, not in the room's document: appends then write a few values per room, and neither decode
//! nor encode the document (which carries all the rest Rocket.Chat keeps on a room). The
//! document's copies of these fields are not kept current; every room read takes the columns.

use crate::{Arg, Row, SqlTx, args, from_json, to_json};
use apogee_core::error::StoreError;
use apogee_core::store::StoreResult;
use apogee_domain::{Room, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The columns [`room_from_row`] reads, in its order.
macro_rules! room_columns {
    () => {
        "doc, seq, msgs, lm, last_message, updated_at"
    };
}
pub(crate) use room_columns;

/// A room from a row of [`room_columns!`].
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
    room.updated_at = Timestamp::from_millis(r[5].int());
    Ok(room)
}

/// `room`'s `lm` and `lastMessage` as column values.
pub(crate) fn last_message_args(room: &Room) -> StoreResult<[Arg; 2]> {
    Ok([
        room.lm.map_or(Arg::NullInt, |lm| Arg::Int(lm.millis())),
        match &room.last_message {
            Some(m) => Arg::Text(to_json(m)?),
            None => Arg::NullText,
        },
    ])
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
