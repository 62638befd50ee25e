//! This node's live DDP connections, indexed by the rooms they follow and the users they are
//! logged in as. One task reads core's event stream and hands each event only to the
//! connections it concerns, so an idle connection costs nothing per event elsewhere. What
//! several recipients need (the room, the members' subscriptions, a rendered frame) is read or
//! built once per event, by the first recipient that needs it.
//!
//! The hub also keeps each connection's presence (online, or away when its client says the
//! user is idle): a user is online while any connection is online, away while all are away, and
//! offline when the last one closes. It holds the node's DDP rate-limit counters too.

use apogee_core::Core;
use apogee_core::domain::{Room, Subscription};
use apogee_core::events::{Audience, Event};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, broadcast, mpsc};

use crate::ddp::ejson::to_ejson;
use crate::ddp::limits::RateLimits;

/// Events queued for one connection before it counts as a slow consumer and is dropped.
const DELIVERY_QUEUE: usize = 256;

pub type ConnId = u64;

/// One event on its way to the connections it concerns, with what they share.
pub struct Delivery {
    pub event: Arc<Event>,
    /// Logged-in users of this node who follow the event's room (whose subscriptions to read).
    members: Vec<String>,
    room: OnceCell<Option<Room>>,
    subs: OnceCell<HashMap<String, Subscription>>,
    rendered: Mutex<HashMap<String, Arc<str>>>,
}

impl Delivery {
    fn new(event: Arc<Event>, members: Vec<String>) -> Self {
        Delivery {
            event,
            members,
            room: OnceCell::new(),
            subs: OnceCell::new(),
            rendered: Mutex::new(HashMap::new()),
        }
    }

    /// The room as it is now, read once for all recipients.
    pub async fn room(&self, core: &Core, rid: &str) -> Option<&Room> {
        self.room
            .get_or_init(|| async { core.store().room_by_id(rid).await.ok().flatten() })
            .await
            .as_ref()
    }

    /// A member's subscription as it is now; the members' subscriptions are read in one query.
    pub async fn subscription(&self, core: &Core, rid: &str, uid: &str) -> Option<&Subscription> {
        self.subs
            .get_or_init(|| async {
                let subs = core
                    .store()
                    .subscriptions_in_room(rid, &self.members)
                    .await
                    .unwrap_or_default();
                subs.into_iter().map(|s| (s.u.id.clone(), s)).collect()
            })
            .await
            .get(uid)
    }

    /// A DDP frame several recipients send alike, as EJSON text, built once per `key`.
    pub fn render(&self, key: &str, frame: impl FnOnce() -> Value) -> Arc<str> {
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(text) = rendered.get(key) {
            return text.clone();
        }
        let text: Arc<str> = to_ejson(frame()).to_string().into();
        rendered.insert(key.to_string(), text.clone());
        text
    }
}

struct Entry {
    tx: mpsc::Sender<Arc<Delivery>>,
    user: Option<String>,
    away: bool,
    rooms: HashSet<String>,
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnId, Entry>,
    rooms: HashMap<String, HashSet<ConnId>>,
    users: HashMap<String, HashSet<ConnId>>,
}

impl State {
    /// The user's presence from this node's connections.
    fn status(&self, uid: &str) -> &'static str {
        match self.users.get(uid) {
            None => "offline",
            Some(ids)
                if ids
                    .iter()
                    .any(|id| self.conns.get(id).is_some_and(|c| !c.away)) =>
            {
                "online"
            }
            Some(_) => "away",
        }
    }

    /// Runs `change` and reports the user's presence if it changed.
    fn track(&mut self, uid: &str, change: impl FnOnce(&mut Self)) -> Option<StatusChange> {
        let before = self.status(uid);
        change(self);
        let status = self.status(uid);
        (status != before).then(|| StatusChange {
            user_id: uid.to_string(),
            status,
        })
    }

    fn remove(&mut self, id: ConnId) -> Option<StatusChange> {
        let uid = self.conns.get(&id)?.user.clone();
        let remove = |state: &mut Self| {
            if let Some(entry) = state.conns.remove(&id) {
                for rid in &entry.rooms {
                    state.unindex_room(rid, id);
                }
                if let Some(uid) = &entry.user {
                    state.unindex_user(uid, id);
                }
            }
        };
        match uid {
            Some(uid) => self.track(&uid, remove),
            None => {
                remove(self);
                None
            }
        }
    }

    fn unindex_room(&mut self, rid: &str, id: ConnId) {
        if let Some(set) = self.rooms.get_mut(rid) {
            set.remove(&id);
            if set.is_empty() {
                self.rooms.remove(rid);
            }
        }
    }

    fn unindex_user(&mut self, uid: &str, id: ConnId) {
        if let Some(set) = self.users.get_mut(uid) {
            set.remove(&id);
            if set.is_empty() {
                self.users.remove(uid);
            }
        }
    }
}

/// A user's presence on this node changed; core is to be told.
#[derive(Debug, PartialEq)]
pub struct StatusChange {
    pub user_id: String,
    /// `online`, `away` or `offline`.
    pub status: &'static str,
}

pub struct Hub {
    state: Mutex<State>,
    next_id: AtomicU64,
    pub limits: RateLimits,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            state: Mutex::default(),
            next_id: AtomicU64::new(1),
            limits: RateLimits::default(),
        }
    }
}

impl Hub {
    /// A hub fed by `core`'s events from now on.
    pub fn start(core: &Core) -> Arc<Hub> {
        let hub = Arc::new(Hub::default());
        let events = core.events();
        tokio::spawn(Arc::clone(&hub).run(events));
        hub
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(self: Arc<Self>, mut events: broadcast::Receiver<Arc<Event>>) {
        loop {
            match events.recv().await {
                Ok(event) => self.dispatch(event),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "realtime hub fell behind; events were dropped");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// A new connection: its id and the queue its deliveries arrive on.
    pub fn register(&self) -> (ConnId, mpsc::Receiver<Arc<Delivery>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(DELIVERY_QUEUE);
        let entry = Entry {
            tx,
            user: None,
            away: false,
            rooms: HashSet::new(),
        };
        self.state().conns.insert(id, entry);
        (id, rx)
    }

    /// The connection is gone.
    pub fn unregister(&self, id: ConnId) -> Option<StatusChange> {
        self.limits.forget_connection(id);
        self.state().remove(id)
    }

    /// The connection is now logged in as `user` (or no one), and online.
    pub fn login(&self, id: ConnId, user: Option<&str>) -> Vec<StatusChange> {
        let mut state = self.state();
        let Some(entry) = state.conns.get_mut(&id) else {
            return Vec::new();
        };
        let old = std::mem::replace(&mut entry.user, user.map(str::to_string));
        entry.away = false;
        let mut changes = Vec::new();
        if let Some(old) = old {
            changes.extend(state.track(&old, |s| s.unindex_user(&old, id)));
        }
        if let Some(uid) = user {
            changes.extend(state.track(uid, |s| {
                s.users.entry(uid.to_string()).or_default().insert(id);
            }));
        }
        changes
    }

    /// The connection's client says its user is away (idle) or back online.
    pub fn set_away(&self, id: ConnId, away: bool) -> Option<StatusChange> {
        let mut state = self.state();
        let uid = state.conns.get(&id)?.user.clone()?;
        state.track(&uid, |s| {
            if let Some(entry) = s.conns.get_mut(&id) {
                entry.away = away;
            }
        })
    }

    /// The rooms whose events the connection wants (its memberships and room streams).
    pub fn follow(&self, id: ConnId, rooms: HashSet<String>) {
        let mut state = self.state();
        let Some(entry) = state.conns.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut entry.rooms, rooms.clone());
        for rid in old.difference(&rooms) {
            state.unindex_room(rid, id);
        }
        for rid in rooms.difference(&old) {
            state.rooms.entry(rid.clone()).or_default().insert(id);
        }
    }

    /// Connections on this node logged in as `uid`.
    pub fn connections_of(&self, uid: &str) -> usize {
        self.state().users.get(uid).map_or(0, HashSet::len)
    }

    /// Hands `event` to the connections it concerns. A connection whose queue is full is
    /// dropped from the hub; it sees its queue end and closes with 1013.
    fn dispatch(&self, event: Arc<Event>) {
        let mut state = self.state();
        let targets: Vec<ConnId> = match event.audience() {
            Audience::Room(rid) => state.rooms.get(rid).map(|s| s.iter().copied().collect()),
            Audience::User(uid) => state.users.get(uid).map(|s| s.iter().copied().collect()),
            Audience::Everyone => Some(state.conns.keys().copied().collect()),
            Audience::Nodes => None,
        }
        .unwrap_or_default();
        if targets.is_empty() {
            return;
        }
        // Only a new message makes recipients read their subscriptions (unread counts).
        let members = match &*event {
            Event::Message { created: true, .. } => {
                let users: HashSet<&str> = targets
                    .iter()
                    .filter_map(|id| state.conns.get(id)?.user.as_deref())
                    .collect();
                users.into_iter().map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        let delivery = Arc::new(Delivery::new(event, members));
        let mut slow = Vec::new();
        for id in targets {
            if let Some(entry) = state.conns.get(&id)
                && entry.tx.try_send(delivery.clone()).is_err()
            {
                slow.push(id);
            }
        }
        for id in slow {
            // Its user stays counted online until the connection itself unregisters.
            if let Some(entry) = state.conns.get_mut(&id) {
                let (tx, _) = mpsc::channel(1);
                entry.tx = tx;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room_event(rid: &str) -> Arc<Event> {
        Arc::new(Event::Room {
            rid: rid.into(),
            removed: false,
        })
    }

    fn hub() -> Hub {
        Hub::default()
    }

    fn change(uid: &str, status: &'static str) -> Option<StatusChange> {
        Some(StatusChange {
            user_id: uid.into(),
            status,
        })
    }

    #[test]
    fn events_reach_only_followers() {
        let hub = hub();
        let (a, mut rx_a) = hub.register();
        let (b, mut rx_b) = hub.register();
        hub.follow(a, HashSet::from(["r1".to_string()]));
        hub.follow(b, HashSet::from(["r2".to_string()]));
        hub.dispatch(room_event("r1"));
        assert!(rx_a.try_recv().is_ok());
        assert!(rx_b.try_recv().is_err());
        hub.follow(a, HashSet::new());
        hub.dispatch(room_event("r1"));
        assert!(rx_a.try_recv().is_err());
        assert!(
            !hub.state().rooms.contains_key("r1"),
            "no empty index entries"
        );
    }

    #[test]
    fn presence_is_the_best_of_the_connections() {
        let hub = hub();
        let (a, _ra) = hub.register();
        let (b, _rb) = hub.register();
        assert_eq!(
            hub.login(a, Some("u")),
            vec![change("u", "online").unwrap()]
        );
        assert_eq!(hub.login(b, Some("u")), vec![]);
        assert_eq!(hub.connections_of("u"), 2);
        assert_eq!(hub.set_away(a, true), None, "b is still online");
        assert_eq!(hub.set_away(b, true), change("u", "away"));
        assert_eq!(hub.set_away(a, false), change("u", "online"));
        assert_eq!(hub.unregister(a), change("u", "away"));
        assert_eq!(hub.unregister(b), change("u", "offline"));
        assert_eq!(hub.unregister(b), None, "unregistering twice is harmless");
        let (c, _rc) = hub.register();
        hub.login(c, Some("v"));
        assert_eq!(
            hub.login(c, Some("w")),
            vec![
                change("v", "offline").unwrap(),
                change("w", "online").unwrap()
            ]
        );
    }

    #[test]
    fn a_full_queue_ends_the_connection_feed() {
        let hub = hub();
        let (a, mut rx) = hub.register();
        hub.follow(a, HashSet::from(["r".to_string()]));
        for _ in 0..=DELIVERY_QUEUE {
            hub.dispatch(room_event("r"));
        }
        let mut got = 0;
        while rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, DELIVERY_QUEUE);
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
