//! Message text between Rocket.Chat and Matrix: a message's `md` tree rendered as the HTML of
//! `formatted_body` (`org.matrix.custom.html`), and a remote `formatted_body` read back into
//! Rocket.Chat markdown text.
//!
//! Going out, the HTML is built from the parsed tree, never from the raw text: every text is
//! escaped and only the tags of the Matrix specification's suggested set are produced, so the
//! output is sanitised by construction. Coming in, remote HTML is never kept or shown as HTML:
//! it is tokenized (html5gum, WHATWG tokenizer) and only its meaning is kept as markdown —
//! emphasis, code, links with `http(s)`/`mailto` targets, quotes, lists, user pills —, the
//! rest as plain text; `mx-reply` fallbacks and scripts/styles are dropped with their content.

use html5gum::{Token, Tokenizer};
use serde_json::Value;

/// Where Matrix user pills point to.
pub const MATRIX_TO: &str = "https://matrix.to/#/";

/// The `formatted_body` of a message's `md` tree. `pill` maps a mentioned name as written after
/// `@` (`bob`, `alice:example.org`) to the Matrix user id to link, or `None` to leave it text.
pub fn to_html(md: &Value, pill: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let blocks = md.as_array().map(Vec::as_slice).unwrap_or_default();
    for block in blocks {
        block_html(block, pill, &mut out);
    }
    out
}

fn kind(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

fn list(node: &Value) -> &[Value] {
    node.get("value")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn plain(node: &Value) -> &str {
    node.get("value")
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn block_html(node: &Value, pill: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    match kind(node) {
        "PARAGRAPH" => wrap("p", list(node), pill, out),
        "HEADING" => {
            let level = node.get("level").and_then(Value::as_u64).unwrap_or(1);
            wrap(&format!("h{}", level.clamp(1, 6)), list(node), pill, out);
        }
        "QUOTE" | "SPOILER_BLOCK" => {
            out.push_str("<blockquote>");
            for b in list(node) {
                block_html(b, pill, out);
            }
            out.push_str("</blockquote>");
        }
        "CODE" => {
            let language = node.get("language").and_then(Value::as_str).unwrap_or("");
            out.push_str("<pre><code");
            if !language.is_empty() && language != "none" {
                out.push_str(" class=\"language-");
                escape_into(language, out);
                out.push('"');
            }
            out.push('>');
            let lines: Vec<&str> = list(node).iter().map(plain).collect();
            escape_into(&lines.join("\n"), out);
            out.push_str("</code></pre>");
        }
        "UNORDERED_LIST" | "TASKS" => list_html("ul", list(node), pill, out),
        "ORDERED_LIST" => list_html("ol", list(node), pill, out),
        "LINE_BREAK" => out.push_str("<br>"),
        "HORIZONTAL_RULE" => out.push_str("<hr>"),
        "BIG_EMOJI" => inlines_html(list(node), pill, out),
        "KATEX" => {
            out.push_str("<pre><code>");
            escape_into(node.get("value").and_then(Value::as_str).unwrap_or(""), out);
            out.push_str("</code></pre>");
        }
        "TABLE" => table_html(node, pill, out),
        _ => inline_html(node, pill, out),
    }
}

fn wrap(tag: &str, items: &[Value], pill: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    out.push_str(&format!("<{tag}>"));
    inlines_html(items, pill, out);
    out.push_str(&format!("</{tag}>"));
}

fn list_html(tag: &str, items: &[Value], pill: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    out.push_str(&format!("<{tag}>"));
    for item in items {
        out.push_str("<li>");
        if kind(item) == "TASK" {
            let done = item.get("status").and_then(Value::as_bool).unwrap_or(false);
            out.push_str(if done { "☑ " } else { "☐ " });
        }
        inlines_html(list(item), pill, out);
        out.push_str("</li>");
    }
    out.push_str(&format!("</{tag}>"));
}

fn table_html(node: &Value, pill: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    let row = |r: &Value, cell: &str, out: &mut String| {
        out.push_str("<tr>");
        for c in list(r) {
            out.push_str(&format!("<{cell}>"));
            inlines_html(list(c), pill, out);
            out.push_str(&format!("</{cell}>"));
        }
        out.push_str("</tr>");
    };
    let value = node.get("value").cloned().unwrap_or(Value::Null);
    out.push_str("<table>");
    if let Some(header) = value.get("header") {
        out.push_str("<thead>");
        row(header, "th", out);
        out.push_str("</thead>");
    }
    out.push_str("<tbody>");
    for r in value
        .get("rows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        row(r, "td", out);
    }
    out.push_str("</tbody></table>");
}

fn inlines_html(items: &[Value], pill: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    for item in items {
        inline_html(item, pill, out);
    }
}

fn inline_html(node: &Value, pill: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    match kind(node) {
        "PLAIN_TEXT" => escape_into(node.get("value").and_then(Value::as_str).unwrap_or(""), out),
        "BOLD" => wrap("strong", list(node), pill, out),
        "ITALIC" => wrap("em", list(node), pill, out),
        "STRIKE" => wrap("del", list(node), pill, out),
        "SPOILER" => {
            out.push_str("<span data-mx-spoiler>");
            inlines_html(list(node), pill, out);
            out.push_str("</span>");
        }
        "INLINE_CODE" => {
            out.push_str("<code>");
            escape_into(plain(node), out);
            out.push_str("</code>");
        }
        "INLINE_KATEX" => {
            out.push_str("<code>");
            escape_into(node.get("value").and_then(Value::as_str).unwrap_or(""), out);
            out.push_str("</code>");
        }
        "LINK" | "IMAGE" => {
            let value = node.get("value").cloned().unwrap_or(Value::Null);
            let src = value
                .get("src")
                .and_then(|s| s.get("value"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let label: Vec<Value> = match value.get("label") {
                Some(Value::Array(items)) => items.clone(),
                Some(one @ Value::Object(_)) => vec![one.clone()],
                _ => Vec::new(),
            };
            if safe_href(src) {
                out.push_str("<a href=\"");
                escape_into(src, out);
                out.push_str("\">");
                if label.is_empty() {
                    escape_into(src, out);
                } else {
                    inlines_html(&label, pill, out);
                }
                out.push_str("</a>");
            } else if label.is_empty() {
                escape_into(src, out);
            } else {
                inlines_html(&label, pill, out);
            }
        }
        "MENTION_USER" => {
            let name = plain(node);
            match pill(name) {
                Some(user_id) => {
                    out.push_str("<a href=\"");
                    escape_into(&format!("{MATRIX_TO}{user_id}"), out);
                    out.push_str("\">");
                    escape_into(&format!("@{name}"), out);
                    out.push_str("</a>");
                }
                None => escape_into(&format!("@{name}"), out),
            }
        }
        "MENTION_CHANNEL" => escape_into(&format!("#{}", plain(node)), out),
        "EMOJI" => match node.get("unicode").and_then(Value::as_str) {
            Some(u) => escape_into(u, out),
            None => escape_into(plain(node), out),
        },
        "COLOR" => {
            let c = node.get("value").cloned().unwrap_or(Value::Null);
            let part = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0).min(255);
            out.push_str(&format!(
                "color:#{:02x}{:02x}{:02x}",
                part("r"),
                part("g"),
                part("b")
            ));
        }
        "TIMESTAMP" => {
            let seconds = node
                .get("value")
                .and_then(|v| v.get("timestamp"))
                .map(|t| t.to_string())
                .unwrap_or_default();
            escape_into(&format!("<t:{}>", seconds.trim_matches('"')), out);
        }
        "LINE_BREAK" => out.push_str("<br>"),
        // Anything newer than this renderer: its text, never its structure.
        _ => {
            if let Some(items) = node.get("value").and_then(Value::as_array) {
                inlines_html(items, pill, out);
            } else if let Some(text) = node.get("value").and_then(Value::as_str) {
                escape_into(text, out);
            }
        }
    }
}

/// Only web and mail links are links; `javascript:` and friends stay text.
fn safe_href(href: &str) -> bool {
    let lower = href.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// The Matrix user a `https://matrix.to/#/@user:server` link points to.
pub fn pill_target(href: &str) -> Option<String> {
    let rest = href.strip_prefix(MATRIX_TO)?;
    let id = rest.split(['?', '/']).next()?;
    let id = percent_decode(id);
    (id.starts_with('@') && id.contains(':')).then_some(id)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What an open element turns into when it closes.
enum Open {
    /// A wrapper around its text (`*bold*`, `` `code` ``).
    Wrap(&'static str),
    /// A link to keep (`[label](href)`) or a pill (its text replaced by the mention).
    Link(String),
    Pill(String),
    Quote,
    Pre,
    /// A list item, with its marker.
    Item(String),
    /// A block-level element: its text on lines of its own.
    Block,
    /// A heading of this level.
    Heading(usize),
    /// Content that is dropped (`mx-reply`, `script`, `style`, …).
    Drop,
    /// Everything else: only its text.
    Transparent,
}

struct Frame {
    tag: String,
    open: Open,
    text: String,
}

/// How deeply elements are read as formatting. Each level scans the open ones and copies its
/// text into its parent, so reading cost grows with the square of the depth: deeper elements
/// (the Matrix spec suggests clients stop at 100) count as text of the deepest one read.
const MAX_DEPTH: usize = 100;

/// Rocket.Chat markdown for a remote `formatted_body`. `mention` turns a pill's Matrix user
/// id into the text that mentions that user here (`@bob`, `@alice:example.org`).
pub fn from_html(html: &str, mention: &dyn Fn(&str) -> String) -> String {
    let mut stack = vec![Frame {
        tag: String::new(),
        open: Open::Transparent,
        text: String::new(),
    }];
    // Ordered lists count their items.
    let mut counters: Vec<Option<usize>> = Vec::new();
    // Elements opened beyond MAX_DEPTH and not closed yet: the next as many end tags are theirs.
    let mut flattened = 0usize;
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) => {
                if stack.len() > MAX_DEPTH && !tag.self_closing {
                    flattened += 1;
                    continue;
                }
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                let attr = |k: &str| {
                    tag.attributes
                        .get(k.as_bytes())
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                if stack.iter().any(|f| matches!(f.open, Open::Drop)) && !tag.self_closing {
                    stack.push(Frame {
                        tag: name,
                        open: Open::Drop,
                        text: String::new(),
                    });
                    continue;
                }
                let top = &mut stack.last_mut().expect("root frame").text;
                match name.as_str() {
                    "br" => {
                        top.push('\n');
                        continue;
                    }
                    "hr" => {
                        top.push_str("\n---\n");
                        continue;
                    }
                    "img" => {
                        top.push_str(&attr("alt").unwrap_or_default());
                        continue;
                    }
                    _ if tag.self_closing => continue,
                    _ => {}
                }
                let open = match name.as_str() {
                    "b" | "strong" => Open::Wrap("*"),
                    "i" | "em" => Open::Wrap("_"),
                    "del" | "s" | "strike" => Open::Wrap("~"),
                    "code" if !stack.iter().any(|f| matches!(f.open, Open::Pre)) => Open::Wrap("`"),
                    "a" => match attr("href") {
                        Some(href) => match pill_target(&href) {
                            Some(user) => Open::Pill(user),
                            None if safe_href(&href) => Open::Link(href),
                            None => Open::Transparent,
                        },
                        None => Open::Transparent,
                    },
                    "blockquote" => Open::Quote,
                    "pre" => Open::Pre,
                    "ul" => {
                        counters.push(None);
                        Open::Block
                    }
                    "ol" => {
                        let start = attr("start").and_then(|s| s.parse().ok()).unwrap_or(1);
                        counters.push(Some(start));
                        Open::Block
                    }
                    "li" => {
                        let marker = match counters.last_mut() {
                            Some(Some(n)) => {
                                *n += 1;
                                format!("{}. ", *n - 1)
                            }
                            _ => "- ".to_string(),
                        };
                        Open::Item(marker)
                    }
                    "p" | "div" | "table" | "tr" | "thead" | "tbody" | "details" => Open::Block,
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        Open::Heading(usize::from(name.as_bytes()[1] - b'0'))
                    }
                    "mx-reply" | "script" | "style" | "head" | "title" | "iframe" | "object"
                    | "template" | "svg" | "math" => Open::Drop,
                    _ => Open::Transparent,
                };
                stack.push(Frame {
                    tag: name,
                    open,
                    text: String::new(),
                });
            }
            Token::EndTag(tag) => {
                if flattened > 0 {
                    flattened -= 1;
                    continue;
                }
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                // A stray end tag closes nothing; a mis-nested one closes what it encloses.
                if let Some(at) = stack.iter().rposition(|f| f.tag == name)
                    && at > 0
                {
                    while stack.len() > at {
                        close(&mut stack, &mut counters, mention);
                    }
                }
            }
            Token::String(text) => {
                let frame = stack.last_mut().expect("root frame");
                if !matches!(frame.open, Open::Drop) {
                    frame.text.push_str(&String::from_utf8_lossy(&text));
                }
            }
            _ => {}
        }
    }
    while stack.len() > 1 {
        close(&mut stack, &mut counters, mention);
    }
    let text = stack.pop().map(|f| f.text).unwrap_or_default();
    tidy(&text)
}

fn close(
    stack: &mut Vec<Frame>,
    counters: &mut Vec<Option<usize>>,
    mention: &dyn Fn(&str) -> String,
) {
    let frame = stack.pop().expect("a frame to close");
    let parent = &mut stack.last_mut().expect("root frame").text;
    match frame.open {
        Open::Wrap(mark) => {
            let inner = frame.text.trim();
            if !inner.is_empty() {
                parent.push_str(mark);
                parent.push_str(inner);
                parent.push_str(mark);
            }
        }
        Open::Link(href) => {
            let label = frame.text.trim();
            if label.is_empty() || label == href {
                parent.push_str(&href);
            } else {
                parent.push_str(&format!("[{label}]({href})"));
            }
        }
        Open::Pill(user) => parent.push_str(&mention(&user)),
        Open::Quote => {
            block_break(parent);
            for line in tidy(&frame.text).lines() {
                parent.push_str("> ");
                parent.push_str(line);
                parent.push('\n');
            }
        }
        Open::Pre => {
            block_break(parent);
            parent.push_str("```\n");
            parent.push_str(frame.text.trim_end_matches('\n'));
            parent.push_str("\n```\n");
        }
        Open::Item(marker) => {
            if !parent.is_empty() && !parent.ends_with('\n') {
                parent.push('\n');
            }
            parent.push_str(&marker);
            parent.push_str(frame.text.trim());
            parent.push('\n');
        }
        Open::Heading(level) => {
            block_break(parent);
            parent.push_str(&"#".repeat(level.min(4)));
            parent.push(' ');
            parent.push_str(frame.text.trim());
            parent.push('\n');
        }
        Open::Block => {
            if frame.tag == "ul" || frame.tag == "ol" {
                counters.pop();
            }
            block_break(parent);
            parent.push_str(frame.text.trim_matches('\n'));
            parent.push('\n');
        }
        Open::Drop => {}
        Open::Transparent => parent.push_str(&frame.text),
    }
}

/// Starts a new line unless the text is empty or already on one.
fn block_break(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

/// No run of blank lines, no blank start or end.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines() {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown;

    #[test]
    fn nesting_beyond_the_depth_cap_is_read_as_text() {
        const DEEP: usize = 100_000;
        // Quotes: MAX_DEPTH of them are kept; the text inside all of them survives.
        let html = format!(
            "{}deep{} after",
            "<blockquote>".repeat(DEEP),
            "</blockquote>".repeat(DEEP)
        );
        let md = from_html(&html, &mention);
        let (quoted, after) = md.split_once('\n').expect("the quote, then the rest");
        assert_eq!(quoted, format!("{}deep", "> ".repeat(MAX_DEPTH)));
        assert_eq!(after.trim(), "after");

        // Emphasis: the deepest kept level wraps the flattened rest; the end tags of the
        // flattened elements close nothing that was kept, so the tail is plain text.
        let html = format!("{}x{}tail", "<b>".repeat(DEEP), "</b>".repeat(DEEP));
        let md = from_html(&html, &mention);
        assert_eq!(
            md,
            format!("{}x{}tail", "*".repeat(MAX_DEPTH), "*".repeat(MAX_DEPTH))
        );
    }

    fn pills(name: &str) -> Option<String> {
        match name {
            "bob" => Some("@bob:us.test".into()),
            n if n.contains(':') => Some(format!("@{n}")),
            _ => None,
        }
    }

    fn out(text: &str) -> String {
        to_html(&markdown::parse(text), &pills)
    }

    fn mention(user: &str) -> String {
        match user.strip_suffix(":us.test") {
            Some(local) => local.to_string(),
            None => user.to_string(),
        }
    }

    #[test]
    fn markdown_goes_out_as_escaped_html() {
        assert_eq!(out("hello *world*"), "<p>hello <strong>world</strong></p>");
        assert_eq!(
            out("_it_ ~gone~ `x<y>`"),
            "<p><em>it</em> <del>gone</del> <code>x&lt;y&gt;</code></p>"
        );
        assert_eq!(
            out("<script>alert(1)</script> & \"q\""),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;</p>"
        );
        assert_eq!(
            out("[site](https://example.org/?a=1&b=2)"),
            "<p><a href=\"https://example.org/?a=1&amp;b=2\">site</a></p>"
        );
        assert_eq!(out("> quoted"), "<blockquote><p>quoted</p></blockquote>");
        assert_eq!(
            out("```rust\nfn main() {}\n```"),
            "<pre><code class=\"language-rust\">fn main() {}</code></pre>"
        );
        assert_eq!(out("- a\n- b"), "<ul><li>a</li><li>b</li></ul>");
    }

    #[test]
    fn mentions_become_pills() {
        assert_eq!(
            out("hi @bob and @alice:remote.test and @nobody"),
            "<p>hi <a href=\"https://matrix.to/#/@bob:us.test\">@bob</a> and \
             <a href=\"https://matrix.to/#/@alice:remote.test\">@alice:remote.test</a> and @nobody</p>"
        );
    }

    #[test]
    fn html_comes_in_as_markdown() {
        let read = |h: &str| from_html(h, &mention);
        assert_eq!(read("<b>bold</b> and <em>it</em>"), "*bold* and _it_");
        assert_eq!(read("<del>x</del> <code>a&lt;b</code>"), "~x~ `a<b`");
        assert_eq!(
            read("<a href=\"https://example.org\">site</a> <a href=\"javascript:alert(1)\">x</a>"),
            "[site](https://example.org) x"
        );
        assert_eq!(
            read(
                "hi <a href=\"https://matrix.to/#/@bob:us.test\">Bob</a>, \
                  <a href=\"https://matrix.to/#/%40alice%3Aremote.test\">Alice</a>"
            ),
            "hi @bob, @alice:remote.test"
        );
        assert_eq!(
            read("<mx-reply><blockquote>old <b>stuff</b></blockquote></mx-reply>answer"),
            "answer"
        );
        assert_eq!(read("<p>one</p><p>two</p>"), "one\ntwo");
        assert_eq!(
            read("<blockquote><p>q1</p><p>q2</p></blockquote>after"),
            "> q1\n> q2\nafter"
        );
        assert_eq!(read("<ol><li>a</li><li>b</li></ol>"), "1. a\n2. b");
        assert_eq!(read("<ul><li>a</li><li>b</li></ul>"), "- a\n- b");
        assert_eq!(read("<pre><code>x\n  y</code></pre>"), "```\nx\n  y\n```");
        assert_eq!(read("<script>steal()</script><style>p{}</style>ok"), "ok");
        assert_eq!(read("<img src=x onerror=alert(1) alt=\"pic\">"), "pic");
        assert_eq!(read("a<br>b"), "a\nb");
    }

    #[test]
    fn broken_html_is_read_without_failing() {
        let read = |h: &str| from_html(h, &mention);
        assert_eq!(read("<b>unclosed <i>both"), "*unclosed _both_*");
        assert_eq!(read("</b>stray</p> end"), "stray end");
        assert_eq!(read("<b><i>mis</b>nested</i>"), "*_mis_*nested");
        assert_eq!(read("<<<>>>&&&"), "<<<>>>&&&");
        assert_eq!(read(""), "");
    }
}
