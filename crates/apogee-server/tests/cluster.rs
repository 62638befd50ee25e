//! Two `apogee` nodes on one PostgreSQL database and one NATS server serve one workspace: a DDP
//! client on node A receives, in real time, what is sent on node B. Needs
//! `APOGEE_TEST_DATABASE_URL` (scripts/with-postgres.sh) and `APOGEE_TEST_NATS_URL`
//! (scripts/with-nats.sh); skips with a message otherwise.

mod common;

use common::ddp::{Ddp, WAIT};
use common::{Backend, Server};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn two_nodes_share_one_workspace_over_nats() {
    let (Ok(nats), Ok(_)) = (
        std::env::var("APOGEE_TEST_NATS_URL"),
        std::env::var("APOGEE_TEST_DATABASE_URL"),
    ) else {
        eprintln!(
            "skipped: needs APOGEE_TEST_NATS_URL and APOGEE_TEST_DATABASE_URL \
             (bash scripts/with-postgres.sh bash scripts/with-nats.sh cargo test)"
        );
        return;
    };
    let env = [("APOGEE_NATS_URL", nats.as_str())];
    let a = Server::start_in(
        Backend::Postgres,
        tempfile::tempdir().expect("dir"),
        &env,
        None,
    )
    .await;
    let b = Server::start_in(
        Backend::Postgres,
        tempfile::tempdir().expect("dir"),
        &env,
        Some(a.db_url().to_string()),
    )
    .await;

    // Users and the room are made on node B; node A reads them from the shared database.
    let ann = b.user("ann").await;
    let bob = b.user("bob").await;
    let (status, created) = b
        .post(
            "/api/v1/channels.create",
            &bob,
            json!({"name": "cluster", "members": ["ann"]}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let rid = created["channel"]["_id"].as_str().unwrap().to_string();

    let mut on_a = Ddp::connect(&a).await;
    on_a.resume(&ann).await;
    assert_eq!(on_a.sub("stream-room-messages", &rid).await["msg"], "ready");
    let activity = format!("{rid}/user-activity");
    assert_eq!(
        on_a.sub("stream-notify-room", &activity).await["msg"],
        "ready"
    );

    // A message sent over REST on node B reaches the subscriber on node A.
    let (status, sent) = b
        .post(
            "/api/v1/chat.sendMessage",
            &bob,
            json!({"message": {"rid": rid, "msg": "hello from node B"}}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let got = on_a
        .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == rid.as_str())
        .await;
    assert_eq!(got["collection"], "stream-room-messages");
    assert_eq!(got["fields"]["args"][0]["msg"], "hello from node B");
    assert_eq!(got["fields"]["args"][0]["_id"], sent["message"]["_id"]);

    // Typing on node B reaches node A.
    let mut on_b = Ddp::connect(&b).await;
    on_b.resume(&bob).await;
    let r = on_b
        .call(
            "stream-notify-room",
            json!([activity, "bob", ["user-typing"], {}]),
        )
        .await;
    assert!(r.get("error").is_none(), "{r}");
    let got = on_a
        .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == activity.as_str())
        .await;
    assert_eq!(got["fields"]["args"], json!(["bob", ["user-typing"], {}]));

    // An administrator's change on node B applies on node A: a permission and a setting.
    let (status, v) = b
        .post(
            "/api/v1/permissions.update",
            &ann,
            json!({"permissions": [{"_id": "create-c", "roles": ["admin"]}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    eventually(|| async {
        let (status, _) = a
            .post("/api/v1/channels.create", &bob, json!({"name": "late"}))
            .await;
        status == 403
    })
    .await;
    let (status, v) = b
        .post(
            "/api/v1/settings/Message_MaxAllowedSize",
            &ann,
            json!({"value": 10}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    eventually(|| async {
        let (status, _) = a
            .post(
                "/api/v1/chat.sendMessage",
                &bob,
                json!({"message": {"rid": rid, "msg": "far longer than ten"}}),
            )
            .await;
        status == 400
    })
    .await;

    // A session ended on node B is refused on node A well before A's session cache would
    // have let its entry expire: the `SessionsEnded` event drops it there.
    let (status, v) = a.get("/api/v1/me", &bob).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = b.post("/api/v1/logout", &bob, json!({})).await;
    assert_eq!(status, 200, "{v}");
    let ended = tokio::time::Instant::now();
    eventually(|| async { a.get("/api/v1/me", &bob).await.0 == 401 }).await;
    assert!(
        ended.elapsed() < Duration::from_millis(1500),
        "refused only after {:?}",
        ended.elapsed()
    );

    // A room archived on node B refuses messages on node A at once, though A's send cache
    // holds the room from a send just before: the `Room` event drops it there.
    let send_on_a = || async {
        a.post(
            "/api/v1/chat.sendMessage",
            &ann,
            json!({"message": {"rid": rid, "msg": "hi"}}),
        )
        .await
    };
    let (status, v) = send_on_a().await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = b
        .post("/api/v1/channels.archive", &ann, json!({"roomId": rid}))
        .await;
    assert_eq!(status, 200, "{v}");
    let archived = tokio::time::Instant::now();
    eventually(|| async {
        let (status, v) = send_on_a().await;
        status == 400 && v["errorType"] == "error-room-archived"
    })
    .await;
    assert!(
        archived.elapsed() < Duration::from_millis(1500),
        "refused only after {:?}",
        archived.elapsed()
    );
}

/// Retries `check` for up to [`WAIT`]: changes cross nodes asynchronously.
async fn eventually<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not applied on the other node in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unreachable_nats_server_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--nats-url", "nats://user:secret@127.0.0.1:1"])
        .output()
        .expect("run apogee");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach NATS at nats://***@127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}
