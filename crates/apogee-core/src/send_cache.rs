//! What a send checks — the room's type, read-only, archived and muted state, its members for
//! DMs, and the sender's subscription (existence and room roles) — kept in memory, so a busy
//! sender's messages do not read the room and the subscription from the store every time.
//!
//! The cached room has the store-owned counters cleared (`msgs`, `lm`, `lastMessage`,
//! `usersCount`, `seq`): `AppendMessage` and membership changes move them without a room
//! event, so they would be stale here, and a send never looks at them.
//!
//! Kept current like the session cache ([`crate::session_cache`]): entries are dropped by the
//! `Room` and `Subscription` events of every node (and by `SessionsEnded` for all of a user's
//! sessions, which a deleted user's subscriptions vanish with), by this node's own commits
//! before their callers are answered, after missed events, and after [`TTL`] without news. A
//! store read that raced with an invalidation is not kept.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use apogee_domain::{Room, Subscription, User};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry is trusted without news.
pub(crate) const TTL: Duration = Duration::from_secs(2);
/// Rooms (and, separately, subscriptions) kept at most; when full, the cache starts over.
const CAPACITY: usize = 20_000;

/// A subscription as cached: `None` when the user is not a member (a reader of a public
/// channel may still post).
type SubEntry = (Option<Arc<Subscription>>, Instant);

#[derive(Default)]
struct Inner {
    rooms: HashMap<String, (Arc<Room>, Instant)>,
    /// Room id → user id → the user's subscription.
    subs: HashMap<String, HashMap<String, SubEntry>>,
    subs_len: usize,
    /// Counts invalidations, so a read that began before one is not stored after it.
    generation: u64,
}

#[derive(Default)]
pub(crate) struct SendCache {
    inner: Mutex<Inner>,
}

/// The room as the cache keeps it: without the counters the store moves on its own.
pub(crate) fn without_counters(room: Room) -> Room {
    Room {
        msgs: 0,
        users_count: 0,
        lm: None,
        last_message: None,
        seq: 0,
        ..room
    }
}

/// The room a message goes to and the sender's subscription, as a send checks them.
pub(crate) struct SendTarget {
    pub room: Arc<Room>,
    pub sub: Option<Arc<Subscription>>,
}

impl Core {
    /// The room `rid` if `actor` may read it, for sending: from the cache when it is fresh.
    /// An unknown room is `error-invalid-room`, as Rocket.Chat's `sendMessage` says.
    pub(crate) async fn send_target(&self, actor: &User, rid: &str) -> CoreResult<SendTarget> {
        let cache = &self.send_targets;
        let room = match cache.room(rid) {
            Some(room) => room,
            None => {
                let generation = cache.generation();
                let room = self
                    .store
                    .room_by_id(rid)
                    .await?
                    .ok_or_else(|| CoreError::bad("error-invalid-room", "Invalid room"))?;
                let room = Arc::new(without_counters(room));
                cache.remember_room(generation, room.clone());
                room
            }
        };
        let sub = match cache.subscription(rid, &actor.id) {
            Some(sub) => sub,
            None => {
                let generation = cache.generation();
                let sub = self.store.subscription(rid, &actor.id).await?.map(Arc::new);
                cache.remember_subscription(generation, rid, &actor.id, sub.clone());
                sub
            }
        };
        if !self.authz.can_read_room(actor, &room, sub.as_deref()) {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        Ok(SendTarget { room, sub })
    }
}

impl SendCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The moment to pass to `remember_*` after reading the store.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(crate) fn room(&self, rid: &str) -> Option<Arc<Room>> {
        self.lock()
            .rooms
            .get(rid)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(room, _)| room.clone())
    }

    /// `Some(None)`: known not to be a member; `None`: not cached.
    pub(crate) fn subscription(&self, rid: &str, uid: &str) -> Option<Option<Arc<Subscription>>> {
        self.lock()
            .subs
            .get(rid)
            .and_then(|users| users.get(uid))
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(sub, _)| sub.clone())
    }

    /// Keeps a room read from the store at `generation` (counters already cleared), unless
    /// something changed since.
    pub(crate) fn remember_room(&self, generation: u64, room: Arc<Room>) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.rooms.len() >= CAPACITY {
            inner.rooms.clear();
        }
        inner.rooms.insert(room.id.clone(), (room, Instant::now()));
    }

    /// Keeps a subscription (or its absence) read from the store at `generation`, unless
    /// something changed since.
    pub(crate) fn remember_subscription(
        &self,
        generation: u64,
        rid: &str,
        uid: &str,
        sub: Option<Arc<Subscription>>,
    ) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.subs_len >= CAPACITY {
            inner.subs.clear();
            inner.subs_len = 0;
        }
        let users = inner.subs.entry(rid.to_string()).or_default();
        if users
            .insert(uid.to_string(), (sub, Instant::now()))
            .is_none()
        {
            inner.subs_len += 1;
        }
    }

    /// Drops what `event` makes stale.
    pub(crate) fn apply(&self, event: &Event) {
        match event {
            Event::Room { rid, removed } => {
                let mut inner = self.lock();
                inner.generation += 1;
                inner.rooms.remove(rid);
                // A deleted room's subscriptions go with it, without events of their own.
                if *removed && let Some(users) = inner.subs.remove(rid) {
                    inner.subs_len -= users.len();
                }
            }
            Event::Subscription { user_id, rid, .. } => {
                let mut guard = self.lock();
                let inner = &mut *guard;
                inner.generation += 1;
                if let Some(users) = inner.subs.get_mut(rid) {
                    if users.remove(user_id).is_some() {
                        inner.subs_len -= 1;
                    }
                    if users.is_empty() {
                        inner.subs.remove(rid);
                    }
                }
            }
            // A deleted user's subscriptions are removed without subscription events; their
            // deletion ends all their sessions, which is announced.
            Event::SessionsEnded {
                user_id,
                token_hash: None,
            } => {
                let mut inner = self.lock();
                inner.generation += 1;
                let mut dropped = 0;
                inner.subs.retain(|_, users| {
                    dropped += usize::from(users.remove(user_id).is_some());
                    !users.is_empty()
                });
                inner.subs_len -= dropped;
            }
            _ => {}
        }
    }

    /// Forgets everything (after missed events).
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.rooms.clear();
        inner.subs.clear();
        inner.subs_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::{RoomType, UserRef};

    fn room(id: &str) -> Arc<Room> {
        Arc::new(without_counters(Room::new(
            id.into(),
            RoomType::Channel,
            Some(id.into()),
            None,
        )))
    }

    fn sub(rid: &str, uid: &str) -> Option<Arc<Subscription>> {
        let u = UserRef {
            id: uid.into(),
            username: uid.into(),
            name: None,
        };
        Some(Arc::new(Subscription::new(
            rid,
            RoomType::Channel,
            rid.into(),
            None,
            u,
            0,
        )))
    }

    #[test]
    fn room_and_subscription_events_drop_their_entries() {
        let cache = SendCache::default();
        let g = cache.generation();
        cache.remember_room(g, room("r"));
        cache.remember_room(g, room("s"));
        cache.remember_subscription(g, "r", "u", sub("r", "u"));
        cache.remember_subscription(g, "r", "v", None);
        cache.remember_subscription(g, "s", "u", sub("s", "u"));
        assert!(cache.room("r").is_some());
        assert!(matches!(cache.subscription("r", "u"), Some(Some(_))));
        assert!(matches!(cache.subscription("r", "v"), Some(None)));
        assert!(cache.subscription("r", "w").is_none());

        cache.apply(&Event::Subscription {
            user_id: "v".into(),
            rid: "r".into(),
            removed: false,
        });
        assert!(cache.subscription("r", "v").is_none(), "joined since");
        assert!(cache.subscription("r", "u").is_some());

        cache.apply(&Event::Room {
            rid: "r".into(),
            removed: false,
        });
        assert!(cache.room("r").is_none());
        assert!(
            cache.subscription("r", "u").is_some(),
            "a room update keeps members"
        );

        cache.apply(&Event::SessionsEnded {
            user_id: "u".into(),
            token_hash: None,
        });
        assert!(cache.subscription("r", "u").is_none());
        assert!(cache.subscription("s", "u").is_none());
        assert!(cache.room("s").is_some());

        let g = cache.generation();
        cache.remember_subscription(g, "s", "x", sub("s", "x"));
        cache.apply(&Event::Room {
            rid: "s".into(),
            removed: true,
        });
        assert!(cache.room("s").is_none());
        assert!(
            cache.subscription("s", "x").is_none(),
            "deleted with the room"
        );
        assert_eq!(cache.lock().subs_len, 0);
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_kept() {
        let cache = SendCache::default();
        let before = cache.generation();
        cache.apply(&Event::Room {
            rid: "r".into(),
            removed: false,
        });
        cache.remember_room(before, room("r"));
        cache.remember_subscription(before, "r", "u", sub("r", "u"));
        assert!(cache.room("r").is_none());
        assert!(cache.subscription("r", "u").is_none());
        cache.remember_room(cache.generation(), room("r"));
        assert!(cache.room("r").is_some());
        cache.clear();
        assert!(cache.room("r").is_none());
    }

    #[test]
    fn cached_rooms_carry_no_counters() {
        let mut r = Room::new("r".into(), RoomType::Channel, Some("r".into()), None);
        r.msgs = 5;
        r.seq = 5;
        r.users_count = 3;
        r.last_message = Some(serde_json::json!({"msg": "hi"}));
        r.lm = Some(apogee_domain::Timestamp::now());
        r.ro = true;
        let r = without_counters(r);
        assert_eq!((r.msgs, r.seq, r.users_count), (0, 0, 0));
        assert!(r.last_message.is_none() && r.lm.is_none());
        assert!(r.ro, "what a send checks stays");
    }
}
