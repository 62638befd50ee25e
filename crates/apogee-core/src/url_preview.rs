//! Link previews as Rocket.Chat's OEmbed: a message's `urls` (from its links) get `meta` (the
//! page's `<title>`, OpenGraph, Twitter, … tags) and `headers` (`contentType`,
//! `contentLength`) after the message is stored — an outbox item per message, so a slow site
//! never delays sending and a restart loses nothing — and `chat.getURLPreview` answers the
//! same for a composer. `API_Embed` turns message previews off; `API_EmbedIgnoredHosts` and
//! `API_EmbedSafePorts` keep hosts and ports out, before the outbound client's own filter.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::outbound::{OutboundRequest, Overflow, split_list};
use crate::outbox::{Deliverer, Delivery};
use crate::rooms::RoomRef;
use crate::store::Change;
use apogee_domain::{Message, User};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::time::Duration;

/// The outbox kind: `{"mid": …}`.
pub(crate) const KIND: &str = "url_preview";
/// Rocket.Chat reads this much of a page and previews this many links of a message.
const PAGE_BYTES: usize = 250_000;
const MAX_PREVIEWS: usize = 5;

/// The `http(s)` links of a message's markdown, in order, once each, as `[{url}]`.
pub(crate) fn message_urls(md: &Value) -> Vec<Value> {
    fn walk(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("LINK")
                    && let Some(src) = node.pointer("/value/src/value").and_then(Value::as_str)
                {
                    let lower = src.to_ascii_lowercase();
                    if (lower.starts_with("http://") || lower.starts_with("https://"))
                        && !out.iter().any(|u| u == src)
                    {
                        out.push(src.to_string());
                    }
                }
                o.values().for_each(|v| walk(v, out));
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(md, &mut found);
    found.into_iter().map(|url| json!({ "url": url })).collect()
}

impl Core {
    /// Sets `message.urls` from its markdown (unless `parseUrls: false`) and returns the outbox
    /// change that previews them, when `API_Embed` is on.
    pub(crate) fn prepare_url_previews(&self, message: &mut Message) -> Option<Change> {
        if message.extra.get("parseUrls") == Some(&Value::Bool(false)) {
            return None;
        }
        let mut urls = message.md.as_ref().map(message_urls).unwrap_or_default();
        if urls.is_empty() {
            message.urls = None;
            return None;
        }
        // Links to this workspace's messages are quotes (attachments), not pages to preview:
        // marked as Rocket.Chat's jump-to-message does.
        let site = self.settings.string("Site_Url");
        for item in &mut urls {
            let url = item["url"].as_str().unwrap_or_default();
            if apogee_domain::quote::quoted_message_id(url, &site).is_some() {
                item["ignoreParse"] = Value::Bool(true);
            }
        }
        let any = urls
            .iter()
            .any(|u| u.get("ignoreParse") != Some(&Value::Bool(true)));
        message.urls = Some(urls);
        (any && self.settings.bool("API_Embed"))
            .then(|| self.enqueue(KIND, json!({ "mid": message.id })))
    }

    /// `chat.getURLPreview`: for readers of the room, what a message with `url` would show.
    pub async fn get_url_preview(
        &self,
        actor: &User,
        room_id: &str,
        url: &str,
    ) -> CoreResult<Value> {
        self.readable_room(actor, &RoomRef::Id(room_id.to_string()))
            .await
            .map_err(|_| CoreError::not_allowed("Not allowed"))?;
        let (mut preview, _) = self.preview(url).await;
        preview.insert("ignoreParse".into(), Value::Bool(true));
        Ok(Value::Object(preview))
    }

    /// `{url, meta, headers?}` and whether the page answered; `{url, meta: {}}` when it was
    /// not fetched (ignored host, unsafe port, refused address) or did not answer 200.
    async fn preview(&self, url: &str) -> (Map<String, Value>, bool) {
        let mut preview = Map::new();
        preview.insert("url".into(), json!(url));
        preview.insert("meta".into(), json!({}));
        if let Err(why) = self.embeddable(url) {
            tracing::debug!(url = %crate::outbound::redact_url(url), why, "no preview");
            return (preview, false);
        }
        let Ok(http) = self.http() else {
            return (preview, false);
        };
        let mut request = OutboundRequest::get(url);
        request.max_body = PAGE_BYTES;
        request.overflow = Overflow::Truncate;
        request.timeout = Duration::from_secs(15);
        request.allowlist = self.outbound_allowlist();
        let language = self.settings.string("Language");
        request.headers.push((
            "accept-language".into(),
            if language.is_empty() {
                "en".into()
            } else {
                language
            },
        ));
        let answer = match http.fetch(request).await {
            Ok(answer) if answer.status == 200 => answer,
            Ok(answer) => {
                tracing::debug!(status = answer.status, "no preview: not 200");
                return (preview, false);
            }
            Err(e) => {
                tracing::debug!(error = %e, "no preview");
                return (preview, false);
            }
        };
        let content_type = answer
            .header("content-type")
            .unwrap_or_default()
            .to_string();
        let is_html = content_type.is_empty() || content_type.contains("html");
        if is_html {
            let text = decode(&content_type, &answer.body);
            let meta: Map<String, Value> = relevant_meta(page_meta(&text))
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            preview.insert("meta".into(), Value::Object(meta));
        }
        let mut headers = Map::new();
        if let Some(length) = answer.header("content-length") {
            headers.insert("contentLength".into(), json!(length));
        }
        if !content_type.is_empty() {
            headers.insert("contentType".into(), json!(content_type));
        }
        if !headers.is_empty() {
            preview.insert("headers".into(), Value::Object(headers));
        }
        (preview, true)
    }

    /// `API_EmbedIgnoredHosts` (names, addresses, CIDR ranges) and `API_EmbedSafePorts`.
    fn embeddable(&self, raw: &str) -> Result<(), &'static str> {
        let url = url::Url::parse(raw).map_err(|_| "not a URL")?;
        let scheme_port = match url.scheme() {
            "http" => 80,
            "https" => 443,
            _ => return Err("not http(s)"),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err("no host"),
        };
        let ignored = split_list(&self.settings.string("API_EmbedIgnoredHosts"));
        if ignored.iter().any(|entry| host_matches(&host, entry)) {
            return Err("ignored host");
        }
        let safe = split_list(&self.settings.string("API_EmbedSafePorts"));
        if !safe.is_empty() {
            let ok = match url.port() {
                Some(p) => safe.iter().any(|s| *s == p.to_string()),
                // Rocket.Chat's port → protocol table: 80 and 8080 are http, 443 https.
                None => safe.iter().any(|s| match s.as_str() {
                    "80" | "8080" => scheme_port == 80,
                    "443" => scheme_port == 443,
                    _ => false,
                }),
            };
            if !ok {
                return Err("unsafe port");
            }
        }
        Ok(())
    }
}

/// `host` is `entry`, or an address inside `entry`'s address or CIDR range.
fn host_matches(host: &str, entry: &str) -> bool {
    if host.eq_ignore_ascii_case(entry) {
        return true;
    }
    let Ok(ip) = host.parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match entry.split_once('/') {
        Some((n, b)) => match (n.parse::<IpAddr>(), b.parse::<u32>()) {
            (Ok(n), Ok(b)) => (n, b),
            _ => return false,
        },
        None => match entry.parse::<IpAddr>() {
            Ok(n) => (n, if n.is_ipv4() { 32 } else { 128 }),
            Err(_) => return false,
        },
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The body as text: Latin-1 when the type says so, else UTF-8 (invalid bytes replaced).
fn decode(content_type: &str, body: &[u8]) -> String {
    let lower = content_type.to_ascii_lowercase();
    if ["iso-8859-1", "latin1", "windows-1252"]
        .iter()
        .any(|c| lower.contains(&format!("charset={c}")))
    {
        return body.iter().map(|&b| b as char).collect();
    }
    String::from_utf8_lossy(body).into_owned()
}

/// `pageTitle` from the first `<title>`, and every `<meta>` with `name`/`property` and
/// `content` (either order), names camel-cased (`og:title` → `ogTitle`); the first value of a
/// name wins, entities are decoded.
pub(crate) fn page_meta(html: &str) -> Vec<(String, String)> {
    let mut metas: Vec<(String, String)> = Vec::new();
    let mut put = |name: String, value: &str| {
        if !name.is_empty() && !metas.iter().any(|(n, _)| *n == name) {
            metas.push((name, unescape(value)));
        }
    };
    let lower = html.to_ascii_lowercase();
    if let Some(start) = lower.find("<title")
        && let Some(open_end) = lower[start..].find('>')
    {
        let text_start = start + open_end + 1;
        if let Some(len) = lower[text_start..].find("</title>") {
            let title = &html[text_start..text_start + len];
            if !title.contains('<') {
                put("pageTitle".into(), title);
            }
        }
    }
    let mut at = 0;
    while let Some(found) = lower[at..].find("<meta") {
        let start = at + found;
        let Some(len) = lower[start..].find('>') else {
            break;
        };
        let tag = &html[start + 5..start + len];
        at = start + len;
        let attrs = attributes(tag);
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let (Some(name), Some(content)) =
            (get("name").or_else(|| get("property")), get("content"))
        {
            put(camel_case(name), content);
        }
    }
    metas.retain(|(n, _)| n != "oembedHtml");
    metas
}

/// The quoted attributes of a tag's inside (`name="v"` or `name='v'`), names lower-cased.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let after = rest[eq + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            rest = after;
            continue;
        };
        let Some(end) = after[1..].find(quote) else {
            break;
        };
        out.push((name, after[1..1 + end].to_string()));
        rest = &after[end + 2..];
    }
    out
}

/// change-case's camelCase: words split at non-alphanumerics and lower→upper steps.
pub(crate) fn camel_case(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        let lower = word.to_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

/// Rocket.Chat keeps OpenGraph, Facebook, Twitter, oEmbed and msapplication tags, descriptions
/// and titles, when not blank.
fn relevant_meta(metas: Vec<(String, String)>) -> Vec<(String, String)> {
    metas
        .into_iter()
        .filter(|(k, v)| {
            let k = k.to_lowercase();
            let prefixed = ["og", "fb", "twitter", "oembed", "msapplication"]
                .iter()
                .any(|p| k.len() > p.len() && k.starts_with(p));
            (prefixed || k.contains("description") || k.contains("title")) && !v.trim().is_empty()
        })
        .collect()
}

/// HTML character references: the common named ones and numeric ones.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fills a message's `urls` with previews.
pub(crate) struct UrlPreviewer;

#[async_trait]
impl Deliverer for UrlPreviewer {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let Some(mid) = payload.get("mid").and_then(Value::as_str) else {
            return Delivery::GiveUp("not a url_preview payload".into());
        };
        let message = match core.store.message_by_id(mid).await {
            Ok(Some(m)) => m,
            Ok(None) => return Delivery::Done,
            Err(e) => return Delivery::Retry(format!("{e:?}")),
        };
        let Some(urls) = message.urls.clone() else {
            return Delivery::Done;
        };
        let mut previews = Vec::new();
        for item in urls.iter().take(MAX_PREVIEWS) {
            let skip = item.get("ignoreParse") == Some(&Value::Bool(true));
            let url = item.get("url").and_then(Value::as_str);
            match url {
                Some(url) if !skip => previews.push(Some(core.preview(url).await)),
                _ => previews.push(None),
            }
        }
        // Read again just before writing: the message may have been edited or deleted.
        let mut message = match core.store.message_by_id(mid).await {
            Ok(Some(m)) => m,
            Ok(None) => return Delivery::Done,
            Err(e) => return Delivery::Retry(format!("{e:?}")),
        };
        if message.urls.as_ref() != Some(&urls) {
            return Delivery::Done;
        }
        let mut changed = false;
        let mut updated = urls;
        for (item, preview) in updated.iter_mut().zip(previews) {
            let (Some((preview, true)), Some(item)) = (preview, item.as_object_mut()) else {
                continue;
            };
            for key in ["meta", "headers"] {
                if let Some(v) = preview.get(key) {
                    item.insert(key.into(), v.clone());
                    changed = true;
                }
            }
        }
        if !changed {
            return Delivery::Done;
        }
        message.urls = Some(updated);
        match core.commit(vec![Change::UpdateMessage(message)]).await {
            Ok(()) => Delivery::Done,
            Err(e) => Delivery::Retry(e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_tags_titles_and_entities() {
        let html = r##"<html><head><TITLE>Tom &amp; Jerry</TITLE>
            <meta property="og:title" content="OG &quot;title&quot;">
            <meta content='An image' name='twitter:image:alt'/>
            <meta name="og:title" content="second is ignored">
            <meta name="viewport" content="width=device-width">
            <meta name="msapplication-TileColor" content="#fff">
            <meta charset="utf-8"><meta name="description" content="  ">
            </head></html>"##;
        let all = page_meta(html);
        let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("pageTitle"), Some("Tom & Jerry"));
        assert_eq!(get("ogTitle"), Some("OG \"title\""));
        assert_eq!(get("twitterImageAlt"), Some("An image"));
        assert_eq!(get("msapplicationTileColor"), Some("#fff"));
        let kept: Vec<String> = relevant_meta(all).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            kept,
            [
                "pageTitle",
                "ogTitle",
                "twitterImageAlt",
                "msapplicationTileColor"
            ]
        );
    }

    #[test]
    fn camel_case_as_change_case() {
        assert_eq!(camel_case("og:image:width"), "ogImageWidth");
        assert_eq!(camel_case("Content-Type"), "contentType");
        assert_eq!(camel_case("description"), "description");
        assert_eq!(camel_case("fb:app_id"), "fbAppId");
    }

    #[test]
    fn links_of_a_message() {
        let md = apogee_domain::markdown::parse(
            "see https://a.example.com/x and [b](https://b.example) and https://a.example.com/x, mailto:x@y.z",
        );
        let urls = message_urls(&md);
        assert_eq!(
            urls,
            [
                json!({"url": "https://a.example.com/x"}),
                json!({"url": "https://b.example"})
            ]
        );
    }

    #[test]
    fn ignored_hosts_match_names_addresses_and_ranges() {
        assert!(host_matches("localhost", "localhost"));
        assert!(host_matches("10.9.8.7", "10.0.0.0/8"));
        assert!(host_matches("127.0.0.1", "127.0.0.1"));
        assert!(!host_matches("11.0.0.1", "10.0.0.0/8"));
        assert!(!host_matches("example.com", "10.0.0.0/8"));
    }

    #[test]
    fn entities() {
        assert_eq!(
            unescape("a &lt;b&gt; &#39;c&#x27; &bogus; &"),
            "a <b> 'c' &bogus; &"
        );
    }
}
