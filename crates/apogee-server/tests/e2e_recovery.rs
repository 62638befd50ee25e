//! E2EE key recovery with M-of-N officers (docs/E2EE-RECOVERY.md), end to end with the real
//! binary and the client side done by `apogee-e2ee`: an admin names three officers with a
//! threshold of two, they publish keys, a user with an encrypted room enrols (consent recorded),
//! loses their passphrase, asks for recovery; one approval gives nothing, two release the
//! material once; the user rebuilds their private key, re-wraps it under a new passphrase and
//! reads the room's message with it. Bad input is refused with nothing written, every step is
//! audited, and neither the private key nor a share is found in the server's files or log.

mod common;

use apogee_e2ee::{
    BackupKey, E2EKey, Envelope, KeyShare, Keyring, RecoveryBackup, RoomKey, UserKeyPair,
    UserPublicKey, new_key_id, unwrap_private_key, wrap_private_key,
};
use common::ddp::Ddp;
use common::{Auth, Server, assert_error, backends, contains_bytes, expect_ok, files_under};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CONSENT: &str = "If I lose my passphrase, two of the three recovery officers may together \
                       give me back my private key. They never see it.";

async fn policy(s: &Server, a: &Auth) -> Value {
    let r = s.get("/api/v1/e2e.recovery.policy", a).await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1
}

/// The user's keypair, published as their E2EE keys under `passphrase`.
async fn publish_keys(s: &Server, a: &Auth, keys: &UserKeyPair, passphrase: &str) {
    let wrapped = wrap_private_key(&keys.private_jwk(), passphrase, &a.user_id).unwrap();
    s.post_ok(
        "/api/v1/e2e.setUserPublicAndPrivateKeys",
        a,
        json!({"public_key": keys.public_jwk(), "private_key": wrapped}),
    )
    .await;
}

/// An encrypted group of `owner` holding one `t: 'e2e'` message; returns the room id.
async fn room_with_secret(s: &Server, owner: &Auth, keys: &UserKeyPair, text: &str) -> String {
    let r = s
        .post_ok(
            "/api/v1/groups.create",
            owner,
            json!({"name": "recovered-room"}),
        )
        .await;
    let rid = r["group"]["_id"].as_str().unwrap().to_string();
    s.post_ok(
        "/api/v1/groups.setEncrypted",
        owner,
        json!({"roomId": rid, "encrypted": true}),
    )
    .await;
    let kid = new_key_id();
    let room_key = RoomKey::generate();
    s.post_ok(
        "/api/v1/e2e.setRoomKeyID",
        owner,
        json!({"rid": rid, "keyID": kid}),
    )
    .await;
    let e2e_key = E2EKey::wrap(&keys.public(), &kid, &room_key).unwrap();
    s.post_ok(
        "/api/v1/e2e.updateGroupKey",
        owner,
        json!({"rid": rid, "uid": owner.user_id, "key": e2e_key}),
    )
    .await;
    let content = Envelope::seal_v2(&room_key, &kid, &json!({"msg": text}))
        .unwrap()
        .to_value();
    s.post_ok("/api/v1/chat.sendMessage",
        owner,
        json!({"message": {"rid": rid, "t": "e2e", "e2e": "pending", "msg": "", "content": content}}),
    )
    .await;
    rid
}

/// What an enrolling client sends as shares: `backup_key` split with threshold `m` among the
/// policy's officers, each share sealed to its officer's published key.
fn sealed_shares(backup_key: &BackupKey, m: u8, policy: &Value) -> Vec<Value> {
    let officers = policy["officers"].as_array().unwrap();
    backup_key
        .split(m, officers.len() as u8)
        .unwrap()
        .iter()
        .zip(officers)
        .map(|(share, officer)| {
            let key = UserPublicKey::from_jwk(officer["publicKey"].as_str().unwrap()).unwrap();
            json!({"officerId": officer["_id"], "sealed": share.seal_to(&key).unwrap()})
        })
        .collect()
}

/// `who` asks for recovery with the restore key `restore`.
async fn request_recovery(s: &Server, who: &Auth, restore: &UserKeyPair) -> (StatusCode, Value) {
    s.post(
        "/api/v1/e2e.recovery.request",
        who,
        json!({"restorePublicKey": restore.public_jwk()}),
    )
    .await
}

/// `officer` approves `request_id` with their share re-sealed to the request's restore key.
async fn approve(s: &Server, officer: &Auth, request_id: &str, share: &str) -> (StatusCode, Value) {
    s.post(
        "/api/v1/e2e.recovery.approve",
        officer,
        json!({"requestId": request_id, "resealedShare": share}),
    )
    .await
}

/// What the user's client does with the room after restoring: unwrap the room key from their
/// subscription with their keypair and decrypt the room's last message.
async fn read_secret(s: &Server, a: &Auth, keys: &UserKeyPair, rid: &str) -> String {
    let sub = s
        .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), a)
        .await;
    assert_eq!(sub.0, 200, "{}", sub.1);
    let (kid, room_key, _) =
        E2EKey::unwrap(keys, sub.1["subscription"]["E2EKey"].as_str().unwrap()).unwrap();
    let history = s
        .get(&format!("/api/v1/groups.history?roomId={rid}&count=1"), a)
        .await;
    assert_eq!(history.0, 200, "{}", history.1);
    let m = &history.1["messages"][0];
    assert_eq!(m["t"], "e2e", "{m}");
    let envelope = Envelope::from_message(m["msg"].as_str(), m.get("content")).unwrap();
    let ring = Keyring::new().with_current(kid, room_key);
    envelope.open(&ring).unwrap().msg().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_restore_a_private_key_m_of_n() {
    for backend in backends() {
        let s = Server::start_with(backend, &[("OVERWRITE_SETTING_E2E_Enable", "true")]).await;
        let admin = s.user("recadmin").await;
        let alice = s.user("alice").await;
        let officers = [
            s.user("off1").await,
            s.user("off2").await,
            s.user("off3").await,
        ];
        let officer_ids: Vec<&str> = officers.iter().map(|o| o.user_id.as_str()).collect();

        // Alice's keys and an encrypted room with a message only her key opens.
        let alice_keys = UserKeyPair::generate().unwrap();
        publish_keys(&s, &alice, &alice_keys, "first passphrase").await;
        let secret = "the vault code is 4711";
        let rid = room_with_secret(&s, &alice, &alice_keys, secret).await;
        assert_eq!(read_secret(&s, &alice, &alice_keys, &rid).await, secret);

        // No policy yet.
        assert_eq!(policy(&s, &alice).await["enabled"], false);
        let r = s
            .post("/api/v1/e2e.recovery.enrol", &alice, json!({}))
            .await;
        assert_error(&r, 400, Some("error-e2e-recovery-disabled"));

        // Only `manage-e2e-recovery` sets officers; M ≥ 2, M ≤ N, distinct existing users.
        let set = |ids: Vec<&str>, m: i64| json!({"officers": ids, "threshold": m, "consentText": CONSENT});
        let r = s
            .post(
                "/api/v1/e2e.recovery.officers.set",
                &alice,
                set(officer_ids.clone(), 2),
            )
            .await;
        assert_error(&r, 403, Some("error-unauthorized"));
        for bad in [
            set(officer_ids.clone(), 1),
            set(officer_ids.clone(), 4),
            set(vec![officer_ids[0], officer_ids[0], officer_ids[1]], 2),
            set(vec![officer_ids[0], "nosuchuser"], 2),
            json!({"officers": officer_ids, "threshold": 2, "consentText": "  "}),
        ] {
            let r = s
                .post("/api/v1/e2e.recovery.officers.set", &admin, bad)
                .await;
            assert_eq!(r.0, 400, "{}", r.1);
        }
        assert_eq!(policy(&s, &alice).await["enabled"], false);
        let p = s
            .post_ok(
                "/api/v1/e2e.recovery.officers.set",
                &admin,
                set(officer_ids.clone(), 2),
            )
            .await;
        assert_eq!(p["version"], 1);
        assert_eq!(p["threshold"], 2);

        // Officers publish keys; others cannot; keys are checked.
        let officer_keys: Vec<UserKeyPair> =
            (0..3).map(|_| UserKeyPair::generate().unwrap()).collect();
        let r = s
            .post(
                "/api/v1/e2e.recovery.officer.setKey",
                &alice,
                json!({"publicKey": alice_keys.public_jwk()}),
            )
            .await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let r = s
            .post(
                "/api/v1/e2e.recovery.officer.setKey",
                &officers[0],
                json!({"publicKey": "{\"kty\":\"RSA\"}"}),
            )
            .await;
        assert_eq!(r.0, 400, "{}", r.1);
        for (officer, keys) in officers.iter().zip(&officer_keys) {
            s.post_ok(
                "/api/v1/e2e.recovery.officer.setKey",
                officer,
                json!({"publicKey": keys.public_jwk()}),
            )
            .await;
        }

        // Alice's client enrols: the policy's officers and keys, her consent, the sealed shares.
        let p = policy(&s, &alice).await;
        assert_eq!(p["consentText"], CONSENT);
        assert_eq!(p["enrolment"], Value::Null);
        let backup_key = BackupKey::generate();
        let backup = backup_key
            .seal_private_key(&alice_keys.private_jwk())
            .unwrap();
        let shares = sealed_shares(&backup_key, 2, &p);
        drop(backup_key);
        let enrol = json!({
            "version": 1,
            "backup": backup,
            "shares": shares,
            "consent": {"text": CONSENT, "version": 1},
        });
        let with = |field: &str, value: Value| {
            let mut b = enrol.clone();
            b[field] = value;
            b
        };
        let without_consent = {
            let mut b = enrol.clone();
            b.as_object_mut().unwrap().remove("consent");
            b
        };
        let bad_enrolments = [
            (without_consent, "error-e2e-recovery-consent-required"),
            (
                with("consent", json!({"text": "something else", "version": 1})),
                "error-e2e-recovery-policy-changed",
            ),
            (
                with("version", json!(0)),
                "error-e2e-recovery-policy-changed",
            ),
            (with("shares", json!(shares[..2])), "invalid-params"),
            (
                with("shares", json!([shares[0], shares[0], shares[1]])),
                "invalid-params",
            ),
            (
                with(
                    "shares",
                    json!([shares[0], shares[1], {"officerId": officer_ids[2], "sealed": "not base64!"}]),
                ),
                "invalid-params",
            ),
            (
                with(
                    "shares",
                    json!([shares[0], shares[1], {"officerId": officer_ids[2], "sealed": "c2hvcnQ="}]),
                ),
                "invalid-params",
            ),
            (
                with(
                    "backup",
                    json!({"iv": "AAAA", "ciphertext": backup.ciphertext}),
                ),
                "invalid-params",
            ),
        ];
        for (body, error) in bad_enrolments {
            let r = s.post("/api/v1/e2e.recovery.enrol", &alice, body).await;
            assert_error(&r, 400, Some(error));
        }
        assert_eq!(policy(&s, &alice).await["enrolment"], Value::Null);
        s.post_ok("/api/v1/e2e.recovery.enrol", &alice, enrol.clone())
            .await;
        let p = policy(&s, &alice).await;
        assert_eq!(p["enrolment"]["version"], 1);
        assert_eq!(p["enrolment"]["current"], true);

        // Alice forgets her passphrase. Her new device asks for recovery with a restore key; an
        // officer following their user stream hears of it.
        let mut officer_stream = Ddp::connect(&s).await;
        officer_stream.resume(&officers[1]).await;
        let event = format!("{}/e2e.recoveryRequest", officers[1].user_id);
        let ready = officer_stream.sub("stream-notify-user", &event).await;
        assert_eq!(ready["msg"], "ready", "{ready}");
        let restore = UserKeyPair::generate().unwrap();
        let r = s
            .post(
                "/api/v1/e2e.recovery.request",
                &alice,
                json!({"restorePublicKey": "nope"}),
            )
            .await;
        assert_eq!(r.0, 400, "{}", r.1);
        let r = expect_ok(request_recovery(&s, &alice, &restore).await);
        let request_id = r["request"]["_id"].as_str().unwrap().to_string();
        assert_eq!(r["request"]["state"], "pending");
        let heard = officer_stream
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == event.as_str())
            .await;
        let notice = &heard["fields"]["args"][0];
        assert_eq!(notice["requestId"], request_id.as_str(), "{heard}");
        assert_eq!(notice["user"]["username"], "alice");
        assert_eq!(
            notice["restoreKeyFingerprint"],
            r["request"]["restoreKeyFingerprint"]
        );
        drop(officer_stream);
        let r = request_recovery(&s, &alice, &restore).await;
        assert_error(&r, 400, Some("error-e2e-recovery-request-open"));
        let r = s
            .post("/api/v1/e2e.recovery.material", &alice, json!({}))
            .await;
        assert_error(&r, 400, Some("error-e2e-recovery-not-approved"));

        // Only officers list requests; each sees its own sealed share.
        let r = s.get("/api/v1/e2e.recovery.requests", &alice).await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let mut resealed = Vec::new();
        for (officer, keys) in officers.iter().zip(&officer_keys) {
            let r = s.get("/api/v1/e2e.recovery.requests", officer).await;
            assert_eq!(r.0, 200, "{}", r.1);
            let req = &r.1["requests"][0];
            assert_eq!(req["_id"], request_id.as_str());
            assert_eq!(req["user"]["username"], "alice");
            let restore_key =
                UserPublicKey::from_jwk(req["restorePublicKey"].as_str().unwrap()).unwrap();
            let share = KeyShare::open(req["sealedShare"].as_str().unwrap(), keys).unwrap();
            resealed.push(share.seal_to(&restore_key).unwrap());
        }

        // Wrong officers and malformed shares are refused; nothing is counted.
        for who in [&admin, &alice] {
            let r = approve(&s, who, &request_id, &resealed[0]).await;
            assert_error(&r, 400, Some("error-not-allowed"));
        }
        let r = approve(&s, &officers[0], &request_id, "AAAA").await;
        assert_error(&r, 400, Some("invalid-params"));
        let r = approve(&s, &officers[0], "nosuchrequest", &resealed[0]).await;
        assert_error(&r, 400, Some("error-e2e-recovery-request-not-found"));

        // One approval (M-1) is not enough; a replayed approval does not count twice.
        let r = expect_ok(approve(&s, &officers[0], &request_id, &resealed[0]).await);
        assert_eq!(r["approvals"], 1);
        let r = approve(&s, &officers[0], &request_id, &resealed[0]).await;
        assert_error(&r, 400, Some("error-e2e-recovery-already-approved"));
        let r = s
            .post("/api/v1/e2e.recovery.material", &alice, json!({}))
            .await;
        assert_error(&r, 400, Some("error-e2e-recovery-not-approved"));
        assert_eq!(r.1["details"]["approvals"], 1, "{}", r.1);

        // The second officer approves: the material is released once.
        let r = expect_ok(approve(&s, &officers[2], &request_id, &resealed[2]).await);
        assert_eq!(r["approvals"], 2);
        let material = s
            .post_ok("/api/v1/e2e.recovery.material", &alice, json!({}))
            .await;
        let r = s
            .post("/api/v1/e2e.recovery.material", &alice, json!({}))
            .await;
        assert_error(&r, 400, Some("error-e2e-recovery-request-not-found"));
        let r = approve(&s, &officers[1], &request_id, &resealed[1]).await;
        assert_error(&r, 400, Some("error-e2e-recovery-request-closed"));

        // Alice's client rebuilds the key and re-wraps it under a new passphrase.
        let shares: Vec<KeyShare> = material["shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| KeyShare::open(s.as_str().unwrap(), &restore).unwrap())
            .collect();
        assert_eq!(shares.len(), 2);
        let backup: RecoveryBackup = serde_json::from_value(material["backup"].clone()).unwrap();
        let one_share = BackupKey::combine(&shares[..1]).unwrap();
        assert!(
            one_share.open_private_key(&backup).is_err(),
            "M-1 shares open nothing"
        );
        let private_jwk = BackupKey::combine(&shares)
            .unwrap()
            .open_private_key(&backup)
            .unwrap();
        let restored = UserKeyPair::from_private_jwk(&private_jwk).unwrap();
        assert_eq!(restored.public_jwk(), alice_keys.public_jwk());
        let rewrapped =
            wrap_private_key(&private_jwk, "second passphrase", &alice.user_id).unwrap();
        s.post_ok(
            "/api/v1/e2e.setUserPublicAndPrivateKeys",
            &alice,
            json!({"public_key": restored.public_jwk(), "private_key": rewrapped, "force": true}),
        )
        .await;
        let mine = s.get("/api/v1/e2e.fetchMyKeys", &alice).await.1;
        let unwrapped = unwrap_private_key(
            mine["private_key"].as_str().unwrap(),
            "second passphrase",
            &alice.user_id,
        )
        .unwrap();
        let keys = UserKeyPair::from_private_jwk(&unwrapped).unwrap();
        assert_eq!(read_secret(&s, &alice, &keys, &rid).await, secret);

        // A new request can be denied by an officer; withdrawing removes the enrolment.
        let r = expect_ok(request_recovery(&s, &alice, &restore).await);
        let second = r["request"]["_id"].as_str().unwrap().to_string();
        s.post_ok(
            "/api/v1/e2e.recovery.deny",
            &officers[1],
            json!({"requestId": second}),
        )
        .await;
        let r = approve(&s, &officers[0], &second, &resealed[0]).await;
        assert_error(&r, 400, Some("error-e2e-recovery-request-closed"));
        s.post_ok("/api/v1/e2e.recovery.withdraw", &alice, json!({}))
            .await;
        assert_eq!(policy(&s, &alice).await["enrolment"], Value::Null);
        let r = request_recovery(&s, &alice, &restore).await;
        assert_error(&r, 400, Some("error-e2e-recovery-not-enrolled"));

        // A new policy version leaves older enrolments flagged for re-enrolment.
        s.post_ok("/api/v1/e2e.recovery.enrol", &alice, enrol.clone())
            .await;
        s.post_ok(
            "/api/v1/e2e.recovery.officers.set",
            &admin,
            set(officer_ids[..2].to_vec(), 2),
        )
        .await;
        let p = policy(&s, &alice).await;
        assert_eq!(p["version"], 2);
        assert_eq!(p["enrolment"]["current"], false);
        let r = s
            .post("/api/v1/e2e.recovery.enrol", &alice, enrol.clone())
            .await;
        assert_error(&r, 400, Some("error-e2e-recovery-policy-changed"));

        // An officer who enrols cannot approve their own request, and does not see it listed;
        // an officer removed from the policy can no longer approve.
        let p = policy(&s, &officers[0]).await;
        let own_key = BackupKey::generate();
        let own_backup = own_key
            .seal_private_key(&officer_keys[0].private_jwk())
            .unwrap();
        let own_shares = sealed_shares(&own_key, 2, &p);
        let own_enrol = json!({"version": 2, "backup": own_backup, "shares": own_shares,
            "consent": {"text": CONSENT, "version": 2}});
        s.post_ok(
            "/api/v1/e2e.recovery.enrol",
            &officers[0],
            own_enrol.clone(),
        )
        .await;
        let r = expect_ok(request_recovery(&s, &officers[0], &restore).await);
        let own_request = r["request"]["_id"].as_str().unwrap().to_string();
        let listed = s.get("/api/v1/e2e.recovery.requests", &officers[0]).await;
        assert_eq!(listed.1["requests"], json!([]), "{}", listed.1);
        let own_share = KeyShare::open(own_shares[0]["sealed"].as_str().unwrap(), &officer_keys[0])
            .unwrap()
            .seal_to(&restore.public())
            .unwrap();
        let r = approve(&s, &officers[0], &own_request, &own_share).await;
        assert_error(&r, 400, Some("error-not-allowed"));
        let r = approve(&s, &officers[2], &own_request, &own_share).await;
        assert_error(&r, 400, Some("error-not-allowed"));
        // Enrolling again closes the open request: its shares were of the replaced key.
        s.post_ok("/api/v1/e2e.recovery.enrol", &officers[0], own_enrol)
            .await;
        let r = approve(&s, &officers[1], &own_request, &own_share).await;
        assert_error(&r, 400, Some("error-e2e-recovery-request-closed"));

        // Every step is audited, without key material.
        let r = s.get("/api/v1/audit.events?count=100", &admin).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let events: Vec<&str> = r.1["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .filter(|e| e.starts_with("e2e.recovery."))
            .collect();
        for wanted in [
            "e2e.recovery.policy_changed",
            "e2e.recovery.officer_key_set",
            "e2e.recovery.enrolled",
            "e2e.recovery.requested",
            "e2e.recovery.approved",
            "e2e.recovery.material_released",
            "e2e.recovery.denied",
            "e2e.recovery.withdrawn",
        ] {
            assert!(events.contains(&wanted), "{wanted} missing from {events:?}");
        }
        let audit_text = r.1.to_string();
        assert!(!audit_text.contains(&resealed[0]));
        assert!(!audit_text.contains(&backup.ciphertext));

        // The private key's secret exponent is nowhere in the server's files or its log.
        let d: Value = serde_json::from_str(&private_jwk).unwrap();
        let d = d["d"].as_str().unwrap().to_string();
        for path in files_under(s.data_dir()) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !contains_bytes(&bytes, &d),
                "private key in {}",
                path.display()
            );
        }
    }
}
