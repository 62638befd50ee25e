//! Quote attachments, as Rocket.Chat adds them: a message that links another message of this
//! workspace (`<Site_Url>/channel/general?msg=<id>`, also `/group/…`, `/direct/…` and thread
//! links — any path of the site with a `msg` parameter) carries the linked message as an
//! attachment `{text, md, message_link, author_name, author_icon, attachments, ts}`, so every
//! client can draw the quote without fetching it. These are the pure parts; who may quote what is
//! decided in `apogee-core`.

use crate::Message;
use crate::ids::is_acceptable_id;
use serde_json::{Map, Value, json};

/// At most this many message links of one message become quotes: each costs a message and a
/// room lookup, and a 5000-character message could otherwise hold hundreds of them.
pub const MAX_QUOTES: usize = 10;

/// The targets of the `LINK` nodes of a message's `md` AST, in order, without repeats.
pub fn linked_urls(md: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("LINK") {
                    let src = o.get("value").and_then(|v| v.get("src"));
                    if let Some(url) = src.and_then(|s| s.get("value")).and_then(Value::as_str)
                        && !out.iter().any(|u| u == url)
                    {
                        out.push(url.to_string());
                    }
                }
                o.values().for_each(|v| walk(v, out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(md, &mut out);
    out
}

/// The message id a link names when it is a message link of the site at `site_url`.
pub fn quoted_message_id(url: &str, site_url: &str) -> Option<String> {
    let site = site_url.trim_end_matches('/');
    if site.is_empty() {
        return None;
    }
    let rest = url.strip_prefix(site)?;
    if !rest.starts_with('/') && !rest.starts_with('?') {
        // `https://chat.example.com.evil.test/…` shares the prefix but not the site.
        return None;
    }
    let query = rest.split('#').next()?.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("msg="))
        .filter(|id| is_acceptable_id(id))
        .map(str::to_string)
}

/// Rocket.Chat's `Message_QuoteChainLimit`: keeps quotes nested at most `limit` deep in the
/// attachments a quoted message brings along (below 2, it brings none).
pub fn trim_quote_chain(attachments: &mut Vec<Value>, limit: i64) {
    fn trim(attachment: &mut Value, depth: i64, limit: i64) {
        let Some(o) = attachment.as_object_mut() else {
            return;
        };
        if o.get("message_link").is_none_or(Value::is_null) {
            return;
        }
        if depth < limit - 1 {
            if let Some(Value::Array(nested)) = o.get_mut("attachments") {
                nested.iter_mut().for_each(|n| trim(n, depth + 1, limit));
            }
        } else {
            o.remove("attachments");
        }
    }
    if limit < 2 {
        attachments.clear();
        return;
    }
    attachments.iter_mut().for_each(|a| trim(a, 1, limit));
}

/// The attachment quoting `quoted` under `link`. An end-to-end encrypted message is quoted
/// without its text, `md` or attachments: its `msg` is ciphertext of another room's key, and
/// copying it would spread it to readers who cannot, and should not, hold that key.
pub fn quote_attachment(
    quoted: &Message,
    link: &str,
    use_real_name: bool,
    chain_limit: i64,
) -> Value {
    let alias = quoted
        .extra
        .get("alias")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty());
    let author =
        alias
            .map(str::to_string)
            .unwrap_or_else(|| match (&quoted.u.name, use_real_name) {
                (Some(name), true) if !name.is_empty() => name.clone(),
                _ => quoted.u.username.clone(),
            });
    let mut a = Map::new();
    let encrypted = quoted.t.as_deref() == Some("e2e");
    a.insert(
        "text".into(),
        json!(if encrypted { "" } else { quoted.msg.as_str() }),
    );
    if let (Some(md), false) = (&quoted.md, encrypted) {
        a.insert("md".into(), md.clone());
    }
    a.insert("message_link".into(), json!(link));
    a.insert("author_name".into(), json!(author));
    a.insert(
        "author_icon".into(),
        json!(format!("/avatar/{}", quoted.u.username)),
    );
    let mut nested = match quoted.extra.get("attachments") {
        Some(Value::Array(items)) if !encrypted => items.clone(),
        _ => Vec::new(),
    };
    trim_quote_chain(&mut nested, chain_limit);
    a.insert("attachments".into(), Value::Array(nested));
    a.insert("ts".into(), json!(quoted.ts));
    Value::Object(a)
}

/// Puts `quote` into `attachments`, replacing an earlier quote of the same link (a client may
/// have sent its own).
pub fn put_quote(attachments: &mut Vec<Value>, quote: Value) {
    let link = quote.get("message_link").cloned();
    attachments.retain(|a| {
        a.get("message_link")
            .is_none_or(|l| l.is_null() || Some(l) != link.as_ref())
    });
    attachments.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserRef;
    use crate::markdown;

    const SITE: &str = "https://chat.example.com";

    #[test]
    fn message_links_of_the_site_name_their_message() {
        let id = |u: &str| quoted_message_id(u, SITE);
        assert_eq!(
            id("https://chat.example.com/channel/general?msg=abc123").as_deref(),
            Some("abc123")
        );
        assert_eq!(
            id("https://chat.example.com/group/g/thread/t1?x=1&msg=M2#top").as_deref(),
            Some("M2")
        );
        assert_eq!(
            quoted_message_id(
                "https://chat.example.com/direct/r?msg=M3",
                "https://chat.example.com/"
            )
            .as_deref(),
            Some("M3")
        );
        assert_eq!(
            id("https://chat.example.com.evil.test/channel/x?msg=abc"),
            None
        );
        assert_eq!(id("https://other.example.com/channel/x?msg=abc"), None);
        assert_eq!(id("https://chat.example.com/channel/x"), None);
        assert_eq!(id("https://chat.example.com/channel/x?msg="), None);
        assert_eq!(id("https://chat.example.com/channel/x?msg=a%20b"), None);
        assert_eq!(
            quoted_message_id("https://chat.example.com/channel/x?msg=a", ""),
            None
        );
    }

    #[test]
    fn links_come_from_the_markdown_in_order_once() {
        let md = markdown::parse(
            "[ ](https://a.test/channel/x?msg=1) see https://www.example.com/page and [again](https://a.test/channel/x?msg=1)",
        );
        assert_eq!(
            linked_urls(&md),
            vec![
                "https://a.test/channel/x?msg=1",
                "https://www.example.com/page"
            ]
        );
        assert!(linked_urls(&markdown::parse("no links here")).is_empty());
    }

    fn quote(link: &str, nested: Vec<Value>) -> Value {
        json!({"message_link": link, "text": link, "attachments": nested})
    }

    #[test]
    fn the_chain_limit_cuts_nested_quotes() {
        let chain = || {
            vec![
                quote("a", vec![quote("b", vec![quote("c", vec![])])]),
                json!({"title": "file.png"}),
            ]
        };
        let mut two = chain();
        trim_quote_chain(&mut two, 2);
        assert_eq!(
            two[0].get("attachments"),
            None,
            "limit 2: a quoted quote brings no quotes of its own"
        );
        assert_eq!(
            two[1],
            json!({"title": "file.png"}),
            "other attachments stay"
        );
        let mut three = chain();
        trim_quote_chain(&mut three, 3);
        assert_eq!(three[0]["attachments"][0]["message_link"], "b");
        assert_eq!(three[0]["attachments"][0].get("attachments"), None);
        let mut one = chain();
        trim_quote_chain(&mut one, 1);
        assert!(one.is_empty());
    }

    fn message(t: Option<&str>) -> Message {
        let u = UserRef {
            id: "u1".into(),
            username: "ada".into(),
            name: Some("Ada L".into()),
        };
        let mut m = Message::new("m1".into(), "r1", u, "hello **there**".into());
        m.md = Some(markdown::parse(&m.msg));
        m.t = t.map(str::to_string);
        m.extra
            .insert("attachments".into(), json!([{"title": "a.txt"}]));
        m
    }

    #[test]
    fn a_quote_carries_text_author_and_attachments() {
        let m = message(None);
        let q = quote_attachment(&m, "L", false, 2);
        assert_eq!(q["text"], "hello **there**");
        assert_eq!(q["md"], m.md.clone().unwrap());
        assert_eq!(q["author_name"], "ada");
        assert_eq!(q["author_icon"], "/avatar/ada");
        assert_eq!(q["message_link"], "L");
        assert_eq!(q["attachments"], json!([{"title": "a.txt"}]));
        assert_eq!(q["ts"], json!(m.ts));
        assert_eq!(quote_attachment(&m, "L", true, 2)["author_name"], "Ada L");
        let mut aliased = m.clone();
        aliased.extra.insert("alias".into(), json!("Bot"));
        assert_eq!(
            quote_attachment(&aliased, "L", true, 2)["author_name"],
            "Bot"
        );
    }

    #[test]
    fn an_encrypted_message_is_quoted_without_its_ciphertext() {
        let m = message(Some("e2e"));
        let q = quote_attachment(&m, "L", false, 2);
        assert_eq!(q["text"], "");
        assert_eq!(q.get("md"), None);
        assert_eq!(q["attachments"], json!([]));
        assert_eq!(q["author_name"], "ada");
    }

    #[test]
    fn a_new_quote_replaces_one_of_the_same_link() {
        let mut list = vec![
            json!({"title": "f"}),
            quote("L", vec![]),
            quote("K", vec![]),
        ];
        put_quote(&mut list, json!({"message_link": "L", "text": "server"}));
        assert_eq!(list.len(), 3);
        assert_eq!(list[2]["text"], "server");
        assert_eq!(list[1]["message_link"], "K");
    }
}
