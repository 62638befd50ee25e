//! Rocket.Chat message-parser AST (`md` field) for plain text messages.

use serde_json::{Value, json};

/// Parses a message body into Rocket.Chat's `md` block list.
pub fn parse(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .split('\n')
        .map(|line| json!({"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": line}]}))
        .collect();
    Value::Array(paragraphs)
}
