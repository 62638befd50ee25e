//! A remote invite of one of our users is taken up durably: Apogee answers the invite, is
//! killed before it joins, and the inviting Synapse is down when it comes back — the join is
//! retried with backoff and happens once Synapse is up again.

use crate::common::backends;
use crate::invites::synapse_joined;
use crate::support::*;

fn synapse_ctl(ctl: &str, args: &[&str]) -> String {
    let out = Command::new(ctl).args(args).output().expect("synapse ctl");
    assert!(
        out.status.success(),
        "synapse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn an_invite_is_taken_up_after_a_crash_and_an_outage() {
    let (Ok(synapse_name), Ok(ctl)) = (
        std::env::var("APOGEE_TEST_SYNAPSE_NAME"),
        std::env::var("APOGEE_TEST_SYNAPSE_CTL"),
    ) else {
        eprintln!("skipped: no Synapse (run under scripts/with-synapse.sh)");
        return;
    };
    // A Synapse of its own, to stop without disturbing the tests beside.
    let started = synapse_ctl(&ctl, &["new"]);
    let (id, synapse) = started.trim().split_once(' ').expect("ID URL");
    let (id, synapse) = (id.to_string(), synapse.to_string());
    let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
    let password = std::env::var("APOGEE_TEST_SYNAPSE_PASSWORD").unwrap();
    for backend in backends() {
        let alice = Matrix::login(&synapse, &user, &password).await;
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
        synapse_ctl(&ctl, &["stop", &id]);
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
        synapse_ctl(&ctl, &["start", &id]);

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
        let alice = Matrix::login(&synapse, &user, &password).await;
        let joined = synapse_joined(&alice, &room_id).await;
        assert!(joined[&bob_id].is_object(), "{joined}");
    }
    synapse_ctl(&ctl, &["stop", &id]);
}
