//! A remote invite of one of our users is taken up durably: Apogee answers the invite, is
//! killed before it joins, and the inviting Synapse is down when it comes back — the join is
//! retried with backoff and happens once Synapse is up again.

use crate::common::backends;
use crate::invites::synapse_joined;
use crate::support::*;

#[tokio::test]
async fn an_invite_is_taken_up_after_a_crash_and_an_outage() {
    let Some(own) = OwnSynapse::new() else {
        return;
    };
    // A Synapse of its own, to stop without disturbing the tests beside.
    let (synapse, synapse_name) = (own.url.clone(), own.name.clone());
    for backend in backends() {
        let alice = own.alice().await;
        let resolve = format!("{synapse_name}={synapse}");
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:localhost:{port}");
        // Synapse answers createRoom once we have answered the invite (and queued its take-up).
        let name = format!("Invite through a crash {backend:?}");
        let created = alice
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(
                    json!({"preset": "private_chat", "room_version": "11", "name": name,
                    "invite": [bob_id]}),
                ),
            )
            .await;
        let room_id = created["room_id"].as_str().unwrap().to_string();
        // Killed before the take-up's first attempt (a second after the answer); Synapse goes
        // down too, so the first attempts after the restart fail.
        let (dir, db) = s.crash();
        own.stop();
        let listen = format!("127.0.0.1:{port}");
        let us = format!("localhost:{port}");
        let s = Server::start_in(
            backend,
            dir,
            &[
                ("APOGEE_SERVER_NAME", us.as_str()),
                ("APOGEE_FEDERATION_LISTEN", listen.as_str()),
                ("APOGEE_FEDERATION_RESOLVE", resolve.as_str()),
            ],
            db,
        )
        .await;
        wait_for_federation(port).await;
        let failed = |s: &Server| {
            std::fs::read_to_string(s.data_dir().join("server.log"))
                .unwrap_or_default()
                .contains("joining after an invite failed")
        };
        for _ in 0..300 {
            if failed(&s) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            failed(&s),
            "a take-up attempt failed while Synapse was down"
        );
        own.start();

        // The retry (10 s after the failure, then 20 s) joins bob.
        let mut sub = None;
        for _ in 0..90 {
            let (_, v) = s.get("/api/v1/subscriptions.get", &bob).await;
            sub = v["update"]
                .as_array()
                .and_then(|subs| subs.iter().find(|x| x["fname"] == name.as_str()).cloned());
            if sub.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let sub = sub.unwrap_or_else(|| {
            panic!("bob never joined; log:\n{}", federation_log(&s));
        });
        assert_eq!(sub["t"], "p", "{sub}");
        let alice = own.alice().await;
        let joined = synapse_joined(&alice, &room_id).await;
        assert!(joined[&bob_id].is_object(), "{joined}");
    }
    own.stop();
}
