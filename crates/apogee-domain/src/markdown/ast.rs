//! Inline nodes while they are being built, and the JSON shapes of the finished tree.
//!
//! Plain text stays UTF-16 until a container is finished: Rocket.Chat's rules may cut a
//! surrogate pair in two plain pieces that `reducePlainTexts` glues back together.

use std::rc::Rc;

use serde_json::{Map, Value, json};

/// UTF-16 text, as the grammar sees it.
pub(super) type Text = Vec<u16>;

/// An inline node of the tree.
#[derive(Debug, Clone)]
pub(super) enum Inline {
    /// `PLAIN_TEXT`; neighbours are merged by [`reduce`].
    Plain(Text),
    /// A `:shortcode:` emoji or an emoticon: `value` is the text typed, `short_code` its name.
    Emoji { value: Text, short_code: Text },
    /// An emoji typed as a unicode character.
    UnicodeEmoji(Text),
    /// Several nodes a single rule produced (some italic rules do); flattened by [`reduce`].
    Group(Vec<Inline>),
    /// Any other finished node; shared, as remembered results are handed out again.
    Node(Rc<Value>),
}

impl Inline {
    pub(super) fn node(value: Value) -> Self {
        Inline::Node(Rc::new(value))
    }

    pub(super) fn plain(text: &[u16]) -> Self {
        Inline::Plain(text.to_vec())
    }

    pub(super) fn plain_str(text: &str) -> Self {
        Inline::Plain(text.encode_utf16().collect())
    }

    fn is_emoji(&self) -> bool {
        matches!(self, Inline::Emoji { .. } | Inline::UnicodeEmoji(_))
    }

    /// A plain text that is more than whitespace (the test `joinEmoji` uses).
    fn is_wordy_plain(&self) -> bool {
        match self {
            Inline::Plain(text) => !js_trim(&string(text)).is_empty(),
            _ => false,
        }
    }

    pub(super) fn into_json(self) -> Value {
        match self {
            Inline::Plain(text) => plain_json(&text),
            Inline::Emoji { value, short_code } => {
                json!({"type": "EMOJI", "value": plain_json(&value), "shortCode": string(&short_code)})
            }
            Inline::UnicodeEmoji(text) => json!({"type": "EMOJI", "unicode": string(&text)}),
            Inline::Group(items) => {
                Value::Array(items.into_iter().map(Inline::into_json).collect())
            }
            Inline::Node(value) => Rc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone()),
        }
    }
}

/// Rocket.Chat's `reducePlainTexts`: flattens groups, turns emoji that touch a word or another
/// emoji back into their text (`joinEmoji`), then merges neighbouring plain texts.
pub(super) fn reduce(items: Vec<Inline>) -> Vec<Inline> {
    let mut flat = Vec::with_capacity(items.len());
    flatten(items, &mut flat);

    // joinEmoji looks at the original neighbours, before anything is merged.
    let to_text: Vec<bool> = (0..flat.len())
        .map(|i| emoji_becomes_text(&flat, i))
        .collect();

    let mut out: Vec<Inline> = Vec::with_capacity(flat.len());
    for (item, becomes_text) in flat.into_iter().zip(to_text) {
        let item = if becomes_text {
            emoji_as_text(item)
        } else {
            item
        };
        match (out.last_mut(), item) {
            (Some(Inline::Plain(prev)), Inline::Plain(text)) => prev.extend_from_slice(&text),
            (_, item) => out.push(item),
        }
    }
    out
}

fn flatten(items: Vec<Inline>, out: &mut Vec<Inline>) {
    for item in items {
        match item {
            Inline::Group(inner) => flatten(inner, out),
            other => out.push(other),
        }
    }
}

fn emoji_becomes_text(items: &[Inline], i: usize) -> bool {
    if !matches!(items[i], Inline::Emoji { .. }) {
        return false;
    }
    let prev = i.checked_sub(1).map(|j| &items[j]);
    let next = items.get(i + 1);
    let emoji_neighbour = prev.is_some_and(Inline::is_emoji) || next.is_some_and(Inline::is_emoji);
    let word_neighbour =
        prev.is_some_and(Inline::is_wordy_plain) || next.is_some_and(Inline::is_wordy_plain);
    emoji_neighbour || word_neighbour
}

/// An emoticon falls back to what was typed, a short code to `:name:`.
fn emoji_as_text(item: Inline) -> Inline {
    match item {
        Inline::Emoji { value, short_code } if value != short_code => Inline::Plain(value),
        Inline::Emoji { value, .. } => {
            let mut text: Text = vec![u16::from(b':')];
            text.extend_from_slice(&value);
            text.push(u16::from(b':'));
            Inline::Plain(text)
        }
        other => other,
    }
}

/// Finishes a list of inlines (already reduced) into JSON.
pub(super) fn inlines_json(items: Vec<Inline>) -> Value {
    Value::Array(items.into_iter().map(Inline::into_json).collect())
}

/// `{type, value}` with a reduced inline list as value.
pub(super) fn container(kind: &str, items: Vec<Inline>) -> Value {
    json!({"type": kind, "value": inlines_json(reduce(items))})
}

pub(super) fn plain_json(text: &[u16]) -> Value {
    json!({"type": "PLAIN_TEXT", "value": string(text)})
}

pub(super) fn link_json(src: &[u16], label: Value) -> Value {
    json!({"type": "LINK", "value": {"src": plain_json(src), "label": label}})
}

/// A node whose `fallback` is the UTF-16 range it was parsed from.
pub(super) fn with_fallback(mut node: Value, start: usize, end: usize) -> Value {
    if let Value::Object(map) = &mut node {
        map.insert("fallback".into(), json!([start, end]));
    }
    node
}

pub(super) fn object(pairs: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}

pub(super) fn string(text: &[u16]) -> String {
    String::from_utf16_lossy(text)
}

pub(super) fn utf16(text: &str) -> Text {
    text.encode_utf16().collect()
}

/// JavaScript's white space (what `String.prototype.trim` and `\s` remove).
pub(super) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

pub(super) fn js_trim(text: &str) -> &str {
    text.trim_matches(is_js_space)
}
