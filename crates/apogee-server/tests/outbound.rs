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
            .get(
                "/api/v1/chat.getURLPreview?roomId=GENERAL&url=http://site.example.com/moved",
                &admin,
            )
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
        assert_eq!(
            v["urlPreview"],
            json!({"url": "https://site.example.com:8443/movie.mp4", "meta": {}, "ignoreParse": true})
        );

        // Loopback named directly: an ignored host, and refused by the address filter anyway.
        let direct = format!("http://127.0.0.1:{}/page", peer.addr.port());
        let (_, v) = s
            .get(
                &format!("/api/v1/chat.getURLPreview?roomId=GENERAL&url={direct}"),
                &admin,
            )
            .await;
        assert_eq!(v["urlPreview"]["meta"], json!({}));
        let requests_before = peer.requests().len();
        assert_eq!(
            requests_before, 2,
            "only the two redirect hops reached the site"
        );

        // Strangers to a private room may not preview through it.
        let (_, g) = s
            .post("/api/v1/groups.create", &admin, json!({"name": "secret"}))
            .await;
        let gid = g["group"]["_id"].as_str().unwrap().to_string();
        let ann = s.user("ann").await;
        let got = s
            .get(
                &format!(
                    "/api/v1/chat.getURLPreview?roomId={gid}&url=http://site.example.com/page"
                ),
                &ann,
            )
            .await;
        assert_error(&got, 400, Some("error-not-allowed"));
        let got = s
            .get("/api/v1/chat.getURLPreview?roomId=GENERAL", &admin)
            .await;
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
        assert_eq!(
            urls[0]["headers"]["contentType"],
            "text/html; charset=utf-8"
        );
        assert_eq!(urls[1]["meta"], json!({}));
        assert_eq!(urls[1]["headers"]["contentType"], "video/mp4");

        // A link to a message of this workspace is a quote, never fetched as a page.
        let (_, site) = s.get("/api/v1/settings/Site_Url", &admin).await;
        let site = site["value"]
            .as_str()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let link = format!("{site}/channel/general?msg={mid}");
        let (_, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &admin,
                json!({"roomId": "GENERAL", "text": format!("see {link}")}),
            )
            .await;
        assert_eq!(
            v["message"]["urls"],
            json!([{"url": link, "ignoreParse": true}]),
            "{v}"
        );
    }
}

async fn wait_for_previews(s: &Server, a: &common::Auth, mid: &str) -> Vec<Value> {
    let mut v = Value::Null;
    for _ in 0..100 {
        v = s
            .get(&format!("/api/v1/chat.getMessage?msgId={mid}"), a)
            .await
            .1;
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
        &[
            ("APOGEE_HTTP_RESOLVE", resolve.as_str()),
            ("OVERWRITE_SETTING_API_Embed", "false"),
        ],
    )
    .await;
    let admin = s.user("boss").await;
    let (_, v) = s
        .post(
            "/api/v1/chat.postMessage",
            &admin,
            json!({"roomId": "GENERAL", "text": "http://site.example.com/page"}),
        )
        .await;
    assert_eq!(
        v["message"]["urls"],
        json!([{"url": "http://site.example.com/page"}])
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        peer.requests().is_empty(),
        "fetched although API_Embed is off"
    );
}

#[tokio::test]
async fn avatars_from_urls() {
    for backend in backends() {
        let peer = site().await;
        let s = start(backend, &peer).await;
        let admin = s.user("boss").await;
        let ann = s.user("ann").await;

        let (status, v) = s
            .post(
                "/api/v1/users.setAvatar",
                &ann,
                json!({"avatarUrl": "http://site.example.com/logo.svg"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let r = s
            .client
            .get(format!("{}/avatar/ann", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert_eq!(r.bytes().await.unwrap().as_ref(), SVG);

        // Someone else's avatar takes edit-other-user-avatar.
        let got = s
            .post(
                "/api/v1/users.setAvatar",
                &ann,
                json!({"avatarUrl": "http://site.example.com/logo.svg", "username": "boss"}),
            )
            .await;
        assert_eq!(got.0, 400, "{}", got.1);
        let (status, v) = s
            .post(
                "/api/v1/users.setAvatar",
                &admin,
                json!({"avatarUrl": "http://site.example.com/logo.svg", "username": "ann"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");

        let got = s
            .post(
                "/api/v1/users.setAvatar",
                &ann,
                json!({"avatarUrl": "http://site.example.com/page"}),
            )
            .await;
        assert_error(&got, 400, Some("error-avatar-invalid-url"));
        let got = s
            .post(
                "/api/v1/users.setAvatar",
                &ann,
                json!({"avatarUrl": "http://site.example.com/missing.png"}),
            )
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
            let got = s
                .post("/api/v1/users.setAvatar", &ann, json!({"avatarUrl": url}))
                .await;
            assert_error(&got, 400, Some("error-avatar-url-handling"));
        }
        assert_eq!(
            peer.requests().len(),
            seen,
            "an internal address was reached"
        );
        // Still the image set before.
        let r = s
            .client
            .get(format!("{}/avatar/ann", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), SVG);

        // DDP setAvatarFromService with service `url`, through the same filter.
        let bob = s.user("bob").await;
        let mut d = common::ddp::Ddp::connect(&s).await;
        d.resume(&bob).await;
        let r = d
            .call(
                "setAvatarFromService",
                json!(["http://site.example.com/logo.svg", "", "url"]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        let r = s
            .client
            .get(format!("{}/avatar/bob", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), SVG);
        let direct = format!("http://127.0.0.1:{}/logo.svg", peer.addr.port());
        let r = d
            .call("setAvatarFromService", json!([direct, "", "url"]))
            .await;
        assert_eq!(r["error"]["error"], "error-avatar-url-handling", "{r}");
    }
}

async fn history(s: &Server, a: &common::Auth, id: &str) -> Vec<Value> {
    let (status, v) = s
        .get(&format!("/api/v1/integrations.history?id={id}"), a)
        .await;
    assert_eq!(status, 200, "{v}");
    v["history"].as_array().cloned().unwrap_or_default()
}

async fn create_outgoing(s: &Server, a: &common::Auth, extra: Value) -> String {
    let mut body = json!({"type": "webhook-outgoing", "name": "hook", "enabled": true, "event": "sendMessage",
        "username": "boss", "channel": "#general", "scriptEnabled": false, "token": "tok-123"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, v) = s.post("/api/v1/integrations.create", a, body).await;
    assert_eq!(status, 200, "{v}");
    v["integration"]["_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn outgoing_webhooks() {
    for backend in backends() {
        let hooks = Peer::start(|_, path, _| match path {
            "/hook" => answer(200, "application/json", br#"{"text": "pong from the bot"}"#),
            "/fail" => answer(503, "text/plain", b"down"),
            "/gone" => answer(410, "text/plain", b"gone"),
            _ => answer(404, "text/plain", b"?"),
        })
        .await;
        let resolve = format!("hooks.example.com={}", hooks.addr);
        let s = Server::start_with(backend, &[("APOGEE_HTTP_RESOLVE", resolve.as_str())]).await;
        let admin = s.user("boss").await;
        let ann = s.user("ann").await;
        let echo = create_outgoing(
            &s,
            &admin,
            json!({"urls": ["http://hooks.example.com/hook"], "triggerWords": ["!ping"]}),
        )
        .await;

        let say = |text: &'static str| {
            let (s, ann) = (&s, &ann);
            async move {
                let (status, v) = s
                    .post(
                        "/api/v1/chat.postMessage",
                        ann,
                        json!({"roomId": "GENERAL", "text": text}),
                    )
                    .await;
                assert_eq!(status, 200, "{v}");
                v["message"]["_id"].as_str().unwrap().to_string()
            }
        };
        say("hello, no trigger word").await;
        let mid = say("!ping are you there").await;
        let reply = wait_for(|| async {
            let (_, v) = s
                .get("/api/v1/channels.history?roomId=GENERAL&count=10", &admin)
                .await;
            v["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["msg"] == "pong from the bot").cloned())
        })
        .await;
        assert_eq!(reply["u"]["username"], "boss");
        assert_eq!(reply["bot"]["i"], echo.as_str());
        let calls = hooks.requests();
        assert_eq!(
            calls.len(),
            1,
            "only the message with the trigger word is sent"
        );
        assert!(
            calls[0].head.starts_with("POST /hook HTTP/1.1"),
            "{}",
            calls[0].head
        );
        assert!(
            calls[0].head.contains("content-type: application/json"),
            "{}",
            calls[0].head
        );
        let sent: Value = serde_json::from_slice(&calls[0].body).unwrap();
        assert_eq!(sent["token"], "tok-123");
        assert_eq!(sent["trigger_word"], "!ping");
        assert_eq!(sent["channel_id"], "GENERAL");
        assert_eq!(sent["channel_name"], "general");
        assert_eq!(sent["message_id"], mid.as_str());
        assert_eq!(sent["user_name"], "ann");
        assert_eq!(sent["text"], "!ping are you there");
        assert_eq!(sent["bot"], false);
        let h = history(&s, &admin, &echo).await;
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0]["step"], "url-response-sent-message");
        assert_eq!(h[0]["data"]["message_id"], mid.as_str());
        assert!(
            h[0]["data"].get("token").is_none(),
            "the token is kept out of history"
        );

        // Failures are retried per the integration (powers of ten: 0.1 s, 1 s), then given up.
        let flaky = create_outgoing(
            &s,
            &admin,
            json!({"name": "flaky", "urls": ["http://hooks.example.com/fail"], "triggerWords": ["!flaky"],
                "retryFailedCalls": true, "retryCount": 2, "retryDelay": "powers-of-ten"}),
        )
        .await;
        say("!flaky").await;
        let steps = wait_for(|| async {
            let h = history(&s, &admin, &flaky).await;
            (h.len() == 3).then_some(h)
        })
        .await;
        let mut steps: Vec<String> = steps
            .iter()
            .map(|h| h["step"].as_str().unwrap().to_string())
            .collect();
        steps.sort();
        assert_eq!(
            steps,
            ["going-to-retry-1", "going-to-retry-2", "too-many-retries"]
        );
        let fails = hooks
            .requests()
            .iter()
            .filter(|r| r.head.starts_with("POST /fail"))
            .count();
        assert_eq!(fails, 3);

        // 410 Gone disables the integration.
        let gone = create_outgoing(
            &s,
            &admin,
            json!({"name": "gone", "urls": ["http://hooks.example.com/gone"], "triggerWords": ["!gone"]}),
        )
        .await;
        say("!gone").await;
        wait_for(|| async {
            let (_, v) = s
                .get(
                    &format!("/api/v1/integrations.get?integrationId={gone}"),
                    &admin,
                )
                .await;
            (v["integration"]["enabled"] == false).then_some(())
        })
        .await;
        // Disabled, it is called no more: the node's cache of listeners heard of the change.
        let gone_calls = || {
            hooks
                .requests()
                .iter()
                .filter(|r| r.head.starts_with("POST /gone"))
                .count()
        };
        assert_eq!(gone_calls(), 1);
        say("!gone again").await;

        // An internal address is never called, and the attempt is recorded.
        let inside = create_outgoing(
            &s,
            &admin,
            json!({"name": "inside", "urls": [format!("http://127.0.0.1:{}/hook", hooks.addr.port())],
                "triggerWords": ["!inside"], "retryFailedCalls": true, "retryCount": 3, "retryDelay": "powers-of-ten"}),
        )
        .await;
        let before = hooks.requests().len();
        say("!inside").await;
        let h = wait_for(|| async {
            let h = history(&s, &admin, &inside).await;
            (!h.is_empty()).then_some(h)
        })
        .await;
        assert!(
            h[0]["httpError"].as_str().unwrap().contains("internal"),
            "{h:?}"
        );
        // As Rocket.Chat records a call that got no answer; a refusal is not retried.
        assert_eq!(h[0]["step"], "after-http-call");
        assert_eq!(h[0]["error"], true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(history(&s, &admin, &inside).await.len(), 1);
        assert_eq!(hooks.requests().len(), before);
        assert_eq!(gone_calls(), 1, "a disabled integration is not called");
    }
}

async fn wait_for<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting");
}
