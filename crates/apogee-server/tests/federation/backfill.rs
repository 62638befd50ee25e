//! Backfill for local readers, against a real Synapse: what was said in a Synapse room before
//! our user joined is read here by paging back, once, in order, never unread; a room whose
//! history visibility is `joined` shows none of it.

use crate::common::backends;
use crate::common::ddp::Ddp;
use crate::support::*;

/// Every message of a channel's history, paging back with `channels.history` `count` at a
/// time (oldest first in the answer).
pub(crate) async fn read_back(
    s: &Server,
    auth: &common::Auth,
    rid: &str,
    count: usize,
) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut latest: Option<String> = None;
    for _ in 0..20 {
        let mut path = format!("/api/v1/channels.history?roomId={rid}&count={count}");
        if let Some(l) = &latest {
            path.push_str(&format!("&latest={}", enc(l)));
        }
        let (status, v) = s.get(&path, auth).await;
        assert_eq!(status, 200, "{v}");
        let page = v["messages"].as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else { break };
        latest = Some(last["ts"].as_str().unwrap().to_string());
        // A page may be longer than `count`: it ends with the whole of its last millisecond.
        let full = page.len() >= count;
        all.extend(page);
        if !full {
            break;
        }
    }
    all.reverse();
    all
}

#[tokio::test]
async fn history_before_our_join_is_backfilled_for_readers() {
    let Some(Synapse {
        url: synapse,
        name: synapse_name,
        alice_id,
        alice,
    }) = synapse().await
    else {
        return;
    };
    for backend in backends() {
        let resolve = format!("{synapse_name}={synapse}");
        let (s, _port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        for version in ["11", "12"] {
            // alice talks in her room (history visibility `shared`, Synapse's default) before
            // bob is there: more than two pages of it.
            let room_id = synapse_room(&alice, version, &format!("Backfill v{version}")).await;
            let said: Vec<String> = (0..45).map(|i| format!("before v{version} #{i}")).collect();
            let mut event_ids = Vec::new();
            for text in &said {
                event_ids.push(
                    alice
                        .send(
                            &room_id,
                            "m.room.message",
                            json!({"msgtype": "m.text", "body": text}),
                        )
                        .await,
                );
            }
            let (rid, _) = join_via(&s, &bob, &room_id, &synapse_name).await;

            // Paging back reads all of it, in order, once, as alice's, with its event ids.
            let history = read_back(&s, &bob, &rid, 20).await;
            let texts: Vec<&str> = history
                .iter()
                .filter(|m| m["t"].is_null())
                .filter_map(|m| m["msg"].as_str())
                .collect();
            assert_eq!(
                texts,
                said.iter().map(String::as_str).collect::<Vec<_>>(),
                "v{version}\n{}",
                federation_log(&s)
            );
            for (m, event_id) in history.iter().filter(|m| m["t"].is_null()).zip(&event_ids) {
                assert_eq!(m["u"]["username"], alice_id.as_str(), "{m}");
                assert_eq!(m["federation"]["eventId"], event_id.as_str(), "{m}");
            }
            // Reading again fetches nothing twice.
            let again = read_back(&s, &bob, &rid, 7).await;
            assert_eq!(again.len(), history.len(), "v{version}");
            // None of it is unread, nor the room's last message.
            let (_, sub) = s
                .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
                .await;
            assert_eq!(sub["subscription"]["unread"], 0, "{sub}");
            let (_, info) = s
                .get(&format!("/api/v1/channels.info?roomId={rid}"), &bob)
                .await;
            let last = info["channel"]["lastMessage"]["msg"].as_str().unwrap_or("");
            assert!(!last.starts_with("before"), "{info}");

            // A message after the join still arrives live, newest.
            alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": format!("after v{version}")}),
                )
                .await;
            let server = &s;
            eventually(server, "the live message", || async {
                let (_, v) = server
                    .get(
                        &format!("/api/v1/channels.history?roomId={rid}&count=1"),
                        &bob,
                    )
                    .await;
                (v["messages"][0]["msg"] == format!("after v{version}").as_str()).then_some(())
            })
            .await;
        }

        // A room whose history is for joined members only: nothing of before the join shows.
        let created = alice
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(
                    json!({"preset": "public_chat", "room_version": "11", "name": "Private past",
                    "initial_state": [{"type": "m.room.history_visibility", "state_key": "",
                        "content": {"history_visibility": "joined"}}]}),
                ),
            )
            .await;
        let room_id = created["room_id"].as_str().unwrap().to_string();
        for i in 0..5 {
            alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": format!("secret #{i}")}),
                )
                .await;
        }
        let (rid, _) = join_via(&s, &bob, &room_id, &synapse_name).await;
        let history = read_back(&s, &bob, &rid, 20).await;
        assert!(
            history
                .iter()
                .all(|m| !m["msg"].as_str().unwrap_or("").starts_with("secret")),
            "{history:?}"
        );
    }
}

/// A server's backfill answer with forged events, against the test's own homeserver: an event
/// of another room, one whose body was changed after signing, a validly signed event that is
/// not in the history asked for, and a non-member's message in the history — none shows, and
/// none but the tampered one (kept redacted, as for any event) is stored; the genuine history
/// around them shows in order.
#[tokio::test]
async fn forged_backfilled_events_are_dropped() {
    use crate::catchup::joined;
    use crate::fake_homeserver::{FakeHomeserver, sign};
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let alice = fake.alice.clone();
        let say = |text: &str| json!({"msgtype": "m.text", "body": text});
        let mut early = Vec::new();
        for i in 0..4 {
            early.push(
                fake.build("m.room.message", None, &alice, say(&format!("early {i}")))
                    .0,
            );
        }
        // Changed after signing: only its redacted form (no body) can be kept.
        fake.room.lock().unwrap().tampered.insert(early[2].clone());
        // A stranger's message in the room's history: the auth rules reject it.
        let (intruder, _) = fake.build("m.room.message", None, "@eve:peer.test", say("intruder"));
        let (last, _) = fake.build("m.room.message", None, &alice, say("early 4"));
        let create = {
            let room = fake.room.lock().unwrap();
            room.state[&("m.room.create".to_string(), String::new())].clone()
        };
        let forged = |room_id: &str, text: &str| {
            sign(
                &fake.identity,
                json!({"type": "m.room.message", "room_id": room_id, "sender": alice,
                    "content": say(text), "prev_events": [create], "auth_events": [create],
                    "depth": 2}),
            )
        };
        let (other_room, other_pdu) = forged("!elsewhere:peer.test", "other room");
        let (injected, injected_pdu) = forged(&fake.room_id, "injected");
        fake.room
            .lock()
            .unwrap()
            .backfill_extra
            .extend([other_pdu, injected_pdu]);

        let (s, port, bob, rid) = joined(backend, &fake, "").await;
        // DDP's loadHistory reaches the history before the join as well.
        let mut ddp = Ddp::connect(&s).await;
        ddp.resume(&bob).await;
        let r = ddp.call("loadHistory", json!([rid, null, 50])).await;
        let mut loaded: Vec<&str> = r["result"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["t"].is_null())
            .filter_map(|m| m["msg"].as_str())
            .collect();
        loaded.reverse();
        assert_eq!(loaded, ["early 0", "early 1", "early 3", "early 4"], "{r}");
        let history = read_back(&s, &bob, &rid, 3).await;
        let texts: Vec<&str> = history
            .iter()
            .filter(|m| m["t"].is_null())
            .filter_map(|m| m["msg"].as_str())
            .collect();
        assert_eq!(
            texts,
            ["early 0", "early 1", "early 3", "early 4"],
            "{}",
            federation_log(&s)
        );
        assert!(fake.room.lock().unwrap().backfill_requests > 0);
        // What is stored, as the room's server may ask of us.
        let stored = |id: String| {
            let fake = &fake;
            async move {
                let target = format!("/_matrix/federation/v1/event/{}", enc(&id));
                fake.call(port, Method::GET, &target, None).await.0
            }
        };
        for id in [&early[0], &early[1], &early[3], &last] {
            assert_eq!(stored(id.clone()).await, StatusCode::OK, "{id}");
        }
        for id in [&intruder, &other_room, &injected] {
            assert_eq!(stored(id.clone()).await, StatusCode::NOT_FOUND, "{id}");
        }
        let (status, tampered) = fake
            .call(
                port,
                Method::GET,
                &format!("/_matrix/federation/v1/event/{}", enc(&early[2])),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            tampered["pdus"][0]["content"].get("body").is_none(),
            "{tampered}"
        );
        drop(s);
    }
}
