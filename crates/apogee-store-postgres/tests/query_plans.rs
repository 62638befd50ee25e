//! History pages are index range scans on PostgreSQL too: with sequential scans priced out,
//! each page statement is an index scan of `messages_room_ts` `(rid, ts, id)` (threads:
//! `messages_thread` `(tmid, ts, id)`) with its bound as an index condition and no sort — the
//! index can serve it at O(page). Runs when `APOGEE_TEST_DATABASE_URL` names a server.

mod common;

use apogee_core::domain::Timestamp;
use apogee_core::store::{HistoryQuery, MessageKey};
use apogee_store_sql::{Arg, history};
use sqlx::{Connection, Row};

async fn explain(conn: &mut sqlx::PgConnection, (sql, args): (String, Vec<Arg>)) -> String {
    let explain = format!("EXPLAIN {sql}");
    let mut q = sqlx::query(&explain);
    for a in args {
        q = match a {
            Arg::Text(t) => q.bind(t),
            Arg::Int(n) => q.bind(n),
            Arg::NullText => q.bind(None::<String>),
            Arg::NullInt => q.bind(None::<i64>),
        };
    }
    let rows = q.fetch_all(&mut *conn).await.expect("explain");
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn key() -> MessageKey {
    MessageKey {
        ts: Timestamp::from_millis(1_000),
        id: "m".into(),
    }
}

#[tokio::test]
async fn history_pages_seek_the_index_in_order() {
    let Some(url) = common::fresh_database("plans").await else {
        return;
    };
    // Opening the store migrates the schema.
    let _store = apogee_store_postgres::open(&url)
        .await
        .expect("open postgres");
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    // An empty table is cheapest to scan whole; what matters is that the index can serve.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .expect("set");
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
            let p = explain(&mut conn, sql.clone()).await;
            let cond = p
                .lines()
                .find(|l| l.trim_start().starts_with("Index Cond:"))
                .unwrap_or_default();
            assert!(
                p.contains("using messages_room_ts on messages"),
                "{}\n{p}",
                sql.0
            );
            // The bound seeks: it is part of the index condition, not a filter on each row.
            assert!(
                cond.contains("(rid = 'r'::text)") && cond.contains("'1000'::bigint"),
                "{}\n{p}",
                sql.0
            );
            assert!(
                !p.contains("Sort") && !p.contains("Seq Scan"),
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
    let p = explain(&mut conn, history::page_sql("r", &thread)).await;
    assert!(p.contains("using messages_thread on messages"), "{p}");
    assert!(!p.contains("Sort"), "{p}");
    // The change feed: unchanged messages from `messages_room_ts`, changed ones from the
    // partial `messages_room_changed`, each limited to a page read in index order, and merged.
    for after_id in [None, Some("m")] {
        let p = explain(&mut conn, history::changes_sql("r", 1_000, after_id, 50)).await;
        assert!(p.contains("using messages_room_ts on messages"), "{p}");
        assert!(p.contains("using messages_room_changed on messages"), "{p}");
        assert_eq!(p.matches("Limit  (").count(), 3, "{p}");
        assert!(p.contains("Merge Append"), "{p}");
        assert!(!p.contains("Sort  (") && !p.contains("Seq Scan"), "{p}");
    }
}
