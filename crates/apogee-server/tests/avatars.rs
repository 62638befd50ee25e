//! Avatars over HTTP: initials by default, an uploaded image (type sniffed from its bytes),
//! ETag revalidation, `users.getAvatar`'s redirect, reset, and refusals.

mod common;

use common::ddp::Ddp;
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

/// A PNG as a `data:` URL, as Rocket.Chat's room settings form sends it.
fn data_url(bytes: &[u8]) -> String {
    use base64::Engine;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The room images stored under the data directory.
fn room_images(s: &Server, rid: &str) -> Vec<String> {
    std::fs::read_dir(s.data_dir().join("uploads/room-avatars").join(rid))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_images(s: &Server, rid: &str, count: usize) {
    for _ in 0..100 {
        if room_images(s, rid).len() == count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("room images: {:?}", room_images(s, rid));
}

/// The next `updateAvatar` a DDP client hears on `stream-notify-logged`.
async fn next_update(d: &mut Ddp) -> serde_json::Value {
    let got = d
        .until(|v| v["fields"]["eventName"] == "updateAvatar")
        .await;
    assert_eq!(got["collection"], "stream-notify-logged", "{got}");
    got["fields"]["args"][0].clone()
}

#[tokio::test]
async fn room_avatars_through_room_settings_with_update_avatar_events() {
    for b in common::backends() {
        let s = Server::start(b).await;
        let _admin = s.user("boss").await;
        let ann = s.user("ann").await;
        let bob = s.user("bob").await;
        let (status, v) = s
            .post(
                "/api/v1/channels.create",
                &ann,
                json!({"name": "pics", "members": ["bob"]}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let path = format!("/avatar/room/{rid}");

        // No image yet: the room name's initials.
        let r = fetch(&s, &path, None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert!(r.text().await.unwrap().contains(">PI</text>"));

        // Bob listens for avatar changes over DDP.
        let mut d = Ddp::connect(&s).await;
        d.resume(&bob).await;
        assert_eq!(
            d.sub("stream-notify-logged", "updateAvatar").await["msg"],
            "ready"
        );

        // A member without edit-room / edit-room-avatar changes nothing.
        let r = s
            .post(
                "/api/v1/rooms.saveRoomSettings",
                &bob,
                json!({"rid": rid, "roomAvatar": data_url(PNG)}),
            )
            .await;
        assert_error(&r, 403, None);
        assert!(room_images(&s, &rid).is_empty());

        // Not an image, not a data URL, unknown settings: refused, nothing stored.
        for (body, code) in [
            (
                json!({"rid": rid, "roomAvatar": "data:image/png;base64,JVBERi0xLjc="}),
                "error-invalid-image",
            ),
            (
                json!({"rid": rid, "roomAvatar": "https://example.com/a.png"}),
                "error-invalid-image",
            ),
            (json!({"rid": rid, "roomAvatar": 7}), "error-invalid-image"),
            (
                json!({"rid": rid, "sidepanel": {}}),
                "error-invalid-settings",
            ),
            (
                json!({"rid": "nowhere", "roomAvatar": null}),
                "error-invalid-room",
            ),
        ] {
            let r = s.post("/api/v1/rooms.saveRoomSettings", &ann, body).await;
            assert_error(&r, 400, Some(code));
        }
        assert!(room_images(&s, &rid).is_empty());

        // The owner sets an image: stored, on the room, announced, served with its ETag.
        let r = s
            .post(
                "/api/v1/rooms.saveRoomSettings",
                &ann,
                json!({"rid": rid, "roomAvatar": data_url(PNG)}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["rid"], rid.as_str());
        let update = next_update(&mut d).await;
        let etag = update["etag"].as_str().expect("etag").to_string();
        assert_eq!(update, json!({"rid": rid, "etag": etag}));
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={rid}"), &bob)
            .await;
        assert_eq!(info["room"]["avatarETag"], etag.as_str(), "{info}");
        let r = fetch(&s, &path, None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["etag"], format!("\"{etag}\"").as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
        assert_eq!(
            fetch(&s, &path, Some(&format!("\"{etag}\"")))
                .await
                .status(),
            304
        );
        let (_, history) = s
            .get(&format!("/api/v1/channels.history?roomId={rid}"), &ann)
            .await;
        assert_eq!(
            history["messages"][0]["t"], "room_changed_avatar",
            "{history}"
        );
        assert_eq!(room_images(&s, &rid), vec![etag.clone()]);

        // A second image replaces the first; the first is deleted after the commit.
        let other = [PNG, b"second".as_slice()].concat();
        let r = s
            .post(
                "/api/v1/rooms.saveRoomSettings",
                &ann,
                json!({"rid": rid, "roomAvatar": data_url(&other)}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let second = next_update(&mut d).await["etag"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(second, etag);
        wait_for_images(&s, &rid, 1).await;
        assert_eq!(room_images(&s, &rid), vec![second.clone()]);
        assert_eq!(
            fetch(&s, &path, Some(&format!("\"{etag}\"")))
                .await
                .status(),
            200
        );

        // Reset over DDP (Rocket.Chat's `saveRoomSettings(rid, name, value)`): initials again,
        // `{rid}` without an etag announced, the image deleted.
        let mut owner = Ddp::connect(&s).await;
        owner.resume(&ann).await;
        let r = owner
            .call("saveRoomSettings", json!([rid, "roomAvatar", null]))
            .await;
        assert_eq!(r["result"], json!({"result": true, "rid": rid}), "{r}");
        assert_eq!(next_update(&mut d).await, json!({"rid": rid}));
        let r = fetch(&s, &path, None).await;
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={rid}"), &bob)
            .await;
        assert!(info["room"].get("avatarETag").is_none(), "{info}");
        wait_for_images(&s, &rid, 0).await;

        // User avatars are announced the same way: `{username, etag}`, then `{username}`.
        let (status, v) = upload(&s, &ann, PNG, "me.png").await;
        assert_eq!(status, 200, "{v}");
        let update = next_update(&mut d).await;
        assert_eq!(update["username"], "ann");
        let (_, me) = s.get("/api/v1/me", &ann).await;
        assert_eq!(update["etag"], me["avatarETag"]);
        let r = s
            .post(
                "/api/v1/users.resetAvatar",
                &ann,
                json!({"username": "ann"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(next_update(&mut d).await, json!({"username": "ann"}));

        // Deleting the room deletes its image.
        let r = s
            .post(
                "/api/v1/rooms.saveRoomSettings",
                &ann,
                json!({"rid": rid, "roomAvatar": data_url(PNG)}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        wait_for_images(&s, &rid, 1).await;
        let r = s
            .post("/api/v1/channels.delete", &ann, json!({"roomId": rid}))
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        wait_for_images(&s, &rid, 0).await;

        // Not logged in: the stream is refused.
        let mut anon = Ddp::connect(&s).await;
        assert_eq!(
            anon.sub("stream-notify-logged", "updateAvatar").await["msg"],
            "nosub"
        );
    }
}
