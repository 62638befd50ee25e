//! Links: `[label](url)`, `<url|label>`, `![alt](url)`, bare URLs, e-mail addresses and phone
//! numbers.
//!
//! Bare URLs and e-mail addresses only link when their host ends in a real top-level domain (or
//! is an IP address or `localhost`), which Rocket.Chat checks with the `tldts` library; the same
//! host extraction and checks are reproduced here over an embedded list of top-level domains.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::json;

use super::ast::{Inline, Text, inlines_json, link_json, plain_json, reduce, string, utf16};
use super::chars::{
    is_alpha_digit, is_alpha_numeric_or_mark, is_angle_title_char, is_ascii, is_digit,
    is_domain_forbidden, is_email_special, is_extra, is_markdown_link_extra, is_markdown_url_char,
    is_newline, is_safe, is_space, is_url_char,
};
use super::parser::{Memo, Parser, Res};
use super::tlds::TLDS;

impl Parser<'_> {
    /// `[label](url)` or `<url|label>`, unless already inside a link label.
    pub(super) fn maybe_references(&mut self, p: usize) -> Res<Inline> {
        if self.skip_references {
            return None;
        }
        self.memoized(Memo::References, p, |s| {
            s.skip_references = true;
            let result = s.markdown_link(p).or_else(|| s.angle_link(p));
            s.skip_references = false;
            result
        })
    }

    /// `[label](url)`; an empty label shows the URL.
    fn markdown_link(&mut self, p: usize) -> Res<Inline> {
        let start = self.lit(p, "[")?;
        let end = self.link_title_end(start);
        let q = self.lit(end, "](")?;
        let (href, q) = self.markdown_link_ref(q)?;
        let q = self.lit(q, ")")?;
        let mut title = Vec::new();
        let mut x = start;
        while x < end {
            let (item, r) = self.link_title(x)?;
            title.push(item);
            x = r;
        }
        let label = if title.is_empty() {
            json!([plain_json(&href)])
        } else {
            inlines_json(reduce(title))
        };
        Some((Inline::node(link_json(&href, label)), q))
    }

    /// Where `LinkTitle*` from `p` stops; remembered along the way, so that the labels of all
    /// the `[` of a text are walked once in total.
    fn link_title_end(&mut self, p: usize) -> usize {
        let flags = self.flags();
        let mut path = Vec::new();
        let mut x = p;
        let end = loop {
            if let Some(&end) = self.title_end.get(&(x, flags)) {
                break end;
            }
            path.push(x);
            match self.link_title(x) {
                Some((_, r)) => x = r,
                None => break x,
            }
        };
        for pos in path {
            self.title_end.insert((pos, flags), end);
        }
        end
    }

    /// One piece of a `[label]`: blanks, emphasis, text, or any character that does not end it.
    fn link_title(&mut self, p: usize) -> Res<Inline> {
        self.memoized(Memo::LinkTitle, p, |s| s.link_title_unmemoized(p))
    }

    fn link_title_unmemoized(&mut self, p: usize) -> Res<Inline> {
        if let Some(r) = self.whitespace(p).or_else(|| self.emphasis(p)) {
            return Some(r);
        }
        if let Some(q) = self.run1(p, |c| !is_ascii(c, b"]()*_~ \t\r\n")) {
            return Some((Inline::plain(self.slice(p, q)), q));
        }
        // `](` ends the label, and so does `] [` when another `[…](…)` follows on the line.
        let closes = self.lit(p, "](").is_some_and(|q| !self.at_end(q));
        let next_link = self.lit(p, "] [").is_some_and(|q| {
            let r = self.run(q, |c| c != u16::from(b']'));
            self.lit(r, "](").is_some()
        });
        if closes || next_link || self.at_end(p) {
            return None;
        }
        Some((Inline::plain(self.slice(p, p + 1)), p + 1))
    }

    /// `<url|label>`
    fn angle_link(&mut self, p: usize) -> Res<Inline> {
        let q = self.lit(p, "<")?;
        let (href, q) = self.angle_link_ref(q)?;
        let q = self.lit(q, "|")?;
        let r = self.run1(q, is_angle_title_char)?;
        let s = self.lit(r, ">")?;
        let label = json!([plain_json(self.slice(q, r))]);
        Some((Inline::node(link_json(&href, label)), s))
    }

    /// `![alt](url)`
    pub(super) fn image(&mut self, p: usize) -> Res<Inline> {
        let q = self.lit(p, "![")?;
        let (title, q) = match self.line(q) {
            Some((Inline::Plain(text), r)) => (Some(text), r),
            _ => (None, q),
        };
        let q = self.lit(q, "](")?;
        let (href, q) = self.markdown_link_ref(q)?;
        let q = self.lit(q, ")")?;
        let label = plain_json(title.as_deref().unwrap_or(&href));
        let value = json!({"type": "IMAGE", "value": {"src": plain_json(&href), "label": label}});
        Some((Inline::node(value), q))
    }

    /// The target of `[label](url)`: a URL that may hold balanced parentheses, a `scheme:path`,
    /// or a `+phone` number.
    fn markdown_link_ref(&mut self, p: usize) -> Res<Text> {
        if let Some(head) = self.url_head(p) {
            let q = self.url_tail(head, Self::markdown_url_unit);
            return Some((self.slice(p, q).to_vec(), q));
        }
        if let Some(q) = self.url_scheme(p) {
            let r = self.url_tail(q, Self::markdown_url_unit);
            if r > q {
                return Some((self.slice(p, r).to_vec(), r));
            }
        }
        self.phone_href(p)
    }

    /// The target of `<url|label>`.
    fn angle_link_ref(&mut self, p: usize) -> Res<Text> {
        if let Some(head) = self.url_head(p) {
            let q = self.url_tail(head, Self::url_unit);
            return Some((self.slice(p, q).to_vec(), q));
        }
        if let Some(q) = self.url_scheme(p) {
            let r = self.url_tail(q, Self::url_unit);
            if r > q {
                return Some((self.slice(p, r).to_vec(), r));
            }
        }
        self.phone_href(p)
    }

    fn phone_href(&self, p: usize) -> Res<Text> {
        let (_, number, q) = self.phone(p)?;
        let mut href = utf16("tel:");
        href.extend(number);
        Some((href, q))
    }

    /// `scheme://authority` or a bare host.
    fn url_head(&mut self, p: usize) -> Option<usize> {
        self.url_scheme(p)
            .and_then(|q| self.url_authority(q))
            .or_else(|| self.url_host(p))
    }

    fn url_tail(&self, p: usize, unit: fn(&Self, usize) -> Option<usize>) -> usize {
        let mut q = p;
        while let Some(r) = unit(self, q) {
            q = r;
        }
        q
    }

    /// One character of a URL body, which may not be trailing punctuation.
    fn url_unit(&self, p: usize) -> Option<usize> {
        self.charge(1);
        if self.whitespace(p).is_some() {
            return None;
        }
        let q = self.run1(p, is_extra);
        if q.is_some_and(|q| self.whitespace(q).is_some() || self.eol_or_end(q)) {
            return None;
        }
        self.one(p, is_url_char)
    }

    /// One character (or parenthesised group) of a `[label](url)` target.
    fn markdown_url_unit(&self, p: usize) -> Option<usize> {
        self.charge(1);
        if self.whitespace(p).is_some() || self.is(p, b')') {
            return None;
        }
        let q = self.run1(p, is_markdown_link_extra);
        if q.is_some_and(|q| self.whitespace(q).is_some() || self.eol(q).is_some()) {
            return None;
        }
        if let Some(q) = self.one(p, is_markdown_url_char) {
            return Some(q);
        }
        let mut q = self.lit(p, "(")?;
        while !self.is(q, b')') && self.whitespace(q).is_none() && self.eol(q).is_none() {
            let Some(r) = self.one(q, is_url_char) else {
                break;
            };
            q = r;
        }
        self.lit(q, ")")
    }

    /// `[A-Za-z0-9+-]{1,32} ":"`
    fn url_scheme(&self, p: usize) -> Option<usize> {
        let q = self.repeat(p, 1, 32, |c| is_alpha_digit(c) || is_ascii(c, b"+-"))?;
        self.lit(q, ":")
    }

    /// `"//" userinfo? host`
    fn url_authority(&mut self, p: usize) -> Option<usize> {
        let q = self.lit(p, "//")?;
        let q = self.url_userinfo(q).unwrap_or(q);
        self.url_host(q)
    }

    /// `user(:password)?@`
    fn url_userinfo(&self, p: usize) -> Option<usize> {
        let part = |c: u16| is_alpha_digit(c) || (is_safe(c) && !is_ascii(c, b"@/"));
        let mut q = self.run1(p, part)?;
        if let Some(r) = self.lit(q, ":").and_then(|r| self.run1(r, part)) {
            q = r;
        }
        self.lit(q, "@")
    }

    /// A domain name or a dotted quad, with an optional port.
    fn url_host(&mut self, p: usize) -> Option<usize> {
        let q = self.domain_name(p).or_else(|| self.dotted_quad(p))?;
        Some(
            self.lit(q, ":")
                .and_then(|r| self.run1(r, is_digit))
                .unwrap_or(q),
        )
    }

    fn dotted_quad(&self, p: usize) -> Option<usize> {
        let mut q = self.run1(p, is_digit)?;
        for _ in 0..3 {
            q = self.run1(self.lit(q, ".")?, is_digit)?;
        }
        Some(q)
    }

    /// `"localhost" / label ("." char label*)+`, not starting with `_`.
    pub(super) fn domain_name(&mut self, p: usize) -> Option<usize> {
        if let Some(q) = self.lit(p, "localhost") {
            return Some(q);
        }
        if self.is(p, b'_') {
            return None;
        }
        let mut q = self.domain_label(p)?;
        let mut parts = 0;
        while let Some(r) = self.lit(q, ".").and_then(|r| self.domain_char(r)) {
            q = r;
            while let Some(s) = self.domain_label(q) {
                q = s;
            }
            parts += 1;
        }
        (parts > 0).then_some(q)
    }

    /// `char+ ("-" char+)*`
    fn domain_label(&mut self, p: usize) -> Option<usize> {
        let mut q = self.domain_chars(p)?;
        while let Some(r) = self.lit(q, "-").and_then(|r| self.domain_chars(r)) {
            q = r;
        }
        Some(q)
    }

    /// `DomainChar+`, remembered for every position walked through.
    fn domain_chars(&mut self, p: usize) -> Option<usize> {
        let mut path = Vec::new();
        let mut x = p;
        let end = loop {
            if let Some(&end) = self.domain_run_end.get(&x) {
                break end;
            }
            path.push(x);
            match self.domain_char(x) {
                Some(r) => x = r,
                None => break x,
            }
        };
        for pos in path {
            self.domain_run_end.insert(pos, end);
        }
        (end > p).then_some(end)
    }

    /// `DomainChar`: a letter or digit, or any character that is no punctuation, blank or
    /// URL delimiter. As in the grammar, `_` and `-` take the following character with them.
    fn domain_char(&self, p: usize) -> Option<usize> {
        self.charge(1);
        let c = self.at(p)?;
        if is_alpha_digit(c) {
            return Some(p + 1);
        }
        if is_extra(c) {
            return None;
        }
        let q = if is_ascii(c, b"_-") {
            p + 1
        } else if is_safe(c) {
            return None;
        } else {
            p
        };
        let d = self.at(q)?;
        if is_newline(d) || is_space(d) || is_domain_forbidden(d) {
            return None;
        }
        Some(q + 1)
    }

    /// A bare URL, linked when its host is real.
    pub(super) fn autolinked_url(&mut self, p: usize) -> Res<Inline> {
        let head = self
            .url_scheme(p)
            .and_then(|q| self.url_authority(q))
            .or_else(|| self.url_host(p))?;
        let mut q = head;
        while let Some(r) = self.autolink_unit(q) {
            q = r;
        }
        let src = string(self.slice(p, q));
        Some((auto_link(&src, &self.opts.custom_domains), q))
    }

    /// A character of a bare URL: trailing punctuation before a blank or the end is left out.
    fn autolink_unit(&self, p: usize) -> Option<usize> {
        self.charge(1);
        let c = self.at(p)?;
        if !is_space(c) && !is_newline(c) && !is_extra(c) {
            return Some(p + 1);
        }
        let q = self.run(p, is_extra);
        let ends = self.whitespace(q).is_some() || self.eol_or_end(q);
        (!ends).then_some(p + 1)
    }

    /// `mailto:`? `local@domain`, linked when the domain is real.
    pub(super) fn autolinked_email(&mut self, p: usize) -> Res<Inline> {
        let start = self.lit(p, "mailto:").unwrap_or(p);
        let q = self.email_local_part(start)?;
        let q = self.lit(q, "@")?;
        let q = self.domain_name(q)?;
        let address = string(self.slice(start, q));
        Some((auto_email(&address), q))
    }

    /// `(chars specials*)+ ("." (chars specials*)+)*`
    fn email_local_part(&self, p: usize) -> Option<usize> {
        let word = |s: &Self, mut q: usize| {
            let start = q;
            while let Some(r) = s.run1(q, is_alpha_numeric_or_mark) {
                q = s.run(r, is_email_special);
            }
            (q > start).then_some(q)
        };
        let mut q = word(self, p)?;
        while let Some(r) = self.lit(q, ".").and_then(|r| word(self, r)) {
            q = r;
        }
        Some(q)
    }

    /// `+55 11…` numbers of at least five digits link to `tel:`.
    pub(super) fn autolinked_phone(&self, p: usize) -> Res<Inline> {
        let (text, number, q) = self.phone(p)?;
        if number.len() < 5 {
            return Some((Inline::Plain(text), q));
        }
        let mut href = utf16("tel:");
        href.extend(number);
        let label = json!([plain_json(&text)]);
        Some((Inline::node(link_json(&href, label)), q))
    }

    /// `"+" number`: the text typed, the digits, and the end.
    fn phone(&self, p: usize) -> Option<(Text, Text, usize)> {
        let q = self.lit(p, "+")?;
        let (digits, r) = self.phone_number(q)?;
        Some((self.slice(p, r).to_vec(), digits, r))
    }

    /// `prefix "-" digits / prefix digits "-" digits / prefix digits / digits`
    fn phone_number(&self, p: usize) -> Option<(Text, usize)> {
        let join = |parts: &[(usize, usize)]| -> Text {
            parts
                .iter()
                .flat_map(|&(a, b)| self.slice(a, b).iter().copied())
                .collect()
        };
        if let Some((prefix, q)) = self.phone_prefix(p) {
            if let Some(r) = self.lit(q, "-")
                && let Some(s) = self.run1(r, is_digit)
            {
                return Some((join(&[prefix, (r, s)]), s));
            }
            if let Some(r) = self.run1(q, is_digit) {
                if let Some(s) = self.lit(r, "-")
                    && let Some(t) = self.run1(s, is_digit)
                {
                    return Some((join(&[prefix, (q, r), (s, t)]), t));
                }
                return Some((join(&[prefix, (q, r)]), r));
            }
        }
        let q = self.run1(p, is_digit)?;
        Some((self.slice(p, q).to_vec(), q))
    }

    /// `digits` or `(digits)`: the digits range and the end.
    fn phone_prefix(&self, p: usize) -> Option<((usize, usize), usize)> {
        if let Some(q) = self.run1(p, is_digit) {
            return Some(((p, q), q));
        }
        let q = self.lit(p, "(")?;
        let r = self.run1(q, is_digit)?;
        Some(((q, r), self.lit(r, ")")?))
    }
}

/// Rocket.Chat's `autoLink`: a link when the host is a public domain, an IP or `localhost`
/// (or a custom domain), else plain text. Hosts without a scheme get `//`.
fn auto_link(src: &str, custom_domains: &[String]) -> Inline {
    let Some(host) = extract_hostname(src) else {
        return Inline::plain_str(src);
    };
    let valid_host = |h: &str| {
        std::iter::once("localhost")
            .chain(custom_domains.iter().map(String::as_str))
            .any(|v| h == v || h.strip_suffix(v).is_some_and(|rest| rest.ends_with('.')))
    };
    let linkable = is_ip(&host)
        || (is_valid_hostname(&host) && (has_public_suffix(&host) || valid_host(&host)));
    if !linkable {
        return Inline::plain_str(src);
    }
    let href = if is_absolute(src) {
        src.to_string()
    } else {
        format!("//{src}")
    };
    Inline::node(link_json(&utf16(&href), json!([plain_json(&utf16(src))])))
}

/// Rocket.Chat's `autoEmail`: a `mailto:` link when the domain is public.
fn auto_email(address: &str) -> Inline {
    let href = format!("mailto:{address}");
    let linkable = extract_hostname(&href)
        .is_some_and(|host| is_valid_hostname(&host) && has_public_suffix(&host));
    if !linkable {
        return Inline::plain_str(address);
    }
    Inline::node(link_json(
        &utf16(&href),
        json!([plain_json(&utf16(address))]),
    ))
}

/// `URL.canParse(src)`, `//…` or `scheme://…`: the link target can be used as typed.
fn is_absolute(src: &str) -> bool {
    let bytes = src.as_bytes();
    let scheme_len = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.'))
        .unwrap_or(bytes.len());
    let has_scheme =
        scheme_len > 0 && bytes[0].is_ascii_alphabetic() && bytes.get(scheme_len) == Some(&b':');
    has_scheme || src.starts_with("//")
}

/// The host part of a URL, as `tldts` extracts it (lower-cased, without user, port or dots
/// at the end). `None` for URLs it refuses.
fn extract_hostname(url: &str) -> Option<String> {
    let units: Vec<u16> = url.encode_utf16().collect();
    if is_valid_hostname(url) {
        let end = trim_trailing_dots(&units, 0, units.len());
        return Some(string(&units[..end]));
    }
    if url.starts_with("data:") {
        return None;
    }
    let mut start = 0;
    let mut end = units.len();
    while start < end && units[start] <= 32 {
        start += 1;
    }
    while end > start + 1 && units[end - 1] <= 32 {
        end -= 1;
    }
    if units.get(start) == Some(&0x2F) && units.get(start + 1) == Some(&0x2F) {
        start += 2;
    } else if let Some(protocol_end) = find(&units[start..], &[0x3A, 0x2F]).map(|i| i + start) {
        let valid_protocol = units[start..protocol_end]
            .iter()
            .all(|&c| matches!(c | 32, 0x61..=0x7A | 0x30..=0x39 | 0x2E | 0x2D | 0x2B));
        if !valid_protocol {
            return None;
        }
        start = protocol_end + 2;
        while units.get(start) == Some(&0x2F) {
            start += 1;
        }
    }
    let (mut at, mut bracket, mut colon, mut has_upper) = (None, None, None, false);
    for (i, &c) in units.iter().enumerate().take(end).skip(start) {
        match c {
            0x23 | 0x2F | 0x3F => {
                end = i;
                break;
            }
            0x40 => at = Some(i),
            0x5D => bracket = Some(i),
            0x3A => colon = Some(i),
            0x41..=0x5A => has_upper = true,
            _ => {}
        }
    }
    if let Some(i) = at
        && i > start
        && i < end
    {
        start = i + 1;
    }
    if units.get(start) == Some(&0x5B) {
        let close = bracket?;
        return Some(string(units.get(start + 1..close)?).to_lowercase());
    }
    if let Some(i) = colon
        && i > start
        && i < end
    {
        end = i;
    }
    let end = trim_trailing_dots(&units, start, end);
    let host = string(&units[start..end]);
    // Only ASCII capitals make tldts lower-case the host.
    Some(if has_upper { host.to_lowercase() } else { host })
}

fn trim_trailing_dots(units: &[u16], start: usize, mut end: usize) -> usize {
    while end > start + 1 && units[end - 1] == 0x2E {
        end -= 1;
    }
    end
}

fn find(haystack: &[u16], needle: &[u16]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `tldts`' shallow hostname check: allowed characters and label lengths.
fn is_valid_hostname(host: &str) -> bool {
    let units: Vec<u16> = host.encode_utf16().collect();
    let valid_ascii = |c: u16| (0x61..=0x7A).contains(&c) || (0x30..=0x39).contains(&c) || c > 127;
    let Some(&first) = units.first() else {
        return false;
    };
    if units.len() > 255 || !(valid_ascii(first) || first == 0x2E || first == 0x5F) {
        return false;
    }
    let mut last_dot: isize = -1;
    let mut last: u16 = 0;
    for (i, &c) in units.iter().enumerate() {
        if c == 0x2E {
            if i as isize - last_dot > 64 || last == 0x2E || last == 0x2D || last == 0x5F {
                return false;
            }
            last_dot = i as isize;
        } else if !(valid_ascii(c) || c == 0x2D || c == 0x5F) {
            return false;
        }
        last = c;
    }
    (units.len() as isize - last_dot - 1) <= 63 && last != 0x2D
}

/// `tldts`' IP address guess.
fn is_ip(host: &str) -> bool {
    let bytes = host.as_bytes();
    let ipv4 = (7..=15).contains(&bytes.len())
        && bytes.iter().all(|&b| b == b'.' || b.is_ascii_digit())
        && bytes.iter().filter(|&&b| b == b'.').count() == 3
        && !host.starts_with('.')
        && !host.ends_with('.');
    let inner = host.strip_prefix('[').unwrap_or(host);
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    let ipv6 = bytes.len() >= 3
        && inner.len() <= 39
        && inner.contains(':')
        && inner.bytes().all(|b| {
            b == b':' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b.is_ascii_uppercase()
        });
    ipv4 || ipv6
}

/// The host's last label is a top-level domain of the Public Suffix List (`co.za` and the like
/// for `za`, which has no rule of its own).
fn has_public_suffix(host: &str) -> bool {
    let mut labels = host.rsplit('.');
    let Some(tld) = labels.next() else {
        return false;
    };
    if tld == "za" {
        const ZA: &[&str] = &[
            "ac", "agric", "alt", "co", "edu", "gov", "grondar", "law", "mil", "net", "ngo", "nic",
            "nis", "nom", "org", "school", "tm", "web",
        ];
        return labels.next().is_some_and(|second| ZA.contains(&second));
    }
    tlds().contains(tld)
}

fn tlds() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| TLDS.split_whitespace().collect())
}
