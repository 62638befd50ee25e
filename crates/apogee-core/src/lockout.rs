//! Rocket.Chat's brute-force protection (`Block_Multiple_Failed_Logins_*`): after too many failed
//! password logins a user, or a client address, is refused for a while, before the password is
//! even checked. A successful login clears the user's and the address's count. Counts are kept in
//! memory on each node.

use crate::settings::Settings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters kept before stale ones are swept out.
const SWEEP_AT: usize = 100_000;

struct Failures {
    count: i64,
    last: Instant,
}

#[derive(Debug, PartialEq)]
pub enum Blocked {
    User,
    Ip,
}

#[derive(Default)]
pub struct LoginGuard {
    failures: Mutex<HashMap<String, Failures>>,
}

/// What one of the two rules says: its key, attempts allowed and block time.
struct Rule {
    key: String,
    attempts: i64,
    unblock: Duration,
}

fn rules(settings: &Settings, user_id: Option<&str>, ip: Option<IpAddr>) -> Vec<(Blocked, Rule)> {
    if !settings.bool("Block_Multiple_Failed_Logins_Enabled") {
        return Vec::new();
    }
    let minutes = |id: &str| Duration::from_secs(settings.int(id).max(0) as u64 * 60);
    let mut rules = Vec::new();
    if settings.bool("Block_Multiple_Failed_Logins_By_Ip")
        && let Some(ip) = ip
    {
        let allowed = settings.string("Block_Multiple_Failed_Logins_Ip_Whitelist");
        let listed = allowed.split(',').any(|a| a.trim() == ip.to_string());
        if !listed {
            rules.push((
                Blocked::Ip,
                Rule {
                    key: format!("ip {ip}"),
                    attempts: settings
                        .int("Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip"),
                    unblock: minutes(
                        "Block_Multiple_Failed_Logins_Time_To_Unblock_By_Ip_In_Minutes",
                    ),
                },
            ));
        }
    }
    if settings.bool("Block_Multiple_Failed_Logins_By_User")
        && let Some(user_id) = user_id
    {
        rules.push((
            Blocked::User,
            Rule {
                key: format!("user {user_id}"),
                attempts: settings.int("Block_Multiple_Failed_Logins_Attempts_Until_Block_by_User"),
                unblock: minutes("Block_Multiple_Failed_Logins_Time_To_Unblock_By_User_In_Minutes"),
            },
        ));
    }
    rules
}

impl LoginGuard {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a password login for the user (when known) from `ip` is refused right now.
    pub fn check(
        &self,
        settings: &Settings,
        user_id: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Option<Blocked> {
        let map = self.map();
        rules(settings, user_id, ip)
            .into_iter()
            .find_map(|(blocked, rule)| {
                let f = map.get(&rule.key)?;
                (f.count >= rule.attempts && f.last.elapsed() < rule.unblock).then_some(blocked)
            })
    }

    /// A wrong password, or an unknown user (`None`: counts for the address only).
    pub fn failed(&self, settings: &Settings, user_id: Option<&str>, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.map();
        if map.len() > SWEEP_AT {
            map.retain(|_, f| now.duration_since(f.last) < Duration::from_secs(3600));
        }
        for (_, rule) in rules(settings, user_id, ip) {
            let f = map.entry(rule.key).or_insert(Failures {
                count: 0,
                last: now,
            });
            // A block that has run out starts a fresh count.
            if f.count >= rule.attempts && now.duration_since(f.last) >= rule.unblock {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
        }
    }

    /// A successful login clears the user's and the address's failures.
    pub fn succeeded(&self, user_id: &str, ip: Option<IpAddr>) {
        let mut map = self.map();
        map.remove(&format!("user {user_id}"));
        if let Some(ip) = ip {
            map.remove(&format!("ip {ip}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn settings(pairs: &[(&str, Value)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn blocks_the_user_after_the_attempts_and_clears_on_success() {
        let s = settings(&[]);
        let g = LoginGuard::default();
        let ip: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        for _ in 0..10 {
            assert_eq!(g.check(&s, Some("u"), ip), None);
            g.failed(&s, Some("u"), ip);
        }
        assert_eq!(g.check(&s, Some("u"), ip), Some(Blocked::User));
        assert_eq!(
            g.check(&s, Some("v"), ip),
            None,
            "other users from the address"
        );
        g.succeeded("u", ip);
        assert_eq!(g.check(&s, Some("u"), ip), None);
    }

    #[test]
    fn blocks_the_address_unless_listed_or_disabled() {
        let s = settings(&[(
            "Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
            3.into(),
        )]);
        let g = LoginGuard::default();
        let ip: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        for user in ["a", "b", "c"] {
            g.failed(&s, Some(user), ip);
        }
        assert_eq!(g.check(&s, None, ip), Some(Blocked::Ip));
        let listed = settings(&[
            (
                "Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
                3.into(),
            ),
            (
                "Block_Multiple_Failed_Logins_Ip_Whitelist",
                "10.0.0.9, 10.0.0.2".into(),
            ),
        ]);
        assert_eq!(g.check(&listed, None, ip), None);
        let off = settings(&[("Block_Multiple_Failed_Logins_Enabled", false.into())]);
        assert_eq!(g.check(&off, None, ip), None);
        let quick = settings(&[
            (
                "Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
                3.into(),
            ),
            (
                "Block_Multiple_Failed_Logins_Time_To_Unblock_By_Ip_In_Minutes",
                0.into(),
            ),
        ]);
        assert_eq!(g.check(&quick, None, ip), None, "the block has run out");
    }
}
