//! Appended messages, applied together. Consecutive `AppendMessage` changes — within a batch and
//! across the batches of one group commit — are held back and written with a fixed number of
//! multi-row statements, however many messages and rooms they span: lock and read the rooms,
//! update the rooms, insert the messages, move the senders' read marks, count the mentions.
//! Each statement is a round trip to PostgreSQL, so a group of 64 messages costs about five
//! instead of about 260; over SQLite it saves decoding and encoding a room document per message.
//!
//! Any other change flushes what is held first, so every change still sees the effects of the
//! ones before it, in order. All statements run in the caller's transaction: a failure fails the
//! whole flush, and the backend's group commit then runs each batch alone.

use crate::apply::message_args;
use crate::{Arg, SqlTx, from_json, to_json};
use apogee_core::error::StoreError;
use apogee_core::store::StoreResult;
use apogee_domain::{Message, Room};
use serde_json::Value;
use std::collections::HashMap;

/// Most rows in one statement: bounds a statement's parameters (12 per message row) well under
/// both backends' limits. A power of two: see [`padded`].
const CHUNK: usize = 64;

/// The rows a statement of `n` rows is written with: the next power of two, the rest padding
/// rows of NULLs that match and insert nothing. So each statement has seven texts (1 to 64
/// rows), each prepared once per connection and then served from the statement caches, instead
/// of a new text — parsed and planned again, on PostgreSQL with a round trip of its own — for
/// nearly every group size.
fn padded(n: usize) -> usize {
    n.next_power_of_two().min(CHUNK)
}

/// `row` repeated for the padding of a statement of `n` rows.
fn padding<const W: usize>(n: usize, row: [Arg; W]) -> impl Iterator<Item = Arg> {
    std::iter::repeat_n(row, padded(n) - n).flatten()
}

pub(crate) struct Append {
    pub message: Message,
    pub mentioned: Vec<String>,
    pub mentions_all: bool,
}

/// Appends not yet written.
#[derive(Default)]
pub(crate) struct PendingAppends {
    items: Vec<Append>,
}

/// A room as the appends move it.
struct RoomState {
    room: Room,
    seq: i64,
    all_mentions: i64,
    /// Index (into the held appends) of the newest message shown in the main timeline.
    last_main: Option<usize>,
}

impl PendingAppends {
    pub(crate) fn push(&mut self, append: Append) {
        self.items.push(append);
    }

    /// Writes every held append; returns with nothing held.
    pub(crate) async fn flush(&mut self, tx: &mut dyn SqlTx) -> StoreResult<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.items);
        let mut rooms = lock_rooms(tx, &items).await?;

        // The rooms' counters and the read and mention marks, message by message in order.
        let mut read_marks: Vec<((&str, &str), i64)> = Vec::new();
        let mut mentions: Vec<((&str, &str), i64)> = Vec::new();
        for (i, a) in items.iter().enumerate() {
            let m = &a.message;
            let state = rooms
                .get_mut(m.rid.as_str())
                .ok_or_else(|| StoreError::Missing("room".into()))?;
            let main = m.in_main_timeline();
            state.room.msgs += 1;
            state.room.updated_at = m.ts;
            if !main {
                continue;
            }
            state.seq += 1;
            state.room.lm = Some(m.ts);
            state.last_main = Some(i);
            state.all_mentions += i64::from(a.mentions_all);
            // The sender has seen everything up to their own message.
            set_mark(&mut read_marks, (&m.rid, &m.u.id), state.seq);
            for uid in a.mentioned.iter().filter(|u| **u != m.u.id) {
                add_mark(&mut mentions, (&m.rid, uid), 1);
            }
        }

        update_rooms(tx, &items, &mut rooms).await?;
        insert_messages(tx, &items).await?;
        for a in &items {
            if let Some(drid) = a.message.extra.get("drid").and_then(Value::as_str) {
                tx.exec(
                    "UPDATE messages SET drid = $2 WHERE id = $1",
                    vec![Arg::from(&a.message.id), Arg::from(drid)],
                )
                .await?;
            }
        }
        update_subscriptions(tx, "read_seq = v.column3", &read_marks).await?;
        update_subscriptions(
            tx,
            "user_mentions = subscriptions.user_mentions + v.column3",
            &mentions,
        )
        .await?;
        let mut discussions: Vec<&str> = rooms
            .values()
            .filter(|s| s.room.prid.is_some())
            .map(|s| s.room.id.as_str())
            .collect();
        discussions.sort_unstable();
        for rid in discussions {
            crate::apply::refresh_discussion_metadata(tx, rid).await?;
        }
        Ok(())
    }
}

fn set_mark<'a>(marks: &mut Vec<((&'a str, &'a str), i64)>, key: (&'a str, &'a str), v: i64) {
    match marks.iter_mut().find(|(k, _)| *k == key) {
        Some((_, old)) => *old = v,
        None => marks.push((key, v)),
    }
}

fn add_mark<'a>(marks: &mut Vec<((&'a str, &'a str), i64)>, key: (&'a str, &'a str), n: i64) {
    match marks.iter_mut().find(|(k, _)| *k == key) {
        Some((_, old)) => *old += n,
        None => marks.push((key, n)),
    }
}

/// `(…), (…)` of `rows` rows of `width` numbered parameters.
fn values_list(rows: usize, width: usize) -> String {
    let mut s = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..width {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * width + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

/// Locks the appends' rooms while reading them (PostgreSQL's plain SELECT does not lock; SQLite
/// serializes writers anyway), so concurrent appends of other nodes queue up instead of losing
/// increments.
async fn lock_rooms<'a>(
    tx: &mut dyn SqlTx,
    items: &'a [Append],
) -> StoreResult<HashMap<&'a str, RoomState>> {
    let mut ids: Vec<&str> = items.iter().map(|a| a.message.rid.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rooms = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let params: Vec<String> = (1..=padded(chunk.len())).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE rooms SET seq = seq WHERE id IN ({}) RETURNING id, doc, seq",
            params.join(", ")
        );
        let args = chunk
            .iter()
            .map(|id| Arg::from(*id))
            .chain(padding(chunk.len(), [Arg::NullText]))
            .collect();
        let rows = tx.query(&sql, args).await?;
        for row in rows {
            let room: Room = from_json(&row[1])?;
            let Some(&id) = chunk.iter().find(|id| row[0].text() == Some(**id)) else {
                continue;
            };
            let state = RoomState {
                room,
                seq: row[2].int(),
                all_mentions: 0,
                last_main: None,
            };
            rooms.insert(id, state);
        }
    }
    if rooms.len() != ids.len() {
        return Err(StoreError::Missing("room".into()));
    }
    Ok(rooms)
}

/// Writes each room once: its sequence, mention count, time and document (with `lastMessage`,
/// the newest main-timeline message, encoded once).
async fn update_rooms(
    tx: &mut dyn SqlTx,
    items: &[Append],
    rooms: &mut HashMap<&str, RoomState>,
) -> StoreResult<()> {
    let mut rows: Vec<[Arg; 5]> = Vec::with_capacity(rooms.len());
    for state in rooms.values_mut() {
        if let Some(i) = state.last_main {
            state.room.last_message =
                Some(serde_json::to_value(&items[i].message).unwrap_or(Value::Null));
        }
        rows.push([
            Arg::from(&state.room.id),
            Arg::Int(state.seq),
            Arg::Int(state.all_mentions),
            Arg::Int(state.room.updated_at.millis()),
            Arg::Text(to_json(&state.room)?),
        ]);
    }
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "UPDATE rooms SET seq = v.column2, all_mentions = rooms.all_mentions + v.column3,
             updated_at = v.column4, doc = v.column5
             FROM (VALUES {}) AS v WHERE rooms.id = v.column1",
            values_list(padded(chunk.len()), 5)
        );
        let pad = [
            Arg::NullText,
            Arg::NullInt,
            Arg::NullInt,
            Arg::NullInt,
            Arg::NullText,
        ];
        let args = chunk
            .iter()
            .flatten()
            .cloned()
            .chain(padding(chunk.len(), pad))
            .collect();
        tx.exec(&sql, args).await?;
    }
    Ok(())
}

/// The messages' rows, with the columns their indexes read (padding rows, all NULL, left out).
async fn insert_messages(tx: &mut dyn SqlTx, items: &[Append]) -> StoreResult<()> {
    for chunk in items.chunks(CHUNK) {
        let mut args = Vec::with_capacity(padded(chunk.len()) * MESSAGE_ROW_WIDTH);
        for a in chunk {
            args.extend(message_row_args(&a.message)?);
        }
        args.extend(padding(chunk.len(), MESSAGE_PADDING));
        let sql = format!(
            "INSERT INTO messages {MESSAGE_COLUMNS} SELECT * FROM (VALUES {}) AS v
             WHERE v.column1 IS NOT NULL",
            values_list(padded(chunk.len()), MESSAGE_ROW_WIDTH)
        );
        tx.exec(&sql, args).await?;
    }
    Ok(())
}

/// A padding row of [`MESSAGE_COLUMNS`], typed as the real rows are.
const MESSAGE_PADDING: [Arg; MESSAGE_ROW_WIDTH] = [
    Arg::NullText,
    Arg::NullInt,
    Arg::NullInt,
    Arg::NullInt,
    Arg::NullText,
    Arg::NullText,
    Arg::NullText,
    Arg::NullText,
    Arg::NullInt,
    Arg::NullText,
    Arg::NullInt,
    Arg::NullText,
];

pub(crate) const MESSAGE_COLUMNS: &str = "(id, updated_at, tcount, pinned, starred_by, mention_ids, msg_lower, doc, main, rid, ts, tmid)";
pub(crate) const MESSAGE_ROW_WIDTH: usize = 12;

/// The parameters of a message's row, in [`MESSAGE_COLUMNS`]' order.
pub(crate) fn message_row_args(m: &Message) -> StoreResult<Vec<Arg>> {
    let mut a = message_args(m)?;
    a.push(Arg::Text(m.rid.clone()));
    a.push(Arg::Int(m.ts.millis()));
    a.push(Arg::from(m.tmid.clone()));
    Ok(a)
}

/// `SET <set>` on the subscriptions of `(rid, user_id)` keys, `v.column3` being each key's value.
async fn update_subscriptions(
    tx: &mut dyn SqlTx,
    set: &str,
    marks: &[((&str, &str), i64)],
) -> StoreResult<()> {
    for chunk in marks.chunks(CHUNK) {
        let sql = format!(
            "UPDATE subscriptions SET {set} FROM (VALUES {}) AS v
             WHERE subscriptions.rid = v.column1 AND subscriptions.user_id = v.column2",
            values_list(padded(chunk.len()), 3)
        );
        let args = chunk
            .iter()
            .flat_map(|((rid, uid), n)| [Arg::from(*rid), Arg::from(*uid), Arg::Int(*n)])
            .chain(padding(
                chunk.len(),
                [Arg::NullText, Arg::NullText, Arg::NullInt],
            ))
            .collect();
        tx.exec(&sql, args).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_padded_to_a_power_of_two_rows() {
        let sizes: Vec<usize> = [1, 2, 3, 5, 33, 64].into_iter().map(padded).collect();
        assert_eq!(sizes, vec![1, 2, 4, 8, 64, 64]);
        assert_eq!(padding(3, [Arg::NullInt, Arg::NullText]).count(), 2);
        assert_eq!(padding(4, [Arg::NullInt]).count(), 0);
    }

    #[test]
    fn values_lists_number_parameters_row_by_row() {
        assert_eq!(values_list(1, 2), "($1, $2)");
        assert_eq!(values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn read_marks_keep_the_last_and_mentions_add_up() {
        let mut marks = Vec::new();
        set_mark(&mut marks, ("r", "u"), 3);
        set_mark(&mut marks, ("r", "v"), 4);
        set_mark(&mut marks, ("r", "u"), 5);
        assert_eq!(marks, vec![(("r", "u"), 5), (("r", "v"), 4)]);
        let mut counts = Vec::new();
        add_mark(&mut counts, ("r", "u"), 1);
        add_mark(&mut counts, ("r", "u"), 1);
        assert_eq!(counts, vec![(("r", "u"), 2)]);
    }
}
