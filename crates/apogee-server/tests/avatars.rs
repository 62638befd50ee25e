//! Avatars over HTTP: initials by default, an uploaded image (type sniffed from its bytes),
//! ETag revalidation, `users.getAvatar`'s redirect, reset, and refusals.

mod common;

use common::{Auth, Backend, Server, assert_error};
use reqwest::StatusCode;
use serde_json::json;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR pretend image bytes";

async fn upload(s: &Server, a: &Auth, bytes: &[u8], name: &str) -> (StatusCode, serde_json::Value) {
    let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string());
    let resp = s
        .client
        .post(format!("{}/api/v1/users.setAvatar", s.base))
        .header("X-User-Id", &a.user_id)
        .header("X-Auth-Token", &a.token)
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

async fn fetch(s: &Server, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut req = s.client.get(format!("{}{path}", s.base));
    if let Some(etag) = etag {
        req = req.header("If-None-Match", etag);
    }
    req.send().await.expect("avatar")
}

#[tokio::test]
async fn avatars_upload_revalidate_redirect_and_reset() {
    let s = Server::start(Backend::Sqlite).await;
    let admin = s.user("boss").await;
    let ann = s.user("ann.lee").await;
    let bob = s.user("bob").await;

    let r = fetch(&s, "/avatar/ann.lee", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains(">AL</text>"), "initials");

    let (status, v) = upload(&s, &ann, PNG, "me.png").await;
    assert_eq!(status, 200, "{v}");
    let r = fetch(&s, "/avatar/ann.lee", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(
        fetch(&s, "/avatar/ann.lee.png", Some(&etag)).await.status(),
        304
    );
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert_eq!(
        me["avatarETag"].as_str().map(|e| format!("\"{e}\"")),
        Some(etag.clone())
    );

    // Not an image (whatever the name says): refused, the avatar stays.
    let (status, v) = upload(&s, &ann, b"%PDF-1.7 not an image", "me.png").await;
    assert_error(&(status, v), 400, Some("error-invalid-image"));
    assert_eq!(
        fetch(&s, "/avatar/ann.lee", None)
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        PNG
    );

    // users.getAvatar redirects to the avatar URL.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!(
            "{}/api/v1/users.getAvatar?username=ann.lee",
            s.base
        ))
        .header("X-User-Id", &bob.user_id)
        .header("X-Auth-Token", &bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/avatar/ann.lee");
    let (status, v) = s.get("/api/v1/users.getAvatar?userId=nobody", &bob).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["success"], false);

    // Only the user (or an admin) changes an avatar.
    let r = s
        .post(
            "/api/v1/users.resetAvatar",
            &bob,
            json!({"username": "ann.lee"}),
        )
        .await;
    assert_error(&r, 400, Some("error-not-allowed"));
    assert_error(
        &s.post("/api/v1/users.resetAvatar", &bob, json!({})).await,
        400,
        Some("error-user-param-not-provided"),
    );
    let r = s
        .post(
            "/api/v1/users.resetAvatar",
            &admin,
            json!({"username": "ann.lee"}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = fetch(&s, "/avatar/ann.lee", None).await;
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let (_, me) = s.get("/api/v1/me", &ann).await;
    assert!(me.get("avatarETag").is_none(), "{me}");
}
