//! A Synapse outage with an Apogee crash in the middle: everything Apogee users did while the
//! peer was down reaches it once it is back — in order, nothing lost, nothing twice — and the
//! destination's health shows the backlog, then the success.

use crate::common::backends;
use crate::support::*;

/// Runs the Synapse control command of `scripts/with-synapse.sh`; returns what it printed.
/// bob posts `text` in `rid`; returns the message id.
async fn post(s: &Server, bob: &common::Auth, rid: &str, text: &str) -> String {
    let (status, v) = s
        .post(
            "/api/v1/chat.postMessage",
            bob,
            json!({"roomId": rid, "text": text}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["message"]["_id"].as_str().unwrap().to_string()
}

/// The destinations' health as an administrator reads it.
async fn destination(s: &Server, admin: &common::Auth, server: &str) -> Value {
    let (status, v) = s.get("/api/v1/federation/destinations", admin).await;
    assert_eq!(status, 200, "{v}");
    v["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["server"] == server)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn synapse_outage_with_an_apogee_crash_loses_nothing() {
    let Some(own) = OwnSynapse::new() else {
        return;
    };
    // A Synapse of its own: stopping the shared one would break the tests running beside.
    let (synapse, synapse_name) = (own.url.clone(), own.name.clone());
    let alice = own.alice().await;
    for backend in backends() {
        let resolve = format!("{synapse_name}={synapse}");
        let env = [("APOGEE_FEDERATION_RESOLVE", resolve.as_str())];
        let (s, port) = start(backend, &env).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:localhost:{port}");
        let room_id = synapse_room(&alice, "11", "Outage").await;
        let (rid, _) = join_via(&s, &bob, &room_id, &synapse_name).await;
        post(&s, &bob, &rid, "before the outage").await;
        wait_for_message(&s, &alice, &room_id, "before the outage").await;
        let before = destination(&s, &admin, &synapse_name).await;
        assert_eq!(before["queueLength"], 0, "{before}");
        assert!(before["lastSuccessAt"].is_string(), "{before}");

        // Synapse goes down; bob writes, edits and reacts.
        own.stop();
        let mut first_ids = Vec::new();
        for n in 1..=5 {
            first_ids.push(post(&s, &bob, &rid, &format!("during the outage {n}")).await);
        }
        let (status, v) = s
            .post(
                "/api/v1/chat.update",
                &bob,
                json!({"roomId": rid, "msgId": first_ids[0], "text": "during the outage 1, edited"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = s
            .post(
                "/api/v1/chat.react",
                &bob,
                json!({"messageId": first_ids[1], "emoji": ":tada:"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let backlog = eventually(&s, "the failure in the health", || async {
            let d = destination(&s, &admin, &synapse_name).await;
            (d["lastFailureAt"].is_string() && d["failedAttempts"].as_i64() >= Some(1)).then_some(d)
        })
        .await;
        assert_eq!(backlog["queueLength"], 7, "{backlog}");
        assert!(backlog["oldestPendingAt"].is_string(), "{backlog}");
        assert!(backlog["lastError"].is_string(), "{backlog}");

        // Apogee crashes mid-outage and comes back on the same data; bob writes once more.
        let (dir, db) = s.crash();
        let listen = format!("127.0.0.1:{port}");
        let name = format!("localhost:{port}");
        let s = Server::start_in(
            backend,
            dir,
            &[
                ("APOGEE_SERVER_NAME", name.as_str()),
                ("APOGEE_FEDERATION_LISTEN", listen.as_str()),
                ("APOGEE_FEDERATION_RESOLVE", resolve.as_str()),
            ],
            db,
        )
        .await;
        wait_for_federation(port).await;
        post(&s, &bob, &rid, "after the crash").await;
        let waiting = destination(&s, &admin, &synapse_name).await;
        assert_eq!(waiting["queueLength"], 8, "the backlog survived: {waiting}");

        // Synapse is back, and alice writes (her server's transaction tells us it is up).
        own.start();
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "I am back"}),
            )
            .await;
        let expected = [
            "during the outage 1",
            "during the outage 2",
            "during the outage 3",
            "during the outage 4",
            "during the outage 5",
            "edit",
            "reaction",
            "after the crash",
        ];
        let seen = eventually(&s, "the backlog on Synapse", || async {
            let mut ours: Vec<String> = alice
                .messages(&room_id)
                .await
                .into_iter()
                .filter(|e| e["sender"] == bob_id.as_str())
                .map(|e| {
                    if e["type"] == "m.reaction" {
                        "reaction".to_string()
                    } else if e["content"]["m.new_content"].is_object() {
                        "edit".to_string()
                    } else {
                        e["content"]["body"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    }
                })
                .filter(|b| b != "before the outage" && !b.is_empty())
                .collect();
            ours.reverse();
            (ours.len() >= expected.len()).then_some(ours)
        })
        .await;
        assert_eq!(seen, expected, "every event once, in order");
        let after = eventually(&s, "success in the health", || async {
            let d = destination(&s, &admin, &synapse_name).await;
            (d["queueLength"] == 0 && d["lastSuccessAt"].as_str() > d["lastFailureAt"].as_str())
                .then_some(d)
        })
        .await;
        assert_eq!(after["failedAttempts"], 0, "{after}");
        assert!(after["nextAttemptAt"].is_null(), "{after}");
        drop(s);
    }
}
