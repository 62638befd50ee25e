//! What we send and serve honours the room's server ACL: in a room whose `m.room.server_acl`
//! denies the server of its other members, a local user's message goes nowhere (no outbox item,
//! no transaction), and that server is refused the room's catch-up (`event`, `state_ids`,
//! `event_auth`, `backfill`) and membership templates (`make_join`, `make_leave`), against the
//! test's own homeserver. (Without the ACL the same message reaches it and the same requests
//! are answered: `catchup::catch_up_is_served_to_servers_in_the_room`; the test failed when the
//! filters were taken out.)

use crate::catchup::joined;
use crate::common::backends;
use crate::fake_homeserver::FakeHomeserver;
use crate::support::*;

#[tokio::test]
async fn a_server_the_room_acl_denies_gets_nothing_from_us() {
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let alice = fake.alice.clone();
        fake.build(
            "m.room.server_acl",
            Some(""),
            &alice,
            json!({"allow": ["*"], "deny": ["peer.test"], "allow_ip_literals": true}),
        );
        let (s, port, bob, rid) = joined(backend, &fake, "").await;
        let admin = s.login("admin").await;
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "not for peer.test"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        // Shown here, queued for no one.
        let (_, page) = s
            .get(
                &format!("/api/v1/channels.history?roomId={rid}&count=5"),
                &bob,
            )
            .await;
        assert_eq!(page["messages"][0]["msg"], "not for peer.test", "{page}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (status, health) = s.get("/api/v1/federation/destinations", &admin).await;
        assert_eq!(status, 200, "{health}");
        let queued: i64 = health["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["server"] == "peer.test")
            .filter_map(|d| d["queueLength"].as_i64())
            .sum();
        assert_eq!(queued, 0, "{health}");
        // The lock is released before the requests below (a block: clippy does not see drops).
        let create = {
            let room = fake.room.lock().unwrap();
            assert!(
                !room
                    .events
                    .values()
                    .any(|e| e["content"]["body"] == "not for peer.test"),
                "peer.test got the message"
            );
            room.state[&("m.room.create".to_string(), String::new())].clone()
        };

        let (r, e) = (enc(&fake.room_id), enc(&create));
        let carol = enc("@carol:peer.test");
        for target in [
            format!("/_matrix/federation/v1/event/{e}"),
            format!("/_matrix/federation/v1/state_ids/{r}?event_id={e}"),
            format!("/_matrix/federation/v1/event_auth/{r}/{e}"),
            format!("/_matrix/federation/v1/backfill/{r}?v={e}&limit=5"),
            format!("/_matrix/federation/v1/make_join/{r}/{carol}?ver=10&ver=11&ver=12"),
            format!("/_matrix/federation/v1/make_leave/{r}/{carol}"),
        ] {
            let (status, v) = fake.call(port, Method::GET, &target, None).await;
            assert_eq!(
                (status.as_u16(), v["errcode"].as_str()),
                (403, Some("M_FORBIDDEN")),
                "{target}: {v}"
            );
        }
    }
}
