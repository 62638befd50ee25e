//! Fixed-window counters by key, as Meteor's and Rocket.Chat's rate limiters count: a window
//! opens at a key's first call and allows `allowed` calls until `interval` has passed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters kept before expired windows are swept out.
const SWEEP_AT: usize = 10_000;

struct Window {
    start: Instant,
    interval: Duration,
    count: u64,
}

/// One call counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The call is over the limit.
    pub over: bool,
    /// Calls left in this window.
    pub remaining: u64,
    /// Until the window resets.
    pub reset: Duration,
}

#[derive(Default)]
pub struct Windows {
    windows: Mutex<HashMap<String, Window>>,
}

impl Windows {
    /// Counts a call under `key`.
    pub fn hit(&self, key: String, allowed: u64, interval: Duration) -> Hit {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_AT {
            windows.retain(|_, w| now.duration_since(w.start) < w.interval);
        }
        let w = windows.entry(key).or_insert(Window {
            start: now,
            interval,
            count: 0,
        });
        if now.duration_since(w.start) >= w.interval {
            w.start = now;
            w.count = 0;
        }
        w.interval = interval;
        w.count += 1;
        Hit {
            over: w.count > allowed,
            remaining: allowed.saturating_sub(w.count),
            reset: (w.start + interval).saturating_duration_since(now),
        }
    }

    /// Forgets the counters whose key starts with `prefix`.
    pub fn forget(&self, prefix: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_until_the_window_resets() {
        let w = Windows::default();
        let long = Duration::from_secs(60);
        assert_eq!(w.hit("a".into(), 2, long).remaining, 1);
        assert!(!w.hit("a".into(), 2, long).over);
        let third = w.hit("a".into(), 2, long);
        assert!(third.over && third.remaining == 0 && third.reset <= long);
        assert!(!w.hit("b".into(), 2, long).over, "keys are separate");
        let short = Duration::from_millis(1);
        w.hit("c".into(), 1, short);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!w.hit("c".into(), 1, short).over, "a new window");
        w.forget("a");
        assert!(!w.hit("a".into(), 2, long).over);
    }
}
