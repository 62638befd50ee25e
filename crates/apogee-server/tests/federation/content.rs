//! What messages say, both ways with a real Synapse: HTML formatting, mentions (and the
//! notifications they make), replies/quotes, threads, taking a reaction back.

use crate::common::backends;
use crate::support::*;
use crate::sync::shared_channel;

/// A valid 1×1 PNG (Synapse makes thumbnails of uploaded images).
const ONE_PIXEL_PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\nIDATx\x9cc\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xaeB`\x82";

/// Waits until alice's avatar here is the one-pixel PNG she set on Synapse.
async fn wait_for_alice_pixel(s: &Server, syn: &Synapse, what: &str) {
    eventually(s, what, || async {
        let answer = s
            .client
            .get(format!("{}/avatar/{}", s.base, enc(&syn.alice_id)))
            .send()
            .await
            .ok()?;
        let png = answer
            .headers()
            .get("content-type")
            .is_some_and(|t| t == "image/png");
        let bytes = answer.bytes().await.ok()?;
        (png && bytes.as_ref() == ONE_PIXEL_PNG).then_some(())
    })
    .await;
}

pub(crate) const SITE: &str = "https://chat.example.com";

/// Joins alice's room from Apogee as each of `joiners`; the mapped room id.
pub(crate) async fn join_room(
    s: &Server,
    syn: &Synapse,
    room_id: &str,
    joiners: &[&common::Auth],
) -> String {
    let mut rid = String::new();
    for joiner in joiners {
        rid = join_via(s, joiner, room_id, &syn.name).await.0;
    }
    rid
}

pub(crate) async fn history(s: &Server, auth: &common::Auth, rid: &str) -> Vec<Value> {
    s.get(
        &format!("/api/v1/channels.messages?roomId={rid}&count=100"),
        auth,
    )
    .await
    .1["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits for the Apogee message whose text ends with `tail`.
pub(crate) async fn apogee_message(
    s: &Server,
    auth: &common::Auth,
    rid: &str,
    tail: &str,
) -> Value {
    eventually(s, tail, || async {
        history(s, auth, rid)
            .await
            .into_iter()
            .find(|m| m["msg"].as_str().is_some_and(|t| t.ends_with(tail)))
    })
    .await
}

/// Waits for the Synapse event `pick` finds.
pub(crate) async fn synapse_event(
    s: &Server,
    syn: &Synapse,
    room_id: &str,
    what: &str,
    pick: impl Fn(&Value) -> bool,
) -> Value {
    eventually(s, what, || async {
        syn.alice.messages(room_id).await.into_iter().find(&pick)
    })
    .await
}

#[tokio::test]
async fn synapse_content() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        // A room per server: a room's events signed by a server that has gone cannot be
        // checked by the next one joining.
        let room_id = synapse_room(&syn.alice, "11", "content").await;
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, port) = start(
            backend,
            &[("APOGEE_FEDERATION_RESOLVE", &resolve), ("ROOT_URL", SITE)],
        )
        .await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let bob_id = format!("@bob:{us}");
        let rid = join_room(&s, &syn, &room_id, &[&bob, &carol]).await;
        let alice = &syn.alice;

        // In: HTML becomes markdown (script dropped, broken nesting closed), the pill a
        // mention of bob, whose subscription counts it.
        let hello = alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "Bob: hello world",
                    "format": "org.matrix.custom.html",
                    "formatted_body": format!("<a href=\"https://matrix.to/#/{bob_id}\">Bob</a>: \
                        <b>hello <i>brave</b> world<script>alert(1)</script> \
                        <a href=\"javascript:x()\">nope</a>"),
                    "m.mentions": {"user_ids": [bob_id]}}),
            )
            .await;
        let m = apogee_message(&s, &bob, &rid, "nope").await;
        assert_eq!(m["msg"], "@bob: *hello _brave_* world nope", "{m}");
        assert_eq!(m["md"][0]["type"], "PARAGRAPH", "{m}");
        assert_eq!(m["mentions"][0]["username"], "bob", "{m}");
        let hello_mid = m["_id"].as_str().unwrap().to_string();
        let (_, sub) = s
            .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
            .await;
        assert_eq!(sub["subscription"]["userMentions"], 1, "{sub}");
        let (_, sub) = s
            .get(
                &format!("/api/v1/subscriptions.getOne?roomId={rid}"),
                &carol,
            )
            .await;
        assert_eq!(sub["subscription"]["userMentions"], 0, "{sub}");

        // Out: markdown becomes HTML, mentions pills and `m.mentions`.
        let text = format!("*strong* `a<b` hi {} and @carol", syn.alice_id);
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": text}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let bob_mid = v["message"]["_id"].as_str().unwrap().to_string();
        let out = synapse_event(&s, &syn, &room_id, "bob's formatted message", |e| {
            e["sender"] == bob_id.as_str() && e["content"]["body"] == text.as_str()
        })
        .await;
        let bob_event = out["event_id"].as_str().unwrap().to_string();
        assert_eq!(out["content"]["format"], "org.matrix.custom.html", "{out}");
        assert_eq!(
            out["content"]["formatted_body"],
            format!(
                "<p><strong>strong</strong> <code>a&lt;b</code> hi \
                 <a href=\"https://matrix.to/#/{0}\">@{1}</a> and \
                 <a href=\"https://matrix.to/#/@carol:{us}\">@carol</a></p>",
                syn.alice_id,
                syn.alice_id.trim_start_matches('@')
            ),
            "{out}"
        );
        let mut mentioned: Vec<&str> = out["content"]["m.mentions"]["user_ids"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        mentioned.sort();
        assert_eq!(
            mentioned,
            [syn.alice_id.as_str(), format!("@carol:{us}").as_str()],
            "{out}"
        );

        // In: a reply (fallback stripped) quotes bob's message; one to an unknown event is
        // plain text.
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text",
                    "body": format!("> <{bob_id}> {text}\n\nquoting you"),
                    "format": "org.matrix.custom.html",
                    "formatted_body": "<mx-reply><blockquote>old</blockquote></mx-reply>quoting you",
                    "m.relates_to": {"m.in_reply_to": {"event_id": bob_event}}}),
            )
            .await;
        let m = apogee_message(&s, &bob, &rid, "quoting you").await;
        let link = format!("{SITE}/channel/");
        let quote = &m["attachments"][0];
        assert!(
            quote["message_link"]
                .as_str()
                .is_some_and(|l| l.starts_with(&link) && l.ends_with(&format!("?msg={bob_mid}"))),
            "{m}"
        );
        assert_eq!(quote["text"], text.as_str(), "{m}");
        assert!(
            m["msg"].as_str().unwrap().starts_with("[ ]("),
            "a Rocket.Chat quote: {m}"
        );
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "to nowhere",
                    "m.relates_to": {"m.in_reply_to": {"event_id": "$unknown:elsewhere.test"}}}),
            )
            .await;
        let m = apogee_message(&s, &bob, &rid, "to nowhere").await;
        assert_eq!(m["msg"], "to nowhere", "{m}");
        assert!(m["attachments"].is_null(), "{m}");

        // Out: bob quotes alice's message: a reply to her event, the link left out.
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid,
                    "text": format!("[ ]({SITE}/channel/x?msg={hello_mid}) answering you")}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["message"]["attachments"][0]["text"], "@bob: *hello _brave_* world nope",
            "{v}"
        );
        let out = synapse_event(&s, &syn, &room_id, "bob's reply", |e| {
            e["sender"] == bob_id.as_str() && e["content"]["body"] == "answering you"
        })
        .await;
        assert_eq!(
            out["content"]["m.relates_to"]["m.in_reply_to"]["event_id"],
            hello.as_str(),
            "{out}"
        );

        // Threads both ways: alice answers in bob's message's thread; bob answers in hers.
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "in your thread",
                    "m.relates_to": {"rel_type": "m.thread", "event_id": bob_event,
                        "is_falling_back": true, "m.in_reply_to": {"event_id": bob_event}}}),
            )
            .await;
        let m = apogee_message(&s, &bob, &rid, "in your thread").await;
        assert_eq!(m["tmid"], bob_mid.as_str(), "{m}");
        assert!(
            m["attachments"].is_null(),
            "a thread fallback is no quote: {m}"
        );
        let (_, root) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={bob_mid}"), &bob)
            .await;
        assert_eq!(root["message"]["tcount"], 1, "{root}");
        let (status, v) = s
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": rid, "text": "thread answer", "tmid": hello_mid}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let out = synapse_event(&s, &syn, &room_id, "bob's thread reply", |e| {
            e["sender"] == bob_id.as_str() && e["content"]["body"] == "thread answer"
        })
        .await;
        assert_eq!(
            out["content"]["m.relates_to"],
            json!({"rel_type": "m.thread", "event_id": hello, "is_falling_back": true,
                "m.in_reply_to": {"event_id": hello}}),
            "{out}"
        );

        // Un-reacting: bob's reaction reaches Synapse, taking it back redacts it there.
        let (status, v) = s
            .post(
                "/api/v1/chat.react",
                &bob,
                json!({"messageId": hello_mid, "emoji": ":rocket:"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let reaction = synapse_event(&s, &syn, &room_id, "bob's reaction", |e| {
            e["type"] == "m.reaction"
                && e["sender"] == bob_id.as_str()
                && e["content"]["m.relates_to"]["key"] == "🚀"
        })
        .await;
        let reaction_id = reaction["event_id"].as_str().unwrap().to_string();
        let (_, got) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={hello_mid}"), &bob)
            .await;
        assert_eq!(
            got["message"]["reactions"][":rocket:"]["federationReactionEventIds"][&reaction_id],
            "bob",
            "{got}"
        );
        let (status, v) = s
            .post(
                "/api/v1/chat.react",
                &bob,
                json!({"messageId": hello_mid, "emoji": ":rocket:", "shouldReact": false}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        synapse_event(&s, &syn, &room_id, "the reaction's redaction", |e| {
            e["type"] == "m.room.redaction"
                && e["sender"] == bob_id.as_str()
                && (e["redacts"] == reaction_id.as_str()
                    || e["content"]["redacts"] == reaction_id.as_str())
        })
        .await;
        eventually(&s, "the reaction gone on Synapse", || async {
            let events = alice.messages(&room_id).await;
            let r = events
                .iter()
                .find(|e| e["event_id"] == reaction_id.as_str())?;
            r["unsigned"]["redacted_because"].is_object().then_some(())
        })
        .await;
        let (_, got) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={hello_mid}"), &bob)
            .await;
        assert!(got["message"]["reactions"].is_null(), "{got}");
        drop(s);
    }
}

/// The avatar of a member already in a room when we join it: alice's picture, set in her
/// member event before bob joins, becomes her `/avatar/…` here without any later event.
#[tokio::test]
async fn synapse_members_avatars_on_join() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let room_id = synapse_room(&syn.alice, "11", "avatars before").await;
        let alice = &syn.alice;
        let mxc = alice
            .upload("before.png", "image/png", ONE_PIXEL_PNG.to_vec())
            .await;
        alice
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
                    enc(&room_id),
                    enc(&syn.alice_id)
                ),
                Some(json!({"membership": "join", "avatar_url": &mxc})),
            )
            .await;
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, _port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        join_room(&s, &syn, &room_id, &[&bob]).await;
        wait_for_alice_pixel(&s, &syn, "alice's avatar from the room's state").await;
        let (_, v) = s
            .get(
                &format!("/api/v1/users.info?username={}", enc(&syn.alice_id)),
                &bob,
            )
            .await;
        assert_eq!(v["user"]["federation"]["avatarUrl"], mxc.as_str(), "{v}");
        drop(s);
    }
}

/// Profiles both ways: alice's new name and avatar (her member event in the room) reach her
/// user here; bob's new name here reaches Synapse as his member event.
#[tokio::test]
async fn synapse_profiles() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        // A room per server: a room's events signed by a server that has gone cannot be
        // checked by the next one joining.
        let room_id = synapse_room(&syn.alice, "11", "content").await;
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:localhost:{port}");
        join_room(&s, &syn, &room_id, &[&bob]).await;
        let alice = &syn.alice;

        let new_name = format!("Alice {}", apogee_domain::random_id());
        // Her name in this room only (her global profile is other tests' to read).
        alice
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
                    enc(&room_id),
                    enc(&syn.alice_id)
                ),
                Some(json!({"membership": "join", "displayname": new_name})),
            )
            .await;
        eventually(&s, "alice's new name", || async {
            let (_, v) = s
                .get(
                    &format!("/api/v1/users.info?username={}", enc(&syn.alice_id)),
                    &bob,
                )
                .await;
            (v["user"]["name"] == new_name.as_str()).then_some(())
        })
        .await;

        let (status, v) = s
            .post(
                "/api/v1/users.updateOwnBasicInfo",
                &bob,
                json!({"data": {"realname": "Bobby Tables"}}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        eventually(&s, "bob's name on Synapse", || async {
            let members = alice
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room_id)),
                    None,
                )
                .await;
            (members["joined"][&bob_id]["display_name"] == "Bobby Tables").then_some(())
        })
        .await;

        // Her avatar (an mxc:// in her member event) is fetched into our avatar store.
        let mxc = alice
            .upload("me.png", "image/png", ONE_PIXEL_PNG.to_vec())
            .await;
        alice
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
                    enc(&room_id),
                    enc(&syn.alice_id)
                ),
                Some(json!({"membership": "join", "displayname": new_name, "avatar_url": &mxc})),
            )
            .await;
        wait_for_alice_pixel(&s, &syn, "alice's avatar").await;
        drop(s);
    }
}

/// `@room` from Synapse: in alice's own room (she has power 100, over `notifications.room`'s
/// 50) it is Rocket.Chat's `@all` — an `all` mention, counted in every member's group
/// mentions; in a room made here, where alice has power 0, the same message is shown without
/// it and counts nothing.
#[tokio::test]
async fn synapse_room_mentions_need_the_power() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        let room_id = synapse_room(&syn.alice, "11", "room mentions").await;
        let resolve = format!("{}={}", syn.name, syn.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let carol = s.user("carol").await;
        let rid = join_room(&s, &syn, &room_id, &[&bob, &carol]).await;
        let group_mentions = |rid: String| {
            let s = &s;
            let carol = &carol;
            async move {
                let (_, sub) = s
                    .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), carol)
                    .await;
                sub["subscription"]["groupMentions"].clone()
            }
        };
        syn.alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "@room standup in five",
                    "m.mentions": {"room": true}}),
            )
            .await;
        let m = apogee_message(&s, &carol, &rid, "standup in five").await;
        assert_eq!(
            m["mentions"],
            json!([{"_id": "all", "username": "all", "type": "user"}])
        );
        assert_eq!(group_mentions(rid.clone()).await, 1);

        // In bob's room alice joined from Synapse, her power is 0.
        let (ours, matrix_room) = shared_channel(&s, &syn, &bob, &us, "ours").await;
        // Without `m.mentions`, the body's `@room` asks for it (the spec's legacy rule).
        syn.alice
            .send(
                &matrix_room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "@room everyone look"}),
            )
            .await;
        let m = apogee_message(&s, &carol, &ours, "everyone look").await;
        assert_eq!(m["mentions"], json!([]), "{m}");
        assert_eq!(group_mentions(ours).await, 0);
    }
}
