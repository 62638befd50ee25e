//! The interop scenario with the Synapse user driven by a real Matrix client library,
//! matrix-nio (`scripts/lib/nio_peer.py`), and ours over Rocket.Chat's REST API: in rooms of
//! versions 10, 11 and 12 — join, messages with mentions, edits, reactions, redactions and files
//! both ways, and leaves both ways.

use crate::common::{Auth, backends};
use crate::content::{apogee_message, history};
use crate::media::{png, upload};
use crate::support::*;

/// alice on Synapse, driven with matrix-nio.
struct Nio {
    python: String,
    peer: String,
}

impl Nio {
    /// `None` (the test is skipped) outside `scripts/with-synapse.sh`.
    fn new() -> Option<Self> {
        Some(Nio {
            python: std::env::var("APOGEE_TEST_NIO_PYTHON").ok()?,
            peer: std::env::var("APOGEE_TEST_NIO_PEER").ok()?,
        })
    }

    /// One command of `nio_peer.py`; its JSON answer.
    fn run(&self, args: &[&str]) -> Value {
        let out = Command::new(&self.python)
            .arg(&self.peer)
            .args(args)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "nio {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON from nio_peer.py")
    }

    fn send(&self, room: &str, kind: &str, content: Value) -> String {
        self.run(&["send", room, kind, &content.to_string()])["event_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until alice's client sees an event `pick` finds.
    async fn event(
        &self,
        s: &Server,
        room: &str,
        what: &str,
        pick: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(s, what, || async {
            let events = self.run(&["messages", room]);
            events.as_array().unwrap().iter().find(|e| pick(e)).cloned()
        })
        .await
    }
}

/// A message of the room here, by id, once `check` holds for it.
async fn message_where(
    s: &Server,
    bob: &Auth,
    rid: &str,
    mid: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    eventually(s, what, || async {
        history(s, bob, rid)
            .await
            .into_iter()
            .find(|m| m["_id"] == mid && check(m))
    })
    .await
}

#[tokio::test]
async fn a_matrix_nio_user_and_a_rocket_chat_user_share_rooms_of_each_version() {
    let (Some(syn), Some(nio)) = (synapse().await, Nio::new()) else {
        eprintln!("skipped: no Synapse or matrix-nio (run under scripts/with-synapse.sh)");
        return;
    };
    let alice_id = syn.alice_id.as_str();
    for backend in backends() {
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let bob_id = format!("@bob:{us}");
        let carol_id = format!("@carol:{us}");
        for version in ["10", "11", "12"] {
            let room = nio.run(&["create", version, &format!("nio v{version}")])["room_id"]
                .as_str()
                .unwrap()
                .to_string();
            let (rid, _) = join_via(&s, &bob, &room, &syn.name).await;
            join_via(&s, &carol, &room, &syn.name).await;
            nio.event(&s, &room, "bob's join", |e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == bob_id.as_str()
                    && e["content"]["membership"] == "join"
            })
            .await;

            // In: a message mentioning bob, its edit, a reaction to it, then its redaction.
            let hello = nio.send(
                &room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "bob: hello from nio",
                    "m.mentions": {"user_ids": [bob_id]}}),
            );
            let m = apogee_message(&s, &bob, &rid, "hello from nio").await;
            assert_eq!(m["mentions"][0]["username"], "bob", "v{version}: {m}");
            let mid = m["_id"].as_str().unwrap().to_string();
            nio.send(
                &room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "* hello again from nio",
                    "m.new_content": {"msgtype": "m.text", "body": "hello again from nio"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": hello}}),
            );
            message_where(&s, &bob, &rid, &mid, "alice's edit", |m| {
                m["msg"] == "hello again from nio" && !m["editedAt"].is_null()
            })
            .await;
            nio.send(
                &room,
                "m.reaction",
                json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": hello, "key": "👍"}}),
            );
            message_where(&s, &bob, &rid, &mid, "alice's reaction", |m| {
                m["reactions"][":thumbsup:"]["usernames"]
                    .as_array()
                    .is_some_and(|u| u.iter().any(|n| n == alice_id))
            })
            .await;
            nio.run(&["redact", &room, &hello]);
            eventually(&s, "alice's redaction", || async {
                (!history(&s, &bob, &rid)
                    .await
                    .iter()
                    .any(|m| m["_id"] == mid.as_str()))
                .then_some(())
            })
            .await;

            // Out: bob's message mentioning alice, its edit, a reaction, then its deletion.
            let (_, v) = s
                .post(
                    "/api/v1/chat.postMessage",
                    &bob,
                    json!({"roomId": rid, "text": format!("hi {alice_id} from apogee")}),
                )
                .await;
            let ours = v["message"]["_id"].as_str().unwrap().to_string();
            let sent = nio
                .event(&s, &room, "bob's message", |e| {
                    e["sender"] == bob_id.as_str()
                        && e["content"]["body"]
                            .as_str()
                            .is_some_and(|b| b.ends_with("from apogee"))
                })
                .await;
            assert_eq!(
                sent["content"]["m.mentions"]["user_ids"],
                json!([alice_id]),
                "v{version}: {sent}"
            );
            let event_id = sent["event_id"].as_str().unwrap().to_string();
            s.post_ok(
                "/api/v1/chat.update",
                &bob,
                json!({"roomId": rid, "msgId": ours, "text": "edited on apogee"}),
            )
            .await;
            nio.event(&s, &room, "bob's edit", |e| {
                e["content"]["m.relates_to"]["rel_type"] == "m.replace"
                    && e["content"]["m.relates_to"]["event_id"] == event_id.as_str()
                    && e["content"]["m.new_content"]["body"] == "edited on apogee"
            })
            .await;
            s.post_ok(
                "/api/v1/chat.react",
                &bob,
                json!({"messageId": ours, "emoji": ":smile:"}),
            )
            .await;
            nio.event(&s, &room, "bob's reaction", |e| {
                e["type"] == "m.reaction"
                    && e["content"]["m.relates_to"]["event_id"] == event_id.as_str()
            })
            .await;
            s.post_ok(
                "/api/v1/chat.delete",
                &bob,
                json!({"roomId": rid, "msgId": ours}),
            )
            .await;
            nio.event(&s, &room, "bob's deletion", |e| {
                e["type"] == "m.room.redaction"
                    && (e["redacts"] == event_id.as_str()
                        || e["content"]["redacts"] == event_id.as_str())
            })
            .await;

            // Files both ways, byte for byte.
            let notes = format!("notes of room version {version}\n").into_bytes();
            let path = std::env::temp_dir().join(format!("nio-notes-{port}-{version}.txt"));
            std::fs::write(&path, &notes).unwrap();
            let mxc = nio.run(&["upload", path.to_str().unwrap(), "text/plain"])["content_uri"]
                .as_str()
                .unwrap()
                .to_string();
            std::fs::remove_file(&path).ok();
            nio.send(
                &room,
                "m.room.message",
                json!({"msgtype": "m.file", "body": "notes.txt", "url": mxc,
                    "info": {"mimetype": "text/plain", "size": notes.len()}}),
            );
            let m = eventually(&s, "alice's file", || async {
                history(&s, &bob, &rid)
                    .await
                    .into_iter()
                    .find(|m| m["file"]["name"] == "notes.txt")
            })
            .await;
            assert_eq!(download_file(&s, &bob, &m).await, notes);
            let picture = png(3000);
            let (status, up) = upload(&s, &bob, &rid, "cat.png", picture.clone()).await;
            assert_eq!(status, 200, "{up}");
            let file_id = up["file"]["_id"].as_str().unwrap().to_string();
            s.post_ok(
                &format!("/api/v1/rooms.mediaConfirm/{rid}/{file_id}"),
                &bob,
                json!({"msg": ""}),
            )
            .await;
            let image = nio
                .event(&s, &room, "bob's picture", |e| {
                    e["sender"] == bob_id.as_str() && e["content"]["msgtype"] == "m.image"
                })
                .await;
            let url = image["content"]["url"].as_str().unwrap();
            let downloaded = nio.run(&["download", url])["base64"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(downloaded, base64_encode(&picture), "v{version}");

            // Leaves both ways.
            s.post_ok("/api/v1/channels.leave", &carol, json!({"roomId": rid}))
                .await;
            nio.event(&s, &room, "carol's leave", |e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == carol_id.as_str()
                    && e["content"]["membership"] == "leave"
            })
            .await;
            nio.run(&["leave", &room]);
            eventually(&s, "alice's leave", || async {
                let (_, v) = s
                    .get(&format!("/api/v1/channels.members?roomId={rid}"), &bob)
                    .await;
                let members = v["members"].as_array()?.clone();
                (!members.iter().any(|m| m["username"] == alice_id)).then_some(())
            })
            .await;
        }
    }
}
