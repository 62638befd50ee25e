//! Packed transactions on real components: core's outbox on SQLite, the federation adapter and
//! its HTTP client, and a peer on loopback that records every `PUT /send` and can fail on
//! demand. A destination's waiting PDUs go 50 to a transaction, in order; a failed transaction
//! is retried with the same txn id and contents; the queue's health follows; waiting EDUs ride
//! along or go on their own.

use apogee_core::store::{Change, OutboxItem, Store};
use apogee_core::{Core, Options};
use apogee_domain::Timestamp;
use apogee_federation::{Federation, Settings};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Peer {
    transactions: Mutex<Vec<(String, Value)>>,
    failures_left: AtomicUsize,
}

async fn serve_peer(peer: Arc<Peer>) -> String {
    let app = axum::Router::new().route(
        "/_matrix/federation/v1/send/{txn}",
        axum::routing::put(
            move |axum::extract::Path(txn): axum::extract::Path<String>,
                  axum::Json(body): axum::Json<Value>| {
                let peer = peer.clone();
                async move {
                    peer.transactions.lock().unwrap().push((txn, body));
                    let failing = peer
                        .failures_left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(json!({})),
                        )
                    } else {
                        (axum::http::StatusCode::OK, axum::Json(json!({"pdus": {}})))
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = check() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn item(n: i64) -> OutboxItem {
    OutboxItem {
        id: format!("item{n:03}"),
        kind: apogee_core::federated_outgoing::FEDERATION_PDU.into(),
        queue: Some("federation:peer.test".into()),
        payload: json!({"destination": "peer.test", "txn_id": format!("t{n}"),
            "pdu": {"n": n}}),
        created_at: Timestamp::from_millis(Timestamp::now().millis() - 10_000 + n),
        attempts: 0,
        last_error: None,
    }
}

fn numbers(body: &Value) -> Vec<i64> {
    body["pdus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["n"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_pdus_go_fifty_to_a_transaction_in_order_and_retries_repeat_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        apogee_store_sqlite::open(&dir.path().join("a.db"))
            .await
            .unwrap(),
    );
    let core = Core::start(store.clone(), Options::default())
        .await
        .unwrap();
    let peer = Arc::new(Peer::default());
    peer.failures_left.store(1, Ordering::SeqCst);
    let url = serve_peer(peer.clone()).await;
    let fed = Federation::start(
        core.clone(),
        &Settings {
            server_name: "ours.test".into(),
            resolve: vec![("peer.test".into(), url)],
            accept_invalid_certs: true,
            allow_private_addresses: true,
        },
    )
    .await
    .unwrap();
    // 60 events wait for the peer (the worker finds them at its next poll).
    store
        .commit((0..60).map(|n| Change::Enqueue(item(n))).collect())
        .await
        .unwrap();
    let sent = |k: usize| {
        let peer = peer.clone();
        move || peer.transactions.lock().unwrap().get(k).cloned()
    };
    let (first_txn, first) = wait_for("the first transaction", sent(0)).await;
    assert_eq!(numbers(&first), (0..50).collect::<Vec<_>>());
    assert_eq!(first["origin"], "ours.test");
    assert_eq!(first["edus"], json!([]));

    // It failed: the queue shows the failure and still holds everything.
    let health = || {
        let store = store.clone();
        async move { store.outbox_queue_health("federation:").await.unwrap()[0].clone() }
    };
    for _ in 0..100 {
        if health().await.attempts == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = health().await;
    assert_eq!(
        (h.queue.as_str(), h.length, h.attempts),
        ("federation:peer.test", 60, 1),
        "{h:?}"
    );
    assert!(h.last_error.as_deref().unwrap().contains("503"), "{h:?}");
    assert!(
        h.next_attempt_at.unwrap().millis() > Timestamp::now().millis() + 5_000,
        "backing off: {h:?}"
    );
    assert_eq!(h.last_success_at, None);

    // Tried again early (as when the peer is heard from): the same transaction, then the rest.
    assert!(core.retry_queue_now("federation:peer.test").await.unwrap());
    let (again_txn, again) = wait_for("the retry", sent(1)).await;
    assert_eq!(
        (again_txn.as_str(), numbers(&again)),
        (first_txn.as_str(), numbers(&first))
    );
    let (rest_txn, rest) = wait_for("the rest", sent(2)).await;
    assert_eq!(numbers(&rest), (50..60).collect::<Vec<_>>());
    assert_ne!(rest_txn, first_txn);
    for _ in 0..100 {
        if health().await.length == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = health().await;
    assert_eq!(
        (h.length, h.attempts, h.next_attempt_at),
        (0, 0, None),
        "{h:?}"
    );
    assert!(
        h.last_success_at.is_some() && h.last_failure_at.is_some(),
        "{h:?}"
    );

    // EDUs go on their own when no PDU is going, and ride with the next PDUs otherwise.
    fed.outgoing.push_edu(
        "peer.test",
        None,
        json!({"edu_type": "m.typing", "content": {"n": 1}}),
    );
    fed.flush_edus("peer.test").await;
    let (_, edus_only) = wait_for("the EDU", sent(3)).await;
    assert_eq!(
        (
            edus_only["pdus"].clone(),
            edus_only["edus"][0]["content"]["n"].clone()
        ),
        (json!([]), json!(1))
    );
    fed.outgoing.push_edu(
        "peer.test",
        None,
        json!({"edu_type": "m.receipt", "content": {"n": 2}}),
    );
    store.commit(vec![Change::Enqueue(item(60))]).await.unwrap();
    let (with_edu_txn, with_edu) = wait_for("PDU and EDU together", sent(4)).await;
    assert_eq!(numbers(&with_edu), vec![60]);
    assert_eq!(with_edu["edus"][0]["content"]["n"], 2);
    assert_ne!(with_edu_txn, "t60", "other contents, another txn id");
    assert_eq!(fed.outgoing.waiting_edus("peer.test"), 0);
}
