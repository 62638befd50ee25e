//! Catch-up, both ways, against the test's own homeserver (`fake_homeserver`): what Apogee
//! serves (`event`, `state`, `state_ids`, `event_auth`, `backfill`, `get_missing_events`) and
//! to whom, and what it fetches when a PDU arrives after a gap or without its auth events.

use crate::common::{Auth, backends};
use crate::fake_homeserver::{FakeHomeserver, signed_call};
use crate::support::*;

/// Apogee joined to the fake server's room: (server, federation port, bob, the room's rid).
pub(crate) async fn joined(
    backend: crate::common::Backend,
    fake: &FakeHomeserver,
    extra: &str,
) -> (Server, u16, Auth, String) {
    let resolve = format!("{}={}{extra}", fake.name, fake.url);
    let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
    let _admin = s.user("admin").await;
    let bob = s.user("bob").await;
    let (status, v) = s
        .post(
            "/api/v1/federation/joinExternalPublicRoom",
            &bob,
            json!({"externalRoomId": fake.room_id}),
        )
        .await;
    assert_eq!(status, 200, "{v}\n{}", federation_log(&s));
    let rid = v["room"]["_id"].as_str().unwrap().to_string();
    (s, port, bob, rid)
}

async fn texts(s: &Server, bob: &Auth, rid: &str) -> Vec<String> {
    let (_, v) = s
        .get(
            &format!("/api/v1/channels.messages?roomId={rid}&count=100&sort={{\"ts\":1}}"),
            bob,
        )
        .await;
    let mut messages: Vec<(String, String)> = v["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|m| m["t"].is_null())
        .map(|m| {
            (
                m["ts"].as_str().unwrap_or("").to_string(),
                m["msg"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    messages.sort();
    messages.into_iter().map(|(_, m)| m).collect()
}

fn message(text: &str) -> Value {
    json!({"msgtype": "m.text", "body": text})
}

/// A server with a member in the room gets events, the state at an event, auth chains,
/// backfill and missing events; another server, an unknown room or event, and missing
/// parameters are refused.
#[tokio::test]
async fn catch_up_is_served_to_servers_in_the_room() {
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let other = peer("other.test").await;
        let (s, port, bob, rid) =
            joined(backend, &fake, &format!(",other.test={}", other.url)).await;
        let alice = fake.alice.clone();
        let (first, pdu) = fake.build("m.room.message", None, &alice, message("first"));
        let answers = fake.send(port, vec![pdu]).await;
        assert_eq!(answers[&first], json!({}), "{answers}");
        eventually(&s, "the first message", || async {
            texts(&s, &bob, &rid)
                .await
                .contains(&"first".to_string())
                .then_some(())
        })
        .await;
        let room = enc(&fake.room_id);
        let state_ids: Vec<String> = fake.room.lock().unwrap().state.values().cloned().collect();

        // The event itself, as stored (same content, same reference hash).
        let target = format!("/_matrix/federation/v1/event/{}", enc(&first));
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["pdus"][0]["content"]["body"], "first", "{v}");
        assert_eq!(v["origin"], format!("localhost:{port}"), "{v}");

        // The state before it: the room's state with bob's join, and its auth chain.
        let target = format!(
            "/_matrix/federation/v1/state_ids/{room}?event_id={}",
            enc(&first)
        );
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(status, 200, "{v}");
        let mut got: Vec<String> = serde_json::from_value(v["pdu_ids"].clone()).unwrap();
        let mut want = state_ids.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{v}");
        let create =
            fake.room.lock().unwrap().state[&("m.room.create".to_string(), String::new())].clone();
        assert!(
            v["auth_chain_ids"]
                .as_array()
                .unwrap()
                .contains(&json!(create)),
            "{v}"
        );
        let target = format!(
            "/_matrix/federation/v1/state/{room}?event_id={}",
            enc(&first)
        );
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["pdus"].as_array().unwrap().len(), want.len(), "{v}");
        assert!(
            v["pdus"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["state_key"] == format!("@bob:localhost:{port}")),
            "{v}"
        );

        // Its auth chain: create, power levels, alice's join and what authorised those.
        let target = format!("/_matrix/federation/v1/event_auth/{room}/{}", enc(&first));
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(status, 200, "{v}");
        let types: Vec<&str> = v["auth_chain"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        assert!(
            types.contains(&"m.room.create")
                && types.contains(&"m.room.power_levels")
                && types.contains(&"m.room.member"),
            "{v}"
        );
        assert!(!types.contains(&"m.room.message"), "{v}");

        // Backfill from it: itself, then bob's join, newest first, as many as asked.
        let target = format!(
            "/_matrix/federation/v1/backfill/{room}?v={}&limit=2",
            enc(&first)
        );
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(status, 200, "{v}");
        let pdus = v["pdus"].as_array().unwrap();
        assert_eq!(pdus.len(), 2, "{v}");
        assert_eq!(pdus[0]["content"]["body"], "first", "{v}");
        assert_eq!(pdus[1]["content"]["membership"], "join", "{v}");
        assert_eq!(pdus[1]["sender"], format!("@bob:localhost:{port}"), "{v}");

        // Missing events between the history visibility event and the message: bob's join.
        let hv = state_ids
            .iter()
            .find(|id| fake.room.lock().unwrap().events[*id]["type"] == "m.room.history_visibility")
            .unwrap()
            .clone();
        let target = format!("/_matrix/federation/v1/get_missing_events/{room}");
        let (status, v) = fake
            .call(
                port,
                Method::POST,
                &target,
                Some(json!({"earliest_events": [hv], "latest_events": [first], "limit": 10})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{v}");
        assert_eq!(events[0]["content"]["membership"], "join", "{v}");

        // Refused: a server with no member in the room, an unknown room or event, no event_id.
        for target in [
            format!("/_matrix/federation/v1/event/{}", enc(&first)),
            format!(
                "/_matrix/federation/v1/state_ids/{room}?event_id={}",
                enc(&first)
            ),
            format!("/_matrix/federation/v1/event_auth/{room}/{}", enc(&first)),
            format!(
                "/_matrix/federation/v1/backfill/{room}?v={}&limit=5",
                enc(&first)
            ),
        ] {
            let (status, v) = signed_call(&other.identity, port, Method::GET, &target, None).await;
            assert_eq!(
                (status.as_u16(), v["errcode"].as_str()),
                (403, Some("M_FORBIDDEN")),
                "{target}: {v}"
            );
        }
        let unknown_room = enc("!nowhere:peer.test");
        for (target, code) in [
            (
                format!(
                    "/_matrix/federation/v1/state_ids/{unknown_room}?event_id={}",
                    enc(&first)
                ),
                404,
            ),
            (
                format!("/_matrix/federation/v1/event/{}", enc("$unknown")),
                404,
            ),
            (
                format!(
                    "/_matrix/federation/v1/state_ids/{room}?event_id={}",
                    enc("$unknown")
                ),
                404,
            ),
            (format!("/_matrix/federation/v1/state_ids/{room}"), 400),
            (
                format!("/_matrix/federation/v1/backfill/{room}?limit=5"),
                400,
            ),
        ] {
            let (status, v) = fake.call(port, Method::GET, &target, None).await;
            assert_eq!(status.as_u16(), code, "{target}: {v}");
        }
        // Unsigned: 401.
        let (status, _) = fed_get(
            port,
            &format!("/_matrix/federation/v1/event/{}", enc(&first)),
            None,
        )
        .await;
        assert_eq!(status, 401);
        drop(s);
    }
}

/// A PDU after a gap makes Apogee fetch the gap from its sender and show it in order; a
/// forged event in the answer is dropped (and what depends on it); a PDU whose auth events
/// are unknown (a member who joined unseen) has its auth chain fetched and checked.
#[tokio::test]
async fn gaps_and_missing_auth_events_are_fetched() {
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let (s, port, bob, rid) = joined(backend, &fake, "").await;
        let alice = fake.alice.clone();

        // Three messages Apogee never got, then a fourth sent to it.
        for text in ["gap one", "gap two", "gap three"] {
            fake.build("m.room.message", None, &alice, message(text));
        }
        let (fourth, pdu) = fake.build("m.room.message", None, &alice, message("after the gap"));
        let answers = fake.send(port, vec![pdu]).await;
        assert_eq!(answers[&fourth], json!({}), "{answers}");
        let shown = texts(&s, &bob, &rid).await;
        assert_eq!(
            shown,
            ["gap one", "gap two", "gap three", "after the gap"],
            "{}",
            federation_log(&s)
        );
        assert_eq!(fake.room.lock().unwrap().gap_requests, 1);

        // A gap whose middle event is forged (changed after signing): it is refused, and so
        // are the events after it, which it would authorise as their predecessor; the last
        // event is still checked on its own against the room's state.
        let (_, _) = fake.build("m.room.message", None, &alice, message("before forgery"));
        let (forged, _) = fake.build("m.room.message", None, &alice, message("original"));
        fake.room.lock().unwrap().tampered.insert(forged.clone());
        let (last, pdu) = fake.build("m.room.message", None, &alice, message("after forgery"));
        let answers = fake.send(port, vec![pdu]).await;
        assert_eq!(answers[&last], json!({}), "{answers}");
        let shown = texts(&s, &bob, &rid).await;
        assert!(shown.contains(&"before forgery".to_string()), "{shown:?}");
        // The forged copy fails its content hash: only its redacted form could be kept, with
        // no body, so nothing "tampered" is ever shown.
        assert!(!shown.iter().any(|m| m.contains("tampered")), "{shown:?}");
        assert!(shown.contains(&"after forgery".to_string()), "{shown:?}");

        // carol joins unseen, then more than a gap's worth of messages pass: the gap fetch
        // brings the newest ten; the oldest of those lacks its predecessor, so Apogee asks
        // for the state before it (state_ids, then each event it lacks) and learns carol's
        // join from it. Her message is then shown; the message beyond the gap is not.
        let carol = "@carol:peer.test".to_string();
        fake.build(
            "m.room.member",
            Some(&carol),
            &carol,
            json!({"membership": "join"}),
        );
        for n in 1..=11 {
            fake.build("m.room.message", None, &alice, message(&format!("far {n}")));
        }
        let (hello, pdu) = fake.build("m.room.message", None, &carol, message("carol here"));
        let answers = fake.send(port, vec![pdu]).await;
        assert_eq!(
            answers[&hello],
            json!({}),
            "{answers}\n{}",
            federation_log(&s)
        );
        assert!(fake.room.lock().unwrap().state_requests >= 1);
        let shown = texts(&s, &bob, &rid).await;
        let far: Vec<String> = (2..=11).map(|n| format!("far {n}")).collect();
        assert!(far.iter().all(|m| shown.contains(m)), "{shown:?}");
        assert!(!shown.contains(&"far 1".to_string()), "{shown:?}");
        assert_eq!(
            shown.last().map(String::as_str),
            Some("carol here"),
            "{shown:?}"
        );
        // Joined only in the state learnt beyond the gap, she is a member here too.
        let members = crate::invites::member_names(&s, &bob, "channels", &rid).await;
        assert!(members.contains(&carol), "{members:?}");

        // dave joins on a branch Apogee never sees and writes after carol: his join is
        // fetched through event_auth, checked and kept, but the state before his message
        // (after carol's) has no dave, so the message is rejected.
        let dave = "@dave:peer.test".to_string();
        let (dave_join, _) = fake.build_after(
            "m.room.member",
            Some(&dave),
            &dave,
            json!({"membership": "join"}),
            std::slice::from_ref(&hello),
        );
        let (dave_hello, pdu) = fake.build_after(
            "m.room.message",
            None,
            &dave,
            message("dave here"),
            std::slice::from_ref(&hello),
        );
        let auth_before = fake.room.lock().unwrap().auth_requests;
        let answers = fake.send(port, vec![pdu]).await;
        assert!(answers[&dave_hello]["error"].is_string(), "{answers}");
        assert_eq!(fake.room.lock().unwrap().auth_requests, auth_before + 1);
        assert!(
            !texts(&s, &bob, &rid)
                .await
                .contains(&"dave here".to_string())
        );
        let target = format!("/_matrix/federation/v1/event/{}", enc(&dave_join));
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(
            (status.as_u16(), &v["pdus"][0]["state_key"]),
            (200, &json!(dave)),
            "{v}"
        );

        // erin's join is forged (its signature broken): the auth chain answer is refused,
        // her message is answered with an error and nothing of either is kept.
        let erin = "@erin:peer.test".to_string();
        let (erin_join, _) = fake.build_after(
            "m.room.member",
            Some(&erin),
            &erin,
            json!({"membership": "join"}),
            std::slice::from_ref(&hello),
        );
        {
            let mut room = fake.room.lock().unwrap();
            let pdu = room.events.get_mut(&erin_join).unwrap();
            pdu["signatures"] = json!({"peer.test": {"ed25519:fake1": "AAAA"}});
        }
        let (erin_hello, pdu) = fake.build_after(
            "m.room.message",
            None,
            &erin,
            message("erin here"),
            std::slice::from_ref(&hello),
        );
        let answers = fake.send(port, vec![pdu]).await;
        assert!(answers[&erin_hello]["error"].is_string(), "{answers}");
        assert!(
            !texts(&s, &bob, &rid)
                .await
                .contains(&"erin here".to_string())
        );
        for id in [&erin_join, &erin_hello] {
            let target = format!("/_matrix/federation/v1/event/{}", enc(id));
            let (status, _) = fake.call(port, Method::GET, &target, None).await;
            assert_eq!(status, 404, "nothing of a forged chain is kept");
        }
        drop(s);
    }
}

/// Forks: two conflicting state events on two branches are resolved (state resolution v2),
/// not "last applied wins"; a member banned on one branch has her message on the other
/// branch soft-failed against the resolved state.
#[tokio::test]
async fn forked_state_is_resolved() {
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let (s, port, bob, rid) = joined(backend, &fake, "").await;
        let alice = fake.alice.clone();
        let carol = "@carol:peer.test".to_string();
        let (carol_join, pdu) = fake.build(
            "m.room.member",
            Some(&carol),
            &carol,
            json!({"membership": "join"}),
        );
        assert_eq!(fake.send(port, vec![pdu]).await[&carol_join], json!({}));
        let fork = vec![carol_join.clone()];

        // Two history visibility changes by alice, one per branch; the older one arrives
        // last. Resolution orders them by power, then time: the newer one wins.
        let (older, older_pdu) = fake.build_after(
            "m.room.history_visibility",
            Some(""),
            &alice,
            json!({"history_visibility": "invited"}),
            &fork,
        );
        let (newer, newer_pdu) = fake.build_after(
            "m.room.history_visibility",
            Some(""),
            &alice,
            json!({"history_visibility": "joined"}),
            &fork,
        );
        let answers = fake.send(port, vec![newer_pdu]).await;
        assert_eq!(answers[&newer], json!({}), "{answers}");
        let answers = fake.send(port, vec![older_pdu]).await;
        assert_eq!(answers[&older], json!({}), "{answers}");
        let (merge, pdu) = fake.build_after(
            "m.room.message",
            None,
            &alice,
            message("merged"),
            &[older.clone(), newer.clone()],
        );
        assert_eq!(fake.send(port, vec![pdu]).await[&merge], json!({}));
        let room = enc(&fake.room_id);
        let target = format!(
            "/_matrix/federation/v1/state_ids/{room}?event_id={}",
            enc(&merge)
        );
        let (status, v) = fake.call(port, Method::GET, &target, None).await;
        assert_eq!(status, 200, "{v}");
        let ids = v["pdu_ids"].as_array().unwrap();
        assert!(
            ids.contains(&json!(newer)) && !ids.contains(&json!(older)),
            "{v}\nnewer {newer}"
        );

        // alice bans carol on one branch; carol writes on another, forked before the ban.
        let base = vec![merge.clone()];
        let (ban, ban_pdu) = fake.build_after(
            "m.room.member",
            Some(&carol),
            &alice,
            json!({"membership": "ban"}),
            &base,
        );
        // carol's auth events still hold her join (her branch has not seen the ban).
        let (sneaky, sneaky_pdu) = {
            let prevs = base.clone();
            let auth = {
                let room = fake.room.lock().unwrap();
                let get = |t: &str, k: &str| room.state[&(t.to_string(), k.to_string())].clone();
                vec![
                    get("m.room.create", ""),
                    get("m.room.power_levels", ""),
                    carol_join.clone(),
                ]
            };
            let depth = fake.room.lock().unwrap().events[&merge]["depth"]
                .as_i64()
                .unwrap()
                + 1;
            crate::fake_homeserver::sign(
                &fake.identity,
                json!({"type": "m.room.message", "room_id": fake.room_id, "sender": carol,
                    "content": message("after the ban"), "prev_events": prevs,
                    "auth_events": auth, "depth": depth}),
            )
        };
        assert_eq!(fake.send(port, vec![ban_pdu]).await[&ban], json!({}));
        let answers = fake.send(port, vec![sneaky_pdu]).await;
        assert_eq!(
            answers[&sneaky],
            json!({}),
            "soft-failed, not refused: {answers}"
        );
        let shown = texts(&s, &bob, &rid).await;
        assert!(shown.contains(&"merged".to_string()), "{shown:?}");
        assert!(!shown.contains(&"after the ban".to_string()), "{shown:?}");
        drop(s);
    }
}

/// Answers every request on `port` over TLS with `200 {"pdus": {}}` and closes the
/// connection: to a sender its transactions were delivered, yet the events are lost. Counts
/// the requests.
async fn black_hole(port: u16) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = apogee_federation::tls::self_signed_pair(dir.path(), "localhost").unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let task = tokio::spawn(async move {
        let _dir = dir;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_req| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("Content-Type", "application/json")
                                .body(http_body_util::Full::new(Bytes::from_static(
                                    b"{\"pdus\":{}}",
                                )))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (task, count)
}

/// Against a real Synapse: while Apogee is down, something else on its port takes Synapse's
/// transactions and drops them (three messages lost). After the restart the next message from
/// Synapse points back to events Apogee never got, so Apogee asks Synapse for the gap
/// (`get_missing_events`, answered and signed by Synapse) and shows all of them, in order.
#[tokio::test]
async fn synapse_gap_is_fetched_after_lost_events() {
    let Some(Synapse {
        url: synapse,
        name: synapse_name,
        alice_id: _,
        alice,
    }) = synapse().await
    else {
        return;
    };
    for backend in backends() {
        let resolve = format!("{synapse_name}={synapse}");
        let port = free_port();
        let name = format!("localhost:{port}");
        let listen = format!("127.0.0.1:{port}");
        let env = [
            ("APOGEE_SERVER_NAME", name.as_str()),
            ("APOGEE_FEDERATION_LISTEN", listen.as_str()),
            ("APOGEE_FEDERATION_RESOLVE", resolve.as_str()),
        ];
        let s = Server::start_with(backend, &env).await;
        wait_for_federation(port).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let room_id = synapse_room(&alice, "12", "Gap").await;
        let (rid, _) = join_via(&s, &bob, &room_id, &synapse_name).await;
        alice
            .send(&room_id, "m.room.message", message("before the outage"))
            .await;
        eventually(&s, "the first message", || async {
            texts(&s, &bob, &rid)
                .await
                .contains(&"before the outage".to_string())
                .then_some(())
        })
        .await;

        let (dir, db) = s.crash();
        let (hole, taken) = black_hole(port).await;
        for n in 1..=3 {
            alice
                .send(
                    &room_id,
                    "m.room.message",
                    message(&format!("while down {n}")),
                )
                .await;
            // One transaction each, all swallowed.
            for _ in 0..300 {
                if taken.load(Ordering::SeqCst) >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                taken.load(Ordering::SeqCst) >= n,
                "Synapse never sent to us"
            );
        }
        hole.abort();
        let _ = hole.await;
        let s = Server::start_in(backend, dir, &env, db).await;
        wait_for_federation(port).await;
        alice
            .send(&room_id, "m.room.message", message("after the outage"))
            .await;
        let want: Vec<String> = [
            "before the outage",
            "while down 1",
            "while down 2",
            "while down 3",
            "after the outage",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        eventually(&s, "the lost messages", || async {
            (texts(&s, &bob, &rid).await == want).then_some(())
        })
        .await;
        assert!(
            federation_log(&s).contains("filling a gap"),
            "{}",
            federation_log(&s)
        );
        drop(s);
    }
}

/// The Rocket.Chat side follows the resolved state: two names set by alice on two branches,
/// the older arriving last — the room keeps the newer one, which wins the resolution.
#[tokio::test]
async fn a_name_losing_the_resolution_is_not_followed() {
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let (s, port, bob, rid) = joined(backend, &fake, "").await;
        let alice = fake.alice.clone();
        let (hello, pdu) = fake.build("m.room.message", None, &alice, message("hello"));
        assert_eq!(fake.send(port, vec![pdu]).await[&hello], json!({}));
        let base = vec![hello];
        let (older, older_pdu) = fake.build_after(
            "m.room.name",
            Some(""),
            &alice,
            json!({"name": "Older"}),
            &base,
        );
        let (newer, newer_pdu) = fake.build_after(
            "m.room.name",
            Some(""),
            &alice,
            json!({"name": "Newer"}),
            &base,
        );
        let name = || async {
            let (_, v) = s
                .get(&format!("/api/v1/channels.info?roomId={rid}"), &bob)
                .await;
            v["channel"]["fname"].as_str().unwrap_or("").to_string()
        };
        assert_eq!(fake.send(port, vec![newer_pdu]).await[&newer], json!({}));
        assert_eq!(name().await, "Newer");
        assert_eq!(fake.send(port, vec![older_pdu]).await[&older], json!({}));
        assert_eq!(name().await, "Newer", "{}", federation_log(&s));
        let (_, sub) = s
            .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
            .await;
        assert_eq!(sub["subscription"]["fname"], "Newer", "{sub}");
        drop(s);
    }
}
