//! The scenarios: idle density, fan-out latency, calibration, and all of them together.

use crate::ddp::{self, Ddp};
use crate::hist::{self, Summary};
use crate::proc;
use crate::rest::{LoadUser, Rest, Session};
use crate::server::{self, Spawned};
use anyhow::{Context, Result, bail};
use futures_util::SinkExt;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What every scenario needs to know about the environment.
#[derive(Clone, Debug)]
pub struct Env {
    pub apogee_bin: PathBuf,
    /// CPUs for the server under test (and the bare reference), if pinned.
    pub server_cpus: Option<Vec<usize>>,
    /// How many connections may be in their handshake/login/subscribe phase at once.
    pub setup_concurrency: usize,
}

// ---------------------------------------------------------------------------------------------
// Payloads: "lg:<seq>:<intended send time in µs since the run's base instant>"

pub fn payload(seq: u64, t_us: u64) -> String {
    format!("lg:{seq}:{t_us}")
}

/// `(seq, t_us)` of a payload.
pub fn parse_payload(text: &str) -> Option<(u64, u64)> {
    let rest = text.strip_prefix("lg:")?;
    let (seq, t) = rest.split_once(':')?;
    Some((seq.parse().ok()?, t.parse().ok()?))
}

pub(crate) fn micros_since(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// Counters all receivers share: deliveries, the latest receipt, and per message the first and
/// last receipt (its sweep across the room).
pub struct Tally {
    delivered: AtomicU64,
    last_us: AtomicU64,
    first_rx: Vec<AtomicU64>,
    last_rx: Vec<AtomicU64>,
}

impl Tally {
    pub fn new(messages: u64) -> Arc<Tally> {
        Arc::new(Tally {
            delivered: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
            first_rx: (0..messages).map(|_| AtomicU64::new(u64::MAX)).collect(),
            last_rx: (0..messages).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn on_receipt(&self, seq: u64, now: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.last_us.fetch_max(now, Ordering::Relaxed);
        if let (Some(f), Some(l)) = (
            self.first_rx.get(seq as usize),
            self.last_rx.get(seq as usize),
        ) {
            f.fetch_min(now, Ordering::Relaxed);
            l.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Last minus first receipt, per message that arrived at all.
    pub(crate) fn sweep(&self) -> Summary {
        let mut h = hist::new();
        for (f, l) in self.first_rx.iter().zip(&self.last_rx) {
            let (f, l) = (f.load(Ordering::Relaxed), l.load(Ordering::Relaxed));
            if f != u64::MAX {
                hist::record(&mut h, l.saturating_sub(f));
            }
        }
        hist::summary(&h)
    }
}

/// What one receiving connection saw. The histogram (~180 KiB) is allocated on the first
/// delivery only, so that idle fleets of 19k connections stay small.
pub(crate) struct Received {
    base: Instant,
    pub(crate) hist: Option<Histogram<u64>>,
    tally: Arc<Tally>,
    pub(crate) errors: u64,
}

impl Received {
    pub(crate) fn new(base: Instant, tally: Arc<Tally>) -> Received {
        Received {
            base,
            hist: None,
            tally,
            errors: 0,
        }
    }

    pub(crate) fn on_text(&mut self, text: &str) {
        if let Some((seq, t_us)) = parse_payload(text) {
            let now = micros_since(self.base);
            hist::record(
                self.hist.get_or_insert_with(hist::new),
                now.saturating_sub(t_us),
            );
            self.tally.on_receipt(seq, now);
        }
    }

    fn on_ddp(&mut self, v: &Value) {
        if v["msg"] == "changed" && v["collection"] == "stream-room-messages" {
            if let Some(args) = v["fields"]["args"].as_array() {
                for m in args {
                    if let Some(text) = m["msg"].as_str() {
                        self.on_text(text);
                    }
                }
            }
        } else if v["msg"] == "error" {
            self.errors += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connection fleets

/// A fleet of connection tasks: each sets up (bounded by a semaphore), reports its setup time,
/// then reads until `stop`.
struct Fleet<T> {
    tasks: Vec<JoinHandle<Result<T>>>,
    ready_rx: mpsc::UnboundedReceiver<Result<Duration, String>>,
    stop: watch::Sender<bool>,
}

struct Ready {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
    setup: Summary,
    elapsed_s: f64,
}

impl<T: Send + 'static> Fleet<T> {
    async fn wait_ready(&mut self, label: &str) -> Ready {
        let n = self.tasks.len();
        let started = Instant::now();
        let mut h = hist::new();
        let (mut ok, mut failed, mut first_error) = (0, 0, None);
        while ok + failed < n {
            match self.ready_rx.recv().await {
                Some(Ok(d)) => {
                    ok += 1;
                    hist::record(&mut h, d.as_micros() as u64);
                }
                Some(Err(e)) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
                None => break,
            }
            let done = ok + failed;
            if done % 1000 == 0 && done < n {
                eprintln!("  {label}: {done}/{n} connections set up");
            }
        }
        Ready {
            ok,
            failed,
            first_error,
            setup: hist::summary(&h),
            elapsed_s: started.elapsed().as_secs_f64(),
        }
    }

    /// Stops every connection and collects what the tasks returned.
    async fn finish(self) -> (Vec<T>, usize) {
        let _ = self.stop.send(true);
        let mut out = Vec::new();
        let mut dropped = 0;
        for t in self.tasks {
            match t.await {
                Ok(Ok(v)) => out.push(v),
                _ => dropped += 1,
            }
        }
        (out, dropped)
    }
}

/// DDP clients: connect, resume-login as `user_of(i)`, subscribe to `subs(i, user id)`.
fn ddp_fleet(
    url: &str,
    n: usize,
    concurrency: usize,
    token_of: impl Fn(usize) -> String,
    subs: impl Fn(usize, &str) -> Vec<(&'static str, Value)> + Send + Sync + 'static,
    received: impl Fn() -> Received,
) -> Fleet<Received> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let subs = Arc::new(subs);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (url, token, sem, ready_tx, stop_rx, subs) = (
            url.to_string(),
            token_of(i),
            sem.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
            subs.clone(),
        );
        let mut rec = received();
        tasks.push(tokio::spawn(async move {
            let setup = async {
                let _permit = sem.acquire().await?;
                let t0 = Instant::now();
                let mut d = Ddp::connect(&url).await?;
                let uid = d.login_resume(&token).await?;
                for (name, params) in subs(i, &uid) {
                    d.subscribe(name, params).await?;
                }
                Ok::<_, anyhow::Error>((d, t0.elapsed()))
            };
            let d = match setup.await {
                Ok((d, took)) => {
                    let _ = ready_tx.send(Ok(took));
                    d
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            drop(ready_tx);
            d.receive_until(stop_rx, |v| rec.on_ddp(v)).await?;
            Ok(rec)
        }));
    }
    Fleet {
        tasks,
        ready_rx,
        stop,
    }
}

/// Plain WebSocket clients of the bare reference server.
fn bare_fleet(
    url: &str,
    n: usize,
    concurrency: usize,
    received: impl Fn() -> Received,
) -> Fleet<Received> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (url, sem, ready_tx, stop_rx) = (
            url.to_string(),
            sem.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        );
        let mut rec = received();
        tasks.push(tokio::spawn(async move {
            let opened = async {
                let _permit = sem.acquire().await?;
                let t0 = Instant::now();
                let ws = ddp::open(&url).await?;
                Ok::<_, anyhow::Error>((ws, t0.elapsed()))
            };
            let ws = match opened.await {
                Ok((ws, took)) => {
                    let _ = ready_tx.send(Ok(took));
                    ws
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            drop(ready_tx);
            crate::bare::receive_until(ws, stop_rx, |t| rec.on_text(t)).await?;
            Ok(rec)
        }));
    }
    Fleet {
        tasks,
        ready_rx,
        stop,
    }
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

pub(crate) struct Workspace {
    pub(crate) admin: Session,
    pub(crate) users: Vec<LoadUser>,
    pub(crate) rid: String,
}

/// Logs the admin in, creates `k` users with tokens and one channel with all of them.
pub(crate) async fn workspace(srv: &Spawned, k: usize, room: &str) -> Result<Workspace> {
    let rest = Rest::new(&srv.base_url())?;
    let admin = rest.login(server::ADMIN_USER, server::ADMIN_PASS).await?;
    let t0 = Instant::now();
    let users = rest
        .create_users(&admin, "lg", k, server::TOKEN_SECRET, 4)
        .await?;
    eprintln!(
        "  created {k} users with tokens in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let names: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    let rid = rest.create_channel(&admin, room, &names).await?;
    Ok(Workspace { admin, users, rid })
}

pub(crate) fn load_note() -> Value {
    json!(proc::load_average())
}

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

// ---------------------------------------------------------------------------------------------
// idle

pub struct IdleArgs {
    pub connections: usize,
    pub users: usize,
    pub hold_secs: u64,
}

pub async fn idle(env: &Env, a: &IdleArgs) -> Result<Value> {
    let users = a.users.clamp(1, a.connections.max(1));
    eprintln!(
        "idle: {} connections as {users} users, hold {} s",
        a.connections, a.hold_secs
    );
    let load_before = load_note();
    let srv = server::start_apogee(&env.apogee_bin, env.server_cpus.clone()).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = srv.sample()?;
    let ws = workspace(&srv, users, "idle-room").await?;
    let setup_rss = srv.sample()?.rss_kib;
    // A fresh process on the same database: no memory left over from hashing passwords.
    let srv = srv
        .restart(&env.apogee_bin, env.server_cpus.clone())
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = srv.sample()?;
    let tcp_before = proc::tcp_mem_kib();
    let base = Instant::now();
    let tally = Tally::new(0);
    let tokens: Vec<String> = ws.users.iter().map(|u| u.session.token.clone()).collect();
    let rid = ws.rid.clone();
    let mut fleet = ddp_fleet(
        &srv.ws_url("/websocket"),
        a.connections,
        env.setup_concurrency,
        |i| tokens[i % tokens.len()].clone(),
        move |_, uid| {
            vec![
                (
                    "stream-notify-user",
                    json!([format!("{uid}/notification"), false]),
                ),
                ("stream-room-messages", json!([rid, false])),
            ]
        },
        || Received::new(base, tally.clone()),
    );
    let me0 = proc::sample(std::process::id())?;
    let ready = fleet.wait_ready("idle").await;
    let set_up = srv.sample()?;
    let me1 = proc::sample(std::process::id())?;
    if ready.ok == 0 {
        bail!(
            "no connection came up: {}",
            ready.first_error.unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hold_start = srv.sample()?;
    tokio::time::sleep(Duration::from_secs(a.hold_secs)).await;
    let after = srv.sample()?;
    let tcp_after = proc::tcp_mem_kib();
    let me = proc::sample(std::process::id())?;
    let (_, dropped) = fleet.finish().await;
    srv.stop().await;
    let per_conn = (after.rss_kib as f64 - before.rss_kib as f64) / ready.ok as f64;
    let hold_cpu = after.cpu_secs - hold_start.cpu_secs;
    let r = json!({
        "scenario": "idle",
        "connections": a.connections,
        "users": users,
        "connected": ready.ok,
        "failed": ready.failed,
        "first_error": ready.first_error,
        "dropped_during_hold": dropped,
        "setup_secs": round(ready.elapsed_s, 2),
        "setup_latency": ready.setup,
        "setup_server_cpu_secs": round(set_up.cpu_secs - before.cpu_secs, 3),
        "setup_generator_cpu_secs": round(me1.cpu_secs - me0.cpu_secs, 3),
        "server_rss_fresh_kib": fresh.rss_kib,
        "server_rss_after_user_setup_kib": setup_rss,
        "server_rss_before_kib": before.rss_kib,
        "server_rss_after_kib": after.rss_kib,
        "rss_per_conn_kib": round(per_conn, 2),
        "hold_secs": a.hold_secs,
        "hold_cpu_secs": round(hold_cpu, 3),
        "hold_cpu_pct_of_core": round(hold_cpu / a.hold_secs as f64 * 100.0, 2),
        "generator_rss_kib": me.rss_kib,
        "kernel_tcp_mem_kib_before": tcp_before,
        "kernel_tcp_mem_kib_after": tcp_after,
        "load_avg_before": load_before,
    });
    eprintln!(
        "\n**idle**: {} of {} DDP connections ({users} users) logged in with resume tokens and \
         subscribed to their notify-user stream and one room in {:.1} s (setup {}; CPU server \
         {:.1} s, generator {:.1} s). Server RSS \
         {:.1} MiB fresh, {:.1} MiB after creating the users, {:.1} MiB restarted before \
         connecting, {:.1} MiB after: **{per_conn:.1} KiB per connection**. CPU during the {} s hold: {hold_cpu:.2} s ({:.1}% of a core). {} \
         connections dropped during the hold.\n",
        ready.ok,
        a.connections,
        ready.elapsed_s,
        ready.setup.short(),
        set_up.cpu_secs - before.cpu_secs,
        me1.cpu_secs - me0.cpu_secs,
        fresh.rss_kib as f64 / 1024.0,
        setup_rss as f64 / 1024.0,
        before.rss_kib as f64 / 1024.0,
        after.rss_kib as f64 / 1024.0,
        a.hold_secs,
        hold_cpu / a.hold_secs as f64 * 100.0,
        dropped,
    );
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// fanout

#[derive(Clone, Copy)]
pub struct FanoutArgs {
    pub members: usize,
    pub users: usize,
    pub rate: f64,
    pub seconds: f64,
    pub senders: usize,
}

/// Sends `total` payloads at `rate`/s over `sinks`, open loop: message `seq` is due at
/// `start_us + seq / rate` and carries that time, however late it actually leaves.
fn schedule(
    base: Instant,
    start_us: u64,
    rate: f64,
    total: u64,
    sinks: Vec<Arc<Mutex<ddp::WsSink>>>,
    frame: impl Fn(u64, u64) -> String + Send + Sync + 'static,
) -> Vec<JoinHandle<Result<()>>> {
    let frame = Arc::new(frame);
    let k = sinks.len() as u64;
    sinks
        .into_iter()
        .enumerate()
        .map(|(j, sink)| {
            let frame = frame.clone();
            tokio::spawn(async move {
                let mut seq = j as u64;
                while seq < total {
                    let due = start_us + (seq as f64 * 1e6 / rate) as u64;
                    tokio::time::sleep_until((base + Duration::from_micros(due)).into()).await;
                    let text = frame(seq, due);
                    sink.lock()
                        .await
                        .send(Message::Text(text.into()))
                        .await
                        .context("send")?;
                    seq += k;
                }
                Ok(())
            })
        })
        .collect()
}

pub(crate) fn total_messages(a: &FanoutArgs) -> u64 {
    (a.rate * a.seconds).round().max(1.0) as u64
}

pub(crate) fn intended_us(start_us: u64, rate: f64, seq: u64) -> u64 {
    start_us + (seq as f64 * 1e6 / rate) as u64
}

/// Waits for `expected` deliveries, at most `drain` after the last send was due.
pub(crate) async fn drain(tally: &Tally, expected: u64, drain: Duration) {
    let until = Instant::now() + drain;
    while tally.delivered() < expected && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct FanoutOutcome {
    latency: Summary,
    delivered: u64,
    expected: u64,
    sent: u64,
    deliveries_per_s: f64,
    cpu: f64,
    /// Server RSS once receivers and senders are connected, before the first message.
    rss_ready: u64,
    rss_after: u64,
    sweep: Summary,
    generator_cpu: f64,
    ready: Ready,
    dropped: usize,
    ddp_errors: u64,
}

fn fanout_json(kind: &str, a: &FanoutArgs, users: usize, o: &FanoutOutcome, extra: Value) -> Value {
    let mut v = json!({
        "scenario": kind,
        "members": a.members,
        "member_users": users,
        "rate": a.rate,
        "seconds": a.seconds,
        "senders": a.senders,
        "sent": o.sent,
        "connected": o.ready.ok,
        "failed": o.ready.failed,
        "first_error": o.ready.first_error,
        "setup_secs": round(o.ready.elapsed_s, 2),
        "setup_latency": o.ready.setup,
        "latency": o.latency,
        "delivered": o.delivered,
        "expected": o.expected,
        "delivered_ratio": round(o.delivered as f64 / o.expected.max(1) as f64, 4),
        "deliveries_per_s": round(o.deliveries_per_s, 1),
        "server_cpu_secs": round(o.cpu, 3),
        "server_rss_ready_kib": o.rss_ready,
        "server_rss_after_kib": o.rss_after,
        "sweep": o.sweep,
        "generator_cpu_secs": round(o.generator_cpu, 3),
        "receivers_dropped": o.dropped,
        "ddp_errors": o.ddp_errors,
        "load_avg_before": load_note(),
    });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    v
}

pub async fn fanout(env: &Env, a: &FanoutArgs) -> Result<Value> {
    let users = a.users.clamp(1, a.members.max(1));
    eprintln!(
        "fanout: {} members ({users} users), {} msg/s for {} s, {} senders",
        a.members, a.rate, a.seconds, a.senders
    );
    let srv = server::start_apogee(&env.apogee_bin, env.server_cpus.clone()).await?;
    let ws = workspace(&srv, users, &format!("fanout-{}", a.members)).await?;
    let srv = srv
        .restart(&env.apogee_bin, env.server_cpus.clone())
        .await?;
    let v = fanout_on(env, &srv, &ws, a, users, "fanout").await;
    srv.stop().await;
    v
}

/// The fan-out measurement on a running server whose workspace is `ws` (members are `ws.users`
/// round-robin, senders the admin). Leaves the server running.
pub(crate) async fn fanout_on(
    env: &Env,
    srv: &Spawned,
    ws: &Workspace,
    a: &FanoutArgs,
    users: usize,
    kind: &str,
) -> Result<Value> {
    let base = Instant::now();
    let tally = Tally::new(total_messages(a));
    let tokens: Vec<String> = ws.users.iter().map(|u| u.session.token.clone()).collect();
    let rid = ws.rid.clone();
    let url = srv.ws_url("/websocket");
    let mut fleet = ddp_fleet(
        &url,
        a.members,
        env.setup_concurrency,
        |i| tokens[i % tokens.len()].clone(),
        move |_, _| vec![("stream-room-messages", json!([rid, false]))],
        || Received::new(base, tally.clone()),
    );
    let ready = fleet.wait_ready("fanout").await;
    if ready.ok == 0 {
        bail!(
            "no receiver came up: {}",
            ready.first_error.unwrap_or_default()
        );
    }
    // Senders: DDP connections logged in as the admin (the channel's owner).
    let acks = Arc::new(std::sync::Mutex::new(hist::new()));
    let ack_errors = Arc::new(AtomicU64::new(0));
    let mut sinks = Vec::new();
    let mut readers = Vec::new();
    let start_slot = Arc::new(AtomicU64::new(0));
    for _ in 0..a.senders.max(1) {
        let mut d = Ddp::connect(&url).await?;
        d.login_resume(&ws.admin.token).await?;
        let (sink, mut stream) = d.split();
        let sink = Arc::new(Mutex::new(sink));
        sinks.push(sink.clone());
        let (acks, ack_errors, start_slot) = (acks.clone(), ack_errors.clone(), start_slot.clone());
        let rate = a.rate;
        readers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    continue;
                };
                if v["msg"] == "ping" {
                    let pong = ddp::pong_for(&v).to_string();
                    let _ = sink.lock().await.send(Message::Text(pong.into())).await;
                } else if v["msg"] == "result" {
                    if v.get("error").is_some() {
                        ack_errors.fetch_add(1, Ordering::Relaxed);
                        if ack_errors.load(Ordering::Relaxed) == 1 {
                            eprintln!("  sendMessage error: {}", v["error"]);
                        }
                    }
                    if let Some(seq) = v["id"].as_str().and_then(|s| s.parse::<u64>().ok()) {
                        let due = intended_us(start_slot.load(Ordering::Relaxed), rate, seq);
                        let now = micros_since(base);
                        hist::record(&mut acks.lock().unwrap(), now.saturating_sub(due));
                    }
                }
            }
        }));
    }
    let rid = ws.rid.clone();
    // The first message is due 300 ms from now; the ack readers need that time too.
    start_slot.store(micros_since(base) + 300_000, Ordering::Relaxed);
    let start_us = start_slot.load(Ordering::Relaxed);
    let o = measure_fanout(
        srv,
        fleet,
        ready,
        base,
        tally.clone(),
        a,
        start_us,
        sinks,
        move |seq, t_us| {
            json!({"msg": "method", "id": seq.to_string(), "method": "sendMessage",
                   "params": [{"rid": rid, "msg": payload(seq, t_us)}]})
            .to_string()
        },
    )
    .await?;
    for r in readers {
        r.abort();
    }
    let ack = hist::summary(&acks.lock().unwrap());
    let v = fanout_json(
        kind,
        a,
        users,
        &o,
        json!({"send_ack_latency": ack, "send_errors": ack_errors.load(Ordering::Relaxed)}),
    );
    eprintln!(
        "\n**{kind} {}**: {} msgs at {}/s over DDP `sendMessage` to a channel of {} connections \
         ({users} users): {}/{} delivered ({:.2}%), send→receive {} (from intended send time), \
         {:.0} deliveries/s, sweep (last − first receipt) {}, server CPU {:.2} s, generator CPU \
         {:.2} s; sendMessage ack {}.\n",
        a.members,
        o.sent,
        a.rate,
        o.ready.ok,
        o.delivered,
        o.expected,
        o.delivered as f64 / o.expected.max(1) as f64 * 100.0,
        o.latency.short(),
        o.deliveries_per_s,
        o.sweep.short(),
        o.cpu,
        o.generator_cpu,
        ack.short(),
    );
    Ok(v)
}

#[allow(clippy::too_many_arguments)]
async fn measure_fanout(
    srv: &Spawned,
    fleet: Fleet<Received>,
    ready: Ready,
    base: Instant,
    tally: Arc<Tally>,
    a: &FanoutArgs,
    start_us: u64,
    sinks: Vec<Arc<Mutex<ddp::WsSink>>>,
    frame: impl Fn(u64, u64) -> String + Send + Sync + 'static,
) -> Result<FanoutOutcome> {
    let total = total_messages(a);
    let cpu0 = srv.sample()?;
    let gen0 = proc::sample(std::process::id())?;
    let senders = schedule(base, start_us, a.rate, total, sinks, frame);
    let mut sent_ok = true;
    for s in senders {
        if !matches!(s.await, Ok(Ok(()))) {
            sent_ok = false;
        }
    }
    let expected = total * ready.ok as u64;
    drain(&tally, expected, Duration::from_secs(10)).await;
    let cpu1 = srv.sample()?;
    let gen1 = proc::sample(std::process::id())?;
    let (recs, dropped) = fleet.finish().await;
    let mut h = hist::new();
    let mut ddp_errors = 0;
    for r in &recs {
        if let Some(rh) = &r.hist {
            h.add(rh).ok();
        }
        ddp_errors += r.errors;
    }
    if !sent_ok {
        eprintln!("  warning: a sender failed");
    }
    let got = tally.delivered();
    let window_us = tally
        .last_us
        .load(Ordering::Relaxed)
        .saturating_sub(start_us)
        .max(1);
    Ok(FanoutOutcome {
        latency: hist::summary(&h),
        delivered: got,
        expected,
        sent: total,
        deliveries_per_s: got as f64 / (window_us as f64 / 1e6),
        cpu: cpu1.cpu_secs - cpu0.cpu_secs,
        rss_ready: cpu0.rss_kib,
        rss_after: cpu1.rss_kib,
        sweep: tally.sweep(),
        generator_cpu: gen1.cpu_secs - gen0.cpu_secs,
        ready,
        dropped,
        ddp_errors,
    })
}

// ---------------------------------------------------------------------------------------------
// calibrate

/// 512-byte write + fdatasync in a temp file for `secs`.
pub fn fsync_rate(secs: f64) -> Result<Value> {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir()?;
    let f = std::fs::File::create(dir.path().join("fsync-probe"))?;
    let block = [0x5au8; 512];
    let mut h = hist::new();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        f.write_all_at(&block, 0)?;
        f.sync_data()?;
        hist::record(&mut h, t.elapsed().as_micros() as u64);
        n += 1;
    }
    let per_s = n as f64 / start.elapsed().as_secs_f64();
    Ok(json!({"fdatasync_per_s": round(per_s, 1), "latency": hist::summary(&h)}))
}

/// RSS per idle connection of the bare reference server.
pub async fn bare_idle(env: &Env, n: usize, hold_secs: u64) -> Result<Value> {
    let srv = server::start_bare(env.server_cpus.clone()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = srv.sample()?;
    let base = Instant::now();
    let tally = Tally::new(0);
    let mut fleet = bare_fleet(&srv.ws_url("/"), n, env.setup_concurrency, || {
        Received::new(base, tally.clone())
    });
    let ready = fleet.wait_ready("bare idle").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s0 = srv.sample()?;
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    let after = srv.sample()?;
    let _ = fleet.finish().await;
    srv.stop().await;
    let per_conn = (after.rss_kib as f64 - before.rss_kib as f64) / ready.ok.max(1) as f64;
    Ok(json!({
        "connections": n,
        "connected": ready.ok,
        "failed": ready.failed,
        "rss_before_kib": before.rss_kib,
        "rss_after_kib": after.rss_kib,
        "rss_per_conn_kib": round(per_conn, 2),
        "hold_cpu_secs": round(after.cpu_secs - s0.cpu_secs, 3),
    }))
}

/// Fan-out through the bare reference server: `members` receivers and `senders` plain senders.
pub async fn bare_fanout(env: &Env, a: &FanoutArgs) -> Result<Value> {
    let srv = server::start_bare(env.server_cpus.clone()).await?;
    let base = Instant::now();
    let tally = Tally::new(total_messages(a));
    let url = srv.ws_url("/");
    let mut fleet = bare_fleet(&url, a.members, env.setup_concurrency, || {
        Received::new(base, tally.clone())
    });
    let ready = fleet.wait_ready("bare fanout").await;
    let mut sinks = Vec::new();
    let mut drains = Vec::new();
    for _ in 0..a.senders.max(1) {
        let (sink, mut stream) = ddp::open(&url).await?.split();
        sinks.push(Arc::new(Mutex::new(sink)));
        // Senders receive every broadcast too; read and drop them.
        drains.push(tokio::spawn(async move {
            while let Some(Ok(_)) = stream.next().await {}
        }));
    }
    let start_us = micros_since(base) + 300_000;
    let o = measure_fanout(
        &srv,
        fleet,
        ready,
        base,
        tally.clone(),
        a,
        start_us,
        sinks,
        payload,
    )
    .await?;
    for d in drains {
        d.abort();
    }
    srv.stop().await;
    Ok(fanout_json("bare-fanout", a, a.members, &o, json!({})))
}

pub struct CalibrateArgs {
    pub connections: usize,
    pub hold_secs: u64,
    pub fanouts: Vec<FanoutArgs>,
}

pub async fn calibrate(env: &Env, c: &CalibrateArgs) -> Result<Value> {
    eprintln!(
        "calibrate: fdatasync, bare idle ({}), bare fan-out",
        c.connections
    );
    let fsync = tokio::task::spawn_blocking(|| fsync_rate(2.0)).await??;
    let idle = bare_idle(env, c.connections, c.hold_secs).await?;
    let mut fan = Vec::new();
    for a in &c.fanouts {
        fan.push(bare_fanout(env, a).await?);
    }
    eprintln!(
        "\n**calibration**: fdatasync 512 B {}/s ({}); bare broadcast server {} KiB per idle \
         connection at {} connections; bare fan-out {}.\n",
        fsync["fdatasync_per_s"],
        fsync["latency"]["p99_ms"]
            .as_f64()
            .map(|p| format!("p99 {p} ms"))
            .unwrap_or_default(),
        idle["rss_per_conn_kib"],
        c.connections,
        fan.iter()
            .map(|f| format!(
                "{} members: p50 {} / p99 {} ms",
                f["members"], f["latency"]["p50_ms"], f["latency"]["p99_ms"]
            ))
            .collect::<Vec<_>>()
            .join("; "),
    );
    Ok(json!({
        "scenario": "calibrate",
        "fsync": fsync,
        "bare_idle": idle,
        "bare_fanout": fan,
        "load_avg": load_note(),
    }))
}

// ---------------------------------------------------------------------------------------------
// all

pub(crate) fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".into(),
    }
}

/// The markdown table combining a run of `all`.
pub fn markdown(cal: &Value, idle: &Value, fan: &[Value]) -> String {
    let mut s = String::new();
    s.push_str("| metric | apogee | bare reference | ratio |\n|---|---|---|---|\n");
    s.push_str(&format!(
        "| RSS per idle connection ({} conns), KiB | {} | {} | {} |\n",
        idle["connected"],
        idle["rss_per_conn_kib"],
        cal["bare_idle"]["rss_per_conn_kib"],
        ratio(
            &idle["rss_per_conn_kib"],
            &cal["bare_idle"]["rss_per_conn_kib"]
        ),
    ));
    s.push_str(&format!(
        "| idle CPU during hold, % of a core | {} | – | – |\n",
        idle["hold_cpu_pct_of_core"]
    ));
    let bare = cal["bare_fanout"].as_array().cloned().unwrap_or_default();
    for f in fan {
        let b = bare
            .iter()
            .find(|b| b["members"] == f["members"])
            .cloned()
            .unwrap_or(Value::Null);
        for (label, key) in [("p50", "p50_ms"), ("p99", "p99_ms"), ("max", "max_ms")] {
            s.push_str(&format!(
                "| fan-out {} members @ {}/s, {label} ms | {} | {} | {} |\n",
                f["members"],
                f["rate"],
                f["latency"][key],
                b["latency"][key],
                ratio(&f["latency"][key], &b["latency"][key]),
            ));
        }
        let per_delivery =
            |v: &Value| match (v["server_cpu_secs"].as_f64(), v["delivered"].as_f64()) {
                (Some(c), Some(d)) if d > 0.0 => json!(round(c * 1e6 / d, 2)),
                _ => Value::Null,
            };
        let (fc, bc) = (per_delivery(f), per_delivery(&b));
        s.push_str(&format!(
            "| fan-out {} members: server CPU per delivery, µs | {} | {} | {} |\n",
            f["members"],
            fc,
            bc,
            ratio(&fc, &bc),
        ));
        s.push_str(&format!(
            "| fan-out {} members: delivered/expected, deliveries/s, server CPU s | {}/{}, {}, {} | {}/{}, {}, {} | – |\n",
            f["members"],
            f["delivered"],
            f["expected"],
            f["deliveries_per_s"],
            f["server_cpu_secs"],
            b["delivered"],
            b["expected"],
            b["deliveries_per_s"],
            b["server_cpu_secs"],
        ));
    }
    s.push_str(&format!(
        "| fdatasync 512 B per s (calibration) | – | {} | – |\n",
        cal["fsync"]["fdatasync_per_s"]
    ));
    s
}

pub struct AllArgs {
    pub idle: IdleArgs,
    pub fanouts: Vec<FanoutArgs>,
    pub ingest: crate::ingest::IngestArgs,
    pub history: crate::history::HistoryArgs,
    pub login: crate::login::LoginArgs,
}

pub async fn all(env: &Env, a: &AllArgs) -> Result<Value> {
    let cal = calibrate(
        env,
        &CalibrateArgs {
            connections: a.idle.connections,
            hold_secs: a.idle.hold_secs,
            fanouts: a.fanouts.clone(),
        },
    )
    .await?;
    let idle_r = idle(env, &a.idle).await?;
    let mut fan = Vec::new();
    for f in &a.fanouts {
        fan.push(fanout(env, f).await?);
    }
    let ingest_r = crate::ingest::ingest(env, &a.ingest).await?;
    let history_r = crate::history::history(env, &a.history).await?;
    let login_r = crate::login::login(env, &a.login).await?;
    let mut md = markdown(&cal, &idle_r, &fan);
    for (title, r) in [
        ("ingest", &ingest_r),
        ("history", &history_r),
        ("login storm", &login_r),
    ] {
        md.push_str(&format!(
            "\n**{title}**\n\n{}",
            r["markdown"].as_str().unwrap_or("")
        ));
    }
    eprintln!("\n{md}");
    Ok(json!({
        "scenario": "all",
        "calibration": cal,
        "idle": idle_r,
        "fanout": fan,
        "ingest": ingest_r,
        "history": history_r,
        "login": login_r,
        "markdown": md,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        assert_eq!(
            parse_payload(&payload(42, 1_234_567)),
            Some((42, 1_234_567))
        );
        assert_eq!(parse_payload("hello"), None);
        assert_eq!(parse_payload("lg:x:1"), None);
    }

    #[test]
    fn markdown_puts_apogee_beside_the_reference() {
        let cal = json!({
            "bare_idle": {"rss_per_conn_kib": 7.0},
            "bare_fanout": [{"members": 50, "latency": {"p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0},
                             "server_cpu_secs": 0.5, "delivered": 50000}],
            "fsync": {"fdatasync_per_s": 10000.0},
        });
        let idle =
            json!({"connected": 2000, "rss_per_conn_kib": 14.0, "hold_cpu_pct_of_core": 0.1});
        let fan = [json!({"members": 50, "rate": 100.0,
                          "latency": {"p50_ms": 2.0, "p99_ms": 8.0, "max_ms": 9.0},
                          "server_cpu_secs": 2.5, "delivered": 50000})];
        let md = markdown(&cal, &idle, &fan);
        assert!(
            md.contains("| RSS per idle connection (2000 conns), KiB | 14.0 | 7.0 | 2.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| fan-out 50 members @ 100.0/s, p99 ms | 8.0 | 2.0 | 4.00× |"),
            "{md}"
        );
        assert!(
            md.contains("server CPU per delivery, µs | 50.0 | 10.0 | 5.00× |"),
            "{md}"
        );
    }

    #[test]
    fn ratios_need_two_numbers() {
        assert_eq!(ratio(&json!(30.0), &json!(6.0)), "5.00×");
        assert_eq!(ratio(&json!(null), &json!(6.0)), "–");
        assert_eq!(ratio(&json!(1.0), &json!(0.0)), "–");
    }
}
