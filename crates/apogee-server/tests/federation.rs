//! Matrix federation of the real binary (build feature `federation`): the identity it publishes,
//! `X-Matrix` verification of requests from a peer, and, when `scripts/with-synapse.sh` started
//! one, interoperation with a real Synapse in both directions.

#![cfg(feature = "federation")]

mod common;

use apogee_core::store::FederationSigningKey;
use apogee_domain::Timestamp;
use apogee_federation::ruma::{CanonicalJsonObject, ServerName};
use apogee_federation::{Endpoint, Identity, Transport, resolve::Scheme};
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use common::{Backend, Server, backends};
use serde_json::{Value, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts apogee federating as `localhost:<port>`; waits for the federation listener.
async fn start(backend: Backend, extra: &[(&str, &str)]) -> (Server, u16) {
    let port = free_port();
    let name = format!("localhost:{port}");
    let listen = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("APOGEE_SERVER_NAME", name.as_str()),
        ("APOGEE_FEDERATION_LISTEN", listen.as_str()),
    ];
    env.extend_from_slice(extra);
    let s = Server::start_with(backend, &env).await;
    wait_for_federation(port).await;
    (s, port)
}

async fn wait_for_federation(port: u16) {
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
fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        scheme: Scheme::Https,
        connect_host: "127.0.0.1".into(),
        port,
        host_header: format!("localhost:{port}"),
        tls_name: "localhost".into(),
        overridden: true,
    }
}

async fn fed_call(port: u16, request: Request<http_body_util::Full<Bytes>>) -> (StatusCode, Value) {
    let transport = Transport::new(true, true).unwrap();
    let answer = transport
        .send(&endpoint(port), request)
        .await
        .expect("federation answer");
    let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, value)
}

async fn fed_get(port: u16, target: &str, authorization: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get(target);
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    fed_call(port, request.body(Default::default()).unwrap()).await
}

/// A peer: an identity and a plain-HTTP key server publishing it, counting fetches.
struct Peer {
    identity: Identity,
    url: String,
    fetches: Arc<AtomicUsize>,
}

async fn peer(name: &str) -> Peer {
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

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn signed(identity: &Identity, destination: &str, method: &Method, target: &str) -> String {
    let destination = <&ServerName>::try_from(destination).unwrap();
    apogee_federation::client::x_matrix_header(identity, destination, method, target, None)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn profile_target(user: &str) -> String {
    format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        user.replace('@', "%40").replace(':', "%3A")
    )
}

async fn register(s: &Server, username: &str, name: &str) {
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

#[tokio::test]
async fn identity_is_published_and_kept() {
    for backend in backends() {
        let (s, port) = start(backend, &[]).await;
        let name = format!("localhost:{port}");
        let (status, doc) = fed_get(port, "/_matrix/key/v2/server", None).await;
        assert_eq!(status, 200, "{doc}");
        let doc: CanonicalJsonObject = serde_json::from_value(doc).unwrap();
        let server = <&ServerName>::try_from(name.as_str()).unwrap();
        let keys = apogee_federation::keys::check_key_document(server, &doc, Timestamp::now())
            .expect("a self-signed key document for our name");
        assert_eq!(keys.len(), 1);
        let until = keys[0].valid_until.millis() - Timestamp::now().millis();
        assert!(
            (86_000_000..=86_400_000).contains(&until),
            "valid a day: {until}"
        );

        let (status, v) = fed_get(port, "/_matrix/federation/v1/version", None).await;
        assert_eq!(status, 200);
        assert_eq!(v["server"]["name"], "Apogee", "{v}");
        let (status, v) = fed_get(port, "/_matrix/federation/v1/no/such/thing", None).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (404, Some("M_UNRECOGNIZED"))
        );
        let (status, v) = s
            .call(
                reqwest::Method::GET,
                "/.well-known/matrix/server",
                None,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v, json!({"m.server": name}));

        // A restart on the same database publishes the same key (peers cache it by id).
        let db = s.db_url().to_string();
        let dir = s.stop();
        let db = (!db.is_empty()).then_some(db);
        let listen = format!("127.0.0.1:{port}");
        let s = Server::start_in(
            backend,
            dir,
            &[
                ("APOGEE_SERVER_NAME", &name),
                ("APOGEE_FEDERATION_LISTEN", &listen),
            ],
            db,
        )
        .await;
        wait_for_federation(port).await;
        let (_, again) = fed_get(port, "/_matrix/key/v2/server", None).await;
        let again: CanonicalJsonObject = serde_json::from_value(again).unwrap();
        let again =
            apogee_federation::keys::check_key_document(server, &again, Timestamp::now()).unwrap();
        assert_eq!(
            (&again[0].key_id, &again[0].public_key),
            (&keys[0].key_id, &keys[0].public_key)
        );
        drop(s);
    }
}

#[tokio::test]
async fn requests_are_verified_against_the_origins_keys() {
    for backend in backends() {
        let origin = peer("origin.test").await;
        let resolve = format!("origin.test={}", origin.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        register(&s, "bob", "Bob Builder").await;
        let target = profile_target(&format!("@bob:{us}"));

        let (status, v) = fed_get(port, &target, None).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (401, Some("M_UNAUTHORIZED")),
            "unsigned"
        );

        let auth = signed(&origin.identity, &us, &Method::GET, &target);
        let (status, v) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v, json!({"displayname": "Bob Builder"}));
        assert_eq!(origin.fetches.load(Ordering::SeqCst), 1, "key fetched once");
        let (status, _) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 200);
        assert_eq!(origin.fetches.load(Ordering::SeqCst), 1, "then cached");

        // The signature covers the exact target, the destination and the method.
        let other = profile_target(&format!("@alice:{us}"));
        let (status, _) = fed_get(port, &other, Some(&auth)).await;
        assert_eq!(status, 401, "signature of another target");
        let encoded_differently = target.replace("%40", "@");
        let (status, _) = fed_get(port, &encoded_differently, Some(&auth)).await;
        assert_eq!(status, 401, "same request decoded, not the bytes signed");
        let elsewhere = signed(&origin.identity, "localhost:1", &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&elsewhere)).await;
        assert_eq!(status, 401, "signed for another destination");
        let as_put = signed(&origin.identity, &us, &Method::PUT, &target);
        let (status, _) = fed_get(port, &target, Some(&as_put)).await;
        assert_eq!(status, 401, "signed for another method");
        // A key the origin does not publish: refused, and the origin not asked again at once.
        let unknown = auth.replace("ed25519:peer1", "ed25519:nope");
        let (status, _) = fed_get(port, &target, Some(&unknown)).await;
        assert_eq!(status, 401);
        let (status, _) = fed_get(port, &target, Some(&unknown)).await;
        assert_eq!(status, 401);
        assert!(
            origin.fetches.load(Ordering::SeqCst) <= 2,
            "refetch is rate limited"
        );
        // An impostor claiming the origin's name with its own key.
        let impostor = peer("origin.test").await;
        let forged = signed(&impostor.identity, &us, &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&forged)).await;
        assert_eq!(status, 401, "signature by a key the origin never published");

        // Verified requests get Matrix answers for users that are not there or not ours.
        let nobody = profile_target(&format!("@nobody:{us}"));
        let auth = signed(&origin.identity, &us, &Method::GET, &nobody);
        let (status, v) = fed_get(port, &nobody, Some(&auth)).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (404, Some("M_NOT_FOUND"))
        );
        let remote = profile_target("@bob:origin.test");
        let auth = signed(&origin.identity, &us, &Method::GET, &remote);
        let (status, v) = fed_get(port, &remote, Some(&auth)).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (400, Some("M_INVALID_PARAM"))
        );

        // The origin's key was kept in the database: a restart verifies without refetching.
        let fetched = origin.fetches.load(Ordering::SeqCst);
        let db = s.db_url().to_string();
        let dir = s.stop();
        let listen = format!("127.0.0.1:{port}");
        let s = Server::start_in(
            backend,
            dir,
            &[
                ("APOGEE_SERVER_NAME", &us),
                ("APOGEE_FEDERATION_LISTEN", &listen),
                ("APOGEE_FEDERATION_RESOLVE", &resolve),
            ],
            (!db.is_empty()).then_some(db),
        )
        .await;
        wait_for_federation(port).await;
        let auth = signed(&origin.identity, &us, &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 200);
        assert_eq!(
            origin.fetches.load(Ordering::SeqCst),
            fetched,
            "key from the database"
        );
        drop(s);
    }
}

/// Interop with a real Synapse (`scripts/with-synapse.sh`): Synapse fetches our keys, asks us
/// for a profile with a signed request we verify, and accepts a request we sign.
#[tokio::test]
async fn synapse_interop() {
    let (Ok(synapse), Ok(synapse_name)) = (
        std::env::var("APOGEE_TEST_SYNAPSE_URL"),
        std::env::var("APOGEE_TEST_SYNAPSE_NAME"),
    ) else {
        eprintln!("skipped: no Synapse (run under scripts/with-synapse.sh)");
        return;
    };
    let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
    let password = std::env::var("APOGEE_TEST_SYNAPSE_PASSWORD").unwrap();
    for backend in backends() {
        let resolve = format!("{synapse_name}={synapse}");
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        register(&s, "bob", "Bob Builder").await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();

        // Synapse, as a key notary, fetches our key document and vouches for it.
        let (_, ours) = fed_get(port, "/_matrix/key/v2/server", None).await;
        let key_id = ours["verify_keys"]
            .as_object()
            .and_then(|k| k.keys().next())
            .expect("our key id")
            .clone();
        let v: Value = http
            .post(format!("{synapse}/_matrix/key/v2/query"))
            .json(&json!({"server_keys": {&us: {&key_id: {"minimum_valid_until_ts": 0}}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = &v["server_keys"][0];
        assert_eq!(keys["server_name"], us.as_str(), "{v}");
        assert_eq!(keys["verify_keys"], ours["verify_keys"], "{v}");
        assert!(keys["signatures"][&us].is_object(), "{v}");
        assert!(
            keys["signatures"][&synapse_name].is_object(),
            "notarised: {v}"
        );

        // Synapse asks us, signed, for our user's profile: we verify it (fetching Synapse's
        // key) and answer.
        let login: Value = http
            .post(format!("{synapse}/_matrix/client/v3/login"))
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
        let answer = http
            .get(format!("{synapse}/_matrix/client/v3/profile/@bob:{us}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let profile: Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "{profile}");
        assert_eq!(profile["displayname"], "Bob Builder", "{profile}");
        let answer = http
            .get(format!("{synapse}/_matrix/client/v3/profile/@nobody:{us}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "our 404 passed on");

        // We ask Synapse, signed with the key the running server publishes (the same
        // database), for its user's profile; Synapse fetches our key and accepts.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee"));
        cmd.args(["admin", "federation", "request", "--data-dir"])
            .arg(s.data_dir())
            .args(["--server-name", &us, "--federation-resolve", &resolve])
            .arg(&synapse_name)
            .arg(profile_target(&format!("@{user}:{synapse_name}")));
        if !s.db_url().is_empty() {
            cmd.args(["--database-url", s.db_url()]);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("200 OK"));
        let body: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(body["displayname"], user.as_str(), "{body}");

        // A request Synapse cannot verify (signed for another target) is refused by it.
        let target = profile_target(&format!("@{user}:{synapse_name}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee"));
        cmd.args(["admin", "federation", "request", "--data-dir"])
            .arg(s.data_dir())
            .args([
                "--server-name",
                "localhost:1",
                "--federation-resolve",
                &resolve,
            ])
            .arg(&synapse_name)
            .arg(&target);
        if !s.db_url().is_empty() {
            cmd.args(["--database-url", s.db_url()]);
        }
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "a server name whose keys Synapse cannot fetch"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("401"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        drop(s);
    }
}

/// A Synapse client session (plain HTTP to the Synapse the script started).
struct Matrix {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Matrix {
    async fn login(base: &str, user: &str, password: &str) -> Self {
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

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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
    async fn send(&self, room: &str, kind: &str, content: Value) -> String {
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
    async fn messages(&self, room: &str) -> Vec<Value> {
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
}

fn enc(s: &str) -> String {
    apogee_federation::join::encode_segment(s)
}

/// Polls `check` every 100 ms for up to 30 s; on failure shows the server's federation log.
async fn eventually<T, F, Fut>(s: &Server, what: &str, mut check: F) -> T
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
fn federation_log(s: &Server) -> String {
    // The harness copies the server's stderr to the file as it comes.
    std::thread::sleep(Duration::from_millis(500));
    let log = std::fs::read_to_string(s.data_dir().join("server.log")).unwrap_or_default();
    log.lines()
        .filter(|l| {
            l.contains("federation") || l.contains("PDU") || l.contains("key") || l.contains("WARN")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An Apogee user joins Synapse rooms of versions 10, 11 and 12; the Synapse user's message,
/// edit, reaction and redactions show over REST; the Apogee user's message, edit and reaction
/// reach Synapse as signed events.
#[tokio::test]
async fn synapse_rooms() {
    let (Ok(synapse), Ok(synapse_name)) = (
        std::env::var("APOGEE_TEST_SYNAPSE_URL"),
        std::env::var("APOGEE_TEST_SYNAPSE_NAME"),
    ) else {
        eprintln!("skipped: no Synapse (run under scripts/with-synapse.sh)");
        return;
    };
    let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
    let password = std::env::var("APOGEE_TEST_SYNAPSE_PASSWORD").unwrap();
    let alice_id = format!("@{user}:{synapse_name}");
    let alice = Matrix::login(&synapse, &user, &password).await;
    for backend in backends() {
        // A server that is in no room, to forge events with.
        let mallory = peer("mallory.test").await;
        let resolve = format!("{synapse_name}={synapse},mallory.test={}", mallory.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        let _admin = s.user("admin").await;
        let bob = s.user("bob").await;
        let bob_id = format!("@bob:{us}");
        for version in ["10", "11", "12"] {
            let created = alice
                .call(
                    reqwest::Method::POST,
                    "/_matrix/client/v3/createRoom",
                    Some(json!({"preset": "public_chat", "room_version": version,
                        "name": format!("Synapse room v{version}")})),
                )
                .await;
            let room_id = created["room_id"].as_str().unwrap().to_string();

            // bob joins through Synapse: the mapped channel and his subscription.
            let (status, v) = s
                .post(
                    "/api/v1/federation/joinExternalPublicRoom",
                    &bob,
                    json!({"externalRoomId": room_id, "via": synapse_name}),
                )
                .await;
            assert_eq!(status, 200, "v{version}: {v}\n{}", federation_log(&s));
            let rid = v["room"]["_id"].as_str().unwrap().to_string();
            assert_eq!(v["room"]["t"], "c", "{v}");
            assert_eq!(
                v["room"]["fname"],
                format!("Synapse room v{version}"),
                "{v}"
            );
            assert_eq!(v["room"]["federation"]["mrid"], room_id.as_str(), "{v}");
            let (status, sub) = s
                .get(&format!("/api/v1/subscriptions.getOne?roomId={rid}"), &bob)
                .await;
            assert_eq!(status, 200, "{sub}");
            let (status, members) = s
                .get(&format!("/api/v1/channels.members?roomId={rid}"), &bob)
                .await;
            assert_eq!(status, 200, "{members}");
            let names: Vec<&str> = members["members"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["username"].as_str())
                .collect();
            assert!(
                names.contains(&alice_id.as_str()) && names.contains(&"bob"),
                "{members}"
            );
            let joined = alice
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room_id)),
                    None,
                )
                .await;
            assert!(
                joined["joined"][&bob_id].is_object(),
                "Synapse sees bob joined: {joined}"
            );
            // Joining again is answered with the same room.
            let (status, again) = s
                .post(
                    "/api/v1/federation/joinExternalPublicRoom",
                    &bob,
                    json!({"externalRoomId": room_id, "via": synapse_name}),
                )
                .await;
            assert_eq!(
                (status.as_u16(), &again["room"]["_id"]),
                (200, &json!(rid)),
                "{again}"
            );

            // alice writes: the message shows over REST as hers.
            let text = format!("hello from Synapse v{version}");
            let hello = alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": text}),
                )
                .await;
            let server = &s;
            let history = || {
                let path = format!("/api/v1/channels.messages?roomId={rid}&count=50");
                let bob = bob.clone();
                async move {
                    server.get(&path, &bob).await.1["messages"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }
            };
            let message = eventually(server, "alice's message", || async {
                history()
                    .await
                    .into_iter()
                    .find(|m| m["msg"] == text.as_str())
            })
            .await;
            assert_eq!(message["u"]["username"], alice_id.as_str(), "{message}");
            assert_eq!(
                message["federation"]["eventId"],
                hello.as_str(),
                "{message}"
            );
            let mid = message["_id"].as_str().unwrap().to_string();
            let get = || {
                let path = format!("/api/v1/chat.getMessage?msgId={mid}");
                let bob = bob.clone();
                async move { server.get(&path, &bob).await }
            };

            // Forged events are refused and change nothing: a non-member's message (signed
            // by its own server) and one claiming to be alice's without her server's signature.
            let state = alice
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/rooms/{}/state", enc(&room_id)),
                    None,
                )
                .await;
            let state_id = |t: &str, k: &str| {
                state
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["type"] == t && e["state_key"] == k)
                    .map(|e| e["event_id"].as_str().unwrap().to_string())
                    .unwrap()
            };
            let mut auth = vec![state_id("m.room.power_levels", "")];
            if version != "12" {
                auth.push(state_id("m.room.create", ""));
            }
            let rules = apogee_federation::pdu::rules_for(version).unwrap();
            for (sender, why) in [
                ("@mallory:mallory.test", "not a member"),
                (alice_id.as_str(), "not signed by alice's server"),
            ] {
                let mut event = json!({"type": "m.room.message", "room_id": room_id, "sender": sender,
                    "content": {"msgtype": "m.text", "body": "forged"}, "prev_events": [hello],
                    "auth_events": auth, "depth": 1000});
                if sender == alice_id {
                    event["auth_events"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!(state_id("m.room.member", &alice_id)));
                }
                let pdu = apogee_federation::pdu::sign_new(
                    serde_json::from_value(event).unwrap(),
                    &rules,
                    &mallory.identity,
                    Timestamp::now(),
                )
                .unwrap();
                let body = json!({"origin": "mallory.test", "origin_server_ts": 1, "pdus": [pdu.to_json()]});
                let bytes = serde_json::to_vec(&body).unwrap();
                let target = format!("/_matrix/federation/v1/send/{}", apogee_domain::random_id());
                let authorization = apogee_federation::client::x_matrix_header(
                    &mallory.identity,
                    <&ServerName>::try_from(us.as_str()).unwrap(),
                    &Method::PUT,
                    &target,
                    Some(&bytes),
                )
                .unwrap();
                let request = Request::put(&target)
                    .header("Authorization", authorization)
                    .header("Content-Type", "application/json")
                    .body(http_body_util::Full::new(Bytes::from(bytes)))
                    .unwrap();
                let (status, answer) = fed_call(port, request).await;
                assert_eq!(status, 200, "{answer}");
                let result = &answer["pdus"][pdu.event_id.as_str()];
                assert!(result["error"].is_string(), "{why}: {answer}");
            }
            assert!(
                !history().await.iter().any(|m| m["msg"] == "forged"),
                "forged events wrote nothing"
            );

            // Her edit replaces the text.
            let edited = format!("edited on Synapse v{version}");
            alice
                .send(
                    &room_id,
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": format!("* {edited}"),
                    "m.new_content": {"msgtype": "m.text", "body": edited},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": hello}}),
                )
                .await;
            eventually(server, "the edit", || async {
                let (_, v) = get().await;
                (v["message"]["msg"] == edited.as_str() && v["message"]["editedAt"].is_string())
                    .then_some(())
            })
            .await;

            // Her reaction, then its redaction.
            let reaction = alice
                .send(&room_id, "m.reaction", json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": hello, "key": "👍"}}))
                .await;
            eventually(server, "the reaction", || async {
                let (_, v) = get().await;
                (v["message"]["reactions"][":thumbsup:"]["usernames"] == json!([alice_id]))
                    .then_some(())
            })
            .await;
            alice
                .call(
                    reqwest::Method::PUT,
                    &format!(
                        "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                        enc(&room_id),
                        enc(&reaction),
                        apogee_domain::random_id()
                    ),
                    Some(json!({"reason": "oops"})),
                )
                .await;
            eventually(server, "the reaction's redaction", || async {
                let (_, v) = get().await;
                v["message"]["reactions"].is_null().then_some(())
            })
            .await;

            // bob answers from Apogee: Synapse gets his signed event.
            let reply = format!("hello from Apogee v{version}");
            let (status, sent) = s
                .post(
                    "/api/v1/chat.postMessage",
                    &bob,
                    json!({"roomId": rid, "text": reply}),
                )
                .await;
            assert_eq!(status, 200, "{sent}");
            let bob_mid = sent["message"]["_id"].as_str().unwrap().to_string();
            let bob_event = eventually(server, "bob's message on Synapse", || async {
                alice
                    .messages(&room_id)
                    .await
                    .into_iter()
                    .find(|e| e["content"]["body"] == reply.as_str())
            })
            .await;
            assert_eq!(bob_event["sender"], bob_id.as_str(), "{bob_event}");
            assert_eq!(
                sent["message"]["federation"]["eventId"], bob_event["event_id"],
                "{sent}"
            );
            // His edit and his reaction to alice's message follow, in order.
            let (status, v) = s
                .post(
                    "/api/v1/chat.update",
                    &bob,
                    json!({"roomId": rid, "msgId": bob_mid, "text": "bob edited"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            let (status, v) = s
                .post(
                    "/api/v1/chat.react",
                    &bob,
                    json!({"messageId": mid, "emoji": ":tada:"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            eventually(server, "bob's edit and reaction on Synapse", || async {
                let events = alice.messages(&room_id).await;
                let edit = events.iter().any(|e| {
                    e["content"]["m.new_content"]["body"] == "bob edited"
                        && e["content"]["m.relates_to"]["event_id"] == bob_event["event_id"]
                });
                let react = events.iter().any(|e| {
                    e["type"] == "m.reaction"
                        && e["sender"] == bob_id.as_str()
                        && e["content"]["m.relates_to"]["key"] == "🎉"
                });
                (edit && react).then_some(())
            })
            .await;

            // alice redacts her message: it is gone from Apogee.
            alice
                .call(
                    reqwest::Method::PUT,
                    &format!(
                        "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                        enc(&room_id),
                        enc(&hello),
                        apogee_domain::random_id()
                    ),
                    Some(json!({})),
                )
                .await;
            eventually(server, "the message's redaction", || async {
                let (status, _) = get().await;
                (status != 200).then_some(())
            })
            .await;
        }
        drop(s);
    }
}
