//! What the federation tests share: starting apogee federating on loopback, signed requests
//! to its federation port, a key-publishing peer, and a Synapse client session.

pub(crate) use crate::common::{self, Backend, Server};
pub(crate) use apogee_core::store::FederationSigningKey;
pub(crate) use apogee_domain::Timestamp;
pub(crate) use apogee_federation::ruma::{CanonicalJsonObject, ServerName};
pub(crate) use apogee_federation::{Endpoint, Identity, Transport, resolve::Scheme};
pub(crate) use axum::body::Bytes;
pub(crate) use axum::http::{Method, Request, StatusCode};
pub(crate) use serde_json::{Value, json};
pub(crate) use std::process::Command;
pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
pub(crate) use std::time::Duration;

/// A free loopback port (bound, then released for the server to take).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts apogee federating as `localhost:<port>`; waits for its federation listener.
///
/// The port is free when chosen but not held, so another process of the parallel tests can
/// take it before the server binds it; the server then stops at start, and a connection to the
/// port reaches the other process. So the server's own log must say it listens there, else
/// the start is tried again with another port (the log shown, in case it is something else).
pub(crate) async fn start(backend: Backend, extra: &[(&str, &str)]) -> (Server, u16) {
    for _ in 0..3 {
        let port = free_port();
        let name = format!("localhost:{port}");
        let listen = format!("127.0.0.1:{port}");
        let mut env = vec![
            ("APOGEE_SERVER_NAME", name.as_str()),
            ("APOGEE_FEDERATION_LISTEN", listen.as_str()),
        ];
        env.extend_from_slice(extra);
        let s = Server::start_with(backend, &env).await;
        let mine = format!("federation is listening address={listen}");
        for _ in 0..100 {
            if server_log(&s).contains(&mine) {
                wait_for_federation(port).await;
                return (s, port);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "apogee did not listen on {listen}; starting again:\n{}",
            server_log(&s)
        );
    }
    panic!("apogee's federation listener did not start in 3 tries");
}

/// The server's log so far (the harness copies its stderr to the file as it comes).
fn server_log(s: &Server) -> String {
    std::fs::read_to_string(s.data_dir().join("server.log")).unwrap_or_default()
}

pub(crate) async fn wait_for_federation(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("federation listener on {port} never came up");
}

/// Our federation port, over TLS, certificate not checked (it is self-signed).
pub(crate) fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        scheme: Scheme::Https,
        connect_host: "127.0.0.1".into(),
        port,
        host_header: format!("localhost:{port}"),
        tls_name: "localhost".into(),
        overridden: true,
    }
}

pub(crate) async fn fed_call(
    port: u16,
    request: Request<http_body_util::Full<Bytes>>,
) -> (StatusCode, Value) {
    let transport = Transport::new(true, true).unwrap();
    let answer = transport
        .send(&endpoint(port), request)
        .await
        .expect("federation answer");
    let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, value)
}

pub(crate) async fn fed_get(
    port: u16,
    target: &str,
    authorization: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::get(target);
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    fed_call(port, request.body(Default::default()).unwrap()).await
}

/// A GET to our federation port, signed by `identity` for `us`.
pub(crate) async fn signed_get(
    port: u16,
    us: &str,
    identity: &Identity,
    target: &str,
) -> (StatusCode, Value) {
    let authorization = signed(identity, us, &Method::GET, target);
    fed_get(port, target, Some(&authorization)).await
}

/// A PUT with a JSON body to our federation port, signed by `identity`.
pub(crate) async fn fed_put(
    port: u16,
    us: &str,
    identity: &Identity,
    target: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let authorization = apogee_federation::client::x_matrix_header(
        identity,
        <&ServerName>::try_from(us).unwrap(),
        &Method::PUT,
        target,
        Some(&bytes),
    )
    .unwrap();
    let request = Request::put(target)
        .header("Authorization", authorization)
        .header("Content-Type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(bytes)))
        .unwrap();
    fed_call(port, request).await
}

/// A peer: an identity and a plain-HTTP key server publishing it, counting fetches.
pub(crate) struct Peer {
    pub(crate) identity: Identity,
    pub(crate) url: String,
    pub(crate) fetches: Arc<AtomicUsize>,
}

pub(crate) async fn peer(name: &str) -> Peer {
    let der = apogee_federation::ruma::signatures::Ed25519KeyPair::generate();
    let stored = FederationSigningKey {
        key_id: "ed25519:peer1".into(),
        pkcs8: base64_encode(der.as_slice()),
        created_at: Timestamp::now(),
    };
    let identity = Identity::from_stored(name.try_into().unwrap(), &stored).unwrap();
    let published = Arc::new(Identity::from_stored(name.try_into().unwrap(), &stored).unwrap());
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/_matrix/key/v2/server",
        axum::routing::get(move || {
            let (published, counter) = (published.clone(), counter.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(published.key_document(Timestamp::now()).unwrap())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Peer {
        identity,
        url,
        fetches,
    }
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn signed(
    identity: &Identity,
    destination: &str,
    method: &Method,
    target: &str,
) -> String {
    let destination = <&ServerName>::try_from(destination).unwrap();
    apogee_federation::client::x_matrix_header(identity, destination, method, target, None)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

pub(crate) fn profile_target(user: &str) -> String {
    format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        user.replace('@', "%40").replace(':', "%3A")
    )
}

pub(crate) async fn register(s: &Server, username: &str, name: &str) {
    let body = json!({"username": username, "email": format!("{username}@example.com"),
        "pass": common::PASSWORD, "name": name});
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/users.register",
            None,
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

/// A Synapse client session (plain HTTP to the Synapse the script started).
pub(crate) struct Matrix {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Matrix {
    pub(crate) async fn login(base: &str, user: &str, password: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let login: Value = http
            .post(format!("{base}/_matrix/client/v3/login"))
            .json(&json!({"type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user}, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"]
            .as_str()
            .expect("Synapse login")
            .to_string();
        Self {
            http,
            base: base.to_string(),
            token,
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer = req.send().await.unwrap();
        let status = answer.status();
        let v: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Sends an event to a room; returns its id.
    pub(crate) async fn send(&self, room: &str, kind: &str, content: Value) -> String {
        let txn = apogee_domain::random_id();
        let v = self
            .call(
                reqwest::Method::PUT,
                &format!("/_matrix/client/v3/rooms/{}/send/{kind}/{txn}", enc(room)),
                Some(content),
            )
            .await;
        v["event_id"].as_str().unwrap().to_string()
    }

    /// The room's newest events, newest first.
    pub(crate) async fn messages(&self, room: &str) -> Vec<Value> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50",
                    enc(room)
                ),
                None,
            )
            .await;
        v["chunk"].as_array().cloned().unwrap_or_default()
    }

    /// Uploads a file to Synapse's media repository; its `mxc://` URI.
    pub(crate) async fn upload(
        &self,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> String {
        let uploaded: Value = self
            .http
            .post(format!(
                "{}/_matrix/media/v3/upload?filename={filename}",
                self.base
            ))
            .bearer_auth(&self.token)
            .header("Content-Type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        uploaded["content_uri"]
            .as_str()
            .expect("uploaded")
            .to_string()
    }
}

/// A new public room on Synapse, made by `alice`, of room `version`, named `name`; its Matrix id.
pub(crate) async fn synapse_room(alice: &Matrix, version: &str, name: &str) -> String {
    let created = alice
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({"preset": "public_chat", "room_version": version, "name": name})),
        )
        .await;
    created["room_id"].as_str().unwrap().to_string()
}

/// `joiner` joins the Matrix room `room_id` from Apogee through the server `via`: the mapped
/// room's id, and the room as the answer shows it.
pub(crate) async fn join_via(
    s: &Server,
    joiner: &common::Auth,
    room_id: &str,
    via: &str,
) -> (String, Value) {
    let (status, v) = s
        .post(
            "/api/v1/federation/joinExternalPublicRoom",
            joiner,
            json!({"externalRoomId": room_id, "via": via}),
        )
        .await;
    assert_eq!(
        status,
        200,
        "joining {room_id} via {via}: {v}\n{}",
        federation_log(s)
    );
    let rid = v["room"]["_id"].as_str().unwrap().to_string();
    (rid, v["room"].clone())
}

/// Waits until Synapse shows `alice` a message in `room_id` whose body is `body`; that event.
pub(crate) async fn wait_for_message(
    s: &Server,
    alice: &Matrix,
    room_id: &str,
    body: &str,
) -> Value {
    eventually(s, &format!("the message {body:?} on Synapse"), || async {
        alice
            .messages(room_id)
            .await
            .into_iter()
            .find(|e| e["content"]["body"] == body)
    })
    .await
}

/// The bytes of a file message's file (its attachment's `title_link`), downloaded by `auth`.
pub(crate) async fn download_file(s: &Server, auth: &common::Auth, message: &Value) -> Vec<u8> {
    let link = message["attachments"][0]["title_link"]
        .as_str()
        .unwrap_or_else(|| panic!("no file link in {message}"));
    let got = s
        .client
        .get(format!("{}{link}", s.base))
        .header("X-User-Id", &auth.user_id)
        .header("X-Auth-Token", &auth.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200, "{link}");
    got.bytes().await.unwrap().to_vec()
}

pub(crate) fn enc(s: &str) -> String {
    apogee_federation::join::encode_segment(s)
}

/// Polls `check` every 100 ms for up to 30 s; on failure shows the server's federation log.
pub(crate) async fn eventually<T, F, Fut>(s: &Server, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}; server log:\n{}",
        federation_log(s)
    );
}

/// The server log's federation lines and warnings.
pub(crate) fn federation_log(s: &Server) -> String {
    std::thread::sleep(Duration::from_millis(500));
    server_log(s)
        .lines()
        .filter(|l| {
            l.contains("federation") || l.contains("PDU") || l.contains("key") || l.contains("WARN")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Synapse of a test's own (`APOGEE_TEST_SYNAPSE_CTL new`), to stop and start without
/// disturbing the tests running beside it on the shared one.
pub(crate) struct OwnSynapse {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) alice_id: String,
    ctl: String,
    id: String,
}

impl OwnSynapse {
    /// A new Synapse, or `None` (the test is skipped) outside `scripts/with-synapse.sh`.
    pub(crate) fn new() -> Option<Self> {
        let (Ok(name), Ok(ctl)) = (
            std::env::var("APOGEE_TEST_SYNAPSE_NAME"),
            std::env::var("APOGEE_TEST_SYNAPSE_CTL"),
        ) else {
            eprintln!("skipped: no Synapse (run under scripts/with-synapse.sh)");
            return None;
        };
        let started = synapse_ctl(&ctl, &["new"]);
        let (id, url) = started.trim().split_once(' ').expect("ID URL");
        let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
        Some(Self {
            url: url.to_string(),
            alice_id: format!("@{user}:{name}"),
            name,
            id: id.to_string(),
            ctl,
        })
    }

    /// A new session of its user alice.
    pub(crate) async fn alice(&self) -> Matrix {
        let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
        let password = std::env::var("APOGEE_TEST_SYNAPSE_PASSWORD").unwrap();
        Matrix::login(&self.url, &user, &password).await
    }

    pub(crate) fn stop(&self) {
        synapse_ctl(&self.ctl, &["stop", &self.id]);
    }

    pub(crate) fn start(&self) {
        synapse_ctl(&self.ctl, &["start", &self.id]);
    }
}

fn synapse_ctl(ctl: &str, args: &[&str]) -> String {
    let out = Command::new(ctl).args(args).output().expect("synapse ctl");
    assert!(
        out.status.success(),
        "synapse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The Synapse `scripts/with-synapse.sh` started, with its user alice logged in.
pub(crate) struct Synapse {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) alice_id: String,
    pub(crate) alice: Matrix,
}

/// The running Synapse, or `None` (the test is skipped) when none was started.
pub(crate) async fn synapse() -> Option<Synapse> {
    let (Ok(url), Ok(name)) = (
        std::env::var("APOGEE_TEST_SYNAPSE_URL"),
        std::env::var("APOGEE_TEST_SYNAPSE_NAME"),
    ) else {
        eprintln!("skipped: no Synapse (run under scripts/with-synapse.sh)");
        return None;
    };
    let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
    let password = std::env::var("APOGEE_TEST_SYNAPSE_PASSWORD").unwrap();
    let alice = Matrix::login(&url, &user, &password).await;
    Some(Synapse {
        alice_id: format!("@{user}:{name}"),
        url,
        name,
        alice,
    })
}
