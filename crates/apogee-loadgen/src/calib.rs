//! Calibrations measured by the generator itself: SQLite commit rates (WAL + synchronous=FULL on
//! a temp file) and the password hash time with the server's argon2 parameters.

use crate::hist;
use anyhow::Result;
use serde_json::{Value, json};
use std::time::Instant;

/// A message-sized document (~300 B, like the JSON `append_message` stores).
fn doc(i: u64) -> String {
    format!(
        "{{\"_id\":\"cal{i:014}\",\"rid\":\"calroom\",\"msg\":\"calibration message {i}\",\
         \"ts\":\"2026-01-01T00:00:00.000Z\",\"u\":{{\"_id\":\"caluser\",\"username\":\"cal\",\
         \"name\":\"cal\"}},\"_updatedAt\":\"2026-01-01T00:00:00.000Z\",\"md\":[{{\"type\":\
         \"PARAGRAPH\",\"value\":[{{\"type\":\"PLAIN_TEXT\",\"value\":\"calibration message {i}\"}}]}}],\
         \"mentions\":[],\"channels\":[]}}"
    )
}

/// SQLite in WAL mode with `synchronous=FULL` (the server's settings) on a temp file: single-row
/// commits for `secs`, then 100 rows per commit for `secs`. The table has the server's message
/// indexes (primary key, `(rid, ts, id)`), so a row costs what a message row costs.
pub fn sqlite_commits(secs: f64) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let db = rusqlite::Connection::open(dir.path().join("calibrate.db"))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(
        "CREATE TABLE messages (id TEXT PRIMARY KEY, rid TEXT NOT NULL, ts BIGINT NOT NULL,
                                doc TEXT NOT NULL);
         CREATE INDEX messages_room_ts ON messages (rid, ts, id);",
    )?;
    let mut n = 0u64;
    let insert = |db: &rusqlite::Connection, n: &mut u64| -> Result<()> {
        db.prepare_cached("INSERT INTO messages (id, rid, ts, doc) VALUES (?1, ?2, ?3, ?4)")?
            .execute(rusqlite::params![
                format!("cal{n:014}"),
                "calroom",
                *n as i64,
                doc(*n)
            ])?;
        *n += 1;
        Ok(())
    };
    let mut single = hist::new();
    let start = Instant::now();
    let mut commits = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        let tx = db.unchecked_transaction()?;
        insert(&tx, &mut n)?;
        tx.commit()?;
        hist::record(&mut single, t.elapsed().as_micros() as u64);
        commits += 1;
    }
    let single_per_s = commits as f64 / start.elapsed().as_secs_f64();
    let mut batch = hist::new();
    let start = Instant::now();
    let mut rows = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        let tx = db.unchecked_transaction()?;
        for _ in 0..100 {
            insert(&tx, &mut n)?;
        }
        tx.commit()?;
        hist::record(&mut batch, t.elapsed().as_micros() as u64);
        rows += 100;
    }
    let batch_rows_per_s = rows as f64 / start.elapsed().as_secs_f64();
    Ok(json!({
        "single_row_commits_per_s": (single_per_s * 10.0).round() / 10.0,
        "single_row_commit_latency": hist::summary(&single),
        "batch100_rows_per_s": batch_rows_per_s.round(),
        "batch100_commit_latency": hist::summary(&batch),
        "settings": "journal_mode=WAL, synchronous=FULL, temp file beside the generator's TMPDIR",
    }))
}

/// Median time of one argon2id hash with `Argon2::default()` (the server's parameters), over
/// `n` hashes; `cores` is how many the server may use. The ceiling is `cores ÷ hash time`.
pub fn argon2_hash(n: usize, cores: usize) -> Result<Value> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let hasher = argon2::Argon2::default();
    let mut times = Vec::with_capacity(n);
    // One warm-up hash: the first one also pays for faulting in its 19 MiB.
    for i in 0..=n.max(1) {
        let salt = SaltString::encode_b64(format!("loadgen-salt-{i:04}").as_bytes())
            .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let t = Instant::now();
        hasher
            .hash_password(b"loadgen-user-pass", &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p = argon2::Params::default();
    Ok(json!({
        "algorithm": "argon2id v19 (argon2 crate Argon2::default())",
        "m_cost_kib": p.m_cost(),
        "t_cost": p.t_cost(),
        "p_cost": p.p_cost(),
        "hashes": times.len(),
        "hash_ms_median": (median * 1e6).round() / 1e3,
        "hash_ms_min": (times[0] * 1e6).round() / 1e3,
        "cores": cores,
        "ceiling_logins_per_s": ((cores as f64 / median) * 10.0).round() / 10.0,
        "ceiling_from_fastest_hash_per_s": ((cores as f64 / times[0]) * 10.0).round() / 10.0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_doc_is_json() {
        let v: Value = serde_json::from_str(&doc(7)).unwrap();
        assert_eq!(v["_id"], "cal00000000000007");
    }

    #[test]
    fn argon2_calibration_reports_a_ceiling() {
        let v = argon2_hash(1, 2).unwrap();
        assert!(v["ceiling_logins_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(v["cores"], 2);
    }
}
