//! Data stored under an older schema reads the same on PostgreSQL after the newer migrations
//! run (SQLite's own test starts further back). Runs when `APOGEE_TEST_DATABASE_URL` names a
//! server; skips otherwise.

mod common;

use apogee_core::store::{RoomStore, SubscriptionStore};
use apogee_store_sql::schema::{CREATE_MIGRATIONS_TABLE, MIGRATIONS, ROOM_ACTIVITY_VERSION};
use sqlx::Connection;

const ROOM: &str = r#"{"_id":"busy","t":"c","name":"busy","ts":"2026-01-01T00:00:00.000Z",
    "_updatedAt":"2026-01-03T00:00:00.000Z","msgs":7,"usersCount":1}"#;
const LAST: &str = r#"{"_id":"m7","rid":"busy","msg":"seventh","ts":"2026-01-02T00:00:00.000Z",
    "_updatedAt":"2026-01-02T00:00:00.000Z","u":{"_id":"u1","username":"ann"}}"#;
const SUB: &str = r#"{"_id":"s1","rid":"busy","name":"busy","t":"c","u":{"_id":"u1","username":"ann"},
    "ts":"2026-01-01T00:00:00.000Z","_updatedAt":"2026-01-01T00:00:00.000Z","open":true,"alert":false,"unread":0,"userMentions":0,
    "groupMentions":0}"#;

#[tokio::test]
async fn rooms_keep_their_counters_and_last_message_when_these_move_to_their_own_table() {
    let Some(url) = common::fresh_database("migrations").await else {
        return;
    };

    // The database as a release before `room_activity` left it: one room with five messages'
    // worth of counters, an `@all` mention and its last message stored; one member, who has
    // read three of them.
    let mut db = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query(CREATE_MIGRATIONS_TABLE)
        .execute(&mut db)
        .await
        .expect("table");
    for (v, statements) in MIGRATIONS
        .iter()
        .filter(|(v, _)| *v < ROOM_ACTIVITY_VERSION)
    {
        for sql in *statements {
            sqlx::query(sql).execute(&mut db).await.expect("migration");
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)")
            .bind(v)
            .execute(&mut db)
            .await
            .expect("record");
    }
    let before = [
        (
            "INSERT INTO rooms (id, t, name, name_lower, is_default, seq, all_mentions, updated_at,
                            doc, msgs, lm, last_message)
         VALUES ('busy', 'c', 'busy', 'busy', 0, 5, 1, 1767398400000, $1, 7, 1767312000000, $2)",
            vec![ROOM, LAST],
        ),
        (
            "INSERT INTO messages (id, rid, ts, updated_at, main, tcount, pinned, starred_by,
                               mention_ids, msg_lower, doc)
         VALUES ('m7', 'busy', 1767312000000, 1767312000000, 1, 0, 0, '[]', '[]', 'seventh', $1)",
            vec![LAST],
        ),
        (
            "INSERT INTO subscriptions (id, rid, user_id, username_lower, read_seq, user_mentions,
                                    all_mentions_seen, updated_at, doc)
         VALUES ('s1', 'busy', 'u1', 'ann', 3, 0, 0, 1767225600000, $1)",
            vec![SUB],
        ),
    ];
    for (sql, args) in before {
        let mut q = sqlx::query(sql);
        for arg in args {
            q = q.bind(arg);
        }
        q.execute(&mut db).await.expect("row");
    }
    db.close().await.expect("close");

    let store = apogee_store_postgres::open(&url).await.expect("migrate");
    let room = store.room_by_id("busy").await.unwrap().expect("room");
    assert_eq!((room.seq, room.msgs), (5, 7));
    assert_eq!(
        room.lm.map(|t| t.to_iso()).as_deref(),
        Some("2026-01-02T00:00:00.000Z")
    );
    assert_eq!(room.last_message.expect("last message")["msg"], "seventh");
    assert_eq!(room.updated_at.to_iso(), "2026-01-03T00:00:00.000Z");
    let sub = store
        .subscription("busy", "u1")
        .await
        .unwrap()
        .expect("sub");
    assert_eq!((sub.unread, sub.group_mentions), (2, 1));
    assert_eq!(sub.updated_at.to_iso(), "2026-01-03T00:00:00.000Z");
}
