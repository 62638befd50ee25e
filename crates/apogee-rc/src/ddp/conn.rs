//! One DDP connection: handshake, heartbeats, serial method execution, subscriptions and
//! delivery of stream events, over raw DDP or SockJS framing. The connection's own task writes
//! to the socket: frames wait in a bounded queue only while the socket is not ready, and a
//! client that lets that queue fill, or does not take a write for `WRITE_TIMEOUT`, is closed
//! (1013). Writing in the same task that turned the event into frames saves a hand-off (and a
//! task wake-up) per delivered frame. Methods, subscriptions and presence updates run in boxed
//! futures: every idle connection keeps its task's future in memory, which then holds the
//! connection's own state (about 3 KiB) instead of room for the largest method (about 8 KiB).

use crate::ddp::ejson::{meteor_error, to_ejson};
use crate::ddp::hub::{ConnId, Delivery, Hub, StatusChange};
use crate::ddp::limits::{CallKind, Caller};
use crate::ddp::methods::{self, Ctx};
use crate::ddp::streams::{Frame, Streams};
use apogee_core::Core;
use apogee_core::error::CoreError;
use apogee_core::events::Event;
use apogee_ddp::frame::{Incoming, parse_packet};
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::future::{FutureExt, poll_fn};
use futures_util::stream::SplitSink;
use futures_util::{Sink, SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

/// Frames queued for a client before it counts as a slow consumer.
const QUEUE: usize = 1024;
/// No client message for this long: we ping; for twice this long: we close 4000.
const IDLE: Duration = Duration::from_secs(30);
/// SockJS heartbeat interval.
const HEARTBEAT: Duration = Duration::from_secs(25);
/// A socket that takes no write for this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// How frames are wrapped on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One DDP message per text frame (`/websocket`).
    Raw,
    /// SockJS: `o`, `a["…"]`, `h`; the client sends `["…"]` (`/sockjs/…/websocket`).
    SockJs,
}

/// Why the connection loop stopped.
#[derive(Debug)]
struct Closed;

/// How the connection is to be closed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Close {
    code: u16,
    reason: &'static str,
    /// Close at once, dropping what is queued (the queue is full).
    urgent: bool,
}

type Socket = SplitSink<WebSocket, WsMessage>;

/// The sending half: the socket, the frames it has not taken yet, and how to close.
struct Outbox<S = Socket> {
    sink: S,
    queue: VecDeque<WsMessage>,
    /// Frames were handed to the socket but not flushed yet.
    unflushed: bool,
    framing: Framing,
    close: Option<Close>,
    /// Frames handed to the socket so far; the write timeout watches it for progress.
    written: u64,
}

impl<S: Sink<WsMessage> + Unpin> Outbox<S> {
    fn new(sink: S, framing: Framing) -> Self {
        Outbox {
            sink,
            queue: VecDeque::new(),
            unflushed: false,
            framing,
            close: None,
            written: 0,
        }
    }

    fn push(&mut self, msg: WsMessage) -> Result<(), Closed> {
        if self.queue.len() >= QUEUE {
            self.close(1013, "Try Again Later");
            return Err(Closed);
        }
        self.queue.push_back(msg);
        Ok(())
    }

    /// Sends one DDP message, dates as EJSON.
    fn send(&mut self, frame: Value) -> Result<(), Closed> {
        let text = to_ejson(frame).to_string();
        let text = match self.framing {
            Framing::Raw => text,
            Framing::SockJs => sockjs(&text),
        };
        self.push(WsMessage::Text(text.into()))
    }

    /// Sends one DDP message already rendered as EJSON text, shared with other recipients:
    /// raw framing sends those very bytes.
    fn send_shared(&mut self, text: &Utf8Bytes) -> Result<(), Closed> {
        let text = match self.framing {
            Framing::Raw => text.clone(),
            Framing::SockJs => sockjs(text).into(),
        };
        self.push(WsMessage::Text(text))
    }

    fn send_frame(&mut self, frame: Frame) -> Result<(), Closed> {
        match frame {
            Frame::Own(v) => self.send(v),
            Frame::Shared(text) => self.send_shared(&text),
        }
    }

    fn raw(&mut self, text: &'static str) -> Result<(), Closed> {
        self.push(WsMessage::Text(Utf8Bytes::from_static(text)))
    }

    /// Closes after whatever is queued, or at once when the queue is full. The first close
    /// asked for is the one sent.
    fn close(&mut self, code: u16, reason: &'static str) {
        let urgent = self.queue.len() >= QUEUE;
        match &mut self.close {
            None => {
                self.close = Some(Close {
                    code,
                    reason,
                    urgent,
                })
            }
            Some(close) => close.urgent |= urgent,
        }
    }

    /// Closes at once without writing what is queued (the socket stopped taking frames).
    fn abandon(&mut self) {
        self.close(1013, "Try Again Later");
        if let Some(close) = &mut self.close {
            close.urgent = true;
        }
    }

    /// Something waits to be written or flushed.
    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// Hands queued frames to the socket and flushes; ready once everything is written.
    /// Cancel-safe: a frame leaves the queue only when the socket has taken it.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        while !self.queue.is_empty() {
            match self.sink.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Closed)),
                Poll::Pending => return Poll::Pending,
            }
            let msg = self.queue.pop_front().expect("not empty");
            if self.sink.start_send_unpin(msg).is_err() {
                return Poll::Ready(Err(Closed));
            }
            self.written += 1;
            self.unflushed = true;
        }
        if self.unflushed {
            match self.sink.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Closed)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what the socket takes without waiting: `Ok(true)` when everything is written,
    /// `Ok(false)` when the socket is not ready for the rest.
    fn write_now(&mut self) -> Result<bool, Closed> {
        if !self.has_work() {
            return Ok(true);
        }
        match poll_fn(|cx| self.poll_write(cx)).now_or_never() {
            Some(Ok(())) => Ok(true),
            Some(Err(closed)) => Err(closed),
            None => Ok(false),
        }
    }

    /// Ends the connection: writes what is queued (unless the close is urgent), then the
    /// close frame, each within a time limit.
    async fn finish(&mut self) {
        let close = self.close.take().unwrap_or(Close {
            code: 1000,
            reason: "",
            urgent: false,
        });
        if !close.urgent {
            let written = timeout(WRITE_TIMEOUT, poll_fn(|cx| self.poll_write(cx))).await;
            if !matches!(written, Ok(Ok(()))) {
                return;
            }
        }
        let frame = WsMessage::Close(Some(CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        }));
        let limit = Duration::from_secs(1);
        if matches!(timeout(limit, self.sink.send(frame)).await, Ok(Ok(()))) {
            let _ = timeout(limit, self.sink.close()).await;
        }
    }
}

/// A DDP message as SockJS sends it: `a["<message>"]`.
fn sockjs(text: &str) -> String {
    format!("a{}", Value::Array(vec![Value::from(text)]))
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
    /// Frames of one event, reused from event to event.
    frames: Vec<Frame>,
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
    let (id, mut deliveries) = hub.register();
    let mut conn = Conn {
        core,
        hub,
        id,
        out: Outbox::new(sink, framing),
        ctx: Ctx {
            presence: Some(None),
            addr,
            user_agent,
            ..Ctx::default()
        },
        streams: Streams::default(),
        connected: false,
        addr,
        frames: Vec::new(),
    };
    let _ = conn.run(&mut stream, &mut deliveries).await;
    drop(deliveries);
    let change = conn.hub.unregister(conn.id);
    conn.apply(change).await;
    conn.out.finish().await;
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
        let mut pinged = false;
        let idle = sleep(IDLE);
        tokio::pin!(idle);
        let write_deadline = sleep(WRITE_TIMEOUT);
        tokio::pin!(write_deadline);
        // The socket did not take everything queued (the loop then waits for it), and how many
        // frames it had taken when that began.
        let mut blocked: Option<u64> = None;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            // Whatever the last turn queued goes out now, in this task.
            if blocked.is_none() && !self.out.write_now()? {
                blocked = Some(self.out.written);
                write_deadline
                    .as_mut()
                    .reset(Instant::now() + WRITE_TIMEOUT);
            }
            if self.out.close.is_some() {
                return Err(Closed);
            }
            tokio::select! {
                written = poll_fn(|cx| self.out.poll_write(cx)), if blocked.is_some() => {
                    written?;
                    blocked = None;
                }
                _ = &mut write_deadline, if blocked.is_some() => {
                    if blocked == Some(self.out.written) {
                        // Not one frame taken in WRITE_TIMEOUT: give up on the queue.
                        self.out.abandon();
                        return Err(Closed);
                    }
                    blocked = Some(self.out.written);
                    write_deadline.as_mut().reset(Instant::now() + WRITE_TIMEOUT);
                }
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
                    pinged = false;
                    idle.as_mut().reset(Instant::now() + IDLE);
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
                _ = &mut idle => {
                    if pinged {
                        self.out.close(4000, "TIMEOUT");
                        return Err(Closed);
                    }
                    pinged = true;
                    idle.as_mut().reset(Instant::now() + IDLE);
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
    fn rate_limit(&self, kind: CallKind, name: &str) -> Result<(), CoreError> {
        let caller = Caller {
            addr: self.addr,
            user: self.ctx.session.as_ref().map(|s| s.user.id.as_str()),
            connection: self.id,
            kind,
            name,
        };
        self.hub.limits.check(&self.core.settings, &caller)
    }

    async fn method(&mut self, id: &str, method: &str, params: &[Value]) -> Result<(), Closed> {
        let before_id = self.ctx.session.as_ref().map(|s| s.user.id.clone());
        let result = match self.rate_limit(CallKind::Method, method) {
            Ok(()) => Box::pin(methods::call(&self.core, &mut self.ctx, method, params)).await,
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
            if let Err(e) = Box::pin(self.streams.reset(&self.core, after.as_ref())).await {
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
            && let Err(e) = Box::pin(
                self.core
                    .set_connection_status(&change.user_id, change.status),
            )
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
        let subscribed = match self.rate_limit(CallKind::Subscription, name) {
            Ok(()) => {
                Box::pin(
                    self.streams
                        .subscribe(&self.core, user.as_ref(), id, name, params),
                )
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
            let ended = self
                .streams
                .on_event(&self.core, me, delivery, &mut self.frames)
                .await;
            for frame in self.frames.drain(..) {
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
    use std::pin::Pin;

    /// A socket that takes every frame at once and keeps it.
    #[derive(Default)]
    struct Taken(Vec<WsMessage>);

    impl Sink<WsMessage> for Taken {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, msg: WsMessage) -> Result<(), ()> {
            self.0.push(msg);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn texts(sink: &[WsMessage]) -> Vec<&str> {
        sink.iter()
            .filter_map(|m| match m {
                WsMessage::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn queued_frames_go_out_in_order_with_sockjs_framing() {
        let mut out = Outbox::new(Taken::default(), Framing::SockJs);
        out.send(json!({"msg": "ping", "ts": "1970-01-01T00:00:00.005Z"}))
            .unwrap();
        out.raw("h").unwrap();
        out.send_shared(&Utf8Bytes::from_static(r#"{"msg":"x"}"#))
            .unwrap();
        assert!(out.write_now().unwrap());
        assert_eq!(
            texts(&out.sink.0),
            [
                r#"a["{\"msg\":\"ping\",\"ts\":{\"$date\":5}}"]"#,
                "h",
                r#"a["{\"msg\":\"x\"}"]"#
            ]
        );
        assert!(!out.has_work());
        out.close(1000, "bye");
        out.finish().await;
        assert!(matches!(
            out.sink.0.last(),
            Some(WsMessage::Close(Some(CloseFrame { code: 1000, .. })))
        ));
    }

    /// Every idle connection keeps its task's future in memory, so that future must hold the
    /// connection's own state, not room for the largest method a client might call (about
    /// 8 KiB for `methods::call`): methods, subscriptions and presence updates are boxed
    /// while they run.
    #[test]
    fn an_idle_connections_task_stays_small() {
        fn future_size<A, B, C, D, E, G, Fut>(_: impl FnOnce(A, B, C, D, E, G) -> Fut) -> usize {
            std::mem::size_of::<Fut>()
        }
        let size = future_size(serve);
        assert!(size <= 4096, "a connection's future is {size} bytes");
    }

    #[tokio::test]
    async fn a_full_queue_closes_with_1013_at_once() {
        let mut out = Outbox::new(Taken::default(), Framing::Raw);
        for _ in 0..QUEUE {
            out.raw("h").unwrap();
        }
        assert!(out.raw("h").is_err(), "the queue holds QUEUE frames");
        assert_eq!(
            out.close,
            Some(Close {
                code: 1013,
                reason: "Try Again Later",
                urgent: true
            })
        );
        out.finish().await;
        assert_eq!(
            out.sink.0.len(),
            1,
            "queued frames are dropped, only the close is sent"
        );
        assert!(matches!(
            &out.sink.0[0],
            WsMessage::Close(Some(CloseFrame { code: 1013, .. }))
        ));
    }
}
