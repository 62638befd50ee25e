//! Integrations and incoming webhooks, moderation reports, custom emoji and assets, against
//! the real binary on SQLite and (when available) PostgreSQL.

mod common;

use common::{Auth, Server, assert_error, backends};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
];

async fn history(s: &Server, a: &Auth, rid: &str) -> Vec<Value> {
    let (_, v) = s
        .get(
            &format!("/api/v1/channels.history?roomId={rid}&count=20"),
            a,
        )
        .await;
    v["messages"].as_array().cloned().unwrap_or_default()
}

async fn incoming(s: &Server, admin: &Auth, body: Value) -> Value {
    let (status, v) = s.post("/api/v1/integrations.create", admin, body).await;
    assert_eq!(status, 200, "{v}");
    v["integration"].clone()
}

#[tokio::test]
async fn incoming_webhooks_post_slack_payloads_as_the_integration_user() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let (_, room) = s
            .post("/api/v1/channels.create", &admin, json!({"name": "alerts"}))
            .await;
        let rid = room["channel"]["_id"].as_str().unwrap().to_string();
        let hook = incoming(
            &s,
            &admin,
            json!({"type": "webhook-incoming", "name": "ci", "enabled": true, "username": "bob",
                "channel": "#alerts", "scriptEnabled": false, "alias": "CI", "emoji": ":robot:"}),
        )
        .await;
        let (id, token) = (
            hook["_id"].as_str().unwrap(),
            hook["token"].as_str().unwrap(),
        );
        assert_eq!(token.len(), 48, "{b:?}");
        assert_eq!(hook["userId"], bob.user_id.as_str());
        assert_eq!(hook["channel"], json!(["#alerts"]));
        // Whoever a webhook posts as becomes a bot, as in Rocket.Chat.
        let (_, me) = s.get("/api/v1/me", &bob).await;
        assert!(
            me["roles"].as_array().unwrap().contains(&json!("bot")),
            "{me}"
        );

        // JSON payload: text, attachments (Slack's `msg` → `text`), per-call alias and avatar.
        let url = format!("{}/hooks/{id}/{token}", s.base);
        let r = s
            .client
            .post(&url)
            .json(&json!({"text": "build *green*", "username": "Jenkins", "icon_url": "https://x/i.png",
                "attachments": [{"title": "log", "msg": " details "}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{b:?}");
        // Form-encoded Slack style: `payload=<json>`; the integration's alias and emoji apply.
        let r = s
            .client
            .post(&url)
            .form(&[("payload", r#"{"text":"from a form"}"#)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let msgs = history(&s, &admin, &rid).await;
        let form = msgs
            .iter()
            .find(|m| m["msg"] == "from a form")
            .expect("form post");
        assert_eq!(form["u"]["_id"], bob.user_id.as_str());
        assert_eq!(form["alias"], "CI");
        assert_eq!(form["emoji"], ":robot:");
        assert_eq!(form["bot"], json!({"i": id}));
        let first = msgs
            .iter()
            .find(|m| m["msg"] == "build *green*")
            .expect("json post");
        assert_eq!(first["alias"], "Jenkins");
        assert_eq!(first["avatar"], "https://x/i.png");
        assert!(
            first.get("emoji").is_none(),
            "avatar wins over emoji: {first}"
        );
        assert_eq!(first["attachments"][0]["text"], "details");

        // A wrong token, an unknown id: refused, nothing posted.
        let before = history(&s, &admin, &rid).await.len();
        // The real token with its last character changed (to one it is not).
        let (head, last) = token.split_at(token.len() - 1);
        let forged = format!("{head}{}", if last == "x" { "y" } else { "x" });
        let r = s
            .client
            .post(format!("{}/hooks/{id}/{forged}", s.base))
            .json(&json!({"text": "forged"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // Overriding the target needs `overrideDestinationChannelEnabled`.
        let r = s
            .client
            .post(&url)
            .json(&json!({"text": "elsewhere", "channel": "@admin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(history(&s, &admin, &rid).await.len(), before);

        // Enabling the override sends to `@user` (a DM) instead; disabled answers 503.
        let (status, v) = s
            .call(
                Method::PUT,
                "/api/v1/integrations.update",
                Some(&admin),
                Some(json!({"type": "webhook-incoming", "integrationId": id, "name": "ci2", "enabled": true,
                    "username": "bob", "channel": "#alerts", "scriptEnabled": false,
                    "overrideDestinationChannelEnabled": true})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["integration"]["token"], token,
            "the token survives updates"
        );
        let r = s
            .client
            .post(&url)
            .json(&json!({"text": "direct", "channel": "@admin", "separateResponse": true}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["responses"][0]["channel"], "@admin", "{v}");
        assert_eq!(v["responses"][0]["message"]["msg"], "direct");
        s.call(
            Method::PUT,
            "/api/v1/integrations.update",
            Some(&admin),
            Some(json!({"type": "webhook-incoming", "integrationId": id, "name": "ci2", "enabled": false,
                "username": "bob", "channel": "#alerts", "scriptEnabled": false})),
        )
        .await;
        let r = s
            .client
            .post(&url)
            .json(&json!({"text": "off"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);

        // Listing, per room, and removal; only managers may see them.
        let (_, list) = s.get("/api/v1/integrations.list", &admin).await;
        assert_eq!(list["total"], 1);
        let (_, per_room) = s
            .get(
                &format!("/api/v1/channels.getIntegrations?roomId={rid}"),
                &admin,
            )
            .await;
        assert_eq!(per_room["integrations"][0]["_id"], id);
        assert_eq!(s.get("/api/v1/integrations.list", &bob).await.0, 403);
        let (status, _) = s
            .post(
                "/api/v1/integrations.remove",
                &admin,
                json!({"type": "webhook-incoming", "integrationId": id}),
            )
            .await;
        assert_eq!(status, 200);
        let r = s
            .client
            .post(&url)
            .json(&json!({"text": "gone"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

#[tokio::test]
async fn integrations_are_checked_and_own_ones_are_kept_apart() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bad = |body: Value| {
            let s = &s;
            let admin = &admin;
            async move { s.post("/api/v1/integrations.create", admin, body).await }
        };
        let base = json!({"type": "webhook-incoming", "name": "x", "enabled": true,
            "username": "admin", "channel": "#general", "scriptEnabled": false});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_error(
            &bad(with("channel", json!("general"))).await,
            400,
            Some("error-invalid-channel"),
        );
        assert_error(
            &bad(with("channel", json!("#nowhere"))).await,
            400,
            Some("error-invalid-room"),
        );
        assert_error(
            &bad(with("username", json!("ghost"))).await,
            400,
            Some("error-invalid-user"),
        );
        assert_error(&bad(with("type", json!("nope"))).await, 400, None);
        let outgoing = json!({"type": "webhook-outgoing", "name": "out", "enabled": true, "event": "sendMessage",
            "username": "admin", "channel": "#general", "scriptEnabled": false, "urls": ["https://example.com/h"],
            "token": "shared-secret"});
        let mut no_urls = outgoing.clone();
        no_urls["urls"] = json!([]);
        assert_error(&bad(no_urls).await, 400, Some("error-invalid-urls"));
        let mut bad_event = outgoing.clone();
        bad_event["event"] = json!("teleport");
        assert_error(&bad(bad_event).await, 400, Some("error-invalid-event-type"));
        let (_, list) = s.get("/api/v1/integrations.list", &admin).await;
        assert_eq!(list["total"], 0, "nothing stored by refused calls");

        // Outgoing webhooks keep the token the remote service checks.
        let out = incoming(&s, &admin, outgoing).await;
        assert_eq!(out["token"], "shared-secret");
        assert_eq!(out["urls"], json!(["https://example.com/h"]));
        let (_, h) = s
            .get(
                &format!(
                    "/api/v1/integrations.history?id={}",
                    out["_id"].as_str().unwrap()
                ),
                &admin,
            )
            .await;
        assert_eq!(h["total"], 0);

        // A user allowed only their own incoming webhooks sees and changes only those.
        s.post(
            "/api/v1/permissions.update",
            &admin,
            json!({"permissions": [{"_id": "manage-own-incoming-integrations", "roles": ["admin", "user"]}]}),
        )
        .await;
        let mine = incoming(
            &s,
            &bob,
            json!({"type": "webhook-incoming", "name": "mine", "enabled": true, "username": "bob",
                "channel": "#general", "scriptEnabled": false}),
        )
        .await;
        let (_, list) = s.get("/api/v1/integrations.list", &bob).await;
        assert_eq!(list["total"], 1, "{list}");
        assert_eq!(list["integrations"][0]["_id"], mine["_id"]);
        let got = s
            .get(
                &format!(
                    "/api/v1/integrations.get?integrationId={}",
                    out["_id"].as_str().unwrap()
                ),
                &bob,
            )
            .await;
        assert_error(&got, 400, None);
        let removed = s
            .post(
                "/api/v1/integrations.remove",
                &bob,
                json!({"type": "webhook-outgoing", "integrationId": out["_id"]}),
            )
            .await;
        assert_error(&removed, 400, Some("not_authorized"));
        let (_, list) = s.get("/api/v1/integrations.list", &admin).await;
        assert_eq!(list["total"], 2, "nothing removed");
    }
}

#[tokio::test]
async fn reports_are_listed_dismissed_and_reported_messages_deleted() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let (_, sent) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"channel": "#general", "text": "rude words"}),
            )
            .await;
        let mid = sent["message"]["_id"].as_str().unwrap().to_string();
        for who in [&carol, &admin] {
            let (status, v) = s
                .post(
                    "/api/v1/chat.reportMessage",
                    who,
                    json!({"messageId": mid, "description": "spam"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
        }
        assert_error(
            &s.post(
                "/api/v1/chat.reportMessage",
                &carol,
                json!({"messageId": "nope", "description": "x"}),
            )
            .await,
            400,
            Some("error-invalid-message"),
        );
        // Only the moderation console may read them.
        assert_eq!(
            s.get(&format!("/api/v1/moderation.reports?msgId={mid}"), &carol)
                .await
                .0,
            403
        );
        let (_, reports) = s
            .get(&format!("/api/v1/moderation.reports?msgId={mid}"), &admin)
            .await;
        assert_eq!(reports["total"], 2, "{reports}");
        assert_eq!(reports["reports"][0]["room"]["_id"], "GENERAL");
        let (_, by_users) = s.get("/api/v1/moderation.reportsByUsers", &admin).await;
        assert_eq!(by_users["reports"][0]["userId"], bob.user_id.as_str());
        assert_eq!(by_users["reports"][0]["count"], 2);
        let (_, msgs) = s
            .get(
                &format!(
                    "/api/v1/moderation.user.reportedMessages?userId={}",
                    bob.user_id
                ),
                &admin,
            )
            .await;
        assert_eq!(
            msgs["messages"].as_array().unwrap().len(),
            1,
            "one entry per message"
        );

        // Dismissing hides them (kept, with who and why).
        let id = reports["reports"][0]["_id"].as_str().unwrap().to_string();
        s.post(
            "/api/v1/moderation.dismissReports",
            &admin,
            json!({"msgId": mid, "reason": "fine"}),
        )
        .await;
        let (_, after) = s
            .get(&format!("/api/v1/moderation.reports?msgId={mid}"), &admin)
            .await;
        assert_eq!(after["total"], 0);
        let (_, info) = s
            .get(
                &format!("/api/v1/moderation.reportInfo?reportId={id}"),
                &admin,
            )
            .await;
        assert_eq!(info["report"]["_hidden"], true);
        assert_eq!(info["report"]["moderationInfo"]["reason"], "fine");

        // Reported again, then deleted by a moderator: gone, and listed as deleted.
        s.post(
            "/api/v1/chat.reportMessage",
            &carol,
            json!({"messageId": mid, "description": "again"}),
        )
        .await;
        let (status, v) = s
            .post(
                "/api/v1/moderation.user.deleteReportedMessages",
                &admin,
                json!({"userId": bob.user_id}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (_, deleted) = s
            .get(
                "/api/v1/chat.getDeletedMessages?roomId=GENERAL&since=2000-01-01T00:00:00.000Z",
                &admin,
            )
            .await;
        assert!(
            deleted["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["_id"] == mid.as_str())
        );

        // User reports.
        s.post(
            "/api/v1/moderation.reportUser",
            &carol,
            json!({"userId": bob.user_id, "description": "troll"}),
        )
        .await;
        let (_, users) = s.get("/api/v1/moderation.userReports", &admin).await;
        assert_eq!(
            users["reports"][0]["reportedUser"]["_id"],
            bob.user_id.as_str()
        );
        s.post(
            "/api/v1/moderation.dismissUserReports",
            &admin,
            json!({"userId": bob.user_id}),
        )
        .await;
        let (_, users) = s.get("/api/v1/moderation.userReports", &admin).await;
        assert_eq!(users["total"], 0);
    }
}

async fn multipart(s: &Server, path: &str, a: &Auth, form: Form) -> (u16, Value) {
    let r = s
        .client
        .post(format!("{}{path}", s.base))
        .header("X-User-Id", &a.user_id)
        .header("X-Auth-Token", &a.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn image(bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec())
        .file_name("e.png")
        .mime_str("image/png")
        .unwrap()
}

#[tokio::test]
async fn custom_emoji_and_assets_are_stored_and_served() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let form = || {
            Form::new()
                .text("name", "party")
                .text("aliases", "tada, fiesta")
                .part("emoji", image(PNG))
        };
        let (status, v) = multipart(&s, "/api/v1/emoji-custom.create", &bob, form()).await;
        assert_eq!(
            (status, v["errorType"].clone()),
            (400, json!("not_authorized")),
            "{v}"
        );
        let (status, v) = multipart(&s, "/api/v1/emoji-custom.create", &admin, form()).await;
        assert_eq!(status, 200, "{v}");
        // Names and aliases are unique across emoji; a non-image is refused.
        let (_, v) = multipart(
            &s,
            "/api/v1/emoji-custom.create",
            &admin,
            Form::new().text("name", "fiesta").part("emoji", image(PNG)),
        )
        .await;
        assert_eq!(
            v["errorType"],
            "Custom_Emoji_Error_Name_Or_Alias_Already_In_Use"
        );
        let (_, v) = multipart(
            &s,
            "/api/v1/emoji-custom.create",
            &admin,
            Form::new()
                .text("name", "text")
                .part("emoji", image(b"not an image")),
        )
        .await;
        assert_eq!(v["errorType"], "error-invalid-image");

        let (_, list) = s.get("/api/v1/emoji-custom.list", &bob).await;
        let emoji = list["emojis"]["update"][0].clone();
        assert_eq!(emoji["name"], "party");
        assert_eq!(emoji["aliases"], json!(["tada", "fiesta"]));
        assert_eq!(emoji["extension"], "png");
        let r = s
            .client
            .get(format!("{}/emoji-custom/party.png", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);

        // Renamed without a new image (form-encoded), then deleted: `updatedSince` sees both.
        let since = list["emojis"]["update"][0]["_updatedAt"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .client
            .post(format!("{}/api/v1/emoji-custom.update", s.base))
            .header("X-User-Id", &admin.user_id)
            .header("X-Auth-Token", &admin.token)
            .form(&[("_id", emoji["_id"].as_str().unwrap()), ("name", "party2")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (_, all) = s.get("/api/v1/emoji-custom.all", &bob).await;
        assert_eq!(all["emojis"][0]["name"], "party2");
        s.post(
            "/api/v1/emoji-custom.delete",
            &admin,
            json!({"emojiId": emoji["_id"]}),
        )
        .await;
        let (_, delta) = s
            .get(
                &format!("/api/v1/emoji-custom.list?updatedSince={since}"),
                &bob,
            )
            .await;
        assert_eq!(delta["emojis"]["remove"][0]["_id"], emoji["_id"], "{delta}");
        let r = s
            .client
            .get(format!("{}/emoji-custom/party2.png", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);

        // Assets: public settings at their defaults, set, served, unset.
        let logo_setting = || async {
            let (_, v) = s
                .call(
                    Method::GET,
                    "/api/v1/settings.public?_id=Assets_logo",
                    None,
                    None,
                )
                .await;
            v["settings"][0]["value"].clone()
        };
        assert_eq!(
            logo_setting().await,
            json!({"defaultUrl": "images/logo/logo.svg"})
        );
        let (status, _) = s
            .post(
                "/api/v1/settings/Assets_logo",
                &admin,
                json!({"value": "x.png"}),
            )
            .await;
        assert_eq!(status, 400, "assets change only through assets.setAsset");
        let asset = || {
            Form::new()
                .text("assetName", "logo")
                .part("asset", image(PNG))
        };
        let (status, _) = multipart(&s, "/api/v1/assets.setAsset", &bob, asset()).await;
        assert_eq!(status, 400);
        let (status, v) = multipart(&s, "/api/v1/assets.setAsset", &admin, asset()).await;
        assert_eq!(status, 200, "{v}");
        let r = s
            .client
            .get(format!("{}/assets/logo.png", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
        assert_eq!(logo_setting().await["url"], "assets/logo.png");
        let (_, v) = multipart(
            &s,
            "/api/v1/assets.setAsset",
            &admin,
            Form::new()
                .text("assetName", "nonsense")
                .part("asset", image(PNG)),
        )
        .await;
        assert_eq!(v["errorType"], "error-invalid-asset");
        s.post(
            "/api/v1/assets.unsetAsset",
            &admin,
            json!({"assetName": "logo"}),
        )
        .await;
        let r = s
            .client
            .get(format!("{}/assets/logo.png", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            logo_setting().await,
            json!({"defaultUrl": "images/logo/logo.svg"})
        );
    }
}
