//! Operations on encrypted (`t: 'e2e'`) messages as Rocket.Chat does them, with real envelopes
//! made by `apogee-e2ee`: mentions come only from `e2eMentions` (never from the ciphertext) and
//! malformed lists are refused with nothing stored; thread replies and quotes travel inside the
//! envelope; edits over REST and DDP replace the envelope and the mentions; pinning posts
//! `message_pinned_e2e` carrying the envelope, which a member decrypts. No plaintext is stored.

mod common;

use apogee_e2ee::{E2EKey, Envelope, Keyring, RoomKey, UserKeyPair, new_key_id};
use common::ddp::Ddp;
use common::{Auth, Server, assert_error, backends, files_under};
use serde_json::{Value, json};

/// Every plaintext in this test carries it; the database must not.
const MARKER: &str = "PLAINMARKERq7z";

async fn history(s: &Server, a: &Auth, rid: &str) -> Vec<Value> {
    let r = s
        .get(&format!("/api/v1/groups.history?roomId={rid}&count=100"), a)
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["messages"].as_array().unwrap().clone()
}

async fn user_mentions(s: &Server, a: &Auth, rid: &str) -> i64 {
    let r = s
        .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), a)
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["subscription"]["userMentions"].as_i64().unwrap_or(0)
}

fn mentioned(m: &Value) -> Vec<String> {
    m["mentions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["username"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_message_operations() {
    for backend in backends() {
        let s = Server::start_with(backend, &[("OVERWRITE_SETTING_E2E_Enable", "true")]).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let _carol = s.user("carol").await;

        // An encrypted group of Alice and Bob with a room key both hold.
        let r = s
            .post_ok(
                "/api/v1/groups.create",
                &alice,
                json!({"name": "sealed", "members": ["bob"]}),
            )
            .await;
        let rid = r["group"]["_id"].as_str().unwrap().to_string();
        s.post_ok(
            "/api/v1/groups.setEncrypted",
            &alice,
            json!({"roomId": rid, "encrypted": true}),
        )
        .await;
        let kid = new_key_id();
        let room_key = RoomKey::generate();
        let alice_keys = UserKeyPair::generate().unwrap();
        s.post_ok(
            "/api/v1/e2e.setRoomKeyID",
            &alice,
            json!({"rid": rid, "keyID": kid}),
        )
        .await;
        s.post_ok("/api/v1/e2e.updateGroupKey",
            &alice,
            json!({"rid": rid, "uid": alice.user_id, "key": E2EKey::wrap(&alice_keys.public(), &kid, &room_key).unwrap()}),
        )
        .await;
        let seal = |payload: Value| {
            Envelope::seal_v2(&room_key, &kid, &payload)
                .unwrap()
                .to_value()
        };
        let open = |content: &Value| {
            Envelope::from_message(None, Some(content))
                .unwrap()
                .open(&Keyring::new().with_current(kid.clone(), room_key.clone()))
                .unwrap()
                .payload
        };

        // Mentions come from `e2eMentions`: the ciphertext names @carol, the list names @bob.
        let content = seal(json!({"msg": format!("hey @bob and @carol {MARKER} one")}));
        let r = s.post_ok("/api/v1/chat.sendMessage",
            &alice,
            json!({"message": {"_id": "e2eParentaaaaaaaa", "rid": rid, "t": "e2e", "e2e": "pending", "content": content,
                "e2eMentions": {"e2eUserMentions": ["@bob"], "e2eChannelMentions": []}}}),
        )
        .await;
        let parent = &r["message"];
        assert_eq!(mentioned(parent), vec!["bob".to_string()], "{parent}");
        assert_eq!(parent["msg"], "");
        assert_eq!(user_mentions(&s, &bob, &rid).await, 1);

        // Malformed `e2eMentions` are refused and nothing is stored.
        let before = history(&s, &alice, &rid).await.len();
        for bad in [
            json!("@bob"),
            json!({"e2eUserMentions": "@bob"}),
            json!({"e2eUserMentions": ["bob"]}),
            json!({"e2eUserMentions": [7]}),
            json!({"e2eChannelMentions": ["@general"]}),
            json!({"e2eUserMentions": ["@"]}),
            json!({"e2eUserMentions": ["@a b"]}),
            json!({"somethingElse": []}),
            json!({"e2eUserMentions": vec!["@bob"; 101]}),
        ] {
            let r = s
                .post(
                    "/api/v1/chat.sendMessage",
                    &alice,
                    json!({"message": {"rid": rid, "t": "e2e", "content": seal(json!({"msg": MARKER})), "e2eMentions": bad}}),
                )
                .await;
            assert_error(&r, 400, Some("error-invalid-params"));
        }
        assert_eq!(history(&s, &alice, &rid).await.len(), before);
        assert_eq!(user_mentions(&s, &bob, &rid).await, 1);

        // With E2E mentions off, a list mentions nobody.
        s.post_ok(
            "/api/v1/settings/E2E_Enabled_Mentions",
            &alice,
            json!({"value": false}),
        )
        .await;
        let r = s.post_ok("/api/v1/chat.sendMessage",
            &alice,
            json!({"message": {"rid": rid, "t": "e2e", "content": seal(json!({"msg": format!("@bob {MARKER}")})),
                "e2eMentions": {"e2eUserMentions": ["@bob"]}}}),
        )
        .await;
        assert!(mentioned(&r["message"]).is_empty(), "{}", r["message"]);
        assert_eq!(user_mentions(&s, &bob, &rid).await, 1);
        s.post_ok(
            "/api/v1/settings/E2E_Enabled_Mentions",
            &alice,
            json!({"value": true}),
        )
        .await;

        // A thread reply quoting the parent, over DDP: the quote is inside the envelope.
        let mut ddp = Ddp::connect(&s).await;
        ddp.resume(&bob).await;
        let link = "http://localhost:3000/group/sealed?msg=e2eParentaaaaaaaa".to_string();
        let reply_content = seal(json!({
            "msg": format!("[ ]({link}) agreed {MARKER} two"),
            "attachments": [{"message_link": link, "text": format!("hey @bob {MARKER} one")}],
        }));
        let r = ddp
            .call(
                "sendMessage",
                json!([{"_id": "e2eReplyaaaaaaaaa", "rid": rid, "tmid": "e2eParentaaaaaaaa", "t": "e2e", "msg": "",
                    "content": reply_content, "e2eMentions": {"e2eUserMentions": ["@alice"]}}]),
            )
            .await;
        let reply = &r["result"];
        assert_eq!(reply["t"], "e2e", "{r}");
        assert_eq!(reply["tmid"], "e2eParentaaaaaaaa");
        assert!(reply.get("attachments").is_none(), "{reply}");
        assert_eq!(mentioned(reply), vec!["alice".to_string()]);
        let r = s
            .get(
                "/api/v1/chat.getThreadMessages?tmid=e2eParentaaaaaaaa",
                &alice,
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let replies = r.1["messages"].as_array().unwrap();
        assert_eq!(replies.len(), 1, "{}", r.1);
        assert_eq!(replies[0]["content"], reply_content);
        let payload = open(&replies[0]["content"]);
        assert_eq!(payload["attachments"][0]["message_link"], link.as_str());
        let r = s
            .get("/api/v1/chat.getMessage?msgId=e2eParentaaaaaaaa", &alice)
            .await;
        assert_eq!(r.1["message"]["tcount"], 1, "{}", r.1);

        // Edits replace the envelope and the mentions: over REST, then DDP.
        let edited = seal(json!({"msg": format!("edited {MARKER} three @carol")}));
        let r = s.post_ok("/api/v1/chat.update",
            &alice,
            json!({"roomId": rid, "msgId": "e2eParentaaaaaaaa", "content": edited, "e2eMentions": {"e2eUserMentions": []}}),
        )
        .await;
        assert_eq!(r["message"]["content"], edited);
        assert!(mentioned(&r["message"]).is_empty(), "{}", r["message"]);
        let r = s
            .post(
                "/api/v1/chat.update",
                &alice,
                json!({"roomId": rid, "msgId": "e2eParentaaaaaaaa", "content": edited, "e2eMentions": {"e2eUserMentions": ["bob"]}}),
            )
            .await;
        assert_error(&r, 400, Some("error-invalid-params"));
        let mut ddp_alice = Ddp::connect(&s).await;
        ddp_alice.resume(&alice).await;
        let edited_again = seal(json!({"msg": format!("again {MARKER} four @bob")}));
        let r = ddp_alice
            .call(
                "updateMessage",
                json!([{"_id": "e2eParentaaaaaaaa", "rid": rid, "msg": "", "content": edited_again,
                    "e2eMentions": {"e2eUserMentions": ["@bob"]}}]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        let r = s
            .get("/api/v1/chat.getMessage?msgId=e2eParentaaaaaaaa", &bob)
            .await;
        let m = &r.1["message"];
        assert_eq!(m["content"], edited_again);
        assert_eq!(m["t"], "e2e");
        assert_eq!(mentioned(m), vec!["bob".to_string()]);
        assert!(m["editedAt"].is_string(), "{m}");
        assert_eq!(
            open(&m["content"])["msg"],
            format!("again {MARKER} four @bob")
        );

        // Pinning posts `message_pinned_e2e` with the envelope; Bob decrypts it.
        let r = s
            .post_ok(
                "/api/v1/chat.pinMessage",
                &alice,
                json!({"messageId": "e2eParentaaaaaaaa"}),
            )
            .await;
        let pin = &r["message"];
        assert_eq!(pin["t"], "message_pinned_e2e", "{pin}");
        assert_eq!(pin["attachments"][0]["content"], edited_again);
        assert_eq!(pin["attachments"][0]["text"], "");
        assert_eq!(pin["attachments"][0]["author_name"], "alice");
        let r = s
            .get(
                &format!("/api/v1/chat.getPinnedMessages?roomId={rid}"),
                &bob,
            )
            .await;
        assert_eq!(r.1["messages"][0]["_id"], "e2eParentaaaaaaaa", "{}", r.1);
        let newest = &history(&s, &bob, &rid).await[0];
        assert_eq!(newest["t"], "message_pinned_e2e");
        assert_eq!(
            open(&newest["attachments"][0]["content"])["msg"],
            format!("again {MARKER} four @bob")
        );
        // A plain message's pin stays `message_pinned` (unencrypted messages allowed for it).
        s.post_ok(
            "/api/v1/settings/E2E_Allow_Unencrypted_Messages",
            &alice,
            json!({"value": true}),
        )
        .await;
        let r = s.post_ok("/api/v1/chat.sendMessage",
            &alice,
            json!({"message": {"_id": "plainMsgaaaaaaaaa", "rid": rid, "msg": "plain control"}}),
        )
        .await;
        assert_eq!(r["message"]["msg"], "plain control");
        let r = s
            .post_ok(
                "/api/v1/chat.pinMessage",
                &alice,
                json!({"messageId": "plainMsgaaaaaaaaa"}),
            )
            .await;
        assert_eq!(r["message"]["t"], "message_pinned");
        assert!(r["message"]["attachments"][0].get("content").is_none());
        drop(ddp);
        drop(ddp_alice);

        // Nothing of the plaintexts reached the database (SQLite files; PostgreSQL is covered by
        // the same rows' shape).
        if matches!(backend, common::Backend::Sqlite) {
            let dir = s.stop();
            let mut control = false;
            for path in files_under(dir.path()) {
                let bytes = std::fs::read(&path).unwrap_or_default();
                let has =
                    |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                assert!(!has(MARKER), "plaintext in {}", path.display());
                control |= has("plain control");
            }
            assert!(control, "the plaintext control message is found");
        }
    }
}
