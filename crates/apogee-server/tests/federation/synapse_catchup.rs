//! Synapse catching up from a room made here: a Synapse user joins a federated channel of
//! ours, then Synapse goes away while the room goes on here (messages, a new name, a topic) and
//! our transactions to it are lost; when it is back, the next message lacks its predecessors
//! on Synapse, which fetches what it missed from us (`get_missing_events`, `state_ids`,
//! `event`, and `backfill` when its client pages back) — its view ends up with every message
//! and the new name.
//!
//! Our outbox never gives a PDU up, so a plain outage is caught up by our own retries (see
//! `outage.rs`). To make Synapse fetch, our transactions go through a proxy in the test that,
//! while Synapse is away, answers them with 200 and drops them.

use crate::common::backends;
use crate::invites::synapse_joined;
use crate::support::*;
use std::sync::atomic::AtomicBool;

/// A plain-HTTP proxy in front of a Synapse: forwards every request, except that while
/// `swallow` is set it answers transactions (`PUT …/send/…`) itself and drops them.
struct Proxy {
    url: String,
    swallow: Arc<AtomicBool>,
    swallowed: Arc<AtomicUsize>,
}

async fn proxy(to: &str) -> Proxy {
    let swallow = Arc::new(AtomicBool::new(false));
    let swallowed = Arc::new(AtomicUsize::new(0));
    let (flag, count, to) = (swallow.clone(), swallowed.clone(), to.to_string());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (flag, count, to, http) = (flag.clone(), count.clone(), to.clone(), http.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            if flag.load(Ordering::SeqCst)
                && parts.method == Method::PUT
                && parts.uri.path().starts_with("/_matrix/federation/v1/send/")
            {
                count.fetch_add(1, Ordering::SeqCst);
                return (StatusCode::OK, Bytes::from_static(b"{\"pdus\":{}}"));
            }
            let mut forward = http.request(parts.method.clone(), format!("{to}{path}"));
            for name in ["authorization", "content-type"] {
                if let Some(v) = parts.headers.get(name) {
                    forward = forward.header(name, v.as_bytes());
                }
            }
            match forward.body(body).send().await {
                Ok(answer) => (
                    StatusCode::from_u16(answer.status().as_u16()).unwrap(),
                    answer.bytes().await.unwrap_or_default(),
                ),
                Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Proxy {
        url,
        swallow,
        swallowed,
    }
}

/// Every event of the room Synapse's client can page back to (each page may make Synapse
/// backfill from us), oldest first.
async fn synapse_timeline(alice: &Matrix, room_id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..20 {
        let mut path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=30",
            enc(room_id)
        );
        if let Some(f) = &from {
            path.push_str(&format!("&from={}", enc(f)));
        }
        let v = alice.call(reqwest::Method::GET, &path, None).await;
        let chunk = v["chunk"].as_array().cloned().unwrap_or_default();
        all.extend(chunk.iter().cloned());
        match v["end"].as_str() {
            Some(end) if !chunk.is_empty() => from = Some(end.to_string()),
            _ => break,
        }
    }
    all.reverse();
    all
}

#[tokio::test]
async fn synapse_catches_up_from_a_room_made_here() {
    let Some(own) = OwnSynapse::new() else {
        return;
    };
    let alice = own.alice().await;
    let relay = proxy(&own.url).await;
    for backend in backends() {
        relay.swallow.store(false, Ordering::SeqCst);
        let resolve = format!("{}={}", own.name, relay.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let (status, v) = s
            .post(
                "/api/v1/channels.create",
                &bob,
                json!({"name": "catch-up", "extraData": {"federated": true, "topic": "first"}}),
            )
            .await;
        assert_eq!(status, 200, "{v}\n{}", federation_log(&s));
        let rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let room_id = v["channel"]["federation"]["mrid"]
            .as_str()
            .unwrap()
            .to_string();
        alice
            .call(
                reqwest::Method::POST,
                &format!(
                    "/_matrix/client/v3/join/{}?server_name={}",
                    enc(&room_id),
                    enc(&us)
                ),
                Some(json!({})),
            )
            .await;
        let post = |text: String| {
            let (s, bob, rid) = (&s, &bob, &rid);
            async move {
                s.post_ok(
                    "/api/v1/chat.postMessage",
                    bob,
                    json!({"roomId": rid, "text": text}),
                )
                .await;
            }
        };
        post("before".into()).await;
        wait_for_message(&s, &alice, &room_id, "before").await;

        // Synapse goes away; what we send it is lost on the way.
        relay.swallow.store(true, Ordering::SeqCst);
        own.stop();
        let lost: Vec<String> = (0..25).map(|i| format!("while away #{i}")).collect();
        for (i, text) in lost.iter().enumerate() {
            post(text.clone()).await;
            if i == 10 {
                s.post_ok(
                    "/api/v1/channels.rename",
                    &bob,
                    json!({"roomId": rid, "name": "caught-up"}),
                )
                .await;
            }
        }
        s.post_ok(
            "/api/v1/channels.setTopic",
            &bob,
            json!({"roomId": rid, "topic": "second"}),
        )
        .await;
        let server = &s;
        let (swallowed, admin) = (&relay.swallowed, &admin);
        eventually(server, "our transactions dropped", || async {
            let (_, v) = server.get("/api/v1/federation/destinations", admin).await;
            let empty = v["destinations"]
                .as_array()
                .is_some_and(|d| d.iter().all(|d| d["queueLength"] == 0));
            (empty && swallowed.load(Ordering::SeqCst) > 0).then_some(())
        })
        .await;

        // Synapse is back; the next message tells it what it missed.
        own.start();
        relay.swallow.store(false, Ordering::SeqCst);
        post("after".into()).await;
        wait_for_message(&s, &alice, &room_id, "after").await;
        let state = alice
            .call(
                reqwest::Method::GET,
                &format!("/_matrix/client/v3/rooms/{}/state", enc(&room_id)),
                None,
            )
            .await;
        let content = |t: &str| {
            state
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == t)
                .map(|e| e["content"].clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(content("m.room.name")["name"], "caught-up", "{state}");
        assert_eq!(content("m.room.topic")["topic"], "second", "{state}");
        // Every message, once, in order, as Synapse's client pages back.
        let timeline = synapse_timeline(&alice, &room_id).await;
        let bodies: Vec<&str> = timeline
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str())
            .collect();
        let mut expected = vec!["before"];
        expected.extend(lost.iter().map(String::as_str));
        expected.push("after");
        let log = federation_log(&s);
        assert_eq!(bodies, expected, "{log}");
        // It fetched what it missed from us (which way is its choice).
        let served = |what: &str| {
            log.lines().any(|l| {
                l.contains("catch-up served") && l.contains(what) && l.contains("status=200")
            })
        };
        assert!(
            ["get_missing_events", "state_ids", "backfill"]
                .iter()
                .any(|w| served(w)),
            "{log}"
        );
        eprintln!(
            "Synapse caught up with: {:?}",
            [
                "get_missing_events",
                "state_ids",
                "state/",
                "event/",
                "event_auth",
                "backfill"
            ]
            .iter()
            .filter(|w| served(w))
            .collect::<Vec<_>>()
        );
        let joined = synapse_joined(&alice, &room_id).await;
        assert!(joined[format!("@bob:{us}")].is_object(), "{joined}");
        // alice leaves, so the next backend's Synapse room is a new one.
        alice
            .call(
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/rooms/{}/leave", enc(&room_id)),
                Some(json!({})),
            )
            .await;
        drop(s);
    }
}
