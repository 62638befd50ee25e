//! An encrypted participant (bot) as the first key holder of an encrypted room: it creates the
//! room key (`e2e.bot.createRoomKey`), suggests it to the members who published public keys,
//! and hands it to a member who joins later at its next use of the room. People's clients are
//! played by `apogee-e2ee`: they open the suggested key, accept it, read the bot's message and
//! write one the bot reads, and send an encrypted file the bot decrypts (`e2e.bot.file`).

mod common;

use apogee_e2ee::{E2EKey, Envelope, FileKey, Keyring, UserKeyPair, sha256_hex, wrap_private_key};
use base64::Engine;
use common::{Auth, PASSWORD, Server, assert_error, backends};
use serde_json::{Value, json};

async fn publish_keys(s: &Server, a: &Auth) -> UserKeyPair {
    let keys = UserKeyPair::generate().unwrap();
    let wrapped = wrap_private_key(&keys.private_jwk(), "passphrase", &a.user_id).unwrap();
    s.post_ok(
        "/api/v1/e2e.setUserPublicAndPrivateKeys",
        a,
        json!({"public_key": keys.public_jwk(), "private_key": wrapped}),
    )
    .await;
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_creates_and_hands_out_the_room_key() {
    for backend in backends() {
        let s = Server::start_with(backend, &[("OVERWRITE_SETTING_E2E_Enable", "true")]).await;
        let admin = s.user("admin").await;
        let alice = s.user("alice").await;
        let carol = s.user("carol").await;
        let r = s.post_ok("/api/v1/users.create",
            &admin,
            json!({"username": "keybot", "email": "keybot@example.com", "password": PASSWORD, "name": "Key bot", "roles": ["bot"]}),
        )
        .await;
        assert_eq!(r["user"]["username"], "keybot");
        let bot = s.login("keybot").await;
        let alice_keys = publish_keys(&s, &alice).await;
        let carol_keys = publish_keys(&s, &carol).await;

        // An encrypted group nobody's client has made a key for yet.
        let r = s
            .post_ok(
                "/api/v1/groups.create",
                &admin,
                json!({"name": "botkeys", "members": ["alice"]}),
            )
            .await;
        let rid = r["group"]["_id"].as_str().unwrap().to_string();
        s.post_ok(
            "/api/v1/groups.setEncrypted",
            &admin,
            json!({"roomId": rid, "encrypted": true}),
        )
        .await;
        s.post_ok(
            "/api/v1/e2e.bots.authorize",
            &admin,
            json!({"userId": bot.user_id, "roomIds": [rid]}),
        )
        .await;
        let r = s
            .post(
                "/api/v1/e2e.bot.sendMessage",
                &bot,
                json!({"rid": rid, "msg": "too early"}),
            )
            .await;
        assert_error(&r, 400, Some("error-e2e-no-room-key"));

        // Only an authorised bot creates it, once.
        let r = s
            .post("/api/v1/e2e.bot.createRoomKey", &alice, json!({"rid": rid}))
            .await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let created = s
            .post_ok("/api/v1/e2e.bot.createRoomKey", &bot, json!({"rid": rid}))
            .await;
        let kid = created["e2eKeyId"].as_str().unwrap().to_string();
        // Alice has a public key and gets a suggestion; the admin has none.
        assert_eq!(created["suggestedTo"], json!([alice.user_id]), "{created}");
        let r = s
            .post("/api/v1/e2e.bot.createRoomKey", &bot, json!({"rid": rid}))
            .await;
        assert_error(&r, 400, Some("error-room-e2e-key-already-exists"));
        let info = s
            .get(
                &format!("/api/v1/e2e.bots.info?userId={}", bot.user_id),
                &admin,
            )
            .await;
        assert_eq!(
            info.1["bot"]["rooms"][0]["e2eKeyId"],
            kid.as_str(),
            "{}",
            info.1
        );
        assert_eq!(info.1["bot"]["rooms"][0]["hasKey"], true, "{}", info.1);

        // Alice's client opens the suggestion and accepts it.
        let sub = s.subscription(&alice, &rid).await;
        let (got_kid, room_key, _) =
            E2EKey::unwrap(&alice_keys, sub["E2ESuggestedKey"].as_str().unwrap()).unwrap();
        assert_eq!(got_kid, kid);
        s.post_ok(
            "/api/v1/e2e.acceptSuggestedGroupKey",
            &alice,
            json!({"rid": rid}),
        )
        .await;
        assert!(s.subscription(&alice, &rid).await["E2EKey"].is_string());

        // The bot writes; Alice reads. Alice writes; the bot reads.
        s.post_ok(
            "/api/v1/e2e.bot.sendMessage",
            &bot,
            json!({"rid": rid, "msg": "key made by a bot"}),
        )
        .await;
        let r = s
            .get(
                &format!("/api/v1/groups.history?roomId={rid}&count=1"),
                &alice,
            )
            .await;
        let m = &r.1["messages"][0];
        assert_eq!(m["t"], "e2e", "{m}");
        let ring = Keyring::new().with_current(kid.clone(), room_key.clone());
        let text = Envelope::from_message(None, m.get("content"))
            .unwrap()
            .open(&ring)
            .unwrap();
        assert_eq!(text.msg(), Some("key made by a bot"));
        let content = Envelope::seal_v2(&room_key, &kid, &json!({"msg": "thanks, bot"}))
            .unwrap()
            .to_value();
        s.post_ok(
            "/api/v1/chat.sendMessage",
            &alice,
            json!({"message": {"rid": rid, "t": "e2e", "content": content}}),
        )
        .await;
        let r = s
            .get(
                &format!("/api/v1/e2e.bot.messages?rid={rid}&count=100"),
                &bot,
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let texts: Vec<&str> = r.1["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["msg"].as_str())
            .collect();
        assert!(texts.contains(&"thanks, bot"), "{texts:?}");

        // Alice sends an encrypted file (Rocket.Chat 7's flow: `rooms.media` with the ciphertext
        // and encrypted metadata, then the `t: 'e2e'` message); the bot decrypts it.
        let plain_file = b"quarterly numbers: 42, 17, 99".repeat(100);
        let file_key = FileKey::generate();
        let ciphertext = file_key.apply(&plain_file);
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(ciphertext.clone())
                    .file_name(sha256_hex(b"numbers.txt")),
            )
            .text(
                "content",
                Envelope::seal_v2(
                    &room_key,
                    &kid,
                    &json!({"name": "numbers.txt", "type": "text/plain"}),
                )
                .unwrap()
                .to_json_string(),
            );
        let up = s
            .client
            .post(format!("{}/api/v1/rooms.media/{rid}", s.base))
            .header("X-User-Id", &alice.user_id)
            .header("X-Auth-Token", &alice.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(up.status(), 200);
        let up: Value = up.json().await.unwrap();
        let file_id = up["file"]["_id"].as_str().unwrap().to_string();
        let url = format!("/file-upload/{file_id}/numbers.txt");
        let payload = json!({
            "msg": "",
            "attachments": [{"title": "numbers.txt", "type": "file", "title_link": url, "title_link_download": true,
                "encryption": file_key.encryption(), "hashes": {"sha256": sha256_hex(&plain_file)}, "size": plain_file.len()}],
            "files": [{"_id": file_id, "name": "numbers.txt", "type": "text/plain", "size": plain_file.len()}],
        });
        let r = s.post_ok(&format!("/api/v1/rooms.mediaConfirm/{rid}/{file_id}"),
            &alice,
            json!({"t": "e2e", "msg": "", "content": Envelope::seal_v2(&room_key, &kid, &payload).unwrap().to_value()}),
        )
        .await;
        let file_msg = r["message"]["_id"].as_str().unwrap().to_string();
        let r = s
            .get(
                &format!("/api/v1/e2e.bot.file?msgId={file_msg}&fileId={file_id}"),
                &bot,
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["file"]["name"], "numbers.txt");
        assert_eq!(r.1["file"]["type"], "text/plain");
        let data = base64::engine::general_purpose::STANDARD
            .decode(r.1["file"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(data, plain_file);
        // Only the bot, only files of that message.
        let r = s
            .get(
                &format!("/api/v1/e2e.bot.file?msgId={file_msg}&fileId={file_id}"),
                &alice,
            )
            .await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let r = s
            .get(
                &format!("/api/v1/e2e.bot.file?msgId={file_msg}&fileId=otherfile"),
                &bot,
            )
            .await;
        assert_error(&r, 400, Some("invalid-file"));

        // Carol joins later; the bot's next use of the room hands her the key.
        s.post_ok(
            "/api/v1/groups.invite",
            &admin,
            json!({"roomId": rid, "userId": carol.user_id}),
        )
        .await;
        assert!(
            s.subscription(&carol, &rid)
                .await
                .get("E2ESuggestedKey")
                .is_none()
        );
        let r = s
            .get(&format!("/api/v1/e2e.bot.messages?rid={rid}&count=1"), &bot)
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let sub = s.subscription(&carol, &rid).await;
        let (carol_kid, carol_key, _) =
            E2EKey::unwrap(&carol_keys, sub["E2ESuggestedKey"].as_str().unwrap()).unwrap();
        assert_eq!(carol_kid, kid);
        assert_eq!(carol_key.raw(), room_key.raw());
        let waiting = s
            .get(
                &format!("/api/v1/e2e.fetchUsersWaitingForGroupKey?roomIds[]={rid}"),
                &alice,
            )
            .await;
        assert_eq!(waiting.0, 200, "{}", waiting.1);
        assert!(
            waiting.1["usersWaitingForE2EKeys"][&rid]
                .as_array()
                .is_none_or(|a| a.iter().all(|u| u["_id"] != carol.user_id.as_str())),
            "{}",
            waiting.1
        );

        // Audited with ids and counts only.
        let r = s
            .get(
                "/api/v1/audit.events?event=e2e.bot.room_key_created",
                &admin,
            )
            .await;
        let entry = &r.1["events"][0];
        assert_eq!(entry["details"]["kid"], kid.as_str(), "{}", r.1);
        assert_eq!(entry["details"]["suggestedTo"], 1);
        let r = s
            .get("/api/v1/audit.events?event=e2e.bot.file_decrypted", &admin)
            .await;
        assert_eq!(
            r.1["events"][0]["details"]["fileId"],
            file_id.as_str(),
            "{}",
            r.1
        );
    }
}
