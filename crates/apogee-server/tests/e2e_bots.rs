//! Encrypted participants (bots): a scripted WebCrypto client (`tests/e2ee/bot-client.mjs`, Node)
//! sets up keys for two people, makes an encrypted room with them and a bot, and they talk with
//! the bot both ways, through a key rotation. Then: no plaintext in the database files (or the
//! PostgreSQL dump), search or the server's log, checked against a plaintext control marker; the
//! bot's sealed key opens after a restart; every decryption was audited; revocation removes the
//! bot and its keys. With `scripts/with-softhsm.sh` and `--features pkcs11` the same runs with the
//! bot's key sealed in a SoftHSM token.

mod common;

use common::{Auth, Backend, PASSWORD, Server, backends, contains_bytes, files_under};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn cred(a: &Auth) -> String {
    format!("{}:{}", a.user_id, a.token)
}

/// Everything the server stored: the data directory's files (SQLite database, WAL, key file,
/// uploads, the server's log) and, on PostgreSQL, a dump of the database.
fn stored_bytes(s: &Server, backend: Backend) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = files_under(s.data_dir())
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap_or_default(),
            )
        })
        .collect();
    if let Backend::Postgres = backend {
        let pg_dump = ["/usr/lib/postgresql/15/bin/pg_dump", "pg_dump"]
            .into_iter()
            .find(|p| !p.contains('/') || Path::new(p).exists())
            .unwrap();
        let dump = std::process::Command::new(pg_dump)
            .args(["--data-only", s.db_url()])
            .output()
            .expect("pg_dump");
        assert!(dump.status.success(), "pg_dump");
        out.push(("pg_dump".into(), dump.stdout));
    }
    out
}

fn kms_env() -> Vec<(String, String)> {
    let mut env = vec![
        (
            "OVERWRITE_SETTING_E2E_Enable".to_string(),
            "true".to_string(),
        ),
        (
            "APOGEE_LOG".to_string(),
            "info,apogee_core=debug,apogee_rc=debug,apogee_server=debug,tower_http=debug"
                .to_string(),
        ),
    ];
    if let Some(hsm) = softhsm() {
        env.extend(hsm);
    }
    env
}

/// The SoftHSM token of `scripts/with-softhsm.sh`, when this build can use it.
fn softhsm() -> Option<Vec<(String, String)>> {
    if !cfg!(feature = "pkcs11") {
        return None;
    }
    let module = std::env::var("APOGEE_TEST_PKCS11_MODULE").ok()?;
    let token = std::env::var("APOGEE_TEST_PKCS11_TOKEN").ok()?;
    let pin = std::env::var("APOGEE_TEST_PKCS11_PIN").ok()?;
    Some(vec![
        ("APOGEE_KMS".into(), "pkcs11".into()),
        ("APOGEE_PKCS11_MODULE".into(), module),
        ("APOGEE_PKCS11_TOKEN".into(), token),
        ("APOGEE_PKCS11_PIN".into(), pin),
    ])
}

async fn start(backend: Backend, dir: Option<(tempfile::TempDir, Option<String>)>) -> Server {
    let env = kms_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match dir {
        None => Server::start_with(backend, &env).await,
        Some((dir, db)) => Server::start_in(backend, dir, &env, db).await,
    }
}

async fn bot_messages(s: &Server, bot: &Auth, rid: &str) -> (u16, Value) {
    let (status, v) = s
        .get(
            &format!("/api/v1/e2e.bot.messages?rid={rid}&count=100"),
            bot,
        )
        .await;
    (status.as_u16(), v)
}

async fn run(backend: Backend) {
    let s = start(backend, None).await;
    let admin = s.user("admin").await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = s
        .post(
            "/api/v1/users.create",
            &admin,
            json!({"username": "helperbot", "email": "helperbot@example.com", "password": PASSWORD, "name": "Helper", "roles": ["bot"]}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let bot = s.login("helperbot").await;
    let mark = format!("PLAINMARK{}", apogee_domain::random_id());

    // Bad input first: nothing is stored for it.
    let r = s
        .post(
            "/api/v1/e2e.bots.authorize",
            &alice,
            json!({"userId": bot.user_id, "roomIds": ["nope"]}),
        )
        .await;
    assert_eq!(r.0, 403, "only manage-e2e-bots: {}", r.1);
    let r = s
        .post(
            "/api/v1/e2e.bots.authorize",
            &admin,
            json!({"userId": bob.user_id, "roomIds": ["GENERAL"]}),
        )
        .await;
    assert_eq!(r.1["errorType"], "error-not-a-bot", "{}", r.1);
    let r = s
        .post(
            "/api/v1/e2e.bots.authorize",
            &admin,
            json!({"userId": bot.user_id, "roomIds": ["GENERAL"]}),
        )
        .await;
    assert_eq!(r.1["errorType"], "error-room-not-encrypted", "{}", r.1);
    let r = s
        .get(
            &format!("/api/v1/e2e.bots.info?userId={}", bot.user_id),
            &admin,
        )
        .await;
    assert_eq!(
        r.1["errorType"], "error-not-an-e2e-bot",
        "nothing stored: {}",
        r.1
    );

    // A plaintext control in a public channel: the checks below can find plaintext.
    let control = format!("CONTROLMARK{}", apogee_domain::random_id());
    let r = s
        .post(
            "/api/v1/chat.postMessage",
            &alice,
            json!({"channel": "#general", "text": control}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);

    let out = std::process::Command::new("node")
        .arg(repo("tests/e2ee/bot-client.mjs"))
        .env("APOGEE_URL", &s.base)
        .env("ADMIN", cred(&admin))
        .env("ALICE", cred(&alice))
        .env("BOB", cred(&bob))
        .env("BOT", cred(&bot))
        .env("BOT_USERNAME", "helperbot")
        .env("MARK", &mark)
        .output()
        .expect("node (>= 20) runs the WebCrypto client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the scripted WebCrypto client failed");
    let result: Value = serde_json::from_str(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .expect("RESULT line"),
    )
    .unwrap();
    let rid = result["rid"].as_str().unwrap().to_string();
    let t1 = result["messages"]["t1"].as_str().unwrap().to_string();
    let r = s
        .get(
            &format!("/api/v1/e2e.bots.info?userId={}", bot.user_id),
            &admin,
        )
        .await;
    let want_kms = if softhsm().is_some() {
        "pkcs11"
    } else {
        "file"
    };
    assert_eq!(r.1["bot"]["kms"], want_kms, "{}", r.1);

    // Search sees nothing of it, neither the marker nor words of the text. (Search ignores case;
    // the lower-case query keeps the request's own URI, which the log shows, from matching the
    // marker checked below.)
    let lower = mark.to_lowercase();
    for text in [lower.as_str(), "launch"] {
        let r = s
            .get(
                &format!("/api/v1/chat.search?roomId={rid}&searchText={text}"),
                &alice,
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["messages"], json!([]), "search found {text}");
    }
    let r = s
        .get(
            &format!("/api/v1/chat.search?roomId=GENERAL&searchText={control}"),
            &alice,
        )
        .await;
    assert_eq!(
        r.1["messages"].as_array().map(Vec::len),
        Some(1),
        "control searchable"
    );

    // Every decryption is an audit entry (naming the message, never its text).
    let r = s
        .get(
            "/api/v1/audit.events?event=e2e.bot.decrypted&count=100",
            &admin,
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let audited = r.1["events"].as_array().cloned().unwrap_or_default();
    assert!(audited.len() >= 6, "decryptions audited: {}", audited.len());
    assert!(audited.iter().any(|e| {
        e.to_string()
            .contains(result["messages"]["m1"].as_str().unwrap())
    }));
    let r = s
        .get("/api/v1/audit.events?event=e2e.bot.authorized", &admin)
        .await;
    assert_eq!(r.1["events"].as_array().map(Vec::len), Some(1), "{}", r.1);

    // Restart on the same data: the sealed key opens again.
    let restart = if let Backend::Postgres = backend {
        let db = s.db_url().to_string();
        (s.stop(), Some(db))
    } else {
        (s.stop(), None)
    };
    let s = start(backend, Some(restart)).await;
    let (status, v) = bot_messages(&s, &bot, &rid).await;
    assert_eq!(status, 200, "{v}");
    let texts: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["msg"].as_str())
        .collect();
    assert!(
        texts.contains(&t1.as_str()),
        "old-key message after restart: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("rotated fine")),
        "{texts:?}"
    );

    // No plaintext anywhere the server writes; the control shows the check can see.
    let stored = stored_bytes(&s, backend);
    assert!(
        stored.iter().any(|(_, b)| contains_bytes(b, &control)),
        "the control marker is found in storage"
    );
    let log = stored
        .iter()
        .find(|(n, _)| n.ends_with("server.log"))
        .expect("server log");
    assert!(
        contains_bytes(&log.1, "e2e.bot"),
        "the log covers the bot's requests"
    );
    for (name, bytes) in &stored {
        if contains_bytes(bytes, &mark) {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(&mark)).take(5).collect();
            panic!("plaintext marker in {name}: {lines:#?}");
        }
        assert!(!contains_bytes(bytes, "launch code"), "plaintext in {name}");
    }

    // Revocation: out of the room, no identity, the key destroyed; nothing decrypts any more.
    let r = s
        .post(
            "/api/v1/e2e.bots.revoke",
            &admin,
            json!({"userId": bot.user_id}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let (status, _) = bot_messages(&s, &bot, &rid).await;
    assert!(status == 400 || status == 403, "revoked bot refused");
    let r = s
        .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bot)
        .await;
    assert_ne!(
        r.1["subscription"]["rid"],
        json!(rid),
        "bot left the room: {}",
        r.1
    );
    let r = s
        .call(Method::GET, "/api/v1/e2e.fetchMyKeys", Some(&bot), None)
        .await;
    assert_eq!(r.1.get("public_key"), None, "identity gone: {}", r.1);
    let r = s
        .get("/api/v1/audit.events?event=e2e.bot.revoked", &admin)
        .await;
    assert_eq!(r.1["events"].as_array().map(Vec::len), Some(1), "{}", r.1);
    // Authorising again makes a new identity; the old sealed key is not reused.
    let r = s
        .post(
            "/api/v1/e2e.bots.authorize",
            &admin,
            json!({"userId": bot.user_id, "roomIds": [rid]}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let (status, v) = bot_messages(&s, &bot, &rid).await;
    assert_eq!(status, 200, "{v}");
    let undecryptable = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["encrypted"] == true)
        .all(|m| m["decryptError"].is_string());
    assert!(
        undecryptable,
        "a new identity cannot read with revoked keys: {v}"
    );
}

#[tokio::test]
async fn bot_talks_in_an_encrypted_room_and_leaves_no_plaintext() {
    if softhsm().is_some() {
        eprintln!("bot keys sealed in the SoftHSM token");
    }
    for backend in backends() {
        run(backend).await;
    }
}
