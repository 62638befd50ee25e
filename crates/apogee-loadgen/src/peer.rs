//! Side by side with a real peer: the same load against Apogee (DDP) and Synapse (Matrix client
//! API), fresh servers, runs alternating A B B A … in one invocation:
//! (b) fan-out — send→receive latency in one M-member room at a fixed rate, open loop;
//! (a) send rate — N senders, each in its own 2-member room, closed loop for T seconds, on a
//!     restarted server;
//! (c) RSS — fresh on an empty database, restarted with the users, and with the members logged in.

use crate::ddp::{self, Ddp};
use crate::hist;
use crate::matrix::{self, Matrix, MatrixUser};
use crate::proc;
use crate::rest::Rest;
use crate::scenario::{
    self, Env, FanoutArgs, Received, Tally, load_note, micros_since, payload, round,
};
use crate::server;
use crate::synapse::{self, Synapse};
use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};

#[derive(Clone, Debug)]
pub struct PeerArgs {
    pub synapse_venv: PathBuf,
    /// Runs per server; the order alternates A B, B A, A B, …
    pub repeats: usize,
    pub senders: usize,
    pub send_seconds: f64,
    pub members: usize,
    pub rate: f64,
    pub fanout_seconds: f64,
}

/// Time a fresh process is left alone before its RSS is read.
const SETTLE: Duration = Duration::from_millis(1000);
/// The closed loop's first second is not counted (connections warm, caches filled).
const WARMUP: Duration = Duration::from_secs(1);
const PASSWORD: &str = "loadgen-user-pass";

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

// ---------------------------------------------------------------------------------------------
// The closed loop both servers' senders share

/// Shared state of a closed-loop phase: acknowledgements are counted only inside the measured
/// window `[from, to]` (microseconds since `start`).
struct ClosedLoop {
    start: Instant,
    from_us: u64,
    to_us: AtomicU64,
    stop: AtomicBool,
    ok: AtomicU64,
    errors: AtomicU64,
    acks: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

impl ClosedLoop {
    fn new() -> Arc<ClosedLoop> {
        Arc::new(ClosedLoop {
            start: Instant::now(),
            from_us: WARMUP.as_micros() as u64,
            to_us: AtomicU64::new(u64::MAX),
            stop: AtomicBool::new(false),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            acks: Mutex::new(hist::new()),
            first_error: Mutex::new(None),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Records one send that started at `t0`. Errors are always counted; the caller pauses
    /// after one so that a failing server is not spun on.
    fn done(&self, t0: Instant, r: Result<()>) {
        let now = micros_since(self.start);
        match r {
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| format!("{e:#}"));
            }
            Ok(()) if now >= self.from_us && now <= self.to_us.load(Ordering::Relaxed) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                hist::record(
                    &mut self.acks.lock().unwrap(),
                    t0.elapsed().as_micros() as u64,
                );
            }
            Ok(()) => {}
        }
    }

    /// Waits out the warm-up and `seconds`, reading the server's CPU at both ends; then stops
    /// the senders and reports.
    async fn measure(
        &self,
        seconds: f64,
        sample: impl Fn() -> Result<proc::Sample>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    ) -> Result<Value> {
        tokio::time::sleep_until((self.start + WARMUP).into()).await;
        let cpu0 = sample()?;
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        self.to_us
            .store(micros_since(self.start), Ordering::Relaxed);
        let cpu1 = sample()?;
        self.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            // A sender stuck on a slow answer is not waited for beyond this.
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        let ok = self.ok.load(Ordering::Relaxed);
        let cpu = cpu1.cpu_secs - cpu0.cpu_secs;
        Ok(json!({
            "seconds": seconds,
            "acknowledged": ok,
            "msgs_per_s": round(ok as f64 / seconds, 1),
            "ack": hist::summary(&self.acks.lock().unwrap()),
            "errors": self.errors.load(Ordering::Relaxed),
            "first_error": *self.first_error.lock().unwrap(),
            "server_cpu_secs": round(cpu, 3),
            "server_cpu_us_per_msg": if ok > 0 { json!(round(cpu * 1e6 / ok as f64, 1)) } else { Value::Null },
        }))
    }
}

/// `server_cpu_us_per_delivery` and `delivered_pct` from a fan-out result.
fn with_fanout_ratios(mut v: Value) -> Value {
    let cpu = v["server_cpu_secs"].as_f64();
    let (d, e) = (v["delivered"].as_f64(), v["expected"].as_f64());
    if let Some(m) = v.as_object_mut() {
        if let (Some(c), Some(d)) = (cpu, d)
            && d > 0.0
        {
            m.insert(
                "server_cpu_us_per_delivery".into(),
                json!(round(c * 1e6 / d, 2)),
            );
        }
        if let (Some(d), Some(e)) = (d, e)
            && e > 0.0
        {
            m.insert("delivered_pct".into(), json!(round(d / e * 100.0, 2)));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Apogee

async fn apogee_run(env: &Env, a: &PeerArgs) -> Result<Value> {
    let k = a.members.max(a.senders);
    let srv = server::start_apogee(&env.apogee_bin, env.server_cpus.clone()).await?;
    tokio::time::sleep(SETTLE).await;
    let empty = srv.sample()?;
    // k users (tokens minted, no login hashing later), one channel with all of them, and one
    // 2-member channel (admin + sender) per sender.
    let ws = scenario::workspace(&srv, k, "peer-fanout").await?;
    let rest = Rest::new(&srv.base_url())?;
    let mut rooms = Vec::with_capacity(a.senders);
    for (j, u) in ws.users.iter().take(a.senders).enumerate() {
        rooms.push(
            rest.create_channel(
                &ws.admin,
                &format!("peer-send-{j}"),
                std::slice::from_ref(&u.username),
            )
            .await?,
        );
    }
    let srv = srv
        .restart(&env.apogee_bin, env.server_cpus.clone())
        .await?;
    tokio::time::sleep(SETTLE).await;
    let started = srv.sample()?;

    let fa = FanoutArgs {
        members: a.members,
        users: a.members,
        rate: a.rate,
        seconds: a.fanout_seconds,
        senders: 2,
    };
    let fan = scenario::fanout_on(env, &srv, &ws, &fa, a.members, "peer-apogee-fanout").await?;

    // A fresh process for the send rate, as on Synapse (see `synapse_run`).
    let srv = srv
        .restart(&env.apogee_bin, env.server_cpus.clone())
        .await?;
    // Send rate: sender j, logged in as user j over DDP, calls `sendMessage` in its room and
    // sends the next as soon as the result arrives.
    let url = srv.ws_url("/websocket");
    let cl = ClosedLoop::new();
    let mut tasks = Vec::new();
    for (j, rid) in rooms.iter().enumerate() {
        let mut d = Ddp::connect(&url).await?;
        d.login_resume(&ws.users[j].session.token).await?;
        let (cl, rid) = (cl.clone(), rid.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !cl.stopped() {
                let t0 = Instant::now();
                let r = d
                    .call(
                        "sendMessage",
                        json!([{"rid": rid, "msg": format!("peer {j} {n}")}]),
                    )
                    .await
                    .map(|_| ());
                let failed = r.is_err();
                cl.done(t0, r);
                if failed {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                n += 1;
            }
        }));
    }
    let send = cl.measure(a.send_seconds, || srv.sample(), tasks).await?;
    srv.stop().await;
    Ok(json!({
        "server": "apogee",
        "rss_empty_kib": empty.rss_kib,
        "rss_started_kib": started.rss_kib,
        "rss_members_kib": fan["server_rss_ready_kib"],
        "fanout": with_fanout_ratios(fan),
        "send": send,
    }))
}

// ---------------------------------------------------------------------------------------------
// Synapse

async fn synapse_run(env: &Env, a: &PeerArgs) -> Result<Value> {
    let k = a.members.max(a.senders);
    let s = Synapse::start(&a.synapse_venv, env.server_cpus.clone()).await?;
    tokio::time::sleep(SETTLE).await;
    let empty = s.sample()?;
    let mx = Matrix::new(&s.base_url())?;
    let t0 = Instant::now();
    let admin = mx
        .register(synapse::SHARED_SECRET, "lgadmin", PASSWORD)
        .await?;
    let users: Vec<MatrixUser> = futures_util::stream::iter(0..k)
        .map(|i| {
            let mx = mx.clone();
            async move {
                mx.register(synapse::SHARED_SECRET, &format!("lg{i}"), PASSWORD)
                    .await
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    // The same rooms as on Apogee: one with the admin and all k users, and one per sender with
    // the admin and that sender.
    let room = mx.create_room(&admin, "peer-fanout").await?;
    futures_util::stream::iter(&users)
        .map(|u| mx.join(u, &room))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    let mut rooms = Vec::with_capacity(a.senders);
    for (j, u) in users.iter().take(a.senders).enumerate() {
        let r = mx.create_room(&admin, &format!("peer-send-{j}")).await?;
        mx.join(u, &r).await?;
        rooms.push(r);
    }
    eprintln!(
        "  synapse: registered {} users, joined {} rooms in {:.1} s",
        k + 1,
        a.senders + 1,
        t0.elapsed().as_secs_f64()
    );
    let s = s.restart().await?;
    tokio::time::sleep(SETTLE).await;
    let started = s.sample()?;

    let fan = synapse_fanout(env, &s, &admin, &users[..a.members], &room, a).await?;
    // Synapse keeps serving a `/sync` long-poll whose client went away until its timeout, and
    // wakes it for every event in the user's rooms: the stopped receivers would still cost it
    // CPU during the send rate. A fresh process (on both servers) measures the send rate alone.
    let s = s.restart().await?;

    let cl = ClosedLoop::new();
    let mut tasks = Vec::new();
    for (j, rid) in rooms.iter().enumerate() {
        let (cl, rid, who) = (cl.clone(), rid.clone(), users[j].clone());
        let mx = Matrix::single_connection(&s.base_url())?;
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !cl.stopped() {
                let t0 = Instant::now();
                let r = mx
                    .send_text(&who, &rid, &format!("s{j}-{n}"), &format!("peer {j} {n}"))
                    .await
                    .map(|_| ());
                let failed = r.is_err();
                cl.done(t0, r);
                if failed {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                n += 1;
            }
        }));
    }
    let send = cl.measure(a.send_seconds, || s.sample(), tasks).await?;
    s.stop().await;
    Ok(json!({
        "server": "synapse",
        "rss_empty_kib": empty.rss_kib,
        "rss_started_kib": started.rss_kib,
        "rss_members_kib": fan["server_rss_ready_kib"],
        "fanout": with_fanout_ratios(fan),
        "send": send,
    }))
}

/// What one `/sync` receiver saw.
struct SyncReceiver {
    rec: Received,
    /// Answers whose timeline was `limited` (events left out).
    limited: u64,
}

/// Receivers: each member stores a filter for the room's messages, does its initial sync, then
/// long-polls `/sync` (30 s) until stopped. The admin sends open loop: message `seq` is due at
/// `start + seq/rate`, carries that time, and goes out on its own request at that moment.
async fn synapse_fanout(
    env: &Env,
    s: &Synapse,
    admin: &MatrixUser,
    members: &[MatrixUser],
    room: &str,
    a: &PeerArgs,
) -> Result<Value> {
    let base = Instant::now();
    let fa = FanoutArgs {
        members: members.len(),
        users: members.len(),
        rate: a.rate,
        seconds: a.fanout_seconds,
        senders: 1,
    };
    let total = scenario::total_messages(&fa);
    let tally = Tally::new(total);
    let (stop, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let sem = Arc::new(Semaphore::new(env.setup_concurrency.max(1)));
    let mut receivers = Vec::new();
    for u in members {
        let (u, room, tally, ready_tx, mut stop_rx, sem) = (
            u.clone(),
            room.to_string(),
            tally.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
            sem.clone(),
        );
        let mx = Matrix::single_connection(&s.base_url())?;
        receivers.push(tokio::spawn(async move {
            let setup = async {
                let _permit = sem.acquire().await?;
                let filter = mx.room_messages_filter(&u, &room).await?;
                let first = mx.sync(&u, &filter, None, Duration::ZERO).await?;
                let since = first["next_batch"]
                    .as_str()
                    .context("initial sync without next_batch")?
                    .to_string();
                Ok::<_, anyhow::Error>((filter, since))
            };
            let (filter, mut since) = match setup.await {
                Ok(x) => {
                    let _ = ready_tx.send(Ok(()));
                    x
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            drop(ready_tx);
            let mut out = SyncReceiver {
                rec: Received::new(base, tally),
                limited: 0,
            };
            loop {
                tokio::select! {
                    _ = ddp::stopped(&mut stop_rx) => break,
                    r = mx.sync(&u, &filter, Some(&since), Duration::from_secs(30)) => match r {
                        Ok(v) => {
                            let (bodies, limited) = matrix::timeline_bodies(&v, &room);
                            for b in bodies {
                                out.rec.on_text(b);
                            }
                            out.limited += u64::from(limited);
                            if let Some(nb) = v["next_batch"].as_str() {
                                since = nb.to_string();
                            }
                        }
                        Err(_) => {
                            out.rec.errors += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
            Ok(out)
        }));
    }
    drop(ready_tx);
    let (mut ok, mut first_error) = (0usize, None);
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if ok == 0 {
        bail!(
            "no synapse receiver came up: {}",
            first_error.unwrap_or_default()
        );
    }
    // Let every receiver's long-poll reach the server before reading its memory.
    tokio::time::sleep(SETTLE).await;
    let cpu0 = s.sample()?;

    let sender = Matrix::new(&s.base_url())?;
    let acks = Arc::new(Mutex::new(hist::new()));
    let send_errors = Arc::new(AtomicU64::new(0));
    let inflight = Arc::new(Semaphore::new(64));
    let start_us = micros_since(base) + 300_000;
    let mut sends = Vec::with_capacity(total as usize);
    for seq in 0..total {
        let due = scenario::intended_us(start_us, a.rate, seq);
        tokio::time::sleep_until((base + Duration::from_micros(due)).into()).await;
        let permit = inflight.clone().acquire_owned().await?;
        let (sender, admin, room, acks, send_errors) = (
            sender.clone(),
            admin.clone(),
            room.to_string(),
            acks.clone(),
            send_errors.clone(),
        );
        sends.push(tokio::spawn(async move {
            let r = sender
                .send_text(&admin, &room, &format!("f{seq}"), &payload(seq, due))
                .await;
            match r {
                Ok(_) => hist::record(
                    &mut acks.lock().unwrap(),
                    micros_since(base).saturating_sub(due),
                ),
                Err(_) => {
                    send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
    }
    for t in sends {
        let _ = t.await;
    }
    let expected = total * ok as u64;
    scenario::drain(&tally, expected, Duration::from_secs(10)).await;
    let cpu1 = s.sample()?;
    let _ = stop.send(true);
    let mut h = hist::new();
    let (mut limited, mut sync_errors, mut dropped) = (0u64, 0u64, 0usize);
    for r in receivers {
        match r.await {
            Ok(Ok(out)) => {
                if let Some(rh) = &out.rec.hist {
                    h.add(rh).ok();
                }
                limited += out.limited;
                sync_errors += out.rec.errors;
            }
            _ => dropped += 1,
        }
    }
    let ack = hist::summary(&acks.lock().unwrap());
    let latency = hist::summary(&h);
    Ok(json!({
        "scenario": "peer-synapse-fanout",
        "members": members.len(),
        "rate": a.rate,
        "seconds": a.fanout_seconds,
        "sent": total,
        "connected": ok,
        "first_error": first_error,
        "latency": latency,
        "delivered": tally.delivered(),
        "expected": expected,
        "server_cpu_secs": round(cpu1.cpu_secs - cpu0.cpu_secs, 3),
        "server_rss_ready_kib": cpu0.rss_kib,
        "server_rss_after_kib": cpu1.rss_kib,
        "sweep": tally.sweep(),
        "send_ack_latency": ack,
        "send_errors": send_errors.load(Ordering::Relaxed),
        "limited_syncs": limited,
        "sync_errors": sync_errors,
        "receivers_dropped": dropped,
    }))
}

// ---------------------------------------------------------------------------------------------
// Alternation and the report

/// The metrics compared, as (label, JSON pointer into a run).
fn metrics(a: &PeerArgs) -> Vec<(String, &'static str)> {
    let fan = format!("fan-out, {} members @ {}/s", a.members, a.rate);
    vec![
        (
            format!("send rate, {} senders: messages/s", a.senders),
            "/send/msgs_per_s",
        ),
        ("send rate: ack p50, ms".into(), "/send/ack/p50_ms"),
        ("send rate: ack p99, ms".into(), "/send/ack/p99_ms"),
        (
            "send rate: server CPU per message, µs".into(),
            "/send/server_cpu_us_per_msg",
        ),
        (format!("{fan}: p50, ms"), "/fanout/latency/p50_ms"),
        (format!("{fan}: p99, ms"), "/fanout/latency/p99_ms"),
        (format!("{fan}: max, ms"), "/fanout/latency/max_ms"),
        (format!("{fan}: delivered, %"), "/fanout/delivered_pct"),
        (
            format!("{fan}: server CPU per delivery, µs"),
            "/fanout/server_cpu_us_per_delivery",
        ),
        ("RSS fresh, empty database, MiB".into(), "/rss_empty_mib"),
        (
            "RSS restarted with the users and rooms, MiB".into(),
            "/rss_started_mib",
        ),
        (
            format!("RSS with {} members logged in, idle, MiB", a.members),
            "/rss_members_mib",
        ),
    ]
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// "median (min–max)", or the single value.
fn spread(v: &[f64], digits: i32) -> String {
    let Some(m) = median(v) else {
        return "–".into();
    };
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() == 1 {
        format!("{}", round(m, digits))
    } else {
        format!(
            "{} ({}–{})",
            round(m, digits),
            round(lo, digits),
            round(hi, digits)
        )
    }
}

/// Per metric: each server's values, their medians and the Apogee ÷ Synapse ratio of each
/// repetition's pair (median, min, max); plus the markdown table of it.
pub fn summarize(a: &PeerArgs, apogee: &[Value], synapse: &[Value]) -> (Value, String) {
    let mut rows = Vec::new();
    let mut md =
        String::from("| metric | Apogee | Synapse | Apogee ÷ Synapse |\n|---|---|---|---|\n");
    for (label, ptr) in metrics(a) {
        let vals = |runs: &[Value]| -> Vec<Option<f64>> {
            runs.iter()
                .map(|r| r.pointer(ptr).and_then(Value::as_f64))
                .collect()
        };
        let (av, sv) = (vals(apogee), vals(synapse));
        let ratios: Vec<f64> = av
            .iter()
            .zip(&sv)
            .filter_map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) if *y > 0.0 => Some(x / y),
                _ => None,
            })
            .collect();
        let flat = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<f64>>();
        let (af, sf) = (flat(&av), flat(&sv));
        md.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            spread(&af, 2),
            spread(&sf, 2),
            if ratios.is_empty() {
                "–".to_string()
            } else {
                format!("{}×", spread(&ratios, 3))
            },
        ));
        rows.push(json!({
            "metric": label,
            "apogee": af,
            "synapse": sf,
            "apogee_median": median(&af),
            "synapse_median": median(&sf),
            "ratio_median": median(&ratios),
            "ratio_min": ratios.iter().copied().reduce(f64::min),
            "ratio_max": ratios.iter().copied().reduce(f64::max),
        }));
    }
    (Value::Array(rows), md)
}

/// RSS figures in MiB beside the KiB ones (what the report compares).
fn with_mib(mut run: Value) -> Value {
    for key in ["rss_empty", "rss_started", "rss_members"] {
        if let Some(k) = run[format!("{key}_kib")].as_u64() {
            run[format!("{key}_mib")] = json!(mib(k));
        }
    }
    run
}

pub async fn peer(env: &Env, a: &PeerArgs) -> Result<Value> {
    eprintln!(
        "peer: Apogee vs Synapse ({}), {} repetitions alternating; send rate {} senders × {} s; \
         fan-out {} members at {}/s for {} s",
        a.synapse_venv.display(),
        a.repeats,
        a.senders,
        a.send_seconds,
        a.members,
        a.rate,
        a.fanout_seconds
    );
    if a.members == 0 || a.senders == 0 || a.repeats == 0 {
        bail!("--members, --senders and --repeats must be at least 1");
    }
    let (mut apogee, mut synapse, mut order) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..a.repeats {
        // A B, then B A: a drift in the machine's load weighs on both servers alike.
        let sequence = if rep % 2 == 0 {
            ["apogee", "synapse"]
        } else {
            ["synapse", "apogee"]
        };
        for which in sequence {
            let load = load_note();
            eprintln!(
                "  repetition {} / {}: {which} (load {load})",
                rep + 1,
                a.repeats
            );
            let run = if which == "apogee" {
                apogee_run(env, a).await
            } else {
                synapse_run(env, a).await
            }
            .with_context(|| format!("{which} run {}", rep + 1))?;
            let mut run = with_mib(run);
            run["repetition"] = json!(rep + 1);
            run["load_avg_before"] = load;
            eprintln!(
                "    send {} msg/s (ack p99 {} ms); fan-out p50 {} / p99 {} ms, {}/{} delivered; RSS {} / {} / {} MiB",
                run["send"]["msgs_per_s"],
                run["send"]["ack"]["p99_ms"],
                run["fanout"]["latency"]["p50_ms"],
                run["fanout"]["latency"]["p99_ms"],
                run["fanout"]["delivered"],
                run["fanout"]["expected"],
                run["rss_empty_mib"],
                run["rss_started_mib"],
                run["rss_members_mib"],
            );
            order.push(which);
            if which == "apogee" {
                apogee.push(run);
            } else {
                synapse.push(run);
            }
        }
    }
    let (summary, md) = summarize(a, &apogee, &synapse);
    eprintln!(
        "\n**Apogee vs Synapse** (median (min–max) of {} runs each)\n\n{md}",
        a.repeats
    );
    Ok(json!({
        "scenario": "peer",
        "peer": "synapse",
        "order": order,
        "senders": a.senders,
        "send_seconds": a.send_seconds,
        "members": a.members,
        "rate": a.rate,
        "fanout_seconds": a.fanout_seconds,
        "apogee": apogee,
        "synapse": synapse,
        "summary": summary,
        "markdown": md,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PeerArgs {
        PeerArgs {
            synapse_venv: PathBuf::new(),
            repeats: 2,
            senders: 4,
            send_seconds: 1.0,
            members: 50,
            rate: 20.0,
            fanout_seconds: 1.0,
        }
    }

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(spread(&[2.0, 1.0, 3.0], 1), "2 (1–3)");
        assert_eq!(spread(&[1.25], 1), "1.3");
        assert_eq!(spread(&[], 1), "–");
    }

    #[test]
    fn ratios_pair_each_repetition() {
        let run = |rate: f64, p99: f64| json!({"send": {"msgs_per_s": rate}, "fanout": {"latency": {"p99_ms": p99}}});
        let apogee = [run(1000.0, 2.0), run(1200.0, 4.0)];
        let synapse = [run(100.0, 100.0), run(200.0, 50.0)];
        let (rows, md) = summarize(&args(), &apogee, &synapse);
        let send = &rows[0];
        assert_eq!(send["ratio_median"], json!(8.0)); // 10× and 6×
        assert_eq!(send["ratio_min"], json!(6.0));
        assert_eq!(send["ratio_max"], json!(10.0));
        assert!(
            md.contains("| send rate, 4 senders: messages/s | 1100 (1000–1200) | 150 (100–200) | 8 (6–10)× |"),
            "{md}"
        );
        assert!(
            md.contains("| fan-out, 50 members @ 20/s: p99, ms | 3 (2–4) | 75 (50–100) | 0.05 (0.02–0.08)× |"),
            "{md}"
        );
        // A metric neither run has is shown as missing, not as zero.
        assert!(
            md.contains("| RSS fresh, empty database, MiB | – | – | – |"),
            "{md}"
        );
    }

    #[test]
    fn fanout_ratios_are_derived() {
        let v = with_fanout_ratios(
            json!({"server_cpu_secs": 0.5, "delivered": 1000, "expected": 2000}),
        );
        assert_eq!(v["server_cpu_us_per_delivery"], json!(500.0));
        assert_eq!(v["delivered_pct"], json!(50.0));
        let none =
            with_fanout_ratios(json!({"server_cpu_secs": 0.5, "delivered": 0, "expected": 0}));
        assert!(none.get("server_cpu_us_per_delivery").is_none());
    }

    #[test]
    fn rss_in_mib() {
        let r = with_mib(json!({"rss_empty_kib": 15360, "rss_members_kib": 20480}));
        assert_eq!(r["rss_empty_mib"], json!(15.0));
        assert_eq!(r["rss_members_mib"], json!(20.0));
        assert!(r.get("rss_started_mib").is_none());
    }
}
