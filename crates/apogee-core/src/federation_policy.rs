//! Which Matrix servers this server federates with: the settings `Federation_Allowed_Servers`
//! (when not empty, only those) and `Federation_Denied_Servers` (never those; wins over the
//! allow list). Entries are separated by commas or white space: `example.org` (any port),
//! `example.org:8448` (that port only) or `*.example.org` (its subdomains, any port); matched
//! without regard to case. Read from the settings cache at each use, so an administrator's
//! change applies at once on every node.
//!
//! Enforced on every incoming federation request (403 `M_FORBIDDEN`, before the origin's keys
//! are fetched), on events whose sender's server is not allowed (refused, whoever relays
//! them), on joins (the server joined through and the room's server), and on everything we
//! send: a destination that is not allowed — or that the room's `m.room.server_acl` denies —
//! gets no events and no EDUs ([`Core::sendable_servers`]), and events already queued for a
//! refused server are given up when they come due.

use crate::Core;
use crate::error::{CoreError, CoreResult, ErrorKind};
use serde_json::Value;

pub const ALLOWED_SERVERS: &str = "Federation_Allowed_Servers";
pub const DENIED_SERVERS: &str = "Federation_Denied_Servers";

/// Whether `server` (`host[:port]`) matches one of the `patterns` of a setting's value.
fn listed(patterns: &str, server: &str) -> bool {
    let server = server.trim().to_ascii_lowercase();
    let host = host_of(&server);
    patterns
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .any(|p| {
            if let Some(parent) = p.strip_prefix("*.") {
                host.ends_with(&format!(".{parent}"))
            } else if has_port(&p) {
                p == server
            } else {
                p == host
            }
        })
}

/// The host of `host[:port]` (an IPv6 literal keeps its brackets).
fn host_of(server: &str) -> &str {
    if has_port(server) {
        server.rsplit_once(':').map_or(server, |(h, _)| h)
    } else {
        server
    }
}

fn has_port(server: &str) -> bool {
    match server.rsplit_once(':') {
        // `[::1]` has colons but no port unless one follows the bracket.
        Some((h, port)) => {
            (!h.contains(':') || h.ends_with(']'))
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The decision for `server` given the two settings' values.
pub fn server_allowed(allowed: &str, denied: &str, server: &str) -> bool {
    if listed(denied, server) {
        return false;
    }
    allowed.trim().is_empty() || listed(allowed, server)
}

/// Whether a room's `m.room.server_acl` content admits `server` (the Matrix rules: its host,
/// port ignored; IP literals refused unless `allow_ip_literals` (default true); any `deny`
/// glob refuses; else some `allow` glob must match — no `allow` admits no one).
pub fn acl_allows(acl: &Value, server: &str) -> bool {
    let server = server.to_ascii_lowercase();
    let host = host_of(&server);
    let globs = |key: &str| -> Vec<String> {
        acl.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default()
    };
    let ip_literal = host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok();
    if ip_literal
        && !acl
            .get("allow_ip_literals")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    {
        return false;
    }
    if globs("deny")
        .iter()
        .any(|g| glob(g.as_bytes(), host.as_bytes()))
    {
        return false;
    }
    globs("allow")
        .iter()
        .any(|g| glob(g.as_bytes(), host.as_bytes()))
}

/// `*` (any run) and `?` (one character) matching of the whole `text`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

impl Core {
    /// Whether the room's server ACL (`m.room.server_acl` in its current state) admits
    /// `server`; a room without one admits everyone.
    pub async fn room_acl_allows(&self, matrix_room_id: &str, server: &str) -> CoreResult<bool> {
        Ok(self
            .room_acl(matrix_room_id)
            .await?
            .is_none_or(|acl| acl_allows(&acl, server)))
    }

    /// Refuses `server` (403 `M_FORBIDDEN`) when the room's server ACL denies it: the spec
    /// applies the ACL to every federation endpoint that names a room, not only to `/send`.
    pub(crate) async fn require_room_acl(
        &self,
        matrix_room_id: &str,
        server: &str,
    ) -> CoreResult<()> {
        if self.room_acl_allows(matrix_room_id, server).await? {
            Ok(())
        } else {
            Err(CoreError::new(
                ErrorKind::Forbidden,
                "M_FORBIDDEN",
                "Server is banned from this room",
            ))
        }
    }

    /// The content of the room's current `m.room.server_acl`, if it has one.
    async fn room_acl(&self, matrix_room_id: &str) -> CoreResult<Option<Value>> {
        let state = self.store.federation_room_state(matrix_room_id).await?;
        let Some(entry) = state
            .iter()
            .find(|e| e.event_type == "m.room.server_acl" && e.state_key.is_empty())
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .federation_event(&entry.event_id)
            .await?
            .map(|event| event.pdu["content"].clone()))
    }

    /// The servers of `servers` a room's events and EDUs may go to: those this server
    /// federates with (`Federation_*_Servers`) that the room's server ACL admits. A server
    /// the room bans would refuse what we send, and must not learn the room's events.
    pub(crate) async fn sendable_servers(
        &self,
        matrix_room_id: &str,
        servers: impl IntoIterator<Item = String>,
    ) -> CoreResult<std::collections::BTreeSet<String>> {
        let acl = self.room_acl(matrix_room_id).await?;
        Ok(servers
            .into_iter()
            .filter(|s| {
                self.federation_server_allowed(s)
                    && acl.as_ref().is_none_or(|acl| acl_allows(acl, s))
            })
            .collect())
    }

    /// Whether this server federates with `server` (the settings of the moment).
    pub fn federation_server_allowed(&self, server: &str) -> bool {
        server_allowed(
            &self.settings.string(ALLOWED_SERVERS),
            &self.settings.string(DENIED_SERVERS),
            server,
        )
    }

    /// [`Core::federation_server_allowed`] as a Rocket.Chat-style refusal.
    pub(crate) fn require_federation_server(&self, server: &str) -> CoreResult<()> {
        if self.federation_server_allowed(server) {
            Ok(())
        } else {
            Err(CoreError::bad(
                "error-federation-server-not-allowed",
                format!("Federation with {server} is not allowed on this server"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{acl_allows, glob, server_allowed};
    use serde_json::json;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"*.example.org", b"a.b.example.org"));
        assert!(!glob(b"*.example.org", b"example.org"));
        assert!(glob(b"ex?mple.*", b"example.com"));
        assert!(!glob(b"example", b"example.org"));
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(!glob(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn server_acls_follow_the_matrix_rules() {
        let acl = json!({"allow": ["*"], "deny": ["evil.org", "*.evil.org"],
            "allow_ip_literals": false});
        assert!(acl_allows(&acl, "synapse.test:8448"));
        assert!(!acl_allows(&acl, "evil.org:443"), "port ignored");
        assert!(!acl_allows(&acl, "a.EVIL.org"));
        assert!(!acl_allows(&acl, "127.0.0.1:8448"));
        assert!(!acl_allows(&acl, "[::1]:8448"));
        assert!(
            acl_allows(&json!({"allow": ["*"]}), "127.0.0.1"),
            "IP literals allowed by default"
        );
        assert!(
            !acl_allows(&json!({"deny": []}), "synapse.test"),
            "no allow: no one"
        );
        assert!(acl_allows(
            &json!({"allow": ["localhost"]}),
            "localhost:8448"
        ));
    }

    #[test]
    fn empty_lists_allow_everyone() {
        assert!(server_allowed("", "", "matrix.org"));
        assert!(server_allowed(" ", "", "localhost:8448"));
    }

    #[test]
    fn deny_wins_and_matches_hosts_ports_and_subdomains() {
        let denied = "evil.example, *.spam.test ,Loud.Org:8448";
        assert!(!server_allowed("", denied, "evil.example"));
        assert!(!server_allowed("", denied, "EVIL.example:443"), "any port");
        assert!(!server_allowed("", denied, "a.b.spam.test"));
        assert!(server_allowed("", denied, "spam.test"), "subdomains only");
        assert!(server_allowed("", denied, "notevil.example"));
        assert!(!server_allowed("", denied, "loud.org:8448"));
        assert!(server_allowed("", denied, "loud.org"), "that port only");
        assert!(!server_allowed("evil.example", denied, "evil.example"));
    }

    #[test]
    fn an_allow_list_admits_only_its_servers() {
        let allowed = "synapse.test\nfriends.org:8448 [::1]:8448";
        assert!(server_allowed(allowed, "", "synapse.test:8008"));
        assert!(server_allowed(allowed, "", "friends.org:8448"));
        assert!(!server_allowed(allowed, "", "friends.org:9000"));
        assert!(!server_allowed(allowed, "", "matrix.org"));
        assert!(server_allowed(allowed, "", "[::1]:8448"));
        assert!(!server_allowed(allowed, "", "[::1]"));
    }
}
