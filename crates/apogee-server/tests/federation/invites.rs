//! Rooms made on Apogee and shared with a real Synapse: a local room made federated, a Synapse
//! user joining it (our make_join / send_join) and invited into a private one, invites from
//! Synapse taken up, leaves both ways, and forged membership requests refused.

use crate::common::{Auth, backends};
use crate::support::*;

/// Usernames of a room's members over REST.
pub(crate) async fn member_names(
    s: &Server,
    auth: &common::Auth,
    kind: &str,
    rid: &str,
) -> Vec<String> {
    let (status, v) = s
        .get(&format!("/api/v1/{kind}.members?roomId={rid}"), auth)
        .await;
    assert_eq!(status, 200, "{v}");
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["username"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `text` is among the DM's messages as `auth` reads them.
async fn wait_for_dm_message(s: &Server, auth: &Auth, dm: &str, text: &str, what: &str) {
    eventually(s, what, || async {
        let (_, v) = s
            .get(&format!("/api/v1/im.messages?roomId={dm}"), auth)
            .await;
        v["messages"]
            .as_array()?
            .iter()
            .any(|m| m["msg"] == text)
            .then_some(())
    })
    .await;
}

/// Who Synapse lists as joined.
pub(crate) async fn synapse_joined(alice: &Matrix, room_id: &str) -> Value {
    alice
        .call(
            reqwest::Method::GET,
            &format!("/_matrix/client/v3/rooms/{}/joined_members", enc(room_id)),
            None,
        )
        .await["joined"]
        .clone()
}

/// In room versions 10, 11 and 12: bob makes a federated channel, alice (Synapse) joins it and
/// both write; bob invites alice into a federated private group by her Matrix id and she
/// joins; carol leaves the channel and alice leaves the group, each side seeing it; alice
/// invites bob into a Synapse room and Apogee takes the invite up.
#[tokio::test]
async fn synapse_joins_and_invites() {
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
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let bob_id = format!("@bob:{us}");
        let carol_id = format!("@carol:{us}");
        for version in ["10", "11", "12"] {
            let (status, v) = s
                .post(
                    "/api/v1/settings/Federation_Room_Version",
                    &admin,
                    json!({"value": version}),
                )
                .await;
            assert_eq!(status, 200, "{v}");

            // A federated channel: its Matrix side is made with it.
            let (status, v) = s
                .post(
                    "/api/v1/channels.create",
                    &bob,
                    json!({"name": format!("fed-c{version}"), "members": ["carol"],
                        "extraData": {"federated": true, "topic": "shared"}}),
                )
                .await;
            assert_eq!(status, 200, "{v}\n{}", federation_log(&s));
            let rid = v["channel"]["_id"].as_str().unwrap().to_string();
            assert_eq!(v["channel"]["federated"], true, "{v}");
            let room_id = v["channel"]["federation"]["mrid"]
                .as_str()
                .unwrap()
                .to_string();
            if version == "12" {
                assert!(!room_id.contains(':'), "v12 ids have no server: {room_id}");
            } else {
                assert!(room_id.ends_with(&format!(":{us}")), "{room_id}");
            }

            // alice joins it from Synapse (make_join / send_join served by us).
            let joined = alice
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
            assert_eq!(joined["room_id"], room_id.as_str(), "{joined}");
            let members = member_names(&s, &bob, "channels", &rid).await;
            assert!(members.contains(&alice_id), "v{version}: {members:?}");
            let on_synapse = synapse_joined(&alice, &room_id).await;
            assert!(
                on_synapse[&bob_id].is_object() && on_synapse[&carol_id].is_object(),
                "Synapse sees the room's members: {on_synapse}"
            );
            let state = alice
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/rooms/{}/state", enc(&room_id)),
                    None,
                )
                .await;
            let state = state.as_array().unwrap();
            let content = |t: &str| {
                state
                    .iter()
                    .find(|e| e["type"] == t)
                    .map(|e| e["content"].clone())
                    .unwrap_or(Value::Null)
            };
            assert_eq!(content("m.room.name")["name"], format!("fed-c{version}"));
            assert_eq!(content("m.room.topic")["topic"], "shared");
            assert_eq!(content("m.room.join_rules")["join_rule"], "public");
            assert_eq!(content("m.room.create")["room_version"], version);
            if version != "12" {
                assert_eq!(content("m.room.power_levels")["users"][&bob_id], 100);
            }

            // Both write.
            let text = format!("hi bob, v{version}");
            alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": text}),
                )
                .await;
            let server = &s;
            eventually(server, "alice's message in the channel", || async {
                let (_, v) = server
                    .get(
                        &format!("/api/v1/channels.messages?roomId={rid}&count=50"),
                        &carol,
                    )
                    .await;
                v["messages"]
                    .as_array()?
                    .iter()
                    .find(|m| m["msg"] == text.as_str() && m["u"]["username"] == alice_id.as_str())
                    .cloned()
            })
            .await;
            let reply = format!("hi alice, v{version}");
            let (status, v) = s
                .post(
                    "/api/v1/chat.postMessage",
                    &bob,
                    json!({"roomId": rid, "text": reply}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            let alice_ref = &alice;
            let event = wait_for_message(server, alice_ref, &room_id, &reply).await;
            assert_eq!(event["sender"], bob_id.as_str(), "{event}");

            // carol leaves: Synapse sees her go.
            let (status, v) = s
                .post("/api/v1/channels.leave", &carol, json!({"roomId": rid}))
                .await;
            assert_eq!(status, 200, "{v}");
            eventually(server, "carol's leave on Synapse", || async {
                let joined = synapse_joined(alice_ref, &room_id).await;
                (joined.get(&carol_id).is_none() && joined[&bob_id].is_object()).then_some(())
            })
            .await;
            // and joins again with `channels.join`: her join event reaches Synapse.
            let (status, v) = s
                .post("/api/v1/channels.join", &carol, json!({"roomId": rid}))
                .await;
            assert_eq!(status, 200, "{v}");
            eventually(server, "carol's join on Synapse", || async {
                synapse_joined(alice_ref, &room_id).await[&carol_id]
                    .is_object()
                    .then_some(())
            })
            .await;

            // A federated private group: alice is invited by her Matrix id, then joins.
            let (status, v) = s
                .post(
                    "/api/v1/groups.create",
                    &bob,
                    json!({"name": format!("fed-p{version}"), "extraData": {"federated": true}}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            let gid = v["group"]["_id"].as_str().unwrap().to_string();
            let group_room = v["group"]["federation"]["mrid"]
                .as_str()
                .unwrap()
                .to_string();
            let (status, v) = s
                .post(
                    "/api/v1/groups.invite",
                    &bob,
                    json!({"roomId": gid, "username": alice_id}),
                )
                .await;
            assert_eq!(status, 200, "{v}\n{}", federation_log(&s));
            eventually(server, "alice's invite on Synapse", || {
                invited(alice_ref, &group_room)
            })
            .await;
            alice
                .call(
                    reqwest::Method::POST,
                    &format!(
                        "/_matrix/client/v3/join/{}?server_name={}",
                        enc(&group_room),
                        enc(&us)
                    ),
                    Some(json!({})),
                )
                .await;
            let members = member_names(&s, &bob, "groups", &gid).await;
            assert!(members.contains(&alice_id), "{members:?}");

            // alice leaves the group: her subscription goes.
            alice
                .call(
                    reqwest::Method::POST,
                    &format!("/_matrix/client/v3/rooms/{}/leave", enc(&group_room)),
                    Some(json!({})),
                )
                .await;
            eventually(server, "alice's leave on Apogee", || async {
                let members = member_names(server, &bob, "groups", &gid).await;
                (!members.contains(&alice_id)).then_some(())
            })
            .await;

            // alice invites bob into a Synapse room: Apogee joins him, as Rocket.Chat does.
            let created = alice
                .call(
                    reqwest::Method::POST,
                    "/_matrix/client/v3/createRoom",
                    Some(json!({"preset": "private_chat", "room_version": version,
                        "name": format!("from Synapse v{version}"), "invite": [bob_id]})),
                )
                .await;
            let synapse_room = created["room_id"].as_str().unwrap().to_string();
            eventually(server, "bob joined after alice's invite", || async {
                let joined = synapse_joined(alice_ref, &synapse_room).await;
                joined[&bob_id].is_object().then_some(())
            })
            .await;
            let bob_ref = &bob;
            let sub = eventually(server, "bob's subscription to the Synapse room", || async {
                let (_, v) = server.get("/api/v1/subscriptions.get", bob_ref).await;
                v["update"]
                    .as_array()?
                    .iter()
                    .find(|sub| sub["fname"] == format!("from Synapse v{version}").as_str())
                    .cloned()
            })
            .await;
            assert_eq!(
                sub["t"], "p",
                "an invite-only room is a private group: {sub}"
            );
        }
    }
}

/// Forged or unwarranted membership requests are refused and write nothing: unsigned, an
/// unknown room, a user of another server, a join for someone else, a join to an invite-only
/// room without an invite, an invite for a user we do not have.
#[tokio::test]
async fn membership_requests_are_checked() {
    for backend in backends() {
        let mallory = peer("mallory.test").await;
        let resolve = format!("mallory.test={}", mallory.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let eve = "@eve:mallory.test";
        let mut rooms = Vec::new();
        for (kind, key) in [("channels", "channel"), ("groups", "group")] {
            let (status, v) = s
                .post(
                    &format!("/api/v1/{kind}.create"),
                    &bob,
                    json!({"name": format!("guarded-{key}"), "extraData": {"federated": true}}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            rooms.push((
                kind,
                v[key]["_id"].as_str().unwrap().to_string(),
                v[key]["federation"]["mrid"].as_str().unwrap().to_string(),
            ));
        }
        let (_, public_rid, public_room) = rooms[0].clone();
        let (_, _, private_room) = rooms[1].clone();
        let make_join = |room: &str, user: &str| {
            format!(
                "/_matrix/federation/v1/make_join/{}/{}?ver=10",
                enc(room),
                enc(user)
            )
        };

        // Unsigned: 401.
        let (status, _) = fed_get(port, &make_join(&public_room, eve), None).await;
        assert_eq!(status, 401);
        // Unknown room: 404.
        let target = make_join("!nope:localhost", eve);
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(status, 404, "{v}");
        // Someone of another server: 403.
        let target = make_join(&public_room, "@alice:synapse.test");
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(
            (status.as_u16(), &v["errcode"]),
            (403, &json!("M_FORBIDDEN"))
        );
        // The invite-only group without an invite: 403.
        let target = make_join(&private_room, eve);
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(
            (status.as_u16(), &v["errcode"]),
            (403, &json!("M_FORBIDDEN"))
        );
        // A room version the asking server does not speak.
        let target = make_join(&public_room, eve).replace("ver=10", "ver=9");
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["errcode"], "M_INCOMPATIBLE_ROOM_VERSION");
        assert_eq!(v["room_version"], "10");

        // The public channel: a template for eve.
        let target = make_join(&public_room, eve);
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(status, 200, "{v}");
        let template = v["event"].clone();
        assert_eq!(template["state_key"], eve);
        let rules = apogee_federation::pdu::rules_for("10").unwrap();
        let sign = |mut event: Value| {
            event.as_object_mut().unwrap().remove("origin_server_ts");
            apogee_federation::pdu::sign_new(
                serde_json::from_value(event).unwrap(),
                &rules,
                &mallory.identity,
                Timestamp::now(),
            )
            .unwrap()
        };
        // mallory PUTs a join event to `send_join`, the path naming `room` and `event_id`.
        let (us_name, mallory_identity) = (us.as_str(), &mallory.identity);
        let send_join = move |room: &str, event_id: &str, pdu: Value| {
            let target = format!(
                "/_matrix/federation/v2/send_join/{}/{}",
                enc(room),
                enc(event_id)
            );
            async move { fed_put(port, us_name, mallory_identity, &target, &pdu).await }
        };
        // A join for someone else (the state key is not the sender).
        let mut forged = template.clone();
        forged["state_key"] = json!("@other:mallory.test");
        let pdu = sign(forged);
        let (status, v) = send_join(&public_room, pdu.event_id.as_str(), pdu.to_json()).await;
        assert_eq!(status, 403, "{v}");
        // A join in the name of a user of another server.
        let mut forged = template.clone();
        forged["state_key"] = json!("@alice:synapse.test");
        forged["sender"] = json!("@alice:synapse.test");
        let pdu = sign(forged);
        let (status, v) = send_join(&public_room, pdu.event_id.as_str(), pdu.to_json()).await;
        assert_eq!(status, 403, "{v}");
        // The template used for the invite-only group (no invite): the auth rules refuse it.
        let mut forged = template.clone();
        forged["room_id"] = json!(private_room);
        let pdu = sign(forged);
        let (status, v) = send_join(&private_room, pdu.event_id.as_str(), pdu.to_json()).await;
        assert!(status == 403 || status == 400, "{status} {v}");
        // A join whose path names another event.
        let pdu = sign(template.clone());
        let (status, v) = send_join(&public_room, "$other", pdu.to_json()).await;
        assert_eq!(status, 400, "{v}");
        let members = crate::invites::member_names(&s, &bob, "channels", &public_rid).await;
        assert_eq!(members, vec!["bob".to_string()], "nothing written");

        // The real join: accepted, with the room's state and auth chain; eve is a member.
        let (status, v) = send_join(&public_room, pdu.event_id.as_str(), pdu.to_json()).await;
        assert_eq!(status, 200, "{v}");
        let state = v["state"].as_array().unwrap();
        assert!(state.iter().any(|e| e["type"] == "m.room.create"), "{v}");
        assert!(!v["auth_chain"].as_array().unwrap().is_empty(), "{v}");
        let members = crate::invites::member_names(&s, &bob, "channels", &public_rid).await;
        assert!(members.contains(&eve.to_string()), "{members:?}");

        // eve leaves again (make_leave / send_leave); someone not in the room cannot.
        let make_leave = |user: &str| {
            format!(
                "/_matrix/federation/v1/make_leave/{}/{}",
                enc(&public_room),
                enc(user)
            )
        };
        let target = make_leave("@stranger:mallory.test");
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(status, 403, "{v}");
        let target = make_leave(eve);
        let (status, v) = signed_get(port, &us, &mallory.identity, &target).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["event"]["content"]["membership"], "leave", "{v}");
        let leave = sign(v["event"].clone());
        let target = format!(
            "/_matrix/federation/v2/send_leave/{}/{}",
            enc(&public_room),
            enc(leave.event_id.as_str())
        );
        let (status, v) = fed_put(port, &us, &mallory.identity, &target, &leave.to_json()).await;
        assert_eq!((status.as_u16(), &v), (200, &json!({})));
        let members = crate::invites::member_names(&s, &bob, "channels", &public_rid).await;
        assert_eq!(members, vec!["bob".to_string()], "eve left");

        // An invite for a user we do not have.
        let invite = sign(
            json!({"type": "m.room.member", "room_id": "!r:mallory.test",
            "sender": eve, "state_key": format!("@nobody:{us}"),
            "content": {"membership": "invite"}, "prev_events": [], "auth_events": [],
            "depth": 5, "origin": "mallory.test"}),
        );
        let target = format!(
            "/_matrix/federation/v2/invite/{}/{}",
            enc("!r:mallory.test"),
            enc(invite.event_id.as_str())
        );
        let (status, v) = fed_put(
            port,
            &us,
            &mallory.identity,
            &target,
            &json!({"event": invite.to_json(), "room_version": "10", "invite_room_state": []}),
        )
        .await;
        assert_eq!(status, 404, "{v}");

        // A forged direct invite: into a public room, or into the channel we hold. Refused,
        // and no take-up is queued (bob gets no room).
        let forged_dm = [
            (
                "!dm:mallory.test".to_string(),
                json!([{"type": "m.room.join_rules", "state_key": "", "sender": eve,
                    "content": {"join_rule": "public"}}]),
            ),
            (public_room.clone(), json!([])),
        ];
        for (room, invite_state) in forged_dm {
            let invite = sign(json!({"type": "m.room.member", "room_id": room,
                "sender": eve, "state_key": format!("@bob:{us}"),
                "content": {"membership": "invite", "is_direct": true}, "prev_events": [],
                "auth_events": [], "depth": 5, "origin": "mallory.test"}));
            let target = format!(
                "/_matrix/federation/v2/invite/{}/{}",
                enc(&room),
                enc(invite.event_id.as_str())
            );
            let (status, v) = fed_put(
                port,
                &us,
                &mallory.identity,
                &target,
                &json!({"event": invite.to_json(), "room_version": "10",
                    "invite_room_state": invite_state}),
            )
            .await;
            assert_eq!(
                (status.as_u16(), &v["errcode"]),
                (403, &json!("M_FORBIDDEN")),
                "{room}: {v}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let (_, v) = s.get("/api/v1/subscriptions.get", &bob).await;
        // `general`, the channel and the group.
        assert_eq!(
            v["update"].as_array().unwrap().len(),
            3,
            "nothing written: {v}"
        );
    }
}

/// Whether Synapse shows alice an invite to `room_id`.
async fn invited(alice: &Matrix, room_id: &str) -> Option<Value> {
    // Synapse caches a sync's answer per request for minutes: each poll differs.
    let filter = json!({"room": {"timeline": {"not_types": [apogee_domain::random_id()]}}});
    let sync = alice
        .call(
            reqwest::Method::GET,
            &format!(
                "/_matrix/client/v3/sync?timeout=0&filter={}",
                enc(&filter.to_string())
            ),
            None,
        )
        .await;
    sync["rooms"]["invite"].get(room_id).cloned()
}

/// DMs with a Synapse user: `im.create` with her Matrix id (an invite with `is_direct`, a DM
/// both write in), a DM she opens with bob (a DM on Apogee), and `/federation invite`.
#[tokio::test]
async fn synapse_direct_messages_and_the_federation_command() {
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
                ("OVERWRITE_SETTING_Federation_Room_Version", "12"),
            ],
        )
        .await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:{us}");
        let server = &s;
        let alice_ref = &alice;

        // bob opens a DM with alice by her Matrix id.
        let (status, v) = s
            .post("/api/v1/im.create", &bob, json!({"username": alice_id}))
            .await;
        assert_eq!(status, 200, "{v}\n{}", federation_log(&s));
        let dm = v["room"]["_id"].as_str().unwrap().to_string();
        assert_eq!(v["room"]["t"], "d", "{v}");
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={dm}"), &bob)
            .await;
        let dm_room = info["room"]["federation"]["mrid"]
            .as_str()
            .unwrap_or_else(|| panic!("a federated DM: {info}"))
            .to_string();
        let invite = eventually(server, "alice's DM invite", || invited(alice_ref, &dm_room)).await;
        let member = invite["invite_state"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "m.room.member" && e["state_key"] == alice_id.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(member["content"]["is_direct"], true, "{invite}");
        alice
            .call(
                reqwest::Method::POST,
                &format!(
                    "/_matrix/client/v3/join/{}?server_name={}",
                    enc(&dm_room),
                    enc(&us)
                ),
                Some(json!({})),
            )
            .await;
        alice
            .send(
                &dm_room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "hi in private"}),
            )
            .await;
        wait_for_dm_message(server, &bob, &dm, "hi in private", "alice's DM message").await;
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": dm, "text": "hi back"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let event = wait_for_message(server, alice_ref, &dm_room, "hi back").await;
        assert_eq!(event["sender"], bob_id.as_str(), "{event}");

        // A multi-user DM: carol (local) and alice (remote) with bob; carol is joined on
        // the Matrix side with bob, alice invited.
        let _carol = s.user("carol").await;
        let (status, v) = s
            .post(
                "/api/v1/im.create",
                &bob,
                json!({"usernames": format!("carol,{alice_id}")}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let group_dm = v["room"]["_id"].as_str().unwrap().to_string();
        assert_eq!(v["room"]["usersCount"], 3, "{v}");
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={group_dm}"), &bob)
            .await;
        let group_dm_room = info["room"]["federation"]["mrid"]
            .as_str()
            .unwrap()
            .to_string();
        eventually(server, "alice's invite to the group DM", || {
            invited(alice_ref, &group_dm_room)
        })
        .await;

        // alice opens a DM with bob on Synapse: a DM on Apogee too.
        let created = alice
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(json!({"preset": "trusted_private_chat", "is_direct": true,
                    "invite": [bob_id]})),
            )
            .await;
        let theirs = created["room_id"].as_str().unwrap().to_string();
        let bob_ref = &bob;
        let sub = eventually(server, "bob's DM from alice", || async {
            let (_, v) = server.get("/api/v1/subscriptions.get", bob_ref).await;
            for sub in v["update"].as_array()? {
                let rid = sub["rid"].as_str()?;
                let (_, info) = server
                    .get(&format!("/api/v1/rooms.info?roomId={rid}"), bob_ref)
                    .await;
                if info["room"]["federation"]["mrid"] == theirs.as_str() {
                    return Some(sub.clone());
                }
            }
            None
        })
        .await;
        assert_eq!(sub["t"], "d", "{sub}");
        assert_eq!(sub["name"], alice_id.as_str(), "{sub}");
        // One DM for bob and alice: it follows her newer Matrix room, and bob leaves the older.
        assert_eq!(sub["rid"], dm.as_str(), "the same DM: {sub}");
        eventually(server, "bob leaving the older DM room", || async {
            let v = alice_ref
                .call(
                    reqwest::Method::GET,
                    &format!(
                        "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
                        enc(&dm_room),
                        enc(&bob_id)
                    ),
                    None,
                )
                .await;
            (v["membership"] == "leave").then_some(())
        })
        .await;
        alice
            .send(
                &theirs,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "in my newer room"}),
            )
            .await;
        wait_for_dm_message(
            server,
            bob_ref,
            &dm,
            "in my newer room",
            "alice's message in the newer room",
        )
        .await;
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": dm, "text": "seen"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        wait_for_message(server, alice_ref, &theirs, "seen").await;
        let (_, v) = s
            .post("/api/v1/im.create", &bob, json!({"username": alice_id}))
            .await;
        assert_eq!(v["room"]["_id"], dm.as_str(), "{v}");

        // A DM alice opens first is the DM `im.create` / `im.open` / `rooms.get` find.
        let dave = s.user("dave").await;
        let dave_id = format!("@dave:{us}");
        let created = alice
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(json!({"preset": "trusted_private_chat", "is_direct": true,
                    "invite": [dave_id]})),
            )
            .await;
        let to_dave = created["room_id"].as_str().unwrap().to_string();
        let dave_ref = &dave;
        let dave_dm = eventually(server, "dave's DM from alice", || async {
            let (_, v) = server.get("/api/v1/im.list", dave_ref).await;
            let ims = v["ims"].as_array()?;
            ims.iter()
                .find(|r| r["federation"]["mrid"] == to_dave.as_str())
                .map(|r| r["_id"].as_str().unwrap().to_string())
        })
        .await;
        let (status, v) = s
            .post("/api/v1/im.create", &dave, json!({"username": alice_id}))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["room"]["_id"], dave_dm.as_str(), "{v}");
        assert_eq!(v["room"]["usersCount"], 2, "{v}");
        let (status, v) = s
            .post("/api/v1/im.open", &dave, json!({"roomId": dave_dm}))
            .await;
        assert_eq!(status, 200, "{v}");
        let mut ddp = crate::common::ddp::Ddp::connect(&s).await;
        ddp.resume(&dave).await;
        let r = ddp
            .call("createDirectMessage", json!([alice_id.as_str()]))
            .await;
        assert_eq!(r["result"]["rid"], dave_dm.as_str(), "{r}");
        let (_, v) = s.get("/api/v1/rooms.get", &dave).await;
        let dms: Vec<&Value> = v["update"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["t"] == "d")
            .collect();
        assert_eq!(dms.len(), 1, "{v}");
        assert_eq!(dms[0]["_id"], dave_dm.as_str(), "{v}");
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={dave_dm}"), &dave)
            .await;
        let uids = info["room"]["uids"].as_array().unwrap();
        let mut sorted: Vec<&str> = uids.iter().filter_map(Value::as_str).collect();
        sorted.sort_unstable();
        assert_eq!(
            sorted.concat(),
            dave_dm,
            "the id is the members' ids sorted: {info}"
        );

        // A DM of three alice opens with dave and erin: the DM `im.create` with both finds,
        // and erin joins it on the Matrix side too.
        let erin = s.user("erin").await;
        let erin_id = format!("@erin:{us}");
        let created = alice
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(json!({"preset": "trusted_private_chat", "is_direct": true,
                    "invite": [dave_id, erin_id]})),
            )
            .await;
        let of_three = created["room_id"].as_str().unwrap().to_string();
        let erin_ref = &erin;
        let three = eventually(server, "the DM of three", || async {
            let (_, v) = server.get("/api/v1/im.list", erin_ref).await;
            v["ims"]
                .as_array()?
                .iter()
                .find(|r| r["federation"]["mrid"] == of_three.as_str())
                .cloned()
        })
        .await;
        assert_eq!(three["usersCount"], 3, "{three}");
        let (status, v) = s
            .post(
                "/api/v1/im.create",
                &dave,
                json!({"usernames": format!("erin,{alice_id}")}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["room"]["_id"], three["_id"], "{v}");
        eventually(server, "dave and erin joined on Synapse", || async {
            let joined = synapse_joined(alice_ref, &of_three).await;
            (joined.get(&dave_id).is_some() && joined.get(&erin_id).is_some()).then_some(())
        })
        .await;

        // `/federation invite @alice:…` in a channel of bob's.
        let (status, v) = s
            .post(
                "/api/v1/channels.create",
                &bob,
                json!({"name": "by-command"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let (status, v) = s
            .post(
                "/api/v1/commands.run",
                &bob,
                json!({"command": "federation", "params": format!("invite {alice_id}"),
                    "roomId": rid}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={rid}"), &bob)
            .await;
        let room_id = info["room"]["federation"]["mrid"]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "the channel is federated now: {info}\n{}",
                    federation_log(&s)
                )
            })
            .to_string();
        eventually(server, "alice's invite by command", || {
            invited(alice_ref, &room_id)
        })
        .await;
    }
}
