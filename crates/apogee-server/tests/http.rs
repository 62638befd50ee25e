//! HTTP hardening, black-box: security headers (and their settings changed at run time), CORS
//! as Rocket.Chat does it, request-head limits, `HTTP_FORWARDED_COUNT`, and TLS termination
//! (REST and a DDP WebSocket over it, HSTS, bad certificate files refused at start).

mod common;

use common::{Backend, Server};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn set_setting(s: &Server, admin: &common::Auth, id: &str, value: Value) {
    let (status, v) = s
        .post(
            &format!("/api/v1/settings/{id}"),
            admin,
            json!({"value": value}),
        )
        .await;
    assert_eq!(status, 200, "set {id}: {v}");
}

#[tokio::test]
async fn security_headers_follow_the_settings_at_run_time() {
    let s = Server::start_with(Backend::Sqlite, &[]).await;
    let admin = s.user("admin").await;
    let get = |path: &str| s.client.get(format!("{}{path}", s.base)).send();
    let r = get("/api/info").await.unwrap();
    let h = r.headers();
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
    assert_eq!(header(h, "referrer-policy"), "same-origin");
    assert_eq!(header(h, "x-frame-options"), "sameorigin");
    let csp = header(h, "content-security-policy");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    // Errors carry them too.
    let r = get("/api/v1/no.such.endpoint").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(r.headers(), "x-content-type-options"), "nosniff");
    // A handler's stricter policy stays.
    let r = get("/avatar/admin").await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = header(r.headers(), "content-security-policy");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(header(r.headers(), "x-content-type-options"), "nosniff");
    assert_eq!(header(r.headers(), "x-frame-options"), "sameorigin");

    set_setting(
        &s,
        &admin,
        "Extra_CSP_Domains",
        json!("https://cdn.example"),
    )
    .await;
    set_setting(&s, &admin, "Iframe_X_Frame_Options", json!("DENY")).await;
    set_setting(&s, &admin, "Default_Referrer_Policy", json!("no-referrer")).await;
    let r = get("/api/info").await.unwrap();
    let csp = header(r.headers(), "content-security-policy");
    assert!(
        csp.contains("script-src 'self' 'unsafe-eval' https://cdn.example"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(r.headers(), "x-frame-options"), "DENY");
    assert_eq!(header(r.headers(), "referrer-policy"), "no-referrer");

    set_setting(&s, &admin, "Enable_CSP", json!(false)).await;
    set_setting(&s, &admin, "Iframe_Restrict_Access", json!(false)).await;
    let r = get("/api/info").await.unwrap();
    assert!(r.headers().get("content-security-policy").is_none());
    assert!(r.headers().get("x-frame-options").is_none());
    assert_eq!(header(r.headers(), "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn cors_as_rocket_chat_does_it() {
    let s = Server::start_with(Backend::Sqlite, &[]).await;
    let admin = s.user("admin").await;
    let preflight = |origin: &str| {
        s.client
            .request(Method::OPTIONS, format!("{}/api/v1/me", s.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "x-user-id, x-auth-token")
            .send()
    };
    let actual = |origin: &str| {
        s.client
            .get(format!("{}/api/v1/me", s.base))
            .header("Origin", origin)
            .header("X-User-Id", &admin.user_id)
            .header("X-Auth-Token", &admin.token)
            .send()
    };
    // Off by default: preflights refused with Rocket.Chat's text, no allow headers anywhere.
    let r = preflight("https://app.example").await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(
        r.text().await.unwrap(),
        "CORS not enabled. Go to \"Admin > General > REST Api\" to enable it."
    );
    let r = actual("https://app.example").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Any origin.
    set_setting(&s, &admin, "API_Enable_CORS", json!(true)).await;
    let r = preflight("https://app.example").await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(header(h, "access-control-allow-origin"), "*");
    assert_eq!(
        header(h, "access-control-allow-methods"),
        "GET, POST, PUT, DELETE, HEAD, PATCH"
    );
    let allowed = header(h, "access-control-allow-headers");
    assert!(
        allowed.contains("X-User-Id") && allowed.contains("X-Auth-Token"),
        "{allowed}"
    );
    // A preflight for a POST-only route is answered the same way.
    let r = s
        .client
        .request(Method::OPTIONS, format!("{}/api/v1/login", s.base))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = actual("https://app.example").await.unwrap();
    assert_eq!(header(r.headers(), "access-control-allow-origin"), "*");

    // A list: listed origins are echoed, others refused.
    set_setting(
        &s,
        &admin,
        "API_CORS_Origin",
        json!("https://other.example, https://App.Example"),
    )
    .await;
    let r = preflight("https://app.example").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        "https://app.example"
    );
    assert_eq!(header(r.headers(), "vary"), "Origin");
    let r = preflight("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = actual("https://app.example").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        "https://app.example"
    );
    // A refused origin's request still runs (same-origin pages send Origin too), but the answer
    // has no allow header, so a browser keeps it from the page.
    let r = actual("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Outside /api there is no CORS handling.
    let r = s
        .client
        .request(Method::OPTIONS, format!("{}/avatar/admin", s.base))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn oversized_uris_and_heads_get_414_and_431_never_a_500() {
    let s = Server::start_with(Backend::Sqlite, &[]).await;
    let long = "a".repeat(9 * 1024);
    let r = s
        .client
        .get(format!("{}/api/v1/users.info?username={long}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(header(r.headers(), "x-content-type-options"), "nosniff");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["success"], false, "{v}");
    // Under the limit the request is routed as usual.
    let r = s
        .client
        .get(format!("{}/api/info?x={}", s.base, "a".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A 40 KiB header (over the 32 KiB head).
    let r = s
        .client
        .get(format!("{}/api/info", s.base))
        .header("X-Big", "b".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // 120 small headers (over 100).
    let mut req = s.client.get(format!("{}/api/info", s.base));
    for i in 0..120 {
        req = req.header(format!("x-h{i}"), "1");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // The server is unharmed.
    let r = s
        .client
        .get(format!("{}/api/info", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn trusted_proxies_name_the_client_for_the_address_lockout() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("HTTP_FORWARDED_COUNT", "1"),
            (
                "OVERWRITE_SETTING_Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
                "2",
            ),
        ],
    )
    .await;
    s.user("ann").await;
    let login = |xff: &'static str, user: &'static str, password: &'static str| {
        s.client
            .post(format!("{}/api/v1/login", s.base))
            .header("X-Forwarded-For", xff)
            .json(&json!({"user": user, "password": password}))
            .send()
    };
    for _ in 0..2 {
        login("6.6.6.6, 10.9.9.9", "nobody", "x").await.unwrap();
    }
    let v: Value = login("1.1.1.1, 10.9.9.9", "ann", common::PASSWORD)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "error-login-blocked-for-ip", "{v}");
    // Another client behind the same proxy (and the same peer address) is not blocked; the
    // client-written entries to the left change nothing.
    let r = login("10.9.9.9, 10.8.8.8", "ann", common::PASSWORD)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---- TLS ----------------------------------------------------------------------------------

struct TlsServer {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().to_vec())
}

fn start_tls(cert: &std::path::Path, key: &std::path::Path, env: &[(&str, &str)]) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(cert)
        .env("APOGEE_TLS_KEY", key)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start apogee");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("apogee exited before listening")
            .unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            assert!(line.contains("https"), "{line}");
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    TlsServer {
        child,
        addr,
        _dir: dir,
    }
}

fn tls_connector(root_der: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_stream(
    addr: &str,
    root_der: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tls_connector(root_der).connect(name, tcp).await.unwrap()
}

/// One HTTP/1.1 request over a fresh TLS connection: status, head, body.
async fn https(
    addr: &str,
    root: &[u8],
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut stream = tls_stream(addr, root).await;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let value = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, head.to_ascii_lowercase(), value)
}

#[tokio::test]
async fn tls_serves_rest_and_ddp_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = self_signed(dir.path());
    let s = start_tls(
        &cert,
        &key,
        &[(
            "OVERWRITE_SETTING_Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
            "2",
        )],
    );
    let (status, head, v) = https(&s.addr, &root, "GET", "/api/info", None).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["version"].is_string(), "{v}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    // The client address reaches the handlers over TLS: the address lockout works.
    for _ in 0..2 {
        https(
            &s.addr,
            &root,
            "POST",
            "/api/v1/login",
            Some(json!({"user": "nobody", "password": "x"})),
        )
        .await;
    }
    let (status, _, v) = https(
        &s.addr,
        &root,
        "POST",
        "/api/v1/login",
        Some(json!({"user": "nobody", "password": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(v["error"], "error-login-blocked-for-ip", "{v}");
    // DDP over a WebSocket on the same TLS listener.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let stream = tls_stream(&s.addr, &root).await;
    let (mut ws, response) = tokio_tungstenite::client_async("wss://localhost/websocket", stream)
        .await
        .expect("websocket over TLS");
    assert_eq!(response.status(), 101);
    ws.send(Message::text(
        json!({"msg": "connect", "version": "1", "support": ["1"]}).to_string(),
    ))
    .await
    .unwrap();
    let connected = loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a DDP frame")
            .expect("open")
            .unwrap();
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["msg"] == "connected" {
                break v;
            }
        }
    };
    assert!(connected["session"].is_string(), "{connected}");
    ws.send(Message::text(
        json!({"msg": "ping", "id": "p1"}).to_string(),
    ))
    .await
    .unwrap();
    let pong = loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["msg"] == "pong" {
                break v;
            }
        }
    };
    assert_eq!(pong["id"], "p1");
}

fn start_fails(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apogee"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .output()
        .expect("run apogee");
    assert!(!out.status.success(), "started with {args:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_certificate_files_fail_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let err = start_fails(&["--tls-cert", "/nonexistent/cert.pem", "--tls-key", key]);
    assert!(
        err.contains("TLS certificate /nonexistent/cert.pem"),
        "{err}"
    );
    let err = start_fails(&["--tls-cert", cert, "--tls-key", "/nonexistent/key.pem"]);
    assert!(
        err.contains("TLS private key /nonexistent/key.pem"),
        "{err}"
    );
    // A key file that holds no key (the certificate given twice).
    let err = start_fails(&["--tls-cert", cert, "--tls-key", cert]);
    assert!(err.contains("TLS private key"), "{err}");
    // Another certificate's key.
    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = self_signed(other.path());
    let err = start_fails(&["--tls-cert", cert, "--tls-key", other_key.to_str().unwrap()]);
    assert!(err.contains("do not go together"), "{err}");
    let err = start_fails(&["--tls-cert", cert]);
    assert!(err.contains("--tls-key"), "{err}");
}
