//! A Matrix room's power levels read from its state (`m.room.power_levels`, and from room
//! version 12 the creators of `m.room.create`, who have unlimited power), and Rocket.Chat's
//! room roles as levels (owner 100, moderator 50, as Rocket.Chat maps them).
//!
//! Core checks its own events against these before signing them: an event the room's auth
//! rules would refuse is never sent (other servers would reject it and our state would part
//! from theirs), so the Rocket.Chat change it belongs to is refused too.

use serde_json::{Map, Value, json};

/// The power of a room creator in room version 12 (unlimited; above any integer level).
const CREATOR: i64 = i64::MAX;

/// What a room's power levels allow.
#[derive(Debug, Clone)]
pub(crate) struct PowerLevels {
    content: Value,
    /// Users with unlimited power (v12 creators).
    creators: Vec<String>,
}

impl PowerLevels {
    /// From the room's `m.room.power_levels` content (`None`: no such event) and, for room
    /// version 12, its create event's sender and `additional_creators`.
    pub fn new(version: &str, power_levels: Option<&Value>, create: Option<&Value>) -> Self {
        let mut creators = Vec::new();
        if version == "12"
            && let Some(create) = create
        {
            creators.extend(create["sender"].as_str().map(str::to_string));
            if let Some(more) = create["content"]["additional_creators"].as_array() {
                creators.extend(more.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
        Self {
            content: power_levels.cloned().unwrap_or(Value::Null),
            creators,
        }
    }

    fn int(&self, key: &str, default: i64) -> i64 {
        level_of(self.content.get(key)).unwrap_or(default)
    }

    /// A user's level: creators unlimited, else `users`, else `users_default`.
    pub fn user(&self, user_id: &str) -> i64 {
        if self.creators.iter().any(|c| c == user_id) {
            return CREATOR;
        }
        level_of(self.content.get("users").and_then(|u| u.get(user_id)))
            .unwrap_or_else(|| self.int("users_default", 0))
    }

    /// Whether `user_id` has unlimited power (a v12 creator).
    pub fn is_creator(&self, user_id: &str) -> bool {
        self.creators.iter().any(|c| c == user_id)
    }

    /// The level needed to send a state event of `event_type` (without power levels at all,
    /// the specification's defaults: 0 for everything).
    pub fn state_event(&self, event_type: &str) -> i64 {
        if self.content.is_null() {
            return 0;
        }
        level_of(self.content.get("events").and_then(|e| e.get(event_type)))
            .unwrap_or_else(|| self.int("state_default", 50))
    }

    /// The level needed to notify with `key` (`room`: an `@room` mention), 50 by default.
    pub fn notification(&self, key: &str) -> i64 {
        level_of(self.content.get("notifications").and_then(|n| n.get(key))).unwrap_or(50)
    }

    pub fn kick(&self) -> i64 {
        self.int("kick", 50)
    }

    /// The level needed to post messages (`events_default`).
    pub fn events_default(&self) -> i64 {
        self.int("events_default", 0)
    }

    /// Whether `sender` may remove (`kick`/`ban` as `action`) `target` from the room: the
    /// action's level, and more power than the target.
    pub fn may_remove(&self, sender: &str, target: &str, action: i64) -> bool {
        let own = self.user(sender);
        own >= action && own > self.user(target)
    }

    /// The new content with `user_id` at `level` (removed at `users_default`), and whether
    /// `sender` may make that change: it needs the power-levels event's level, at least
    /// `level` itself, and more power than the user's old level unless it is their own.
    pub fn with_user(&self, sender: &str, user_id: &str, level: i64) -> (Value, bool) {
        let own = self.user(sender);
        let old = self.user(user_id);
        let allowed = !self.is_creator(user_id)
            && own >= self.state_event("m.room.power_levels")
            && own >= level
            && (sender == user_id || own > old);
        let mut content = self.content_object();
        let users = content
            .entry("users")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut users: Map<String, Value> = users;
        if level == self.int("users_default", 0) {
            users.remove(user_id);
        } else {
            users.insert(user_id.to_string(), json!(level));
        }
        content.insert("users".into(), Value::Object(users));
        (Value::Object(content), allowed)
    }

    /// The new content with `events_default` at `level`, and whether `sender` may change it
    /// (the power-levels event's level and at least the old and new values).
    pub fn with_events_default(&self, sender: &str, level: i64) -> (Value, bool) {
        let own = self.user(sender);
        let allowed = own >= self.state_event("m.room.power_levels")
            && own >= level
            && own >= self.events_default();
        let mut content = self.content_object();
        content.insert("events_default".into(), json!(level));
        (Value::Object(content), allowed)
    }

    fn content_object(&self) -> Map<String, Value> {
        self.content.as_object().cloned().unwrap_or_default()
    }
}

/// A level as Matrix writes it: an integer (older rooms may hold a numeric string).
fn level_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The level Rocket.Chat's room roles give (owner 100, moderator 50, else 0).
pub(crate) fn level_of_roles(roles: &[String]) -> i64 {
    if roles.iter().any(|r| r == "owner") {
        100
    } else if roles.iter().any(|r| r == "moderator") {
        50
    } else {
        0
    }
}

/// Room roles for a level, keeping roles Matrix does not know (`leader`, custom ones).
pub(crate) fn roles_for_level(roles: &[String], level: i64) -> Vec<String> {
    let mut out: Vec<String> = roles
        .iter()
        .filter(|r| *r != "owner" && *r != "moderator")
        .cloned()
        .collect();
    if level >= 100 {
        out.push("owner".into());
    } else if level >= 50 {
        out.push("moderator".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> PowerLevels {
        PowerLevels::new(
            "11",
            Some(
                &json!({"users": {"@bob:us": 100, "@mod:us": "50"}, "users_default": 0,
                "state_default": 50, "kick": 50, "ban": 50,
                "events": {"m.room.power_levels": 100}}),
            ),
            None,
        )
    }

    #[test]
    fn levels_are_read_with_their_defaults() {
        let p = levels();
        assert_eq!(p.user("@bob:us"), 100);
        assert_eq!(p.user("@mod:us"), 50);
        assert_eq!(p.user("@eve:them"), 0);
        assert_eq!(p.state_event("m.room.name"), 50);
        assert_eq!(p.state_event("m.room.power_levels"), 100);
        assert!(p.may_remove("@bob:us", "@mod:us", p.kick()));
        assert!(!p.may_remove("@mod:us", "@bob:us", p.kick()));
        assert!(!p.may_remove("@eve:them", "@mod:us", p.kick()));
        let none = PowerLevels::new("10", None, None);
        assert_eq!(none.state_event("m.room.name"), 0);
    }

    #[test]
    fn v12_creators_have_unlimited_power() {
        let create = json!({"sender": "@bob:us", "content": {"additional_creators": ["@c:us"]}});
        let p = PowerLevels::new("12", Some(&json!({"users": {}})), Some(&create));
        assert!(p.is_creator("@c:us"));
        assert!(p.may_remove("@bob:us", "@x:them", 50));
        let (_, allowed) = p.with_user("@x:them", "@bob:us", 0);
        assert!(!allowed, "a creator's power cannot be changed");
        // Not in v11.
        assert!(!PowerLevels::new("11", None, Some(&create)).is_creator("@bob:us"));
    }

    #[test]
    fn changing_a_users_level_needs_more_power() {
        let p = levels();
        let (content, allowed) = p.with_user("@bob:us", "@eve:them", 50);
        assert!(allowed);
        assert_eq!(content["users"]["@eve:them"], 50);
        let (content, allowed) = p.with_user("@bob:us", "@mod:us", 0);
        assert!(allowed);
        assert!(content["users"].get("@mod:us").is_none());
        assert!(
            !p.with_user("@mod:us", "@eve:them", 50).1,
            "needs the event's level"
        );
        let (content, allowed) = p.with_events_default("@bob:us", 50);
        assert!(allowed);
        assert_eq!(content["events_default"], 50);
        assert!(!p.with_events_default("@mod:us", 50).1);
    }

    #[test]
    fn room_roles_and_levels() {
        assert_eq!(level_of_roles(&["owner".into(), "moderator".into()]), 100);
        assert_eq!(level_of_roles(&["moderator".into()]), 50);
        assert_eq!(level_of_roles(&["leader".into()]), 0);
        assert_eq!(
            roles_for_level(&["leader".into(), "owner".into()], 50),
            vec!["leader".to_string(), "moderator".to_string()]
        );
        assert_eq!(roles_for_level(&[], 100), vec!["owner".to_string()]);
    }
}
