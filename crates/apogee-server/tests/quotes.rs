//! Quote attachments: a message linking another message of the workspace carries it as
//! Rocket.Chat's quote attachment, only when the sender can read the quoted room.

mod common;

use common::{Auth, Server, backends};
use serde_json::{Value, json};

const SITE: &str = "https://chat.example.com";

async fn post(s: &Server, a: &Auth, rid: &str, text: &str) -> Value {
    let r = s
        .post(
            "/api/v1/chat.sendMessage",
            a,
            json!({"message": {"rid": rid, "msg": text}}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["message"].clone()
}

fn link(kind: &str, room: &str, id: &Value) -> String {
    format!("{SITE}/{kind}/{room}?msg={}", id.as_str().unwrap())
}

#[tokio::test]
async fn message_links_become_quotes_the_sender_may_read() {
    for b in backends() {
        let s = Server::start_with(b, &[("ROOT_URL", SITE)]).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let r = s
            .post("/api/v1/groups.create", &alice, json!({"name": "secret"}))
            .await;
        let secret = r.1["group"]["_id"].as_str().unwrap().to_string();
        let hidden = post(&s, &alice, &secret, "the hidden plan").await;
        let original = post(&s, &alice, "GENERAL", "**hello** world").await;

        // Bob quotes Alice's message of #general.
        let to_original = link("channel", "general", &original["_id"]);
        let reply = post(&s, &bob, "GENERAL", &format!("[ ]({to_original}) agreed")).await;
        let quote = &reply["attachments"][0];
        assert_eq!(quote["message_link"], to_original.as_str(), "{reply}");
        assert_eq!(quote["text"], "**hello** world");
        assert_eq!(quote["md"], original["md"]);
        assert_eq!(quote["author_name"], "alice");
        assert_eq!(quote["author_icon"], "/avatar/alice");
        assert_eq!(quote["ts"], original["ts"]);
        assert_eq!(quote["attachments"], json!([]));
        assert_eq!(
            reply["msg"],
            format!("[ ]({to_original}) agreed"),
            "the text stays"
        );
        let (_, stored) = s
            .get(
                &format!(
                    "/api/v1/chat.getMessage?msgId={}",
                    reply["_id"].as_str().unwrap()
                ),
                &bob,
            )
            .await;
        assert_eq!(stored["message"]["attachments"], reply["attachments"]);

        // A message of a room Bob cannot read, another site's link, a missing message: bare links.
        for text in [
            format!("[ ]({})", link("group", "secret", &hidden["_id"])),
            format!(
                "[ ](https://elsewhere.example.org/channel/general?msg={})",
                original["_id"].as_str().unwrap()
            ),
            format!("[ ]({SITE}/channel/general?msg=NoSuchMessageId1)"),
        ] {
            let m = post(&s, &bob, "GENERAL", &text).await;
            assert!(m.get("attachments").is_none(), "{m}");
            assert!(!m.to_string().contains("hidden plan"), "{m}");
        }
        // Alice, a member, may quote her group's message in #general.
        let m = post(
            &s,
            &alice,
            "GENERAL",
            &link("group", "secret", &hidden["_id"]),
        )
        .await;
        assert_eq!(m["attachments"][0]["text"], "the hidden plan", "{m}");

        // Quotes of quotes stop at Message_QuoteChainLimit (2): the quoted reply brings its
        // quote of the original, without that quote's own attachments.
        let to_reply = link("channel", "general", &reply["_id"]);
        let second = post(&s, &alice, "GENERAL", &format!("[ ]({to_reply})")).await;
        let nested = &second["attachments"][0]["attachments"];
        assert_eq!(nested[0]["message_link"], to_original.as_str(), "{second}");
        assert!(nested[0].get("attachments").is_none(), "{second}");

        // An edit that adds a link adds its quote, once however often it is repeated.
        let plain = post(&s, &bob, "GENERAL", "no link yet").await;
        for _ in 0..2 {
            let r = s
                .post(
                    "/api/v1/chat.update",
                    &bob,
                    json!({"roomId": "GENERAL", "msgId": plain["_id"], "text": format!("now {to_original}")}),
                )
                .await;
            assert_eq!(r.0, 200, "{}", r.1);
            let attachments = r.1["message"]["attachments"].as_array().unwrap().clone();
            assert_eq!(attachments.len(), 1, "{}", r.1);
            assert_eq!(attachments[0]["message_link"], to_original.as_str());
        }
    }
}
