//! The other direction: material made here is opened by WebCrypto under Node, as Rocket.Chat's web
//! client opens it (`tests/e2ee/check-rust.mjs`). Needs `node` (≥ 20) on PATH, as CI has.

use apogee_e2ee::*;
use serde_json::{Value, json};

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn webcrypto_opens_what_rust_made() {
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("tests/e2ee/e2ee-vectors.json")).unwrap(),
    )
    .unwrap();
    let vector_pub =
        UserPublicKey::from_jwk(vectors["user"]["public_key"].as_str().unwrap()).unwrap();

    let room = RoomKey::generate();
    let kid = new_key_id();
    let payload = json!({"msg": "Bonjour @alice — ünïcødé 🌍 \"quoted\"\n\ttabs \u{1}"});
    let content = Envelope::seal_v2(&room, &kid, &payload).unwrap();

    let user = UserKeyPair::generate().unwrap();
    let passphrase = "orbit velvet cactus lumber ninja fossil harbor tundra quiz maple oxygen élan";
    let file = FileKey::generate();
    // Long enough to cross several counter blocks.
    let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();

    let doc = json!({
        "vector_user_private_jwk": vectors["user"]["private_jwk"],
        "room": {"kid": kid, "jwk": room.to_jwk().as_str(), "E2EKey": E2EKey::wrap(&vector_pub, &kid, &room).unwrap()},
        "message": {"content": content, "payload": payload},
        "user": {
            "public_key": user.public_jwk(),
            "private_jwk": user.private_jwk().as_str(),
            "private_key": wrap_private_key(&user.private_jwk(), passphrase, "rustUserId0000001").unwrap(),
            "passphrase": passphrase,
            "E2EKey": E2EKey::wrap(&user.public(), &kid, &room).unwrap(),
        },
        "file": {
            "encryption": file.encryption(),
            "plaintext_b64": b64(&plain),
            "ciphertext_b64": b64(&file.apply(&plain)),
            "sha256": sha256_hex(&plain),
        },
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rust-made.json");
    // The envelope goes in as the client's string would, member order included.
    let text = doc
        .to_string()
        .replace(&content.to_value().to_string(), &content.to_json_string());
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("node")
        .arg(repo("tests/e2ee/check-rust.mjs"))
        .arg(&path)
        .output()
        .expect("run node (Node >= 20 is needed for the WebCrypto interop test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "WebCrypto refused Rust's material");
    assert!(stdout.contains("12 passed, 0 failed"), "every check ran");
}
