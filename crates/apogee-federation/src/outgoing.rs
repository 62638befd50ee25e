//! Per-destination state of outgoing transactions on this node: the in-flight lock (one
//! transaction at a time per destination) and the EDUs waiting to go. EDUs are ephemeral —
//! typing, read receipts, presence — so they live in memory only: they ride with the next
//! transaction to their destination, or go on their own when nothing else is going, and a
//! restart drops them (a stale typing notice is worse than none; a receipt is superseded by
//! the next one).
//!
//! A transaction that carried EDUs and failed puts them back and arms a retry of their own
//! ([`Outgoing::edu_failed`]): 5 s, doubling, at most a minute apart, for as long as EDUs wait
//! (the send path re-arms it after each failure), so a receipt sent while the peer is down
//! arrives soon after it is back without needing other traffic. What waits is bounded: at most
//! [`MAX_WAITING_EDUS`] per destination, the latest per key (a user's receipt in a room, their
//! typing, their presence), and typing notices older than their 30 s timeout are dropped
//! instead of sent.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// EDUs kept per destination while it cannot be reached; older ones are dropped first.
const MAX_WAITING_EDUS: usize = 500;

/// A typing notice says "for the next 30 s" (the `timeout` we send): older, it is dropped.
const TYPING_TTL: Duration = Duration::from_secs(30);
/// The first retry of failed EDUs; each further failure doubles it, up to [`EDU_RETRY_MAX`].
const EDU_RETRY_FIRST: Duration = Duration::from_secs(5);
const EDU_RETRY_MAX: Duration = Duration::from_secs(60);

/// One EDU waiting, with the key a newer EDU replaces it by (e.g. typing of one user in one
/// room), if any, and when it was queued.
#[derive(Debug, Clone)]
pub struct WaitingEdu {
    key: Option<String>,
    pub edu: Value,
    queued_at: Instant,
}

impl WaitingEdu {
    /// A typing notice past its timeout: not worth sending.
    fn stale(&self, now: Instant) -> bool {
        self.edu.get("edu_type").and_then(Value::as_str) == Some("m.typing")
            && now.duration_since(self.queued_at) > TYPING_TTL
    }
}

#[derive(Default)]
struct Destination {
    in_flight: Arc<tokio::sync::Mutex<()>>,
    edus: VecDeque<WaitingEdu>,
    /// When a request from this server was last taken as a sign it is up.
    heard_at: Option<Instant>,
    /// EDU transactions failed in a row (sets the retry delay).
    edu_failures: u32,
    /// Whether a retry of the waiting EDUs is armed.
    edu_retry_armed: bool,
}

/// A peer's requests count as "it is up again" at most this often.
const HEARD_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Outgoing {
    destinations: Mutex<HashMap<String, Destination>>,
}

impl Outgoing {
    /// Waits for the destination's transaction in flight, if any; hold the guard while sending.
    pub async fn lock(&self, destination: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.destinations.lock().unwrap();
            map.entry(destination.to_string())
                .or_default()
                .in_flight
                .clone()
        };
        lock.lock_owned().await
    }

    /// Queues an EDU; one with the same `key` already waiting is replaced in place.
    pub fn push_edu(&self, destination: &str, key: Option<String>, edu: Value) {
        let mut map = self.destinations.lock().unwrap();
        let waiting = &mut map.entry(destination.to_string()).or_default().edus;
        let now = Instant::now();
        if let Some(k) = &key
            && let Some(old) = waiting.iter_mut().find(|w| w.key.as_ref() == Some(k))
        {
            old.edu = edu;
            old.queued_at = now;
            return;
        }
        waiting.push_back(WaitingEdu {
            key,
            edu,
            queued_at: now,
        });
        while waiting.len() > MAX_WAITING_EDUS {
            waiting.pop_front();
        }
    }

    /// Takes up to `limit` waiting EDUs, oldest first; typing notices past their timeout are
    /// dropped on the way.
    pub fn take_edus(&self, destination: &str, limit: usize) -> Vec<WaitingEdu> {
        let mut map = self.destinations.lock().unwrap();
        let Some(d) = map.get_mut(destination) else {
            return Vec::new();
        };
        let now = Instant::now();
        d.edus.retain(|w| !w.stale(now));
        let n = d.edus.len().min(limit);
        d.edus.drain(..n).collect()
    }

    /// EDUs of a transaction that failed go back in front of newer ones; one whose key a newer
    /// EDU has taken meanwhile is dropped (the newer wins).
    pub fn put_back(&self, destination: &str, edus: Vec<WaitingEdu>) {
        let mut map = self.destinations.lock().unwrap();
        let waiting = &mut map.entry(destination.to_string()).or_default().edus;
        for edu in edus.into_iter().rev() {
            let superseded = edu.key.is_some() && waiting.iter().any(|w| w.key == edu.key);
            if !superseded {
                waiting.push_front(edu);
            }
        }
        while waiting.len() > MAX_WAITING_EDUS {
            waiting.pop_front();
        }
    }

    /// A transaction carrying EDUs to `destination` failed (they were put back): the delay
    /// after which to flush them again, unless a retry is armed already.
    pub fn edu_failed(&self, destination: &str) -> Option<Duration> {
        let mut map = self.destinations.lock().unwrap();
        let d = map.entry(destination.to_string()).or_default();
        let delay = EDU_RETRY_FIRST
            .saturating_mul(1 << d.edu_failures.min(16))
            .min(EDU_RETRY_MAX);
        d.edu_failures = d.edu_failures.saturating_add(1);
        if d.edu_retry_armed {
            return None;
        }
        d.edu_retry_armed = true;
        Some(delay)
    }

    /// The armed retry fired: the next failure may arm another.
    pub fn edu_retry_fired(&self, destination: &str) {
        let mut map = self.destinations.lock().unwrap();
        if let Some(d) = map.get_mut(destination) {
            d.edu_retry_armed = false;
        }
    }

    /// A transaction carrying EDUs was delivered: the next failure starts the delays afresh.
    pub fn edu_delivered(&self, destination: &str) {
        let mut map = self.destinations.lock().unwrap();
        if let Some(d) = map.get_mut(destination) {
            d.edu_failures = 0;
        }
    }

    /// A verified request came from `server`: returns whether to treat it as back up (at most
    /// once per [`HEARD_EVERY`], so a busy peer costs nothing).
    pub fn heard_from(&self, server: &str) -> bool {
        let mut map = self.destinations.lock().unwrap();
        let d = map.entry(server.to_string()).or_default();
        let now = Instant::now();
        if d.heard_at
            .is_some_and(|t| now.duration_since(t) < HEARD_EVERY)
        {
            return false;
        }
        d.heard_at = Some(now);
        true
    }

    /// How many EDUs wait for `destination`.
    pub fn waiting_edus(&self, destination: &str) -> usize {
        let map = self.destinations.lock().unwrap();
        map.get(destination).map_or(0, |d| d.edus.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(edus: Vec<WaitingEdu>) -> Vec<Value> {
        edus.into_iter().map(|w| w.edu).collect()
    }

    #[test]
    fn keyed_edus_replace_and_failed_ones_go_back_first() {
        let o = Outgoing::default();
        o.push_edu("a", Some("receipt:r:u".into()), json!(1));
        o.push_edu("a", None, json!(2));
        o.push_edu("a", Some("receipt:r:u".into()), json!(3));
        let taken = o.take_edus("a", 10);
        assert_eq!(values(taken.clone()), vec![json!(3), json!(2)]);
        o.push_edu("a", None, json!(4));
        o.put_back("a", taken);
        assert_eq!(values(o.take_edus("a", 2)), vec![json!(3), json!(2)]);
        assert_eq!(o.waiting_edus("a"), 1);
        assert!(o.take_edus("b", 10).is_empty());
    }

    #[test]
    fn a_newer_edu_of_the_same_key_wins_over_a_failed_one() {
        let o = Outgoing::default();
        o.push_edu("a", Some("presence:u".into()), json!("online"));
        let failed = o.take_edus("a", 10);
        o.push_edu("a", Some("presence:u".into()), json!("offline"));
        o.put_back("a", failed);
        assert_eq!(values(o.take_edus("a", 10)), vec![json!("offline")]);
    }

    #[test]
    fn typing_past_its_timeout_is_dropped() {
        let o = Outgoing::default();
        o.push_edu(
            "a",
            Some("typing:r:u".into()),
            json!({"edu_type": "m.typing"}),
        );
        o.push_edu(
            "a",
            Some("receipt:r:u".into()),
            json!({"edu_type": "m.receipt"}),
        );
        {
            let mut map = o.destinations.lock().unwrap();
            for w in map.get_mut("a").unwrap().edus.iter_mut() {
                w.queued_at -= TYPING_TTL + Duration::from_secs(1);
            }
        }
        assert_eq!(
            values(o.take_edus("a", 10)),
            vec![json!({"edu_type": "m.receipt"})],
            "an old receipt still goes, an old typing notice does not"
        );
    }

    #[test]
    fn failed_edus_are_retried_with_growing_delays() {
        let o = Outgoing::default();
        assert_eq!(o.edu_failed("a"), Some(EDU_RETRY_FIRST));
        assert_eq!(o.edu_failed("a"), None, "one retry armed at a time");
        o.edu_retry_fired("a");
        assert_eq!(o.edu_failed("a"), Some(EDU_RETRY_FIRST * 4));
        for _ in 0..10 {
            o.edu_retry_fired("a");
            o.edu_failed("a");
        }
        o.edu_retry_fired("a");
        assert_eq!(o.edu_failed("a"), Some(EDU_RETRY_MAX));
        o.edu_retry_fired("a");
        o.edu_delivered("a");
        assert_eq!(o.edu_failed("a"), Some(EDU_RETRY_FIRST));
    }

    #[test]
    fn a_long_outage_keeps_the_newest_edus() {
        let o = Outgoing::default();
        for n in 0..(MAX_WAITING_EDUS + 5) {
            o.push_edu("a", None, json!(n));
        }
        assert_eq!(o.waiting_edus("a"), MAX_WAITING_EDUS);
        assert_eq!(values(o.take_edus("a", 1)), vec![json!(5)]);
    }
}
