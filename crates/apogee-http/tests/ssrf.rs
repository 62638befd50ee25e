//! The client against peers on loopback: internal addresses refused in every spelling, through
//! DNS and through redirects; the allowlist and the test hooks (resolve override, extra CA)
//! reach them; caps, truncation and redirect limits.

use apogee_core::outbound::{HttpClient, OutboundError, OutboundRequest, Overflow};
use apogee_http::OutboundHttp;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

type Handler = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A one-line HTTP peer: answers each request with `handler(request head)`; records heads.
struct Peer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    async fn start(handler: impl Fn(&str) -> String + Send + Sync + 'static) -> Peer {
        Self::start_with(handler, None).await
    }

    async fn start_with(
        handler: impl Fn(&str) -> String + Send + Sync + 'static,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let recorded = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (handler, recorded, tls) = (handler.clone(), recorded.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(tcp).await {
                                serve(s, handler, recorded).await
                            }
                        }
                        None => serve(tcp, handler, recorded).await,
                    }
                });
            }
        });
        Peer { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    handler: Handler,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    seen.lock().unwrap().push(head.clone());
    let _ = s.write_all(handler(&head).as_bytes()).await;
    let _ = s.shutdown().await;
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

fn client() -> OutboundHttp {
    OutboundHttp::new(HashMap::new(), None).unwrap()
}

fn refused(outcome: Result<apogee_core::outbound::OutboundResponse, OutboundError>) -> String {
    match outcome {
        Err(OutboundError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn internal_addresses_are_refused_in_every_spelling() {
    let peer = Peer::start(|_| ok("secret")).await;
    let port = peer.addr.port();
    let http = client();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://localhost:{port}/"),
        "http://10.0.0.1/".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fe80::1]/".into(),
        "http://0.0.0.0/".into(),
    ] {
        let why = refused(http.fetch(OutboundRequest::get(&url)).await);
        assert!(why.contains("internal"), "{url}: {why}");
    }
    for url in ["file:///etc/passwd", "gopher://x/", "not a url"] {
        refused(http.fetch(OutboundRequest::get(url)).await);
    }
    assert!(peer.seen.lock().unwrap().is_empty(), "the peer was reached");
}

#[tokio::test]
async fn the_allowlist_lets_named_internal_hosts_through() {
    let peer = Peer::start(|_| ok("hello")).await;
    let http = client();
    let mut req = OutboundRequest::get(&peer.url("/x?a=1"));
    req.allowlist = vec!["10.0.0.0/8".into(), "127.0.0.1".into()];
    let answer = http.fetch(req).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"hello");
    assert_eq!(answer.header("Content-Type"), Some("text/plain"));
    let head = peer.seen.lock().unwrap()[0].clone();
    assert!(head.starts_with("GET /x?a=1 HTTP/1.1\r\n"), "{head}");

    // A name is allowed by name (localhost resolves to loopback).
    let mut by_name = OutboundRequest::get(&format!("http://localhost:{}/", peer.addr.port()));
    by_name.allowlist = vec!["localhost".into()];
    assert_eq!(http.fetch(by_name).await.unwrap().body, b"hello");
}

#[tokio::test]
async fn redirects_are_checked_again() {
    let inner = Peer::start(|_| ok("internal")).await;
    let target = inner.url("/admin");
    // The "external" site (reached through the resolve override) sends us inside.
    let outer = Peer::start(move |_| redirect(&target)).await;
    let http = OutboundHttp::new(
        HashMap::from([("public.example".to_string(), outer.addr)]),
        None,
    )
    .unwrap();
    let why = refused(
        http.fetch(OutboundRequest::get("http://public.example/go"))
            .await,
    );
    assert!(why.contains("internal"), "{why}");
    assert_eq!(outer.seen.lock().unwrap().len(), 1);
    assert!(inner.seen.lock().unwrap().is_empty());

    // Relative redirects within the allowed site are followed, up to the limit.
    let hops = Peer::start(|head| {
        let n: u32 = head
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.trim_start_matches('/').parse().ok())
            .unwrap_or(0);
        if n < 3 {
            redirect(&format!("/{}", n + 1))
        } else {
            ok("arrived")
        }
    })
    .await;
    let http = OutboundHttp::new(
        HashMap::from([("hops.example".to_string(), hops.addr)]),
        None,
    )
    .unwrap();
    let answer = http
        .fetch(OutboundRequest::get("http://hops.example/0"))
        .await
        .unwrap();
    assert_eq!(answer.body, b"arrived");
    assert_eq!(answer.url, "http://hops.example/3");
    let mut strict = OutboundRequest::get("http://hops.example/0");
    strict.max_redirects = 2;
    assert!(refused(http.fetch(strict).await).contains("redirects"));
}

#[tokio::test]
async fn answers_are_capped() {
    let big = "x".repeat(10_000);
    let peer = Peer::start(move |_| ok(&big)).await;
    let http = OutboundHttp::new(
        HashMap::from([("big.example".to_string(), peer.addr)]),
        None,
    )
    .unwrap();
    let mut req = OutboundRequest::get("http://big.example/");
    req.max_body = 1000;
    assert_eq!(
        http.fetch(req.clone()).await.unwrap_err(),
        OutboundError::TooLarge
    );
    req.overflow = Overflow::Truncate;
    assert_eq!(http.fetch(req).await.unwrap().body.len(), 1000);
}

#[tokio::test]
async fn a_silent_peer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            kept.push(tcp);
        }
    });
    let http =
        OutboundHttp::new(HashMap::from([("slow.example".to_string(), addr)]), None).unwrap();
    let mut req = OutboundRequest::get("http://slow.example/");
    req.timeout = std::time::Duration::from_millis(300);
    assert!(matches!(
        http.fetch(req).await,
        Err(OutboundError::Failed(_))
    ));
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_authorization() {
    let peer = Peer::start(|_| ok("")).await;
    let http = OutboundHttp::new(
        HashMap::from([("auth.example".to_string(), peer.addr)]),
        None,
    )
    .unwrap();
    let req = OutboundRequest::post_json(
        "http://bob:s%40cret@auth.example/hook",
        &serde_json::json!({"a": 1}),
    );
    http.fetch(req).await.unwrap();
    let head = peer.seen.lock().unwrap()[0].clone();
    // base64("bob:s@cret")
    assert!(
        head.contains("authorization: Basic Ym9iOnNAY3JldA=="),
        "{head}"
    );
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
}

#[tokio::test]
async fn https_with_the_extra_ca() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["files.example".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let peer = Peer::start_with(|_| ok("over TLS"), Some(acceptor)).await;
    let overrides = HashMap::from([("files.example".to_string(), peer.addr)]);

    let trusting = OutboundHttp::new(overrides.clone(), Some(ca.pem().as_bytes())).unwrap();
    let answer = trusting
        .fetch(OutboundRequest::get("https://files.example/logo.svg"))
        .await
        .unwrap();
    assert_eq!(answer.body, b"over TLS");

    // Without the CA the certificate is not trusted.
    let plain = OutboundHttp::new(overrides, None).unwrap();
    let outcome = plain
        .fetch(OutboundRequest::get("https://files.example/logo.svg"))
        .await;
    assert!(
        matches!(outcome, Err(OutboundError::Failed(ref e)) if e.contains("TLS")),
        "{outcome:?}"
    );
}
