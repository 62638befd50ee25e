//! Server-name resolution (Matrix server-server API, "Resolving server names"): which address
//! to connect to for a server name, what `Host` to send and which name its certificate must
//! carry. In order: an operator's override, an IP literal, an explicit port, the server's
//! `/.well-known/matrix/server` delegation (itself resolved by IP literal, explicit port, SRV,
//! then 8448), SRV `_matrix-fed._tcp` then the legacy `_matrix._tcp`, and finally port 8448.
//! Results are cached for an hour.

use crate::FedError;
use async_trait::async_trait;
use ruma::ServerName;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The port used when nothing names one.
pub const DEFAULT_PORT: u16 = 8448;
/// How long a resolution is reused. The spec lets well-known answers live up to 48 h; one hour
/// keeps a moved server reachable soon while sparing the lookups.
const CACHE_FOR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where and how to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// A DNS name or an IP address (IPv6 without brackets) to connect to.
    pub connect_host: String,
    pub port: u16,
    /// The `Host` header.
    pub host_header: String,
    /// The name the server's TLS certificate must be valid for (and the SNI).
    pub tls_name: String,
    /// Set by the operator (`--federation-resolve`): connecting to private addresses is fine.
    pub overridden: bool,
}

impl Endpoint {
    fn https(connect_host: &str, port: u16, host_header: String, tls_name: &str) -> Self {
        Self {
            scheme: Scheme::Https,
            connect_host: unbracket(connect_host).to_string(),
            port,
            host_header,
            tls_name: unbracket(tls_name).to_string(),
            overridden: false,
        }
    }

    /// `NAME=URL` of `--federation-resolve`: `http://host:port` or `https://host[:port]`.
    pub fn parse_override(server: &str, url: &str) -> Result<Self, String> {
        let (scheme, rest, default_port) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest, 443)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest, 80)
        } else {
            return Err(format!("{url:?} must start with http:// or https://"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "{url:?} must be scheme://host[:port] without a path"
            ));
        }
        let name = <&ServerName>::try_from(authority)
            .map_err(|e| format!("{url:?}: host and port: {e}"))?;
        Ok(Self {
            scheme,
            connect_host: unbracket(name.host()).to_string(),
            port: name.port().unwrap_or(default_port),
            host_header: server.to_string(),
            tls_name: unbracket(name.host()).to_string(),
            overridden: true,
        })
    }
}

fn unbracket(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub target: String,
    pub port: u16,
}

/// The lookups resolution needs from the network.
#[async_trait]
pub trait Discovery: Send + Sync {
    /// The `m.server` of `https://<hostname>/.well-known/matrix/server`, if it answers one.
    async fn well_known(&self, hostname: &str) -> Option<String>;
    /// SRV records of `name` (empty when there are none or the lookup fails).
    async fn srv(&self, name: &str) -> Vec<SrvRecord>;
}

/// Resolves server names, with the operator's overrides first.
pub struct Resolver {
    overrides: HashMap<String, Endpoint>,
    discovery: Box<dyn Discovery>,
    cache: Mutex<HashMap<String, (Endpoint, Instant)>>,
}

impl Resolver {
    pub fn new(overrides: HashMap<String, Endpoint>, discovery: Box<dyn Discovery>) -> Self {
        Self {
            overrides,
            discovery,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn resolve(&self, server: &ServerName) -> Result<Endpoint, FedError> {
        if let Some(endpoint) = self.overrides.get(server.as_str()) {
            return Ok(endpoint.clone());
        }
        if let Some((endpoint, at)) = self.cache.lock().unwrap().get(server.as_str())
            && at.elapsed() < CACHE_FOR
        {
            return Ok(endpoint.clone());
        }
        let endpoint = self.discover(server).await?;
        self.cache
            .lock()
            .unwrap()
            .insert(server.to_string(), (endpoint.clone(), Instant::now()));
        Ok(endpoint)
    }

    async fn discover(&self, server: &ServerName) -> Result<Endpoint, FedError> {
        let host = server.host();
        // 1. and 2.: an IP literal or an explicit port needs no lookup.
        if server.is_ip_literal() || server.port().is_some() {
            let port = server.port().unwrap_or(DEFAULT_PORT);
            return Ok(Endpoint::https(host, port, server.to_string(), host));
        }
        // 3. Delegation.
        if let Some(delegated) = self.discovery.well_known(host).await {
            let delegated = <&ServerName>::try_from(delegated.as_str()).map_err(|e| {
                FedError::Unreachable(format!(
                    "{server}: .well-known names an invalid server {delegated:?}: {e}"
                ))
            })?;
            let dhost = delegated.host();
            if delegated.is_ip_literal() || delegated.port().is_some() {
                let port = delegated.port().unwrap_or(DEFAULT_PORT);
                return Ok(Endpoint::https(dhost, port, delegated.to_string(), dhost));
            }
            if let Some(srv) = self.srv_of(dhost).await {
                return Ok(Endpoint::https(
                    &srv.target,
                    srv.port,
                    dhost.to_string(),
                    dhost,
                ));
            }
            return Ok(Endpoint::https(
                dhost,
                DEFAULT_PORT,
                dhost.to_string(),
                dhost,
            ));
        }
        // 4. and 5.: SRV on the name itself.
        if let Some(srv) = self.srv_of(host).await {
            return Ok(Endpoint::https(
                &srv.target,
                srv.port,
                host.to_string(),
                host,
            ));
        }
        // 6.
        Ok(Endpoint::https(host, DEFAULT_PORT, host.to_string(), host))
    }

    /// The preferred record of `_matrix-fed._tcp.<host>`, else of the legacy `_matrix._tcp`:
    /// lowest priority, then highest weight (one target, no weighted draw: a request that fails
    /// is retried by the caller's own policy).
    async fn srv_of(&self, host: &str) -> Option<SrvRecord> {
        for service in ["_matrix-fed._tcp", "_matrix._tcp"] {
            let mut records = self.discovery.srv(&format!("{service}.{host}")).await;
            // A target of "." means "no service here".
            records.retain(|r| !r.target.is_empty() && r.target != ".");
            records.sort_by_key(|r| (r.priority, std::cmp::Reverse(r.weight)));
            if let Some(first) = records.into_iter().next() {
                let target = first.target.trim_end_matches('.').to_string();
                return Some(SrvRecord { target, ..first });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canned answers; records which lookups were made.
    #[derive(Default)]
    struct Fake {
        well_known: HashMap<String, String>,
        srv: HashMap<String, Vec<SrvRecord>>,
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Discovery for Fake {
        async fn well_known(&self, hostname: &str) -> Option<String> {
            self.asked.lock().unwrap().push(format!("wk {hostname}"));
            self.well_known.get(hostname).cloned()
        }
        async fn srv(&self, name: &str) -> Vec<SrvRecord> {
            self.asked.lock().unwrap().push(format!("srv {name}"));
            self.srv.get(name).cloned().unwrap_or_default()
        }
    }

    fn srv(priority: u16, weight: u16, target: &str, port: u16) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            target: target.into(),
            port,
        }
    }

    async fn resolve(fake: Fake, name: &str) -> (Endpoint, Vec<String>) {
        let fake = std::sync::Arc::new(fake);
        struct Shared(std::sync::Arc<Fake>);
        #[async_trait]
        impl Discovery for Shared {
            async fn well_known(&self, h: &str) -> Option<String> {
                self.0.well_known(h).await
            }
            async fn srv(&self, n: &str) -> Vec<SrvRecord> {
                self.0.srv(n).await
            }
        }
        let resolver = Resolver::new(HashMap::new(), Box::new(Shared(fake.clone())));
        let endpoint = resolver
            .resolve(<&ServerName>::try_from(name).unwrap())
            .await
            .unwrap();
        let asked = fake.asked.lock().unwrap().clone();
        (endpoint, asked)
    }

    fn https(connect: &str, port: u16, host: &str, tls: &str) -> Endpoint {
        Endpoint::https(connect, port, host.into(), tls)
    }

    #[tokio::test]
    async fn ip_literals_and_explicit_ports_need_no_lookup() {
        let (e, asked) = resolve(Fake::default(), "127.0.0.1").await;
        assert_eq!(e, https("127.0.0.1", 8448, "127.0.0.1", "127.0.0.1"));
        assert!(asked.is_empty());
        let (e, _) = resolve(Fake::default(), "[::1]:8449").await;
        assert_eq!(e, https("::1", 8449, "[::1]:8449", "::1"));
        assert_eq!(e.connect_host, "::1");
        let (e, asked) = resolve(Fake::default(), "localhost:8448").await;
        assert_eq!(e, https("localhost", 8448, "localhost:8448", "localhost"));
        assert!(asked.is_empty(), "{asked:?}");
    }

    #[tokio::test]
    async fn well_known_delegation_in_its_four_forms() {
        let mut fake = Fake::default();
        fake.well_known
            .insert("a.test".into(), "matrix.a.test:443".into());
        let (e, asked) = resolve(fake, "a.test").await;
        assert_eq!(
            e,
            https("matrix.a.test", 443, "matrix.a.test:443", "matrix.a.test")
        );
        assert_eq!(asked, vec!["wk a.test"], "an explicit port skips SRV");

        let mut fake = Fake::default();
        fake.well_known.insert("b.test".into(), "10.1.2.3".into());
        let (e, _) = resolve(fake, "b.test").await;
        assert_eq!(e, https("10.1.2.3", 8448, "10.1.2.3", "10.1.2.3"));

        let mut fake = Fake::default();
        fake.well_known.insert("c.test".into(), "hs.c.test".into());
        fake.srv.insert(
            "_matrix-fed._tcp.hs.c.test".into(),
            vec![
                srv(10, 5, "box2.c.test.", 8450),
                srv(5, 0, "box1.c.test.", 8449),
            ],
        );
        let (e, asked) = resolve(fake, "c.test").await;
        assert_eq!(
            e,
            https("box1.c.test", 8449, "hs.c.test", "hs.c.test"),
            "lowest priority wins; Host and certificate stay the delegated name"
        );
        assert_eq!(asked, vec!["wk c.test", "srv _matrix-fed._tcp.hs.c.test"]);

        let mut fake = Fake::default();
        fake.well_known.insert("d.test".into(), "hs.d.test".into());
        let (e, asked) = resolve(fake, "d.test").await;
        assert_eq!(e, https("hs.d.test", 8448, "hs.d.test", "hs.d.test"));
        assert_eq!(
            asked,
            vec![
                "wk d.test",
                "srv _matrix-fed._tcp.hs.d.test",
                "srv _matrix._tcp.hs.d.test"
            ]
        );
    }

    #[tokio::test]
    async fn srv_then_legacy_srv_then_8448() {
        let mut fake = Fake::default();
        fake.srv.insert(
            "_matrix-fed._tcp.e.test".into(),
            vec![srv(1, 1, "fed.e.test", 443), srv(1, 9, "fed2.e.test", 444)],
        );
        let (e, _) = resolve(fake, "e.test").await;
        assert_eq!(
            e,
            https("fed2.e.test", 444, "e.test", "e.test"),
            "same priority: highest weight"
        );

        let mut fake = Fake::default();
        fake.srv.insert(
            "_matrix._tcp.f.test".into(),
            vec![srv(0, 0, "old.f.test", 8000)],
        );
        let (e, _) = resolve(fake, "f.test").await;
        assert_eq!(e, https("old.f.test", 8000, "f.test", "f.test"));

        let mut fake = Fake::default();
        fake.srv
            .insert("_matrix-fed._tcp.g.test".into(), vec![srv(0, 0, ".", 0)]);
        let (e, asked) = resolve(fake, "g.test").await;
        assert_eq!(
            e,
            https("g.test", 8448, "g.test", "g.test"),
            "\".\" is no service"
        );
        assert_eq!(
            asked,
            vec![
                "wk g.test",
                "srv _matrix-fed._tcp.g.test",
                "srv _matrix._tcp.g.test"
            ]
        );
    }

    #[tokio::test]
    async fn overrides_win_and_results_are_cached() {
        let fake = std::sync::Arc::new(Fake::default());
        struct Shared(std::sync::Arc<Fake>);
        #[async_trait]
        impl Discovery for Shared {
            async fn well_known(&self, h: &str) -> Option<String> {
                self.0.well_known(h).await
            }
            async fn srv(&self, n: &str) -> Vec<SrvRecord> {
                self.0.srv(n).await
            }
        }
        let over = Endpoint::parse_override("synapse.test", "http://127.0.0.1:8008").unwrap();
        let resolver = Resolver::new(
            [("synapse.test".to_string(), over.clone())].into(),
            Box::new(Shared(fake.clone())),
        );
        let name = <&ServerName>::try_from("synapse.test").unwrap();
        let e = resolver.resolve(name).await.unwrap();
        assert_eq!(e.scheme, Scheme::Http);
        assert_eq!((e.connect_host.as_str(), e.port), ("127.0.0.1", 8008));
        assert_eq!(e.host_header, "synapse.test");
        assert!(e.overridden);
        let other = <&ServerName>::try_from("h.test").unwrap();
        resolver.resolve(other).await.unwrap();
        resolver.resolve(other).await.unwrap();
        assert_eq!(
            fake.asked.lock().unwrap().len(),
            3,
            "second resolution cached"
        );
    }

    #[test]
    fn override_urls_are_checked() {
        let e = Endpoint::parse_override("x.test", "https://[::1]/").unwrap();
        assert_eq!(
            (e.scheme, e.connect_host.as_str(), e.port),
            (Scheme::Https, "::1", 443)
        );
        assert!(Endpoint::parse_override("x.test", "ftp://h").is_err());
        assert!(Endpoint::parse_override("x.test", "http://h:1/path").is_err());
        assert!(Endpoint::parse_override("x.test", "http://").is_err());
        assert!(Endpoint::parse_override("x.test", "http://h:99999").is_err());
    }
}
