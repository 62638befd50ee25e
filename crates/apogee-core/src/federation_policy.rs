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
//! send: a destination that is not allowed gets no events and no EDUs, and events already
//! queued for it are given up when they come due.

use crate::Core;
use crate::error::{CoreError, CoreResult};

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

impl Core {
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
    use super::server_allowed;

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
