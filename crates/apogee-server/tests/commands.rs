//! Slash commands (`commands.*`, DDP `slashCommand`), their ephemeral answers, muting and read
//! receipts, against the real binary on SQLite and (when available) PostgreSQL.

mod common;

use common::ddp::Ddp;
use common::{Auth, Server, assert_error, backends};
use serde_json::{Value, json};

async fn run(s: &Server, a: &Auth, rid: &str, command: &str, params: &str) -> (u16, Value) {
    let body = json!({"command": command, "params": params, "roomId": rid});
    let (status, v) = s.post("/api/v1/commands.run", a, body).await;
    (status.as_u16(), v)
}

#[track_caller]
fn ran(got: (u16, Value)) {
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["success"], true, "{}", got.1);
}

async fn channel(s: &Server, owner: &Auth, name: &str, members: &[&str]) -> String {
    let body = json!({"name": name, "members": members});
    let (status, v) = s.post("/api/v1/channels.create", owner, body).await;
    assert_eq!(status, 200, "{v}");
    v["channel"]["_id"].as_str().unwrap().to_string()
}

async fn info(s: &Server, a: &Auth, rid: &str) -> Value {
    let (status, v) = s.get(&format!("/api/v1/rooms.info?roomId={rid}"), a).await;
    assert_eq!(status, 200, "{v}");
    // Empty and false fields are left out of the document; fill them in for comparisons.
    let mut room = v["room"].clone();
    room.as_object_mut()
        .unwrap()
        .entry("muted")
        .or_insert(json!([]));
    room.as_object_mut()
        .unwrap()
        .entry("archived")
        .or_insert(json!(false));
    room
}

async fn members(s: &Server, a: &Auth, rid: &str) -> Vec<String> {
    let (status, v) = s
        .get(&format!("/api/v1/channels.members?roomId={rid}"), a)
        .await;
    assert_eq!(status, 200, "{v}");
    let mut names: Vec<String> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

async fn last_message(s: &Server, a: &Auth, rid: &str) -> Value {
    let (status, v) = s
        .get(&format!("/api/v1/channels.history?roomId={rid}&count=1"), a)
        .await;
    assert_eq!(status, 200, "{v}");
    v["messages"][0].clone()
}

#[tokio::test]
async fn the_catalogue_is_listed_paged_sorted_and_filtered() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let (status, v) = s.get("/api/v1/commands.list", &admin).await;
        assert_eq!(status, 200, "{v}");
        let total = v["total"].as_i64().unwrap();
        assert!(total >= 23, "{v}");
        assert_eq!(
            (v["appsLoaded"].clone(), v["offset"].clone()),
            (json!(true), json!(0))
        );
        assert_eq!(v["count"], total, "{v}");
        let join = v["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["command"] == "join")
            .cloned();
        assert_eq!(
            join,
            Some(json!({"command": "join", "params": "#channel",
                "description": "Join_the_given_channel", "permission": "view-c-room",
                "clientOnly": false, "providesPreview": false}))
        );

        let (_, page) = s
            .get("/api/v1/commands.list?offset=2&count=5", &admin)
            .await;
        assert_eq!(
            (page["count"].clone(), page["total"].clone()),
            (json!(5), json!(total))
        );
        assert_eq!(page["commands"][0], v["commands"][2], "{page}");

        let (_, sorted) = s
            .get(
                "/api/v1/commands.list?sort=%7B%22command%22%3A-1%7D",
                &admin,
            )
            .await;
        let names: Vec<&str> = sorted["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["command"].as_str().unwrap())
            .collect();
        let mut expected = names.clone();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(names, expected);

        let (_, one) = s
            .get(
                "/api/v1/commands.list?query=%7B%22command%22%3A%22kick%22%7D",
                &admin,
            )
            .await;
        assert_eq!(one["total"], 1, "{one}");
        assert_eq!(one["commands"][0]["permission"], "remove-user");

        let (status, got) = s.get("/api/v1/commands.get?command=LEAVE", &admin).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["command"]["permission"], json!(["leave-c", "leave-p"]));
        let (status, got) = s.get("/api/v1/commands.get?command=nope", &admin).await;
        assert_eq!(status, 400);
        assert_eq!(
            got,
            json!({"success": false, "error": "There is no command in the system by the name of: nope"})
        );
        let missing = s.get("/api/v1/commands.get", &admin).await;
        assert_eq!(
            missing.1,
            json!({"success": false, "errorType": "error-invalid-params",
                "error": "must have required property 'command'"})
        );
        let extra = s.get("/api/v1/commands.list?foo=1", &admin).await;
        assert_error(&extra, 400, Some("error-invalid-params"));
        let (status, _) = s
            .call(reqwest::Method::GET, "/api/v1/commands.list", None, None)
            .await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn refused_runs_change_nothing() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let rid = channel(&s, &admin, "ops", &["bob"]).await;
        let (_, g) = s
            .post("/api/v1/groups.create", &admin, json!({"name": "secret"}))
            .await;
        let gid = g["group"]["_id"].as_str().unwrap().to_string();

        let (status, v) = run(&s, &bob, &rid, "nope", "").await;
        assert_eq!(
            (status, v),
            (
                400,
                json!({"success": false, "error": "The command provided does not exist (or is disabled)."})
            )
        );
        // A room the caller cannot read: 403 before anything runs.
        let (status, v) = run(&s, &bob, &gid, "shrug", "hi").await;
        assert_eq!(
            (status, v),
            (
                403,
                json!({"success": false, "error": "User does not have access to this room"})
            )
        );
        let (_, h) = s
            .get(&format!("/api/v1/groups.history?roomId={gid}"), &admin)
            .await;
        assert!(
            h["messages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["msg"] != "hi ¯\\_(ツ)_/¯"),
            "{h}"
        );
        // A thread of another room.
        let (_, other) = s
            .post(
                "/api/v1/chat.postMessage",
                &admin,
                json!({"roomId": gid, "text": "x"}),
            )
            .await;
        let foreign = other["message"]["_id"].as_str().unwrap();
        let body = json!({"command": "me", "params": "waves", "roomId": rid, "tmid": foreign});
        let (status, v) = s.post("/api/v1/commands.run", &bob, body).await;
        assert_eq!(
            (status.as_u16(), v),
            (400, json!({"success": false, "error": "Invalid thread."}))
        );
        let missing = s
            .post("/api/v1/commands.run", &bob, json!({"command": "me"}))
            .await;
        assert_eq!(
            missing.1,
            json!({"success": false, "errorType": "invalid-params",
                "error": "must have required property 'roomId'"})
        );
        // Permission refusals come from the use-case, and change nothing.
        let got = run(&s, &bob, &rid, "kick", "@admin").await;
        assert_eq!(got.0, 403, "{}", got.1);
        let got = run(&s, &bob, &rid, "mute", "@admin").await;
        assert_eq!(got.0, 400, "{}", got.1);
        assert_eq!(got.1["errorType"], "error-action-not-allowed", "{}", got.1);
        assert_eq!(info(&s, &admin, &rid).await["muted"], json!([]));
        ran(run(&s, &bob, &rid, "topic", "mine now").await);
        assert!(info(&s, &admin, &rid).await.get("topic").is_none());
        let got = run(&s, &bob, &rid, "archive", "").await;
        assert_eq!(got.0, 403, "{}", got.1);
        assert_ne!(info(&s, &admin, &rid).await["archived"], true);
        assert_eq!(members(&s, &admin, &rid).await, ["admin", "bob"]);
    }
}

#[tokio::test]
async fn commands_run_the_use_cases_they_name() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carl = s.user("carl").await;
        let lobby = channel(&s, &admin, "lobby", &["bob", "carl"]).await;
        let ops = channel(&s, &admin, "ops", &[]).await;

        // /join, then again (Rocket.Chat's error).
        ran(run(&s, &bob, &lobby, "join", "#ops").await);
        assert_eq!(members(&s, &admin, &ops).await, ["admin", "bob"]);
        let again = run(&s, &bob, &lobby, "join", "#ops").await;
        assert_eq!(
            again.1["errorType"], "error-user-already-in-room",
            "{}",
            again.1
        );

        // Messages: /me, /shrug, /gimme, /tableflip, /unflip, /lennyface, in a thread too.
        ran(run(&s, &bob, &ops, "me", "waves").await);
        assert_eq!(last_message(&s, &bob, &ops).await["msg"], "_waves_");
        for (cmd, text) in [
            ("shrug", "hi ¯\\_(ツ)_/¯"),
            ("gimme", "༼ つ ◕_◕ ༽つ hi"),
            ("tableflip", "hi (╯°□°）╯︵ ┻━┻"),
            ("unflip", "hi ┬─┬ ノ( ゜-゜ノ)"),
            ("lennyface", "hi ( ͡° ͜ʖ ͡°)"),
        ] {
            ran(run(&s, &bob, &ops, cmd, "hi").await);
            let m = last_message(&s, &bob, &ops).await;
            assert_eq!(
                (m["msg"].as_str(), m["u"]["username"].as_str()),
                (Some(text), Some("bob"))
            );
        }
        let (_, root) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": ops, "text": "root"}),
            )
            .await;
        let tmid = root["message"]["_id"].as_str().unwrap();
        let body = json!({"command": "shrug", "params": "in thread", "roomId": ops, "tmid": tmid});
        let (status, v) = s.post("/api/v1/commands.run", &bob, body).await;
        assert_eq!(status, 200, "{v}");
        let (_, thread) = s
            .get(&format!("/api/v1/chat.getThreadMessages?tmid={tmid}"), &bob)
            .await;
        assert_eq!(
            thread["messages"][0]["msg"], "in thread ¯\\_(ツ)_/¯",
            "{thread}"
        );

        // /topic by the owner.
        ran(run(&s, &admin, &ops, "topic", "Deploys only").await);
        assert_eq!(info(&s, &admin, &ops).await["topic"], "Deploys only");

        // /mute and /unmute: a muted member cannot speak.
        ran(run(&s, &admin, &ops, "mute", "@bob").await);
        assert_eq!(info(&s, &admin, &ops).await["muted"], json!(["bob"]));
        assert_eq!(last_message(&s, &admin, &ops).await["t"], "user-muted");
        let said = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": ops, "text": "hello?"}),
            )
            .await;
        assert_error(&said, 400, Some("error-not-allowed"));
        ran(run(&s, &admin, &ops, "unmute", "bob").await);
        assert_eq!(info(&s, &admin, &ops).await["muted"], json!([]));
        assert_eq!(last_message(&s, &admin, &ops).await["t"], "user-unmuted");

        // /kick, /invite, /leave.
        ran(run(&s, &admin, &ops, "kick", "@bob").await);
        assert_eq!(members(&s, &admin, &ops).await, ["admin"]);
        assert_eq!(last_message(&s, &admin, &ops).await["t"], "ru");
        ran(run(&s, &admin, &ops, "invite", "@bob, @carl").await);
        assert_eq!(members(&s, &admin, &ops).await, ["admin", "bob", "carl"]);
        ran(run(&s, &carl, &ops, "part", "").await);
        assert_eq!(members(&s, &admin, &ops).await, ["admin", "bob"]);

        // /invite-all-from and /invite-all-to (which creates the missing room).
        let dave = s.user("dave").await;
        let src = channel(&s, &admin, "src", &["dave"]).await;
        ran(run(&s, &admin, &ops, "invite-all-from", "#src").await);
        assert_eq!(members(&s, &admin, &ops).await, ["admin", "bob", "dave"]);
        ran(run(&s, &admin, &src, "invite-all-to", "#copied").await);
        let (_, copied) = s.get("/api/v1/channels.info?roomName=copied", &admin).await;
        let copied = copied["channel"]["_id"].as_str().unwrap().to_string();
        assert_eq!(members(&s, &admin, &copied).await, ["admin", "dave"]);
        let _ = dave;

        // /archive and /unarchive (current room, or a named one).
        ran(run(&s, &admin, &lobby, "archive", "#src").await);
        assert_eq!(info(&s, &admin, &src).await["archived"], true);
        ran(run(&s, &admin, &lobby, "unarchive", "src").await);
        assert_eq!(info(&s, &admin, &src).await["archived"], false);

        // /create (private with --private).
        ran(run(&s, &admin, &lobby, "create", "#made").await);
        ran(run(&s, &admin, &lobby, "create", "hidden --private").await);
        let (_, made) = s.get("/api/v1/rooms.info?roomName=made", &admin).await;
        assert_eq!(made["room"]["t"], "c", "{made}");
        let (_, hidden) = s.get("/api/v1/rooms.info?roomName=hidden", &admin).await;
        assert_eq!(hidden["room"]["t"], "p", "{hidden}");

        // /msg opens the DM and sends.
        ran(run(&s, &admin, &lobby, "msg", "@carl see you at 5").await);
        let (_, dm) = s
            .post("/api/v1/im.create", &carl, json!({"username": "admin"}))
            .await;
        let dm = dm["room"]["_id"].as_str().unwrap();
        let (_, h) = s
            .get(&format!("/api/v1/im.history?roomId={dm}"), &carl)
            .await;
        assert_eq!(h["messages"][0]["msg"], "see you at 5", "{h}");

        // /status, /hide.
        ran(run(&s, &bob, &lobby, "status", "On vacation").await);
        let (_, me) = s.get("/api/v1/me", &bob).await;
        assert_eq!(me["statusText"], "On vacation", "{me}");
        ran(run(&s, &bob, &lobby, "hide", "#ops").await);
        let (_, sub) = s
            .get(&format!("/api/v1/subscriptions.getOne?roomId={ops}"), &bob)
            .await;
        assert_eq!(sub["subscription"]["open"], false, "{sub}");
    }
}

#[tokio::test]
async fn ephemeral_answers_reach_only_the_caller_and_ddp_runs_commands() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carl = s.user("carl").await;
        let lobby = channel(&s, &admin, "lobby", &["bob", "carl"]).await;

        let mut listen = Ddp::connect(&s).await;
        listen.resume(&bob).await;
        let event = format!("{}/message", bob.user_id);
        assert_eq!(
            listen.sub("stream-notify-user", &event).await["msg"],
            "ready"
        );
        let mut carl_listen = Ddp::connect(&s).await;
        carl_listen.resume(&carl).await;
        let carl_event = format!("{}/message", carl.user_id);
        assert_eq!(
            carl_listen.sub("stream-notify-user", &carl_event).await["msg"],
            "ready"
        );

        let mut caller = Ddp::connect(&s).await;
        caller.resume(&bob).await;
        let r = caller
            .call(
                "slashCommand",
                json!([{"cmd": "join", "params": "#missing", "msg": {"_id": "x1", "rid": lobby, "msg": "/join #missing"}}]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        let heard = listen
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == event.as_str())
            .await;
        let m = &heard["fields"]["args"][0];
        assert_eq!(
            m["msg"], "The channel `#missing` does not exist.",
            "{heard}"
        );
        assert_eq!(
            (m["rid"].as_str(), m["private"].as_bool()),
            (Some(lobby.as_str()), Some(true))
        );
        assert!(m["ts"]["$date"].is_i64(), "{heard}");
        assert!(m["md"].is_array(), "{heard}");

        // Over REST too: unknown users and the help text.
        ran(run(&s, &bob, &lobby, "kick", "@nobody").await);
        let heard = listen
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == event.as_str())
            .await;
        assert_eq!(
            heard["fields"]["args"][0]["msg"],
            "The username `nobody` doesn't exist."
        );
        ran(run(&s, &bob, &lobby, "help", "").await);
        let heard = listen
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == event.as_str())
            .await;
        let help = heard["fields"]["args"][0]["msg"].as_str().unwrap();
        assert!(
            help.contains("`Up Arrow` - Edit previous message"),
            "{help}"
        );
        ran(run(&s, &bob, &lobby, "invite", "@carl").await);
        let heard = listen
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == event.as_str())
            .await;
        assert_eq!(
            heard["fields"]["args"][0]["msg"],
            "`@carl` is already in here."
        );

        // Carl heard none of Bob's answers: his first event is his own.
        ran(run(&s, &carl, &lobby, "msg", "lonely").await);
        let heard = carl_listen
            .until(|v| v["msg"] == "changed" && v["fields"]["eventName"] == carl_event.as_str())
            .await;
        assert_eq!(
            heard["fields"]["args"][0]["msg"],
            "Username and message must not be empty."
        );

        // DDP: a command that writes, an unknown one, a missing room.
        let r = caller
            .call(
                "slashCommand",
                json!([{"cmd": "shrug", "params": "ddp", "msg": {"rid": lobby}}]),
            )
            .await;
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(
            last_message(&s, &bob, &lobby).await["msg"],
            "ddp ¯\\_(ツ)_/¯"
        );
        let r = caller
            .call(
                "slashCommand",
                json!([{"cmd": "nope", "params": "", "msg": {"rid": lobby}}]),
            )
            .await;
        assert_eq!(r["error"]["error"], "error-invalid-command", "{r}");
        let r = caller
            .call("slashCommand", json!([{"cmd": "shrug", "params": ""}]))
            .await;
        assert_eq!(r["error"]["error"], "invalid-command-usage", "{r}");
        // DDP muting, as the room's owner.
        let mut owner = Ddp::connect(&s).await;
        owner.resume(&admin).await;
        let r = owner
            .call(
                "muteUserInRoom",
                json!([{"rid": lobby, "username": "carl"}]),
            )
            .await;
        assert_eq!(r["result"], true, "{r}");
        assert_eq!(info(&s, &admin, &lobby).await["muted"], json!(["carl"]));
        let r = caller
            .call(
                "unmuteUserInRoom",
                json!([{"rid": lobby, "username": "carl"}]),
            )
            .await;
        assert_eq!(r["error"]["error"], "error-action-not-allowed", "{r}");
        let r = owner
            .call(
                "unmuteUserInRoom",
                json!([{"rid": lobby, "username": "carl"}]),
            )
            .await;
        assert_eq!(r["result"], true, "{r}");
        assert_eq!(info(&s, &admin, &lobby).await["muted"], json!([]));
    }
}

#[tokio::test]
async fn rooms_mute_user_over_rest() {
    for b in backends() {
        let s = Server::start(b).await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let rid = channel(&s, &admin, "ops", &["bob"]).await;
        let body = json!({"roomId": rid, "userId": bob.user_id});
        let (status, v) = s.post("/api/v1/rooms.muteUser", &admin, body.clone()).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(info(&s, &admin, &rid).await["muted"], json!(["bob"]));
        let refused = s.post("/api/v1/rooms.unmuteUser", &bob, body.clone()).await;
        assert_error(&refused, 400, Some("error-action-not-allowed"));
        let bad = s
            .post("/api/v1/rooms.unmuteUser", &admin, json!({"roomId": rid}))
            .await;
        assert_error(&bad, 400, Some("invalid-params"));
        let (status, v) = s
            .post(
                "/api/v1/rooms.unmuteUser",
                &admin,
                json!({"roomId": rid, "username": "bob"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(info(&s, &admin, &rid).await["muted"], json!([]));
        let dm = s
            .post("/api/v1/im.create", &admin, json!({"username": "bob"}))
            .await
            .1["room"]["_id"]
            .as_str()
            .unwrap()
            .to_string();
        let direct = s
            .post(
                "/api/v1/rooms.muteUser",
                &admin,
                json!({"roomId": dm, "username": "bob"}),
            )
            .await;
        assert_error(&direct, 400, Some("error-invalid-room-type"));
    }
}

async fn receipts(s: &Server, a: &Auth, mid: &str) -> Vec<String> {
    let (status, v) = s
        .get(
            &format!("/api/v1/chat.getMessageReadReceipts?messageId={mid}"),
            a,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"]["username"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn read_receipts_follow_members_last_seen() {
    for b in backends() {
        let s = Server::start_with(
            b,
            &[
                ("OVERWRITE_SETTING_Message_Read_Receipt_Enabled", "true"),
                ("OVERWRITE_SETTING_Message_Read_Receipt_Store_Users", "true"),
            ],
        )
        .await;
        let admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carl = s.user("carl").await;
        let dave = s.user("dave").await;
        let (_, g) = s
            .post(
                "/api/v1/groups.create",
                &admin,
                json!({"name": "rr", "members": ["bob", "carl"]}),
            )
            .await;
        let rid = g["group"]["_id"].as_str().unwrap().to_string();
        let (_, m) = s
            .post(
                "/api/v1/chat.postMessage",
                &admin,
                json!({"roomId": rid, "text": "read me"}),
            )
            .await;
        let mid = m["message"]["_id"].as_str().unwrap().to_string();
        assert_eq!(receipts(&s, &admin, &mid).await, ["admin"]);

        let read = |who: Auth| {
            let rid = rid.clone();
            let s = &s;
            async move {
                let (status, v) = s
                    .post("/api/v1/subscriptions.read", &who, json!({"rid": rid}))
                    .await;
                assert_eq!(status, 200, "{v}");
            }
        };
        let unread = |id: String| {
            let s = &s;
            let admin = admin.clone();
            async move {
                let (_, v) = s
                    .get(&format!("/api/v1/chat.getMessage?msgId={id}"), &admin)
                    .await;
                v["message"]["unread"].clone()
            }
        };
        assert_eq!(unread(mid.clone()).await, true);
        read(bob.clone()).await;
        assert_eq!(receipts(&s, &carl, &mid).await, ["admin", "bob"]);
        assert_eq!(unread(mid.clone()).await, true, "carl has not read it");
        let (_, full) = s
            .get(
                &format!("/api/v1/chat.getMessageReadReceipts?messageId={mid}"),
                &admin,
            )
            .await;
        let bobs = &full["receipts"][1];
        assert_eq!(bobs["_id"], format!("{mid}{}", bob.user_id));
        assert_eq!(
            (
                bobs["roomId"].as_str(),
                bobs["messageId"].as_str(),
                bobs["userId"].as_str()
            ),
            (
                Some(rid.as_str()),
                Some(mid.as_str()),
                Some(bob.user_id.as_str())
            )
        );
        assert_eq!(
            bobs["user"],
            json!({"_id": bob.user_id, "username": "bob", "name": "bob"})
        );
        assert!(bobs["ts"].is_string(), "{full}");

        // A later message is read by its author only, until others read again.
        let (_, later) = s
            .post(
                "/api/v1/chat.postMessage",
                &carl,
                json!({"roomId": rid, "text": "later"}),
            )
            .await;
        let later = later["message"]["_id"].as_str().unwrap().to_string();
        assert_eq!(receipts(&s, &admin, &later).await, ["carl"]);
        read(carl.clone()).await;
        assert_eq!(receipts(&s, &admin, &mid).await.len(), 3);
        // Read by everyone: the flag is gone, in single messages and in history alike.
        assert_eq!(unread(mid.clone()).await, Value::Null);
        let (_, h) = s
            .get(&format!("/api/v1/groups.history?roomId={rid}"), &admin)
            .await;
        let flags: Vec<(&str, &Value)> = h["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m.get("t").is_none())
            .map(|m| (m["msg"].as_str().unwrap(), &m["unread"]))
            .collect();
        assert_eq!(
            flags,
            [("later", &json!(true)), ("read me", &Value::Null)],
            "{h}"
        );

        // DDP answers the same.
        let mut d = Ddp::connect(&s).await;
        d.resume(&bob).await;
        let r = d.call("getReadReceipts", json!([{"messageId": mid}])).await;
        assert_eq!(r["result"].as_array().map(Vec::len), Some(3), "{r}");

        // Who may ask: readers of the room only; unknown messages; missing id.
        let outsider = s
            .get(
                &format!("/api/v1/chat.getMessageReadReceipts?messageId={mid}"),
                &dave,
            )
            .await;
        assert_error(&outsider, 400, Some("error-invalid-room"));
        let unknown = s
            .get("/api/v1/chat.getMessageReadReceipts?messageId=nope", &admin)
            .await;
        assert_error(&unknown, 400, Some("error-invalid-message"));
        let missing = s.get("/api/v1/chat.getMessageReadReceipts", &admin).await;
        assert_error(&missing, 400, Some("error-invalid-params"));

        // Storing users off: no per-user receipts, as in Rocket.Chat.
        let (status, v) = s
            .post(
                "/api/v1/settings/Message_Read_Receipt_Store_Users",
                &admin,
                json!({"value": false}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert!(receipts(&s, &admin, &mid).await.is_empty());
    }
}
