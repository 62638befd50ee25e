//! The embedded browser client as the binary serves it: the page at the root URL and at every
//! client route (never cached), hashed assets cached for a year and gzipped on request, and the
//! server's own paths (`/api`, `/sockjs`, `/avatar`, …) never shadowed by the page.
//! The client itself is tested in Chromium by `scripts/web-test.sh`.

mod common;

use common::{Backend, Server};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn serves_the_client_without_shadowing_the_server() {
    let s = Server::start_with(Backend::Sqlite, &[]).await;
    let get = |path: &str| s.client.get(format!("{}{path}", s.base)).send();

    let root = get("/").await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    let h = root.headers().clone();
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-store, max-age=0");
    assert!(
        header(&h, "content-security-policy").contains("script-src 'self'"),
        "the page gets the CSP it works under: {h:?}"
    );
    let page = root.text().await.unwrap();
    assert!(page.contains(r#"<div id="app">"#), "{page}");
    let script = page
        .split(r#"src=""#)
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .find(|src| src.starts_with("/static/") && src.ends_with(".js"))
        .unwrap_or_else(|| panic!("a hashed script in {page}"))
        .to_string();

    // Rocket.Chat's client routes all get the page; the client routes itself.
    for path in [
        "/home",
        "/login",
        "/channel/general",
        "/group/secret/thread/abc",
        "/direct/aaaabbbb",
        "/admin/users",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header(r.headers(), "cache-control"), "no-store, max-age=0");
        assert_eq!(r.text().await.unwrap(), page, "{path}");
    }

    let js = get(&script).await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        header(js.headers(), "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header(js.headers(), "content-type"),
        "text/javascript; charset=utf-8"
    );
    let plain = js.bytes().await.unwrap();
    let gz = s
        .client
        .get(format!("{}{script}", s.base))
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(header(gz.headers(), "content-encoding"), "gzip");
    assert_eq!(header(gz.headers(), "vary"), "Accept-Encoding");
    let gz = gz.bytes().await.unwrap();
    assert!(gz.starts_with(&[0x1f, 0x8b]) && gz.len() < plain.len());

    // The server's paths keep their own answers.
    for path in [
        "/api/v1/no.such.endpoint",
        "/api/v2/x",
        "/static/missing-0000.js",
        "/favicon.ico",
        "/sockjs/000/abcdefgh/xhr",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["success"], false, "{path}: {v}");
    }
    let info = get("/api/info").await.unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    assert!(header(info.headers(), "content-type").starts_with("application/json"));
    let avatar = get("/avatar/nobody").await.unwrap();
    assert!(!header(avatar.headers(), "content-type").starts_with("text/html"));
    let post = s
        .client
        .post(format!("{}/home", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);

    let head = s
        .client
        .head(format!("{}/channel/general", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header(head.headers(), "content-length"),
        page.len().to_string()
    );
}
