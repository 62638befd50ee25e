//! Black-box harness: starts the real `apogee` binary on `127.0.0.1:0` with a temp data dir
//! (SQLite) or a fresh PostgreSQL database, and drives it over HTTP.

#![allow(dead_code)]

pub mod ddp;
pub mod http_peer;
pub mod mail;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct Server {
    pub base: String,
    db: Option<String>,
    child: Child,
    _dir: tempfile::TempDir,
    pub client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which storage a test server uses.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends to run on: SQLite always, PostgreSQL when the test scripts started one.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if std::env::var("APOGEE_TEST_DATABASE_URL").is_ok() {
        b.push(Backend::Postgres);
    }
    b
}

async fn fresh_postgres() -> String {
    let base = std::env::var("APOGEE_TEST_DATABASE_URL").expect("APOGEE_TEST_DATABASE_URL");
    let name = format!("blackbox_{}", apogee_domain::random_id().to_lowercase());
    let psql = Command::new("psql")
        .arg(&base)
        .args(["-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql");
    assert!(psql.success(), "create database");
    let (root, _) = base.rsplit_once('/').expect("database URL with a path");
    format!("{root}/{name}")
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[]).await
    }

    /// Starts a server with extra environment variables.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(backend, dir, env, None).await
    }

    pub async fn start_in(
        backend: Backend,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        db: Option<String>,
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path());
        let db = match (backend, db) {
            (Backend::Postgres, Some(url)) => Some(url),
            (Backend::Postgres, None) => Some(fresh_postgres().await),
            (Backend::Sqlite, _) => None,
        };
        if let Some(url) = &db {
            cmd.args(["--database-url", url]);
        }
        cmd.env("OVERWRITE_SETTING_API_Enable_Rate_Limiter", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start apogee");
        let stderr = child.stderr.take().expect("stderr");
        // The log is kept beside the data (`server.log`, appended across restarts) so tests can
        // check what the server wrote.
        let log_path = dir.path().join("server.log");
        let addr = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .expect("server log");
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref() {
                let line = line.expect("log line");
                let _ = writeln!(log, "{line}");
                if let Some(rest) = line.split("address=").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    // Keep draining so the server never blocks on a full pipe.
                    std::thread::spawn(move || {
                        for line in lines.map_while(Result::ok) {
                            let _ = writeln!(log, "{line}");
                        }
                    });
                    return addr;
                }
            }
            panic!("apogee exited before listening");
        })
        .await
        .expect("reader");
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Server {
            base: format!("http://{addr}"),
            db,
            child,
            _dir: dir,
            client,
        }
    }

    /// The server's data directory (uploads live under `uploads/`).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The PostgreSQL URL this server uses.
    pub fn db_url(&self) -> &str {
        self.db.as_deref().unwrap_or_default()
    }

    /// Moves messages to one moment, in the database behind the server's back: no API lets a
    /// client choose a message's `ts`, and tests of messages sent in the same millisecond need
    /// several of them. Both the `ts` column and the stored document change; `updated_at` stays.
    pub fn set_message_ts(&self, ids: &[&str], ts: apogee_domain::Timestamp) {
        let iso = ts.to_iso();
        match &self.db {
            None => {
                let db = rusqlite::Connection::open(self.data_dir().join("apogee.db"))
                    .expect("open the server's SQLite file");
                db.busy_timeout(Duration::from_secs(10))
                    .expect("busy timeout");
                for id in ids {
                    let n = db
                        .execute(
                            "UPDATE messages SET ts = ?1, doc = json_set(doc, '$.ts', ?2) WHERE id = ?3",
                            rusqlite::params![ts.millis(), iso, id],
                        )
                        .expect("update message");
                    assert_eq!(n, 1, "message {id}");
                }
            }
            Some(url) => {
                for id in ids {
                    // Ids are Meteor ids (alphanumeric), so they are safe inside the literal.
                    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
                    let sql = format!(
                        "UPDATE messages SET ts = {ms}, doc = jsonb_set(doc::jsonb, '{{ts}}', to_jsonb('{iso}'::text))::text
                         WHERE id = '{id}' RETURNING id",
                        ms = ts.millis()
                    );
                    let out = Command::new("psql")
                        .arg(url)
                        .args(["-qAtc", &sql])
                        .output()
                        .expect("psql");
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), *id);
                }
            }
        }
    }

    /// Stops the server and hands back its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"))
    }

    /// Kills the server with SIGKILL (no shutdown path runs) and hands back what a restart on
    /// the same data needs: the data directory and, on PostgreSQL, the database URL.
    pub fn crash(mut self) -> (tempfile::TempDir, Option<String>) {
        self.child.kill().expect("SIGKILL apogee");
        let status = self.child.wait().expect("wait for apogee");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "apogee died by SIGKILL: {status}");
        }
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        (dir, self.db.take())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&Auth>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req
                .header("X-User-Id", &a.user_id)
                .header("X-Auth-Token", &a.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(auth), None).await
    }

    pub async fn post(&self, path: &str, auth: &Auth, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(auth), Some(body)).await
    }

    /// POSTs `body` and asserts success; the answer.
    pub async fn post_ok(&self, path: &str, auth: &Auth, body: Value) -> Value {
        let (status, v) = self.post(path, auth, body).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    /// The caller's subscription to `rid` (`subscriptions.getOne`).
    pub async fn subscription(&self, auth: &Auth, rid: &str) -> Value {
        let path = format!("/api/v1/subscriptions.getOne?roomId={rid}");
        let (status, v) = self.get(&path, auth).await;
        assert_eq!(status, 200, "{v}");
        v["subscription"].clone()
    }

    /// Registers a user and logs in. The first one registered becomes admin.
    pub async fn user(&self, username: &str) -> Auth {
        let body = json!({"username": username, "email": format!("{username}@example.com"), "pass": PASSWORD, "name": username});
        let (status, v) = self
            .call(Method::POST, "/api/v1/users.register", None, Some(body))
            .await;
        assert_eq!(status, 200, "register {username}: {v}");
        self.login(username).await
    }

    pub async fn login(&self, username: &str) -> Auth {
        let body = json!({"username": username, "password": PASSWORD});
        let (status, v) = self
            .call(Method::POST, "/api/v1/login", None, Some(body))
            .await;
        assert_eq!(status, 200, "login {username}: {v}");
        Auth::of_login(&v)
    }
}

#[derive(Clone, Debug)]
pub struct Auth {
    pub user_id: String,
    pub token: String,
}

impl Auth {
    /// The session a successful `/api/v1/login` answer carries.
    pub fn of_login(answer: &Value) -> Auth {
        Auth {
            user_id: answer["data"]["userId"]
                .as_str()
                .expect("userId")
                .to_string(),
            token: answer["data"]["authToken"]
                .as_str()
                .expect("authToken")
                .to_string(),
        }
    }
}

/// Asserts a Rocket.Chat 4xx envelope: `success: false` and the given `errorType`.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, error_type: Option<&str>) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["success"], false, "{}", got.1);
    assert!(got.1["error"].is_string(), "{}", got.1);
    if let Some(t) = error_type {
        assert_eq!(got.1["errorType"], t, "{}", got.1);
    }
}

/// The body of a 200 answer; any other answer fails the test, showing it.
#[track_caller]
pub fn expect_ok(got: (StatusCode, Value)) -> Value {
    assert_eq!(got.0, 200, "{}", got.1);
    got.1
}

/// Runs SQL against a stopped server's database (SQLite file or PostgreSQL), e.g. to age
/// what the binary cannot be asked to age.
pub fn run_sql(backend: Backend, dir: &std::path::Path, db: Option<&str>, sql: &str) {
    let status = match backend {
        Backend::Sqlite => Command::new("sqlite3")
            .arg(dir.join("apogee.db"))
            .arg(sql)
            .status(),
        Backend::Postgres => Command::new("psql")
            .arg(db.expect("database URL"))
            .args(["-qc", sql])
            .status(),
    };
    assert!(status.expect("sql client").success(), "{sql}");
}

/// Every file below `dir`, recursively (to grep what the server stored).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`'s bytes.
pub fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
