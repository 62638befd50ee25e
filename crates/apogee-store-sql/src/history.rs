//! The SQL of history pages: a room's messages in `(ts, id)` order (index `messages_room_ts`
//! `(rid, ts, id)`; thread replies `messages_thread` `(tmid, ts, id)`). Public so each backend's
//! tests can check the plans of exactly these statements.

use crate::{Arg, args, contains_pattern};
use apogee_core::store::{HistoryQuery, MessageKey};

/// The `WHERE` conditions (joined by `AND`) and their arguments of a history query. Only the
/// filters asked for are in the SQL, so a bound is an index range on `(rid, ts, id)` rather
/// than a condition checked on every row of the room.
fn history_filter(rid: &str, q: &HistoryQuery) -> (Vec<String>, Vec<Arg>) {
    let (lt, gt) = if q.inclusive {
        ("<=", ">=")
    } else {
        ("<", ">")
    };
    let mut conds = vec!["rid = $1".to_string()];
    let mut a = args![rid];
    let mut bind = |cond: &str, args: Vec<Arg>| {
        let mut cond = cond.to_string();
        for arg in args {
            a.push(arg);
            cond = cond.replacen('?', &format!("${}", a.len()), 1);
        }
        conds.push(cond);
    };
    if let Some(t) = q.latest {
        bind(&format!("ts {lt} ?"), args![t.millis()]);
    }
    if let Some(t) = q.oldest {
        bind(&format!("ts {gt} ?"), args![t.millis()]);
    }
    // Row values compare `ts` first, then `id`: the index order, so both engines seek to
    // the place and scan from there.
    if let Some(k) = &q.before {
        bind("(ts, id) < (?, ?)", args![k.ts.millis(), k.id.as_str()]);
    }
    if let Some(k) = &q.after {
        bind("(ts, id) > (?, ?)", args![k.ts.millis(), k.id.as_str()]);
    }
    if let Some(text) = &q.text {
        bind(
            "msg_lower LIKE ? ESCAPE '\\'",
            vec![Arg::from(contains_pattern(text))],
        );
    }
    if let Some(tmid) = &q.tmid {
        bind("tmid = ?", args![tmid]);
    }
    if let Some(u) = &q.starred_by {
        bind("starred_by LIKE ?", args![format!("%\"{u}\"%")]);
    }
    if let Some(u) = &q.mentioning {
        bind("mention_ids LIKE ?", args![format!("%\"{u}\"%")]);
    }
    if !(q.include_thread_replies || q.tmid.is_some()) {
        conds.push("main = 1".into());
    }
    if q.threads_only {
        conds.push("tcount > 0".into());
    }
    if q.pinned_only {
        conds.push("pinned = 1".into());
    }
    (conds, a)
}

fn filter(rid: &str, q: &HistoryQuery) -> (String, Vec<Arg>) {
    let (conds, a) = history_filter(rid, q);
    (format!("WHERE {}", conds.join(" AND ")), a)
}

/// How many messages match (the bounds and filters; no page).
pub fn total_sql(rid: &str, q: &HistoryQuery) -> (String, Vec<Arg>) {
    let (filter, a) = filter(rid, q);
    (format!("SELECT COUNT(*) FROM messages {filter}"), a)
}

/// One page: `count` documents after `offset`, in `(ts, id)` order (descending unless
/// `ascending`), read along the index from the bound.
pub fn page_sql(rid: &str, q: &HistoryQuery) -> (String, Vec<Arg>) {
    let (filter, mut a) = filter(rid, q);
    let order = if q.ascending { "ASC" } else { "DESC" };
    let n = a.len();
    a.extend(args![q.count, q.offset]);
    let sql = format!(
        "SELECT doc FROM messages {filter} ORDER BY ts {order}, id {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    (sql, a)
}

/// The rest of a page's last millisecond (`last` is its last message): the messages of the
/// same `ts` beyond it in page order, within the query's bounds and filters — an index range
/// `(rid, ts = t, id beyond)` of the ties alone.
pub fn ties_sql(rid: &str, q: &HistoryQuery, last: &MessageKey) -> (String, Vec<Arg>) {
    let (filter, mut a) = filter(rid, q);
    let (order, onward) = if q.ascending {
        ("ASC", ">")
    } else {
        ("DESC", "<")
    };
    let n = a.len();
    a.extend(args![last.ts.millis(), last.id.as_str()]);
    let sql = format!(
        "SELECT doc FROM messages {filter} AND ts = ${} AND id {onward} ${} ORDER BY id {order}",
        n + 1,
        n + 2
    );
    (sql, a)
}

/// The change feed (`chat.syncMessages`): a room's messages changed after `since` (after
/// `(since, after_id)` when paging on), in `(_updatedAt, _id)` order, at most `limit`.
///
/// A message never changed since it was sent has `updated_at = ts` and is found through
/// `messages_room_ts`; only changed ones are in `messages_room_changed` (`WHERE updated_at <>
/// ts`), so sending a message writes one index fewer. The two halves partition the room's
/// messages; each reads at most `limit` rows in its index's order, and only those are put
/// together (PostgreSQL merges them, SQLite sorts those at most twice `limit` rows: it would
/// sort the whole union without the inner limits), so a page costs O(page) on both engines.
pub fn changes_sql(
    rid: &str,
    since: i64,
    after_id: Option<&str>,
    limit: i64,
) -> (String, Vec<Arg>) {
    // Without an id the millisecond itself is excluded; with one, the page goes on after it.
    let (sent, changed, mut a) = match after_id {
        None => ("ts > $2", "updated_at > $2", args![rid, since]),
        Some(id) => (
            "(ts, id) > ($2, $3)",
            "(updated_at, id) > ($2, $3)",
            args![rid, since, id],
        ),
    };
    a.push(Arg::Int(limit));
    let n = a.len();
    let sql = format!(
        "SELECT doc FROM (
           SELECT * FROM (SELECT doc, ts AS changed_at, id FROM messages
             WHERE rid = $1 AND updated_at = ts AND {sent} ORDER BY ts, id LIMIT ${n}) AS sent
           UNION ALL
           SELECT * FROM (SELECT doc, updated_at AS changed_at, id FROM messages
             WHERE rid = $1 AND updated_at <> ts AND {changed} ORDER BY updated_at, id LIMIT ${n})
             AS changed
         ) AS changes ORDER BY changed_at, id LIMIT ${n}"
    );
    (sql, a)
}
