//! Outbound HTTP through the real binary: link previews (`chat.getURLPreview`, a message's
//! `urls` filled after sending), avatars from a URL, and the address filter refusing internal
//! targets. "External" sites are peers on loopback reached through the `APOGEE_HTTP_RESOLVE`
//! test hook; a URL naming loopback directly is refused.

mod common;

use common::http_peer::{Peer, answer};
use common::{Backend, Server, assert_error, backends};
use serde_json::{Value, json};
use std::time::Duration;

const PAGE: &str = r#"<!doctype html><html><head><title>The &amp; Page</title>
<meta property="og:title" content="Open Graph title">
<meta name="description" content="What it is about">
<meta name="viewport" content="width=device-width"></head><body>hi</body></html>"#;
const SVG: &[u8] = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;

async fn site() -> Peer {
    Peer::start(|_, path, _| match path {
        "/page" => answer(200, "text/html; charset=utf-8", PAGE.as_bytes()),
        "/movie.mp4" => answer(200, "video/mp4", b"\0\0\0\x18ftypmp42"),
        "/logo.svg" => answer(200, "image/svg+xml", SVG),
        "/moved" => b"HTTP/1.1 302 Found\r\nlocation: /page\r\ncontent-length: 0\r\n\r\n".to_vec(),
        _ => answer(404, "text/plain", b"no"),
    })
    .await
}

async fn start(backend: Backend, peer: &Peer) -> Server {
    let resolve = format!("site.example.com={}", peer.addr);
    Server::start_with(backend, &[("APOGEE_HTTP_RESOLVE", resolve.as_str())]).await
}

#[tokio::test]
async fn url_previews() {
    for backend in backends() {
        let peer = site().await;
        let s = start(backend, &peer).await;
        let admin = s.user("boss").await;

        let (status, v) = s
            .get("/api/v1/chat.getURLPreview?roomId=GENERAL&url=http://site.example.com/moved", &admin)
            .await;
        assert_eq!(status, 200, "{v}");
        let p = &v["urlPreview"];
        assert_eq!(p["url"], "http://site.example.com/moved");
        assert_eq!(p["ignoreParse"], true);
        assert_eq!(
            p["meta"],
            json!({"pageTitle": "The & Page", "ogTitle": "Open Graph title", "description": "What it is about"})
        );
        assert_eq!(p["headers"]["contentType"], "text/html; charset=utf-8");
        assert_eq!(p["headers"]["contentLength"], PAGE.len().to_string());

        let (_, v) = s
            .get("/api/v1/chat.getURLPreview?roomId=GENERAL&url=https://site.example.com:8443/movie.mp4", &admin)
            .await;
        // Port 8443 is not in API_EmbedSafePorts: not fetched, still answered.
        assert_eq!(v["urlPreview"], json!({"url": "https://site.example.com:8443/movie.mp4", "meta": {}, "ignoreParse": true}));

        // Loopback named directly: an ignored host, and refused by the address filter anyway.
        let direct = format!("http://127.0.0.1:{}/page", peer.addr.port());
        let (_, v) = s
            .get(&format!("/api/v1/chat.getURLPreview?roomId=GENERAL&url={direct}"), &admin)
            .await;
        assert_eq!(v["urlPreview"]["meta"], json!({}));
        let requests_before = peer.requests().len();
        assert_eq!(requests_before, 2, "only the two redirect hops reached the site");

        // Strangers to a private room may not preview through it.
        let (_, g) = s.post("/api/v1/groups.create", &admin, json!({"name": "secret"})).await;
        let gid = g["group"]["_id"].as_str().unwrap().to_string();
        let ann = s.user("ann").await;
        let got = s
            .get(&format!("/api/v1/chat.getURLPreview?roomId={gid}&url=http://site.example.com/page"), &ann)
            .await;
        assert_error(&got, 400, Some("error-not-allowed"));
        let got = s.get("/api/v1/chat.getURLPreview?roomId=GENERAL", &admin).await;
        assert_eq!(got.0, 400, "{}", got.1);

        // A message's links are previewed after it is stored, and the message updated.
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &admin,
                json!({"roomId": "GENERAL", "text": "look http://site.example.com/page and http://site.example.com/movie.mp4"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let mid = v["message"]["_id"].as_str().unwrap().to_string();
        assert_eq!(
            v["message"]["urls"],
            json!([{"url": "http://site.example.com/page"}, {"url": "http://site.example.com/movie.mp4"}])
        );
        let urls = wait_for_previews(&s, &admin, &mid).await;
        assert_eq!(urls[0]["meta"]["ogTitle"], "Open Graph title");
        assert_eq!(urls[0]["headers"]["contentType"], "text/html; charset=utf-8");
        assert_eq!(urls[1]["meta"], json!({}));
        assert_eq!(urls[1]["headers"]["contentType"], "video/mp4");
    }
}

async fn wait_for_previews(s: &Server, a: &common::Auth, mid: &str) -> Vec<Value> {
    let mut v = Value::Null;
    for _ in 0..100 {
        v = s.get(&format!("/api/v1/chat.getMessage?msgId={mid}"), a).await.1;
        if let Some(urls) = v["message"]["urls"].as_array()
            && urls.iter().all(|u| u.get("headers").is_some())
        {
            return urls.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(s.data_dir().join("server.log")).unwrap_or_default();
    panic!("the message's links were not previewed: {v}\n{log}");
}

#[tokio::test]
async fn previews_off_with_api_embed() {
    let peer = site().await;
    let resolve = format!("site.example.com={}", peer.addr);
    let s = Server::start_with(
        Backend::Sqlite,
        &[("APOGEE_HTTP_RESOLVE", resolve.as_str()), ("OVERWRITE_SETTING_API_Embed", "false")],
    )
    .await;
    let admin = s.user("boss").await;
    let (_, v) = s
        .post("/api/v1/chat.postMessage", &admin, json!({"roomId": "GENERAL", "text": "http://site.example.com/page"}))
        .await;
    assert_eq!(v["message"]["urls"], json!([{"url": "http://site.example.com/page"}]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(peer.requests().is_empty(), "fetched although API_Embed is off");
}

#[tokio::test]
async fn avatars_from_urls() {
    for backend in backends() {
        let peer = site().await;
        let s = start(backend, &peer).await;
        let admin = s.user("boss").await;
        let ann = s.user("ann").await;

        let (status, v) = s
            .post("/api/v1/users.setAvatar", &ann, json!({"avatarUrl": "http://site.example.com/logo.svg"}))
            .await;
        assert_eq!(status, 200, "{v}");
        let r = s.client.get(format!("{}/avatar/ann", s.base)).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert_eq!(r.bytes().await.unwrap().as_ref(), SVG);

        // Someone else's avatar takes edit-other-user-avatar.
        let got = s
            .post("/api/v1/users.setAvatar", &ann, json!({"avatarUrl": "http://site.example.com/logo.svg", "username": "boss"}))
            .await;
        assert_eq!(got.0, 400, "{}", got.1);
        let (status, v) = s
            .post("/api/v1/users.setAvatar", &admin, json!({"avatarUrl": "http://site.example.com/logo.svg", "username": "ann"}))
            .await;
        assert_eq!(status, 200, "{v}");

        let got = s
            .post("/api/v1/users.setAvatar", &ann, json!({"avatarUrl": "http://site.example.com/page"}))
            .await;
        assert_error(&got, 400, Some("error-avatar-invalid-url"));
        let got = s
            .post("/api/v1/users.setAvatar", &ann, json!({"avatarUrl": "http://site.example.com/missing.png"}))
            .await;
        assert_error(&got, 400, Some("error-avatar-url-handling"));
        let seen = peer.requests().len();
        for url in [
            format!("http://127.0.0.1:{}/logo.svg", peer.addr.port()),
            format!("http://[::ffff:127.0.0.1]:{}/logo.svg", peer.addr.port()),
            format!("http://localhost:{}/logo.svg", peer.addr.port()),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "file:///etc/passwd".to_string(),
        ] {
            let got = s.post("/api/v1/users.setAvatar", &ann, json!({"avatarUrl": url})).await;
            assert_error(&got, 400, Some("error-avatar-url-handling"));
        }
        assert_eq!(peer.requests().len(), seen, "an internal address was reached");
        // Still the image set before.
        let r = s.client.get(format!("{}/avatar/ann", s.base)).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), SVG);
    }
}
