//! Durable ingest: many REST `chat.sendMessage` senders over 100 rooms of 2–50 members, closed
//! loop (as fast as acknowledgements come back), then optionally an open-loop stepped rate.

use crate::calib;
use crate::hist::{self, Summary};
use crate::rest::{LoadUser, Rest, Session};
use crate::scenario::{Env, load_note, ratio, round};
use crate::server::{self, Spawned};
use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct IngestArgs {
    pub senders: usize,
    pub seconds: f64,
    /// Open-loop steps (msg/s), each `step_seconds` long, stopped once p99 > 50 ms.
    pub rates: Vec<f64>,
    pub step_seconds: f64,
    /// "sqlite" or "postgres".
    pub backend: String,
    /// For postgres: a server URL; a fresh database is created on it for the run.
    pub database_url: Option<String>,
}

const USERS: usize = 50;
const ROOMS: usize = 100;

/// Room `r` has `2 + 48·r/99` members: users `(r + k) mod 50`; user `r mod 50` is always one.
fn room_members(r: usize) -> Vec<usize> {
    let size = 2 + r * 48 / (ROOMS - 1);
    (0..size).map(|k| (r + k) % USERS).collect()
}

/// The rooms sender `j` of `n` sends to, in turn.
fn sender_rooms(j: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (j..ROOMS).step_by(n.max(1)).collect();
    if v.is_empty() {
        v.push(j % ROOMS);
    }
    v
}

/// `postgres://u:p@h:port/db?x` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> Result<String> {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").context("database URL without ://")? + 3;
    let path_start = head[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(head.len());
    let mut out = format!("{}/{name}", &head[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Creates a fresh database on the PostgreSQL server at `url` (with `psql`); returns its URL.
pub fn fresh_postgres_database(url: &str, label: &str) -> Result<(String, String)> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let name = format!("lg_{label}_{}_{millis}", std::process::id());
    let out = std::process::Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .context("run psql (is the PostgreSQL client installed?)")?;
    if !out.status.success() {
        bail!(
            "psql CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((with_database(url, &name)?, name))
}

/// The postmaster serving `url` (the first line of `postmaster.pid` in its data directory; needs
/// a superuser and the server on this machine). Its process tree's CPU is PostgreSQL's share of
/// an ingest.
pub fn postmaster_pid(url: &str) -> Result<u32> {
    let out = std::process::Command::new("psql")
        .arg(url)
        .args(["-X", "-A", "-t", "-q", "-c", "SHOW data_directory"])
        .output()
        .context("run psql")?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || dir.is_empty() {
        bail!(
            "psql SHOW data_directory: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pidfile = std::fs::read_to_string(format!("{dir}/postmaster.pid"))
        .with_context(|| format!("read {dir}/postmaster.pid"))?;
    pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .context("postmaster.pid without a pid")
}

pub fn drop_postgres_database(url: &str, name: &str) {
    let _ = std::process::Command::new("psql")
        .arg(url)
        .args(["-q", "-c"])
        .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .output();
}

struct Sender {
    rest: Rest,
    /// (room id, the member session that sends to it)
    targets: Vec<(String, Session)>,
}

#[derive(Default)]
struct PhaseCounts {
    ok: AtomicU64,
    errors: AtomicU64,
}

fn merge(hs: Vec<Histogram<u64>>) -> Histogram<u64> {
    let mut h = hist::new();
    for x in hs {
        h.add(&x).ok();
    }
    h
}

/// Closed loop: every sender sends, waits for the acknowledgement, sends again. A warm-up second
/// is not counted.
async fn closed_loop(
    srv: &Spawned,
    postmaster: Option<u32>,
    senders: &[Arc<Sender>],
    seconds: f64,
    first_error: &Arc<std::sync::Mutex<Option<String>>>,
) -> Result<Value> {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(PhaseCounts::default());
    let base = Instant::now();
    let measure_from = base + Duration::from_secs(1);
    let mut tasks = Vec::new();
    for (j, s) in senders.iter().enumerate() {
        let (s, stop, counts, first_error) =
            (s.clone(), stop.clone(), counts.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = hist::new();
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (rid, who) = &s.targets[k % s.targets.len()];
                let t = Instant::now();
                let r = s
                    .rest
                    .send_message(who, rid, &format!("ingest {j} {k} closed-loop"))
                    .await;
                k += 1;
                if t < measure_from {
                    continue;
                }
                match r {
                    Ok(_) => {
                        hist::record(&mut h, t.elapsed().as_micros() as u64);
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            h
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = srv.sample()?;
    let pg0 = postmaster.map(crate::proc::tree_cpu_secs).transpose()?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let ok_at_end = counts.ok.load(Ordering::Relaxed);
    let cpu1 = srv.sample()?;
    let pg1 = postmaster.map(crate::proc::tree_cpu_secs).transpose()?;
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut hs = Vec::new();
    for t in tasks {
        hs.push(t.await?);
    }
    let h = merge(hs);
    let per_s = ok_at_end as f64 / elapsed;
    let cpu = cpu1.cpu_secs - cpu0.cpu_secs;
    Ok(json!({
        "seconds": round(elapsed, 2),
        "messages": ok_at_end,
        "messages_per_s": round(per_s, 1),
        "ack_latency": hist::summary(&h),
        "errors": counts.errors.load(Ordering::Relaxed),
        "server_cpu_secs": round(cpu, 3),
        "server_cpu_us_per_message": round(cpu * 1e6 / ok_at_end.max(1) as f64, 1),
        "server_rss_kib": cpu1.rss_kib,
        "postgres_cpu_secs": pg0.zip(pg1).map(|(a, b)| round(b - a, 3)),
        "postgres_cpu_us_per_message": pg0.zip(pg1).map(|(a, b)| round((b - a) * 1e6 / ok_at_end.max(1) as f64, 1)),
    }))
}

/// Open loop at `rate`: message `k` is due at `start + k/rate` on sender `k mod n`, and its
/// latency counts from that due time (queueing behind a slow acknowledgement included).
async fn open_loop(
    srv: &Spawned,
    senders: &[Arc<Sender>],
    rate: f64,
    seconds: f64,
    first_error: &Arc<std::sync::Mutex<Option<String>>>,
) -> Result<Value> {
    let total = (rate * seconds).round().max(1.0) as u64;
    let n = senders.len() as u64;
    let counts = Arc::new(PhaseCounts::default());
    let start = Instant::now() + Duration::from_millis(100);
    let cpu0 = srv.sample()?;
    let mut tasks = Vec::new();
    for (j, s) in senders.iter().enumerate() {
        let (s, counts, first_error) = (s.clone(), counts.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = hist::new();
            let mut k = j as u64;
            let mut i = 0usize;
            let mut last = start;
            while k < total {
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let (rid, who) = &s.targets[i % s.targets.len()];
                i += 1;
                match s
                    .rest
                    .send_message(who, rid, &format!("ingest {j} {k} open-loop {rate}"))
                    .await
                {
                    Ok(_) => {
                        hist::record(&mut h, due.elapsed().as_micros() as u64);
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                last = Instant::now();
                k += n;
            }
            (h, last)
        }));
    }
    let mut hs = Vec::new();
    let mut end = start;
    for t in tasks {
        let (h, last) = t.await?;
        hs.push(h);
        end = end.max(last);
    }
    let cpu1 = srv.sample()?;
    let h = merge(hs);
    let ok = counts.ok.load(Ordering::Relaxed);
    let elapsed = end.saturating_duration_since(start).as_secs_f64().max(1e-3);
    Ok(json!({
        "target_rate": rate,
        "seconds": seconds,
        "sent": total,
        "acknowledged": ok,
        "achieved_per_s": round(ok as f64 / elapsed, 1),
        "ack_latency_from_due": hist::summary(&h),
        "errors": counts.errors.load(Ordering::Relaxed),
        "server_cpu_secs": round(cpu1.cpu_secs - cpu0.cpu_secs, 3),
    }))
}

pub async fn ingest(env: &Env, a: &IngestArgs) -> Result<Value> {
    eprintln!(
        "ingest: {} REST senders, {} s closed loop, backend {}, steps {:?}",
        a.senders, a.seconds, a.backend, a.rates
    );
    let load_before = load_note();
    let sqlite_cal = tokio::task::spawn_blocking(|| calib::sqlite_commits(2.0)).await??;
    let fsync = tokio::task::spawn_blocking(|| crate::scenario::fsync_rate(1.0)).await??;
    let mut extra = Vec::new();
    let mut pg_db = None;
    let mut postmaster = None;
    match a.backend.as_str() {
        "sqlite" => {}
        "postgres" => {
            let url = a
                .database_url
                .as_deref()
                .context("--backend postgres needs --database-url (or APOGEE_TEST_DATABASE_URL)")?;
            let (fresh, name) = fresh_postgres_database(url, "ingest")?;
            match postmaster_pid(url) {
                Ok(pid) => postmaster = Some(pid),
                Err(e) => eprintln!("  PostgreSQL's CPU not counted: {e:#}"),
            }
            eprintln!("  fresh PostgreSQL database {name}");
            extra = vec!["--database-url".to_string(), fresh];
            pg_db = Some((url.to_string(), name));
        }
        other => bail!("--backend must be sqlite or postgres, not {other}"),
    }
    let dir = tempfile::tempdir().context("temp data dir")?;
    let srv =
        server::start_apogee_with(&env.apogee_bin, env.server_cpus.clone(), dir, &extra).await?;
    let result = ingest_on(&srv, postmaster, a, sqlite_cal, fsync, load_before).await;
    srv.stop().await;
    if let Some((url, name)) = pg_db {
        drop_postgres_database(&url, &name);
    }
    result
}

async fn ingest_on(
    srv: &Spawned,
    postmaster: Option<u32>,
    a: &IngestArgs,
    sqlite_cal: Value,
    fsync: Value,
    load_before: Value,
) -> Result<Value> {
    let rest = Rest::new(&srv.base_url())?;
    let admin = rest.login(server::ADMIN_USER, server::ADMIN_PASS).await?;
    let t0 = Instant::now();
    let users: Vec<LoadUser> = rest
        .create_users(&admin, "ing", USERS, server::TOKEN_SECRET, 4)
        .await?;
    let mut rooms = Vec::with_capacity(ROOMS);
    for r in 0..ROOMS {
        let names: Vec<String> = room_members(r)
            .into_iter()
            .map(|u| users[u].username.clone())
            .collect();
        rooms.push(
            rest.create_channel(&admin, &format!("ingest-{r}"), &names)
                .await?,
        );
    }
    eprintln!(
        "  {USERS} users and {ROOMS} rooms (2–50 members) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let n = a.senders.max(1);
    let mut senders = Vec::with_capacity(n);
    for j in 0..n {
        let targets = sender_rooms(j, n)
            .into_iter()
            .map(|r| (rooms[r].clone(), users[r % USERS].session.clone()))
            .collect();
        senders.push(Arc::new(Sender {
            rest: Rest::single_connection(&srv.base_url())?,
            targets,
        }));
    }
    let first_error = Arc::new(std::sync::Mutex::new(None));
    let closed = closed_loop(srv, postmaster, &senders, a.seconds, &first_error).await?;
    let mut steps = Vec::new();
    for &rate in &a.rates {
        eprintln!("  open loop at {rate} msg/s for {} s", a.step_seconds);
        let s = open_loop(srv, &senders, rate, a.step_seconds, &first_error).await?;
        let p99 = s["ack_latency_from_due"]["p99_ms"].as_f64().unwrap_or(0.0);
        steps.push(s);
        if p99 > 50.0 {
            break;
        }
    }
    let sustained_open = steps
        .iter()
        .filter(|s| {
            s["ack_latency_from_due"]["p99_ms"]
                .as_f64()
                .unwrap_or(f64::MAX)
                <= 50.0
        })
        .filter_map(|s| s["achieved_per_s"].as_f64())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let ack: Summary = serde_json::from_value(closed["ack_latency"].clone())?;
    let md = format!(
        "| metric | value | calibration | ratio |\n|---|---|---|---|\n\
         | ingest ({}, {n} REST senders, closed loop) msgs/s | {} | SQLite FULL 100-row batches {} rows/s | {} |\n\
         | ingest msgs/s vs single-row commits | {} | SQLite FULL single-row {} commits/s | {} |\n\
         | ack p50 / p99 ms | {} / {} | single-row commit p50 {} ms | {} |\n\
         | server CPU s (µs per message) | {} ({}) | – | – |\n\
         {}\
         | best open-loop rate with p99 ≤ 50 ms, msgs/s | {} | – | – |\n",
        a.backend,
        closed["messages_per_s"],
        sqlite_cal["batch100_rows_per_s"],
        ratio(
            &closed["messages_per_s"],
            &sqlite_cal["batch100_rows_per_s"]
        ),
        closed["messages_per_s"],
        sqlite_cal["single_row_commits_per_s"],
        ratio(
            &closed["messages_per_s"],
            &sqlite_cal["single_row_commits_per_s"]
        ),
        ack.p50_ms,
        ack.p99_ms,
        sqlite_cal["single_row_commit_latency"]["p50_ms"],
        ratio(
            &json!(ack.p50_ms),
            &sqlite_cal["single_row_commit_latency"]["p50_ms"]
        ),
        closed["server_cpu_secs"],
        closed["server_cpu_us_per_message"],
        if closed["postgres_cpu_secs"].is_null() {
            String::new()
        } else {
            format!(
                "| PostgreSQL's processes' CPU s (µs per message) | {} ({}) | – | – |\n",
                closed["postgres_cpu_secs"], closed["postgres_cpu_us_per_message"]
            )
        },
        sustained_open.map_or("–".to_string(), |x| x.to_string()),
    );
    eprintln!(
        "\n**ingest** ({}): {n} REST senders over {ROOMS} rooms, closed loop {} s: **{} msgs/s**, \
         ack {}, server CPU {} s; errors {}.\n\n{md}",
        a.backend,
        closed["seconds"],
        closed["messages_per_s"],
        ack.short(),
        closed["server_cpu_secs"],
        closed["errors"],
    );
    Ok(json!({
        "scenario": "ingest",
        "backend": a.backend,
        "senders": n,
        "users": USERS,
        "rooms": ROOMS,
        "transport": "REST chat.sendMessage, one keep-alive HTTP/1.1 connection per sender",
        "closed_loop": closed,
        "open_loop_steps": steps,
        "best_open_loop_rate_p99_le_50ms": sustained_open,
        "first_error": *first_error.lock().unwrap(),
        "calibration": {"sqlite": sqlite_cal, "fsync": fsync},
        "ratios": {
            "closed_loop_vs_sqlite_batch100": ratio(&closed["messages_per_s"], &sqlite_cal["batch100_rows_per_s"]),
            "closed_loop_vs_sqlite_single_commits": ratio(&closed["messages_per_s"], &sqlite_cal["single_row_commits_per_s"]),
        },
        "load_avg_before": load_before,
        "markdown": md,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_have_2_to_50_members_and_their_sender() {
        assert_eq!(room_members(0).len(), 2);
        assert_eq!(room_members(ROOMS - 1).len(), 50);
        for r in 0..ROOMS {
            assert!(room_members(r).contains(&(r % USERS)));
        }
    }

    #[test]
    fn senders_cover_every_room() {
        let mut seen = [false; ROOMS];
        for j in 0..64 {
            for r in sender_rooms(j, 64) {
                seen[r] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://a:b@127.0.0.1:5432/apogee", "x").unwrap(),
            "postgres://a:b@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "y").unwrap(),
            "postgres://h/y?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "z").unwrap(),
            "postgres://h/z"
        );
    }
}
