//! Edits, reactions, redactions and files inside history backfilled from a real Synapse: a
//! change comes in an earlier page than the message it changes (paging back goes newest
//! first), in the same page, or live after the join; the message shows as it is now.

use crate::backfill::read_back;
use crate::common::backends;
use crate::support::*;

/// Fills the room with `n` messages, so what comes before and after is a backfill page apart.
async fn filler(alice: &Matrix, room_id: &str, n: usize, tag: &str) {
    for i in 0..n {
        alice
            .send(
                room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": format!("{tag} filler {i}")}),
            )
            .await;
    }
}

async fn redact(alice: &Matrix, room_id: &str, event_id: &str) {
    alice
        .call(
            reqwest::Method::PUT,
            &format!(
                "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                enc(room_id),
                enc(event_id),
                apogee_domain::random_id()
            ),
            Some(json!({})),
        )
        .await;
}

async fn react(alice: &Matrix, room_id: &str, event_id: &str, key: &str) -> String {
    alice
        .send(
            room_id,
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}),
        )
        .await
}

async fn edit(alice: &Matrix, room_id: &str, event_id: &str, text: &str) -> String {
    alice
        .send(
            room_id,
            "m.room.message",
            json!({"msgtype": "m.text", "body": format!("* {text}"),
                "m.new_content": {"msgtype": "m.text", "body": text},
                "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}),
        )
        .await
}

fn by_event<'a>(history: &'a [Value], event_id: &str) -> Option<&'a Value> {
    history
        .iter()
        .find(|m| m["federation"]["eventId"] == event_id)
}

#[tokio::test]
async fn edits_reactions_redactions_and_files_in_backfilled_history() {
    let Some(syn) = synapse().await else {
        return;
    };
    let alice = &syn.alice;
    for backend in backends() {
        // A room per server: a room's events signed by a server that has gone cannot be
        // checked by the next one joining.
        let room_id = synapse_room(alice, "11", "Changed past").await;
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, _port) = start(
            backend,
            &[
                ("APOGEE_FEDERATION_RESOLVE", &resolve),
                ("OVERWRITE_SETTING_FileUpload_MaxFileSize", "4096"),
            ],
        )
        .await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;

        // Before bob joins. Early: a message edited and reacted to much later, one edited and
        // reacted to at once, a message redacted at once and one redacted much later, files.
        let say = |text: &str| json!({"msgtype": "m.text", "body": text});
        let later = alice
            .send(&room_id, "m.room.message", say("first draft"))
            .await;
        let soon = alice
            .send(&room_id, "m.room.message", say("typo hree"))
            .await;
        edit(alice, &room_id, &soon, "typo here").await;
        react(alice, &room_id, &soon, "👍").await;
        let taken_back = react(alice, &room_id, &soon, "🚀").await;
        redact(alice, &room_id, &taken_back).await;
        let gone_at_once = alice
            .send(&room_id, "m.room.message", say("oops, secret"))
            .await;
        redact(alice, &room_id, &gone_at_once).await;
        let gone_later = alice.send(&room_id, "m.room.message", say("regret")).await;
        let text = b"notes from before\n".to_vec();
        let mxc = alice.upload("notes.txt", "text/plain", text.clone()).await;
        let file = alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.file", "body": "notes.txt", "url": mxc,
                    "info": {"mimetype": "text/plain", "size": text.len()}}),
            )
            .await;
        let big = alice
            .upload("big.txt", "text/plain", vec![b'x'; 5000])
            .await;
        let too_big = alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.file", "body": "big.txt", "url": big,
                    "info": {"mimetype": "text/plain", "size": 5000}}),
            )
            .await;
        let in_thread = |text: &str, root: &str| {
            json!({"msgtype": "m.text", "body": text, "m.relates_to": {"rel_type": "m.thread",
                "event_id": root, "is_falling_back": true, "m.in_reply_to": {"event_id": root}}})
        };
        let root = alice
            .send(&room_id, "m.room.message", say("thread root"))
            .await;
        alice
            .send(&room_id, "m.room.message", in_thread("reply near", &root))
            .await;
        // More than a backfill page (50 events) between them and what changes them.
        filler(alice, &room_id, 55, "mid").await;
        alice
            .send(&room_id, "m.room.message", in_thread("reply far", &root))
            .await;
        edit(alice, &room_id, &later, "final text").await;
        react(alice, &room_id, &later, "🎉").await;
        let party = react(alice, &room_id, &later, "👀").await;
        redact(alice, &room_id, &gone_later).await;
        filler(alice, &room_id, 3, "end").await;

        let (rid, _) = join_via(&s, &bob, &room_id, &syn.name).await;
        let history = read_back(&s, &bob, &rid, 20).await;
        let log = || federation_log(&s);
        let texts: Vec<&str> = history.iter().filter_map(|m| m["msg"].as_str()).collect();
        assert_eq!(
            history
                .iter()
                .filter(|m| m["msg"].as_str().unwrap_or("").contains("filler"))
                .count(),
            58,
            "{texts:?}\n{}",
            log()
        );

        // The message edited two pages later shows its last text, with both reactions.
        let m = by_event(&history, &later).unwrap_or_else(|| panic!("{texts:?}\n{}", log()));
        assert_eq!(m["msg"], "final text", "{m}");
        assert!(m["editedAt"].is_string(), "{m}");
        assert_eq!(m["editedBy"]["username"], syn.alice_id.as_str(), "{m}");
        assert_eq!(
            m["reactions"][":tada:"]["usernames"],
            json!([syn.alice_id]),
            "{m}"
        );
        assert_eq!(
            m["reactions"][":eyes:"]["usernames"],
            json!([syn.alice_id]),
            "{m}"
        );
        // The one edited in its own page: its edit, one reaction (the other taken back).
        let m = by_event(&history, &soon).unwrap();
        assert_eq!(m["msg"], "typo here", "{m}");
        assert_eq!(
            m["reactions"][":thumbsup:"]["usernames"],
            json!([syn.alice_id]),
            "{m}"
        );
        assert!(m["reactions"][":rocket:"].is_null(), "{m}");
        // Redacted messages do not show; no edit shows as a message of its own.
        for id in [&gone_at_once, &gone_later] {
            assert!(by_event(&history, id).is_none(), "{id}: {texts:?}");
        }
        assert!(
            texts
                .iter()
                .all(|t| !t.contains("secret") && !t.contains("regret") && !t.starts_with('*')),
            "{texts:?}"
        );
        // The file is a file message whose download gives alice's bytes; the one over
        // FileUpload_MaxFileSize stays text, as it would live.
        let m = by_event(&history, &file).unwrap();
        assert_eq!(m["file"]["name"], "notes.txt", "{m}");
        assert_eq!(download_file(&s, &bob, m).await, text);
        let m = by_event(&history, &too_big).unwrap();
        assert!(m["file"].is_null(), "{m}");
        assert_eq!(m["msg"], "big.txt", "{m}");
        // The thread: its root counts both replies, the one a page before it included.
        let m = by_event(&history, &root).unwrap_or_else(|| panic!("{texts:?}"));
        assert_eq!(m["tcount"], 2, "{m}");
        let root_id = m["_id"].as_str().unwrap();
        let (_, v) = s
            .get(
                &format!("/api/v1/chat.getThreadMessages?tmid={root_id}"),
                &bob,
            )
            .await;
        let mut replies: Vec<&str> = v["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .filter_map(|m| m["msg"].as_str())
            .collect();
        replies.sort();
        assert_eq!(replies, ["reply far", "reply near"], "{v}");
        // None of it unread.
        let (_, sub) = s
            .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
            .await;
        assert_eq!(sub["subscription"]["unread"], 0, "{sub}");

        // Live after the join: taking back a reaction that was applied when its message was
        // backfilled after it.
        redact(alice, &room_id, &party).await;
        let server = &s;
        eventually(server, "the reaction taken back", || async {
            let history = read_back(server, &bob, &rid, 100).await;
            let m = by_event(&history, &later)?.clone();
            (m["reactions"][":eyes:"].is_null() && m["reactions"][":tada:"].is_object())
                .then_some(())
        })
        .await;
        drop(s);
    }
}

/// Against the test's own homeserver, which (unlike Synapse) serves a redacted message whole:
/// its redaction still hides it; an edit applies; a reaction in the room's history pointing at
/// a message of another room of ours is dropped — that message unchanged, the reaction not
/// stored.
#[tokio::test]
async fn relations_in_served_history_are_checked() {
    use crate::fake_homeserver::FakeHomeserver;
    for backend in backends() {
        let fake = FakeHomeserver::start("peer.test").await;
        let resolve = format!("{}={}", fake.name, fake.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        // Another federated room of ours, with a message.
        let v = s
            .post_ok(
                "/api/v1/channels.create",
                &bob,
                json!({"name": "elsewhere", "extraData": {"federated": true}}),
            )
            .await;
        let other_rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let v = s
            .post_ok(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": other_rid, "text": "mine"}),
            )
            .await;
        let mine = v["message"]["_id"].as_str().unwrap().to_string();
        let mine_event = v["message"]["federation"]["eventId"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string();

        // The fake room's history before bob joins.
        let alice = fake.alice.clone();
        let say = |text: &str| json!({"msgtype": "m.text", "body": text});
        let (kept, _) = fake.build("m.room.message", None, &alice, say("draft"));
        let (doomed, _) = fake.build("m.room.message", None, &alice, say("doomed"));
        let (cross, _) = fake.build(
            "m.reaction",
            None,
            &alice,
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": mine_event, "key": "👍"}}),
        );
        fake.build(
            "m.room.message",
            None,
            &alice,
            json!({"msgtype": "m.text", "body": "* kept", "m.new_content": say("kept"),
                "m.relates_to": {"rel_type": "m.replace", "event_id": kept}}),
        );
        let (redaction, _) =
            fake.build("m.room.redaction", None, &alice, json!({"redacts": doomed}));
        fake.build("m.room.message", None, &alice, say("last"));
        let v = s
            .post_ok(
                "/api/v1/federation/joinExternalPublicRoom",
                &bob,
                json!({"externalRoomId": fake.room_id}),
            )
            .await;
        let rid = v["room"]["_id"].as_str().unwrap().to_string();

        let history = read_back(&s, &bob, &rid, 20).await;
        let texts: Vec<&str> = history
            .iter()
            .filter(|m| m["t"].is_null())
            .filter_map(|m| m["msg"].as_str())
            .collect();
        assert_eq!(texts, ["kept", "last"], "{}", federation_log(&s));
        let m = by_event(&history, &kept).unwrap();
        assert!(m["editedAt"].is_string(), "{m}");
        // The other room's message has no reaction, and the reaction was not kept.
        let (_, v) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={mine}"), &bob)
            .await;
        assert!(v["message"]["reactions"].is_null(), "{v}");
        let stored = |id: String| {
            let fake = &fake;
            async move {
                let target = format!("/_matrix/federation/v1/event/{}", enc(&id));
                fake.call(port, Method::GET, &target, None).await.0
            }
        };
        assert_eq!(stored(cross.clone()).await, StatusCode::NOT_FOUND);
        assert_eq!(stored(redaction.clone()).await, StatusCode::OK);
        assert_eq!(stored(doomed.clone()).await, StatusCode::OK);
        drop(s);
    }
}
