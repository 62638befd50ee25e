//! Keeping both sides in step after a room is made: name, topic, read-only, room roles and pictures
//! both ways with a real Synapse; deletions (rooms, users, messages with a file or in a
//! thread) and rooms closed or abandoned elsewhere; forged changes from a peer refused.

use crate::common::{Auth, backends};
use crate::content::{apogee_message, history, join_room, synapse_event};
use crate::invites::{member_names, synapse_joined};
use crate::support::*;

/// A state event's content as alice (Synapse) sees it (`null` while there is none).
async fn synapse_state(syn: &Synapse, room_id: &str, event_type: &str, key: &str) -> Value {
    let answer = syn
        .alice
        .http
        .get(format!(
            "{}/_matrix/client/v3/rooms/{}/state/{event_type}/{}",
            syn.alice.base,
            enc(room_id),
            enc(key)
        ))
        .bearer_auth(&syn.alice.token)
        .send()
        .await
        .unwrap();
    if !answer.status().is_success() {
        return Value::Null;
    }
    answer.json().await.unwrap_or(Value::Null)
}

/// Waits until alice's view of a state event satisfies `check`.
async fn synapse_state_where(
    s: &Server,
    syn: &Synapse,
    room_id: &str,
    event_type: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(s, what, || async {
        let v = synapse_state(syn, room_id, event_type, "").await;
        check(&v).then_some(v)
    })
    .await
}

/// alice sets a state event on Synapse.
async fn synapse_set_state(syn: &Synapse, room_id: &str, event_type: &str, content: Value) {
    syn.alice
        .call(
            reqwest::Method::PUT,
            &format!(
                "/_matrix/client/v3/rooms/{}/state/{event_type}/",
                enc(room_id)
            ),
            Some(content),
        )
        .await;
}

async fn room_info(s: &Server, auth: &Auth, rid: &str) -> Value {
    let (status, v) = s
        .get(&format!("/api/v1/rooms.info?roomId={rid}"), auth)
        .await;
    assert_eq!(status, 200, "{v}");
    v["room"].clone()
}

/// The local id of the member named `username`.
async fn member_id(s: &Server, auth: &Auth, rid: &str, username: &str) -> String {
    let (status, v) = s
        .get(&format!("/api/v1/channels.members?roomId={rid}"), auth)
        .await;
    assert_eq!(status, 200, "{v}");
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == username)
        .and_then(|m| m["_id"].as_str())
        .unwrap_or_else(|| panic!("{username} not in {v}"))
        .to_string()
}

/// A federated channel of bob's (with carol) that alice has joined from Synapse: (rid, Matrix id).
async fn shared_channel(
    s: &Server,
    syn: &Synapse,
    bob: &Auth,
    us: &str,
    name: &str,
) -> (String, String) {
    let (status, v) = s
        .post(
            "/api/v1/channels.create",
            bob,
            json!({"name": name, "members": ["carol"], "extraData": {"federated": true}}),
        )
        .await;
    assert_eq!(status, 200, "{v}\n{}", federation_log(s));
    let rid = v["channel"]["_id"].as_str().unwrap().to_string();
    let room_id = v["channel"]["federation"]["mrid"]
        .as_str()
        .unwrap()
        .to_string();
    let joined = syn
        .alice
        .call(
            reqwest::Method::POST,
            &format!(
                "/_matrix/client/v3/join/{}?server_name={}",
                enc(&room_id),
                enc(us)
            ),
            Some(json!({})),
        )
        .await;
    assert_eq!(joined["room_id"], room_id.as_str(), "{joined}");
    (rid, room_id)
}

/// In room versions 11 and 12: bob's rename, topic, read-only and moderator reach Synapse as
/// state events; an administrator without Matrix power is refused with nothing written;
/// alice's name, topic and power levels (carol a moderator, read-only off) come back.
#[tokio::test]
async fn synapse_room_changes_both_ways() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let carol_id = format!("@carol:{us}");
        for version in ["11", "12"] {
            s.post_ok(
                "/api/v1/settings/Federation_Room_Version",
                &admin,
                json!({"value": version}),
            )
            .await;
            let (rid, room_id) =
                shared_channel(&s, &syn, &bob, &us, &format!("sync-c{version}")).await;

            // Out: name, topic, read-only, a moderator.
            let renamed = format!("renamed-c{version}");
            s.post_ok(
                "/api/v1/channels.rename",
                &bob,
                json!({"roomId": rid, "name": renamed}),
            )
            .await;
            synapse_state_where(&s, &syn, &room_id, "m.room.name", "the new name", |v| {
                v["name"] == renamed.as_str()
            })
            .await;
            s.post_ok(
                "/api/v1/channels.setTopic",
                &bob,
                json!({"roomId": rid, "topic": "agreed"}),
            )
            .await;
            synapse_state_where(&s, &syn, &room_id, "m.room.topic", "the topic", |v| {
                v["topic"] == "agreed"
            })
            .await;
            s.post_ok(
                "/api/v1/channels.setReadOnly",
                &bob,
                json!({"roomId": rid, "readOnly": true}),
            )
            .await;
            synapse_state_where(
                &s,
                &syn,
                &room_id,
                "m.room.power_levels",
                "read-only",
                |v| v["events_default"] == 50,
            )
            .await;
            let alice_uid = member_id(&s, &bob, &rid, &syn.alice_id).await;
            s.post_ok(
                "/api/v1/channels.addModerator",
                &bob,
                json!({"roomId": rid, "userId": alice_uid}),
            )
            .await;
            synapse_state_where(
                &s,
                &syn,
                &room_id,
                "m.room.power_levels",
                "alice at 50",
                |v| v["users"][&syn.alice_id] == 50,
            )
            .await;

            // Made private and public again: the join rule follows.
            for (prefix, kind, rule) in [("channels", "p", "invite"), ("groups", "c", "public")] {
                s.post_ok(
                    &format!("/api/v1/{prefix}.setType"),
                    &bob,
                    json!({"roomId": rid, "type": kind}),
                )
                .await;
                synapse_state_where(&s, &syn, &room_id, "m.room.join_rules", rule, |v| {
                    v["join_rule"] == rule
                })
                .await;
            }

            // The administrator may edit any room here: an announcement (local only) needs no
            // Matrix membership; the rest needs power in the Matrix room, which the admin does
            // not have even once joined: refused, nothing written on either side.
            s.post_ok(
                "/api/v1/channels.setAnnouncement",
                &admin,
                json!({"roomId": rid, "announcement": "local news"}),
            )
            .await;
            s.post_ok("/api/v1/channels.join", &admin, json!({"roomId": rid}))
                .await;
            let refused = s
                .post(
                    "/api/v1/channels.setTopic",
                    &admin,
                    json!({"roomId": rid, "topic": "hijacked"}),
                )
                .await;
            crate::common::assert_error(&refused, 400, Some("error-federation-not-allowed"));
            assert_eq!(room_info(&s, &bob, &rid).await["topic"], "agreed");
            let refused = s
                .post(
                    "/api/v1/channels.addModerator",
                    &admin,
                    json!({"roomId": rid, "userId": carol.user_id}),
                )
                .await;
            assert_eq!(refused.0, 400, "{}", refused.1);
            let (_, roles) = s
                .get(&format!("/api/v1/channels.roles?roomId={rid}"), &bob)
                .await;
            assert!(
                !roles.to_string().contains(&carol.user_id),
                "carol has no role: {roles}"
            );

            // In: alice (a moderator, 50) renames the room and sets its topic.
            synapse_set_state(
                &syn,
                &room_id,
                "m.room.name",
                json!({"name": "Named on Synapse"}),
            )
            .await;
            synapse_set_state(
                &syn,
                &room_id,
                "m.room.topic",
                json!({"topic": "from alice"}),
            )
            .await;
            eventually(&s, "alice's name and topic", || async {
                let room = room_info(&s, &bob, &rid).await;
                (room["fname"] == "Named on Synapse" && room["topic"] == "from alice").then_some(())
            })
            .await;
            let sub = s.subscription(&carol, &rid).await;
            assert_eq!(sub["fname"], "Named on Synapse", "{sub}");
            let lines = history(&s, &bob, &rid).await;
            let by_alice = |t: &str, msg: &str| {
                lines.iter().any(|m| {
                    m["t"] == t && m["msg"] == msg && m["u"]["username"] == syn.alice_id.as_str()
                })
            };
            assert!(
                by_alice("r", "Named on Synapse") && by_alice("room_changed_topic", "from alice"),
                "{lines:?}"
            );

            // bob makes alice an owner (100); she makes carol a moderator and lifts read-only.
            s.post_ok(
                "/api/v1/channels.addOwner",
                &bob,
                json!({"roomId": rid, "userId": alice_uid}),
            )
            .await;
            let mut levels = synapse_state_where(
                &s,
                &syn,
                &room_id,
                "m.room.power_levels",
                "alice at 100",
                |v| v["users"][&syn.alice_id] == 100,
            )
            .await;
            levels["users"][&carol_id] = json!(50);
            levels["events_default"] = json!(0);
            synapse_set_state(&syn, &room_id, "m.room.power_levels", levels).await;
            eventually(&s, "carol a moderator, read-only lifted", || async {
                let room = room_info(&s, &bob, &rid).await;
                let sub = s.subscription(&carol, &rid).await;
                let moderator = sub["roles"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == "moderator"));
                (room["ro"] == false && moderator).then_some(())
            })
            .await;
            let lines = history(&s, &bob, &rid).await;
            assert!(
                lines.iter().any(|m| m["t"] == "subscription-role-added"
                    && m["msg"] == "carol"
                    && m["role"] == "moderator"
                    && m["u"]["username"] == syn.alice_id.as_str()),
                "{lines:?}"
            );
            assert!(
                lines.iter().any(|m| m["t"] == "room-removed-read-only"),
                "{lines:?}"
            );

            // alice makes the room invite-only: a private group here.
            synapse_set_state(
                &syn,
                &room_id,
                "m.room.join_rules",
                json!({"join_rule": "invite"}),
            )
            .await;
            eventually(&s, "the room private here", || async {
                let room = room_info(&s, &bob, &rid).await;
                let sub = s.subscription(&carol, &rid).await;
                (room["t"] == "p" && sub["t"] == "p").then_some(())
            })
            .await;
        }
    }
}

/// Deletions: bob's file message and thread reply redacted on Synapse, alice's thread reply
/// redacted here; a room made here deleted (alice kicked, the room closed, bob gone); in a
/// Synapse room its admin's rename shows here, a deactivated and a deleted member leave (the
/// deactivated one, activated again, is back), a member banned there is dropped
/// here and cannot join again, alice's redacted file is deleted with its upload, and the
/// deleted room is left; a Synapse room abandoned by alice and another closed with a tombstone
/// are archived here.
#[tokio::test]
async fn synapse_deletion_sync() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let bob_id = format!("@bob:{us}");
        let carol_id = format!("@carol:{us}");
        let alice = &syn.alice;
        let (rid, room_id) = shared_channel(&s, &syn, &bob, &us, "doomed").await;

        // bob's file message, deleted: redacted on Synapse.
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"plain words".to_vec())
                .file_name("notes.txt")
                .mime_str("text/plain")
                .unwrap(),
        );
        let up: Value = s
            .client
            .post(format!("{}/api/v1/rooms.media/{rid}", s.base))
            .header("X-User-Id", &bob.user_id)
            .header("X-Auth-Token", &bob.token)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let file_id = up["file"]["_id"].as_str().expect("uploaded").to_string();
        let v = s
            .post_ok(
                &format!("/api/v1/rooms.mediaConfirm/{rid}/{file_id}"),
                &bob,
                json!({"msg": ""}),
            )
            .await;
        let file_msg = v["message"]["_id"].as_str().unwrap().to_string();
        let file_event = synapse_event(&s, &syn, &room_id, "bob's file", |e| {
            e["sender"] == bob_id.as_str() && e["content"]["msgtype"] == "m.file"
        })
        .await;
        s.post_ok(
            "/api/v1/chat.delete",
            &bob,
            json!({"roomId": rid, "msgId": file_msg}),
        )
        .await;
        let file_event_id = file_event["event_id"].as_str().unwrap().to_string();
        synapse_event(&s, &syn, &room_id, "the file redacted", |e| {
            e["event_id"] == file_event_id.as_str() && e["content"] == json!({})
        })
        .await;

        // A thread: bob's reply deleted here, alice's deleted on Synapse.
        let root = s
            .post_ok(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "thread root"}),
            )
            .await;
        let root_id = root["message"]["_id"].as_str().unwrap().to_string();
        let reply = s
            .post_ok(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "bob in the thread", "tmid": root_id}),
            )
            .await;
        let reply_id = reply["message"]["_id"].as_str().unwrap().to_string();
        let root_event = wait_for_message(&s, alice, &room_id, "thread root").await;
        let reply_event = wait_for_message(&s, alice, &room_id, "bob in the thread").await;
        assert_eq!(
            reply_event["content"]["m.relates_to"]["rel_type"], "m.thread",
            "{reply_event}"
        );
        s.post_ok(
            "/api/v1/chat.delete",
            &bob,
            json!({"roomId": rid, "msgId": reply_id}),
        )
        .await;
        let reply_event_id = reply_event["event_id"].as_str().unwrap().to_string();
        synapse_event(&s, &syn, &room_id, "bob's reply redacted", |e| {
            e["event_id"] == reply_event_id.as_str() && e["content"] == json!({})
        })
        .await;
        let theirs = alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "alice in the thread",
                    "m.relates_to": {"rel_type": "m.thread",
                        "event_id": root_event["event_id"], "is_falling_back": true,
                        "m.in_reply_to": {"event_id": root_event["event_id"]}}}),
            )
            .await;
        let shown = apogee_message(&s, &bob, &rid, "alice in the thread").await;
        let _ = shown;
        let (status, thread) = s
            .get(
                &format!("/api/v1/chat.getThreadMessages?tmid={root_id}"),
                &bob,
            )
            .await;
        assert_eq!(status, 200, "{thread}");
        assert!(
            thread.to_string().contains("alice in the thread"),
            "{thread}"
        );
        alice
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                    enc(&room_id),
                    enc(&theirs),
                    apogee_domain::random_id()
                ),
                Some(json!({})),
            )
            .await;
        eventually(&s, "alice's reply gone", || async {
            let (_, thread) = s
                .get(
                    &format!("/api/v1/chat.getThreadMessages?tmid={root_id}"),
                    &bob,
                )
                .await;
            (!thread.to_string().contains("alice in the thread")).then_some(())
        })
        .await;

        // The room made here deleted by the administrator: closed and alice kicked by bob.
        s.post_ok("/api/v1/channels.delete", &admin, json!({"roomId": rid}))
            .await;
        let kicked = eventually(&s, "alice kicked", || async {
            let v = synapse_state(&syn, &room_id, "m.room.member", &syn.alice_id).await;
            (v["membership"] == "leave").then_some(v)
        })
        .await;
        assert!(
            kicked["reason"]
                .as_str()
                .is_some_and(|r| r.contains("deleted")),
            "{kicked}"
        );
        let rules = synapse_state(&syn, &room_id, "m.room.join_rules", "").await;
        assert_eq!(rules["join_rule"], "invite", "{rules}");
        let rooms = alice
            .call(
                reqwest::Method::GET,
                "/_matrix/client/v3/joined_rooms",
                None,
            )
            .await;
        assert!(
            !rooms.to_string().contains(&room_id),
            "alice is out: {rooms}"
        );

        // A Synapse room: carol deactivated and dave deleted leave it; erin banned by alice is
        // dropped here and cannot join again; alice's file redacted on Synapse is deleted here;
        // the room deleted here, bob leaves it too.
        let dave = s.user("dave").await;
        let erin = s.user("erin").await;
        let dave_id = format!("@dave:{us}");
        let erin_id = format!("@erin:{us}");
        let theirs = synapse_room(alice, "11", "sync").await;
        let trid = join_room(&s, &syn, &theirs, &[&bob, &carol, &dave, &erin]).await;
        s.post_ok(
            "/api/v1/users.setActiveStatus",
            &admin,
            json!({"userId": carol.user_id, "activeStatus": false}),
        )
        .await;
        s.post_ok(
            "/api/v1/users.delete",
            &admin,
            json!({"userId": dave.user_id, "confirmRelinquish": true}),
        )
        .await;
        eventually(&s, "carol and dave gone on Synapse", || async {
            let joined = synapse_joined(alice, &theirs).await;
            (joined[&bob_id].is_object()
                && joined.get(&carol_id).is_none()
                && joined.get(&dave_id).is_none())
            .then_some(())
        })
        .await;
        // alice, the Synapse room's creator and admin, renames it: renamed here.
        synapse_set_state(
            &syn,
            &theirs,
            "m.room.name",
            json!({"name": "Renamed on Synapse"}),
        )
        .await;
        eventually(&s, "the Synapse room renamed here", || async {
            (room_info(&s, &bob, &trid).await["fname"] == "Renamed on Synapse").then_some(())
        })
        .await;

        // Activated again, carol is back in the (public) room.
        s.post_ok(
            "/api/v1/users.setActiveStatus",
            &admin,
            json!({"userId": carol.user_id, "activeStatus": true}),
        )
        .await;
        eventually(&s, "carol back on Synapse", || async {
            let joined = synapse_joined(alice, &theirs).await;
            joined[&carol_id].is_object().then_some(())
        })
        .await;
        alice
            .call(
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/rooms/{}/ban", enc(&theirs)),
                Some(json!({"user_id": erin_id, "reason": "spam"})),
            )
            .await;
        eventually(&s, "erin dropped", || async {
            let members = member_names(&s, &bob, "channels", &trid).await;
            (!members.contains(&"erin".to_string())).then_some(())
        })
        .await;
        let (status, v) = s
            .post("/api/v1/channels.join", &erin, json!({"roomId": trid}))
            .await;
        assert_eq!(
            (status.as_u16(), &v["errorType"]),
            (400, &json!("error-federation-banned")),
            "banned erin cannot join again: {v}"
        );
        let mxc = alice
            .upload("report.txt", "text/plain", b"quarterly".to_vec())
            .await;
        let file_event = alice
            .send(
                &theirs,
                "m.room.message",
                json!({"msgtype": "m.file", "body": "report.txt", "url": mxc,
                    "info": {"mimetype": "text/plain", "size": 9}}),
            )
            .await;
        let shown = eventually(&s, "alice's file", || async {
            history(&s, &bob, &trid)
                .await
                .into_iter()
                .find(|m| m["file"]["name"] == "report.txt")
        })
        .await;
        let upload_id = shown["file"]["_id"].as_str().unwrap().to_string();
        alice
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                    enc(&theirs),
                    enc(&file_event),
                    apogee_domain::random_id()
                ),
                Some(json!({})),
            )
            .await;
        eventually(&s, "alice's file deleted", || async {
            let lines = history(&s, &bob, &trid).await;
            (!lines.iter().any(|m| m["file"]["name"] == "report.txt")).then_some(())
        })
        .await;
        let (_, files) = s
            .get(&format!("/api/v1/channels.files?roomId={trid}"), &bob)
            .await;
        assert!(
            !files.to_string().contains(&upload_id),
            "the upload went with it: {files}"
        );
        s.post_ok("/api/v1/channels.delete", &admin, json!({"roomId": trid}))
            .await;
        eventually(&s, "bob gone on Synapse", || async {
            let joined = synapse_joined(alice, &theirs).await;
            (joined.get(&bob_id).is_none() && joined[&syn.alice_id].is_object()).then_some(())
        })
        .await;

        // A Synapse room alice abandons, and one she closes with a tombstone: archived here.
        for closing in ["leave", "tombstone"] {
            let theirs = synapse_room(alice, "11", "sync").await;
            let trid = join_room(&s, &syn, &theirs, &[&bob]).await;
            if closing == "leave" {
                alice
                    .call(
                        reqwest::Method::POST,
                        &format!("/_matrix/client/v3/rooms/{}/leave", enc(&theirs)),
                        Some(json!({})),
                    )
                    .await;
            } else {
                synapse_set_state(
                    &syn,
                    &theirs,
                    "m.room.tombstone",
                    json!({"body": "moved", "replacement_room": "!elsewhere:synapse.test"}),
                )
                .await;
            }
            eventually(&s, &format!("the room archived ({closing})"), || async {
                (room_info(&s, &bob, &trid).await["archived"] == true).then_some(())
            })
            .await;
            let lines = history(&s, &bob, &trid).await;
            assert!(
                lines.iter().any(|m| m["t"] == "room-archived"),
                "{closing}: {lines:?}"
            );
            let refused = s
                .post(
                    "/api/v1/chat.postMessage",
                    &bob,
                    json!({"roomId": trid, "text": "anyone?"}),
                )
                .await;
            assert_eq!(refused.0, 400, "{closing}: {}", refused.1);
            let sub = s.subscription(&bob, &trid).await;
            assert_eq!(sub["archived"], true, "{sub}");
            assert_eq!(sub["open"], true, "still listed: {sub}");
        }
    }
}

/// A peer's user with no power in a room made here: a rename and a ban of bob, signed by the
/// peer, are refused by the auth rules; nothing changes here.
#[tokio::test]
async fn forged_room_changes_are_refused() {
    for backend in backends() {
        let mallory = peer("mallory.test").await;
        let resolve = format!("mallory.test={}", mallory.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:{us}");
        let eve = "@eve:mallory.test";
        let v = s
            .post_ok(
                "/api/v1/channels.create",
                &bob,
                json!({"name": "guarded", "extraData": {"federated": true}}),
            )
            .await;
        let rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let room_id = v["channel"]["federation"]["mrid"]
            .as_str()
            .unwrap()
            .to_string();
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

        // eve joins (make_join / send_join).
        let target = format!(
            "/_matrix/federation/v1/make_join/{}/{}?ver=10",
            enc(&room_id),
            enc(eve)
        );
        let (status, v) = fed_get(
            port,
            &target,
            Some(&signed(&mallory.identity, &us, &Method::GET, &target)),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let join = sign(v["event"].clone());
        let (status, answer) = fed_put(
            port,
            &us,
            &mallory.identity,
            &format!(
                "/_matrix/federation/v2/send_join/{}/{}",
                enc(&room_id),
                enc(join.event_id.as_str())
            ),
            &join.to_json(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let state_id = |t: &str| {
            answer["state"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == t && e["state_key"] == "")
                .map(|e| {
                    apogee_federation::pdu::Pdu::parse(e, &rules)
                        .unwrap()
                        .event_id
                        .to_string()
                })
                .unwrap()
        };
        let auth = json!([
            state_id("m.room.create"),
            state_id("m.room.power_levels"),
            join.event_id.as_str()
        ]);
        let prev = join.event_id.to_string();
        let depth = join.depth + 1;
        for (kind, key, content) in [
            ("m.room.name", "", json!({"name": "taken over"})),
            (
                "m.room.member",
                bob_id.as_str(),
                json!({"membership": "ban"}),
            ),
        ] {
            let mut auth = auth.clone();
            if kind == "m.room.member" {
                // The target's member event is an auth event of a ban.
                let bob_join = answer["state"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["type"] == "m.room.member" && e["state_key"] == bob_id.as_str())
                    .unwrap();
                auth.as_array_mut().unwrap().push(json!(
                    apogee_federation::pdu::Pdu::parse(bob_join, &rules)
                        .unwrap()
                        .event_id
                        .to_string()
                ));
            }
            let pdu = sign(json!({
                "type": kind, "room_id": room_id, "sender": eve, "state_key": key,
                "content": content, "prev_events": [prev], "auth_events": auth, "depth": depth,
            }));
            let txn = apogee_domain::random_id();
            let (status, v) = fed_put(
                port,
                &us,
                &mallory.identity,
                &format!("/_matrix/federation/v1/send/{txn}"),
                &json!({"origin": "mallory.test", "origin_server_ts": Timestamp::now().millis(),
                    "pdus": [pdu.to_json()]}),
            )
            .await;
            assert_eq!(status, 200, "{v}");
            // Rejected by the auth rules (an error), or at most soft-failed (kept unseen).
            let result = &v["pdus"][pdu.event_id.as_str()];
            assert!(
                result["error"].is_string() || *result == json!({}),
                "{kind}: {v}"
            );
        }
        let room = room_info(&s, &bob, &rid).await;
        assert_eq!(room["fname"], "guarded", "{room}");
        let members = member_names(&s, &bob, "channels", &rid).await;
        assert!(members.contains(&"bob".to_string()), "{members:?}");
        // bob still writes, and the room still goes to mallory.
        s.post_ok(
            "/api/v1/chat.postMessage",
            &bob,
            json!({"roomId": rid, "text": "still here"}),
        )
        .await;
    }
}

/// alice downloads an `mxc://` URL through Synapse: status and bytes.
async fn synapse_download(syn: &Synapse, url: &str) -> (u16, Vec<u8>) {
    let (server, id) = url.trim_start_matches("mxc://").split_once('/').unwrap();
    let answer = syn
        .alice
        .http
        .get(format!(
            "{}/_matrix/client/v1/media/download/{server}/{id}",
            syn.url
        ))
        .bearer_auth(&syn.alice.token)
        .send()
        .await
        .unwrap();
    (
        answer.status().as_u16(),
        answer.bytes().await.unwrap().to_vec(),
    )
}

/// bob's picture set with `users.setAvatar`.
async fn set_avatar(s: &Server, bob: &Auth, bytes: &[u8]) {
    let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("me.png");
    let answer = s
        .client
        .post(format!("{}/api/v1/users.setAvatar", s.base))
        .header("X-User-Id", &bob.user_id)
        .header("X-Auth-Token", &bob.token)
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
}

/// Our avatars out: bob's uploaded picture is the `avatar_url` of his member event and of his
/// profile, and Synapse downloads it from our media endpoint; a new picture is a new member
/// event and URL, and the old URL is no longer served.
#[tokio::test]
async fn synapse_sees_our_avatars() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let mallory = peer("mallory.test").await;
        let resolve = format!("{}={},mallory.test={}", syn.name, syn.url, mallory.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let _carol = s.user("carol").await;
        let bob_id = format!("@bob:{us}");
        let alice = &syn.alice;
        let first = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR bob's first face".to_vec();
        set_avatar(&s, &bob, &first).await;
        let (_, room_id) = shared_channel(&s, &syn, &bob, &us, "faces").await;

        let prefix = format!("mxc://{us}/avatar_{}_", bob.user_id);
        let member = synapse_state(&syn, &room_id, "m.room.member", &bob_id).await;
        let url = member["avatar_url"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(url.starts_with(&prefix), "{member}");
        let (status, bytes) = synapse_download(&syn, &url).await;
        assert_eq!(status, 200, "{}", federation_log(&s));
        assert_eq!(bytes, first);
        let profile = alice
            .call(
                reqwest::Method::GET,
                &format!("/_matrix/client/v3/profile/{}", enc(&bob_id)),
                None,
            )
            .await;
        assert_eq!(profile["avatar_url"], url.as_str(), "{profile}");

        // A new picture: a new member event with a new URL; the old one is gone.
        let second = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR bob's second face".to_vec();
        set_avatar(&s, &bob, &second).await;
        let newer = eventually(&s, "bob's new avatar on Synapse", || async {
            let member = synapse_state(&syn, &room_id, "m.room.member", &bob_id).await;
            let now = member["avatar_url"].as_str()?.to_string();
            (now != url && now.starts_with(&prefix)).then_some(now)
        })
        .await;
        let (status, bytes) = synapse_download(&syn, &newer).await;
        assert_eq!((status, bytes), (200, second));
        let media = |url: &str| {
            format!(
                "/_matrix/federation/v1/media/download/{}",
                url.rsplit('/').next().unwrap()
            )
        };
        let (status, _) = signed_get(port, &us, &mallory.identity, &media(&url)).await;
        assert_eq!(status, 404, "the old picture is not served");
        let (status, _) = signed_get(port, &us, &mallory.identity, &media(&newer)).await;
        assert_eq!(status, 200, "any verified server sees the current one");
        let (status, _) = fed_get(port, &media(&newer), None).await;
        assert_eq!(status, 401);
    }
}

/// The room's picture as `/avatar/room/<rid>` serves it: (content type, bytes).
async fn room_picture(s: &Server, rid: &str) -> (String, Vec<u8>) {
    let answer = s
        .client
        .get(format!("{}/avatar/room/{rid}", s.base))
        .send()
        .await
        .unwrap();
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, answer.bytes().await.unwrap().to_vec())
}

/// Room pictures both ways: bob's new room picture reaches Synapse as `m.room.avatar`, whose
/// `mxc://` alice downloads from us (a server with no member in the room is not served it);
/// alice's picture comes back as the room's avatar here with a `room_changed_avatar` line, and
/// her removing it resets the room to its initials.
#[tokio::test]
async fn synapse_room_pictures_both_ways() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let mallory = peer("mallory.test").await;
        let resolve = format!("{}={},mallory.test={}", syn.name, syn.url, mallory.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let _carol = s.user("carol").await;
        let (rid, room_id) = shared_channel(&s, &syn, &bob, &us, "pictures").await;

        let ours = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR the room's first picture".to_vec();
        let data_url = format!("data:image/png;base64,{}", base64_encode(&ours));
        let (status, v) = s
            .post(
                "/api/v1/rooms.saveRoomSettings",
                &bob,
                json!({"rid": rid, "roomAvatar": data_url}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let prefix = format!("mxc://{us}/roomavatar_{rid}_");
        let state = synapse_state_where(
            &s,
            &syn,
            &room_id,
            "m.room.avatar",
            "bob's room picture on Synapse",
            |v| v["url"].as_str().is_some_and(|u| u.starts_with(&prefix)),
        )
        .await;
        let url = state["url"].as_str().unwrap().to_string();
        assert_eq!(synapse_download(&syn, &url).await, (200, ours.clone()));
        let media = format!(
            "/_matrix/federation/v1/media/download/{}",
            url.rsplit('/').next().unwrap()
        );
        let (status, _) = signed_get(port, &us, &mallory.identity, &media).await;
        assert_eq!(status, 404, "not served to a server outside the room");

        // bob makes alice a moderator (50, the level a room picture needs); her picture comes
        // back, announced.
        let alice_uid = member_id(&s, &bob, &rid, &syn.alice_id).await;
        s.post_ok(
            "/api/v1/channels.addModerator",
            &bob,
            json!({"roomId": rid, "userId": alice_uid}),
        )
        .await;
        synapse_state_where(
            &s,
            &syn,
            &room_id,
            "m.room.power_levels",
            "alice at 50",
            |v| v["users"][&syn.alice_id] == 50,
        )
        .await;
        let theirs = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR alice's picture of the room".to_vec();
        let mxc = syn
            .alice
            .upload("room.png", "image/png", theirs.clone())
            .await;
        synapse_set_state(&syn, &room_id, "m.room.avatar", json!({"url": mxc})).await;
        eventually(&s, "alice's room picture here", || async {
            (room_picture(&s, &rid).await == ("image/png".to_string(), theirs.clone()))
                .then_some(())
        })
        .await;
        let lines = history(&s, &bob, &rid).await;
        assert!(
            lines
                .iter()
                .any(|m| m["t"] == "room_changed_avatar"
                    && m["u"]["username"] == syn.alice_id.as_str()),
            "{lines:?}"
        );
        assert_eq!(
            synapse_download(&syn, &url).await.0,
            200,
            "Synapse keeps its copy"
        );
        let (status, _) = signed_get(port, &us, &mallory.identity, &media).await;
        assert_eq!(status, 404);

        // Removed there: initials here.
        synapse_set_state(&syn, &room_id, "m.room.avatar", json!({})).await;
        eventually(&s, "the room's initials again", || async {
            room_picture(&s, &rid)
                .await
                .0
                .starts_with("image/svg")
                .then_some(())
        })
        .await;
    }
}

/// A Synapse room that has a picture when bob joins it: the picture becomes the room's
/// avatar here after the join (fetched through the outbox, off the join's request).
#[tokio::test]
async fn synapse_room_picture_on_join() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let room_id = synapse_room(&syn.alice, "11", "pictured").await;
        let picture = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR a room pictured before the join".to_vec();
        let mxc = syn
            .alice
            .upload("room.png", "image/png", picture.clone())
            .await;
        synapse_set_state(&syn, &room_id, "m.room.avatar", json!({"url": mxc})).await;
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, _port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let (rid, _) = join_via(&s, &bob, &room_id, &syn.name).await;
        eventually(&s, "the room's picture here", || async {
            (room_picture(&s, &rid).await == ("image/png".to_string(), picture.clone()))
                .then_some(())
        })
        .await;
    }
}
