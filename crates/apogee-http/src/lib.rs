//! Outbound HTTP/1.1 for core's [`HttpClient`] port, built to fetch URLs that users and
//! integrations choose without letting them reach the server's own network:
//!
//! - the host is resolved here, every address is checked ([`addresses::is_public`], or the
//!   operator's [`Allowlist`]) and the connection goes to the checked address — no second DNS
//!   lookup, so a name cannot change its answer between check and use (DNS rebinding);
//! - redirects are followed by hand (GET only, at most the request's limit) and each target is
//!   checked the same way;
//! - connect, TLS and the whole exchange have timeouts, the answer is capped;
//! - URLs are logged without credentials or query (webhook tokens live there).
//!
//! Test hooks (documented in ARCHITECTURE.md; never needed in production): `APOGEE_HTTP_RESOLVE`
//! (`host=ip:port,…`) sends a host name to a fixed address — trusted, as the operator chose it —
//! and `APOGEE_HTTP_EXTRA_CA` (a PEM file) adds a CA to the system roots, so tests serve
//! "external" HTTPS sites on loopback.

pub mod addresses;

pub use addresses::Allowlist;
use apogee_core::outbound::{
    HttpClient, OutboundError, OutboundRequest, OutboundResponse, Overflow, redact_url,
};
use async_trait::async_trait;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use url::{Host, Url};

/// DNS, TCP connect and the TLS handshake each must finish by then.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("Apogee/", env!("CARGO_PKG_VERSION"));

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("APOGEE_HTTP_RESOLVE: {0}")]
    Resolve(String),
    #[error("APOGEE_HTTP_EXTRA_CA: {0}")]
    ExtraCa(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// The client. Cheap to share; one connection per request.
#[derive(Clone)]
pub struct OutboundHttp {
    tls: TlsConnector,
    /// Test hook: host name → the address to use instead of DNS.
    overrides: Arc<HashMap<String, SocketAddr>>,
}

impl std::fmt::Debug for OutboundHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHttp")
            .field("overrides", &self.overrides.len())
            .finish_non_exhaustive()
    }
}

impl OutboundHttp {
    /// A client trusting the system's CA roots plus `extra_ca_pem`, with `overrides`.
    pub fn new(
        overrides: HashMap<String, SocketAddr>,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, SetupError> {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if let Some(pem) = extra_ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| SetupError::ExtraCa(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| SetupError::ExtraCa(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(SetupError::ExtraCa("no certificate in the file".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            overrides: Arc::new(
                overrides
                    .into_iter()
                    .map(|(h, a)| (h.to_ascii_lowercase(), a))
                    .collect(),
            ),
        })
    }

    /// [`OutboundHttp::new`] with the test hooks read from the environment.
    pub fn from_env() -> Result<Self, SetupError> {
        let overrides = match std::env::var("APOGEE_HTTP_RESOLVE") {
            Ok(spec) => parse_overrides(&spec)?,
            Err(_) => HashMap::new(),
        };
        let ca = match std::env::var_os("APOGEE_HTTP_EXTRA_CA") {
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                SetupError::ExtraCa(format!("{}: {e}", std::path::Path::new(&path).display()))
            })?),
            None => None,
        };
        if !overrides.is_empty() || ca.is_some() {
            tracing::warn!(
                overrides = overrides.len(),
                extra_ca = ca.is_some(),
                "outbound HTTP test hooks are set (APOGEE_HTTP_RESOLVE / APOGEE_HTTP_EXTRA_CA)"
            );
        }
        Self::new(overrides, ca.as_deref())
    }

    async fn fetch_checked(
        &self,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, OutboundError> {
        let allowlist = Allowlist::parse(&request.allowlist);
        let mut url = parse_url(&request.url)?;
        let mut redirects = 0;
        loop {
            let answer = self.exchange(&request, &url, &allowlist).await?;
            let status = answer.status().as_u16();
            let follow = matches!(status, 301 | 302 | 303 | 307 | 308)
                && request.method.eq_ignore_ascii_case("GET");
            if !follow {
                return read_answer(answer, &url, &request).await;
            }
            if redirects >= request.max_redirects {
                return Err(OutboundError::Refused(format!(
                    "more than {} redirects",
                    request.max_redirects
                )));
            }
            redirects += 1;
            let location = answer
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| OutboundError::Failed("redirect without Location".into()))?;
            url = url
                .join(location)
                .map_err(|e| OutboundError::Refused(format!("bad redirect target: {e}")))?;
            check_scheme(&url)?;
            tracing::debug!(to = %redact_url(url.as_str()), "following a redirect");
        }
    }

    /// One request to `url` (no redirects), the answer's head read.
    async fn exchange(
        &self,
        request: &OutboundRequest,
        url: &Url,
        allowlist: &Allowlist,
    ) -> Result<http::Response<hyper::body::Incoming>, OutboundError> {
        let host = url
            .host()
            .ok_or_else(|| OutboundError::Refused("URL without host".into()))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| OutboundError::Refused("URL without port".into()))?;
        let host_name = match &host {
            Host::Domain(d) => d.to_string(),
            Host::Ipv4(a) => a.to_string(),
            Host::Ipv6(a) => a.to_string(),
        };
        let tcp = self.connect(&host, &host_name, port, allowlist).await?;
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(origin_form(url))
            .header(http::header::HOST, host_header(url))
            .header(http::header::USER_AGENT, USER_AGENT);
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or_default());
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            builder = builder.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
        let req = builder
            .body(body)
            .map_err(|e| OutboundError::Refused(format!("bad request: {e}")))?;
        if url.scheme() == "https" {
            let name = match host {
                Host::Domain(d) => ServerName::try_from(d.to_string())
                    .map_err(|e| OutboundError::Refused(format!("bad host name: {e}")))?,
                Host::Ipv4(a) => ServerName::IpAddress(IpAddr::V4(a).into()),
                Host::Ipv6(a) => ServerName::IpAddress(IpAddr::V6(a).into()),
            };
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, tcp))
                .await
                .map_err(|_| OutboundError::Failed(format!("{host_name}: TLS timed out")))?
                .map_err(|e| OutboundError::Failed(format!("{host_name}: TLS: {e}")))?;
            send(TokioIo::new(stream), req).await
        } else {
            send(TokioIo::new(tcp), req).await
        }
    }

    /// Resolves (or takes the literal or the override), filters, connects to a checked address.
    async fn connect(
        &self,
        host: &Host<&str>,
        host_name: &str,
        port: u16,
        allowlist: &Allowlist,
    ) -> Result<TcpStream, OutboundError> {
        let (candidates, trusted): (Vec<SocketAddr>, bool) = match host {
            Host::Domain(d) => match self.overrides.get(&d.to_ascii_lowercase()) {
                Some(addr) => (vec![*addr], true),
                None => {
                    let found =
                        tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((*d, port)))
                            .await
                            .map_err(|_| OutboundError::Failed(format!("{d}: DNS timed out")))?
                            .map_err(|e| OutboundError::Failed(format!("{d}: {e}")))?;
                    (found.collect(), false)
                }
            },
            Host::Ipv4(a) => (vec![SocketAddr::new(IpAddr::V4(*a), port)], false),
            Host::Ipv6(a) => (vec![SocketAddr::new(IpAddr::V6(*a), port)], false),
        };
        let allowed: Vec<SocketAddr> = candidates
            .iter()
            .copied()
            .filter(|a| {
                trusted || addresses::is_public(a.ip()) || allowlist.permits(host_name, a.ip())
            })
            .collect();
        if allowed.is_empty() {
            tracing::info!(host = %host_name, "outbound request to an internal address refused");
            return Err(OutboundError::Refused(format!(
                "{host_name}: internal address (loopback, private, link-local …) not allowed"
            )));
        }
        let mut last = String::new();
        for addr in allowed {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: connect timed out"),
            }
        }
        Err(OutboundError::Failed(last))
    }
}

#[async_trait]
impl HttpClient for OutboundHttp {
    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let timeout = request.timeout;
        let shown = redact_url(&request.url);
        match tokio::time::timeout(timeout, self.fetch_checked(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(OutboundError::Failed(format!(
                "{shown}: timed out after {timeout:?}"
            ))),
        }
    }
}

fn parse_url(raw: &str) -> Result<Url, OutboundError> {
    let url =
        Url::parse(raw.trim()).map_err(|e| OutboundError::Refused(format!("invalid URL: {e}")))?;
    check_scheme(&url)?;
    Ok(url)
}

fn check_scheme(url: &Url) -> Result<(), OutboundError> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(OutboundError::Refused(format!(
            "scheme {other:?} not allowed"
        ))),
    }
}

fn origin_form(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

fn host_header(url: &Url) -> String {
    let host = match url.host() {
        Some(Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3);
        if bytes[i] == b'%'
            && let Some(hex) = hex.filter(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(digit(hex[0]) * 16 + digit(hex[1]));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_overrides(spec: &str) -> Result<HashMap<String, SocketAddr>, SetupError> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (host, addr) = entry
                .split_once('=')
                .ok_or_else(|| SetupError::Resolve(format!("{entry:?}: expected host=ip:port")))?;
            let addr = addr
                .parse::<SocketAddr>()
                .map_err(|e| SetupError::Resolve(format!("{entry:?}: {e}")))?;
            Ok((host.trim().to_ascii_lowercase(), addr))
        })
        .collect()
}

async fn send<I>(
    io: I,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, OutboundError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| OutboundError::Failed(format!("HTTP: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "outbound connection ended");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| OutboundError::Failed(format!("HTTP: {e}")))
}

/// Reads the body up to the request's cap.
async fn read_answer(
    answer: http::Response<hyper::body::Incoming>,
    url: &Url,
    request: &OutboundRequest,
) -> Result<OutboundResponse, OutboundError> {
    let status = answer.status().as_u16();
    let headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let declared = answer
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if request.overflow == Overflow::Fail && declared.is_some_and(|n| n > request.max_body) {
        return Err(OutboundError::TooLarge);
    }
    let mut body = answer.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| OutboundError::Failed(format!("answer body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > request.max_body {
            match request.overflow {
                Overflow::Fail => return Err(OutboundError::TooLarge),
                Overflow::Truncate => {
                    bytes.extend_from_slice(&data[..request.max_body - bytes.len()]);
                    break;
                }
            }
        }
        bytes.extend_from_slice(&data);
    }
    Ok(OutboundResponse {
        status,
        headers,
        body: bytes,
        url: url.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse() {
        let map = parse_overrides("Files.Example=127.0.0.1:8443, b=[::1]:80").unwrap();
        assert_eq!(map["files.example"], "127.0.0.1:8443".parse().unwrap());
        assert_eq!(map["b"], "[::1]:80".parse().unwrap());
        assert!(parse_overrides("nohost").is_err());
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(percent_decode("a%40b%3Ac"), "a@b:c");
        assert_eq!(percent_decode("50%"), "50%");
    }
}
