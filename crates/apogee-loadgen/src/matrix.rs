//! A minimal Matrix client-server API driver (what the peer scenario needs from Synapse):
//! shared-secret registration, rooms, sending, and `/sync` long-polls with a stored filter.

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use std::time::Duration;

/// A registered user: its id and access token (a device of its own).
#[derive(Clone)]
pub struct MatrixUser {
    pub user_id: String,
    pub token: String,
}

// The token is a secret: never printed.
impl std::fmt::Debug for MatrixUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixUser")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct Matrix {
    client: reqwest::Client,
    base: String,
}

/// The `mac` of Synapse's shared-secret registration: hex HMAC-SHA1 over
/// `nonce \0 username \0 password \0 admin|notadmin`, keyed by `registration_shared_secret`.
pub fn registration_mac(
    secret: &str,
    nonce: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    for (i, part) in [nonce, user, password].into_iter().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    mac.update(b"\0");
    mac.update(if admin {
        b"admin" as &[u8]
    } else {
        b"notadmin"
    });
    hex::encode(mac.finalize().into_bytes())
}

/// Percent-encodes a path segment (room ids hold `!` and `:`, user ids `@` and `:`).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `content.body` of every `m.room.message` event `room` gained in a `/sync` answer, and
/// whether its timeline was `limited` (events were left out: a gap the client would have to
/// back-fill).
pub fn timeline_bodies<'a>(sync: &'a Value, room: &str) -> (Vec<&'a str>, bool) {
    let timeline = &sync["rooms"]["join"][room]["timeline"];
    let bodies = timeline["events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .filter(|e| e["type"] == "m.room.message")
                .filter_map(|e| e["content"]["body"].as_str())
                .collect()
        })
        .unwrap_or_default();
    (bodies, timeline["limited"] == true)
}

impl Matrix {
    /// A client with a connection pool (setup, open-loop sends).
    pub fn new(base: &str) -> Result<Matrix> {
        Self::build(base, 64)
    }

    /// A client on one keep-alive HTTP/1.1 connection (a closed-loop sender or one receiver).
    pub fn single_connection(base: &str) -> Result<Matrix> {
        Self::build(base, 1)
    }

    fn build(base: &str, idle: usize) -> Result<Matrix> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(idle)
            .build()?;
        Ok(Matrix {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        query: &[(&str, String)],
    ) -> Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .query(query);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("{method} {path}: body"))?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }

    /// Registers `user` through `/_synapse/admin/v1/register` (no password login needed later:
    /// the answer carries an access token).
    pub async fn register(&self, secret: &str, user: &str, password: &str) -> Result<MatrixUser> {
        let path = "/_synapse/admin/v1/register";
        let nonce = self
            .request(reqwest::Method::GET, path, None, None, &[])
            .await?;
        let nonce = nonce["nonce"].as_str().context("register: no nonce")?;
        let v = self
            .request(
                reqwest::Method::POST,
                path,
                None,
                Some(&json!({
                    "nonce": nonce,
                    "username": user,
                    "password": password,
                    "admin": false,
                    "mac": registration_mac(secret, nonce, user, password, false),
                })),
                &[],
            )
            .await?;
        Ok(MatrixUser {
            user_id: v["user_id"]
                .as_str()
                .context("register: no user_id")?
                .into(),
            token: v["access_token"]
                .as_str()
                .context("register: no access_token")?
                .into(),
        })
    }

    /// A public room (anyone on the server may join) named `name`; returns its id.
    pub async fn create_room(&self, who: &MatrixUser, name: &str) -> Result<String> {
        let v = self
            .request(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(&who.token),
                Some(&json!({"preset": "public_chat", "name": name, "visibility": "private"})),
                &[],
            )
            .await?;
        v["room_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("createRoom: no room_id in {v}"))
    }

    pub async fn join(&self, who: &MatrixUser, room: &str) -> Result<()> {
        self.request(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/rooms/{}/join", segment(room)),
            Some(&who.token),
            Some(&json!({})),
            &[],
        )
        .await
        .map(|_| ())
    }

    /// Sends an `m.text` message with transaction id `txn`; returns its event id.
    pub async fn send_text(
        &self,
        who: &MatrixUser,
        room: &str,
        txn: &str,
        body: &str,
    ) -> Result<String> {
        let v = self
            .request(
                reqwest::Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                    segment(room),
                    segment(txn)
                ),
                Some(&who.token),
                Some(&json!({"msgtype": "m.text", "body": body})),
                &[],
            )
            .await?;
        v["event_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("send: no event_id in {v}"))
    }

    /// Stores a filter that keeps a sync to `room`'s message timeline (no state, presence,
    /// receipts, typing or account data); returns its id.
    pub async fn room_messages_filter(&self, who: &MatrixUser, room: &str) -> Result<String> {
        let filter = json!({
            "account_data": {"types": []},
            "presence": {"types": []},
            "room": {
                "rooms": [room],
                "timeline": {"limit": 100, "types": ["m.room.message"]},
                "state": {"types": [], "lazy_load_members": true},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
        });
        let v = self
            .request(
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/user/{}/filter", segment(&who.user_id)),
                Some(&who.token),
                Some(&filter),
                &[],
            )
            .await?;
        v["filter_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("filter: no filter_id in {v}"))
    }

    /// One `/sync`: from `since` (none: the initial sync), waiting up to `timeout` for news.
    pub async fn sync(
        &self,
        who: &MatrixUser,
        filter: &str,
        since: Option<&str>,
        timeout: Duration,
    ) -> Result<Value> {
        let mut query = vec![
            ("filter", filter.to_string()),
            ("timeout", timeout.as_millis().to_string()),
            ("set_presence", "offline".to_string()),
        ];
        if let Some(s) = since {
            query.push(("since", s.to_string()));
        }
        self.request(
            reqwest::Method::GET,
            "/_matrix/client/v3/sync",
            Some(&who.token),
            None,
            &query,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_mac_matches_synapse_admin_api() {
        // Python: hmac.new(secret, nonce\0user\0password\0notadmin, sha1).hexdigest()
        assert_eq!(
            registration_mac("apogee-test-registration", "abc123", "lg0", "pw", false),
            "41021db055f2667e2caf484c101eb3d96e9efcee"
        );
        assert_ne!(
            registration_mac("apogee-test-registration", "abc123", "lg0", "pw", true),
            registration_mac("apogee-test-registration", "abc123", "lg0", "pw", false)
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("!abc:synapse.test"), "%21abc%3Asynapse.test");
        assert_eq!(segment("@lg-1:s"), "%40lg-1%3As");
        assert_eq!(segment("t1.2_x~"), "t1.2_x~");
    }

    #[test]
    fn timeline_bodies_of_one_room() {
        let sync = json!({"rooms": {"join": {
            "!r:s": {"timeline": {"limited": true, "events": [
                {"type": "m.room.message", "content": {"body": "lg:1:2"}},
                {"type": "m.room.member", "content": {"membership": "join"}},
                {"type": "m.room.message", "content": {"body": "lg:2:3"}},
            ]}},
            "!other:s": {"timeline": {"events": [
                {"type": "m.room.message", "content": {"body": "elsewhere"}},
            ]}},
        }}});
        assert_eq!(
            timeline_bodies(&sync, "!r:s"),
            (vec!["lg:1:2", "lg:2:3"], true)
        );
        assert_eq!(timeline_bodies(&sync, "!none:s"), (vec![], false));
    }
}
