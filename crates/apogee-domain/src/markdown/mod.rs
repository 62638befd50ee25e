//! Rocket.Chat message-parser AST (the `md` field of a message) built from plain message text.
//!
//! This is a Rust re-implementation of the PEG grammar of `@rocket.chat/message-parser` 0.32
//! (the version Rocket.Chat 8 ships). Clients render `md` directly, so the output has to be the
//! very tree Rocket.Chat would have stored: the rules below follow the grammar's ordered choices
//! one by one, including its quirks (`snake_case` words, emoji glued to text turning back into
//! text, `*`-lists that refuse a trailing `*`, ...).
//!
//! Two properties of the original matter everywhere and are kept on purpose:
//! * it works on UTF-16 code units (JavaScript strings), so the parser does too — a few rules
//!   only behave like Rocket.Chat's when a surrogate pair can be split;
//! * `reducePlainTexts` merges neighbouring plain texts and turns emoji touching words back into
//!   text (`hello:smile:` stays text), see [`ast::reduce`].
//!
//! The parser never panics: runaway backtracking or nesting aborts the parse and the message
//! falls back to plain paragraphs (Rocket.Chat itself would time out or overflow its stack).

mod ast;
mod blocks;
mod chars;
mod emoji;
mod inline;
mod links;
mod parser;
mod timestamp;
mod tlds;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

/// The parser switches of Rocket.Chat's `parse(text, options)`.
///
/// [`Default`] is what a Rocket.Chat server with default settings passes when it saves a message
/// (`HexColorPreview_Enabled`, KaTeX with the `\[ \]` / `\( \)` syntax, emoticons always on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// `color:#rrggbb` becomes a `COLOR` node.
    pub colors: bool,
    /// ASCII emoticons such as `:)` become `EMOJI` nodes.
    pub emoticons: bool,
    /// `$…$` and `$$…$$` are KaTeX.
    pub katex_dollar_syntax: bool,
    /// `\(…\)` and `\[…\]` are KaTeX.
    pub katex_parenthesis_syntax: bool,
    /// Extra host suffixes that auto-link although they are no public TLD (`Message_CustomDomain_AutoLink`).
    pub custom_domains: Vec<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            colors: true,
            emoticons: true,
            katex_dollar_syntax: false,
            katex_parenthesis_syntax: true,
            custom_domains: Vec::new(),
        }
    }
}

/// Parses a message body into Rocket.Chat's `md` block list with the default options.
pub fn parse(text: &str) -> Value {
    parse_with_options(text, &ParseOptions::default())
}

/// Parses a message body into Rocket.Chat's `md` block list.
///
/// An empty text gives an empty list (Rocket.Chat's parser throws and stores no `md`).
pub fn parse_with_options(text: &str, options: &ParseOptions) -> Value {
    parse_within(text, options, parser::WORK_BUDGET)
}

fn parse_within(text: &str, options: &ParseOptions, budget: u64) -> Value {
    let src: Vec<u16> = text.encode_utf16().collect();
    if src.is_empty() {
        return Value::Array(Vec::new());
    }
    let mut parser = parser::Parser::new(&src, options, budget);
    match parser.document() {
        Some(blocks) => Value::Array(blocks),
        None => fallback(text),
    }
}

/// What a message becomes when the grammar gives up: one plain paragraph per line and a line
/// break per blank line, which is how Rocket.Chat lays out text that has no markup.
fn fallback(text: &str) -> Value {
    let blocks = text
        .split('\n')
        .map(|line| {
            if line.trim().is_empty() {
                json!({"type": "LINE_BREAK"})
            } else {
                json!({"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": line}]})
            }
        })
        .collect();
    Value::Array(blocks)
}
