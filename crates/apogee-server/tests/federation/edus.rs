//! Ephemeral events shared with a real Synapse, both ways: typing (`m.typing` ⇄ the room's
//! `user-activity` stream) and read receipts (`m.receipt` out when an Apogee user reads the
//! room; in, the Synapse user's read state as Rocket.Chat's read receipts show it).

use crate::common::backends;
use crate::common::ddp::Ddp;
use crate::support::*;

/// alice's view of the room's ephemeral events (an initial sync: the current typing and
/// receipt state). Synapse answers the same initial sync from a cache for two minutes, so each
/// call names a filter of its own.
async fn ephemeral(alice: &Matrix, room_id: &str) -> Vec<Value> {
    let filter = json!({"room": {"rooms": [room_id], "timeline": {"limit": 1}},
        "presence": {"not_types": [apogee_domain::random_id()]}});
    let path = format!(
        "/_matrix/client/v3/sync?timeout=0&filter={}",
        enc(&filter.to_string())
    );
    let v = alice.call(reqwest::Method::GET, &path, None).await;
    v["rooms"]["join"][room_id]["ephemeral"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn typing_users(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "m.typing")
        .flat_map(|e| {
            e["content"]["user_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|u| u.as_str().map(str::to_string))
        .collect()
}

async fn next_activity(ddp: &mut Ddp, activity: &str) -> Value {
    tokio::time::timeout(
        Duration::from_secs(30),
        ddp.until(|v| v["fields"]["eventName"] == activity),
    )
    .await
    .expect("a user-activity event within 30 s")["fields"]["args"]
        .clone()
}

#[tokio::test]
async fn typing_and_read_receipts_cross_both_ways() {
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
        let (s, port) = start(
            backend,
            &[
                ("APOGEE_FEDERATION_RESOLVE", &resolve),
                ("OVERWRITE_SETTING_Message_Read_Receipt_Enabled", "true"),
                ("OVERWRITE_SETTING_Message_Read_Receipt_Store_Users", "true"),
            ],
        )
        .await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:localhost:{port}");
        let room_id = synapse_room(&alice, "11", "EDUs").await;
        let (rid, _) = join_via(&s, &bob, &room_id, &synapse_name).await;
        let mut ddp = Ddp::connect(&s).await;
        ddp.resume(&bob).await;
        let activity = format!("{rid}/user-activity");
        assert_eq!(
            ddp.sub("stream-notify-room", &activity).await["msg"],
            "ready"
        );

        // alice types on Synapse: bob's client sees her typing, then stopping.
        let typing_path = format!(
            "/_matrix/client/v3/rooms/{}/typing/{}",
            enc(&room_id),
            enc(&alice_id)
        );
        alice
            .call(
                reqwest::Method::PUT,
                &typing_path,
                Some(json!({"typing": true, "timeout": 30000})),
            )
            .await;
        let args = next_activity(&mut ddp, &activity).await;
        assert_eq!(args, json!([alice_id, ["user-typing"], {}]));
        alice
            .call(
                reqwest::Method::PUT,
                &typing_path,
                Some(json!({"typing": false})),
            )
            .await;
        let args = next_activity(&mut ddp, &activity).await;
        assert_eq!(args, json!([alice_id, [], {}]));

        // bob types on Apogee: alice sees him typing, then stopping.
        let r = ddp
            .call(
                "stream-notify-room",
                json!([activity, "bob", ["user-typing"], {}]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        eventually(&s, "bob typing on Synapse", || async {
            typing_users(&ephemeral(&alice, &room_id).await)
                .contains(&bob_id)
                .then_some(())
        })
        .await;
        let r = ddp
            .call("stream-notify-room", json!([activity, "bob", [], {}]))
            .await;
        assert!(r.get("error").is_none(), "{r}");
        eventually(&s, "bob no longer typing on Synapse", || async {
            (!typing_users(&ephemeral(&alice, &room_id).await).contains(&bob_id)).then_some(())
        })
        .await;

        // bob writes and reads the room: alice's server gets his receipt.
        let (status, sent) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "read me"}),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
        let mid = sent["message"]["_id"].as_str().unwrap().to_string();
        let event_id = sent["message"]["federation"]["eventId"]
            .as_str()
            .unwrap()
            .to_string();
        eventually(&s, "bob's message on Synapse", || async {
            alice
                .messages(&room_id)
                .await
                .iter()
                .any(|e| e["event_id"] == event_id.as_str())
                .then_some(())
        })
        .await;
        let (status, v) = s
            .post("/api/v1/subscriptions.read", &bob, json!({"rid": rid}))
            .await;
        assert_eq!(status, 200, "{v}");
        eventually(&s, "bob's receipt on Synapse", || async {
            ephemeral(&alice, &room_id)
                .await
                .iter()
                .filter(|e| e["type"] == "m.receipt")
                .any(|e| e["content"][&event_id]["m.read"][&bob_id].is_object())
                .then_some(())
        })
        .await;

        // alice reads bob's message on Synapse: Apogee lists her among its readers.
        let readers = || async {
            let (status, v) = s
                .get(
                    &format!("/api/v1/chat.getMessageReadReceipts?messageId={mid}"),
                    &bob,
                )
                .await;
            assert_eq!(status, 200, "{v}");
            v["receipts"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r["user"]["username"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        };
        assert!(!readers().await.contains(&alice_id), "not read yet");
        alice
            .call(
                reqwest::Method::POST,
                &format!(
                    "/_matrix/client/v3/rooms/{}/receipt/m.read/{}",
                    enc(&room_id),
                    enc(&event_id)
                ),
                Some(json!({})),
            )
            .await;
        eventually(&s, "alice's receipt on Apogee", || async {
            readers().await.contains(&alice_id).then_some(())
        })
        .await;
        drop(s);
    }
}

/// EDUs have a retry timer of their own: on a private Synapse, bob's read receipt is sent
/// while Synapse is stopped, and arrives after it is started again with no other traffic
/// between the servers (alice never syncs before, so Synapse has no presence of hers to send
/// us, which would count as "the peer is back" and flush the receipt by another path).
#[tokio::test]
async fn a_receipt_sent_during_an_outage_arrives_on_its_own() {
    let Some(own) = OwnSynapse::new() else {
        return;
    };
    let alice = own.alice().await;
    for backend in backends() {
        let resolve = format!("{}={}", own.name, own.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:localhost:{port}");
        let room_id = synapse_room(&alice, "11", "Receipts in an outage").await;
        let (rid, _) = join_via(&s, &bob, &room_id, &own.name).await;
        let (status, sent) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "read me later"}),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
        let event_id = sent["message"]["federation"]["eventId"]
            .as_str()
            .unwrap()
            .to_string();
        eventually(&s, "bob's message on Synapse", || async {
            alice
                .messages(&room_id)
                .await
                .iter()
                .any(|e| e["event_id"] == event_id.as_str())
                .then_some(())
        })
        .await;

        own.stop();
        let (status, v) = s
            .post("/api/v1/subscriptions.read", &bob, json!({"rid": rid}))
            .await;
        assert_eq!(status, 200, "{v}");
        // Long enough for the first attempt and a retry to fail.
        tokio::time::sleep(Duration::from_secs(7)).await;
        own.start();
        // alice's sync says she is offline, so it makes no presence for Synapse to send.
        let receipt_seen = || async {
            let filter = json!({"room": {"rooms": [room_id], "timeline": {"limit": 1}},
                "presence": {"not_types": [apogee_domain::random_id()]}});
            let path = format!(
                "/_matrix/client/v3/sync?timeout=0&set_presence=offline&filter={}",
                enc(&filter.to_string())
            );
            let v = alice.call(reqwest::Method::GET, &path, None).await;
            v["rooms"]["join"][&room_id]["ephemeral"]["events"]
                .as_array()?
                .iter()
                .filter(|e| e["type"] == "m.receipt")
                .any(|e| e["content"][&event_id]["m.read"][&bob_id].is_object())
                .then_some(())
        };
        // Retries back off (5 s, doubling): allow two minutes.
        let mut arrived = false;
        for _ in 0..120 {
            if receipt_seen().await.is_some() {
                arrived = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(
            arrived,
            "bob's receipt never reached Synapse:\n{}",
            federation_log(&s)
        );
        drop(s);
    }
}
