//! Black-box end-to-end encryption tests: the key relay between two users (keys, room key id,
//! suggested keys, waiting lists, rotation, resets), bad input, and encrypted rooms (no plaintext
//! accepted, stored, indexed or searchable).

mod common;

use common::ddp::Ddp;
use common::{Auth, Server, assert_error, backends, contains_bytes};
use reqwest::StatusCode;
use serde_json::{Value, json};

const E2E_ON: &[(&str, &str)] = &[("OVERWRITE_SETTING_E2E_Enable", "true")];

fn b64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
        }
    }
    out
}

/// Pseudo-random bytes (the server cannot tell them from real ciphertext).
fn noise(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2654435761) >> 13) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

fn public_key(seed: u8) -> String {
    let mut n = noise(seed, 256);
    n[0] |= 0x80;
    json!({"alg": "RSA-OAEP-256", "e": "AQAB", "ext": true, "key_ops": ["encrypt"], "kty": "RSA", "n": b64(&n, true)})
        .to_string()
}

fn private_key(seed: u8) -> String {
    json!({"iv": b64(&noise(seed, 12), false), "ciphertext": b64(&noise(seed, 1700), false), "salt": format!("v2:u{seed}:3b0f4a52-8c1d-4e7a-9f26-5d8e1c7b9a40"), "iterations": 100000})
        .to_string()
}

/// An `E2EKey`: key id + base64 of one RSA-2048 block.
fn room_key(kid: &str, seed: u8) -> String {
    format!("{kid}{}", b64(&noise(seed, 256), false))
}

const KID: &str = "a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b";
const KID2: &str = "0f0e0d0c-5b6e-4f70-8a9b-0c1d2e3f4a5b";

async fn set_keys(s: &Server, a: &Auth, seed: u8) {
    let r = s
        .post(
            "/api/v1/e2e.setUserPublicAndPrivateKeys",
            a,
            json!({"public_key": public_key(seed), "private_key": private_key(seed)}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
}

/// A private group of `owner` with `members`, encrypted.
async fn encrypted_group(s: &Server, owner: &Auth, name: &str, members: &[&str]) -> String {
    let r = s
        .post(
            "/api/v1/groups.create",
            owner,
            json!({"name": name, "members": members}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let rid = r.1["group"]["_id"].as_str().unwrap().to_string();
    let r = s
        .post(
            "/api/v1/groups.setEncrypted",
            owner,
            json!({"roomId": rid, "encrypted": true}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["group"]["encrypted"], true);
    rid
}

async fn room(s: &Server, a: &Auth, rid: &str) -> Value {
    let r = s.get(&format!("/api/v1/rooms.info?roomId={rid}"), a).await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["room"].clone()
}

/// Sends `message` (a Rocket.Chat message object) with `chat.sendMessage`.
async fn send_message(s: &Server, a: &Auth, message: Value) -> (StatusCode, Value) {
    s.post("/api/v1/chat.sendMessage", a, json!({"message": message}))
        .await
}

async fn set_room_key_id(s: &Server, a: &Auth, rid: &str, kid: &str) -> (StatusCode, Value) {
    s.post(
        "/api/v1/e2e.setRoomKeyID",
        a,
        json!({"rid": rid, "keyID": kid}),
    )
    .await
}

async fn users_without_key(s: &Server, a: &Auth, rid: &str) -> (StatusCode, Value) {
    s.get(
        &format!("/api/v1/e2e.getUsersOfRoomWithoutKey?rid={rid}"),
        a,
    )
    .await
}

async fn users_waiting_for_key(s: &Server, a: &Auth, rid: &str) -> (StatusCode, Value) {
    s.get(
        &format!("/api/v1/e2e.fetchUsersWaitingForGroupKey?roomIds[]={rid}"),
        a,
    )
    .await
}

async fn accept_suggested_key(s: &Server, a: &Auth, rid: &str) -> (StatusCode, Value) {
    s.post(
        "/api/v1/e2e.acceptSuggestedGroupKey",
        a,
        json!({"rid": rid}),
    )
    .await
}

async fn reject_suggested_key(s: &Server, a: &Auth, rid: &str) -> (StatusCode, Value) {
    s.post(
        "/api/v1/e2e.rejectSuggestedGroupKey",
        a,
        json!({"rid": rid}),
    )
    .await
}

/// Rotates the room key (`e2e.resetRoomKey`) to `key`, of id `kid`.
async fn reset_room_key(
    s: &Server,
    a: &Auth,
    rid: &str,
    key: &str,
    kid: &str,
) -> (StatusCode, Value) {
    s.post(
        "/api/v1/e2e.resetRoomKey",
        a,
        json!({"rid": rid, "e2eKey": key, "e2eKeyId": kid}),
    )
    .await
}

#[tokio::test]
async fn key_flow_between_two_users() {
    for b in backends() {
        let s = Server::start_with(b, E2E_ON).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;

        let r = s.get("/api/v1/e2e.fetchMyKeys", &alice).await;
        assert_eq!(r.1, json!({"success": true}), "no keys yet");
        set_keys(&s, &alice, 1).await;
        let r = s.get("/api/v1/e2e.fetchMyKeys", &alice).await;
        assert_eq!(r.1["public_key"], public_key(1));
        assert_eq!(r.1["private_key"], private_key(1));
        // Replacing keys needs `force`.
        let r = s
            .post(
                "/api/v1/e2e.setUserPublicAndPrivateKeys",
                &alice,
                json!({"public_key": public_key(9), "private_key": private_key(9)}),
            )
            .await;
        assert_error(&r, 400, Some("error-keys-already-set"));
        let r = s.get("/api/v1/e2e.fetchMyKeys", &alice).await;
        assert_eq!(r.1["public_key"], public_key(1), "nothing replaced");

        let rid = encrypted_group(&s, &alice, "vault", &["bob"]).await;
        // Bob sets keys after joining: he is queued for the room key.
        set_keys(&s, &bob, 2).await;
        let q = room(&s, &alice, &rid).await;
        assert_eq!(
            q["usersWaitingForE2EKeys"][0]["userId"],
            bob.user_id.as_str(),
            "{q}"
        );

        // Alice creates the room key.
        let r = set_room_key_id(&s, &alice, &rid, KID).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = set_room_key_id(&s, &alice, &rid, KID2).await;
        assert_error(&r, 400, Some("error-room-e2e-key-already-exists"));
        assert_eq!(room(&s, &alice, &rid).await["e2eKeyId"], KID);
        let alice_key = room_key(KID, 10);
        let r = s
            .post(
                "/api/v1/e2e.updateGroupKey",
                &alice,
                json!({"rid": rid, "uid": alice.user_id, "key": alice_key}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(
            s.subscription(&alice, &rid).await["E2EKey"],
            alice_key.as_str()
        );

        // Bob lacks the key and has a public key.
        let r = users_without_key(&s, &alice, &rid).await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(
            r.1["users"],
            json!([{"_id": bob.user_id, "e2e": {"public_key": public_key(2)}}])
        );
        // ... and waits for it.
        let r = users_waiting_for_key(&s, &alice, &rid).await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(
            r.1["usersWaitingForE2EKeys"][&rid],
            json!([{"_id": bob.user_id, "public_key": public_key(2)}])
        );

        // Alice suggests the key; Bob rejects it and is queued again.
        let bob_key = room_key(KID, 11);
        let old = json!([{"e2eKeyId": "0123456789ab", "ts": "2025-01-01T00:00:00.000Z", "E2EKey": room_key("0123456789ab", 12)}]);
        let provide = json!({"usersSuggestedGroupKeys": {rid.clone(): [{"_id": bob.user_id, "key": bob_key, "oldKeys": old}]}});
        let r = s
            .post(
                "/api/v1/e2e.provideUsersSuggestedGroupKeys",
                &alice,
                provide.clone(),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let sub = s.subscription(&bob, &rid).await;
        assert_eq!(sub["E2ESuggestedKey"], bob_key.as_str());
        assert_eq!(sub["suggestedOldRoomKeys"][0]["e2eKeyId"], "0123456789ab");
        assert!(
            room(&s, &alice, &rid)
                .await
                .get("usersWaitingForE2EKeys")
                .is_none()
        );
        let r = reject_suggested_key(&s, &bob, &rid).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let sub = s.subscription(&bob, &rid).await;
        assert!(sub.get("E2ESuggestedKey").is_none(), "{sub}");
        assert_eq!(
            room(&s, &alice, &rid).await["usersWaitingForE2EKeys"][0]["userId"],
            bob.user_id.as_str()
        );
        let r = accept_suggested_key(&s, &bob, &rid).await;
        assert_error(&r, 400, Some("error-no-suggested-key-available"));

        // Suggested again over the deprecated `updateGroupKey`; Bob accepts.
        let r = s
            .post(
                "/api/v1/e2e.provideUsersSuggestedGroupKeys",
                &alice,
                provide.clone(),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = accept_suggested_key(&s, &bob, &rid).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let sub = s.subscription(&bob, &rid).await;
        assert_eq!(sub["E2EKey"], bob_key.as_str());
        assert!(sub.get("E2ESuggestedKey").is_none());
        assert_eq!(sub["oldRoomKeys"][0]["e2eKeyId"], "0123456789ab");
        let r = s
            .get(
                &format!("/api/v1/e2e.fetchUsersWaitingForGroupKey?roomIds={rid}"),
                &alice,
            )
            .await;
        assert_eq!(r.1["usersWaitingForE2EKeys"], json!({}));
        let r = users_without_key(&s, &alice, &rid).await;
        assert_eq!(r.1["users"], json!([]));

        // Rotation: Bob may not (no toggle permission), Alice (owner) may.
        let new_key = room_key(KID2, 13);
        let r = reset_room_key(&s, &bob, &rid, &new_key, KID2).await;
        assert_error(&r, 403, None);
        assert_eq!(room(&s, &alice, &rid).await["e2eKeyId"], KID);
        let r = reset_room_key(&s, &alice, &rid, &new_key, KID2).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let q = room(&s, &alice, &rid).await;
        assert_eq!(q["e2eKeyId"], KID2);
        assert_eq!(
            q["usersWaitingForE2EKeys"][0]["userId"],
            bob.user_id.as_str()
        );
        let mine = s.subscription(&alice, &rid).await;
        assert_eq!(mine["E2EKey"], new_key.as_str());
        assert_eq!(mine["oldRoomKeys"][0]["e2eKeyId"], KID);
        assert_eq!(mine["oldRoomKeys"][0]["E2EKey"], alice_key.as_str());
        let theirs = s.subscription(&bob, &rid).await;
        assert!(theirs.get("E2EKey").is_none(), "{theirs}");
        let olds = theirs["oldRoomKeys"].as_array().unwrap();
        assert_eq!(olds.len(), 2, "{theirs}");
        assert_eq!(olds[0]["e2eKeyId"], KID, "newest first");
        assert_eq!(olds[0]["E2EKey"], bob_key.as_str());

        // Bob resets his own keys: keys gone, queued, logged out.
        let r = s.post("/api/v1/users.resetE2EKey", &bob, json!({})).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = s.get("/api/v1/me", &bob).await;
        assert_eq!(r.0, 401, "sessions ended: {}", r.1);
        let bob = s.login("bob").await;
        let r = s.get("/api/v1/e2e.fetchMyKeys", &bob).await;
        assert_eq!(r.1, json!({"success": true}));
        let theirs = s.subscription(&bob, &rid).await;
        assert!(theirs.get("oldRoomKeys").is_none(), "{theirs}");
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    for b in backends() {
        let s = Server::start_with(b, E2E_ON).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let set =
            |public: String, private: String| json!({"public_key": public, "private_key": private});
        let path = "/api/v1/e2e.setUserPublicAndPrivateKeys";
        let short_n = json!({"alg": "RSA-OAEP-256", "e": "AQAB", "kty": "RSA", "n": b64(&noise(1, 128), true)}).to_string();
        for body in [
            set("not json".into(), private_key(1)),
            set(short_n, private_key(1)),
            set(r#"{"kty":"oct","k":"AAAA"}"#.into(), private_key(1)),
            set(
                public_key(1),
                r#"{"iv":"@@@","ciphertext":"AA==","salt":"s","iterations":1}"#.into(),
            ),
            set(public_key(1), "plain".into()),
            json!({"public_key": public_key(1)}),
            json!({"public_key": 5, "private_key": private_key(1)}),
        ] {
            let r = s.post(path, &alice, body.clone()).await;
            assert_eq!(r.0, 400, "{body}: {}", r.1);
            assert_eq!(r.1["success"], false);
            assert!(r.1["errorType"].is_string(), "{}", r.1);
        }
        let r = s.get("/api/v1/e2e.fetchMyKeys", &alice).await;
        assert_eq!(r.1, json!({"success": true}), "nothing stored");

        set_keys(&s, &alice, 1).await;
        set_keys(&s, &carol, 3).await;
        let rid = encrypted_group(&s, &alice, "vault", &["bob"]).await;
        // Bob sets keys after joining: he is queued.
        set_keys(&s, &bob, 2).await;

        // Carol is not in the room.
        let r = users_without_key(&s, &carol, &rid).await;
        assert_error(&r, 400, Some("error-invalid-room"));
        let r = set_room_key_id(&s, &carol, &rid, KID).await;
        assert_error(&r, 400, Some("error-invalid-room"));
        assert!(room(&s, &alice, &rid).await.get("e2eKeyId").is_none());
        let r = s
            .post("/api/v1/e2e.setRoomKeyID", &alice, json!({"rid": rid}))
            .await;
        assert_error(&r, 400, Some("invalid-params"));
        let r = set_room_key_id(&s, &alice, &rid, KID).await;
        assert_eq!(r.0, 200, "{}", r.1);

        // Bob is queued; Carol (not a member) may not see who waits (Rocket.Chat lets her).
        let r = users_waiting_for_key(&s, &carol, &rid).await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["usersWaitingForE2EKeys"], json!({}));
        let r = s
            .get("/api/v1/e2e.fetchUsersWaitingForGroupKey", &alice)
            .await;
        assert_error(&r, 400, Some("invalid-params"));

        // Carol may not suggest keys in a room she is not in; nobody may suggest to non-members.
        let suggest = |uid: &str, key: String| json!({"usersSuggestedGroupKeys": {rid.clone(): [{"_id": uid, "key": key}]}});
        let p = "/api/v1/e2e.provideUsersSuggestedGroupKeys";
        let r = s
            .post(p, &carol, suggest(&bob.user_id, room_key(KID, 5)))
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = s
            .post(p, &alice, suggest(&carol.user_id, room_key(KID, 6)))
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = s
            .post(
                "/api/v1/e2e.updateGroupKey",
                &carol,
                json!({"rid": rid, "uid": bob.user_id, "key": room_key(KID, 7)}),
            )
            .await;
        assert_eq!(r.0, 200, "silently nothing, as Rocket.Chat: {}", r.1);
        let sub = s.subscription(&bob, &rid).await;
        assert!(sub.get("E2ESuggestedKey").is_none(), "{sub}");
        assert_eq!(
            room(&s, &alice, &rid).await["usersWaitingForE2EKeys"][0]["userId"],
            bob.user_id.as_str(),
            "still waiting"
        );
        // Malformed keys: wrong size, bad base64, no kid, bad old keys.
        for key in [
            format!("{KID}{}", b64(&noise(1, 128), false)),
            format!("{KID}{}", "!".repeat(344)),
            b64(&noise(1, 256), false),
            String::new(),
        ] {
            let r = s.post(p, &alice, suggest(&bob.user_id, key.clone())).await;
            assert_eq!(r.0, 400, "{key}: {}", r.1);
            let r = s
                .post(
                    "/api/v1/e2e.updateGroupKey",
                    &alice,
                    json!({"rid": rid, "uid": alice.user_id, "key": key}),
                )
                .await;
            assert_eq!(r.0, 400, "{}", r.1);
        }
        let bad_old = json!({"usersSuggestedGroupKeys": {rid.clone(): [{"_id": bob.user_id, "key": room_key(KID, 5), "oldKeys": [{"e2eKeyId": "x", "E2EKey": "short"}]}]}});
        let r = s.post(p, &alice, bad_old).await;
        assert_error(&r, 400, Some("error-invalid-params"));
        assert!(
            s.subscription(&bob, &rid)
                .await
                .get("E2ESuggestedKey")
                .is_none()
        );
        assert!(s.subscription(&alice, &rid).await.get("E2EKey").is_none());
        let r = accept_suggested_key(&s, &carol, &rid).await;
        assert_error(&r, 400, Some("error-subscription-not-found"));

        // Resets without permission.
        let r = reset_room_key(&s, &carol, &rid, &room_key(KID2, 1), KID2).await;
        assert_error(&r, 403, None);
        let r = s
            .post(
                "/api/v1/users.resetE2EKey",
                &bob,
                json!({"userId": carol.user_id}),
            )
            .await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let r = s.get("/api/v1/e2e.fetchMyKeys", &carol).await;
        assert_eq!(r.1["public_key"], public_key(3), "carol keeps her keys");
        let r = s
            .post(
                "/api/v1/users.resetE2EKey",
                &bob,
                json!({"userId": "nosuchuser"}),
            )
            .await;
        assert_error(&r, 400, Some("error-invalid-user-id"));
        // An admin may reset others' keys.
        let r = s
            .post(
                "/api/v1/users.resetE2EKey",
                &alice,
                json!({"username": "carol"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let carol = s.login("carol").await;
        let r = s.get("/api/v1/e2e.fetchMyKeys", &carol).await;
        assert_eq!(r.1, json!({"success": true}));

        // Toggling encryption needs `toggle-room-e2e-encryption` (owners, admins).
        let r = s
            .post(
                "/api/v1/groups.setEncrypted",
                &bob,
                json!({"roomId": rid, "encrypted": false}),
            )
            .await;
        assert_error(&r, 403, Some("error-unauthorized"));
        assert_eq!(room(&s, &alice, &rid).await["encrypted"], true);
    }
}

/// Every file of the data directory, as bytes (database, WAL, shared memory).
fn data_files(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(data_files(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[tokio::test]
async fn encrypted_rooms_keep_no_plaintext() {
    for b in backends() {
        let s = Server::start_with(b, E2E_ON).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let rid = encrypted_group(&s, &alice, "vault", &["bob"]).await;
        let r = s
            .post("/api/v1/groups.create", &alice, json!({"name": "plain"}))
            .await;
        let plain = r.1["group"]["_id"].as_str().unwrap().to_string();

        // A control marker sent in clear, in an unencrypted room, proves the grep below works.
        let control = "CONTROLMARKERzq81";
        let secret = "SECRETMARKERqx42";
        let r = send_message(
            &s,
            &alice,
            json!({"rid": plain, "msg": format!("hello {control}")}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);

        // Plaintext is refused in the encrypted room.
        let other_secret = "REFUSEDMARKERvv77";
        let r = send_message(&s, &alice, json!({"rid": rid, "msg": other_secret})).await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let mut ddp = Ddp::connect(&s).await;
        ddp.resume(&alice).await;
        let r = ddp
            .call("sendMessage", json!([{"rid": rid, "msg": other_secret}]))
            .await;
        assert_eq!(r["error"]["error"], "error-not-allowed", "{r}");

        // The client encrypts; the server sees only the envelope. Stand-in cipher: XOR.
        let key = noise(77, 64);
        let plaintext = json!({"msg": format!("{secret} hi @bob")}).to_string();
        let ct: Vec<u8> = plaintext
            .bytes()
            .zip(key.iter().cycle())
            .map(|(p, k)| p ^ k)
            .collect();
        let ciphertext = b64(&ct, false);
        let content = json!({"algorithm": "rc.v2.aes-sha2", "kid": KID, "iv": b64(&noise(3, 12), false), "ciphertext": ciphertext});
        let r = s
            .post(
                "/api/v1/chat.sendMessage",
                &alice,
                json!({"message": {"_id": "msgV2aaaaaaaaaaaa", "rid": rid, "t": "e2e", "e2e": "pending", "content": content,
                    "e2eMentions": {"e2eUserMentions": ["@bob"], "e2eChannelMentions": []}}}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let m = &r.1["message"];
        assert_eq!(m["t"], "e2e");
        assert_eq!(m["content"], content, "stored as received");
        assert_eq!(m["mentions"][0]["username"], "bob", "{m}");
        assert!(m.get("md").is_none(), "{m}");

        // A link to the encrypted message, posted in the plain room, quotes its author and time
        // but none of its ciphertext.
        let (_, site) = s.get("/api/v1/settings/Site_Url", &alice).await;
        let site = site["value"]
            .as_str()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let link = format!("{site}/group/vault?msg=msgV2aaaaaaaaaaaa");
        let r = send_message(
            &s,
            &alice,
            json!({"rid": plain, "msg": format!("[ ]({link}) see this")}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let quote = &r.1["message"]["attachments"][0];
        assert_eq!(quote["message_link"], link.as_str(), "{}", r.1);
        assert_eq!(quote["author_name"], "alice");
        assert_eq!(quote["text"], "");
        assert!(quote.get("md").is_none(), "{quote}");
        assert!(!r.1.to_string().contains(&ciphertext), "{}", r.1);

        // Edits replace the envelope (Rocket.Chat's encrypted chat.update has no `text`);
        // a plaintext edit of an encrypted message is refused.
        let edited = json!({"algorithm": "rc.v2.aes-sha2", "kid": KID, "iv": b64(&noise(4, 12), false), "ciphertext": b64(&noise(5, 40), false)});
        let r = s
            .post(
                "/api/v1/chat.update",
                &alice,
                json!({"roomId": rid, "msgId": "msgV2aaaaaaaaaaaa", "content": edited}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["message"]["content"], edited);
        assert_eq!(r.1["message"]["t"], "e2e");
        assert!(
            r.1["message"]["mentions"]
                .as_array()
                .is_none_or(|m| m.is_empty()),
            "{}",
            r.1
        );
        let r = s
            .post(
                "/api/v1/chat.update",
                &alice,
                json!({"roomId": rid, "msgId": "msgV2aaaaaaaaaaaa", "text": other_secret}),
            )
            .await;
        assert_error(&r, 400, Some("error-invalid-params"));
        // Legacy v1 shape (ciphertext in msg) and v1 envelope.
        let v1 = format!("0123456789ab{}", b64(&noise(5, 48), false));
        let r = send_message(&s, &alice, json!({"rid": rid, "t": "e2e", "msg": v1})).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = ddp
            .call(
                "sendMessage",
                json!([{"rid": rid, "t": "e2e", "msg": "", "content": {"algorithm": "rc.v1.aes-sha2", "ciphertext": v1}}]),
            )
            .await;
        assert_eq!(r["result"]["t"], "e2e", "{r}");
        // Bad envelopes are refused.
        for content in [
            json!({"algorithm": "rc.v2.aes-sha2", "kid": KID, "iv": "AAAA", "ciphertext": "%%%"}),
            json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": ciphertext}),
            json!("just a string"),
        ] {
            let r = send_message(
                &s,
                &alice,
                json!({"rid": rid, "t": "e2e", "content": content}),
            )
            .await;
            assert_eq!(r.0, 400, "{content}: {}", r.1);
        }

        let r = s
            .get(&format!("/api/v1/groups.history?roomId={rid}"), &bob)
            .await;
        // Three encrypted messages and the `room_e2e_enabled` notice.
        assert_eq!(r.1["messages"].as_array().unwrap().len(), 4, "{}", r.1);
        // Search sees neither the ciphertext nor anything else of encrypted messages.
        for q in [&ciphertext[..24], "e2e", "0123456789ab"] {
            let r = s
                .get(
                    &format!("/api/v1/chat.search?roomId={rid}&searchText={q}"),
                    &bob,
                )
                .await;
            assert_eq!(r.0, 200, "{}", r.1);
            assert_eq!(r.1["messages"], json!([]), "{q}: {}", r.1);
        }
        let r = s
            .get(
                &format!("/api/v1/chat.search?roomId={plain}&searchText={control}"),
                &alice,
            )
            .await;
        assert_eq!(r.1["messages"].as_array().unwrap().len(), 1, "{}", r.1);

        // With unencrypted messages allowed, plaintext is accepted again.
        let r = s
            .post(
                "/api/v1/settings/E2E_Allow_Unencrypted_Messages",
                &alice,
                json!({"value": true}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = send_message(&s, &alice, json!({"rid": rid, "msg": "allowed now"})).await;
        assert_eq!(r.0, 200, "{}", r.1);
        drop(ddp);

        if matches!(b, common::Backend::Sqlite) {
            let dir = s.stop();
            let bytes = data_files(dir.path());
            assert!(contains_bytes(&bytes, control), "the grep finds plaintext");
            assert!(
                !contains_bytes(&bytes, secret),
                "encrypted text never stored"
            );
            assert!(
                !contains_bytes(&bytes, other_secret),
                "refused text never stored"
            );
        }
    }
}

#[tokio::test]
async fn ddp_methods_key_requests_and_default_encryption() {
    for b in backends() {
        let s = Server::start_with(b, E2E_ON).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let r = s
            .post(
                "/api/v1/settings/E2E_Enabled_Default_PrivateRooms",
                &alice,
                json!({"value": true}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = s
            .post(
                "/api/v1/groups.create",
                &alice,
                json!({"name": "born-sealed", "members": ["bob"]}),
            )
            .await;
        assert_eq!(r.1["group"]["encrypted"], true, "{}", r.1);
        let rid = r.1["group"]["_id"].as_str().unwrap().to_string();

        let mut a = Ddp::connect(&s).await;
        a.resume(&alice).await;
        let mut bb = Ddp::connect(&s).await;
        bb.resume(&bob).await;
        let r = a
            .call(
                "e2e.setUserPublicAndPrivateKeys",
                json!([{"public_key": public_key(1), "private_key": private_key(1)}]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        let r = a.call("e2e.fetchMyKeys", json!([])).await;
        assert_eq!(r["result"]["public_key"], public_key(1), "{r}");
        let r = a.call("e2e.setRoomKeyID", json!([rid, KID])).await;
        assert!(r.get("error").is_none(), "{r}");
        let r = a
            .call(
                "e2e.updateGroupKey",
                json!([rid, alice.user_id, room_key(KID, 1)]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        let r = a
            .call("e2e.updateGroupKey", json!([rid, alice.user_id, "short"]))
            .await;
        assert_eq!(r["error"]["error"], "error-invalid-params", "{r}");
        let r = bb.call("e2e.setRoomKeyID", json!([rid, KID2])).await;
        assert_eq!(
            r["error"]["error"], "error-room-e2e-key-already-exists",
            "{r}"
        );

        // Bob (no key) asks; Alice, who holds it, hears it on both streams.
        let ready = a
            .sub(
                "stream-notify-user",
                &format!("{}/e2ekeyRequest", alice.user_id),
            )
            .await;
        assert_eq!(ready["msg"], "ready", "{ready}");
        let ready = a
            .sub("stream-notify-room", &format!("{rid}/e2e.keyRequest"))
            .await;
        assert_eq!(ready["msg"], "ready", "{ready}");
        let r = bb.call("e2e.requestSubscriptionKeys", json!([])).await;
        assert_eq!(r["result"], true, "{r}");
        let user_event = format!("{}/e2ekeyRequest", alice.user_id);
        let (mut on_user, mut on_room) = (None, None);
        while on_user.is_none() || on_room.is_none() {
            let f = a.until(|v| v["msg"] == "changed").await;
            match f["collection"].as_str() {
                Some("stream-notify-user") => on_user = Some(f),
                Some("stream-notify-room") => on_room = Some(f),
                _ => {}
            }
        }
        let (on_user, on_room) = (on_user.unwrap(), on_room.unwrap());
        assert_eq!(on_user["fields"]["eventName"], user_event.as_str());
        assert_eq!(on_user["fields"]["args"], json!([rid, KID]));
        assert_eq!(
            on_room["fields"]["eventName"],
            format!("{rid}/e2e.keyRequest")
        );
        assert_eq!(on_room["fields"]["args"], json!([KID]));
        // A client's own request through `stream-notify-room-users`.
        let r = bb
            .call(
                "stream-notify-room-users",
                json!([format!("{rid}/e2ekeyRequest"), rid, KID]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        let f = a
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == user_event.as_str())
            .await;
        assert_eq!(f["fields"]["args"], json!([rid, KID]));
        // Not a member: refused.
        let carol = s.user("carol").await;
        let mut c = Ddp::connect(&s).await;
        c.resume(&carol).await;
        let r = c
            .call(
                "stream-notify-room-users",
                json!([format!("{rid}/e2ekeyRequest"), rid, KID]),
            )
            .await;
        assert!(r.get("error").is_some(), "{r}");
        let r = c.call("e2e.getUsersOfRoomWithoutKey", json!([rid])).await;
        assert_eq!(r["error"]["error"], "error-invalid-room", "{r}");

        let r = bb.call("e2e.resetOwnE2EKey", json!([])).await;
        assert_eq!(r["result"], true, "{r}");

        // A new member asks for the key on joining (Rocket.Chat's afterJoinRoom).
        let r = s
            .post(
                "/api/v1/groups.invite",
                &alice,
                json!({"roomId": rid, "userId": carol.user_id}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let f = a
            .until(|v| v["msg"] == "changed" && v["collection"] == "stream-notify-room")
            .await;
        assert_eq!(f["fields"]["args"], json!([KID]), "{f}");
    }
}
