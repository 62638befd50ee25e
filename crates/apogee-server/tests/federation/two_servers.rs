//! Two Apogee servers federating on loopback, no Synapse: a user of A makes a federated room
//! and invites a user of B by Matrix id; B takes the invite up (make_join / send_join to A);
//! messages, an edit, a reaction, a deletion and a leave go both ways.

use crate::common::backends;
use crate::support::*;

/// Starts apogee as `localhost:<port>` on a port chosen by the caller, trusting the other
/// server's self-signed certificate and reaching it through `resolve`.
async fn start_at(backend: Backend, port: u16, resolve: &str) -> Server {
    let name = format!("localhost:{port}");
    let listen = format!("127.0.0.1:{port}");
    let s = Server::start_with(
        backend,
        &[
            ("APOGEE_SERVER_NAME", name.as_str()),
            ("APOGEE_FEDERATION_LISTEN", listen.as_str()),
            ("APOGEE_FEDERATION_RESOLVE", resolve),
            ("APOGEE_FEDERATION_ACCEPT_INVALID_CERTS", "true"),
            ("APOGEE_FEDERATION_ALLOW_PRIVATE_ADDRESSES", "true"),
        ],
    )
    .await;
    wait_for_federation(port).await;
    s
}

/// Polls `check` for up to 60 s (long enough for one outbox retry, 10 s after a failed
/// delivery, on a loaded machine); on failure shows both servers' federation logs.
async fn across<T, F, Fut>(a: &Server, b: &Server, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}\nA:\n{}\nB:\n{}",
        federation_log(a),
        federation_log(b)
    );
}

async fn messages(s: &Server, auth: &common::Auth, kind: &str, rid: &str) -> Vec<Value> {
    let (_, v) = s
        .get(
            &format!("/api/v1/{kind}.messages?roomId={rid}&count=50"),
            auth,
        )
        .await;
    v["messages"].as_array().cloned().unwrap_or_default()
}

/// The id of the room on `s` whose Matrix id is `mrid`, once `auth`'s user is subscribed.
async fn subscribed_room(s: &Server, auth: &common::Auth, mrid: &str) -> Option<(String, String)> {
    let (_, v) = s.get("/api/v1/subscriptions.get", auth).await;
    for sub in v["update"].as_array()? {
        let rid = sub["rid"].as_str()?;
        let (_, info) = s
            .get(&format!("/api/v1/rooms.info?roomId={rid}"), auth)
            .await;
        if info["room"]["federation"]["mrid"] == mrid {
            return Some((rid.to_string(), info["room"]["t"].as_str()?.to_string()));
        }
    }
    None
}

#[tokio::test]
async fn two_apogee_servers_share_a_room() {
    for backend in backends() {
        let (pa, pb) = (free_port(), free_port());
        let (a_name, b_name) = (format!("localhost:{pa}"), format!("localhost:{pb}"));
        let a = start_at(backend, pa, &format!("{b_name}=https://127.0.0.1:{pb}")).await;
        let b = start_at(backend, pb, &format!("{a_name}=https://127.0.0.1:{pa}")).await;
        let _admin_a = a.user("admin").await;
        let _admin_b = b.user("admin").await;
        let alice = a.user("alice").await;
        let bob = b.user("bob").await;
        let carol = b.user("carol").await;
        let carol_id = format!("@carol:{b_name}");
        let (alice_id, bob_id) = (format!("@alice:{a_name}"), format!("@bob:{b_name}"));

        // alice makes a federated channel on A and invites bob of B.
        let (status, v) = a
            .post(
                "/api/v1/channels.create",
                &alice,
                json!({"name": "across", "extraData": {"federated": true}}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let a_rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let mrid = v["channel"]["federation"]["mrid"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, v) = a
            .post(
                "/api/v1/channels.invite",
                &alice,
                json!({"roomId": a_rid, "username": bob_id}),
            )
            .await;
        assert_eq!(status, 200, "{v}\n{}", federation_log(&a));

        // B takes the invite up: bob is subscribed to the room on B, and a member on A.
        let (b_rid, t) = across(&a, &b, "bob's room on B", || {
            subscribed_room(&b, &bob, &mrid)
        })
        .await;
        assert_eq!(t, "c");
        let a_ref = &a;
        across(&a, &b, "bob a member on A", || async {
            let (_, v) = a_ref
                .get(&format!("/api/v1/channels.members?roomId={a_rid}"), &alice)
                .await;
            v["members"]
                .as_array()?
                .iter()
                .any(|m| m["username"] == bob_id.as_str())
                .then_some(())
        })
        .await;
        let (_, members) = b
            .get(&format!("/api/v1/channels.members?roomId={b_rid}"), &bob)
            .await;
        assert!(
            members["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["username"] == alice_id.as_str()),
            "{members}"
        );

        // Messages both ways.
        let (status, v) = a
            .post(
                "/api/v1/chat.postMessage",
                &alice,
                json!({"roomId": a_rid, "text": "hello from A"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let a_mid = v["message"]["_id"].as_str().unwrap().to_string();
        let b_ref = &b;
        let on_b = across(&a, &b, "A's message on B", || async {
            messages(b_ref, &bob, "channels", &b_rid)
                .await
                .into_iter()
                .find(|m| m["msg"] == "hello from A")
        })
        .await;
        assert_eq!(on_b["u"]["username"], alice_id.as_str());
        let b_copy = on_b["_id"].as_str().unwrap().to_string();
        let (status, v) = b
            .post(
                "/api/v1/chat.postMessage",
                &bob,
                json!({"roomId": b_rid, "text": "hello from B"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let b_mid = v["message"]["_id"].as_str().unwrap().to_string();
        let on_a = across(&a, &b, "B's message on A", || async {
            messages(a_ref, &alice, "channels", &a_rid)
                .await
                .into_iter()
                .find(|m| m["msg"] == "hello from B")
        })
        .await;
        assert_eq!(on_a["u"]["username"], bob_id.as_str());
        let a_copy = on_a["_id"].as_str().unwrap().to_string();

        // alice edits hers; bob reacts to it; bob deletes his.
        let (status, v) = a
            .post(
                "/api/v1/chat.update",
                &alice,
                json!({"roomId": a_rid, "msgId": a_mid, "text": "hello from A, edited"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = b
            .post(
                "/api/v1/chat.react",
                &bob,
                json!({"messageId": b_copy, "emoji": ":thumbsup:"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        across(&a, &b, "the edit on B", || async {
            let (_, v) = b_ref
                .get(&format!("/api/v1/chat.getMessage?msgId={b_copy}"), &bob)
                .await;
            (v["message"]["msg"] == "hello from A, edited").then_some(())
        })
        .await;
        across(&a, &b, "bob's reaction on A", || async {
            let (_, v) = a_ref
                .get(&format!("/api/v1/chat.getMessage?msgId={a_mid}"), &alice)
                .await;
            v["message"]["reactions"][":thumbsup:"]["usernames"]
                .as_array()?
                .iter()
                .any(|u| u == bob_id.as_str())
                .then_some(())
        })
        .await;
        let (status, v) = b
            .post(
                "/api/v1/chat.delete",
                &bob,
                json!({"roomId": b_rid, "msgId": b_mid}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        across(&a, &b, "the deletion on A", || async {
            let (status, _) = a_ref
                .get(&format!("/api/v1/chat.getMessage?msgId={a_copy}"), &alice)
                .await;
            (status != 200).then_some(())
        })
        .await;

        // carol of B is invited too and joins; then she leaves on B: A drops her.
        let (status, v) = a
            .post(
                "/api/v1/channels.invite",
                &alice,
                json!({"roomId": a_rid, "username": carol_id}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let members_on_a = || async {
            let (_, v) = a_ref
                .get(&format!("/api/v1/channels.members?roomId={a_rid}"), &alice)
                .await;
            v["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m["username"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        };
        across(&a, &b, "carol a member on A", || async {
            members_on_a().await.contains(&carol_id).then_some(())
        })
        .await;
        let (carol_rid, _) = across(&a, &b, "carol's room on B", || {
            subscribed_room(&b, &carol, &mrid)
        })
        .await;
        assert_eq!(carol_rid, b_rid, "one room on B for both");
        let (status, v) = b
            .post("/api/v1/channels.leave", &carol, json!({"roomId": b_rid}))
            .await;
        assert_eq!(status, 200, "{v}");
        across(&a, &b, "carol's leave on A", || async {
            (!members_on_a().await.contains(&carol_id)).then_some(())
        })
        .await;
        // Invited again by user id (a remote user A knows): a new invite, taken up by B.
        let (_, v) = a
            .get(
                &format!("/api/v1/users.info?username={}", enc(&carol_id)),
                &alice,
            )
            .await;
        let carol_on_a = v["user"]["_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string();
        let (status, v) = a
            .post(
                "/api/v1/channels.invite",
                &alice,
                json!({"roomId": a_rid, "userId": carol_on_a}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        across(&a, &b, "carol back on A", || async {
            members_on_a().await.contains(&carol_id).then_some(())
        })
        .await;

        // alice kicks bob on A: B drops his subscription.
        let (_, v) = a
            .get(&format!("/api/v1/channels.members?roomId={a_rid}"), &alice)
            .await;
        let bob_on_a = v["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["username"] == bob_id.as_str())
            .map(|m| m["_id"].as_str().unwrap().to_string())
            .unwrap();
        let (status, v) = a
            .post(
                "/api/v1/channels.kick",
                &alice,
                json!({"roomId": a_rid, "userId": bob_on_a}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        across(&a, &b, "bob's kick on B", || async {
            subscribed_room(b_ref, &bob, &mrid)
                .await
                .is_none()
                .then_some(())
        })
        .await;
    }
}

/// Changes after creation and deletion between two Apogee servers: A's rename and bob made
/// moderator show on B; A deletes the room: bob is kicked (dropped on B) and, every member of A
/// gone, B archives its copy.
#[tokio::test]
async fn a_room_renamed_then_deleted_on_the_other_server() {
    for backend in backends() {
        let (pa, pb) = (free_port(), free_port());
        let (a_name, b_name) = (format!("localhost:{pa}"), format!("localhost:{pb}"));
        let a = start_at(backend, pa, &format!("{b_name}=https://127.0.0.1:{pb}")).await;
        let b = start_at(backend, pb, &format!("{a_name}=https://127.0.0.1:{pa}")).await;
        let admin_a = a.user("admin").await;
        let admin_b = b.user("admin").await;
        let alice = a.user("alice").await;
        let bob = b.user("bob").await;
        let bob_id = format!("@bob:{b_name}");
        let v = a
            .post_ok(
                "/api/v1/channels.create",
                &alice,
                json!({"name": "closing", "extraData": {"federated": true}}),
            )
            .await;
        let a_rid = v["channel"]["_id"].as_str().unwrap().to_string();
        let mrid = v["channel"]["federation"]["mrid"]
            .as_str()
            .unwrap()
            .to_string();
        a.post_ok(
            "/api/v1/channels.invite",
            &alice,
            json!({"roomId": a_rid, "username": bob_id}),
        )
        .await;
        let (b_rid, _) = across(&a, &b, "bob's room on B", || {
            subscribed_room(&b, &bob, &mrid)
        })
        .await;
        let bob_on_a = across(&a, &b, "bob a member on A", || async {
            let (_, v) = a
                .get(&format!("/api/v1/channels.members?roomId={a_rid}"), &alice)
                .await;
            v["members"]
                .as_array()?
                .iter()
                .find(|m| m["username"] == bob_id.as_str())
                .and_then(|m| m["_id"].as_str())
                .map(str::to_string)
        })
        .await;

        // A's rename and bob made moderator, on B.
        a.post_ok(
            "/api/v1/channels.rename",
            &alice,
            json!({"roomId": a_rid, "name": "closing-soon"}),
        )
        .await;
        a.post_ok(
            "/api/v1/channels.addModerator",
            &alice,
            json!({"roomId": a_rid, "userId": bob_on_a}),
        )
        .await;
        across(&a, &b, "the name and bob's role on B", || async {
            let sub = b.subscription(&bob, &b_rid).await;
            let moderator = sub["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == "moderator"));
            (sub["fname"] == "closing-soon" && moderator).then_some(())
        })
        .await;

        // A deletes the room: closed (join rule invite: a private group on B), bob kicked,
        // B's copy archived.
        a.post_ok(
            "/api/v1/channels.delete",
            &admin_a,
            json!({"roomId": a_rid}),
        )
        .await;
        across(&a, &b, "B's copy closed", || async {
            // The administration's list: the admin is no member of the private group.
            let (_, rooms) = b.get("/api/v1/rooms.adminRooms?count=100", &admin_b).await;
            let room = rooms["rooms"]
                .as_array()?
                .iter()
                .find(|r| r["_id"] == b_rid.as_str())?
                .clone();
            let bob_gone = subscribed_room(&b, &bob, &mrid).await.is_none();
            (room["archived"] == true && room["t"] == "p" && bob_gone).then_some(())
        })
        .await;
    }
}
