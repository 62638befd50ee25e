//! The port for outbound HTTP (URL previews, avatars from URLs, outgoing webhooks). Whatever a
//! user or an integration names is fetched through it, so the adapter (`apogee-http`) is where
//! server-side request forgery is stopped: it resolves the host itself, refuses internal
//! addresses unless `HTTP_Outbound_Allowlist` names them, connects to the address it checked and
//! checks every redirect again.

use async_trait::async_trait;
use std::time::Duration;

/// The setting naming hosts, addresses and CIDR ranges that may be reached although internal
/// (comma- or space-separated), e.g. an intranet service an outgoing webhook posts to.
pub const ALLOWLIST_SETTING: &str = "HTTP_Outbound_Allowlist";

/// What to do with an answer longer than [`OutboundRequest::max_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Keep the first `max_body` bytes (previews only need the page's head).
    Truncate,
    /// Fail with [`OutboundError::TooLarge`] (an avatar must be whole).
    Fail,
}

/// One request. `url` may carry credentials (`https://user:pass@host/`): the adapter sends them
/// as Basic authorization and never logs them.
#[derive(Clone)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub max_body: usize,
    pub overflow: Overflow,
    /// The whole exchange, redirects included.
    pub timeout: Duration,
    /// Redirects followed (for GET only); each target is checked like the first.
    pub max_redirects: usize,
    /// Entries of [`ALLOWLIST_SETTING`].
    pub allowlist: Vec<String>,
}

impl OutboundRequest {
    pub fn get(url: &str) -> Self {
        Self {
            method: "GET".into(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            max_body: 1024 * 1024,
            overflow: Overflow::Fail,
            timeout: Duration::from_secs(20),
            max_redirects: 5,
            allowlist: Vec::new(),
        }
    }

    pub fn post_json(url: &str, body: &serde_json::Value) -> Self {
        Self {
            method: "POST".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body.to_string().into_bytes()),
            max_redirects: 0,
            ..Self::get(url)
        }
    }
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Webhook URLs and bodies carry tokens: only the method and the redacted URL.
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

/// An answer. Header names are lower case.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl OutboundResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why nothing (usable) came back.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboundError {
    /// Not fetched, ever: a malformed URL, another scheme, an internal address, too many
    /// redirects.
    Refused(String),
    /// Network trouble worth a retry: DNS, connect, TLS, timeouts, a broken answer.
    Failed(String),
    /// The answer is longer than allowed.
    TooLarge,
}

impl std::fmt::Display for OutboundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
            Self::TooLarge => f.write_str("answer too large"),
        }
    }
}

/// The adapter port.
#[async_trait]
pub trait HttpClient: Send + Sync + std::fmt::Debug {
    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError>;
}

/// `url` without user information, query or fragment: safe to log.
pub fn redact_url(url: &str) -> String {
    let without_fragment = url.split('#').next().unwrap_or_default();
    let without_query = without_fragment.split('?').next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{path}")
        }
        None => "<not a URL>".into(),
    }
}

impl crate::Core {
    /// The configured client, or a refusal when this node has none.
    pub(crate) fn http(&self) -> Result<&dyn HttpClient, OutboundError> {
        self.options
            .http
            .as_deref()
            .ok_or_else(|| OutboundError::Refused("no outbound HTTP client on this node".into()))
    }

    /// The entries of [`ALLOWLIST_SETTING`].
    pub(crate) fn outbound_allowlist(&self) -> Vec<String> {
        split_list(&self.settings.string(ALLOWLIST_SETTING))
    }
}

/// A setting's comma- or space-separated list.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_lose_credentials_query_and_fragment() {
        assert_eq!(
            redact_url("https://bob:secret@hooks.example:8443/p/a?token=t#x"),
            "https://hooks.example:8443/p/a"
        );
        assert_eq!(redact_url("http://h"), "http://h");
        assert_eq!(redact_url("nonsense"), "<not a URL>");
        let r = OutboundRequest::get("https://u:pw@h/x?token=abc");
        assert!(!format!("{r:?}").contains("pw") && !format!("{r:?}").contains("abc"));
    }
}
