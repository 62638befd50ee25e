//! Rocket.Chat REST v1 helpers: login, bulk user creation, tokens, channels, messages.

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// A logged-in user: what `X-User-Id` / `X-Auth-Token` and DDP `resume` need.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub token: String,
}

/// A created user with a login token.
#[derive(Debug, Clone)]
pub struct LoadUser {
    pub username: String,
    pub session: Session,
}

#[derive(Clone)]
pub struct Rest {
    client: reqwest::Client,
    base: String,
}

impl Rest {
    pub fn new(base: &str) -> Result<Rest> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Rest {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// A client on one keep-alive HTTP/1.1 connection (requests from it go one at a time).
    pub fn single_connection(base: &str) -> Result<Rest> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .build()?;
        Ok(Rest {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// A client on one keep-alive HTTP/1.1 connection whose requests leave from `local` (e.g.
    /// 127.0.0.2: on Linux every 127/8 address is the loopback, so one machine can play a
    /// second client address without proxies or forged headers).
    pub fn single_connection_from(base: &str, local: std::net::IpAddr) -> Result<Rest> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .local_address(local)
            .build()?;
        Ok(Rest {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// `login` with a username and password, answered either way: the HTTP status and body.
    pub async fn try_login(&self, user: &str, password: &str) -> Result<(u16, Value)> {
        let resp = self
            .client
            .post(format!("{}/api/v1/login", self.base))
            .json(&json!({"user": user, "password": password}))
            .send()
            .await
            .context("POST login")?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.context("POST login: body")?;
        Ok((status, v))
    }

    /// GETs `path?query`; fails unless the answer is 2xx with `success: true`.
    pub async fn get(&self, path: &str, auth: &Session, query: &[(&str, String)]) -> Result<Value> {
        let resp = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(query)
            .header("X-User-Id", &auth.user_id)
            .header("X-Auth-Token", &auth.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("GET {path}: body"))?;
        if !status.is_success() || v["success"] == false {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }

    /// POSTs `body`; fails unless the answer is 2xx with `success: true`.
    pub async fn post(&self, path: &str, auth: Option<&Session>, body: Value) -> Result<Value> {
        let mut req = self
            .client
            .post(format!("{}/api/v1/{path}", self.base))
            .json(&body);
        if let Some(a) = auth {
            req = req
                .header("X-User-Id", &a.user_id)
                .header("X-Auth-Token", &a.token);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("POST {path}: body"))?;
        if !status.is_success() || v["success"] == false {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    /// `login` with a username and password.
    pub async fn login(&self, user: &str, password: &str) -> Result<Session> {
        let v = self
            .post("login", None, json!({"user": user, "password": password}))
            .await?;
        session_of(&v["data"])
    }

    /// `users.createToken` for `user_id` (admin permission or the operator secret; no hashing).
    pub async fn create_token(
        &self,
        admin: &Session,
        user_id: &str,
        secret: &str,
    ) -> Result<Session> {
        let v = self
            .post(
                "users.createToken",
                Some(admin),
                json!({"userId": user_id, "secret": secret}),
            )
            .await?;
        session_of(&v["data"])
    }

    /// Creates `count` users named `{prefix}{i}` (at most `concurrency` requests at a time) and
    /// mints a token for each. Password hashing on the server dominates this.
    pub async fn create_users(
        &self,
        admin: &Session,
        prefix: &str,
        count: usize,
        secret: &str,
        concurrency: usize,
    ) -> Result<Vec<LoadUser>> {
        let results: Vec<Result<(usize, LoadUser)>> = futures_util::stream::iter(0..count)
            .map(|i| async move {
                let username = format!("{prefix}{i}");
                let v = self
                    .post(
                        "users.create",
                        Some(admin),
                        json!({
                            "email": format!("{username}@example.invalid"),
                            "name": format!("Load {i}"),
                            "username": username,
                            "password": "loadgen-user-pass",
                        }),
                    )
                    .await?;
                let id = v["user"]["_id"]
                    .as_str()
                    .with_context(|| format!("users.create: no user._id in {v}"))?;
                let session = self.create_token(admin, id, secret).await?;
                Ok((i, LoadUser { username, session }))
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut users: Vec<(usize, LoadUser)> = results.into_iter().collect::<Result<_>>()?;
        users.sort_by_key(|(i, _)| *i);
        Ok(users.into_iter().map(|(_, u)| u).collect())
    }

    /// `channels.create` with `members` (usernames); returns the room id.
    pub async fn create_channel(
        &self,
        auth: &Session,
        name: &str,
        members: &[String],
    ) -> Result<String> {
        let v = self
            .post(
                "channels.create",
                Some(auth),
                json!({"name": name, "members": members}),
            )
            .await?;
        v["channel"]["_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("channels.create: no channel._id in {v}"))
    }

    /// `chat.sendMessage`; returns the message id.
    pub async fn send_message(&self, auth: &Session, rid: &str, msg: &str) -> Result<String> {
        let v = self
            .post(
                "chat.sendMessage",
                Some(auth),
                json!({"message": {"rid": rid, "msg": msg}}),
            )
            .await?;
        Ok(v["message"]["_id"].as_str().unwrap_or_default().to_string())
    }
}

fn session_of(data: &Value) -> Result<Session> {
    Ok(Session {
        user_id: data["userId"]
            .as_str()
            .context("no data.userId")?
            .to_string(),
        token: data["authToken"]
            .as_str()
            .context("no data.authToken")?
            .to_string(),
    })
}
