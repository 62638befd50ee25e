//! Server policy: `Federation_Allowed_Servers` / `Federation_Denied_Servers` refuse incoming
//! requests (403 `M_FORBIDDEN`, the origin's keys never fetched), joins through or into a
//! refused server, and — with a real Synapse — what we would send it and what it sends us.

use crate::common::backends;
use crate::support::*;

async fn set_setting(s: &Server, admin: &common::Auth, id: &str, value: &str) {
    let (status, v) = s
        .post(
            &format!("/api/v1/settings/{id}"),
            admin,
            json!({"value": value}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn refused_servers_get_no_answers_and_no_joins() {
    for backend in backends() {
        let friend = peer("friend.test").await;
        let mallory = peer("mallory.test").await;
        let resolve = format!("friend.test={},mallory.test={}", friend.url, mallory.url);
        let (s, port) = start(
            backend,
            &[
                ("APOGEE_FEDERATION_RESOLVE", &resolve),
                (
                    "OVERWRITE_SETTING_Federation_Denied_Servers",
                    "mallory.test",
                ),
            ],
        )
        .await;
        let us = format!("localhost:{port}");
        let admin = s.user("admin").await;
        register(&s, "bob", "Bob Builder").await;
        let target = profile_target(&format!("@bob:{us}"));
        let ask = |who: &Peer| signed(&who.identity, &us, &Method::GET, &target);

        let (status, v) = fed_get(port, &target, Some(&ask(&friend))).await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = fed_get(port, &target, Some(&ask(&mallory))).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (403, Some("M_FORBIDDEN")),
            "{v}"
        );
        assert_eq!(
            mallory.fetches.load(Ordering::SeqCst),
            0,
            "a refused server's keys are not fetched"
        );

        // Joins through or into a refused server are refused before any request.
        for (room, via) in [
            ("!abc:mallory.test", None),
            ("!abc:friend.test", Some("mallory.test")),
        ] {
            let mut body = json!({"externalRoomId": room});
            if let Some(via) = via {
                body["via"] = json!(via);
            }
            let got = s
                .post("/api/v1/federation/joinExternalPublicRoom", &admin, body)
                .await;
            common::assert_error(&got, 400, Some("error-federation-server-not-allowed"));
        }

        // An allow list, set by an administrator, applies at once: only its servers.
        set_setting(
            &s,
            &admin,
            "Federation_Allowed_Servers",
            "*.example.org, other.test",
        )
        .await;
        let (status, v) = fed_get(port, &target, Some(&ask(&friend))).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (403, Some("M_FORBIDDEN"))
        );
        set_setting(
            &s,
            &admin,
            "Federation_Allowed_Servers",
            "other.test friend.test",
        )
        .await;
        let (status, v) = fed_get(port, &target, Some(&ask(&friend))).await;
        assert_eq!(status, 200, "{v}");
        // Denied wins over allowed.
        set_setting(&s, &admin, "Federation_Denied_Servers", "FRIEND.test").await;
        let (status, _) = fed_get(port, &target, Some(&ask(&friend))).await;
        assert_eq!(status, 403);
        drop(s);
    }
}

/// With Synapse: once it is denied (by an administrator, while sharing a room), nothing is
/// queued for it and its transactions are refused. (Allowed again, it would see a gap where
/// our events of the meantime are: only catch-up fills it, and Synapse backs off from a server
/// that refused it — so the test stops here.)
#[tokio::test]
async fn a_denied_synapse_gets_nothing_and_is_not_heard() {
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
        let (s, _port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let room_id = synapse_room(&alice, "11", "Policy").await;
        let (rid, _) = join_via(&s, &bob, &room_id, &synapse_name).await;
        let history = || async {
            let (_, v) = s
                .get(
                    &format!("/api/v1/channels.messages?roomId={rid}&count=50"),
                    &bob,
                )
                .await;
            v["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m["msg"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        };

        set_setting(&s, &admin, "Federation_Denied_Servers", &synapse_name).await;
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "not for Synapse"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = s.get("/api/v1/federation/destinations", &admin).await;
        assert_eq!(status, 200, "{v}");
        assert!(
            v["destinations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["queueLength"] == 0),
            "nothing queued for a denied server: {v}"
        );
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "refused"}),
            )
            .await;

        eventually(&s, "Synapse's transaction refused", || async {
            let log = std::fs::read_to_string(s.data_dir().join("server.log")).unwrap_or_default();
            log.contains("federation request refused: server policy")
                .then_some(())
        })
        .await;

        assert!(!history().await.contains(&"refused".to_string()));
        assert!(
            !alice
                .messages(&room_id)
                .await
                .iter()
                .any(|e| e["content"]["body"] == "not for Synapse"),
            "never sent"
        );
        drop(s);
    }
}
