//! Brute force: a script tries `attempts` wrong passwords for one account, as fast as its
//! `--attack-concurrency` connections allow, from its own address (`--attacker-ip`, 127.0.0.2 by
//! default: every 127/8 address is the loopback on Linux). Meanwhile other users' authenticated
//! requests (`GET /api/v1/me`, open loop at `--rate`) run from 127.0.0.1, as in a baseline phase
//! without the attack. Reports when the user lockout and the address lockout took effect (the
//! attempt and the time, by error type), the other users' latency during the attack over the
//! baseline, and what the locks do afterwards: the victim's correct password refused (from the
//! attacker's address and from another), another user's login from the attacker's address
//! refused, and sessions from that address still served.

use crate::hist;
use crate::rest::{Rest, Session};
use crate::scenario::{Env, load_note, ratio, round, workspace};
use crate::server;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The password `Rest::create_users` gives every user.
const USER_PASSWORD: &str = "loadgen-user-pass";

#[derive(Clone, Debug)]
pub struct BruteforceArgs {
    /// Wrong passwords tried.
    pub attempts: usize,
    /// Connections the attacker uses at once.
    pub attack_concurrency: usize,
    pub attacker_ip: IpAddr,
    /// Other users whose requests are measured.
    pub users: usize,
    /// Their requests per second (all together), open loop.
    pub rate: f64,
    /// Baseline length, and the least length of the measurement beside the attack.
    pub seconds: f64,
    /// Keep-alive connections the measured requests are spread over.
    pub workers: usize,
}

/// One measured request: when it was due (µs from the phase start) and how long it took from
/// then (µs), or `None` if it failed.
struct Sample {
    due_us: u64,
    latency_us: Option<u64>,
}

/// Authenticated `GET me` for `users` round-robin: request `k` is due at `start + k/rate` on
/// worker `k mod workers` (latency counted from the due time, so a stall is not hidden by fewer
/// requests being sent). Runs for at least `min_secs`, and on until `done` is set.
async fn measure(
    base: &str,
    users: Arc<Vec<Session>>,
    rate: f64,
    workers: usize,
    min_secs: f64,
    done: Arc<AtomicBool>,
    start: tokio::time::Instant,
) -> Result<Vec<Sample>> {
    let mut tasks = Vec::new();
    for j in 0..workers {
        let rest = Rest::single_connection(base)?;
        let (users, done) = (users.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut k = j;
            loop {
                let due = Duration::from_secs_f64(k as f64 / rate);
                if due.as_secs_f64() >= min_secs && done.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep_until(start + due).await;
                let ok = rest.get("me", &users[k % users.len()], &[]).await.is_ok();
                let latency = start.elapsed().saturating_sub(due).as_micros() as u64;
                samples.push(Sample {
                    due_us: due.as_micros() as u64,
                    latency_us: ok.then_some(latency),
                });
                k += workers;
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    Ok(all)
}

fn summarize<'a>(samples: impl Iterator<Item = &'a Sample>) -> (hist::Summary, u64) {
    let mut h = hist::new();
    let mut errors = 0;
    for s in samples {
        match s.latency_us {
            Some(us) => hist::record(&mut h, us),
            None => errors += 1,
        }
    }
    (hist::summary(&h), errors)
}

/// What an answer to `login` was: `ok`, or Rocket.Chat's `error` (403 is a wrong password).
fn outcome(status: u16, v: &Value) -> String {
    if status == 200 {
        return "ok".into();
    }
    match &v["error"] {
        Value::String(s) => s.clone(),
        Value::Null => format!("HTTP {status}"),
        other => other.to_string(),
    }
}

/// One attempt as it finished: the attempt number in finishing order, when (ms from the
/// attack's start) and the outcome.
struct Attempt {
    at_ms: f64,
    outcome: String,
}

async fn attack(
    attackers: Vec<Rest>,
    victim: String,
    attempts: usize,
    start: Instant,
) -> Vec<Attempt> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for rest in attackers {
        let (next, victim) = (next.clone(), victim.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= attempts {
                    break;
                }
                let outcome = match rest.try_login(&victim, &format!("wrong-{i}")).await {
                    Ok((status, v)) => outcome(status, &v),
                    Err(e) => format!("transport: {e:#}"),
                };
                seen.push(Attempt {
                    at_ms: start.elapsed().as_secs_f64() * 1000.0,
                    outcome,
                });
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    all
}

/// The first attempt (1-based, finishing order) with `outcome`, and when it finished.
fn first(attempts: &[Attempt], outcome: &str) -> Value {
    match attempts.iter().position(|a| a.outcome == outcome) {
        Some(i) => json!({"attempt": i + 1, "at_ms": round(attempts[i].at_ms, 1)}),
        None => Value::Null,
    }
}

pub async fn bruteforce(env: &Env, a: &BruteforceArgs) -> Result<Value> {
    eprintln!(
        "bruteforce: {} wrong passwords for one account from {} ({} connections) beside \
         {} users' authenticated requests at {}/s from 127.0.0.1",
        a.attempts, a.attacker_ip, a.attack_concurrency, a.users, a.rate
    );
    let load_before = load_note();
    let srv = server::start_apogee(&env.apogee_bin, env.server_cpus.clone()).await?;
    let base = srv.base_url();
    let ws = workspace(&srv, a.users.max(1) + 1, "bruteforce").await?;
    let victim = ws.users[0].username.clone();
    let others: Arc<Vec<Session>> =
        Arc::new(ws.users[1..].iter().map(|u| u.session.clone()).collect());
    let attackers = (0..a.attack_concurrency.max(1))
        .map(|_| Rest::single_connection_from(&base, a.attacker_ip))
        .collect::<Result<Vec<_>>>()?;
    // The attacker's address must be usable before anything is measured.
    attackers[0]
        .get("me", &ws.admin, &[])
        .await
        .with_context(|| {
            format!(
                "a request from --attacker-ip {} failed (on Linux any 127.x.y.z works; \
                 elsewhere pass 127.0.0.1 and read the address lockout as shared)",
                a.attacker_ip
            )
        })?;
    let done = Arc::new(AtomicBool::new(true));
    let workers = a.workers.max(1);
    let now = tokio::time::Instant::now;
    measure(
        &base,
        others.clone(),
        a.rate,
        workers,
        1.0,
        done.clone(),
        now(),
    )
    .await?;
    let baseline = measure(
        &base,
        others.clone(),
        a.rate,
        workers,
        a.seconds,
        done,
        now(),
    )
    .await?;
    let (base_summary, base_errors) = summarize(baseline.iter());

    let cpu0 = srv.sample()?;
    let done = Arc::new(AtomicBool::new(false));
    // One clock for both: request due times and attempt times share their zero.
    let phase_start = now();
    let measuring = tokio::spawn({
        let (base, others, done) = (base.clone(), others.clone(), done.clone());
        let (rate, seconds) = (a.rate, a.seconds);
        async move { measure(&base, others, rate, workers, seconds, done, phase_start).await }
    });
    let started = phase_start.into_std();
    let attempts = attack(attackers.clone(), victim.clone(), a.attempts, started).await;
    let attack_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let beside = measuring.await??;
    let cpu1 = srv.sample()?;
    let attack_end_us = (attack_secs * 1e6) as u64;
    let (during, during_errors) = summarize(beside.iter().filter(|s| s.due_us < attack_end_us));
    let (whole, whole_errors) = summarize(beside.iter());
    // The attack's two parts: wrong passwords checked (one argon2id hash each) until the user
    // lock, then refusals that cost no hash.
    let user_lock_us = attempts
        .iter()
        .find(|t| t.outcome == "error-login-blocked-for-user")
        .map_or(attack_end_us, |t| (t.at_ms * 1000.0) as u64);
    let (hashing, _) = summarize(beside.iter().filter(|s| s.due_us < user_lock_us));
    let (refusing, _) = summarize(
        beside
            .iter()
            .filter(|s| s.due_us >= user_lock_us && s.due_us < attack_end_us),
    );

    // What the locks do now.
    let attacker = &attackers[0];
    let elsewhere = Rest::single_connection(&base)?;
    let (st, v) = attacker.try_login(&victim, USER_PASSWORD).await?;
    let victim_from_attacker = outcome(st, &v);
    let (st, v) = elsewhere.try_login(&victim, USER_PASSWORD).await?;
    let victim_elsewhere = outcome(st, &v);
    let (st, v) = attacker
        .try_login(&ws.users[1].username, USER_PASSWORD)
        .await?;
    let other_from_attacker = outcome(st, &v);
    let session_from_attacker = attacker.get("me", &others[0], &[]).await.is_ok();
    srv.stop().await;

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &attempts {
        *counts.entry(t.outcome.as_str()).or_default() += 1;
    }
    let user_lock = first(&attempts, "error-login-blocked-for-user");
    let ip_lock = first(&attempts, "error-login-blocked-for-ip");
    let blocked = |o: &str| o.starts_with("error-login-blocked-for-");
    let checks = json!({
        "user_locked": !user_lock.is_null(),
        "address_locked": !ip_lock.is_null(),
        "victim_password_refused_from_attacker_address": blocked(&victim_from_attacker),
        "victim_password_refused_from_other_address": victim_elsewhere == "error-login-blocked-for-user",
        "other_login_from_attacker_address_refused": other_from_attacker == "error-login-blocked-for-ip",
        "sessions_from_attacker_address_served": session_from_attacker,
        "measured_requests_all_succeeded": base_errors + whole_errors == 0,
    });
    let p99_ratio = ratio(&json!(during.p99_ms), &json!(base_summary.p99_ms));
    let p50_ratio = ratio(&json!(during.p50_ms), &json!(base_summary.p50_ms));
    let per_s = attempts.len() as f64 / attack_secs.max(1e-9);
    let md = format!(
        "| metric | value |\n|---|---|\n\
         | wrong passwords tried ({} connections from {}) | {} in {:.2} s = {:.0}/s |\n\
         | outcomes | {} |\n\
         | user locked (first `error-login-blocked-for-user`) | attempt {} at {} ms |\n\
         | address locked (first `error-login-blocked-for-ip`) | attempt {} at {} ms |\n\
         | other users `GET me` p50 / p99 ms: baseline | {} / {} ({} requests) |\n\
         | same, due while the attack ran | {} / {} ({} requests) |\n\
         | ratio attack ÷ baseline p50 / p99 | {} / {} |\n\
         | … while wrong passwords were hashed (before the user lock) | {} / {} ({} requests) |\n\
         | … while locked attempts were refused | {} / {} ({} requests) |\n\
         | measured request errors (baseline, beside the attack) | {base_errors}, {whole_errors} |\n\
         | victim's correct password afterwards: from the attacker / elsewhere | {victim_from_attacker} / {victim_elsewhere} |\n\
         | another user's login from the attacker's address | {other_from_attacker} |\n\
         | a session used from the attacker's address | {} |\n\
         | server CPU s during the attack phase | {} |\n",
        a.attack_concurrency,
        a.attacker_ip,
        attempts.len(),
        attack_secs,
        per_s,
        counts
            .iter()
            .map(|(k, v)| format!("`{k}` ×{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        user_lock["attempt"],
        user_lock["at_ms"],
        ip_lock["attempt"],
        ip_lock["at_ms"],
        base_summary.p50_ms,
        base_summary.p99_ms,
        base_summary.count,
        during.p50_ms,
        during.p99_ms,
        during.count,
        p50_ratio,
        p99_ratio,
        hashing.p50_ms,
        hashing.p99_ms,
        hashing.count,
        refusing.p50_ms,
        refusing.p99_ms,
        refusing.count,
        if session_from_attacker {
            "served"
        } else {
            "REFUSED"
        },
        round(cpu1.cpu_secs - cpu0.cpu_secs, 2),
    );
    eprintln!("\n**bruteforce**\n\n{md}\nchecks: {checks}");
    Ok(json!({
        "scenario": "bruteforce",
        "attempts": attempts.len(),
        "attack_concurrency": a.attack_concurrency,
        "attacker_ip": a.attacker_ip.to_string(),
        "attack_secs": round(attack_secs, 3),
        "attempts_per_s": round(per_s, 1),
        "outcomes": counts,
        "user_locked_at": user_lock,
        "address_locked_at": ip_lock,
        "lockout_settings": "server defaults: user after 10 failures, address after 50, 5 min each",
        "measured": {
            "users": others.len(),
            "rate_per_s": a.rate,
            "workers": workers,
            "baseline": base_summary,
            "baseline_errors": base_errors,
            "during_attack": during,
            "errors_during_attack": during_errors,
            "during_attack_before_user_lock": hashing,
            "during_attack_after_user_lock": refusing,
            "p99_after_user_lock_over_baseline": ratio(&json!(refusing.p99_ms), &json!(base_summary.p99_ms)),
            "whole_phase_beside_attack": whole,
            "errors_beside_attack": whole_errors,
            "p50_attack_over_baseline": p50_ratio,
            "p99_attack_over_baseline": p99_ratio,
        },
        "afterwards": {
            "victim_correct_password_from_attacker_address": victim_from_attacker,
            "victim_correct_password_from_other_address": victim_elsewhere,
            "other_user_login_from_attacker_address": other_from_attacker,
            "session_from_attacker_address_served": session_from_attacker,
        },
        "checks": checks,
        "server_cpu_secs_attack_phase": round(cpu1.cpu_secs - cpu0.cpu_secs, 3),
        "load_avg_before": load_before,
        "markdown": md,
    }))
}
