//! Files both ways with a real Synapse: ours served over the federation media endpoint as
//! `mxc://`, theirs downloaded into our file store, and the federated file-size limit.

use crate::common::{Auth, backends};
use crate::content::{apogee_message, join_room, synapse_event};
use crate::support::*;

pub(crate) fn png(n: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..n).map(|i| (i * 7 % 256) as u8));
    v
}

pub(crate) async fn upload(
    s: &Server,
    auth: &Auth,
    rid: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str("image/png")
            .unwrap(),
    );
    let answer = s
        .client
        .post(format!("{}/api/v1/rooms.media/{rid}", s.base))
        .header("X-User-Id", &auth.user_id)
        .header("X-Auth-Token", &auth.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn synapse_media() {
    let Some(syn) = synapse().await else {
        return;
    };
    for backend in backends() {
        // A room per server: a room's events signed by a server that has gone cannot be
        // checked by the next one joining.
        let room_id = synapse_room(&syn.alice, "11", "content").await;
        let mallory = peer("mallory.test").await;
        let resolve = format!("{}={},mallory.test={}", syn.name, syn.url, mallory.url);
        let (s, port) = start(
            backend,
            &[
                ("APOGEE_FEDERATION_RESOLVE", &resolve),
                ("OVERWRITE_SETTING_Federation_Matrix_Max_File_Size", "20000"),
            ],
        )
        .await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:{us}");
        let rid = join_room(&s, &syn, &room_id, &[&bob]).await;
        let alice = &syn.alice;

        // Out: bob's picture is an m.image whose mxc:// Synapse downloads from us.
        let picture = png(5000);
        let (status, up) = upload(&s, &bob, &rid, "cat.png", picture.clone()).await;
        assert_eq!(status, 200, "{up}");
        let file_id = up["file"]["_id"].as_str().unwrap().to_string();
        let (status, v) = s
            .post(
                &format!("/api/v1/rooms.mediaConfirm/{rid}/{file_id}"),
                &bob,
                json!({"msg": ""}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let event = synapse_event(&s, &syn, &room_id, "bob's picture", |e| {
            e["sender"] == bob_id.as_str() && e["content"]["msgtype"] == "m.image"
        })
        .await;
        assert_eq!(
            event["content"]["url"],
            format!("mxc://{us}/{file_id}"),
            "{event}"
        );
        assert_eq!(event["content"]["body"], "cat.png", "{event}");
        assert_eq!(event["content"]["info"]["mimetype"], "image/png", "{event}");
        let fetched = alice
            .http
            .get(format!(
                "{}/_matrix/client/v1/media/download/{us}/{file_id}",
                syn.url
            ))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap();
        assert_eq!(fetched.status(), 200, "\n{}", federation_log(&s));
        assert_eq!(fetched.bytes().await.unwrap().as_ref(), picture.as_slice());

        // A server with no member in the room gets nothing, nor does an unsigned request.
        let target = format!("/_matrix/federation/v1/media/download/{file_id}");
        let auth = signed(&mallory.identity, &us, &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 404);
        let (status, _) = fed_get(port, &target, None).await;
        assert_eq!(status, 401);

        // File-size alignment: over what peers accept, refused before anything is sent.
        let (status, v) = upload(&s, &bob, &rid, "big.png", png(30000)).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["errorType"], "error-file-too-large", "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("Matrix servers"),
            "{v}"
        );

        // In: alice's file is downloaded from Synapse into our store.
        let text = b"hello from a Synapse file\n".to_vec();
        let mxc = alice.upload("notes.txt", "text/plain", text.clone()).await;
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.file", "body": "notes.txt", "url": mxc,
                    "info": {"mimetype": "text/plain", "size": text.len()}}),
            )
            .await;
        let m = eventually(&s, "alice's file", || async {
            crate::content::history(&s, &bob, &rid)
                .await
                .into_iter()
                .find(|m| m["file"]["name"] == "notes.txt")
        })
        .await;
        assert_eq!(m["u"]["username"], syn.alice_id.as_str(), "{m}");
        assert_eq!(download_file(&s, &bob, &m).await, text);

        // A file whose server does not give it stays a text message.
        alice
            .send(
                &room_id,
                "m.room.message",
                json!({"msgtype": "m.file", "body": "missing.txt",
                    "url": format!("mxc://{}/doesnotexist", syn.name)}),
            )
            .await;
        let m = apogee_message(&s, &bob, &rid, "missing.txt").await;
        assert!(m["file"].is_null(), "{m}");
        drop(s);
    }
}
