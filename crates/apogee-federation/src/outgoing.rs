//! Per-destination state of outgoing transactions on this node: the in-flight lock (one
//! transaction at a time per destination) and the EDUs waiting to go. EDUs are ephemeral —
//! typing, read receipts — so they live in memory only: they ride with the next transaction
//! to their destination, or go on their own when nothing else is going, and a restart drops
//! them (a stale typing notice is worse than none; a receipt is superseded by the next one).

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// EDUs kept per destination while it cannot be reached; older ones are dropped first.
const MAX_WAITING_EDUS: usize = 500;

/// One EDU waiting, with the key a newer EDU replaces it by (e.g. typing of one user in one
/// room), if any.
#[derive(Debug, Clone)]
struct Waiting {
    key: Option<String>,
    edu: Value,
}

#[derive(Default)]
struct Destination {
    in_flight: Arc<tokio::sync::Mutex<()>>,
    edus: VecDeque<Waiting>,
    /// When a request from this server was last taken as a sign it is up.
    heard_at: Option<Instant>,
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
        if let Some(k) = &key
            && let Some(old) = waiting.iter_mut().find(|w| w.key.as_ref() == Some(k))
        {
            old.edu = edu;
            return;
        }
        waiting.push_back(Waiting { key, edu });
        while waiting.len() > MAX_WAITING_EDUS {
            waiting.pop_front();
        }
    }

    /// Takes up to `limit` waiting EDUs, oldest first.
    pub fn take_edus(&self, destination: &str, limit: usize) -> Vec<Value> {
        self.take(destination, limit)
            .into_iter()
            .map(|w| w.edu)
            .collect()
    }

    fn take(&self, destination: &str, limit: usize) -> Vec<Waiting> {
        let mut map = self.destinations.lock().unwrap();
        let Some(d) = map.get_mut(destination) else {
            return Vec::new();
        };
        let n = d.edus.len().min(limit);
        d.edus.drain(..n).collect()
    }

    /// EDUs of a transaction that failed go back in front of newer ones (keyless: a newer
    /// one with the same key may have come meanwhile, and wins).
    pub fn put_back(&self, destination: &str, edus: Vec<Value>) {
        let mut map = self.destinations.lock().unwrap();
        let waiting = &mut map.entry(destination.to_string()).or_default().edus;
        for edu in edus.into_iter().rev() {
            waiting.push_front(Waiting { key: None, edu });
        }
        while waiting.len() > MAX_WAITING_EDUS {
            waiting.pop_front();
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

    #[test]
    fn keyed_edus_replace_and_failed_ones_go_back_first() {
        let o = Outgoing::default();
        o.push_edu("a", Some("typing:r:u".into()), json!(1));
        o.push_edu("a", None, json!(2));
        o.push_edu("a", Some("typing:r:u".into()), json!(3));
        assert_eq!(o.take_edus("a", 10), vec![json!(3), json!(2)]);
        o.push_edu("a", None, json!(4));
        o.put_back("a", vec![json!(3), json!(2)]);
        assert_eq!(o.take_edus("a", 2), vec![json!(3), json!(2)]);
        assert_eq!(o.waiting_edus("a"), 1);
        assert!(o.take_edus("b", 10).is_empty());
    }

    #[test]
    fn a_long_outage_keeps_the_newest_edus() {
        let o = Outgoing::default();
        for n in 0..(MAX_WAITING_EDUS + 5) {
            o.push_edu("a", None, json!(n));
        }
        assert_eq!(o.waiting_edus("a"), MAX_WAITING_EDUS);
        assert_eq!(o.take_edus("a", 1), vec![json!(5)]);
    }
}
