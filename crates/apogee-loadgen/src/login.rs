//! Login storm: concurrent REST password logins while a 50-member room's fan-out runs, against
//! the same fan-out without the storm, on one server; the ceiling is cores ÷ one argon2id hash.

use crate::hist;
use crate::rest::Rest;
use crate::scenario::{self, Env, FanoutArgs, load_note, ratio, round, workspace};
use crate::{calib, server};
use anyhow::Result;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct LoginArgs {
    pub concurrency: usize,
    pub seconds: f64,
    pub members: usize,
    pub rate: f64,
}

pub async fn login(env: &Env, a: &LoginArgs) -> Result<Value> {
    let cores = env
        .server_cpus
        .as_ref()
        .map(Vec::len)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "login: {} concurrent password logins for {} s beside a {}-member fan-out at {}/s",
        a.concurrency, a.seconds, a.members, a.rate
    );
    let load_before = load_note();
    let hash = tokio::task::spawn_blocking(move || calib::argon2_hash(9, cores)).await??;
    let srv = server::start_apogee(&env.apogee_bin, env.server_cpus.clone()).await?;
    let users = a.members.clamp(1, 200);
    let ws = workspace(&srv, users, "login-fanout").await?;
    let srv = srv
        .restart(&env.apogee_bin, env.server_cpus.clone())
        .await?;
    let fan = FanoutArgs {
        members: a.members,
        users,
        rate: a.rate,
        seconds: a.seconds,
        senders: 2,
    };
    let quiet = scenario::fanout_on(env, &srv, &ws, &fan, users, "fanout (no storm)").await?;
    // The storm: `concurrency` loops of POST /api/v1/login with the users' passwords.
    let rest = Rest::new(&srv.base_url())?;
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let names: Arc<Vec<String>> = Arc::new(ws.users.iter().map(|u| u.username.clone()).collect());
    let started = Instant::now();
    let cpu0 = srv.sample()?;
    let mut tasks = Vec::new();
    let step = a.concurrency.max(1);
    for j in 0..step {
        let (rest, stop, errors, names) =
            (rest.clone(), stop.clone(), errors.clone(), names.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = hist::new();
            let mut k = j;
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match rest
                    .login(&names[k % names.len()], "loadgen-user-pass")
                    .await
                {
                    Ok(_) => hist::record(&mut h, t.elapsed().as_micros() as u64),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                k += step;
            }
            (h, first_error)
        }));
    }
    let stormy = scenario::fanout_on(env, &srv, &ws, &fan, users, "fanout (login storm)").await;
    stop.store(true, Ordering::Relaxed);
    let mut h = hist::new();
    let mut first_error = None;
    for t in tasks {
        let (x, e) = t.await?;
        h.add(&x).ok();
        if first_error.is_none() {
            first_error = e;
        }
    }
    let storm_secs = started.elapsed().as_secs_f64();
    let cpu1 = srv.sample()?;
    srv.stop().await;
    let stormy = stormy?;
    let logins = hist::summary(&h);
    let per_s = logins.count as f64 / storm_secs;
    let ceiling = hash["ceiling_logins_per_s"].as_f64().unwrap_or(0.0);
    let of_ceiling = if ceiling > 0.0 { per_s / ceiling } else { 0.0 };
    let md = format!(
        "| metric | value | calibration | ratio |\n|---|---|---|---|\n\
         | logins/s ({} concurrent, REST password) | {} | ceiling {cores} cores ÷ {} ms = {}/s | {:.2}× |\n\
         | login p50 / p99 ms | {} / {} | one hash {} ms | – |\n\
         | fan-out {} members @ {}/s p99 ms: storm vs none | {} vs {} | – | {} |\n\
         | fan-out p50 ms: storm vs none | {} vs {} | – | {} |\n\
         | server CPU s during storm | {} | – | – |\n",
        a.concurrency,
        round(per_s, 1),
        hash["hash_ms_median"],
        ceiling,
        of_ceiling,
        logins.p50_ms,
        logins.p99_ms,
        hash["hash_ms_median"],
        a.members,
        a.rate,
        stormy["latency"]["p99_ms"],
        quiet["latency"]["p99_ms"],
        ratio(&stormy["latency"]["p99_ms"], &quiet["latency"]["p99_ms"]),
        stormy["latency"]["p50_ms"],
        quiet["latency"]["p50_ms"],
        ratio(&stormy["latency"]["p50_ms"], &quiet["latency"]["p50_ms"]),
        round(cpu1.cpu_secs - cpu0.cpu_secs, 2),
    );
    eprintln!(
        "\n**login**: {} logins in {storm_secs:.1} s = **{per_s:.1}/s** ({of_ceiling:.2}× the \
         cores ÷ hash-time ceiling), {} errors.\n\n{md}",
        logins.count,
        errors.load(Ordering::Relaxed)
    );
    Ok(json!({
        "scenario": "login",
        "concurrency": a.concurrency,
        "storm_secs": round(storm_secs, 2),
        "logins": logins.count,
        "logins_per_s": round(per_s, 1),
        "login_latency": logins,
        "login_errors": errors.load(Ordering::Relaxed),
        "first_error": first_error,
        "calibration": {"hash": hash},
        "logins_per_s_over_ceiling": round(of_ceiling, 3),
        "fanout_without_storm": quiet,
        "fanout_during_storm": stormy,
        "fanout_p99_storm_over_quiet": ratio(&stormy["latency"]["p99_ms"], &quiet["latency"]["p99_ms"]),
        "server_cpu_secs_storm": round(cpu1.cpu_secs - cpu0.cpu_secs, 3),
        "server_rss_after_kib": cpu1.rss_kib,
        "load_avg_before": load_before,
        "markdown": md,
    }))
}
