//! Data stored under an older schema reads the same after the newer migrations run.

use apogee_core::store::RoomStore;
use apogee_store_sql::schema::{CREATE_MIGRATIONS_TABLE, MIGRATIONS, ROOM_COLUMNS_VERSION};
use serde_json::json;

/// A database migrated up to (not including) `version`, as an older release left it.
fn database_before(path: &std::path::Path, version: i64) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).expect("open");
    db.execute_batch(CREATE_MIGRATIONS_TABLE).expect("table");
    for (v, statements) in MIGRATIONS.iter().filter(|(v, _)| *v < version) {
        for sql in *statements {
            db.execute_batch(sql).expect("migration");
        }
        db.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
            [v],
        )
        .expect("record");
    }
    db
}

#[tokio::test]
async fn rooms_keep_their_counts_and_last_message_across_the_migrations_that_move_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("apogee.db");
    let db = database_before(&path, ROOM_COLUMNS_VERSION);
    let room = |id: &str, extra: serde_json::Value| {
        let mut doc = json!({"_id": id, "t": "c", "name": id, "ts": "2026-01-01T00:00:00.000Z",
            "_updatedAt": "2026-01-03T00:00:00.000Z", "msgs": 0, "usersCount": 0});
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        db.execute(
            "INSERT INTO rooms (id, t, name, name_lower, is_default, seq, all_mentions, updated_at, doc)
             VALUES (?1, 'c', ?1, ?1, 0, 7, 0, 1767398400000, ?2)",
            [id, &doc.to_string()],
        )
        .expect("room");
    };
    let last =
        json!({"_id": "m7", "rid": "busy", "msg": "seventh", "ts": "2026-01-02T00:00:00.000Z"});
    room(
        "busy",
        json!({"msgs": 7, "lm": "2026-01-02T00:00:00.000Z", "lastMessage": last}),
    );
    db.execute(
        "INSERT INTO messages (id, rid, ts, updated_at, main, tcount, pinned, starred_by,
                               mention_ids, msg_lower, doc)
         VALUES ('m7', 'busy', 1767312000000, 1767312000000, 1, 0, 0, '[]', '[]', 'seventh', ?1)",
        [last.to_string()],
    )
    .expect("message");
    room("quiet", json!({}));
    // Its last message was deleted before the migrations (the copy on the room stayed).
    room(
        "gone",
        json!({"msgs": 1, "lm": "2026-01-02T00:00:00.000Z",
               "lastMessage": {"_id": "m1", "rid": "gone", "msg": "deleted"}}),
    );
    drop(db);

    let store = apogee_store_sqlite::open(&path).await.expect("migrate");
    let busy = store.room_by_id("busy").await.unwrap().expect("busy");
    assert_eq!(busy.msgs, 7);
    assert_eq!(busy.seq, 7);
    assert_eq!(
        busy.lm.map(|t| t.to_iso()).as_deref(),
        Some("2026-01-02T00:00:00.000Z")
    );
    assert_eq!(busy.last_message, Some(last));
    assert_eq!(busy.updated_at.to_iso(), "2026-01-03T00:00:00.000Z");
    let quiet = store.room_by_id("quiet").await.unwrap().expect("quiet");
    assert_eq!((quiet.msgs, quiet.lm, quiet.last_message), (0, None, None));
    let gone = store.room_by_id("gone").await.unwrap().expect("gone");
    assert_eq!((gone.msgs, gone.last_message), (1, None));
    assert!(gone.lm.is_some());
}
