//! Crash safety: `kill -9` the real binary in the middle of a burst of writes, restart it on the
//! same data, and check that every message the server acknowledged is still there.
//!
//! CI scale is 5 trials on SQLite and 3 on PostgreSQL (when `APOGEE_TEST_DATABASE_URL` is set);
//! `APOGEE_CRASH_TRIALS=10` runs that many on each backend.

mod common;

use common::{Auth, Backend, Server, backends};
use reqwest::Client;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Concurrent senders per trial.
const SENDERS: usize = 8;

/// What one sender saw.
#[derive(Default)]
struct Sent {
    /// Ids answered with 200 `success: true`, with their text.
    acked: BTreeMap<String, String>,
    /// Ids whose request got no answer (the server died under it): may or may not be stored.
    in_flight: BTreeSet<String>,
    /// Answers other than 200 `success: true`, before the kill.
    refused: Vec<String>,
}

/// splitmix64: a tiny deterministic PRNG, so a failing trial can be rerun with the same delay.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn trials(b: Backend) -> usize {
    match std::env::var("APOGEE_CRASH_TRIALS") {
        Ok(n) => n.parse().expect("APOGEE_CRASH_TRIALS is a number"),
        Err(_) => match b {
            Backend::Sqlite => 5,
            Backend::Postgres => 3,
        },
    }
}

async fn sender(
    client: Client,
    base: String,
    auth: Auth,
    rid: String,
    prefix: String,
    killed: Arc<AtomicBool>,
    acked_total: Arc<AtomicUsize>,
) -> Sent {
    let mut sent = Sent::default();
    // Send until the server is gone, so requests are in flight at the moment of the kill.
    for n in 0.. {
        let id = format!("{prefix}-{n}");
        let text = format!("crash test {id} {}", "x".repeat(n % 40));
        let resp = client
            .post(format!("{base}/api/v1/chat.sendMessage"))
            .header("X-User-Id", &auth.user_id)
            .header("X-Auth-Token", &auth.token)
            .json(&json!({"message": {"_id": id, "rid": rid, "msg": text}}))
            .send()
            .await;
        let answer = match resp {
            Ok(r) => {
                let status = r.status();
                r.text().await.map(|body| (status, body))
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok((status, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if status == 200 && v["success"] == true {
                    assert_eq!(v["message"]["_id"], id.as_str(), "{body}");
                    sent.acked.insert(id, text);
                    acked_total.fetch_add(1, Ordering::SeqCst);
                } else if killed.load(Ordering::SeqCst) {
                    sent.in_flight.insert(id);
                } else {
                    sent.refused.push(format!("{id}: {status} {body}"));
                }
            }
            Err(_) => {
                // Connection reset or refused: the server is gone.
                sent.in_flight.insert(id);
                break;
            }
        }
    }
    sent
}

/// Every message in the room, by id, paging through `channels.history` with `offset`, checked
/// against the room's message counter.
async fn room_messages(s: &Server, a: &Auth, rid: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut offset = 0;
    loop {
        let (status, page) = s
            .get(
                &format!("/api/v1/channels.history?roomId={rid}&count=100&offset={offset}"),
                a,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let msgs = page["messages"].as_array().expect("messages");
        for m in msgs {
            let id = m["_id"].as_str().expect("_id").to_string();
            let text = m["msg"].as_str().unwrap_or_default().to_string();
            assert!(all.insert(id, text).is_none(), "duplicate in history");
        }
        offset += msgs.len();
        if msgs.len() < 100 {
            let (_, info) = s
                .get(&format!("/api/v1/channels.info?roomId={rid}"), a)
                .await;
            let counted = info["channel"]["msgs"].as_u64().expect("msgs") as usize;
            assert_eq!(
                all.len(),
                counted,
                "history pages add up to the room's count"
            );
            return all;
        }
    }
}

async fn trial(b: Backend, t: usize) {
    let started = Instant::now();
    let s = Server::start(b).await;
    let a = s.user("writer").await;
    let (status, created) = s
        .post("/api/v1/channels.create", &a, json!({"name": "crash"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let rid = created["channel"]["_id"].as_str().unwrap().to_string();

    let killed = Arc::new(AtomicBool::new(false));
    let acked_total = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..SENDERS)
        .map(|w| {
            tokio::spawn(sender(
                s.client.clone(),
                s.base.clone(),
                a.clone(),
                rid.clone(),
                format!("crash-t{t}-w{w}"),
                killed.clone(),
                acked_total.clone(),
            ))
        })
        .collect();
    // Let the burst get going, then kill at a pseudo-random moment 50–400 ms later.
    let wait = Instant::now();
    while acked_total.load(Ordering::SeqCst) < SENDERS && wait.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delay = 50 + splitmix(t as u64 ^ ((b as u64) << 32)) % 351;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    killed.store(true, Ordering::SeqCst);
    let (dir, db) = s.crash();

    let mut acked = BTreeMap::new();
    let mut in_flight = BTreeSet::new();
    let mut refused = Vec::new();
    for task in tasks {
        let sent = task.await.expect("sender");
        acked.extend(sent.acked);
        in_flight.extend(sent.in_flight);
        refused.extend(sent.refused);
    }
    assert!(
        refused.is_empty(),
        "{b:?} trial {t}: refused sends: {refused:?}"
    );
    assert!(
        !acked.is_empty(),
        "{b:?} trial {t}: nothing was acknowledged"
    );

    let s = Server::start_in(b, dir, &[], db).await;
    // The login token was acknowledged too; it must still work.
    let (status, me) = s.get("/api/v1/me", &a).await;
    assert_eq!(
        status, 200,
        "{b:?} trial {t}: login lost in the crash: {me}"
    );
    let stored = room_messages(&s, &a, &rid).await;
    let lost: Vec<_> = acked
        .keys()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{b:?} trial {t} (kill after {delay} ms): {} of {} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    for (id, text) in &acked {
        assert_eq!(&stored[id], text, "{b:?} trial {t}: text of {id}");
    }
    // Nothing appears that was never sent.
    for id in stored.keys() {
        assert!(
            acked.contains_key(id) || in_flight.contains(id),
            "{b:?} trial {t}: unexpected message {id}"
        );
    }
    // The last acknowledged message of each sender is also found by id.
    for w in 0..SENDERS {
        let prefix = format!("crash-t{t}-w{w}-");
        let Some(id) = acked
            .keys()
            .filter(|id| id.starts_with(&prefix))
            .max_by_key(|id| id[prefix.len()..].parse::<u64>().unwrap())
        else {
            continue;
        };
        let (status, got) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={id}"), &a)
            .await;
        assert_eq!(status, 200, "{b:?} trial {t}: {id}: {got}");
        assert_eq!(got["message"]["msg"], acked[id].as_str());
    }

    // The restarted server takes new writes, including retries of the unanswered sends.
    for id in in_flight.iter().chain([&format!("crash-t{t}-after")]) {
        let (status, got) = s
            .post(
                "/api/v1/chat.sendMessage",
                &a,
                json!({"message": {"_id": id, "rid": rid, "msg": format!("retry {id}")}}),
            )
            .await;
        assert_eq!(
            status, 200,
            "{b:?} trial {t}: send {id} after restart: {got}"
        );
        assert_eq!(got["message"]["_id"], id.as_str());
    }
    let after = room_messages(&s, &a, &rid).await;
    assert_eq!(
        after.len(),
        stored.len()
            + in_flight
                .iter()
                .filter(|id| !stored.contains_key(*id))
                .count()
            + 1,
        "{b:?} trial {t}: messages after the retries"
    );
    eprintln!(
        "{b:?} trial {t}: kill after {delay} ms, {} acknowledged, {} in flight ({} of them stored), {:.1} s",
        acked.len(),
        in_flight.len(),
        in_flight
            .iter()
            .filter(|id| stored.contains_key(*id))
            .count(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    for b in backends() {
        for t in 0..trials(b) {
            trial(b, t).await;
        }
    }
}
