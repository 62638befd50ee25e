//! History pages at depth: N messages bulk-loaded straight into a stopped server's SQLite
//! database (the rows `append_message` would write, built from a message the server itself
//! stored), then `channels.history` (count=50) newest page and `latest=<ts>` keyset pages at
//! depths, c=1 and c=16.

use crate::hist;
use crate::rest::{Rest, Session};
use crate::scenario::{Env, load_note, ratio, round, workspace};
use crate::server;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct HistoryArgs {
    pub messages: u64,
    /// Rooms sharing the half of the messages the hot room does not hold.
    pub rooms: usize,
    /// Requests per depth class and concurrency.
    pub requests: usize,
    /// At most this long per depth class and concurrency (slow deep pages stop early).
    pub class_seconds: f64,
}

/// Milliseconds between consecutive messages of a room.
const SPACING_MS: i64 = 10;
const PAGE: usize = 50;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds (proleptic Gregorian, UTC).
pub fn iso(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A deterministic generator (xorshift64*), so every run asks for the same depths.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// How many messages each room gets: the hot room (index 0) half, the others the rest.
fn split(total: u64, rooms: usize) -> Vec<u64> {
    let hot = total / 2;
    let others = rooms.max(1) as u64;
    let rest = total - hot;
    let mut v = vec![hot];
    for i in 0..others {
        v.push(rest / others + u64::from(i < rest % others));
    }
    v
}

/// Inserts `counts[i]` messages older than the newest (template) message of `rids[i]`, with
/// the columns and document `append_message` writes, and moves each room's `seq` and `msgs`.
/// Returns the template timestamp of every room (the newest message, depth 0).
fn bulk_load(db_path: &Path, rids: &[String], counts: &[u64]) -> Result<Vec<i64>> {
    let mut db = rusqlite::Connection::open(db_path)?;
    db.pragma_update(None, "synchronous", "OFF")?;
    let mut tops = Vec::new();
    let mut id = 0u64;
    for (r, (rid, &n)) in rids.iter().zip(counts).enumerate() {
        let (doc, top): (String, i64) = db
            .query_row(
                "SELECT doc, ts FROM messages WHERE rid = ?1 AND main = 1 ORDER BY ts DESC LIMIT 1",
                [rid],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .with_context(|| format!("template message of room {rid}"))?;
        let template: Value = serde_json::from_str(&doc)?;
        tops.push(top);
        let mut i = 0u64;
        while i < n {
            let tx = db.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO messages (id, updated_at, tcount, pinned, starred_by, mention_ids,
                     msg_lower, doc, main, rid, ts, tmid)
                     VALUES (?1, ?2, 0, 0, '[]', '[]', ?3, ?4, 1, ?5, ?2, NULL)",
                )?;
                let end = (i + 50_000).min(n);
                while i < end {
                    // i = 0 is the oldest; depth d (1-based under the template) has ts top − d·Δ.
                    let depth = (n - i) as i64;
                    let ts = top - depth * SPACING_MS;
                    let text = format!(
                        "History message {i} of room {r}: the quick brown fox jumps over the lazy dog"
                    );
                    let mut m = template.clone();
                    m["_id"] = json!(format!("H{id:016}"));
                    m["msg"] = json!(text);
                    m["md"] = json!([{"type": "PARAGRAPH",
                                      "value": [{"type": "PLAIN_TEXT", "value": text}]}]);
                    m["ts"] = json!(iso(ts));
                    m["_updatedAt"] = json!(iso(ts));
                    ins.execute(rusqlite::params![
                        format!("H{id:016}"),
                        ts,
                        text.to_lowercase(),
                        m.to_string(),
                        rid,
                    ])?;
                    id += 1;
                    i += 1;
                }
            }
            tx.commit()?;
        }
        db.execute(
            "UPDATE room_activity SET seq = seq + ?2, msgs = msgs + ?2 WHERE rid = ?1",
            rusqlite::params![rid, n as i64],
        )?;
    }
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(tops)
}

/// `count` pages of `class` at concurrency `c`; depth 0 is the newest page (no `latest`).
#[allow(clippy::too_many_arguments)]
async fn pages(
    rest: &Rest,
    admin: &Session,
    rid: &str,
    top: i64,
    depths: Arc<Vec<u64>>,
    c: usize,
    budget: f64,
) -> Result<Value> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let until = t0 + std::time::Duration::from_secs_f64(budget);
    let mut tasks = Vec::new();
    for _ in 0..c.max(1) {
        let (rest, admin, rid, depths, next) = (
            rest.clone(),
            admin.clone(),
            rid.to_string(),
            depths.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut h = hist::new();
            let mut wrong = 0u64;
            while Instant::now() < until {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&d) = depths.get(k) else { break };
                let mut q = vec![("roomId", rid.clone()), ("count", PAGE.to_string())];
                let latest = top - d as i64 * SPACING_MS;
                if d > 0 {
                    q.push(("latest", iso(latest)));
                }
                let t = Instant::now();
                let v = rest.get("channels.history", &admin, &q).await?;
                hist::record(&mut h, t.elapsed().as_micros() as u64);
                let msgs = v["messages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                let want_first = if d > 0 {
                    iso(latest - SPACING_MS)
                } else {
                    iso(top)
                };
                if msgs.len() != PAGE || msgs[0]["ts"] != json!(want_first) {
                    wrong += 1;
                }
            }
            Ok::<_, anyhow::Error>((h, wrong))
        }));
    }
    let mut h = hist::new();
    let mut wrong = 0;
    for t in tasks {
        let (x, w) = t.await??;
        h.add(&x).ok();
        wrong += w;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(json!({
        "concurrency": c,
        "requests": h.len(),
        "stopped_by_time_budget": (h.len() as usize) < depths.len(),
        "latency": hist::summary(&h),
        "pages_per_s": round(h.len() as f64 / secs, 1),
        "unexpected_pages": wrong,
    }))
}

pub async fn history(env: &Env, a: &HistoryArgs) -> Result<Value> {
    eprintln!(
        "history: {} messages (half in one room, the rest over {} rooms)",
        a.messages, a.rooms
    );
    let load_before = load_note();
    let srv = server::start_apogee(&env.apogee_bin, env.server_cpus.clone()).await?;
    let ws = workspace(&srv, 8, "history-hot").await?;
    let rest = Rest::new(&srv.base_url())?;
    let names: Vec<String> = ws.users.iter().map(|u| u.username.clone()).collect();
    let mut rids = vec![ws.rid.clone()];
    for r in 0..a.rooms {
        rids.push(
            rest.create_channel(&ws.admin, &format!("history-{r}"), &names)
                .await?,
        );
    }
    // One message per room through the API: the template every loaded row is cloned from.
    for rid in &rids {
        rest.send_message(&ws.admin, rid, "History template message")
            .await?;
    }
    let dir = srv.stop_keep_dir().await?;
    let counts = split(a.messages.saturating_sub(rids.len() as u64), a.rooms);
    let hot = counts[0];
    let db_path = dir.path().join("apogee.db");
    let t0 = Instant::now();
    let (tops, db_path) = tokio::task::spawn_blocking({
        let rids = rids.clone();
        let counts = counts.clone();
        move || bulk_load(&db_path, &rids, &counts).map(|t| (t, db_path))
    })
    .await??;
    let load_secs = t0.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&db_path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "  loaded {} messages in {load_secs:.1} s ({:.0}/s), database {:.0} MiB",
        counts.iter().sum::<u64>(),
        counts.iter().sum::<u64>() as f64 / load_secs,
        db_bytes as f64 / 1048576.0
    );
    let srv = server::start_apogee_with(&env.apogee_bin, env.server_cpus.clone(), dir, &[]).await?;
    let rss_start = srv.sample()?.rss_kib;
    if hot < 2 * PAGE as u64 {
        bail!("--messages too small for a deep page");
    }
    // Depth classes (messages above the page's first message); "deepest" is ~N/2 deep.
    let mut classes: Vec<(String, u64)> = vec![("newest".into(), 0)];
    for d in [1_000u64, 10_000, 100_000] {
        if d + (PAGE as u64) < hot {
            classes.push((format!("{d}"), d));
        }
    }
    classes.push((format!("{} (0.9 × hot room)", hot * 9 / 10), hot * 9 / 10));
    let deepest = hot - PAGE as u64;
    classes.push((format!("{deepest} (deepest, ~N/2)"), deepest));
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let rest = Rest::new(&srv.base_url())?;
    // Warm-up, so that neither setup nor first reads are measured: 32 pages of every class at
    // the highest concurrency, which opens every HTTP connection and every database read
    // connection the measurement will use (each prepares its statements on first use) and reads
    // each class's pages once; then 2 s of newest pages one at a time. Without the second part
    // the first class measured, whichever it was, had p90 5-9 ms and p99 15-20 ms in its first
    // second after the burst, and p99 1.4 ms when measured again at the end of the same run.
    let warm: Vec<u64> = classes.iter().flat_map(|(_, d)| [*d; 32]).collect();
    pages(
        &rest,
        &ws.admin,
        &rids[0],
        tops[0],
        Arc::new(warm),
        16,
        60.0,
    )
    .await?;
    let settle = Arc::new(vec![0; 100_000]);
    pages(&rest, &ws.admin, &rids[0], tops[0], settle, 1, 2.0).await?;
    let cpu0 = srv.sample()?;
    let mut results = Vec::new();
    let n = a.requests.max(1);
    for c in [1usize, 16] {
        for (label, d) in &classes {
            let depths = Arc::new(vec![*d; n]);
            let r = pages(
                &rest,
                &ws.admin,
                &rids[0],
                tops[0],
                depths,
                c,
                a.class_seconds,
            )
            .await?;
            eprintln!(
                "  depth {label} c={c}: {} pages, p50 {} / p99 {} ms",
                r["requests"], r["latency"]["p50_ms"], r["latency"]["p99_ms"]
            );
            results.push(json!({"depth": label, "depth_messages": d, "result": r}));
        }
        let random: Vec<u64> = (0..n).map(|_| rng.next() % (hot - PAGE as u64)).collect();
        let r = pages(
            &rest,
            &ws.admin,
            &rids[0],
            tops[0],
            Arc::new(random),
            c,
            a.class_seconds,
        )
        .await?;
        results.push(json!({"depth": "random", "depth_messages": null, "result": r}));
    }
    let cpu1 = srv.sample()?;
    srv.stop().await;
    let find = |label_prefix: &str, c: u64| -> Value {
        results
            .iter()
            .find(|r| {
                r["depth"].as_str().unwrap_or("").starts_with(label_prefix)
                    && r["result"]["concurrency"] == c
            })
            .map(|r| r["result"]["latency"].clone())
            .unwrap_or(Value::Null)
    };
    let deep_label = format!("{deepest} ");
    let mut md = String::from(
        "| depth (messages) | c=1 p50 ms | c=1 p99 ms | c=16 p50 ms | c=16 p99 ms | c=16 pages/s |\n|---|---|---|---|---|---|\n",
    );
    for (label, _) in classes
        .iter()
        .map(|(l, d)| (l.clone(), *d))
        .chain([("random".to_string(), 0)])
    {
        let one = find(&label, 1);
        let many = find(&label, 16);
        let pps = results
            .iter()
            .find(|r| r["depth"] == json!(label) && r["result"]["concurrency"] == 16)
            .map(|r| r["result"]["pages_per_s"].clone())
            .unwrap_or(Value::Null);
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            one["p50_ms"], one["p99_ms"], many["p50_ms"], many["p99_ms"], pps
        ));
    }
    let (new1, deep1) = (find("newest", 1), find(&deep_label, 1));
    let (new16, deep16) = (find("newest", 16), find(&deep_label, 16));
    let ratios = json!({
        "deep_over_newest_p50_c1": ratio(&deep1["p50_ms"], &new1["p50_ms"]),
        "deep_over_newest_p99_c1": ratio(&deep1["p99_ms"], &new1["p99_ms"]),
        "deep_over_newest_p50_c16": ratio(&deep16["p50_ms"], &new16["p50_ms"]),
        "deep_over_newest_p99_c16": ratio(&deep16["p99_ms"], &new16["p99_ms"]),
    });
    md.push_str(&format!(
        "\ndeep ({deepest}) / newest: p50 {} / p99 {} at c=1, p50 {} / p99 {} at c=16\n",
        ratios["deep_over_newest_p50_c1"].as_str().unwrap_or("–"),
        ratios["deep_over_newest_p99_c1"].as_str().unwrap_or("–"),
        ratios["deep_over_newest_p50_c16"].as_str().unwrap_or("–"),
        ratios["deep_over_newest_p99_c16"].as_str().unwrap_or("–"),
    ));
    eprintln!(
        "\n**history**: {} messages ({hot} in the hot room) bulk-loaded in {load_secs:.1} s; \
         `channels.history` count={PAGE}, up to {n} requests (and {} s) per depth and concurrency.\n\n{md}",
        a.messages, a.class_seconds
    );
    Ok(json!({
        "scenario": "history",
        "messages": a.messages,
        "hot_room_messages": hot + 1,
        "other_rooms": a.rooms,
        "page_size": PAGE,
        "requests_per_class": n,
        "class_seconds": a.class_seconds,
        "bulk_load_secs": round(load_secs, 2),
        "database_bytes": db_bytes,
        "server_rss_start_kib": rss_start,
        "server_cpu_secs": round(cpu1.cpu_secs - cpu0.cpu_secs, 3),
        "pages": results,
        "ratios": ratios,
        "load_avg_before": load_before,
        "markdown": md,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_known_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_317_561_176), "2026-11-22T03:19:21.176Z");
        assert_eq!(iso(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn split_gives_the_hot_room_half() {
        let v = split(1_000_001, 3);
        assert_eq!(v[0], 500_000);
        assert_eq!(v.iter().sum::<u64>(), 1_000_001);
    }
}
