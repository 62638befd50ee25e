//! The login tokens and users that REST requests authenticate with, kept in memory so a busy
//! client's requests do not read both from the store every time.
//!
//! Entries are dropped by the events of every node (a user's profile changed, a session or all
//! of a user's sessions ended, a user deleted) as soon as they arrive, and by this node's own
//! commits before their callers are answered; every entry also expires after [`TTL`], which
//! bounds how long a node could serve a revoked session if it missed an event (a networked bus
//! drops events when it falls behind). A read that raced with an invalidation is not cached:
//! an entry is stored only if no invalidation happened since the store was read.

use crate::events::Event;
use crate::store::LoginToken;
use apogee_domain::User;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an entry is trusted without news.
pub(crate) const TTL: Duration = Duration::from_secs(2);
/// Entries of each kind kept at most; when full, the cache starts over.
const CAPACITY: usize = 20_000;

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, (LoginToken, Instant)>,
    users: HashMap<String, (User, Instant)>,
    /// Counts invalidations, so a read that began before one is not stored after it.
    generation: u64,
}

#[derive(Default)]
pub(crate) struct SessionCache {
    inner: Mutex<Inner>,
}

fn fresh<T: Clone>(entry: Option<&(T, Instant)>) -> Option<T> {
    entry
        .filter(|(_, at)| at.elapsed() < TTL)
        .map(|(v, _)| v.clone())
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The moment to pass to `remember_*` after reading the store.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(crate) fn token(&self, hashed: &str) -> Option<LoginToken> {
        fresh(self.lock().tokens.get(hashed))
    }

    pub(crate) fn user(&self, id: &str) -> Option<User> {
        fresh(self.lock().users.get(id))
    }

    /// Keeps a token read from the store at `generation`, unless something changed since.
    pub(crate) fn remember_token(&self, generation: u64, token: &LoginToken) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.tokens.len() >= CAPACITY {
            inner.tokens.clear();
        }
        let entry = (token.clone(), Instant::now());
        inner.tokens.insert(token.hashed.clone(), entry);
    }

    /// Keeps a user read from the store at `generation`, unless something changed since.
    pub(crate) fn remember_user(&self, generation: u64, user: &User) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.users.len() >= CAPACITY {
            inner.users.clear();
        }
        inner
            .users
            .insert(user.id.clone(), (user.clone(), Instant::now()));
    }

    /// Drops what `event` makes stale.
    pub(crate) fn apply(&self, event: &Event) {
        match event {
            Event::User { user } => {
                let mut inner = self.lock();
                inner.generation += 1;
                inner.users.remove(&user.id);
            }
            Event::SessionsEnded {
                user_id,
                token_hash,
            } => {
                let mut inner = self.lock();
                inner.generation += 1;
                match token_hash {
                    Some(hashed) => {
                        inner.tokens.remove(hashed);
                    }
                    None => inner.tokens.retain(|_, (t, _)| t.user_id != *user_id),
                }
                inner.users.remove(user_id);
            }
            _ => {}
        }
    }

    /// Forgets everything (after missed events).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.tokens.clear();
        inner.users.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::Timestamp;

    fn token(hashed: &str, uid: &str) -> LoginToken {
        LoginToken {
            hashed: hashed.into(),
            user_id: uid.into(),
            created_at: Timestamp::now(),
            expires_at: None,
            name: None,
            bypass_two_factor: false,
            session_id: None,
            last_token_part: None,
            client: Default::default(),
            last_active_at: None,
        }
    }

    fn user(uid: &str) -> User {
        User::new(uid.into(), uid.into(), None, "user", vec![])
    }

    #[test]
    fn ended_sessions_and_changed_users_are_forgotten() {
        let cache = SessionCache::default();
        let g = cache.generation();
        cache.remember_token(g, &token("h1", "u"));
        cache.remember_token(g, &token("h2", "u"));
        cache.remember_token(g, &token("h3", "v"));
        cache.remember_user(g, &user("u"));
        assert!(cache.token("h1").is_some() && cache.user("u").is_some());
        cache.apply(&Event::SessionsEnded {
            user_id: "u".into(),
            token_hash: Some("h1".into()),
        });
        assert!(cache.token("h1").is_none());
        assert!(cache.token("h2").is_some());
        cache.apply(&Event::SessionsEnded {
            user_id: "u".into(),
            token_hash: None,
        });
        assert!(cache.token("h2").is_none());
        assert!(cache.token("h3").is_some(), "other users' sessions stay");
        let g = cache.generation();
        cache.remember_user(g, &user("v"));
        cache.apply(&Event::User {
            user: Box::new(user("v")),
        });
        assert!(cache.user("v").is_none());
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let cache = SessionCache::default();
        let before = cache.generation();
        cache.apply(&Event::User {
            user: Box::new(user("u")),
        });
        cache.remember_user(before, &user("u"));
        cache.remember_token(before, &token("h", "u"));
        assert!(cache.user("u").is_none());
        assert!(cache.token("h").is_none());
        cache.remember_user(cache.generation(), &user("u"));
        assert!(cache.user("u").is_some());
        cache.clear();
        assert!(cache.user("u").is_none());
    }
}
