//! Black-box DDP tests: the real binary, a real WebSocket, Rocket.Chat's frames.

mod common;

use common::ddp::{Ddp, Frame};
use common::{Backend, PASSWORD, Server};
use futures_util::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn server() -> Server {
    Server::start(Backend::Sqlite).await
}

async fn healthy(s: &Server) {
    let (status, _) = s.call(Method::GET, "/api/info", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn handshake_and_ping() {
    let s = server().await;
    let mut d = Ddp::connect(&s).await;
    d.send(json!({"msg": "ping", "id": "x"})).await;
    assert_eq!(d.next().await, json!({"msg": "pong", "id": "x"}));
    d.send(json!({"msg": "ping"})).await;
    assert_eq!(d.next().await, json!({"msg": "pong"}));
    let r = d.call("noSuchMethod", json!([])).await;
    assert_eq!(r["error"]["error"], 404, "{r}");
    assert_eq!(r["error"]["reason"], "Method 'noSuchMethod' not found");
    assert_eq!(r["error"]["errorType"], "Meteor.Error");
    let r = d.call("getRoomNameById", json!(["GENERAL"])).await;
    assert_eq!(r["error"]["error"], "error-invalid-user", "{r}");
    let ok = d.sub("stream-notify-all", "public-settings-changed").await;
    assert_eq!(ok["msg"], "ready");
    let sub_id = ok["subs"][0].clone();
    let no = d.sub("stream-nonexistent", "x").await;
    assert_eq!(no["error"]["error"], 404, "{no}");
    d.send(json!({"msg": "unsub", "id": sub_id})).await;
    assert_eq!(d.next().await, json!({"msg": "nosub", "id": sub_id}));
}

#[tokio::test]
async fn login_with_digest_then_resume_after_rest_login() {
    let s = server().await;
    let ann = s.user("ann").await;
    let mut d = Ddp::connect(&s).await;
    let digest = apogee_core::passwords::digest(PASSWORD);
    d.next_id += 1;
    d.send(json!({"msg": "method", "method": "login", "id": "1", "params": [{"user": {"username": "ann"}, "password": {"digest": digest, "algorithm": "sha-256"}}]}))
        .await;
    let added = d.next().await;
    assert_eq!(added["msg"], "added", "{added}");
    assert_eq!(added["collection"], "users");
    assert_eq!(added["id"], ann.user_id.as_str());
    assert_eq!(added["fields"]["username"], "ann");
    assert!(added["fields"].get("services").is_none());
    let result = d.next().await;
    assert_eq!(result["msg"], "result");
    assert_eq!(result["id"], "1");
    assert_eq!(result["result"]["id"], ann.user_id.as_str());
    assert_eq!(result["result"]["type"], "password");
    assert!(result["result"]["token"].is_string());
    assert!(
        result["result"]["tokenExpires"]["$date"].is_i64(),
        "{result}"
    );
    assert_eq!(d.next().await, json!({"msg": "updated", "methods": ["1"]}));

    let bad = d
        .call("login", json!([{"user": {"username": "ann"}, "password": {"digest": "00", "algorithm": "sha-256"}}]))
        .await;
    assert_eq!(bad["error"]["error"], 403, "{bad}");

    // The mobile flow: REST login, then DDP resume.
    let rest = s.login("ann").await;
    let mut d2 = Ddp::connect(&s).await;
    let r = d2.call("login", json!([{"resume": rest.token}])).await;
    assert_eq!(r["result"]["type"], "resume", "{r}");
    assert_eq!(r["result"]["token"], rest.token.as_str());
    let r = d2.call("login", json!([{"resume": "not-a-token"}])).await;
    assert_eq!(r["error"]["error"], 403, "{r}");
}

#[tokio::test]
async fn each_member_hears_rooms_changed_on_their_own_event_name() {
    let s = server().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (_, created) = s
        .post(
            "/api/v1/channels.create",
            &ann,
            json!({"name": "pair", "members": ["bob"]}),
        )
        .await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_string();
    let mut listeners = Vec::new();
    for who in [&ann, &bob] {
        let mut d = Ddp::connect(&s).await;
        d.resume(who).await;
        let event = format!("{}/rooms-changed", who.user_id);
        assert_eq!(d.sub("stream-notify-user", &event).await["msg"], "ready");
        listeners.push((d, event));
    }
    s.post(
        "/api/v1/chat.sendMessage",
        &bob,
        json!({"message": {"rid": rid, "msg": "hello"}}),
    )
    .await;
    // The room document is rendered once for all members, but every frame must carry its
    // recipient's own event name, or their client drops it.
    for (d, event) in &mut listeners {
        let frame = d.until(|v| v["collection"] == "stream-notify-user").await;
        assert_eq!(frame["fields"]["eventName"], event.as_str(), "{frame}");
        assert_eq!(frame["fields"]["args"][1]["_id"], rid.as_str(), "{frame}");
    }
}

#[tokio::test]
async fn messages_sent_over_rest_reach_room_subscribers() {
    let s = server().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let (_, created) = s
        .post(
            "/api/v1/channels.create",
            &ann,
            json!({"name": "team", "members": ["bob"]}),
        )
        .await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_string();
    let mut d = Ddp::connect(&s).await;
    d.resume(&bob).await;
    assert_eq!(d.sub("stream-room-messages", &rid).await["msg"], "ready");
    assert_eq!(
        d.sub("stream-room-messages", "__my_messages__").await["msg"],
        "ready"
    );
    let sub_changes = format!("{}/subscriptions-changed", bob.user_id);
    assert_eq!(
        d.sub("stream-notify-user", &sub_changes).await["msg"],
        "ready"
    );
    let (status, sent) = s
        .post(
            "/api/v1/chat.sendMessage",
            &ann,
            json!({"message": {"rid": rid, "msg": "hello bob"}}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let on_room = d
        .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == rid.as_str())
        .await;
    assert_eq!(on_room["collection"], "stream-room-messages");
    assert_eq!(on_room["id"], "id");
    let m = &on_room["fields"]["args"][0];
    assert_eq!(m["msg"], "hello bob");
    assert_eq!(m["u"]["username"], "ann");
    assert!(m["ts"]["$date"].is_i64(), "{m}");
    let mine = d
        .until(|v| v["fields"]["eventName"] == "__my_messages__")
        .await;
    assert_eq!(mine["fields"]["args"][0]["msg"], "hello bob");
    assert_eq!(mine["fields"]["args"][1]["roomType"], "c");
    assert_eq!(mine["fields"]["args"][1]["roomName"], "team");
    let unread = d
        .until(|v| v["fields"]["eventName"] == sub_changes.as_str())
        .await;
    assert_eq!(unread["fields"]["args"][0], "updated", "{unread}");
    assert_eq!(unread["fields"]["args"][1]["rid"], rid.as_str());
    assert_eq!(unread["fields"]["args"][1]["unread"], 1, "{unread}");

    // A DDP method and the REST tunnel run the same dispatcher.
    let h = d
        .call("loadHistory", json!([rid, null, 10, {"$date": 0}]))
        .await;
    assert_eq!(h["result"]["messages"][0]["msg"], "hello bob", "{h}");
    assert!(h["result"]["messages"][0]["ts"]["$date"].is_i64());
    let call = json!({"msg": "method", "id": "7", "method": "getRoomNameById", "params": [rid]});
    let (status, tunnel) = s
        .post(
            "/api/v1/method.call/getRoomNameById",
            &bob,
            json!({"message": call.to_string()}),
        )
        .await;
    assert_eq!(status, 200, "{tunnel}");
    let inner: Value = serde_json::from_str(tunnel["message"].as_str().unwrap()).unwrap();
    assert_eq!(inner["result"], "team");

    // A mention notifies bob on his own stream; his profile changes arrive as userData.
    let notification = format!("{}/notification", bob.user_id);
    assert_eq!(
        d.sub("stream-notify-user", &notification).await["msg"],
        "ready"
    );
    let user_data = format!("{}/userData", bob.user_id);
    assert_eq!(
        d.sub("stream-notify-user", &user_data).await["msg"],
        "ready"
    );
    s.post(
        "/api/v1/chat.sendMessage",
        &ann,
        json!({"message": {"rid": rid, "msg": "ping @bob"}}),
    )
    .await;
    let n = d
        .until(|v| v["fields"]["eventName"] == notification.as_str())
        .await;
    let n = &n["fields"]["args"][0];
    assert_eq!(n["title"], "#team", "{n}");
    assert_eq!(n["text"], "ann: ping @bob");
    assert_eq!(n["payload"]["rid"], rid.as_str());
    assert_eq!(n["payload"]["sender"]["username"], "ann");
    let r = d.call("setUserStatus", json!(["busy", "focus"])).await;
    assert!(r.get("error").is_none(), "{r}");
    let u = d
        .until(|v| v["fields"]["eventName"] == user_data.as_str())
        .await;
    assert_eq!(u["fields"]["args"][0]["diff"]["status"], "busy", "{u}");
    assert_eq!(u["fields"]["args"][0]["diff"]["statusText"], "focus");

    // Sending over DDP: the result, then bob's read state changes reach his own stream.
    let r = d
        .call(
            "sendMessage",
            json!([{"_id": "abcdefghijklmnopq", "rid": rid, "msg": "hi ann"}]),
        )
        .await;
    assert_eq!(r["result"]["_id"], "abcdefghijklmnopq", "{r}");
    let r = d
        .call("deleteMessage", json!([{"_id": "abcdefghijklmnopq"}]))
        .await;
    assert!(r.get("error").is_none(), "{r}");
}

#[tokio::test]
async fn typing_reaches_other_members_only() {
    let s = server().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let (_, g) = s
        .post(
            "/api/v1/groups.create",
            &ann,
            json!({"name": "secret", "members": ["bob"]}),
        )
        .await;
    let rid = g["group"]["_id"].as_str().unwrap().to_string();
    let mut a = Ddp::connect(&s).await;
    a.resume(&ann).await;
    let mut b = Ddp::connect(&s).await;
    b.resume(&bob).await;
    let activity = format!("{rid}/user-activity");
    let typing = format!("{rid}/typing");
    assert_eq!(b.sub("stream-notify-room", &activity).await["msg"], "ready");
    assert_eq!(b.sub("stream-notify-room", &typing).await["msg"], "ready");

    // Carol is not in the group: no room streams for her.
    let mut c = Ddp::connect(&s).await;
    c.resume(&carol).await;
    let no = c.sub("stream-room-messages", &rid).await;
    assert_eq!(no["msg"], "nosub", "{no}");
    assert_eq!(no["error"]["error"], "error-not-allowed");
    assert_eq!(c.sub("stream-notify-room", &activity).await["msg"], "nosub");
    let r = c
        .call(
            "stream-notify-room",
            json!([activity, "carol", ["user-typing"], {}]),
        )
        .await;
    assert!(r["error"].is_object(), "{r}");

    // Ann may not type as bob.
    let r = a
        .call(
            "stream-notify-room",
            json!([activity, "bob", ["user-typing"], {}]),
        )
        .await;
    assert!(r["error"].is_object(), "{r}");
    let r = a
        .call(
            "stream-notify-room",
            json!([activity, "ann", ["user-typing"], {}]),
        )
        .await;
    assert!(r.get("error").is_none(), "{r}");
    let got = b
        .until(|v| v["fields"]["eventName"] == activity.as_str())
        .await;
    assert_eq!(got["fields"]["args"], json!(["ann", ["user-typing"], {}]));
    let got = b
        .until(|v| v["fields"]["eventName"] == typing.as_str())
        .await;
    assert_eq!(got["fields"]["args"], json!(["ann", true]));

    // Deletions reach members on <rid>/deleteMessage.
    let deleted = format!("{rid}/deleteMessage");
    assert_eq!(b.sub("stream-notify-room", &deleted).await["msg"], "ready");
    let r = a
        .call("sendMessage", json!([{"rid": rid, "msg": "oops"}]))
        .await;
    let mid = r["result"]["_id"].as_str().unwrap().to_string();
    let r = a.call("deleteMessage", json!([{"_id": mid}])).await;
    assert!(r.get("error").is_none(), "{r}");
    let got = b
        .until(|v| v["fields"]["eventName"] == deleted.as_str())
        .await;
    assert_eq!(got["fields"]["args"], json!([{"_id": mid}]));

    // Status changes reach logged-in listeners of stream-notify-logged.
    assert_eq!(
        b.sub("stream-notify-logged", "user-status").await["msg"],
        "ready"
    );
    let r = a.call("setUserStatus", json!(["away", "lunch"])).await;
    assert!(r.get("error").is_none(), "{r}");
    let got = b.until(|v| v["fields"]["eventName"] == "user-status").await;
    let args = &got["fields"]["args"][0];
    assert_eq!(args[0], ann.user_id.as_str());
    assert_eq!(args[1], "ann");
    assert_eq!(args[2], 2);
    assert_eq!(args[3], "lunch");

    // Removed from the group: the room stream ends with nosub, nothing more arrives.
    let room_sub = b.sub("stream-room-messages", &rid).await;
    assert_eq!(room_sub["msg"], "ready");
    let sub_id = room_sub["subs"][0].as_str().unwrap().to_string();
    let (status, kicked) = s
        .post(
            "/api/v1/groups.kick",
            &ann,
            json!({"roomId": rid, "userId": bob.user_id}),
        )
        .await;
    assert_eq!(status, 200, "{kicked}");
    let ended = b
        .until(|v| v["msg"] == "nosub" && v["id"] == sub_id.as_str())
        .await;
    assert_eq!(ended["error"]["error"], "error-not-allowed");
    a.call(
        "sendMessage",
        json!([{"rid": rid, "msg": "after bob left"}]),
    )
    .await;
    b.send(json!({"msg": "ping", "id": "after"})).await;
    let next = b
        .until(|v| v["msg"] == "pong" || v["msg"] == "changed")
        .await;
    assert!(
        next["msg"] == "pong" || next["fields"]["eventName"] != rid.as_str(),
        "{next}"
    );
}

#[tokio::test]
async fn malformed_frames_close_the_connection_and_the_server_stays_up() {
    let s = server().await;
    let mut d = Ddp::open(&s, "/websocket").await;
    d.next().await; // server_id
    d.send(json!({"msg": "method", "method": "login", "params": [], "id": "1"}))
        .await;
    assert_eq!(d.closed().await, Some(1002));

    let mut d = Ddp::connect(&s).await;
    d.send_text("{not json".into()).await;
    assert_eq!(d.closed().await, Some(1007));

    let mut d = Ddp::connect(&s).await;
    d.send(json!({"msg": "nonsense"})).await;
    assert_eq!(d.next().await["msg"], "error");
    d.send(json!({"msg": "method", "id": 5})).await;
    assert_eq!(d.next().await["msg"], "error");
    let huge = "x".repeat(2 * 1024 * 1024);
    // The server may reset the socket while the client is still writing.
    let _ = d.ws.send(Message::Text(huge.into())).await;
    let code = d.closed().await;
    assert!(matches!(code, Some(1009) | None), "{code:?}");

    healthy(&s).await;
    let mut d = Ddp::connect(&s).await;
    d.send(json!({"msg": "ping", "id": "still"})).await;
    assert_eq!(d.next().await["id"], "still");
}

#[tokio::test]
async fn sockjs_framing_round_trip() {
    let s = server().await;
    let ann = s.user("ann").await;
    let (status, info) = s.call(Method::GET, "/sockjs/info", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(info["websocket"], true);
    assert!(info["entropy"].is_u64());
    let mut d = Ddp::open(&s, "/sockjs/123/abcdefgh/websocket").await;
    assert!(matches!(d.frame().await, Frame::Raw(o) if o == "o"));
    assert_eq!(d.next().await["msg"], "server_id");
    d.send(json!({"msg": "connect", "version": "1", "support": ["1"]}))
        .await;
    assert_eq!(d.next().await["msg"], "connected");
    d.resume(&ann).await;
    let r = d.call("getRoomIdByNameOrId", json!(["general"])).await;
    assert_eq!(r["result"], "GENERAL", "{r}");
}

#[tokio::test]
async fn history_methods_and_room_lookup() {
    let s = server().await;
    let ann = s.user("ann").await;
    let (_, created) = s
        .post("/api/v1/channels.create", &ann, json!({"name": "hist"}))
        .await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_string();
    let mut d = Ddp::connect(&s).await;
    d.resume(&ann).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = d
            .call("sendMessage", json!([{"rid": rid, "msg": format!("m{i}")}]))
            .await;
        ids.push(r["result"]["_id"].as_str().unwrap().to_string());
        // One millisecond each, so the order below is the sending order (messages of one
        // millisecond are ordered by id, and pages carry their last millisecond whole:
        // `history_pages_lose_no_message_of_one_millisecond`).
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let r = d
        .call("loadSurroundingMessages", json!([{"_id": ids[2]}, 2]))
        .await;
    let texts: Vec<&str> = r["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m1", "m2", "m3"], "{r}");
    assert_eq!(r["result"]["moreBefore"], true);
    assert_eq!(r["result"]["moreAfter"], true);

    let r = d.call("loadHistory", json!([rid, null, 3])).await;
    let newest = &r["result"]["messages"];
    assert_eq!(newest[0]["msg"], "m4", "{r}");
    let oldest_ts = newest[2]["ts"].clone();
    let r = d
        .call("loadNextMessages", json!([rid, oldest_ts, 10]))
        .await;
    let texts: Vec<&str> = r["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m3", "m4"], "{r}");

    let reply = d
        .call(
            "sendMessage",
            json!([{"rid": rid, "msg": "in thread", "tmid": ids[0]}]),
        )
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    let r = d.call("getThreadMessages", json!([{"tmid": ids[0]}])).await;
    assert_eq!(r["result"][0]["_id"], ids[0].as_str(), "{r}");
    assert_eq!(r["result"][1]["msg"], "in thread");

    let r = d.call("getRoomByTypeAndName", json!(["c", "hist"])).await;
    assert_eq!(r["result"]["_id"], rid.as_str(), "{r}");
    let r = d.call("getRoomByTypeAndName", json!(["p", "hist"])).await;
    assert!(r["error"].is_object(), "{r}");
}

#[tokio::test]
async fn presence_follows_connections() {
    let s = server().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let mut a = Ddp::connect(&s).await;
    a.resume(&ann).await;
    a.send(json!({"msg": "sub", "id": "p", "name": "stream-user-presence", "params": ["", {"added": [bob.user_id]}]}))
        .await;
    a.until(|v| v["msg"] == "ready").await;
    let code = |v: &Value| v["fields"]["args"][0][1].clone();
    let is_bob =
        |v: &Value| v["collection"] == "stream-user-presence" && v["id"] == bob.user_id.as_str();
    let first = a.until(is_bob).await;
    assert_eq!(first["fields"]["uid"], bob.user_id.as_str());

    let mut b = Ddp::connect(&s).await;
    b.resume(&bob).await;
    let online = a.until(|v| is_bob(v) && code(v) == 1).await;
    assert_eq!(online["fields"]["args"][0][0], "bob");
    let r = b.call("UserPresence:away", json!([])).await;
    assert!(r.get("error").is_none(), "{r}");
    a.until(|v| is_bob(v) && code(v) == 2).await;
    drop(b);
    a.until(|v| is_bob(v) && code(v) == 0).await;
}

#[tokio::test]
async fn a_deactivated_user_is_disconnected() {
    let s = server().await;
    let admin = s.user("admin1").await;
    let bob = s.user("bob").await;
    let mut b = Ddp::connect(&s).await;
    b.resume(&bob).await;
    let (status, v) = s
        .post(
            "/api/v1/users.setActiveStatus",
            &admin,
            json!({"userId": bob.user_id, "activeStatus": false}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(b.closed().await, Some(4000));
    let mut again = Ddp::connect(&s).await;
    let r = again.call("login", json!([{"resume": bob.token}])).await;
    assert!(r["error"].is_object(), "{r}");
}

#[tokio::test]
async fn bulk_deletes_roles_settings_and_logouts_are_streamed() {
    let s = server().await;
    let admin = s.user("admin1").await;
    let (_, created) = s
        .post("/api/v1/channels.create", &admin, json!({"name": "ops"}))
        .await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_string();
    let mut a = Ddp::connect(&s).await;
    a.resume(&admin).await;
    for (name, event) in [
        ("stream-notify-room", format!("{rid}/deleteMessageBulk")),
        ("stream-roles", "roles".to_string()),
        (
            "stream-notify-user",
            format!("{}/force_logout", admin.user_id),
        ),
    ] {
        assert_eq!(a.sub(name, &event).await["msg"], "ready");
    }
    let mut anon = Ddp::connect(&s).await;
    let ready = anon
        .sub("stream-notify-all", "public-settings-changed")
        .await;
    assert_eq!(ready["msg"], "ready");

    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, sent) = s
            .post(
                "/api/v1/chat.sendMessage",
                &admin,
                json!({"message": {"rid": rid, "msg": format!("m{i}")}}),
            )
            .await;
        ids.push(sent["message"]["_id"].clone());
    }
    let (status, v) = s
        .post(
            "/api/v1/rooms.cleanHistory",
            &admin,
            json!({"roomId": rid, "latest": "2100-01-01T00:00:00.000Z", "oldest": "2000-01-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let bulk = a
        .until(|v| v["fields"]["eventName"] == format!("{rid}/deleteMessageBulk").as_str())
        .await;
    let got = &bulk["fields"]["args"][0];
    assert_eq!(got["rid"], rid.as_str());
    let mut deleted: Vec<Value> = got["ids"].as_array().unwrap().clone();
    deleted.sort_by_key(|v| v.to_string());
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(deleted, ids);

    let (status, v) = s
        .post(
            "/api/v1/roles.create",
            &admin,
            json!({"name": "auditor", "scope": "Users"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let role = a.until(|v| v["collection"] == "stream-roles").await;
    assert_eq!(role["fields"]["args"][0]["type"], "changed", "{role}");
    assert_eq!(role["fields"]["args"][0]["name"], "auditor");
    let role_id = v["role"]["_id"].clone();

    // Renaming a role, and giving users global and room roles, are announced too.
    let (status, v) = s
        .post(
            "/api/v1/roles.update",
            &admin,
            json!({"roleId": role_id, "name": "auditors", "description": "Reads logs"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["role"]["name"], "auditors", "{v}");
    let renamed = a
        .until(|v| {
            v["collection"] == "stream-roles" && v["fields"]["args"][0]["name"] == "auditors"
        })
        .await;
    assert_eq!(renamed["fields"]["args"][0]["description"], "Reads logs");
    let bob = s.user("bob1").await;
    let (status, v) = s
        .post(
            "/api/v1/roles.addUserToRole",
            &admin,
            json!({"roleId": role_id, "username": "bob1"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let added = a
        .until(|v| v["collection"] == "stream-roles" && v["fields"]["args"][0]["type"] == "added")
        .await;
    let added = &added["fields"]["args"][0];
    assert_eq!(added["_id"], role_id, "{added}");
    assert_eq!(added["u"]["username"], "bob1", "{added}");
    assert!(added.get("scope").is_none(), "{added}");
    s.post(
        "/api/v1/channels.invite",
        &admin,
        json!({"roomId": rid, "userId": bob.user_id}),
    )
    .await;
    let (status, v) = s
        .post(
            "/api/v1/channels.addModerator",
            &admin,
            json!({"roomId": rid, "userId": bob.user_id}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let moderator = a
        .until(|v| {
            v["collection"] == "stream-roles" && v["fields"]["args"][0]["_id"] == "moderator"
        })
        .await;
    assert_eq!(moderator["fields"]["args"][0]["scope"], rid.as_str());
    assert_eq!(moderator["fields"]["args"][0]["type"], "added");

    let (status, v) = s
        .post(
            "/api/v1/settings/Site_Name",
            &admin,
            json!({"value": "Renamed"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let changed = anon.until(|v| v["collection"] == "stream-notify-all").await;
    assert_eq!(
        changed["fields"]["args"],
        json!(["updated", {"_id": "Site_Name", "value": "Renamed"}])
    );

    // Logging the token out over REST closes the DDP connection that resumed with it.
    let (status, v) = s.post("/api/v1/logout", &admin, json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(a.closed().await, Some(1000));
    healthy(&s).await;
}

#[tokio::test]
async fn presence_is_online_while_any_connection_is() {
    let s = server().await;
    let ann = s.user("ann").await;
    let bob = s.user("bob").await;
    let mut watcher = Ddp::connect(&s).await;
    watcher.resume(&ann).await;
    watcher
        .send(json!({"msg": "sub", "id": "p", "name": "stream-user-presence", "params": ["", {"added": [bob.user_id]}]}))
        .await;
    watcher.until(|v| v["msg"] == "ready").await;
    let status = |v: &Value| v["fields"]["args"][0][1].as_i64();
    let is_bob =
        |v: &Value| v["collection"] == "stream-user-presence" && v["id"] == bob.user_id.as_str();

    let mut phone = Ddp::connect(&s).await;
    phone.resume(&bob).await;
    let mut laptop = Ddp::connect(&s).await;
    laptop.resume(&bob).await;
    watcher.until(|v| is_bob(v) && status(v) == Some(1)).await;
    // One idle client does not make bob away while another is active.
    assert_eq!(
        laptop.call("UserPresence:away", json!([])).await["result"],
        true
    );
    let (_, p) = s
        .get(
            &format!("/api/v1/users.getPresence?userId={}", bob.user_id),
            &ann,
        )
        .await;
    assert_eq!(p["presence"], "online", "{p}");
    assert_eq!(
        phone.call("UserPresence:away", json!([])).await["result"],
        true
    );
    watcher.until(|v| is_bob(v) && status(v) == Some(2)).await;
    assert_eq!(
        laptop.call("UserPresence:online", json!([])).await["result"],
        true
    );
    watcher.until(|v| is_bob(v) && status(v) == Some(1)).await;
    drop(laptop);
    // The phone is still connected but away.
    watcher.until(|v| is_bob(v) && status(v) == Some(2)).await;
    drop(phone);
    watcher.until(|v| is_bob(v) && status(v) == Some(0)).await;
}

#[tokio::test]
async fn method_floods_get_too_many_requests() {
    let s = server().await;
    let ann = s.user("ann").await;
    let mut d = Ddp::connect(&s).await;
    d.resume(&ann).await;
    // Rocket.Chat's default: 10 calls of one method per connection per 10 s.
    for _ in 0..10 {
        let r = d.call("getRoomNameById", json!(["GENERAL"])).await;
        assert!(r.get("error").is_none(), "{r}");
    }
    let r = d.call("getRoomNameById", json!(["GENERAL"])).await;
    assert_eq!(r["error"]["error"], "too-many-requests", "{r}");
    assert!(
        r["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Error, too many requests. Please slow down. You must wait"),
        "{r}"
    );
    assert!(r["error"]["details"]["timeToReset"].as_u64().unwrap() <= 10_000);
    // Other methods, and other connections, go on.
    let r = d.call("getUserRoles", json!([])).await;
    assert_eq!(
        r["result"],
        json!([{"_id": ann.user_id, "username": "ann", "roles": ["admin"]}]),
        "the first user is the admin; {r}"
    );
    let mut other = Ddp::connect(&s).await;
    other.resume(&ann).await;
    let r = other.call("getRoomNameById", json!(["GENERAL"])).await;
    assert!(r.get("error").is_none(), "{r}");
}

#[tokio::test]
async fn ddp_rate_limits_can_be_switched_off() {
    let rules = [
        "IP",
        "User",
        "Connection",
        "User_By_Method",
        "Connection_By_Method",
    ];
    let env: Vec<(String, &str)> = rules
        .iter()
        .map(|r| {
            (
                format!("OVERWRITE_SETTING_DDP_Rate_Limit_{r}_Enabled"),
                "false",
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let s = Server::start_with(Backend::Sqlite, &env).await;
    let ann = s.user("ann").await;
    let mut d = Ddp::connect(&s).await;
    d.resume(&ann).await;
    for _ in 0..30 {
        let r = d.call("getRoomNameById", json!(["GENERAL"])).await;
        assert!(r.get("error").is_none(), "{r}");
    }
}

/// Ids of a DDP history page, and the `ts` (EJSON) of its last message.
fn page_ids(r: &Value) -> (Vec<String>, Option<Value>) {
    let msgs = r["result"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    let ids = msgs
        .iter()
        .map(|m| m["_id"].as_str().unwrap().to_string())
        .collect();
    (ids, msgs.last().map(|m| m["ts"].clone()))
}

/// Six messages sent in one millisecond, between two others: `loadHistory`, `loadNextMessages`
/// and `loadSurroundingMessages` in pages of two (the client's next bound is the last message's
/// `ts`, exclusive) return every message exactly once, in the server's order.
#[tokio::test]
async fn history_pages_lose_no_message_of_one_millisecond() {
    for backend in common::backends() {
        let s = Server::start(backend).await;
        let ann = s.user("ann").await;
        let (_, created) = s
            .post("/api/v1/channels.create", &ann, json!({"name": "ties"}))
            .await;
        let rid = created["channel"]["_id"].as_str().unwrap().to_string();
        let mut d = Ddp::connect(&s).await;
        d.resume(&ann).await;
        let mut ids = Vec::new();
        for i in 0..8 {
            let r = d
                .call("sendMessage", json!([{"rid": rid, "msg": format!("m{i}")}]))
                .await;
            ids.push(r["result"]["_id"].as_str().unwrap().to_string());
        }
        let ms = apogee_domain::Timestamp::now().millis() - 60_000;
        let at = apogee_domain::Timestamp::from_millis;
        let id = |i: usize| ids[i].as_str();
        s.set_message_ts(&[id(0)], at(ms));
        s.set_message_ts(&(1..7).map(id).collect::<Vec<_>>(), at(ms + 1));
        s.set_message_ts(&[id(7)], at(ms + 2));

        let (all, _) = page_ids(&d.call("loadHistory", json!([rid, null, 100])).await);
        for i in &ids {
            assert_eq!(all.iter().filter(|a| *a == i).count(), 1, "{i} in {all:?}");
        }
        let oldest_first: Vec<String> = all.iter().rev().cloned().collect();

        let mut seen = Vec::new();
        let mut end = Value::Null;
        loop {
            let r = d.call("loadHistory", json!([rid, end, 2])).await;
            let (page, last) = page_ids(&r);
            let Some(last) = last else { break };
            seen.extend(page);
            end = last;
        }
        assert_eq!(seen, all, "{backend:?}: loadHistory pages");

        let mut seen = Vec::new();
        let mut start = Value::Null;
        loop {
            let r = d.call("loadNextMessages", json!([rid, start, 2])).await;
            let (page, last) = page_ids(&r);
            let Some(last) = last else { break };
            seen.extend(page);
            start = last;
        }
        assert_eq!(seen, oldest_first, "{backend:?}: loadNextMessages pages");

        // Around a message in the middle of the millisecond, then on from both edges.
        let r = d
            .call("loadSurroundingMessages", json!([{"_id": id(3)}, 3]))
            .await;
        let around = r["result"]["messages"].as_array().unwrap().clone();
        assert!(around.iter().any(|m| m["_id"] == id(3)), "{r}");
        let ts = |m: &Value| m["ts"]["$date"].as_i64().unwrap();
        let oldest = around.iter().min_by_key(|m| ts(m)).unwrap()["ts"].clone();
        let newest = around.iter().max_by_key(|m| ts(m)).unwrap()["ts"].clone();
        let mut seen: Vec<String> = around
            .iter()
            .map(|m| m["_id"].as_str().unwrap().to_string())
            .collect();
        let mut end = oldest;
        loop {
            let (page, last) = page_ids(&d.call("loadHistory", json!([rid, end, 2])).await);
            let Some(last) = last else { break };
            seen.extend(page);
            end = last;
        }
        let mut start = newest;
        loop {
            let (page, last) = page_ids(&d.call("loadNextMessages", json!([rid, start, 2])).await);
            let Some(last) = last else { break };
            seen.extend(page);
            start = last;
        }
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(
            seen, want,
            "{backend:?}: surrounding page and on from its edges"
        );
    }
}
