//! Presence across nodes: two `Core`s (two nodes) on one store. A user is online while any
//! node has a connection of theirs, and a node that stops beating is dropped by the others.

use apogee_core::domain::{Timestamp, User};
use apogee_core::store::{Change, Store};
use apogee_core::{Core, Options};
use std::sync::Arc;

async fn status(store: &Arc<dyn Store>, uid: &str) -> String {
    store.user_by_id(uid).await.unwrap().unwrap().status
}

#[tokio::test]
async fn presence_is_the_best_any_live_node_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        apogee_store_sqlite::open(&dir.path().join("a.db"))
            .await
            .unwrap(),
    );
    let a = Core::start(store.clone(), Options::default())
        .await
        .unwrap();
    let b = Core::start(store.clone(), Options::default())
        .await
        .unwrap();
    assert_ne!(a.node_id(), b.node_id());
    let user = User::new("u1".into(), "ann".into(), None, "user", vec!["user".into()]);
    store
        .commit(vec![Change::InsertUser {
            user,
            password_hash: None,
        }])
        .await
        .unwrap();

    a.set_connection_status("u1", "online").await.unwrap();
    b.set_connection_status("u1", "online").await.unwrap();
    b.set_connection_status("u1", "offline").await.unwrap();
    assert_eq!(
        status(&store, "u1").await,
        "online",
        "still connected to node a"
    );
    a.set_connection_status("u1", "away").await.unwrap();
    assert_eq!(status(&store, "u1").await, "away");
    b.set_connection_status("u1", "online").await.unwrap();
    assert_eq!(status(&store, "u1").await, "online");
    assert!(b.set_connection_status("u1", "busy").await.is_err());

    // Node b goes silent (as if killed): node a's next heartbeat drops it.
    store
        .commit(vec![Change::NodeSeen {
            node: b.node_id().to_string(),
            at: Timestamp::from_millis(0),
        }])
        .await
        .unwrap();
    a.beat().await.unwrap();
    assert_eq!(
        status(&store, "u1").await,
        "away",
        "only node a's report is left"
    );
    a.set_connection_status("u1", "offline").await.unwrap();
    assert_eq!(status(&store, "u1").await, "offline");
}
