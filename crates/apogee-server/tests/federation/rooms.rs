//! Rooms shared with a real Synapse: joining, receiving, sending, forged PDUs.

use crate::common::backends;
use crate::support::*;

/// An Apogee user joins Synapse rooms of versions 10, 11 and 12; the Synapse user's message,
/// edit, reaction and redactions show over REST; the Apogee user's message, edit and reaction
/// reach Synapse as signed events.
#[tokio::test]
async fn synapse_rooms() {
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
        // A server that is in no room, to forge events with.
        let mallory = peer("mallory.test").await;
        let resolve = format!("{synapse_name}={synapse},mallory.test={}", mallory.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:{us}");
        for version in ["10", "11", "12"] {
            let room_id = synapse_room(&alice, version, &format!("Synapse room v{version}")).await;

            // bob joins through Synapse: the mapped channel and his subscription.
            let (rid, room) = join_via(&s, &bob, &room_id, &synapse_name).await;
            assert_eq!(room["t"], "c", "{room}");
            assert_eq!(room["fname"], format!("Synapse room v{version}"), "{room}");
            assert_eq!(room["federation"]["mrid"], room_id.as_str(), "{room}");
            let (status, sub) = s
                .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
                .await;
            assert_eq!(status, 200, "{sub}");
            let (status, members) = s
                .get(&format!("/api/v1/channels.members?roomId={rid}"), &bob)
                .await;
            assert_eq!(status, 200, "{members}");
            let names: Vec<&str> = members["members"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["username"].as_str())
                .collect();
            assert!(
                names.contains(&alice_id.as_str()) && names.contains(&"bob"),
                "{members}"
            );
            let joined = alice
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room_id)),
                    None,
                )
                .await;
            assert!(
                joined["joined"][&bob_id].is_object(),
                "Synapse sees bob joined: {joined}"
            );
            // Joining again is answered with the same room.
            let (status, again) = s
                .post(
                    "/api/v1/federation/joinExternalPublicRoom",
                    &bob,
                    json!({"externalRoomId": room_id, "via": synapse_name}),
                )
                .await;
            assert_eq!(
                (status.as_u16(), &again["room"]["_id"]),
                (200, &json!(rid)),
                "{again}"
            );

            // alice writes: the message shows over REST as hers.
            let text = format!("hello from Synapse v{version}");
            let hello = alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": text}),
                )
                .await;
            let server = &s;
            let history = || {
                let path = format!("/api/v1/channels.messages?roomId={rid}&count=50");
                let bob = bob.clone();
                async move {
                    server.get(&path, &bob).await.1["messages"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }
            };
            let message = eventually(server, "alice's message", || async {
                history()
                    .await
                    .into_iter()
                    .find(|m| m["msg"] == text.as_str())
            })
            .await;
            assert_eq!(message["u"]["username"], alice_id.as_str(), "{message}");
            assert_eq!(
                message["federation"]["eventId"],
                hello.as_str(),
                "{message}"
            );
            let mid = message["_id"].as_str().unwrap().to_string();
            let get = || {
                let path = format!("/api/v1/chat.getMessage?msgId={mid}");
                let bob = bob.clone();
                async move { server.get(&path, &bob).await }
            };

            // Forged events are refused and change nothing: a non-member's message (signed
            // by its own server) and one claiming to be alice's without her server's signature.
            let state = alice
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/rooms/{}/state", enc(&room_id)),
                    None,
                )
                .await;
            let state_id = |t: &str, k: &str| {
                state
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["type"] == t && e["state_key"] == k)
                    .map(|e| e["event_id"].as_str().unwrap().to_string())
                    .unwrap()
            };
            let mut auth = vec![state_id("m.room.power_levels", "")];
            if version != "12" {
                auth.push(state_id("m.room.create", ""));
            }
            let rules = apogee_federation::pdu::rules_for(version).unwrap();
            for (sender, why) in [
                ("@mallory:mallory.test", "not a member"),
                (alice_id.as_str(), "not signed by alice's server"),
            ] {
                let mut event = json!({"type": "m.room.message", "room_id": room_id, "sender": sender,
                    "content": {"msgtype": "m.text", "body": "forged"}, "prev_events": [hello],
                    "auth_events": auth, "depth": 1000});
                if sender == alice_id {
                    event["auth_events"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!(state_id("m.room.member", &alice_id)));
                }
                let pdu = apogee_federation::pdu::sign_new(
                    serde_json::from_value(event).unwrap(),
                    &rules,
                    &mallory.identity,
                    Timestamp::now(),
                )
                .unwrap();
                let body = json!({"origin": "mallory.test", "origin_server_ts": 1, "pdus": [pdu.to_json()]});
                let target = format!("/_matrix/federation/v1/send/{}", apogee_domain::random_id());
                let (status, answer) = fed_put(port, &us, &mallory.identity, &target, &body).await;
                assert_eq!(status, 200, "{answer}");
                let result = &answer["pdus"][pdu.event_id.as_str()];
                assert!(result["error"].is_string(), "{why}: {answer}");
            }
            assert!(
                !history().await.iter().any(|m| m["msg"] == "forged"),
                "forged events wrote nothing"
            );

            // Her edit replaces the text.
            let edited = format!("edited on Synapse v{version}");
            alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": format!("* {edited}"),
                    "m.new_content": {"msgtype": "m.text", "body": edited},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": hello}}),
                )
                .await;
            eventually(server, "the edit", || async {
                let (_, v) = get().await;
                (v["message"]["msg"] == edited.as_str() && v["message"]["editedAt"].is_string())
                    .then_some(())
            })
            .await;

            // Her reaction, then its redaction.
            let reaction = alice
                .send(&room_id, "m.reaction", json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": hello, "key": "👍"}}))
                .await;
            eventually(server, "the reaction", || async {
                let (_, v) = get().await;
                (v["message"]["reactions"][":thumbsup:"]["usernames"] == json!([alice_id]))
                    .then_some(())
            })
            .await;
            alice
                .call(
                    reqwest::Method::PUT,
                    &format!(
                        "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                        enc(&room_id),
                        enc(&reaction),
                        apogee_domain::random_id()
                    ),
                    Some(json!({"reason": "oops"})),
                )
                .await;
            eventually(server, "the reaction's redaction", || async {
                let (_, v) = get().await;
                v["message"]["reactions"].is_null().then_some(())
            })
            .await;

            // bob answers from Apogee: Synapse gets his signed event.
            let reply = format!("hello from Apogee v{version}");
            let (status, sent) = s
                .post(
                    "/api/v1/chat.postMessage",
                    &bob,
                    json!({"roomId": rid, "text": reply}),
                )
                .await;
            assert_eq!(status, 200, "{sent}");
            let bob_mid = sent["message"]["_id"].as_str().unwrap().to_string();
            let bob_event = wait_for_message(server, &alice, &room_id, &reply).await;
            assert_eq!(bob_event["sender"], bob_id.as_str(), "{bob_event}");
            assert_eq!(
                sent["message"]["federation"]["eventId"], bob_event["event_id"],
                "{sent}"
            );
            // His edit and his reaction to alice's message follow, in order.
            let (status, v) = s
                .post(
                    "/api/v1/chat.update",
                    &bob,
                    json!({"roomId": rid, "msgId": bob_mid, "text": "bob edited"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            let (status, v) = s
                .post(
                    "/api/v1/chat.react",
                    &bob,
                    json!({"messageId": mid, "emoji": ":tada:"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            eventually(server, "bob's edit and reaction on Synapse", || async {
                let events = alice.messages(&room_id).await;
                let edit = events.iter().any(|e| {
                    e["content"]["m.new_content"]["body"] == "bob edited"
                        && e["content"]["m.relates_to"]["event_id"] == bob_event["event_id"]
                });
                let react = events.iter().any(|e| {
                    e["type"] == "m.reaction"
                        && e["sender"] == bob_id.as_str()
                        && e["content"]["m.relates_to"]["key"] == "🎉"
                });
                (edit && react).then_some(())
            })
            .await;

            // alice redacts her message: it is gone from Apogee.
            alice
                .call(
                    reqwest::Method::PUT,
                    &format!(
                        "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                        enc(&room_id),
                        enc(&hello),
                        apogee_domain::random_id()
                    ),
                    Some(json!({})),
                )
                .await;
            eventually(server, "the message's redaction", || async {
                let (status, _) = get().await;
                (status != 200).then_some(())
            })
            .await;
        }
        drop(s);
    }
}
