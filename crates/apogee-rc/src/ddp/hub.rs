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
use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    members: Vec<Arc<str>>,
    room: OnceCell<Option<Room>>,
    subs: OnceCell<HashMap<String, Subscription>>,
    /// The message's `stream-room-messages` frame: what nearly every recipient of a message
    /// sends, so it skips the keyed map.
    room_messages: OnceLock<Utf8Bytes>,
    rendered: Mutex<HashMap<String, Utf8Bytes>>,
}

impl Delivery {
    fn new(event: Arc<Event>, members: Vec<Arc<str>>) -> Self {
        Delivery {
            event,
            members,
            room: OnceCell::new(),
            subs: OnceCell::new(),
            room_messages: OnceLock::new(),
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
                let members: Vec<String> = self.members.iter().map(|m| m.to_string()).collect();
                let subs = core
                    .store()
                    .subscriptions_in_room(rid, &members)
                    .await
                    .unwrap_or_default();
                subs.into_iter().map(|s| (s.u.id.clone(), s)).collect()
            })
            .await
            .get(uid)
    }

    /// A DDP frame several recipients send alike, as EJSON text, built once per `key`.
    pub fn render(&self, key: &str, frame: impl FnOnce() -> Value) -> Utf8Bytes {
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(text) = rendered.get(key) {
            return text.clone();
        }
        let text = Utf8Bytes::from(to_ejson(frame()).to_string());
        rendered.insert(key.to_string(), text.clone());
        text
    }

    /// The message event's `stream-room-messages` frame, built once.
    pub fn render_room_messages(&self, frame: impl FnOnce() -> Value) -> Utf8Bytes {
        self.room_messages
            .get_or_init(|| Utf8Bytes::from(to_ejson(frame()).to_string()))
            .clone()
    }
}

/// What a connection wants to hear about besides its own user.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Interest {
    /// Rooms it is a member of or reads streams of.
    pub rooms: HashSet<String>,
    /// Users whose profile and presence it watches (`stream-user-presence`).
    pub users: HashSet<String>,
    /// Every user's profile and presence (`user-status`).
    pub all_users: bool,
}

struct Entry {
    tx: mpsc::Sender<Arc<Delivery>>,
    user: Option<Arc<str>>,
    away: bool,
    interest: Interest,
}

type Index = HashMap<String, HashSet<ConnId>>;

fn index(map: &mut Index, key: &str, id: ConnId) {
    map.entry(key.to_string()).or_default().insert(id);
}

fn unindex(map: &mut Index, key: &str, id: ConnId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnId, Entry>,
    /// Followers of each room.
    rooms: Index,
    /// Each user's own connections.
    users: Index,
    /// Watchers of each user's presence.
    watchers: Index,
    /// Connections that hear every user's changes.
    all_users: HashSet<ConnId>,
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
                state.reindex(id, &entry.interest, &Interest::default());
                if let Some(uid) = &entry.user {
                    unindex(&mut state.users, uid, id);
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

    /// Moves a connection's index entries from `old` to `new` interest.
    fn reindex(&mut self, id: ConnId, old: &Interest, new: &Interest) {
        for rid in old.rooms.difference(&new.rooms) {
            unindex(&mut self.rooms, rid, id);
        }
        for rid in new.rooms.difference(&old.rooms) {
            index(&mut self.rooms, rid, id);
        }
        for uid in old.users.difference(&new.users) {
            unindex(&mut self.watchers, uid, id);
        }
        for uid in new.users.difference(&old.users) {
            index(&mut self.watchers, uid, id);
        }
        if new.all_users {
            self.all_users.insert(id);
        } else {
            self.all_users.remove(&id);
        }
    }

    /// The connections an event is for.
    fn targets(&self, audience: Audience) -> Vec<ConnId> {
        fn of<'a>(map: &'a Index, key: &str) -> impl Iterator<Item = ConnId> + 'a {
            map.get(key).into_iter().flatten().copied()
        }
        let mut targets: Vec<ConnId> = match audience {
            Audience::Room(rid) => of(&self.rooms, rid).collect(),
            Audience::User(uid) => of(&self.users, uid).collect(),
            Audience::Profile(uid) => of(&self.users, uid)
                .chain(of(&self.watchers, uid))
                .chain(self.all_users.iter().copied())
                .collect(),
            Audience::Everyone => self.conns.keys().copied().collect(),
            Audience::Nodes => Vec::new(),
        };
        targets.sort_unstable();
        targets.dedup();
        targets
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
            interest: Interest::default(),
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
        let old = std::mem::replace(&mut entry.user, user.map(Arc::from));
        entry.away = false;
        let mut changes = Vec::new();
        if let Some(old) = old {
            changes.extend(state.track(&old, |s| unindex(&mut s.users, &old, id)));
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

    /// What the connection now wants to hear about.
    pub fn follow(&self, id: ConnId, interest: Interest) {
        let mut state = self.state();
        let Some(entry) = state.conns.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut entry.interest, interest.clone());
        state.reindex(id, &old, &interest);
    }

    /// Connections on this node logged in as `uid`.
    pub fn connections_of(&self, uid: &str) -> usize {
        self.state().users.get(uid).map_or(0, HashSet::len)
    }

    /// Hands `event` to the connections it concerns. A connection whose queue is full is
    /// dropped from the hub; it sees its queue end and closes with 1013.
    fn dispatch(&self, event: Arc<Event>) {
        let mut state = self.state();
        let targets = state.targets(event.audience());
        if targets.is_empty() {
            return;
        }
        // Only a new message makes recipients read their subscriptions (unread counts).
        let members = match &*event {
            Event::Message { created: true, .. } => {
                let mut users: Vec<Arc<str>> = targets
                    .iter()
                    .filter_map(|id| state.conns.get(id)?.user.clone())
                    .collect();
                users.sort_unstable();
                users.dedup();
                users
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

    fn rooms(rids: &[&str]) -> Interest {
        Interest {
            rooms: rids.iter().map(|r| r.to_string()).collect(),
            ..Interest::default()
        }
    }

    fn user_event(uid: &str) -> Arc<Event> {
        let user = apogee_core::domain::User::new(uid.into(), uid.into(), None, "user", vec![]);
        Arc::new(Event::User {
            user: Box::new(user),
        })
    }

    #[test]
    fn profile_changes_reach_the_user_and_their_followers_only() {
        let hub = hub();
        let (own, mut rx_own) = hub.register();
        let (watcher, mut rx_watcher) = hub.register();
        let (listener, mut rx_listener) = hub.register();
        let (bystander, mut rx_bystander) = hub.register();
        hub.login(own, Some("u"));
        hub.login(bystander, Some("b"));
        hub.follow(
            watcher,
            Interest {
                users: HashSet::from(["u".to_string()]),
                ..Interest::default()
            },
        );
        hub.follow(
            listener,
            Interest {
                all_users: true,
                ..Interest::default()
            },
        );
        hub.dispatch(user_event("u"));
        assert!(rx_own.try_recv().is_ok());
        assert!(rx_watcher.try_recv().is_ok());
        assert!(rx_listener.try_recv().is_ok());
        assert!(rx_bystander.try_recv().is_err());
        hub.unregister(listener);
        assert!(hub.state().all_users.is_empty());
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
        hub.follow(a, rooms(&["r1"]));
        hub.follow(b, rooms(&["r2"]));
        hub.dispatch(room_event("r1"));
        assert!(rx_a.try_recv().is_ok());
        assert!(rx_b.try_recv().is_err());
        hub.follow(a, Interest::default());
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
        hub.follow(a, rooms(&["r"]));
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
