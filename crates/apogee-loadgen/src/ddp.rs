//! A minimal DDP client over a raw WebSocket (`/websocket`), as Rocket.Chat's clients speak it.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type WsSink = SplitSink<Ws, Message>;
pub type WsStream = SplitStream<Ws>;

/// How long a setup step (handshake, login, sub) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Small client buffers, so that the generator can hold ~19k sockets cheaply.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
}

/// Opens a WebSocket with the small client buffers.
pub async fn open(url: &str) -> Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(client_config()), true)
        .await
        .with_context(|| format!("connect {url}"))?;
    Ok(ws)
}

/// Resolves once `stop` holds `true` (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The `pong` answering a server `ping` (echoing its id, if any).
pub fn pong_for(ping: &Value) -> Value {
    match ping.get("id") {
        Some(id) => json!({"msg": "pong", "id": id}),
        None => json!({"msg": "pong"}),
    }
}

/// The password digest DDP's `login` carries instead of the password.
pub fn password_digest(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

/// One DDP connection during setup: methods and subscriptions are awaited in turn.
pub struct Ddp {
    ws: Ws,
    next_id: u64,
    pub session: String,
}

impl Ddp {
    /// Opens `url` (`ws://host/websocket`) and does the `connect` handshake.
    pub async fn connect(url: &str) -> Result<Ddp> {
        let ws = open(url).await?;
        let mut d = Ddp {
            ws,
            next_id: 0,
            session: String::new(),
        };
        d.send(&json!({"msg": "connect", "version": "1", "support": ["1", "pre2", "pre1"]}))
            .await?;
        let v = d
            .until(|v| v["msg"] == "connected" || v["msg"] == "failed")
            .await?;
        if v["msg"] != "connected" {
            bail!("handshake refused: {v}");
        }
        d.session = v["session"].as_str().unwrap_or_default().to_string();
        Ok(d)
    }

    pub async fn send(&mut self, v: &Value) -> Result<()> {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .context("ws send")
    }

    /// The next DDP message; pings are answered and skipped.
    pub async fn next(&mut self) -> Result<Value> {
        loop {
            let frame = tokio::time::timeout(STEP_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| anyhow!("no frame within {STEP_TIMEOUT:?}"))?;
            match frame {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str())
                        .with_context(|| format!("non-JSON frame {:?}", t.as_str()))?;
                    if v["msg"] == "ping" {
                        self.send(&pong_for(&v)).await?;
                        continue;
                    }
                    return Ok(v);
                }
                Some(Ok(Message::Close(c))) => bail!("closed by server: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("ws error: {e}"),
                None => bail!("connection ended"),
            }
        }
    }

    /// Reads until `pred` holds; other messages are dropped.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        loop {
            let v = self.next().await?;
            if pred(&v) {
                return Ok(v);
            }
        }
    }

    /// Calls `method`; returns its `result` (an `error` fails).
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        self.send(&json!({"msg": "method", "id": id, "method": method, "params": params}))
            .await?;
        let v = self
            .until(|v| v["msg"] == "result" && v["id"] == id.as_str())
            .await?;
        if let Some(e) = v.get("error") {
            bail!("{method} failed: {e}");
        }
        Ok(v["result"].clone())
    }

    /// `login` with a resume token; returns the user id.
    pub async fn login_resume(&mut self, token: &str) -> Result<String> {
        let r = self.call("login", json!([{"resume": token}])).await?;
        r["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("login result without id: {r}"))
    }

    /// `login` with a username and the password's SHA-256 digest; returns (user id, token).
    pub async fn login_password(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<(String, String)> {
        let r = self
            .call(
                "login",
                json!([{
                    "user": {"username": username},
                    "password": {"digest": password_digest(password), "algorithm": "sha-256"},
                }]),
            )
            .await?;
        let id = r["id"].as_str().context("login: no id")?.to_string();
        let token = r["token"].as_str().context("login: no token")?.to_string();
        Ok((id, token))
    }

    /// `sub`; waits for `ready` (a `nosub` fails).
    pub async fn subscribe(&mut self, name: &str, params: Value) -> Result<()> {
        self.next_id += 1;
        let id = format!("s{}", self.next_id);
        self.send(&json!({"msg": "sub", "id": id, "name": name, "params": params}))
            .await?;
        let v = self
            .until(|v| {
                (v["msg"] == "ready"
                    && v["subs"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|x| x == id.as_str())))
                    || (v["msg"] == "nosub" && v["id"] == id.as_str())
            })
            .await?;
        if v["msg"] == "nosub" {
            bail!("sub {name} refused: {v}");
        }
        Ok(())
    }

    /// Reads until `stop` turns true, answering pings; every other message goes to `on_msg`.
    /// Returns how the loop ended: `Ok` on stop, `Err` if the server closed first.
    pub async fn receive_until(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut on_msg: impl FnMut(&Value),
    ) -> Result<()> {
        loop {
            tokio::select! {
                _ = crate::ddp::stopped(&mut stop) => return Ok(()),
                frame = self.ws.next() => match frame {
                    Some(Ok(Message::Text(t))) => {
                        let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                            bail!("non-JSON frame {:?}", t.as_str());
                        };
                        if v["msg"] == "ping" {
                            self.send(&pong_for(&v)).await?;
                        } else {
                            on_msg(&v);
                        }
                    }
                    Some(Ok(Message::Close(c))) => bail!("closed by server: {c:?}"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => bail!("ws error: {e}"),
                    None => bail!("connection ended"),
                },
            }
        }
    }

    /// Splits into a sink and a stream (for a sender that writes while another task reads).
    pub fn split(self) -> (WsSink, WsStream) {
        self.ws.split()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            password_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pong_echoes_the_ping_id() {
        assert_eq!(pong_for(&json!({"msg": "ping"})), json!({"msg": "pong"}));
        assert_eq!(
            pong_for(&json!({"msg": "ping", "id": "7"})),
            json!({"msg": "pong", "id": "7"})
        );
    }
}
