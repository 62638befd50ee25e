//! Rocket.Chat's DDP rate limiter: every method call and subscription counts against five
//! rules — per client address (loopback exempt), per user, per connection, per user and method,
//! per connection and method — each a fixed window of `DDP_Rate_Limit_<Rule>_Requests_Allowed`
//! calls per `…_Interval_Time` ms, switched by `…_Enabled`. A call over any limit is refused
//! with Meteor's `too-many-requests` error and runs nothing.
//!
//! As in Rocket.Chat, "method" in the two per-method rules means the kind (method call or
//! subscription) and the name, and names starting `stream-` (a client subscribes to several
//! events of one stream per room, and typing is a `stream-notify-room` call) get four times the
//! calls over four times the interval.

use crate::windows::Windows;
use apogee_core::error::{CoreError, ErrorKind};
use apogee_core::settings::Settings;
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

/// Who is calling what.
pub struct Caller<'a> {
    pub addr: Option<IpAddr>,
    pub user: Option<&'a str>,
    pub connection: u64,
    pub kind: CallKind,
    pub name: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Method,
    Subscription,
}

/// Rocket.Chat's widening of the per-method rules for `stream-*` names.
const STREAM_FACTOR: i64 = 4;

#[derive(Default)]
pub struct RateLimits {
    windows: Windows,
}

impl RateLimits {
    /// Counts the call against every enabled rule that applies; refuses it when one is over.
    pub fn check(&self, settings: &Settings, caller: &Caller) -> Result<(), CoreError> {
        let method = format!("{:?} {}", caller.kind, caller.name);
        let factor = if caller.name.starts_with("stream-") {
            STREAM_FACTOR
        } else {
            1
        };
        // (rule, counter key, factor)
        let mut keys = Vec::with_capacity(5);
        if let Some(addr) = caller.addr.filter(|a| !a.is_loopback()) {
            keys.push(("IP", format!("ip {addr}"), 1));
        }
        if let Some(user) = caller.user {
            keys.push(("User", format!("user {user}"), 1));
            keys.push(("User_By_Method", format!("user {user} {method}"), factor));
        }
        keys.push(("Connection", format!("conn {} ", caller.connection), 1));
        keys.push((
            "Connection_By_Method",
            format!("conn {} {method}", caller.connection),
            factor,
        ));
        let mut wait = None;
        for (rule, key, factor) in keys {
            if !settings.bool(&format!("DDP_Rate_Limit_{rule}_Enabled")) {
                continue;
            }
            let allowed = settings.int(&format!("DDP_Rate_Limit_{rule}_Requests_Allowed")) * factor;
            let interval = settings.int(&format!("DDP_Rate_Limit_{rule}_Interval_Time")) * factor;
            let hit = self.windows.hit(
                key,
                allowed.max(0) as u64,
                Duration::from_millis(interval.max(1) as u64),
            );
            if hit.over {
                wait = wait.max(Some(hit.reset));
            }
        }
        match wait {
            None => Ok(()),
            Some(reset) => Err(too_many(reset)),
        }
    }

    /// Forgets a closed connection's counters.
    pub fn forget_connection(&self, connection: u64) {
        self.windows.forget(&format!("conn {connection} "));
    }
}

/// Meteor's DDPRateLimiter error.
fn too_many(reset: Duration) -> CoreError {
    let ms = reset.as_millis() as u64;
    let seconds = ms.div_ceil(1000);
    let mut e = CoreError::new(
        ErrorKind::RateLimited,
        "too-many-requests",
        format!(
            "Error, too many requests. Please slow down. You must wait {seconds} seconds before trying again."
        ),
    );
    e.details = Some(json!({"timeToReset": ms}));
    e
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

    fn call<'a>(connection: u64, user: Option<&'a str>, name: &'a str) -> Caller<'a> {
        Caller {
            addr: None,
            user,
            connection,
            kind: CallKind::Method,
            name,
        }
    }

    #[test]
    fn per_connection_and_method_limit() {
        let s = settings(&[]);
        let limits = RateLimits::default();
        for _ in 0..10 {
            limits
                .check(&s, &call(1, Some("u"), "sendMessage"))
                .unwrap();
        }
        let e = limits
            .check(&s, &call(1, Some("u"), "sendMessage"))
            .unwrap_err();
        assert_eq!(e.code, "too-many-requests");
        assert!(e.message.starts_with("Error, too many requests."));
        assert!(e.details.unwrap()["timeToReset"].as_u64().unwrap() <= 10_000);
        // Another method, and the same method on another connection, are still allowed.
        limits
            .check(&s, &call(1, Some("u"), "loadHistory"))
            .unwrap();
        limits
            .check(&s, &call(2, Some("v"), "sendMessage"))
            .unwrap();
        limits.forget_connection(1);
        limits
            .check(&s, &call(1, Some("w"), "sendMessage"))
            .unwrap();
    }

    #[test]
    fn rules_follow_their_settings() {
        let s = settings(&[
            (
                "DDP_Rate_Limit_Connection_By_Method_Enabled",
                Value::Bool(false),
            ),
            ("DDP_Rate_Limit_User_By_Method_Requests_Allowed", 2.into()),
        ]);
        let limits = RateLimits::default();
        limits.check(&s, &call(1, Some("u"), "m")).unwrap();
        limits.check(&s, &call(2, Some("u"), "m")).unwrap();
        assert!(
            limits.check(&s, &call(3, Some("u"), "m")).is_err(),
            "per user"
        );
        limits.check(&s, &call(3, None, "m")).unwrap();
        let loopback = Caller {
            addr: Some("127.0.0.1".parse().unwrap()),
            ..call(4, None, "m")
        };
        limits.check(&s, &loopback).unwrap();
    }

    #[test]
    fn subscriptions_count_apart_from_methods_and_streams_get_four_times_the_calls() {
        let s = settings(&[]);
        let limits = RateLimits::default();
        let sub = |name| Caller {
            kind: CallKind::Subscription,
            ..call(1, Some("u"), name)
        };
        for _ in 0..10 {
            limits
                .check(&s, &call(1, Some("u"), "getUsersOfRoom"))
                .unwrap();
        }
        limits.check(&s, &sub("getUsersOfRoom")).unwrap();
        for _ in 0..40 {
            limits.check(&s, &sub("stream-notify-room")).unwrap();
        }
        let e = limits.check(&s, &sub("stream-notify-room")).unwrap_err();
        // The window is four times Connection_By_Method's 10 s.
        assert!(e.details.unwrap()["timeToReset"].as_u64().unwrap() > 10_000);
        limits
            .check(&s, &call(1, Some("u"), "stream-notify-room"))
            .unwrap();
    }
}
