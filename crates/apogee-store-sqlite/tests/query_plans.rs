//! History pages are index range scans: SQLite's plan for each page statement seeks into
//! `messages_room_ts` `(rid, ts, id)` (threads: `messages_thread` `(tmid, ts, id)`) and reads in
//! index order — no scan of the room, no sort — so a page costs O(page) however long the room.

use apogee_core::domain::Timestamp;
use apogee_core::store::{HistoryQuery, MessageKey};
use apogee_store_sql::{Arg, Database, history};

/// SQLite's `EXPLAIN QUERY PLAN` lines for a statement.
async fn plan(store: &apogee_store_sqlite::SqliteStore, (sql, args): (String, Vec<Arg>)) -> String {
    let rows = store
        .database()
        .query(&format!("EXPLAIN QUERY PLAN {sql}"), args)
        .await
        .expect("explain");
    let lines: Vec<String> = rows
        .iter()
        .filter_map(|r| r.last().and_then(|c| c.text()).map(str::to_string))
        .collect();
    lines.join("\n")
}

fn key() -> MessageKey {
    MessageKey {
        ts: Timestamp::from_millis(1_000),
        id: "m".into(),
    }
}

/// A migrated store in a new temporary directory (removed when the returned guard drops).
async fn fresh_store() -> (tempfile::TempDir, apogee_store_sqlite::SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = apogee_store_sqlite::open(&dir.path().join("apogee.db"))
        .await
        .expect("open sqlite");
    (dir, store)
}

#[tokio::test]
async fn history_pages_seek_the_index_in_order() {
    let (_dir, store) = fresh_store().await;
    let pages = [
        HistoryQuery {
            latest: Some(Timestamp::from_millis(1_000)),
            count: 20,
            ..Default::default()
        },
        HistoryQuery {
            oldest: Some(Timestamp::from_millis(1_000)),
            ascending: true,
            include_thread_replies: true,
            count: 20,
            ..Default::default()
        },
        HistoryQuery {
            before: Some(key()),
            count: 20,
            ..Default::default()
        },
        HistoryQuery {
            after: Some(key()),
            ascending: true,
            count: 20,
            ..Default::default()
        },
    ];
    for q in &pages {
        for sql in [history::page_sql("r", q), history::ties_sql("r", q, &key())] {
            let p = plan(&store, sql.clone()).await;
            assert!(
                p.starts_with("SEARCH messages USING INDEX messages_room_ts (rid=? AND "),
                "{}\n{p}",
                sql.0
            );
            assert!(
                !p.contains("TEMP B-TREE") && !p.contains("SCAN"),
                "{}\n{p}",
                sql.0
            );
        }
    }
    // Thread replies (`getThreadMessages`, `chat.getThreadMessages`): the thread's index, in order.
    let thread = HistoryQuery {
        tmid: Some("t".into()),
        ascending: true,
        count: 50,
        ..Default::default()
    };
    let p = plan(&store, history::page_sql("r", &thread)).await;
    assert!(
        p.starts_with("SEARCH messages USING INDEX messages_thread (tmid=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "{p}");
}

/// The change feed reads unchanged messages through `messages_room_ts` and changed ones through
/// the partial `messages_room_changed`, each a page at most in index order; only those two
/// pages are sorted together.
#[tokio::test]
async fn the_change_feed_reads_two_index_ranges() {
    let (_dir, store) = fresh_store().await;
    for after_id in [None, Some("m")] {
        let p = plan(&store, history::changes_sql("r", 1_000, after_id, 50)).await;
        assert!(
            p.contains("SEARCH messages USING INDEX messages_room_ts (rid=? AND "),
            "{p}"
        );
        assert!(
            p.contains("SEARCH messages USING INDEX messages_room_changed (rid=? AND "),
            "{p}"
        );
        // One sort, of the two limited halves; neither half is sorted or scanned.
        assert_eq!(p.matches("TEMP B-TREE").count(), 1, "{p}");
        assert!(!p.contains("SCAN messages"), "{p}");
    }
}
