//! Outgoing federation requests: resolve the server name, connect (TLS with the name resolution
//! chose, or plain HTTP for an operator's override), and send HTTP/1.1 with an `X-Matrix`
//! signature over exactly the request target put on the wire. One connection per request for
//! now; the outbox worker will want a pool per destination.

use crate::identity::Identity;
use crate::resolve::{Discovery, Endpoint, Resolver, Scheme, SrvRecord};
use crate::{FedError, tls};
use async_trait::async_trait;
use bytes_body::Body;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use ruma::ServerName;
use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName as TlsServerName;

mod bytes_body {
    pub type Body = http_body_util::Full<axum::body::Bytes>;
}

/// Connecting (TCP and TLS) must finish by then.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A well-known lookup is abandoned sooner: it delays every first contact.
const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (send_join answers with a room's whole state can be large).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
const MAX_WELL_KNOWN: usize = 64 * 1024;

/// How outgoing connections are made.
#[derive(Clone)]
pub struct Transport {
    connector: TlsConnector,
    /// Connect to loopback and private addresses found by resolution (tests, private
    /// deployments). Off by default: a remote server must not make us reach internal services.
    allow_private: bool,
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON, or an error naming the status.
    pub fn json(&self) -> Result<Value, FedError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| FedError::BadResponse(format!("{}: not JSON ({e})", self.status)))
    }
}

impl Transport {
    pub fn new(accept_invalid_certs: bool, allow_private: bool) -> Result<Self, FedError> {
        Ok(Self {
            connector: TlsConnector::from(Arc::new(tls::client_config(accept_invalid_certs)?)),
            allow_private,
        })
    }

    /// Sends `request` (its URI: the origin-form target) to `endpoint`.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        request: Request<Body>,
    ) -> Result<Response, FedError> {
        self.send_limited(endpoint, request, MAX_RESPONSE, REQUEST_TIMEOUT)
            .await
    }

    async fn send_limited(
        &self,
        endpoint: &Endpoint,
        mut request: Request<Body>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Response, FedError> {
        let host = HeaderValue::from_str(&endpoint.host_header)
            .map_err(|_| FedError::Unreachable(format!("bad host {:?}", endpoint.host_header)))?;
        request.headers_mut().insert(http::header::HOST, host);
        let work = async {
            let tcp = self.connect(endpoint).await?;
            match endpoint.scheme {
                Scheme::Http => exchange(TokioIo::new(tcp), request, limit).await,
                Scheme::Https => {
                    let name = TlsServerName::try_from(endpoint.tls_name.clone()).map_err(|e| {
                        FedError::Unreachable(format!("{}: {e}", endpoint.tls_name))
                    })?;
                    let stream =
                        tokio::time::timeout(CONNECT_TIMEOUT, self.connector.connect(name, tcp))
                            .await
                            .map_err(|_| {
                                FedError::Unreachable(format!(
                                    "{}: TLS handshake timed out",
                                    endpoint.tls_name
                                ))
                            })?
                            .map_err(|e| {
                                FedError::Unreachable(format!("{}: TLS: {e}", endpoint.tls_name))
                            })?;
                    exchange(TokioIo::new(stream), request, limit).await
                }
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| FedError::Unreachable(format!("{}: timed out", endpoint.host_header)))?
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<TcpStream, FedError> {
        let target = (endpoint.connect_host.as_str(), endpoint.port);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(target))
                .await
                .map_err(|_| {
                    FedError::Unreachable(format!("{}: DNS timed out", endpoint.connect_host))
                })?
                .map_err(|e| FedError::Unreachable(format!("{}: {e}", endpoint.connect_host)))?
                .collect();
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| {
                endpoint.overridden
                    || self.allow_private
                    || apogee_http::addresses::is_public(a.ip())
            })
            .collect();
        if allowed.is_empty() {
            return Err(FedError::Unreachable(format!(
                "{}: no public address (private and loopback addresses are refused)",
                endpoint.connect_host
            )));
        }
        let mut last = None;
        for addr in allowed {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
                Err(_) => last = Some(format!("{addr}: connect timed out")),
            }
        }
        Err(FedError::Unreachable(last.unwrap_or_default()))
    }
}

/// One request over an open connection, answer read up to `limit` bytes.
async fn exchange<I>(io: I, request: Request<Body>, limit: usize) -> Result<Response, FedError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| FedError::Unreachable(format!("HTTP: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "federation connection ended");
        }
    });
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| FedError::Unreachable(format!("HTTP: {e}")))?;
    let status = answer.status();
    let body = http_body_util::Limited::new(answer.into_body(), limit)
        .collect()
        .await
        .map_err(|e| FedError::BadResponse(format!("answer body: {e}")))?
        .to_bytes()
        .to_vec();
    Ok(Response { status, body })
}

/// Resolution's network lookups: well-known over HTTPS (port 443), SRV with the system's DNS.
pub struct NetDiscovery {
    transport: Transport,
    dns: Option<hickory_resolver::TokioResolver>,
    /// 443 in production; tests serve well-known elsewhere.
    well_known_port: u16,
}

impl NetDiscovery {
    pub fn new(transport: Transport) -> Self {
        let dns = match hickory_resolver::Resolver::builder_tokio() {
            Ok(builder) => Some(builder.build()),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS configuration: SRV lookups disabled");
                None
            }
        };
        Self {
            transport,
            dns,
            well_known_port: 443,
        }
    }

    #[doc(hidden)]
    pub fn with_well_known_port(mut self, port: u16) -> Self {
        self.well_known_port = port;
        self
    }
}

#[async_trait]
impl Discovery for NetDiscovery {
    async fn well_known(&self, hostname: &str) -> Option<String> {
        let endpoint = Endpoint {
            scheme: Scheme::Https,
            connect_host: hostname.to_string(),
            port: self.well_known_port,
            host_header: hostname.to_string(),
            tls_name: hostname.to_string(),
            overridden: false,
        };
        let request = Request::get("/.well-known/matrix/server")
            .body(Body::default())
            .ok()?;
        let answer = self
            .transport
            .send_limited(&endpoint, request, MAX_WELL_KNOWN, WELL_KNOWN_TIMEOUT)
            .await
            .inspect_err(|e| tracing::debug!(hostname, error = %e, "no .well-known/matrix/server"))
            .ok()?;
        if !answer.status.is_success() {
            return None;
        }
        let doc: Value = serde_json::from_slice(&answer.body).ok()?;
        doc.get("m.server")?.as_str().map(str::to_string)
    }

    async fn srv(&self, name: &str) -> Vec<SrvRecord> {
        let Some(dns) = &self.dns else {
            return Vec::new();
        };
        match tokio::time::timeout(WELL_KNOWN_TIMEOUT, dns.srv_lookup(name)).await {
            Ok(Ok(found)) => found
                .iter()
                .map(|r| SrvRecord {
                    priority: r.priority(),
                    weight: r.weight(),
                    target: r.target().to_utf8(),
                    port: r.port(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Signed and unsigned requests to other servers.
pub struct Client {
    identity: Arc<Identity>,
    resolver: Resolver,
    transport: Transport,
}

impl Client {
    pub fn new(identity: Arc<Identity>, resolver: Resolver, transport: Transport) -> Self {
        Self {
            identity,
            resolver,
            transport,
        }
    }

    /// An unauthenticated `GET` (server keys, version).
    pub async fn get_unsigned(
        &self,
        server: &ServerName,
        target: &str,
    ) -> Result<Response, FedError> {
        let endpoint = self.resolver.resolve(server).await?;
        let request = Request::get(target)
            .body(Body::default())
            .map_err(|e| FedError::Internal(format!("request {target}: {e}")))?;
        self.transport.send(&endpoint, request).await
    }

    /// A request signed with `X-Matrix`. `target` is the path and query exactly as it goes on
    /// the wire (already percent-encoded): that string is what is signed.
    pub async fn request(
        &self,
        server: &ServerName,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Response, FedError> {
        let endpoint = self.resolver.resolve(server).await?;
        let content = body
            .map(|b| serde_json::to_vec(b).map_err(|e| FedError::Internal(format!("body: {e}"))))
            .transpose()?;
        let authorization =
            x_matrix_header(&self.identity, server, &method, target, content.as_deref())?;
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header(http::header::AUTHORIZATION, authorization);
        if content.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Body::from(content.unwrap_or_default()))
            .map_err(|e| FedError::Internal(format!("request {target}: {e}")))?;
        // What is signed must be what is sent: the URI must not have been normalised.
        debug_assert_eq!(
            request.uri().path_and_query().map(|p| p.as_str()),
            Some(target)
        );
        self.transport.send(&endpoint, request).await
    }

    /// A signed `GET` whose answer must be a success with a JSON body; `what` names the
    /// request in the error (with the server's own `error` text when it gives one).
    pub async fn get_json(
        &self,
        server: &ServerName,
        target: &str,
        what: &str,
    ) -> Result<Value, FedError> {
        let answer = self.request(server, Method::GET, target, None).await?;
        if !answer.status.is_success() {
            let reason = answer
                .json()
                .ok()
                .and_then(|b| b.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            return Err(FedError::BadResponse(
                format!("{what}: {} {reason}", answer.status)
                    .trim_end()
                    .to_string(),
            ));
        }
        answer.json()
    }
}

/// `Authorization: X-Matrix origin="…",destination="…",key="…",sig="…"` for a request: the
/// signature covers the canonical JSON of `{method, uri, origin, destination, content?}`, with
/// `uri` = `target` byte for byte.
pub fn x_matrix_header(
    identity: &Identity,
    destination: &ServerName,
    method: &Method,
    target: &str,
    body: Option<&[u8]>,
) -> Result<HeaderValue, FedError> {
    let request = Request::builder()
        .method(method.clone())
        .uri(target)
        .body(body.unwrap_or_default())
        .map_err(|e| FedError::Internal(format!("request {target}: {e}")))?;
    let input = XMatrixSigningInput::new(
        identity.server_name.clone(),
        destination.to_owned(),
        identity.key_pair(),
    );
    let signed = XMatrix::sign_http_request(&request, input)
        .map_err(|e| FedError::Internal(format!("X-Matrix signature: {e}")))?;
    Ok(HeaderValue::from(&signed))
}
