//! Black-box REST tests: the real binary, on SQLite and (when configured) PostgreSQL.

mod common;

use common::{Backend, Server, assert_error, backends};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn fresh_workspace_is_seeded_and_first_user_is_admin() {
    for b in backends() {
        let s = Server::start(b).await;
        let (status, info) = s.call(Method::GET, "/api/info", None, None).await;
        assert_eq!(
            (status.as_u16(), info["success"].clone()),
            (200, json!(true))
        );
        let admin = s.user("alice").await;
        let bob = s.user("bob").await;
        let (_, me) = s.get("/api/v1/me", &admin).await;
        assert_eq!(me["roles"], json!(["admin", "user"]), "{b:?}");
        let (_, me) = s.get("/api/v1/me", &bob).await;
        assert_eq!(me["roles"], json!(["user"]));
        let (_, info) = s.get("/api/info", &admin).await;
        assert_eq!(info["version"], "8.5.0");
        assert!(info["info"].is_object());
        let (_, general) = s.get("/api/v1/channels.info?roomId=GENERAL", &bob).await;
        assert_eq!(general["channel"]["name"], "general");
        let (_, cat) = s.get("/api/v1/users.info?username=rocket.cat", &bob).await;
        assert_eq!(cat["user"]["type"], "bot");
        let (_, subs) = s.get("/api/v1/subscriptions.get", &bob).await;
        assert_eq!(
            subs["update"][0]["rid"], "GENERAL",
            "new users join the default channel"
        );
    }
}

#[tokio::test]
async fn data_survives_a_restart() {
    for b in backends() {
        let s = Server::start(b).await;
        let db = match b {
            Backend::Postgres => Some(s.db_url().to_string()),
            Backend::Sqlite => None,
        };
        let a = s.user("keeper").await;
        let (_, sent) = s
            .post(
                "/api/v1/chat.postMessage",
                &a,
                json!({"channel": "#general", "text": "still here"}),
            )
            .await;
        let id = sent["message"]["_id"].as_str().unwrap().to_string();
        let dir = s.stop();
        let s = Server::start_in(b, dir, &[], db).await;
        let a = s.login("keeper").await;
        let (_, got) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={id}"), &a)
            .await;
        assert_eq!(got["message"]["msg"], "still here", "{b:?}");
    }
}

#[tokio::test]
async fn conversation_in_a_channel() {
    for b in backends() {
        let s = Server::start(b).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let (status, created) = s
            .post(
                "/api/v1/channels.create",
                &alice,
                json!({"name": "team", "members": ["bob"]}),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        let rid = created["channel"]["_id"].as_str().unwrap().to_string();
        assert_eq!(created["channel"]["usersCount"], 2);

        let (_, m1) = s
            .post(
                "/api/v1/chat.sendMessage",
                &alice,
                json!({"message": {"rid": rid, "msg": "hi @bob, *welcome*"}}),
            )
            .await;
        let m1 = &m1["message"];
        assert_eq!(m1["mentions"][0]["username"], "bob");
        assert_eq!(m1["md"][0]["type"], "PARAGRAPH");
        let mid = m1["_id"].as_str().unwrap().to_string();
        let (_, sub) = s
            .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
            .await;
        assert_eq!(
            (
                sub["subscription"]["unread"].clone(),
                sub["subscription"]["userMentions"].clone()
            ),
            (json!(1), json!(1))
        );
        assert_eq!(sub["subscription"]["alert"], true);
        s.post("/api/v1/subscriptions.read", &bob, json!({"rid": rid}))
            .await;
        let (_, sub) = s
            .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
            .await;
        assert_eq!(
            (
                sub["subscription"]["unread"].clone(),
                sub["subscription"]["userMentions"].clone()
            ),
            (json!(0), json!(0))
        );

        // Thread reply, reaction, star, pin, edit.
        let (_, reply) = s
            .post(
                "/api/v1/chat.sendMessage",
                &bob,
                json!({"message": {"rid": rid, "msg": "thanks", "tmid": mid}}),
            )
            .await;
        assert_eq!(reply["message"]["tmid"], mid.as_str());
        let (_, parent) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={mid}"), &bob)
            .await;
        assert_eq!(parent["message"]["tcount"], 1);
        assert_eq!(parent["message"]["replies"].as_array().unwrap().len(), 2);
        let (_, thread) = s
            .get(
                &format!("/api/v1/chat.getThreadMessages?tmid={mid}"),
                &alice,
            )
            .await;
        assert_eq!(thread["messages"][0]["msg"], "thanks");
        let (_, threads) = s
            .get(&format!("/api/v1/chat.getThreadsList?rid={rid}"), &alice)
            .await;
        assert_eq!(threads["threads"][0]["_id"], mid.as_str());
        let (status, _) = s
            .post(
                "/api/v1/chat.react",
                &bob,
                json!({"messageId": mid, "emoji": ":tada:"}),
            )
            .await;
        assert_eq!(status, 200);
        s.post("/api/v1/chat.starMessage", &bob, json!({"messageId": mid}))
            .await;
        let (_, pin) = s
            .post("/api/v1/chat.pinMessage", &alice, json!({"messageId": mid}))
            .await;
        assert_eq!(pin["message"]["t"], "message_pinned");
        let (_, edited) = s
            .post(
                "/api/v1/chat.update",
                &alice,
                json!({"roomId": rid, "msgId": mid, "text": "hello"}),
            )
            .await;
        assert_eq!(edited["message"]["msg"], "hello");
        assert!(edited["message"]["editedAt"].is_string());
        let (_, got) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={mid}"), &bob)
            .await;
        assert_eq!(
            got["message"]["reactions"][":tada:"]["usernames"],
            json!(["bob"])
        );
        assert_eq!(got["message"]["pinned"], true);
        let (_, starred) = s
            .get(
                &format!("/api/v1/chat.getStarredMessages?roomId={rid}"),
                &bob,
            )
            .await;
        assert_eq!(starred["total"], 1);

        // History is newest first and pages by date.
        let (_, h) = s
            .get(
                &format!("/api/v1/channels.history?roomId={rid}&count=2"),
                &bob,
            )
            .await;
        let msgs = h["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0]["ts"].as_str() >= msgs[1]["ts"].as_str());
        let (_, found) = s
            .get(
                &format!("/api/v1/chat.search?roomId={rid}&searchText=HELLO"),
                &bob,
            )
            .await;
        assert_eq!(found["messages"][0]["_id"], mid.as_str());

        // Deleting leaves a trace for sync.
        let (status, _) = s
            .post(
                "/api/v1/chat.delete",
                &alice,
                json!({"roomId": rid, "msgId": mid}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, sync) = s
            .get(
                &format!(
                    "/api/v1/chat.syncMessages?roomId={rid}&lastUpdate=2000-01-01T00:00:00.000Z"
                ),
                &bob,
            )
            .await;
        assert_eq!(sync["result"]["deleted"][0]["_id"], mid.as_str());

        // Leave and kick produce system messages.
        s.post("/api/v1/channels.leave", &bob, json!({"roomId": rid}))
            .await;
        let (_, h) = s
            .get(
                &format!("/api/v1/channels.history?roomId={rid}&count=1"),
                &alice,
            )
            .await;
        assert_eq!(h["messages"][0]["t"], "ul");
        let since = "/api/v1/rooms.get?updatedSince=2000-01-01T00:00:00.000Z";
        let (_, delta) = s.get(since, &bob).await;
        assert_eq!(delta["remove"][0]["_id"], rid.as_str(), "{delta}");
        assert!(
            delta["update"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["_id"] != rid.as_str())
        );
    }
}

#[tokio::test]
async fn client_chosen_ids_make_sends_idempotent() {
    let s = Server::start(Backend::Sqlite).await;
    let a = s.user("alice").await;
    let body = json!({"message": {"_id": "clientChosen1", "rid": "GENERAL", "msg": "once"}});
    let (_, first) = s.post("/api/v1/chat.sendMessage", &a, body.clone()).await;
    let (_, again) = s.post("/api/v1/chat.sendMessage", &a, body).await;
    assert_eq!(first["message"], again["message"]);
    let (_, h) = s.get("/api/v1/channels.history?roomId=GENERAL", &a).await;
    let sends = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["msg"] == "once")
        .count();
    assert_eq!(sends, 1);
}

#[tokio::test]
async fn direct_messages_and_private_groups_stay_private() {
    for b in backends() {
        let s = Server::start(b).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let eve = s.user("eve").await;
        let (_, dm) = s
            .post("/api/v1/im.create", &alice, json!({"username": "bob"}))
            .await;
        let rid = dm["room"]["_id"].as_str().unwrap().to_string();
        let mut ids = [alice.user_id.clone(), bob.user_id.clone()];
        ids.sort();
        assert_eq!(rid, ids.concat(), "DM id is the sorted ids");
        s.post(
            "/api/v1/chat.postMessage",
            &bob,
            json!({"channel": "@alice", "text": "psst"}),
        )
        .await;
        let (_, h) = s
            .get(&format!("/api/v1/im.history?roomId={rid}"), &alice)
            .await;
        assert_eq!(h["messages"][0]["msg"], "psst");
        assert_error(
            &s.get(&format!("/api/v1/im.history?roomId={rid}"), &eve)
                .await,
            400,
            None,
        );
        let (_, g) = s
            .post("/api/v1/groups.create", &alice, json!({"name": "secret"}))
            .await;
        let gid = g["group"]["_id"].as_str().unwrap().to_string();
        assert_error(
            &s.get(&format!("/api/v1/groups.info?roomId={gid}"), &eve)
                .await,
            400,
            Some("error-room-not-found"),
        );
        let (_, list) = s.get("/api/v1/groups.list", &eve).await;
        assert_eq!(list["groups"], json!([]));
        let posted = s
            .post(
                "/api/v1/chat.sendMessage",
                &eve,
                json!({"message": {"rid": gid, "msg": "let me in"}}),
            )
            .await;
        assert_error(&posted, 400, None);
        let (_, h) = s
            .get(&format!("/api/v1/groups.history?roomId={gid}"), &alice)
            .await;
        assert_eq!(h["messages"], json!([]), "the refused post wrote nothing");
    }
}

#[tokio::test]
async fn bad_input_gets_rocket_chat_errors_and_writes_nothing() {
    let s = Server::start(Backend::Sqlite).await;
    let admin = s.user("admin1").await;
    let user = s.user("plain").await;
    let count = |v: &Value| v["messages"].as_array().unwrap().len();
    let (_, before) = s
        .get("/api/v1/channels.history?roomId=GENERAL&count=100", &admin)
        .await;

    // Malformed JSON.
    let resp = s
        .client
        .post(format!("{}/api/v1/chat.sendMessage", s.base))
        .header("X-User-Id", &admin.user_id)
        .header("X-Auth-Token", &admin.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], false);

    // Missing and wrongly shaped parameters.
    let missing = s.post("/api/v1/channels.create", &admin, json!({})).await;
    assert_error(&missing, 400, Some("invalid-params"));
    assert_eq!(
        missing.1["error"],
        "must have required property 'name' [invalid-params]"
    );
    assert_error(
        &s.post("/api/v1/chat.sendMessage", &admin, json!({"nope": 1}))
            .await,
        400,
        None,
    );
    assert_error(
        &s.post(
            "/api/v1/chat.sendMessage",
            &admin,
            json!({"message": "text"}),
        )
        .await,
        400,
        None,
    );
    assert_error(
        &s.get(
            "/api/v1/channels.history?roomId=GENERAL&latest=yesterday",
            &admin,
        )
        .await,
        400,
        None,
    );

    // Unknown room and user, invalid ids, oversize messages.
    let unknown = s
        .post(
            "/api/v1/chat.sendMessage",
            &admin,
            json!({"message": {"rid": "nowhere", "msg": "x"}}),
        )
        .await;
    assert_error(&unknown, 400, Some("error-invalid-room"));
    assert_error(
        &s.get("/api/v1/channels.info?roomId=nowhere", &admin).await,
        400,
        Some("error-room-not-found"),
    );
    assert_error(
        &s.get("/api/v1/users.info?username=ghost", &admin).await,
        400,
        None,
    );
    let bad_id = s
        .post(
            "/api/v1/chat.sendMessage",
            &admin,
            json!({"message": {"_id": "a b", "rid": "GENERAL", "msg": "x"}}),
        )
        .await;
    assert_error(&bad_id, 400, None);
    let long = "x".repeat(5001);
    let oversize = s
        .post(
            "/api/v1/chat.sendMessage",
            &admin,
            json!({"message": {"rid": "GENERAL", "msg": long}}),
        )
        .await;
    assert_error(&oversize, 400, Some("error-message-size-exceeded"));
    assert_error(
        &s.post(
            "/api/v1/channels.create",
            &admin,
            json!({"name": "bad name!"}),
        )
        .await,
        400,
        Some("error-invalid-room-name"),
    );
    s.post("/api/v1/channels.create", &admin, json!({"name": "taken"}))
        .await;
    assert_error(
        &s.post("/api/v1/channels.create", &admin, json!({"name": "taken"}))
            .await,
        400,
        Some("error-duplicate-channel-name"),
    );

    // Unauthenticated and unauthorized.
    let (status, anon) = s.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(
        (status.as_u16(), anon["status"].clone()),
        (401, json!("error"))
    );
    let bad_token = common::Auth {
        user_id: admin.user_id.clone(),
        token: "forged".into(),
    };
    assert_eq!(s.get("/api/v1/me", &bad_token).await.0, 401);
    let forbidden = s
        .post(
            "/api/v1/users.create",
            &user,
            json!({"username": "x", "email": "x@x.io", "password": "p", "name": "x"}),
        )
        .await;
    assert_error(&forbidden, 403, Some("error-unauthorized"));
    assert_error(
        &s.post(
            "/api/v1/permissions.update",
            &user,
            json!({"permissions": [{"_id": "create-c", "roles": []}]}),
        )
        .await,
        403,
        None,
    );
    let wrong = s
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"username": "plain", "password": "wrong"})),
        )
        .await;
    assert_eq!(wrong.0, 401);
    assert_eq!(
        s.call(Method::GET, "/api/v1/no.such.endpoint", Some(&admin), None)
            .await
            .0,
        404
    );

    let (_, after) = s
        .get("/api/v1/channels.history?roomId=GENERAL&count=100", &admin)
        .await;
    assert_eq!(
        count(&before),
        count(&after),
        "no failed call wrote a message"
    );
}

#[tokio::test]
async fn permissions_and_settings_round_trip() {
    let s = Server::start(Backend::Sqlite).await;
    let admin = s.user("admin1").await;
    let user = s.user("plain").await;
    let revoke = json!({"permissions": [{"_id": "create-c", "roles": ["admin"]}]});
    assert_eq!(
        s.post("/api/v1/permissions.update", &admin, revoke).await.0,
        200
    );
    let denied = s
        .post("/api/v1/channels.create", &user, json!({"name": "nope"}))
        .await;
    assert_error(&denied, 403, Some("error-unauthorized"));
    let (_, all) = s.get("/api/v1/permissions.listAll", &user).await;
    let create_c = all["update"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["_id"] == "create-c")
        .unwrap()
        .clone();
    assert_eq!(create_c["roles"], json!(["admin"]));
    let (_, roles) = s.get("/api/v1/roles.list", &user).await;
    assert!(
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["_id"] == "owner")
    );
    assert_eq!(
        s.post(
            "/api/v1/settings/Message_MaxAllowedSize",
            &admin,
            json!({"value": 10})
        )
        .await
        .0,
        200
    );
    let long = s
        .post(
            "/api/v1/chat.sendMessage",
            &user,
            json!({"message": {"rid": "GENERAL", "msg": "longer than ten"}}),
        )
        .await;
    assert_error(&long, 400, Some("error-message-size-exceeded"));
    assert_error(
        &s.post(
            "/api/v1/settings/Message_MaxAllowedSize",
            &user,
            json!({"value": 99}),
        )
        .await,
        403,
        None,
    );
    let (_, public) = s
        .call(
            Method::GET,
            "/api/v1/settings.public?_id=Site_Name",
            None,
            None,
        )
        .await;
    assert_eq!(public["settings"][0]["_id"], "Site_Name");
}

#[tokio::test]
async fn operator_variables_are_honoured() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("ADMIN_USERNAME", "root"),
            ("ADMIN_PASS", common::PASSWORD),
            ("OVERWRITE_SETTING_Site_Name", "Orbit"),
        ],
    )
    .await;
    let root = s.login("root").await;
    let (_, me) = s.get("/api/v1/me", &root).await;
    assert!(me["roles"].as_array().unwrap().contains(&json!("admin")));
    let (_, public) = s
        .call(
            Method::GET,
            "/api/v1/settings.public?_id=Site_Name",
            None,
            None,
        )
        .await;
    assert_eq!(public["settings"][0]["value"], "Orbit");
}

#[tokio::test]
async fn rest_rate_limiter_counts_per_route_and_lets_admins_through() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("OVERWRITE_SETTING_API_Enable_Rate_Limiter", "true"),
            (
                "OVERWRITE_SETTING_API_Enable_Rate_Limiter_Limit_Calls_Default",
                "3",
            ),
        ],
    )
    .await;
    let admin = s.user("boss").await;
    let ann = s.user("ann").await;
    let me = |a: &common::Auth| {
        s.client
            .get(format!("{}/api/v1/me", s.base))
            .header("X-User-Id", &a.user_id)
            .header("X-Auth-Token", &a.token)
            .send()
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()[name].to_str().unwrap().parse::<u64>().unwrap()
    };
    for remaining in [2, 1, 0] {
        let r = me(&ann).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit"), 3);
        assert_eq!(header(&r, "x-ratelimit-remaining"), remaining);
        assert!(header(&r, "x-ratelimit-reset") > 1_700_000_000_000);
    }
    let r = me(&ann).await.unwrap();
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["success"], false);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("Error, too many requests. Please slow down. You must wait ")
            && error
                .ends_with(" seconds before trying this endpoint again. [error-too-many-requests]"),
        "{error}"
    );
    // Another route has its own count; admins hold api-bypass-rate-limit.
    let (status, _) = s.get("/api/v1/users.info?username=ann", &ann).await;
    assert_eq!(status, 200);
    assert_eq!(me(&admin).await.unwrap().status(), 200);
}

#[tokio::test]
async fn repeated_failed_logins_block_the_user_then_the_address() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            (
                "OVERWRITE_SETTING_Block_Multiple_Failed_Logins_Attempts_Until_Block_by_User",
                "3",
            ),
            (
                "OVERWRITE_SETTING_Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
                "6",
            ),
        ],
    )
    .await;
    s.user("ann").await;
    s.user("bob").await;
    let login = |user: &str, password: &str| {
        let body = json!({"user": user, "password": password});
        s.call(Method::POST, "/api/v1/login", None, Some(body))
    };
    for _ in 0..3 {
        let (status, v) = login("ann", "wrong").await;
        assert_eq!((status.as_u16(), &v["error"]), (401, &json!(403)), "{v}");
    }
    // Blocked before the password is even checked, the right one included.
    let (status, v) = login("ann", common::PASSWORD).await;
    assert_eq!(status, 401);
    assert_eq!(v["error"], "error-login-blocked-for-user", "{v}");
    assert_eq!(v["message"], "Login has been temporarily blocked For User");
    // Others still log in (which clears the address's count).
    let (status, _) = login("bob", common::PASSWORD).await;
    assert_eq!(status, 200);
    for i in 0..6 {
        login(&format!("nobody{i}"), "x").await;
    }
    let (status, v) = login("bob", common::PASSWORD).await;
    assert_eq!(status, 401);
    assert_eq!(v["error"], "error-login-blocked-for-ip", "{v}");
}

#[tokio::test]
async fn hammering_one_blocked_account_blocks_the_address_too() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            (
                "OVERWRITE_SETTING_Block_Multiple_Failed_Logins_Attempts_Until_Block_by_User",
                "2",
            ),
            (
                "OVERWRITE_SETTING_Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
                "5",
            ),
        ],
    )
    .await;
    let bob = s.user("bob").await;
    s.user("ann").await;
    let login = |user: &str, password: &str| {
        let body = json!({"user": user, "password": password});
        s.call(Method::POST, "/api/v1/login", None, Some(body))
    };
    let mut errors = Vec::new();
    for _ in 0..6 {
        let (_, v) = login("ann", "wrong").await;
        errors.push(v["error"].clone());
    }
    // Two wrong passwords, then refusals for the user, which count for the address: the fifth
    // failure blocks it.
    assert_eq!(
        errors,
        [
            json!(403),
            json!(403),
            json!("error-login-blocked-for-user"),
            json!("error-login-blocked-for-user"),
            json!("error-login-blocked-for-user"),
            json!("error-login-blocked-for-ip"),
        ]
    );
    let (_, v) = login("bob", common::PASSWORD).await;
    assert_eq!(v["error"], "error-login-blocked-for-ip", "{v}");
    // The address's block is about logins: sessions from it keep working.
    let (status, v) = s.get("/api/v1/me", &bob).await;
    assert_eq!(status, 200, "{v}");
}

/// Six messages sent in one millisecond, between two others: `channels.history` in pages of two,
/// each next `latest` the last message's `ts` (exclusive, as clients page), returns every
/// message exactly once, in order.
#[tokio::test]
async fn channel_history_pages_lose_no_message_of_one_millisecond() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let ann = s.user("ann").await;
        let created = s
            .post_ok("/api/v1/channels.create", &ann, json!({"name": "ties"}))
            .await;
        let rid = created["channel"]["_id"].as_str().unwrap().to_string();
        let mut ids = Vec::new();
        for i in 0..8 {
            let sent = s
                .post_ok(
                    "/api/v1/chat.sendMessage",
                    &ann,
                    json!({"message": {"rid": rid, "msg": format!("m{i}")}}),
                )
                .await;
            ids.push(sent["message"]["_id"].as_str().unwrap().to_string());
        }
        let ms = apogee_domain::Timestamp::now().millis() - 60_000;
        let at = apogee_domain::Timestamp::from_millis;
        let id = |i: usize| ids[i].as_str();
        s.set_message_ts(&[id(0)], at(ms));
        s.set_message_ts(&(1..7).map(id).collect::<Vec<_>>(), at(ms + 1));
        s.set_message_ts(&[id(7)], at(ms + 2));

        let page = |query: String| {
            let s = &s;
            let ann = &ann;
            async move {
                let (status, h) = s
                    .get(&format!("/api/v1/channels.history?{query}"), ann)
                    .await;
                assert_eq!(status, 200, "{h}");
                let msgs = h["messages"].as_array().unwrap().clone();
                let ids: Vec<String> = msgs
                    .iter()
                    .map(|m| m["_id"].as_str().unwrap().to_string())
                    .collect();
                (
                    ids,
                    msgs.last().map(|m| m["ts"].as_str().unwrap().to_string()),
                )
            }
        };
        let (all, _) = page(format!("roomId={rid}&count=100")).await;
        for i in &ids {
            assert_eq!(all.iter().filter(|a| *a == i).count(), 1, "{i} in {all:?}");
        }

        let mut seen = Vec::new();
        let mut latest = String::new();
        loop {
            let bound = if latest.is_empty() {
                String::new()
            } else {
                format!("&latest={latest}")
            };
            let (ids, last) = page(format!("roomId={rid}&count=2{bound}")).await;
            let Some(last) = last else { break };
            seen.extend(ids);
            latest = last;
        }
        assert_eq!(seen, all, "{backend:?}: pages by latest");

        // A window strictly between the two other messages, smaller than the millisecond
        // inside it: the whole millisecond, newest first.
        let iso = |t: i64| at(t).to_iso();
        let (window, _) = page(format!(
            "roomId={rid}&count=2&oldest={}&latest={}",
            iso(ms),
            iso(ms + 2)
        ))
        .await;
        let ties: Vec<String> = all
            .iter()
            .filter(|a| ids[1..7].contains(a))
            .cloned()
            .collect();
        assert_eq!(window, ties, "{backend:?}: a window of one millisecond");
    }
}

/// `chat.syncMessages` with `lastUpdate` answers every change since (as Rocket.Chat does: the
/// answer has no next page to ask for), however many: more than the store's page of 500.
#[tokio::test]
async fn sync_messages_answers_every_change_since() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let ann = s.user("ann").await;
        let created = s
            .post_ok("/api/v1/channels.create", &ann, json!({"name": "busy"}))
            .await;
        let rid = created["channel"]["_id"].as_str().unwrap().to_string();
        let since = apogee_domain::Timestamp::now().millis() - 1_000;
        let since = apogee_domain::Timestamp::from_millis(since).to_iso();
        let mut sent = Vec::new();
        for chunk in (0..520).collect::<Vec<_>>().chunks(20) {
            let sends = chunk.iter().map(|i| {
                s.post_ok(
                    "/api/v1/chat.sendMessage",
                    &ann,
                    json!({"message": {"rid": rid, "msg": format!("m{i}")}}),
                )
            });
            for m in futures_util::future::join_all(sends).await {
                sent.push(m["message"]["_id"].as_str().unwrap().to_string());
            }
        }
        let (status, body) = s
            .get(
                &format!("/api/v1/chat.syncMessages?roomId={rid}&lastUpdate={since}"),
                &ann,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut got: Vec<String> = body["result"]["updated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["_id"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        got.dedup();
        sent.sort();
        assert!(
            sent.iter().all(|id| got.binary_search(id).is_ok()),
            "{backend:?}: {} of {} sent messages in the answer",
            sent.iter()
                .filter(|id| got.binary_search(id).is_ok())
                .count(),
            sent.len()
        );
    }
}
