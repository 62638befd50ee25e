//! Appended messages, applied together. Consecutive `AppendMessage` changes — within a batch and
//! across the batches of one group commit — are held back and written with a fixed number of
//! multi-row statements, however many messages and rooms they span: lock and read the rooms,
//! then update the rooms, insert the messages (with their thread and discussion columns), and
//! move the members' read marks and mention counts. On PostgreSQL, where each statement is a
//! round trip, the three writes are one statement of `WITH` clauses, so a group of 64 messages
//! costs two round trips between `BEGIN` and `COMMIT` instead of about 260. A room's moved fields
//! are its narrow `room_activity` row (`room_columns`): no room document is decoded, encoded or
//! rewritten.
//!
//! Any other change flushes what is held first, so every change still sees the effects of the
//! ones before it, in order. All statements run in the caller's transaction: a failure fails the
//! whole flush, and the backend's group commit then runs each batch alone.

use crate::apply::message_args;
use crate::{Arg, SqlTx};
use apogee_core::error::StoreError;
use apogee_core::store::StoreResult;
use apogee_domain::{Message, Timestamp};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::OnceLock;

/// Most rows in one statement: bounds a statement's parameters (13 per message row) well under
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

/// An appended message, borrowed from its batch: the group commit keeps the batches for a
/// retry, so nothing is copied.
pub(crate) struct Append<'a> {
    pub message: &'a Message,
    pub mentioned: &'a [String],
    pub mentions_all: bool,
}

/// Appends not yet written.
#[derive(Default)]
pub(crate) struct PendingAppends<'a> {
    items: Vec<Append<'a>>,
}

/// A room as the appends move it: its `room_activity` row (`room_columns`).
struct RoomState<'a> {
    id: &'a str,
    msgs: i64,
    lm: Option<Timestamp>,
    updated_at: Timestamp,
    is_discussion: bool,
    seq: i64,
    all_mentions: i64,
    /// Index (into the held appends) of the newest message shown in the main timeline.
    last_main: Option<usize>,
}

impl<'a> PendingAppends<'a> {
    pub(crate) fn push(&mut self, append: Append<'a>) {
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
        let mut marks: Vec<SubscriptionMark> = Vec::new();
        for (i, a) in items.iter().enumerate() {
            let m = a.message;
            let state = rooms
                .get_mut(m.rid.as_str())
                .ok_or_else(|| StoreError::Missing("room".into()))?;
            let main = m.in_main_timeline();
            state.msgs += 1;
            state.updated_at = state.updated_at.max(m.ts);
            if !main {
                continue;
            }
            state.seq += 1;
            // Messages are stamped before they queue for a commit, so one can commit after a
            // newer one (another group, another committer or node): `lm` and `lastMessage`
            // stay the newest message, as history orders them.
            if state.lm.is_none_or(|lm| m.ts >= lm) {
                state.lm = Some(m.ts);
                state.last_main = Some(i);
            }
            state.all_mentions += i64::from(a.mentions_all);
            // The sender has seen everything up to their own message.
            mark(&mut marks, (&m.rid, &m.u.id)).read = Some(state.seq);
            for uid in a.mentioned.iter().filter(|u| **u != m.u.id) {
                mark(&mut marks, (&m.rid, uid)).mentions += 1;
            }
        }

        let messages = message_rows(&items)?;
        let writes = [
            (&ROOMS_UPDATE, room_rows(&rooms, &items)),
            (&MESSAGES_INSERT, messages),
            (&MARKS_UPDATE, mark_rows(&marks)),
        ];
        let fits_one_statement = writes.iter().all(|(w, rows)| rows.len() <= CHUNK * w.width);
        if tx.modifies_in_with() && fits_one_statement {
            let (sql, args) = in_one_statement(writes);
            tx.exec(&sql, args).await?;
        } else {
            for (write, mut rows) in writes {
                while !rows.is_empty() {
                    let rest = rows.split_off(rows.len().min(CHUNK * write.width));
                    let (sql, args) = write.statement(rows, 1, tx.fails_in_place());
                    tx.exec(&sql, args).await?;
                    rows = rest;
                }
            }
        }

        let mut discussions: Vec<&str> = rooms
            .values()
            .filter(|s| s.is_discussion)
            .map(|s| s.id)
            .collect();
        discussions.sort_unstable();
        for rid in discussions {
            crate::apply::refresh_discussion_metadata(tx, rid).await?;
        }
        Ok(())
    }
}

/// What a group's messages change in one member's subscription.
#[derive(Debug, PartialEq)]
struct SubscriptionMark<'a> {
    key: (&'a str, &'a str),
    /// The sender's read mark: the room sequence of their newest message.
    read: Option<i64>,
    /// Mentions of the member to add.
    mentions: i64,
}

/// The mark of `key` (room id, user id), added if new.
fn mark<'m, 'a>(
    marks: &'m mut Vec<SubscriptionMark<'a>>,
    key: (&'a str, &'a str),
) -> &'m mut SubscriptionMark<'a> {
    let i = match marks.iter().position(|m| m.key == key) {
        Some(i) => i,
        None => {
            marks.push(SubscriptionMark {
                key,
                read: None,
                mentions: 0,
            });
            marks.len() - 1
        }
    };
    &mut marks[i]
}

/// A multi-row write: `sql` with `{values}` where its `VALUES` list goes and `{or_fail}` after
/// its verb ([`SqlTx::fails_in_place`]), rows of `width` parameters, and the padding row that
/// matches and writes nothing.
struct RowsWrite {
    sql: &'static str,
    width: usize,
    padding: &'static [Arg],
    /// The texts numbered from `$1`, for each padded size (1, 2, 4, … [`CHUNK`] rows): made
    /// once, as writing hundreds of parameter numbers was a cost of every group. Without and
    /// with `OR FAIL`.
    texts: [OnceLock<Vec<String>>; 2],
}

impl RowsWrite {
    /// The statement for `rows` (flattened, whole rows, at most [`CHUNK`]) with its parameters
    /// numbered from `$first`, padded to a power of two rows; `or_fail` as
    /// [`SqlTx::fails_in_place`] says.
    fn statement(
        &'static self,
        mut rows: Vec<Arg>,
        first: usize,
        or_fail: bool,
    ) -> (Cow<'static, str>, Vec<Arg>) {
        let n = rows.len() / self.width;
        let padded_rows = padded(n);
        let sql = if first == 1 {
            let texts = self.texts[usize::from(or_fail)].get_or_init(|| {
                std::iter::successors(Some(1), |&r| (r < CHUNK).then_some(r * 2))
                    .map(|r| self.text(r, 1, or_fail))
                    .collect()
            });
            // `padded_rows` is a power of two up to CHUNK: the list has one text per power.
            Cow::Borrowed(texts[padded_rows.trailing_zeros() as usize].as_str())
        } else {
            Cow::Owned(self.text(padded_rows, first, or_fail))
        };
        let padding = std::iter::repeat_n(self.padding, padded_rows - n).flatten();
        rows.extend(padding.cloned());
        (sql, rows)
    }

    fn text(&self, rows: usize, first: usize, or_fail: bool) -> String {
        self.sql
            .replace("{or_fail}", if or_fail { " OR FAIL" } else { "" })
            .replace("{values}", &values_list(rows, self.width, first))
    }
}

/// Each room once: its sequence, mention count, time, message count, `lm` and last message.
static ROOMS_UPDATE: RowsWrite = RowsWrite {
    sql: "UPDATE{or_fail} room_activity SET seq = v.column2,
          all_mentions = room_activity.all_mentions + v.column3, updated_at = v.column4,
          msgs = v.column5, lm = v.column6,
          last_message_id = COALESCE(v.column7, room_activity.last_message_id)
          FROM (VALUES {values}) AS v WHERE room_activity.rid = v.column1",
    width: 7,
    padding: &[
        Arg::NullText,
        Arg::NullInt,
        Arg::NullInt,
        Arg::NullInt,
        Arg::NullInt,
        Arg::NullInt,
        Arg::NullText,
    ],
    texts: [OnceLock::new(), OnceLock::new()],
};

/// The messages' rows (padding rows, all NULL, left out), columns in [`message_row_args`]'
/// order.
static MESSAGES_INSERT: RowsWrite = RowsWrite {
    sql: "INSERT{or_fail} INTO messages (id, updated_at, tcount, pinned, starred_by, mention_ids,
          msg_lower, doc, main, rid, ts, tmid, drid)
          SELECT * FROM (VALUES {values}) AS v WHERE v.column1 IS NOT NULL",
    width: MESSAGE_ROW_WIDTH,
    padding: &MESSAGE_PADDING,
    texts: [OnceLock::new(), OnceLock::new()],
};

/// The senders' read marks and the mentioned members' counts, one update per subscription.
static MARKS_UPDATE: RowsWrite = RowsWrite {
    sql: "UPDATE{or_fail} subscriptions SET read_seq = COALESCE(v.column3, subscriptions.read_seq),
          user_mentions = subscriptions.user_mentions + v.column4
          FROM (VALUES {values}) AS v
          WHERE subscriptions.rid = v.column1 AND subscriptions.user_id = v.column2",
    width: 4,
    padding: &[Arg::NullText, Arg::NullText, Arg::NullInt, Arg::NullInt],
    texts: [OnceLock::new(), OnceLock::new()],
};

/// The writes as one statement, each a `WITH` clause (PostgreSQL runs every data-modifying
/// clause to completion whether or not anything reads it): one round trip instead of three.
/// The writes touch different tables, so seeing one snapshot changes nothing.
fn in_one_statement<const N: usize>(
    writes: [(&'static RowsWrite, Vec<Arg>); N],
) -> (String, Vec<Arg>) {
    let mut clauses = Vec::with_capacity(N);
    let mut args = Vec::new();
    for (i, (write, rows)) in writes.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        let (sql, rows) = write.statement(rows, args.len() + 1, false);
        clauses.push(format!("w{i} AS ({sql})"));
        args.extend(rows);
    }
    (format!("WITH {} SELECT 1", clauses.join(", ")), args)
}

/// `(…), (…)` of `rows` rows of `width` parameters, numbered from `$first`.
fn values_list(rows: usize, width: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        push_parameters(&mut s, width, first + r * width);
        s.push(')');
    }
    s
}

/// Appends `$first, …` (`n` parameters) to `s`, written into it directly: a `String` per
/// parameter was hundreds of allocations per group.
fn push_parameters(s: &mut String, n: usize, first: usize) {
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "${}", first + i);
    }
}

/// Locks the appends' rooms while reading them (PostgreSQL's plain SELECT does not lock; SQLite
/// serializes writers anyway), so concurrent appends of other nodes queue up instead of losing
/// increments.
async fn lock_rooms<'a>(
    tx: &mut dyn SqlTx,
    items: &[Append<'a>],
) -> StoreResult<HashMap<&'a str, RoomState<'a>>> {
    let mut ids: Vec<&str> = items.iter().map(|a| a.message.rid.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rooms = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut sql = String::from("UPDATE room_activity SET seq = seq WHERE rid IN (");
        push_parameters(&mut sql, padded(chunk.len()), 1);
        sql.push_str(
            ") RETURNING rid, seq, msgs, lm, updated_at,
             (SELECT prid FROM rooms WHERE rooms.id = room_activity.rid)",
        );
        let args = chunk
            .iter()
            .map(|id| Arg::from(*id))
            .chain(padding(chunk.len(), [Arg::NullText]))
            .collect();
        let rows = tx.query(&sql, args).await?;
        for row in rows {
            let Some(&id) = chunk.iter().find(|id| row[0].text() == Some(**id)) else {
                continue;
            };
            let state = RoomState {
                id,
                seq: row[1].int(),
                msgs: row[2].int(),
                lm: row[3].int_or_null().map(Timestamp::from_millis),
                updated_at: Timestamp::from_millis(row[4].int()),
                is_discussion: row[5].text().is_some(),
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

/// [`ROOMS_UPDATE`]'s rows: each room's counters and times, and the id of its newest
/// main-timeline message of the group as its `lastMessage` (NULL keeps the stored one).
fn room_rows(rooms: &HashMap<&str, RoomState>, items: &[Append]) -> Vec<Arg> {
    let mut rows = Vec::with_capacity(rooms.len() * ROOMS_UPDATE.width);
    for state in rooms.values() {
        let last_message = match state.last_main {
            Some(i) => Arg::from(items[i].message.id.as_str()),
            None => Arg::NullText,
        };
        rows.extend([
            Arg::from(state.id),
            Arg::Int(state.seq),
            Arg::Int(state.all_mentions),
            Arg::Int(state.updated_at.millis()),
            Arg::Int(state.msgs),
            state.lm.map_or(Arg::NullInt, |lm| Arg::Int(lm.millis())),
            last_message,
        ]);
    }
    rows
}

fn message_rows(items: &[Append]) -> StoreResult<Vec<Arg>> {
    let mut rows = Vec::with_capacity(items.len() * MESSAGE_ROW_WIDTH);
    for a in items {
        rows.extend(message_row_args(a.message)?);
    }
    Ok(rows)
}

fn mark_rows(marks: &[SubscriptionMark]) -> Vec<Arg> {
    marks
        .iter()
        .flat_map(|m| {
            [
                Arg::from(m.key.0),
                Arg::from(m.key.1),
                m.read.map_or(Arg::NullInt, Arg::Int),
                Arg::Int(m.mentions),
            ]
        })
        .collect()
}

/// A padding row of [`MESSAGES_INSERT`], typed as the real rows are.
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
    Arg::NullText,
];

const MESSAGE_ROW_WIDTH: usize = 13;

/// Inserts one message's row (a message that is not appended: backfilled federated history).
pub(crate) async fn insert_message_row(tx: &mut dyn SqlTx, m: &Message) -> StoreResult<()> {
    let (sql, args) = MESSAGES_INSERT.statement(message_row_args(m)?, 1, tx.fails_in_place());
    tx.exec(&sql, args).await?;
    Ok(())
}

/// The parameters of a message's row, in [`MESSAGES_INSERT`]' column order.
fn message_row_args(m: &Message) -> StoreResult<Vec<Arg>> {
    let mut a = message_args(m)?;
    a.push(Arg::Text(m.rid.clone()));
    a.push(Arg::Int(m.ts.millis()));
    a.push(Arg::from(m.tmid.clone()));
    let drid = m.extra.get("drid").and_then(Value::as_str);
    a.push(drid.map_or(Arg::NullText, Arg::from));
    Ok(a)
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
    fn a_message_row_fills_its_statement_row() {
        let user = apogee_domain::UserRef {
            id: "u".into(),
            username: "u".into(),
            name: None,
        };
        let m = Message::new("m".into(), "r", user, "hi".into());
        assert_eq!(message_row_args(&m).unwrap().len(), MESSAGE_ROW_WIDTH);
    }

    #[test]
    fn each_statement_size_has_its_own_text() {
        for n in [1, 2, 3, 4, 7, 33, 64] {
            let rows = vec![Arg::Int(0); n * MARKS_UPDATE.width];
            let (sql, args) = MARKS_UPDATE.statement(rows, 1, false);
            let last = padded(n) * MARKS_UPDATE.width;
            assert_eq!(args.len(), last);
            assert!(sql.contains(&format!("${last})")), "{n}: {sql}");
            assert!(!sql.contains(&format!("${}", last + 1)), "{n}: {sql}");
        }
        let (sql, _) = MARKS_UPDATE.statement(vec![Arg::Int(0); 4], 9, false);
        assert!(sql.contains("($9, $10, $11, $12)"), "{sql}");
        assert!(sql.starts_with("UPDATE subscriptions"), "{sql}");
        let (sql, _) = MARKS_UPDATE.statement(vec![Arg::Int(0); 4], 1, true);
        assert!(sql.starts_with("UPDATE OR FAIL subscriptions"), "{sql}");
        let (sql, _) = MESSAGES_INSERT.statement(vec![Arg::Int(0); MESSAGE_ROW_WIDTH], 1, true);
        assert!(sql.starts_with("INSERT OR FAIL INTO messages"), "{sql}");
    }

    #[test]
    fn values_lists_number_parameters_row_by_row() {
        assert_eq!(values_list(1, 2, 1), "($1, $2)");
        assert_eq!(values_list(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_list(1, 2, 7), "($7, $8)");
    }

    #[test]
    fn a_members_marks_of_a_group_are_one_row() {
        let mut marks = Vec::new();
        mark(&mut marks, ("r", "u")).read = Some(3);
        mark(&mut marks, ("r", "v")).mentions += 1;
        mark(&mut marks, ("r", "u")).read = Some(5);
        mark(&mut marks, ("r", "u")).mentions += 1;
        mark(&mut marks, ("r", "v")).mentions += 1;
        let row = |key, read, mentions| SubscriptionMark {
            key,
            read,
            mentions,
        };
        assert_eq!(
            marks,
            vec![row(("r", "u"), Some(5), 1), row(("r", "v"), None, 2)]
        );
    }

    #[test]
    fn writes_in_one_statement_number_their_parameters_on() {
        let rooms: Vec<Arg> = (0..7).map(Arg::Int).collect();
        let marks: Vec<Arg> = (0..8).map(Arg::Int).collect();
        let (sql, args) = in_one_statement([
            (&ROOMS_UPDATE, rooms),
            (&MESSAGES_INSERT, Vec::new()),
            (&MARKS_UPDATE, marks),
        ]);
        assert!(sql.starts_with("WITH w0 AS (UPDATE room_activity"), "{sql}");
        assert!(
            sql.contains("(VALUES ($1, $2, $3, $4, $5, $6, $7)) AS v"),
            "{sql}"
        );
        assert!(!sql.contains("INSERT"), "an empty write is left out: {sql}");
        assert!(
            sql.contains("w2 AS (UPDATE subscriptions")
                && sql.contains("($8, $9, $10, $11), ($12, $13, $14, $15)"),
            "{sql}"
        );
        assert!(sql.ends_with(" SELECT 1"), "{sql}");
        assert_eq!(args.len(), 15);
    }
}
