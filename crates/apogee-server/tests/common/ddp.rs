//! A raw-DDP test client over a real WebSocket (`/websocket` or SockJS framing).

use super::{Auth, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Ddp {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    sockjs: bool,
    pub next_id: u64,
}

pub enum Frame {
    Json(Value),
    Raw(String),
    Closed(Option<u16>),
}

impl Ddp {
    pub async fn open(s: &Server, path: &str) -> Ddp {
        let url = format!("{}{path}", s.base.replacen("http://", "ws://", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
        Ddp {
            ws,
            sockjs: path.starts_with("/sockjs"),
            next_id: 0,
        }
    }

    /// Opens `/websocket`, checks the id frame and does the handshake.
    pub async fn connect(s: &Server) -> Ddp {
        let mut d = Ddp::open(s, "/websocket").await;
        assert_eq!(d.next().await["msg"], "server_id");
        d.send(json!({"msg": "connect", "version": "1", "support": ["1", "pre2", "pre1"]}))
            .await;
        let connected = d.next().await;
        assert_eq!(connected["msg"], "connected", "{connected}");
        assert!(connected["session"].as_str().is_some_and(|s| !s.is_empty()));
        d
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, v: Value) {
        let text = if self.sockjs {
            json!([v.to_string()]).to_string()
        } else {
            v.to_string()
        };
        self.send_text(text).await;
    }

    pub async fn frame(&mut self) -> Frame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if self.sockjs {
                        if let Some(rest) = t.strip_prefix('a') {
                            let items: Vec<String> = serde_json::from_str(rest).expect("a[...]");
                            assert_eq!(items.len(), 1);
                            return Frame::Json(serde_json::from_str(&items[0]).unwrap());
                        }
                        return Frame::Raw(t.to_string());
                    }
                    return Frame::Json(serde_json::from_str(t).expect("json frame"));
                }
                Some(Ok(Message::Close(c))) => return Frame::Closed(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Closed(None),
            }
        }
    }

    /// The next DDP message (server pings are answered and skipped).
    pub async fn next(&mut self) -> Value {
        loop {
            match self.frame().await {
                Frame::Json(v) if v["msg"] == "ping" && v.get("id").is_none() => {
                    self.send(json!({"msg": "pong"})).await;
                }
                Frame::Json(v) => return v,
                Frame::Raw(r) => panic!("unexpected raw frame {r}"),
                Frame::Closed(c) => panic!("closed {c:?}"),
            }
        }
    }

    /// Reads until a message satisfies `pred`.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Calls a method; returns its `result` message.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        self.send(json!({"msg": "method", "method": method, "params": params, "id": id}))
            .await;
        let result = self
            .until(|v| v["msg"] == "result" && v["id"] == id.as_str())
            .await;
        let updated = self.until(|v| v["msg"] == "updated").await;
        assert_eq!(updated["methods"], json!([id]));
        result
    }

    /// Subscribes; returns `ready` or `nosub`.
    pub async fn sub(&mut self, name: &str, event: &str) -> Value {
        self.next_id += 1;
        let id = format!("s{}", self.next_id);
        self.send(json!({"msg": "sub", "id": id, "name": name, "params": [event, {"useCollection": false, "args": []}]}))
            .await;
        self.until(|v| {
            (v["msg"] == "ready" && v["subs"] == json!([id]))
                || (v["msg"] == "nosub" && v["id"] == id.as_str())
        })
        .await
    }

    pub async fn resume(&mut self, auth: &Auth) {
        let r = self.call("login", json!([{"resume": auth.token}])).await;
        assert_eq!(r["result"]["id"], auth.user_id.as_str(), "{r}");
    }

    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Frame::Closed(code) = self.frame().await {
                return code;
            }
        }
    }
}
