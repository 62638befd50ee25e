//! Every vector in `tests/e2ee/e2ee-vectors.json` (written by WebCrypto in Node, `e2ee-vectors.mjs`)
//! decrypts here, and the deterministic ones are re-created byte for byte.

use apogee_e2ee::*;
use rand::{CryptoRng, RngCore};
use serde_json::{Value, json};

/// The committed vectors, or a freshly generated file (`APOGEE_E2EE_VECTORS`, as scripts/test.sh
/// does, so WebCrypto's randomised OAEP of this run is opened too).
fn vectors() -> Value {
    let path = std::env::var("APOGEE_E2EE_VECTORS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/e2ee/e2ee-vectors.json"
        )
        .to_string()
    });
    serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors")).expect("JSON")
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path}"))
}

fn hexd(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// Yields the given bytes as "randomness": the OAEP seed of a vector.
struct FixedRng(Vec<u8>);
impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        unimplemented!()
    }
    fn next_u64(&mut self) -> u64 {
        unimplemented!()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(self.0.len() >= dest.len(), "fixed RNG exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

fn user(v: &Value) -> UserKeyPair {
    UserKeyPair::from_private_jwk(s(v, "/user/private_jwk")).expect("private JWK")
}

fn keyring(v: &Value) -> Keyring {
    let keys = user(v);
    let (kid, key, _) = E2EKey::unwrap(&keys, s(v, "/room/E2EKey")).unwrap();
    let mut ring = Keyring::new().with_current(kid, key);
    for old in v
        .pointer("/room/subscription/oldRoomKeys")
        .unwrap()
        .as_array()
        .unwrap()
    {
        let (kid, key, _) = E2EKey::unwrap(&keys, old["E2EKey"].as_str().unwrap()).unwrap();
        assert_eq!(kid, old["e2eKeyId"].as_str().unwrap());
        ring.add_old(kid, key);
    }
    ring
}

#[test]
fn user_keys_round_trip_as_jwk_strings() {
    let v = vectors();
    let keys = user(&v);
    // Re-exported in the same (alphabetical) member order, byte for byte.
    assert_eq!(keys.public_jwk(), s(&v, "/user/public_key"));
    assert_eq!(keys.private_jwk().as_str(), s(&v, "/user/private_jwk"));
    assert_eq!(
        UserPublicKey::from_jwk(s(&v, "/user/public_key")).unwrap(),
        keys.public()
    );
}

#[test]
fn private_key_current_form_unwraps_and_rewraps_identically() {
    let v = vectors();
    let (uid, pass) = (s(&v, "/user/userId"), s(&v, "/user/passphrase"));
    let stored = s(&v, "/user/private_key_v2/stored");
    let jwk = unwrap_private_key(stored, pass, uid).unwrap();
    assert_eq!(jwk.as_str(), s(&v, "/user/private_jwk"));
    let params = WrapParams {
        salt: s(&v, "/user/private_key_v2/salt").to_string(),
        iv: hexd(s(&v, "/user/private_key_v2/iv_hex"))
            .try_into()
            .unwrap(),
        iterations: 100_000,
    };
    assert_eq!(wrap_private_key_with(&jwk, pass, &params).unwrap(), stored);
    assert_eq!(
        s(&v, "/user/fetchMyKeys_response/private_key"),
        stored,
        "fetchMyKeys serves the stored string"
    );
    assert_eq!(
        unwrap_private_key(stored, &format!("{pass}x"), uid).unwrap_err(),
        E2eeError::Decrypt
    );
}

#[test]
fn private_key_legacy_form_unwraps_and_rewraps_identically() {
    let v = vectors();
    let (uid, pass) = (s(&v, "/user/userId"), s(&v, "/user/passphrase"));
    let stored = s(&v, "/user/private_key_v1_legacy/stored");
    let jwk = unwrap_private_key(stored, pass, uid).unwrap();
    assert_eq!(jwk.as_str(), s(&v, "/user/private_jwk"));
    let iv = hexd(s(&v, "/user/private_key_v1_legacy/iv_hex"))
        .try_into()
        .unwrap();
    let again = wrap_private_key_legacy(&jwk, pass, uid, iv).unwrap();
    let want: Value = serde_json::from_str(stored).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), want);
    // Another user's id is another salt.
    assert!(unwrap_private_key(stored, pass, "someoneElse").is_err());
}

#[test]
fn room_keys_unwrap_from_e2ekeys_and_the_deterministic_one_is_recreated() {
    let v = vectors();
    let keys = user(&v);
    let kid = s(&v, "/room/e2eKeyId");
    for field in [
        "/room/E2EKey",
        "/room/E2EKey_webcrypto_random",
        "/room/subscription/E2EKey",
    ] {
        let (got_kid, key, jwk) = E2EKey::unwrap(&keys, s(&v, field)).unwrap();
        assert_eq!(got_kid, kid, "{field}");
        assert_eq!(jwk.as_str(), s(&v, "/room/session_key_exported_string"));
        assert_eq!(key.raw(), hexd(s(&v, "/room/room_key_raw_hex")));
        assert_eq!(key.alg(), RoomKeyAlg::Gcm256);
        assert_eq!(key.to_jwk().as_str(), jwk.as_str());
    }
    let key = RoomKey::from_jwk(s(&v, "/room/session_key_exported_string")).unwrap();
    let mut rng = FixedRng(hexd(s(&v, "/room/E2EKey_oaep_seed_hex")));
    let again = E2EKey::wrap_with(&mut rng, &keys.public(), kid, &key).unwrap();
    assert_eq!(again, s(&v, "/room/E2EKey"));
    assert_eq!(again.len(), 380);

    // The legacy A128CBC key kept in oldRoomKeys, with its 12-character kid.
    let old = &v.pointer("/room/subscription/oldRoomKeys/0").unwrap();
    let (okid, okey, ojwk) = E2EKey::unwrap(&keys, old["E2EKey"].as_str().unwrap()).unwrap();
    assert_eq!(
        okid,
        s(&v, "/room/legacy_room_key/kid_sha256_rule_rc_7_0_to_7_12")
    );
    assert_eq!(
        ojwk.as_str(),
        s(&v, "/room/legacy_room_key/session_key_exported_string")
    );
    assert_eq!(okey.alg(), RoomKeyAlg::Cbc128);
    assert_eq!(okey.raw(), hexd(s(&v, "/room/legacy_room_key/raw_hex")));
    let mut rng = FixedRng(hexd(s(&v, "/room/legacy_room_key/oaep_seed_hex")));
    let again = E2EKey::wrap_jwk_with(&mut rng, &keys.public(), &okid, &ojwk).unwrap();
    assert_eq!(again, old["E2EKey"].as_str().unwrap());
}

#[test]
fn v2_message_decrypts_and_is_recreated_byte_for_byte() {
    let v = vectors();
    let ring = keyring(&v);
    let m = v.pointer("/messages/v2/message").unwrap();
    let env = Envelope::from_message(None, m.get("content")).unwrap();
    assert_eq!(env.version, 2);
    let out = env.open(&ring).unwrap();
    let want: Value = serde_json::from_str(s(&v, "/messages/v2/plaintext_payload")).unwrap();
    assert_eq!(out.payload, want);
    assert_eq!(out.msg(), Some("Hello @alice — héllo wörld 🌍 (rc.v2)"));

    let (kid, key) = ring.current().unwrap();
    let iv = hexd(s(&v, "/messages/v2/iv_hex"));
    let sealed = Envelope::seal_v2_with_iv(key, kid, &iv, &want).unwrap();
    assert_eq!(&sealed.to_value(), m.get("content").unwrap());
    // Same member order as the client: algorithm, kid, iv, ciphertext.
    let want = format!(
        r#"{{"algorithm":"rc.v2.aes-sha2","kid":"{kid}","iv":"{}","ciphertext":"{}"}}"#,
        s(&v, "/messages/v2/message/content/iv"),
        s(&v, "/messages/v2/message/content/ciphertext")
    );
    assert_eq!(sealed.to_json_string(), want);
}

#[test]
fn v1_and_transitional_envelopes_decrypt() {
    let v = vectors();
    let ring = keyring(&v);

    // Oldest: the v1 string in `msg`, payload {_id, text, userId, ts}.
    let m = v.pointer("/messages/v1_legacy_msg_field/message").unwrap();
    let env = Envelope::from_message(m["msg"].as_str(), m.get("content")).unwrap();
    assert_eq!(env.version, 1);
    let out = env.open(&ring).unwrap();
    assert_eq!(out.msg(), Some("legacy v1 text"));
    assert_eq!(out.payload["ts"], json!({"$date": 1_700_000_000_000_i64}));
    // Re-created byte for byte from the vector's IV.
    let payload = s(&v, "/messages/v1_legacy_msg_field/plaintext_payload");
    let iv = hexd(s(&v, "/messages/v1_legacy_msg_field/iv_hex"));
    let old = ring.find(&env.kid).unwrap();
    assert_eq!(
        Envelope::seal_v1_string(old, &env.kid, &iv, payload).unwrap(),
        m["msg"].as_str().unwrap()
    );

    for (name, text) in [
        ("v1_content_cbc", "v1 content envelope"),
        (
            "v2_content_over_legacy_cbc_key",
            "v2 envelope, legacy AES-CBC-128 room key",
        ),
    ] {
        let content = v.pointer(&format!("/messages/{name}/content")).unwrap();
        let out = Envelope::from_message(None, Some(content))
            .unwrap()
            .open(&ring)
            .unwrap();
        assert_eq!(out.msg(), Some(text), "{name}");
    }

    // rc.v1 over the A256GCM key with a 16-byte IV, under the key's 12-character SHA-256 kid.
    let c = v
        .pointer("/messages/v1_content_gcm_16byte_iv/content")
        .unwrap();
    let (_, current) = ring.current().unwrap();
    let gcm_ring = Keyring::new().with_current(
        s(&v, "/messages/v1_content_gcm_16byte_iv/kid"),
        current.clone(),
    );
    let out = Envelope::from_message(None, Some(c))
        .unwrap()
        .open(&gcm_ring)
        .unwrap();
    assert_eq!(out.msg(), Some("v1 envelope, AES-GCM key, 16-byte IV"));
}

#[test]
fn files_use_a_64_bit_counter() {
    let v = vectors();
    let f = v.pointer("/file").unwrap();
    let key = FileKey::from_encryption(&json!({"key": f["file_key_jwk"], "iv": f["counter_b64"]}))
        .unwrap();
    let plain = unb64(s(&v, "/file/plaintext_b64"), "p").unwrap();
    let ct = key.apply(&plain);
    assert_eq!(b64(&ct), s(&v, "/file/ciphertext_b64"));
    assert_ne!(b64(&ct), s(&v, "/file/ciphertext_if_length_128_b64"));
    assert_eq!(key.apply(&ct), plain);
    assert_eq!(sha256_hex(&plain), s(&v, "/file/sha256_of_plaintext_hex"));
    assert_eq!(
        sha256_hex(s(&v, "/file/name").as_bytes()),
        s(&v, "/file/upload_filename")
    );
    assert_eq!(
        key.encryption(),
        json!({"key": f["file_key_jwk"], "iv": f["counter_b64"]})
    );

    // The upload's `content` and the file message's content both open with the room key.
    let ring = keyring(&v);
    let upload = Envelope::from_message(None, f.get("upload_content"))
        .unwrap()
        .open(&ring)
        .unwrap();
    let want: Value = serde_json::from_str(s(&v, "/file/upload_content_plaintext")).unwrap();
    assert_eq!(upload.payload, want);
    let form: Value = serde_json::from_str(s(&v, "/file/rooms_media_form/content")).unwrap();
    assert_eq!(&form, f.get("upload_content").unwrap());
    let msg = Envelope::from_message(None, f.pointer("/message/content"))
        .unwrap()
        .open(&ring)
        .unwrap();
    let want: Value = serde_json::from_str(s(&v, "/file/message_content_plaintext")).unwrap();
    assert_eq!(msg.payload, want);
    // The attachment's key opens the file.
    let att_key = FileKey::from_encryption(&msg.payload["attachments"][0]["encryption"]).unwrap();
    assert_eq!(att_key.apply(&ct), plain);
}

#[test]
fn bad_input_is_refused_without_panics() {
    let v = vectors();
    let keys = user(&v);
    let ring = keyring(&v);
    // Public JWK: private members, wrong alg, wrong size, ext:false, missing usage.
    assert!(UserPublicKey::from_jwk(s(&v, "/user/private_jwk")).is_err());
    let mut pubj: Value = serde_json::from_str(s(&v, "/user/public_key")).unwrap();
    for (k, bad) in [
        ("alg", json!("RSA-OAEP")),
        ("ext", json!(false)),
        ("key_ops", json!(["decrypt"])),
        ("n", json!("AQAB")),
        ("n", json!("**")),
    ] {
        let saved = pubj[k].clone();
        pubj[k] = bad;
        assert!(UserPublicKey::from_jwk(&pubj.to_string()).is_err(), "{k}");
        pubj[k] = saved;
    }
    assert!(UserPublicKey::from_jwk("not json").is_err());
    // E2EKey: too short, bad base64, wrong block, wrong recipient.
    assert!(E2EKey::unwrap(&keys, "abc").is_err());
    let good = s(&v, "/room/E2EKey");
    let bad_b64 = format!("{}!{}", &good[..36], &good[37..]);
    assert!(E2EKey::unwrap(&keys, &bad_b64).is_err());
    let other = UserKeyPair::generate().unwrap();
    assert_eq!(
        E2EKey::unwrap(&other, good).unwrap_err(),
        E2eeError::Decrypt
    );
    // Room key JWK.
    assert!(RoomKey::from_jwk(r#"{"alg":"A256GCM","kty":"oct","k":"AAAA"}"#).is_err());
    assert!(RoomKey::from_jwk(r#"{"alg":"A256CBC","kty":"oct","k":"AAAA"}"#).is_err());
    // Envelopes.
    let m = v.pointer("/messages/v2/message/content").unwrap().clone();
    for (k, bad) in [
        ("algorithm", json!("m.megolm.v1.aes-sha2")),
        ("iv", json!("***")),
        ("ciphertext", json!("AAAA")),
        ("kid", json!(5)),
    ] {
        let mut c = m.clone();
        c[k] = bad;
        let r = Envelope::from_message(None, Some(&c)).and_then(|e| e.open(&ring));
        assert!(r.is_err(), "{k}");
    }
    assert!(Envelope::from_message(Some("short"), None).is_err());
    assert!(Envelope::from_message(None, None).is_err());
    // Private keys.
    assert!(unwrap_private_key("{}", "p", "u").is_err());
    assert!(
        unwrap_private_key(
            r#"{"iv":"AAAA","ciphertext":"AAAA","salt":"s","iterations":0}"#,
            "p",
            "u"
        )
        .is_err()
    );
    assert_eq!(
        unwrap_private_key(s(&v, "/user/private_key_v2/stored"), "€", "u").unwrap_err(),
        E2eeError::Latin1
    );
}

#[test]
fn fresh_material_round_trips() {
    let keys = UserKeyPair::generate().unwrap();
    let again = UserKeyPair::from_private_jwk(&keys.private_jwk()).unwrap();
    assert_eq!(again.public_jwk(), keys.public_jwk());
    let room = RoomKey::generate();
    let kid = new_key_id();
    let e2ekey = E2EKey::wrap(&keys.public(), &kid, &room).unwrap();
    assert_eq!(e2ekey.len(), 36 + 344);
    let (k, back, _) = E2EKey::unwrap(&again, &e2ekey).unwrap();
    assert_eq!((k.as_str(), back.raw()), (kid.as_str(), room.raw()));
    let content = Envelope::seal_v2(&room, &kid, &json!({"msg": "hi"}))
        .unwrap()
        .to_value();
    let ring = Keyring::new().with_current(kid, back);
    assert_eq!(
        Envelope::from_message(None, Some(&content))
            .unwrap()
            .open(&ring)
            .unwrap()
            .msg(),
        Some("hi")
    );
    let wrapped = wrap_private_key(&keys.private_jwk(), "pass phrase", "uid").unwrap();
    assert_eq!(
        unwrap_private_key(&wrapped, "pass phrase", "uid")
            .unwrap()
            .as_str(),
        keys.private_jwk().as_str()
    );
    assert!(!format!("{keys:?}{room:?}").contains(&b64url(room.raw())));
}
