//! What we send honours the room's server ACL: in a room whose `m.room.server_acl` denies the
//! server of its other members, a local user's message goes nowhere (no outbox item, no
//! transaction), against the test's own homeserver. (Without the ACL the same message reaches
//! it: the test failed when the filter was taken out.)

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
        let (s, _port, bob, rid) = joined(backend, &fake, "").await;
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
        let room = fake.room.lock().unwrap();
        assert!(
            !room
                .events
                .values()
                .any(|e| e["content"]["body"] == "not for peer.test"),
            "peer.test got the message"
        );
    }
}
