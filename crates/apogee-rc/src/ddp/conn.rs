//! One DDP connection: handshake, heartbeats, serial method execution, subscriptions and
//! delivery of stream events, over raw DDP or SockJS framing. Everything a connection sends goes
//! through a bounded queue drained by a writer task; a client that does not keep up is closed
//! with 1013.

use crate::ddp::ejson::{meteor_error, to_ejson};
use crate::ddp::hub::{ConnId, Delivery, Hub, StatusChange};
use crate::ddp::limits::Caller;
use crate::ddp::methods::{self, Ctx};
use crate::ddp::streams::{Frame, Streams};
use apogee_core::Core;
use apogee_core::error::CoreError;
use apogee_core::events::Event;
use apogee_ddp::frame::{Incoming, parse_packet};
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};

/// Frames queued for a client before it counts as a slow consumer.
const QUEUE: usize = 1024;
/// No client message for this long: we ping; for twice this long: we close 4000.
const IDLE: Duration = Duration::from_secs(30);
/// SockJS heartbeat interval.
const HEARTBEAT: Duration = Duration::from_secs(25);
/// A single write that takes longer than this ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// How frames are wrapped on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One DDP message per text frame (`/websocket`).
    Raw,
    /// SockJS: `o`, `a["…"]`, `h`; the client sends `["…"]` (`/sockjs/…/websocket`).
    SockJs,
}

enum Out {
    Text(String),
    Close(u16, &'static str),
}

/// Why the connection loop stopped.
#[derive(Debug)]
struct Closed;

/// The sending half: a bounded queue and a priority close for when the queue is full.
struct Outbox {
    tx: mpsc::Sender<Out>,
    urgent: watch::Sender<Option<(u16, &'static str)>>,
    framing: Framing,
}

impl Outbox {
    fn push(&mut self, out: Out) -> Result<(), Closed> {
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(1013, "Try Again Later");
                Err(Closed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Closed),
        }
    }

    /// Sends one DDP message, dates as EJSON.
    fn send(&mut self, frame: Value) -> Result<(), Closed> {
        self.send_text(&to_ejson(frame).to_string())
    }

    /// Sends one DDP message already rendered as EJSON text.
    fn send_text(&mut self, text: &str) -> Result<(), Closed> {
        let text = match self.framing {
            Framing::Raw => text.to_string(),
            Framing::SockJs => format!("a{}", json!([text])),
        };
        self.push(Out::Text(text))
    }

    fn send_frame(&mut self, frame: Frame) -> Result<(), Closed> {
        match frame {
            Frame::Own(v) => self.send(v),
            Frame::Shared(text) => self.send_text(&text),
        }
    }

    fn raw(&mut self, text: &str) -> Result<(), Closed> {
        self.push(Out::Text(text.to_string()))
    }

    /// Closes after whatever is queued, or at once when the queue is full.
    fn close(&mut self, code: u16, reason: &'static str) {
        if self.tx.try_send(Out::Close(code, reason)).is_err() {
            self.urgent.send_replace(Some((code, reason)));
        }
    }
}

async fn writer(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut rx: mpsc::Receiver<Out>,
    mut urgent: watch::Receiver<Option<(u16, &'static str)>>,
) {
    let close = |code: u16, reason: &'static str| {
        WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let out = tokio::select! {
            biased;
            (code, reason) = urgent_close(&mut urgent) => Out::Close(code, reason),
            out = rx.recv() => match out {
                Some(out) => out,
                None => Out::Close(1000, ""),
            },
        };
        let (msg, last) = match out {
            Out::Text(t) => (WsMessage::Text(t.into()), false),
            Out::Close(code, reason) => (close(code, reason), true),
        };
        let sent = tokio::select! {
            biased;
            (code, reason) = urgent_close(&mut urgent) => {
                let _ = timeout(Duration::from_secs(1), sink.send(close(code, reason))).await;
                break;
            }
            r = timeout(WRITE_TIMEOUT, sink.send(msg)) => matches!(r, Ok(Ok(()))),
        };
        if !sent || last {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Resolves when a close was requested out of band; never when the connection just ends.
async fn urgent_close(
    rx: &mut watch::Receiver<Option<(u16, &'static str)>>,
) -> (u16, &'static str) {
    let requested = rx.wait_for(Option::is_some).await.ok().and_then(|v| *v);
    match requested {
        Some(close) => close,
        None => std::future::pending().await,
    }
}

struct Conn {
    core: Arc<Core>,
    hub: Arc<Hub>,
    id: ConnId,
    out: Outbox,
    ctx: Ctx,
    streams: Streams,
    connected: bool,
    /// The client's address, for the per-address rate limit.
    addr: Option<IpAddr>,
}

/// Serves one upgraded WebSocket until either side closes.
pub async fn serve(
    socket: WebSocket,
    core: Arc<Core>,
    hub: Arc<Hub>,
    framing: Framing,
    addr: Option<IpAddr>,
    user_agent: Option<String>,
) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let (urgent_tx, urgent_rx) = watch::channel(None);
    let writer = tokio::spawn(writer(sink, rx, urgent_rx));
    let (id, mut deliveries) = hub.register();
    let mut conn = Conn {
        core,
        hub,
        id,
        out: Outbox {
            tx,
            urgent: urgent_tx,
            framing,
        },
        ctx: Ctx {
            presence: Some(None),
            addr,
            user_agent,
            ..Ctx::default()
        },
        streams: Streams::default(),
        connected: false,
        addr,
    };
    let _ = conn.run(&mut stream, &mut deliveries).await;
    let change = conn.hub.unregister(conn.id);
    conn.apply(change).await;
    drop(conn);
    let _ = writer.await;
}

impl Conn {
    async fn run(
        &mut self,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
        deliveries: &mut mpsc::Receiver<Arc<Delivery>>,
    ) -> Result<(), Closed> {
        if self.out.framing == Framing::SockJs {
            self.out.raw("o")?;
        }
        self.out
            .send(json!({"msg": "server_id", "server_id": "0"}))?;
        let mut last_seen = Instant::now();
        let mut pinged = false;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let idle_at = last_seen + if pinged { IDLE * 2 } else { IDLE };
            tokio::select! {
                incoming = stream.next() => {
                    let text = match incoming {
                        Some(Ok(WsMessage::Text(t))) => t,
                        Some(Ok(WsMessage::Binary(_))) => {
                            self.out.close(1007, "bad data");
                            return Err(Closed);
                        }
                        Some(Err(e)) => {
                            // Oversize frames are a capacity error of the WebSocket layer.
                            let too_big = e.to_string().contains("Space limit exceeded");
                            self.out.close(if too_big { 1009 } else { 1002 }, "");
                            return Err(Closed);
                        }
                        Some(Ok(WsMessage::Close(_))) | None => return Err(Closed),
                        Some(Ok(_)) => continue,
                    };
                    last_seen = Instant::now();
                    pinged = false;
                    self.packet(text.as_str()).await?;
                }
                delivery = deliveries.recv() => match delivery {
                    Some(delivery) => self.event(&delivery).await?,
                    None => {
                        // The hub dropped us: we fell too far behind on events.
                        self.out.close(1013, "Try Again Later");
                        return Err(Closed);
                    }
                },
                _ = sleep_until(idle_at) => {
                    if pinged {
                        self.out.close(4000, "TIMEOUT");
                        return Err(Closed);
                    }
                    pinged = true;
                    self.out.send(json!({"msg": "ping"}))?;
                }
                _ = heartbeat.tick(), if self.out.framing == Framing::SockJs => self.out.raw("h")?,
            }
        }
    }

    /// One WebSocket text frame: a DDP message, or for SockJS a JSON array of them.
    async fn packet(&mut self, text: &str) -> Result<(), Closed> {
        let Ok(messages) = parse_packet(text, self.out.framing == Framing::SockJs) else {
            self.out.close(1007, "bad data");
            return Err(Closed);
        };
        for message in messages {
            self.message(message).await?;
        }
        Ok(())
    }

    async fn message(&mut self, msg: Incoming) -> Result<(), Closed> {
        if !self.connected {
            let Incoming::Connect { version } = msg else {
                self.out.close(1002, "protocol error");
                return Err(Closed);
            };
            if !matches!(version.as_deref(), Some("1" | "pre1" | "pre2")) {
                self.out.send(json!({"msg": "failed", "version": "1"}))?;
                self.out.close(1002, "protocol error");
                return Err(Closed);
            }
            self.connected = true;
            let session = uuid::Uuid::new_v4().to_string();
            return self
                .out
                .send(json!({"msg": "connected", "session": session}));
        }
        match msg {
            Incoming::Ping { id } => {
                let mut pong = json!({"msg": "pong"});
                if let Some(id) = id {
                    pong["id"] = id;
                }
                self.out.send(pong)
            }
            Incoming::Pong => Ok(()),
            Incoming::Method { id, method, params } => self.method(&id, &method, &params).await,
            Incoming::Sub { id, name, params } => self.sub(&id, &name, &params).await,
            Incoming::Unsub { id } => {
                self.streams.unsubscribe(&id);
                self.follow_rooms();
                self.out.send(json!({"msg": "nosub", "id": id}))
            }
            Incoming::Connect { version } => {
                self.bad_request("Bad request", json!({"msg": "connect", "version": version}))
            }
            Incoming::Malformed { reason, offending } => {
                self.bad_request(reason, Value::Object(offending))
            }
        }
    }

    fn bad_request(&mut self, reason: &str, offending: Value) -> Result<(), Closed> {
        self.out
            .send(json!({"msg": "error", "reason": reason, "offendingMessage": offending}))
    }

    /// Counts a method call or subscription against the DDP rate limits.
    fn rate_limit(&self, name: &str) -> Result<(), CoreError> {
        let caller = Caller {
            addr: self.addr,
            user: self.ctx.session.as_ref().map(|s| s.user.id.as_str()),
            connection: self.id,
            name,
        };
        self.hub.limits.check(&self.core.settings, &caller)
    }

    async fn method(&mut self, id: &str, method: &str, params: &[Value]) -> Result<(), Closed> {
        let before_id = self.ctx.session.as_ref().map(|s| s.user.id.clone());
        let result = match self.rate_limit(method) {
            Ok(()) => methods::call(&self.core, &mut self.ctx, method, params).await,
            Err(e) => Err(e),
        };
        for frame in std::mem::take(&mut self.ctx.before_result) {
            self.out.send(frame)?;
        }
        let mut reply = json!({"msg": "result", "id": id});
        match result {
            Ok(Value::Null) => {}
            Ok(v) => reply["result"] = v,
            Err(e) => {
                log_failure(method, &e);
                reply["error"] = meteor_error(&e);
            }
        }
        // Presence and login effects land before the reply, so a client that acts on the
        // result finds them done.
        if let Some(away) = self.ctx.presence.as_mut().and_then(Option::take) {
            let change = self.hub.set_away(self.id, away);
            self.apply(change).await;
        }
        let after = self.ctx.session.as_ref().map(|s| s.user.clone());
        if before_id != after.as_ref().map(|u| u.id.clone()) {
            let changes = self
                .hub
                .login(self.id, after.as_ref().map(|u| u.id.as_str()));
            for change in changes {
                self.apply(Some(change)).await;
            }
            if let Err(e) = self.streams.reset(&self.core, after.as_ref()).await {
                log_failure("login", &e);
                self.out.close(1011, "internal error");
                return Err(Closed);
            }
            self.follow_rooms();
        }
        self.out.send(reply)?;
        self.out.send(json!({"msg": "updated", "methods": [id]}))?;
        if self.ctx.close_after {
            self.out.close(1002, "logged out");
            return Err(Closed);
        }
        Ok(())
    }

    /// Tells core a user's presence changed (their connections came, went, idled or woke).
    async fn apply(&self, change: Option<StatusChange>) {
        if let Some(change) = change
            && let Err(e) = self
                .core
                .set_connection_status(&change.user_id, change.status)
                .await
        {
            log_failure("presence", &e);
        }
    }

    /// Tells the hub what this connection needs to hear about, when that changed.
    fn follow_rooms(&mut self) {
        if let Some(interest) = self.streams.interest_if_changed() {
            self.hub.follow(self.id, interest);
        }
    }

    async fn sub(&mut self, id: &str, name: &str, params: &[Value]) -> Result<(), Closed> {
        let user = self.ctx.session.as_ref().map(|s| s.user.clone());
        let subscribed = match self.rate_limit(name) {
            Ok(()) => {
                self.streams
                    .subscribe(&self.core, user.as_ref(), id, name, params)
                    .await
            }
            Err(e) => Err(e),
        };
        match subscribed {
            Ok(initial) => {
                self.follow_rooms();
                self.out.send(json!({"msg": "ready", "subs": [id]}))?;
                for frame in initial {
                    self.out.send(frame)?;
                }
                Ok(())
            }
            Err(e) => {
                log_failure(name, &e);
                self.out
                    .send(json!({"msg": "nosub", "id": id, "error": meteor_error(&e)}))
            }
        }
    }

    async fn event(&mut self, delivery: &Delivery) -> Result<(), Closed> {
        let Some(session) = &mut self.ctx.session else {
            if let Some(frame) = self.streams.public_event(delivery) {
                self.out.send_frame(frame)?;
            }
            return Ok(());
        };
        let mut close = None;
        match &*delivery.event {
            Event::User { user } if user.id == session.user.id => {
                session.user = (**user).clone();
                if !user.active {
                    // Deactivated: the session ends here as it does over REST.
                    close = Some((4000, "deactivated"));
                }
            }
            Event::SessionsEnded {
                user_id,
                token_hash,
            } if *user_id == session.user.id
                && token_hash.as_ref().is_none_or(|t| *t == session.token_hash) =>
            {
                // Meteor closes a connection whose login token is removed; clients hear
                // `force_logout` first, so they drop the token rather than retry it.
                if let Some(frame) = self.streams.force_logout_frame(user_id) {
                    self.out.send_frame(frame)?;
                }
                close = Some((1000, "logged out"));
            }
            _ => {}
        }
        if !self.streams.is_empty() {
            // Borrowed, not cloned: this runs once per recipient of every event.
            let me = &session.user;
            let (frames, ended) = self.streams.on_event(&self.core, me, delivery).await;
            for frame in frames {
                self.out.send_frame(frame)?;
            }
            for id in ended {
                let e = CoreError::not_allowed("not-allowed");
                self.out
                    .send(json!({"msg": "nosub", "id": id, "error": meteor_error(&e)}))?;
            }
            self.follow_rooms();
        }
        if let Some((code, reason)) = close {
            self.out.close(code, reason);
            return Err(Closed);
        }
        Ok(())
    }
}

/// Logs a failed method or subscription: its name and error code, never its parameters.
fn log_failure(what: &str, e: &CoreError) {
    if e.kind == apogee_core::error::ErrorKind::Internal {
        tracing::error!(method = what, error = %e.message, "ddp call failed");
    } else {
        tracing::debug!(method = what, code = %e.code, "ddp call refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_closes_with_1013() {
        let (tx, mut rx) = mpsc::channel(2);
        let (urgent, mut urgent_rx) = watch::channel(None);
        let mut out = Outbox {
            tx,
            urgent,
            framing: Framing::SockJs,
        };
        out.send(json!({"msg": "ping", "ts": "1970-01-01T00:00:00.005Z"}))
            .unwrap();
        out.raw("h").unwrap();
        assert!(out.send(json!({"msg": "ping"})).is_err());
        assert_eq!(
            urgent_close(&mut urgent_rx).await,
            (1013, "Try Again Later")
        );
        match rx.recv().await {
            Some(Out::Text(t)) => assert_eq!(t, r#"a["{\"msg\":\"ping\",\"ts\":{\"$date\":5}}"]"#),
            _ => panic!("expected a text frame"),
        }
    }
}
