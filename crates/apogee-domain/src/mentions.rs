//! Finds `@user`, `@all`, `@here` and `#channel` mentions in message text, as Rocket.Chat's
//! `MentionsParser` does with default settings.

/// Mentioned usernames (`all` and `here` included), in order of first appearance, deduplicated.
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    tokens_after(text, '@')
}

/// Mentioned channel names, in order of first appearance, deduplicated.
pub fn mentioned_channels(text: &str) -> Vec<String> {
    tokens_after(text, '#')
}

/// Tokens of `[0-9a-zA-Z-_.]` that follow `sigil` at a word start; trailing dots are punctuation.
fn tokens_after(text: &str, sigil: char) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let at_word_start = prev.is_none_or(|p| p.is_whitespace() || "([{,;:>'\"".contains(p));
        prev = Some(c);
        if c != sigil || !at_word_start {
            continue;
        }
        let rest = &text[i + c.len_utf8()..];
        let len = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.'))
            .unwrap_or(rest.len());
        let token = rest[..len].trim_end_matches('.');
        if !token.is_empty() && !found.iter().any(|f| f == token) {
            found.push(token.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_user_mentions() {
        let cases: &[(&str, &[&str])] = &[
            ("hello @bob", &["bob"]),
            ("@alice and @bob.smith.", &["alice", "bob.smith"]),
            ("@all hands, @here too", &["all", "here"]),
            ("mail me at a@b.com", &[]),
            ("(@carol) @carol", &["carol"]),
            ("@ alone", &[]),
            ("ünïcode @dave-1_x", &["dave-1_x"]),
        ];
        for (text, want) in cases {
            assert_eq!(mentioned_usernames(text), *want, "{text}");
        }
    }

    #[test]
    fn finds_channel_mentions() {
        assert_eq!(
            mentioned_channels("see #general and #dev-ops."),
            vec!["general", "dev-ops"]
        );
        assert!(mentioned_channels("issue#4").is_empty());
    }
}
