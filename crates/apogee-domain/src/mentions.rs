//! Finds `@user`, `@all`, `@here` and `#channel` mentions in message text, as Rocket.Chat's
//! `MentionsParser` does with default settings.

/// Mentioned usernames (`all` and `here` included), in order of first appearance, deduplicated.
/// A Matrix id (`@alice:example.org`) is not a mention of a local `alice`: see
/// [`mentioned_matrix_users`].
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    tokens_after(text, '@')
}

/// Mentioned users of other Matrix servers, written as their Matrix id (`@alice:example.org`,
/// `@bob:localhost:8448`) — the username remote users have here. In order, deduplicated.
pub fn mentioned_matrix_users(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let at_word_start = prev.is_none_or(|p| p.is_whitespace() || "([{,;>'\"".contains(p));
        prev = Some(c);
        if c != '@' || !at_word_start {
            continue;
        }
        let rest = &text[i + 1..];
        let local = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || "-_.=/+".contains(ch)))
            .unwrap_or(rest.len());
        if local == 0 || !rest[local..].starts_with(':') {
            continue;
        }
        let server_part = &rest[local + 1..];
        let server = server_part
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || "-.:[]".contains(ch)))
            .unwrap_or(server_part.len());
        let server = server_part[..server].trim_end_matches(['.', ':']);
        if server.is_empty()
            || !server.starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '[')
        {
            continue;
        }
        let id = format!("@{}:{server}", &rest[..local]);
        if !found.contains(&id) {
            found.push(id);
        }
    }
    found
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
        // `@alice:example.org` names a Matrix user, not a local `alice`.
        let matrix_id = sigil == '@'
            && rest[len..].starts_with(':')
            && rest[len + 1..].starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '[');
        if !token.is_empty() && !matrix_id && !found.iter().any(|f| f == token) {
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
    fn matrix_ids_are_not_local_mentions() {
        let text = "hi @alice:example.org and @bob:localhost:8448, @carol: hello";
        assert_eq!(
            mentioned_matrix_users(text),
            vec!["@alice:example.org", "@bob:localhost:8448"]
        );
        assert_eq!(mentioned_usernames(text), vec!["carol"]);
        assert_eq!(
            mentioned_usernames("@alice:example.org and @alice"),
            vec!["alice"]
        );
        assert!(mentioned_matrix_users("mail a@b:c, @:x, @a:").is_empty());
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
