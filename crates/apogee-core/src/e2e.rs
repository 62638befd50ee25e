//! End-to-end encryption: the key relay Rocket.Chat clients expect (`e2e.*`). The server only
//! stores and hands out opaque, client-encrypted key material; it never sees a room key or a
//! private key in clear. Where keys live, as in Rocket.Chat: the user's `e2e.public_key` /
//! `e2e.private_key`, the subscription's `E2EKey`, `E2ESuggestedKey`, `oldRoomKeys` and
//! `suggestedOldRoomKeys`, the room's `e2eKeyId` and `usersWaitingForE2EKeys` queue.
//!
//! Two checks are stricter than Rocket.Chat's (see `docs/E2EE.md`): waiting users are listed,
//! and keys suggested, only in rooms the caller is a member of, and keys are suggested only to
//! members who hold no key yet. Key material is checked for shape (JWK, base64, RSA size) before
//! anything is stored. Keys are never logged.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::events::Event;
use crate::rooms::RoomRef;
use crate::store::{Change, Page};
use apogee_domain::{Room, RoomType, Subscription, Timestamp, User};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Base64 length of an RSA-2048 OAEP ciphertext: the tail of every `E2EKey` string.
const RSA_B64_LEN: usize = 344;
/// Longest accepted key id (`kid`): UUIDs are 36 characters, legacy ids 12.
const MAX_KID: usize = 64;
/// Rocket.Chat keeps this many previous room keys per subscription.
const MAX_OLD_KEYS: usize = 10;
/// Rocket.Chat lists and queues at most this many users per room.
const MAX_WAITING: usize = 50;
/// Longest stored key string (a wrapped RSA private key is about 2.5 KiB).
const MAX_KEY_LEN: usize = 16 * 1024;

/// A key suggested for one user (`e2e.provideUsersSuggestedGroupKeys`).
#[derive(Debug, Clone)]
pub struct SuggestedKey {
    pub user_id: String,
    pub key: String,
    /// `[{e2eKeyId, ts, E2EKey}]` as sent; `None` when absent.
    pub old_keys: Option<Vec<Value>>,
}

/// Whose keys `users.resetE2EKey` resets.
#[derive(Debug, Clone)]
pub enum ResetTarget {
    Me,
    Id(String),
    Username(String),
}

fn invalid(message: &str) -> CoreError {
    CoreError::bad("error-invalid-params", message)
}

/// Rooms whose key is being reset on this node (Rocket.Chat's in-process `LockMap`).
fn reset_locks() -> &'static Mutex<HashSet<String>> {
    static LOCKS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

struct ResetLock(String);

impl ResetLock {
    fn take(rid: &str) -> Option<Self> {
        let mut locks = reset_locks().lock().unwrap_or_else(|e| e.into_inner());
        locks
            .insert(rid.to_string())
            .then(|| ResetLock(rid.to_string()))
    }
}

impl Drop for ResetLock {
    fn drop(&mut self) {
        let mut locks = reset_locks().lock().unwrap_or_else(|e| e.into_inner());
        locks.remove(&self.0);
    }
}

fn b64url_len(s: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(s).ok().map(|b| b.len())
}

fn b64_ok(s: &str) -> bool {
    !s.is_empty() && STANDARD.decode(s).is_ok()
}

/// A public key as clients store it: the JSON string of an RSA-OAEP-256 public JWK of 2048 bits.
pub fn check_public_key(s: &str) -> CoreResult<()> {
    let bad = || invalid("Invalid public key");
    if s.len() > MAX_KEY_LEN {
        return Err(bad());
    }
    let jwk: Map<String, Value> = serde_json::from_str(s).map_err(|_| bad())?;
    let text = |k: &str| jwk.get(k).and_then(Value::as_str);
    if text("kty") != Some("RSA") || jwk.contains_key("d") {
        return Err(bad());
    }
    if text("alg").is_some_and(|a| a != "RSA-OAEP-256") {
        return Err(bad());
    }
    let n = text("n").and_then(b64url_len).ok_or_else(bad)?;
    let e = text("e").and_then(b64url_len).ok_or_else(bad)?;
    // 2048-bit modulus (a leading zero byte is tolerated), a small exponent.
    if !(n == 256 || n == 257) || e == 0 || e > 8 {
        return Err(bad());
    }
    Ok(())
}

/// A wrapped private key: `{"$binary": b64}` (legacy) or `{iv, ciphertext, salt, iterations}`.
pub fn check_private_key(s: &str) -> CoreResult<()> {
    let bad = || invalid("Invalid private key");
    if s.len() > MAX_KEY_LEN {
        return Err(bad());
    }
    let v: Map<String, Value> = serde_json::from_str(s).map_err(|_| bad())?;
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    if let Some(bin) = text("$binary") {
        // IV (16) and at least one cipher block.
        let ok = STANDARD.decode(bin).is_ok_and(|b| b.len() >= 32);
        return if ok { Ok(()) } else { Err(bad()) };
    }
    let iv = text("iv").and_then(|s| STANDARD.decode(s).ok());
    let ct = text("ciphertext").and_then(|s| STANDARD.decode(s).ok());
    let salt = text("salt").filter(|s| !s.is_empty() && s.len() <= 256);
    let iterations = v.get("iterations").and_then(Value::as_u64);
    match (iv, ct, salt, iterations) {
        (Some(iv), Some(ct), Some(_), Some(it))
            if (12..=16).contains(&iv.len()) && ct.len() > 16 && (1..=10_000_000).contains(&it) =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// An `E2EKey` string: a key id followed by the base64 of one RSA-2048 ciphertext.
pub fn check_room_key(s: &str) -> CoreResult<()> {
    let bad = || invalid("Invalid room key");
    if !s.is_ascii() || s.len() <= RSA_B64_LEN || s.len() > RSA_B64_LEN + MAX_KID {
        return Err(bad());
    }
    let (kid, data) = s.split_at(s.len() - RSA_B64_LEN);
    let decoded = STANDARD.decode(data).map_err(|_| bad())?;
    if decoded.len() != 256 || kid.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(())
}

fn check_kid(kid: &str) -> CoreResult<()> {
    if kid.is_empty()
        || kid.len() > MAX_KID
        || kid.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("Invalid key id"));
    }
    Ok(())
}

fn parse_ts(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => n.as_i64().map(Timestamp::from_millis),
        Value::String(s) => Timestamp::parse(s),
        Value::Object(o) => o
            .get("$date")
            .and_then(Value::as_i64)
            .map(Timestamp::from_millis),
        _ => None,
    }
}

/// `oldKeys` of a suggestion: at most [`MAX_OLD_KEYS`] `{e2eKeyId, ts, E2EKey}`, dates stored as dates.
fn normalize_old_keys(keys: &[Value]) -> CoreResult<Vec<Value>> {
    if keys.len() > MAX_OLD_KEYS {
        return Err(invalid("Too many old keys"));
    }
    keys.iter()
        .map(|k| {
            let kid = k.get("e2eKeyId").and_then(Value::as_str);
            let key = k.get("E2EKey").and_then(Value::as_str);
            let ts = k.get("ts").and_then(parse_ts);
            match (kid, key, ts) {
                (Some(kid), Some(key), Some(ts)) => {
                    check_kid(kid)?;
                    check_room_key(key)?;
                    Ok(json!({"e2eKeyId": kid, "ts": ts, "E2EKey": key}))
                }
                _ => Err(invalid("Invalid old keys")),
            }
        })
        .collect()
}

/// Checks a `t: 'e2e'` message before it is stored as received: a `content` envelope (`rc.v1` or
/// `rc.v2`) with base64 ciphertext, or the oldest shape (ciphertext in `msg`, no `content`).
/// Nothing in it is decrypted or interpreted.
pub fn check_encrypted_message(msg: &str, content: Option<&Value>) -> CoreResult<()> {
    let bad = || invalid("Invalid encrypted message");
    let v1_payload = |s: &str| {
        s.len() > 12 && s.is_char_boundary(12) && b64_ok(&s[12..])
            || s.len() > 36 && s.is_char_boundary(36) && b64_ok(&s[36..])
    };
    let Some(content) = content else {
        return if v1_payload(msg) { Ok(()) } else { Err(bad()) };
    };
    let text = |k: &str| content.get(k).and_then(Value::as_str);
    let ciphertext = text("ciphertext").ok_or_else(bad)?;
    match text("algorithm") {
        Some("rc.v2.aes-sha2") => {
            let kid = text("kid").ok_or_else(bad)?;
            check_kid(kid).map_err(|_| bad())?;
            let iv = text("iv")
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(bad)?;
            if !(12..=16).contains(&iv.len()) || !b64_ok(ciphertext) {
                return Err(bad());
            }
        }
        Some("rc.v1.aes-sha2") if v1_payload(ciphertext) => {}
        _ => return Err(bad()),
    }
    Ok(())
}

/// Most names one `e2eMentions` list may carry.
const MAX_E2E_MENTIONS: usize = 100;

/// `e2eMentions` as the client sends it beside the ciphertext: `{e2eUserMentions?: ['@name'…],
/// e2eChannelMentions?: ['#name'…]}`. Mentions of an encrypted message come only from here, so
/// the shape is checked before anything is stored; an absent or null value is no mentions.
pub fn check_e2e_mentions(value: Option<&Value>) -> CoreResult<()> {
    let bad = || invalid("Invalid e2eMentions");
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let object = value.as_object().ok_or_else(bad)?;
    for (key, list) in object {
        let prefix = match key.as_str() {
            "e2eUserMentions" => '@',
            "e2eChannelMentions" => '#',
            _ => return Err(bad()),
        };
        let names = list.as_array().ok_or_else(bad)?;
        if names.len() > MAX_E2E_MENTIONS {
            return Err(bad());
        }
        for name in names {
            let name = name.as_str().ok_or_else(bad)?;
            let rest = name.strip_prefix(prefix).ok_or_else(bad)?;
            if rest.is_empty() || rest.chars().count() > 127 || rest.contains(char::is_whitespace) {
                return Err(bad());
            }
        }
    }
    Ok(())
}

fn has_key(sub: &Subscription, field: &str) -> bool {
    sub.extra
        .get(field)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

fn room_key_id(room: &Room) -> Option<&str> {
    room.extra
        .get("e2eKeyId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn user_keys(user: &User) -> Option<(&str, &str)> {
    let e2e = user.extra.get("e2e")?;
    let public = e2e.get("public_key").and_then(Value::as_str)?;
    let private = e2e.get("private_key").and_then(Value::as_str)?;
    Some((public, private))
}

fn public_key(user: &User) -> Option<&str> {
    user.extra
        .get("e2e")?
        .get("public_key")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn queue(room: &Room) -> Vec<Value> {
    room.extra
        .get("usersWaitingForE2EKeys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn queued_ids(room: &Room) -> Vec<String> {
    queue(room)
        .iter()
        .filter_map(|w| w.get("userId").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn set_queue(room: &mut Room, q: Vec<Value>) {
    if q.is_empty() {
        room.extra.remove("usersWaitingForE2EKeys");
    } else {
        room.extra
            .insert("usersWaitingForE2EKeys".into(), Value::Array(q));
    }
    room.updated_at = Timestamp::now();
}

/// Adds users to the room's queue (once each); true if the room changed.
fn enqueue(room: &mut Room, user_ids: &[&str]) -> bool {
    let mut q = queue(room);
    let present = queued_ids(room);
    let mut changed = false;
    for uid in user_ids {
        if !present.iter().any(|p| p == uid) {
            q.push(json!({"userId": uid, "ts": Timestamp::now()}));
            changed = true;
        }
    }
    if changed {
        set_queue(room, q);
    }
    changed
}

/// Removes users from the room's queue; true if the room changed.
fn dequeue(room: &mut Room, user_ids: &[&str]) -> bool {
    let q = queue(room);
    let kept: Vec<Value> = q
        .iter()
        .filter(|w| {
            !w.get("userId")
                .and_then(Value::as_str)
                .is_some_and(|u| user_ids.contains(&u))
        })
        .cloned()
        .collect();
    if kept.len() == q.len() {
        return false;
    }
    set_queue(room, kept);
    true
}

/// Queues one user in the room's `usersWaitingForE2EKeys`; true if the room changed.
pub(crate) fn enqueue_waiting(room: &mut Room, user_id: &str) -> bool {
    enqueue(room, &[user_id])
}

/// Takes one user off the room's queue; true if the room changed.
pub(crate) fn dequeue_waiting(room: &mut Room, user_id: &str) -> bool {
    dequeue(room, &[user_id])
}

fn touch(sub: &mut Subscription) {
    sub.updated_at = Timestamp::now();
}

impl Core {
    async fn fresh_user(&self, actor: &User) -> CoreResult<User> {
        self.store
            .user_by_id(&actor.id)
            .await?
            .ok_or_else(CoreError::invalid_user)
    }

    /// A room the actor may read (`canAccessRoom`), else `error-invalid-room`.
    async fn e2e_room(&self, actor: &User, rid: &str) -> CoreResult<crate::rooms::RoomView> {
        self.readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await
            .map_err(|e| {
                if e.kind == crate::error::ErrorKind::Internal {
                    e
                } else {
                    CoreError::bad("error-invalid-room", "Invalid room")
                }
            })
    }

    /// `e2e.fetchMyKeys`: `{public_key, private_key}`, or `{}` without keys.
    pub async fn e2e_fetch_my_keys(&self, actor: &User) -> CoreResult<Value> {
        let user = self.fresh_user(actor).await?;
        Ok(match user_keys(&user) {
            Some((public, private)) if !public.is_empty() => {
                json!({"public_key": public, "private_key": private})
            }
            _ => json!({}),
        })
    }

    /// `e2e.setUserPublicAndPrivateKeys`: stores the keypair (replacing one only with `force`) and
    /// queues the user in their encrypted rooms where they hold no room key.
    pub async fn e2e_set_user_keys(
        &self,
        actor: &User,
        public_key: &str,
        private_key: &str,
        force: bool,
    ) -> CoreResult<()> {
        check_public_key(public_key)?;
        check_private_key(private_key)?;
        let _guard = self.lock_user(&actor.id).await;
        let mut user = self.fresh_user(actor).await?;
        if !force && user_keys(&user).is_some() {
            return Err(CoreError::bad("error-keys-already-set", "Keys already set"));
        }
        user.extra.insert(
            "e2e".into(),
            json!({"public_key": public_key, "private_key": private_key}),
        );
        user.updated_at = Timestamp::now();
        let mut changes = vec![Change::UpdateUser(user)];
        changes.extend(self.queue_in_keyless_rooms(&actor.id).await?);
        self.commit(changes).await
    }

    /// Room updates queueing `user_id` in every encrypted room they are in without a room key.
    async fn queue_in_keyless_rooms(&self, user_id: &str) -> CoreResult<Vec<Change>> {
        let subs = self.store.subscriptions_of_user(user_id).await?;
        let rids: Vec<String> = subs
            .iter()
            .filter(|s| !has_key(s, "E2EKey"))
            .map(|s| s.rid.clone())
            .collect();
        let mut changes = Vec::new();
        for mut room in self.store.rooms_by_ids(&rids).await? {
            if room.is_encrypted() && enqueue(&mut room, &[user_id]) {
                changes.push(Change::UpdateRoom(room));
            }
        }
        Ok(changes)
    }

    /// `e2e.getUsersOfRoomWithoutKey`: members without the room key who have a public key.
    pub async fn e2e_users_without_key(&self, actor: &User, rid: &str) -> CoreResult<Value> {
        let view = self.e2e_room(actor, rid).await?;
        let limit = self.settings.int("API_User_Limit").max(MAX_WAITING as i64);
        let subs = self
            .store
            .subscriptions_without_e2e_key(&view.room.id, limit)
            .await?;
        let ids: Vec<String> = subs.iter().map(|s| s.u.id.clone()).collect();
        let users: Vec<Value> = self
            .store
            .users_by_ids(&ids)
            .await?
            .iter()
            .filter(|u| u.active)
            .filter_map(|u| public_key(u).map(|k| json!({"_id": u.id, "e2e": {"public_key": k}})))
            .collect();
        Ok(json!({ "users": users }))
    }

    /// `e2e.setRoomKeyID`: sets the room's key id once.
    pub async fn e2e_set_room_key_id(
        &self,
        actor: &User,
        rid: &str,
        key_id: &str,
    ) -> CoreResult<()> {
        check_kid(key_id)?;
        let mut room = self.e2e_room(actor, rid).await?.room;
        if room_key_id(&room).is_some() {
            return Err(CoreError::bad(
                "error-room-e2e-key-already-exists",
                "Room E2E key already exists",
            ));
        }
        room.extra.insert("e2eKeyId".into(), json!(key_id));
        room.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateRoom(room)]).await
    }

    /// `e2e.updateGroupKey`: the caller's own `E2EKey`, or a suggested key for another member.
    /// A caller without a subscription changes nothing, as in Rocket.Chat.
    pub async fn e2e_update_group_key(
        &self,
        actor: &User,
        rid: &str,
        uid: &str,
        key: &str,
    ) -> CoreResult<()> {
        check_room_key(key)?;
        let Some(mut mine) = self.store.subscription(rid, &actor.id).await? else {
            return Ok(());
        };
        if uid == actor.id {
            mine.extra.insert("E2EKey".into(), json!(key));
            touch(&mut mine);
            let mut changes = vec![Change::UpdateSubscription(mine)];
            if let Some(mut room) = self.store.room_by_id(rid).await?
                && dequeue(&mut room, &[uid])
            {
                changes.push(Change::UpdateRoom(room));
            }
            return self.commit(changes).await;
        }
        match self.store.subscription(rid, uid).await? {
            // Only to members still without the room key (Rocket.Chat overwrites anyone's).
            Some(mut theirs) if !has_key(&theirs, "E2EKey") => {
                theirs.extra.insert("E2ESuggestedKey".into(), json!(key));
                touch(&mut theirs);
                self.commit(vec![Change::UpdateSubscription(theirs)]).await
            }
            _ => Ok(()),
        }
    }

    async fn own_subscription(&self, actor: &User, rid: &str) -> CoreResult<Subscription> {
        self.store
            .subscription(rid, &actor.id)
            .await?
            .ok_or_else(|| CoreError::bad("error-subscription-not-found", "Subscription not found"))
    }

    /// `e2e.acceptSuggestedGroupKey`: the suggested key becomes the caller's room key.
    pub async fn e2e_accept_suggested_key(&self, actor: &User, rid: &str) -> CoreResult<()> {
        let mut sub = self.own_subscription(actor, rid).await?;
        let Some(key) = sub
            .extra
            .remove("E2ESuggestedKey")
            .filter(|k| k.is_string())
        else {
            return Err(CoreError::bad(
                "error-no-suggested-key-available",
                "No suggested key available",
            ));
        };
        sub.extra.insert("E2EKey".into(), key);
        let old = sub.extra.remove("suggestedOldRoomKeys");
        if let Some(old) = old.filter(|_| !sub.extra.contains_key("oldRoomKeys")) {
            sub.extra.insert("oldRoomKeys".into(), old);
        }
        touch(&mut sub);
        let mut changes = vec![Change::UpdateSubscription(sub)];
        if let Some(mut room) = self.store.room_by_id(rid).await?
            && dequeue(&mut room, &[&actor.id])
        {
            changes.push(Change::UpdateRoom(room));
        }
        self.commit(changes).await
    }

    /// `e2e.rejectSuggestedGroupKey`: drops the suggestion and queues the caller again.
    pub async fn e2e_reject_suggested_key(&self, actor: &User, rid: &str) -> CoreResult<()> {
        let mut sub = self.own_subscription(actor, rid).await?;
        if sub.extra.remove("E2ESuggestedKey").is_none() {
            return Err(CoreError::bad(
                "error-no-suggested-key-available",
                "No suggested key available",
            ));
        }
        sub.extra.remove("suggestedOldRoomKeys");
        touch(&mut sub);
        let mut changes = vec![Change::UpdateSubscription(sub)];
        if let Some(mut room) = self.store.room_by_id(rid).await?
            && enqueue(&mut room, &[&actor.id])
        {
            changes.push(Change::UpdateRoom(room));
        }
        self.commit(changes).await
    }

    /// `e2e.fetchUsersWaitingForGroupKey`: per room, up to 50 members (not the caller) with
    /// neither a key nor a suggested key who have a public key, as Rocket.Chat lists them (it does
    /// not consult the queue; clients use the queue to pick rooms). Only rooms the caller is a
    /// member of (Rocket.Chat checks no access here).
    pub async fn e2e_users_waiting(&self, actor: &User, room_ids: &[String]) -> CoreResult<Value> {
        let mut out = Map::new();
        if !self.settings.bool("E2E_Enable") {
            return Ok(json!({ "usersWaitingForE2EKeys": out }));
        }
        let mut ids: Vec<String> = room_ids.to_vec();
        ids.sort();
        ids.dedup();
        ids.truncate(100);
        let scan = self.settings.int("API_User_Limit").max(MAX_WAITING as i64);
        for rid in ids {
            if self.store.subscription(&rid, &actor.id).await?.is_none() {
                continue;
            }
            let subs = self.store.subscriptions_without_e2e_key(&rid, scan).await?;
            let candidates: Vec<String> = subs
                .iter()
                .filter(|s| s.u.id != actor.id && !has_key(s, "E2ESuggestedKey"))
                .map(|s| s.u.id.clone())
                .collect();
            let users: Vec<Value> = self
                .store
                .users_by_ids(&candidates)
                .await?
                .iter()
                .filter_map(|u| public_key(u).map(|k| json!({"_id": u.id, "public_key": k})))
                .take(MAX_WAITING)
                .collect();
            if !users.is_empty() {
                out.insert(rid, Value::Array(users));
            }
        }
        Ok(json!({ "usersWaitingForE2EKeys": out }))
    }

    /// `e2e.provideUsersSuggestedGroupKeys`: writes each suggested key (and old keys) into the
    /// recipient's subscription and takes them off the queue. Rooms the caller is not a member of,
    /// and recipients who are not members or already hold the key, are skipped. A malformed key
    /// fails the whole request before anything is written.
    pub async fn e2e_provide_suggested_keys(
        &self,
        actor: &User,
        by_room: Vec<(String, Vec<SuggestedKey>)>,
    ) -> CoreResult<()> {
        let mut normalized = Vec::with_capacity(by_room.len());
        for (rid, keys) in by_room {
            let mut checked = Vec::with_capacity(keys.len());
            for k in keys {
                check_room_key(&k.key)?;
                let old = k.old_keys.as_deref().map(normalize_old_keys).transpose()?;
                checked.push((k.user_id, k.key, old));
            }
            normalized.push((rid, checked));
        }
        if !self.settings.bool("E2E_Enable") {
            return Ok(());
        }
        let mut changes = Vec::new();
        let mut all_served = Vec::new();
        for (rid, keys) in normalized {
            if self.store.subscription(&rid, &actor.id).await?.is_none() {
                continue;
            }
            let Some(mut room) = self.store.room_by_id(&rid).await? else {
                continue;
            };
            let mut served = Vec::new();
            for (uid, key, old) in keys {
                let Some(mut sub) = self.store.subscription(&rid, &uid).await? else {
                    continue;
                };
                if has_key(&sub, "E2EKey") || uid == actor.id {
                    continue;
                }
                sub.extra.insert("E2ESuggestedKey".into(), json!(key));
                match old {
                    Some(old) if !old.is_empty() => {
                        sub.extra
                            .insert("suggestedOldRoomKeys".into(), Value::Array(old));
                    }
                    _ => {
                        sub.extra.remove("suggestedOldRoomKeys");
                    }
                }
                touch(&mut sub);
                changes.push(Change::UpdateSubscription(sub));
                served.push(uid);
            }
            let served_ids: Vec<&str> = served.iter().map(String::as_str).collect();
            if dequeue(&mut room, &served_ids) {
                changes.push(Change::UpdateRoom(room));
            }
            all_served.extend(served.into_iter().map(|uid| (rid.clone(), uid)));
        }
        if changes.is_empty() {
            return Ok(());
        }
        self.commit(changes).await?;
        // Encrypted participants (bots) among the recipients take their keys at once.
        self.e2e_bots_take_suggested(&all_served).await;
        Ok(())
    }

    /// `e2e.resetRoomKey`: key rotation. Every member's current key moves to `oldRoomKeys`
    /// (newest first, at most 10), keys and suggestions are cleared, other members are queued,
    /// the room gets the new key id and the caller the new key.
    pub async fn e2e_reset_room_key(
        &self,
        actor: &User,
        rid: &str,
        e2e_key: &str,
        e2e_key_id: &str,
    ) -> CoreResult<()> {
        let sub = self.store.subscription(rid, &actor.id).await?;
        if !self
            .authz
            .has_in(actor, "toggle-room-e2e-encryption", sub.as_ref())
        {
            return Err(CoreError::unauthorized());
        }
        let Some(_lock) = ResetLock::take(rid) else {
            return Err(CoreError::bad(
                "error-e2e-key-reset-in-progress",
                "error-e2e-key-reset-in-progress",
            ));
        };
        let view = self
            .readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await
            .map_err(|_| CoreError::not_allowed("error-not-allowed"))?;
        let failed = || CoreError::bad("error-e2e-key-reset-failed", "error-e2e-key-reset-failed");
        check_room_key(e2e_key).map_err(|_| failed())?;
        check_kid(e2e_key_id).map_err(|_| failed())?;
        let user = self.fresh_user(actor).await?;
        if user_keys(&user).is_none() {
            return Err(failed());
        }
        let mut room = view.room;
        let Some(old_kid) = room_key_id(&room).map(str::to_string) else {
            return Err(failed());
        };
        let now = Timestamp::now();
        let mut changes = Vec::new();
        let mut waiting = Vec::new();
        let mut own = None;
        let mut offset = 0;
        loop {
            let (subs, _) = self
                .store
                .subscriptions_of_room(rid, Page { offset, count: 500 })
                .await?;
            let n = subs.len() as i64;
            for mut s in subs {
                if let Some(key) = s.extra.remove("E2EKey").filter(Value::is_string) {
                    let mut old: Vec<Value> = s
                        .extra
                        .get("oldRoomKeys")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    old.sort_by_key(|k| {
                        std::cmp::Reverse(k.get("ts").and_then(parse_ts).map(|t| t.millis()))
                    });
                    old.insert(0, json!({"e2eKeyId": old_kid, "ts": now, "E2EKey": key}));
                    old.truncate(MAX_OLD_KEYS);
                    s.extra.insert("oldRoomKeys".into(), Value::Array(old));
                }
                s.extra.remove("E2ESuggestedKey");
                s.extra.remove("suggestedOldRoomKeys");
                touch(&mut s);
                if s.u.id == actor.id {
                    own = Some(s);
                } else {
                    if waiting.len() < MAX_WAITING {
                        waiting.push(json!({"userId": s.u.id, "ts": now}));
                    }
                    changes.push(Change::UpdateSubscription(s));
                }
            }
            if n < 500 {
                break;
            }
            offset += n;
        }
        let Some(mut own) = own else {
            return Err(failed());
        };
        own.extra.insert("E2EKey".into(), json!(e2e_key));
        changes.push(Change::UpdateSubscription(own));
        room.extra.insert("e2eKeyId".into(), json!(e2e_key_id));
        set_queue(&mut room, waiting);
        changes.push(Change::UpdateRoom(room));
        self.commit(changes).await
    }

    /// `users.resetE2EKey` / `e2e.resetOwnE2EKey`: removes a user's keypair and room keys, queues
    /// them in their encrypted rooms and ends their sessions. Others' keys need
    /// `edit-other-user-e2ee`.
    pub async fn e2e_reset_user_keys(&self, actor: &User, target: ResetTarget) -> CoreResult<()> {
        let user = match target {
            ResetTarget::Me => self.fresh_user(actor).await?,
            ResetTarget::Id(id) => self
                .store
                .user_by_id(&id)
                .await?
                .ok_or_else(|| CoreError::bad("error-invalid-user-id", "Invalid user id"))?,
            ResetTarget::Username(name) => self
                .store
                .user_by_username(&name)
                .await?
                .ok_or_else(|| CoreError::bad("error-invalid-user-id", "Invalid user id"))?,
        };
        if user.id != actor.id && !self.authz.has(actor, "edit-other-user-e2ee") {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        // Re-read under the user's lock so a concurrent login or presence change is not lost.
        let _guard = self.lock_user(&user.id).await;
        let mut user = self
            .store
            .user_by_id(&user.id)
            .await?
            .ok_or_else(CoreError::invalid_user)?;
        user.extra.remove("e2e");
        user.updated_at = Timestamp::now();
        let uid = user.id.clone();
        let mut changes = vec![Change::UpdateUser(user)];
        let subs = self.store.subscriptions_of_user(&uid).await?;
        let mut rids = Vec::new();
        for mut s in subs {
            let removed: Vec<bool> = [
                "E2EKey",
                "E2ESuggestedKey",
                "suggestedOldRoomKeys",
                "oldRoomKeys",
            ]
            .iter()
            .map(|k| s.extra.remove(*k).is_some())
            .collect();
            let had = removed.contains(&true);
            rids.push(s.rid.clone());
            if had {
                touch(&mut s);
                changes.push(Change::UpdateSubscription(s));
            }
        }
        for mut room in self.store.rooms_by_ids(&rids).await? {
            if room.is_encrypted() && enqueue(&mut room, &[&uid]) {
                changes.push(Change::UpdateRoom(room));
            }
        }
        changes.push(Change::DeleteSessionTokens { user_id: uid });
        self.commit(changes).await
    }

    /// `e2e.requestSubscriptionKeys`: asks the key holders of every room the caller is in without
    /// the room key (rooms with a key id) to share it.
    pub async fn e2e_request_subscription_keys(&self, actor: &User) -> CoreResult<()> {
        let subs = self.store.subscriptions_of_user(&actor.id).await?;
        let rids: Vec<String> = subs
            .iter()
            .filter(|s| !has_key(s, "E2EKey"))
            .map(|s| s.rid.clone())
            .collect();
        for room in self.store.rooms_by_ids(&rids).await? {
            if let Some(kid) = room_key_id(&room) {
                self.publish(Event::E2eKeyRequest {
                    rid: room.id.clone(),
                    key_id: kid.to_string(),
                    from: Some(actor.id.clone()),
                });
            }
        }
        Ok(())
    }

    /// A member's `stream-notify-room-users` `<rid>/e2ekeyRequest`: relayed to the room's members.
    pub async fn e2e_key_request(&self, actor: &User, rid: &str, key_id: &str) -> CoreResult<()> {
        check_kid(key_id).map_err(|_| CoreError::not_allowed("not-allowed"))?;
        if self.store.subscription(rid, &actor.id).await?.is_none() {
            return Err(CoreError::not_allowed("not-allowed"));
        }
        self.publish(Event::E2eKeyRequest {
            rid: rid.to_string(),
            key_id: key_id.to_string(),
            from: Some(actor.id.clone()),
        });
        Ok(())
    }

    /// Rocket.Chat's `afterJoinRoom`: a new member of an encrypted room with a key asks the key
    /// holders for it.
    pub(crate) fn e2e_key_request_on_join(&self, room: &Room, user_id: &str) -> Option<Event> {
        let kid = room_key_id(room).filter(|_| room.is_encrypted())?;
        Some(Event::E2eKeyRequest {
            rid: room.id.clone(),
            key_id: kid.to_string(),
            from: Some(user_id.to_string()),
        })
    }

    /// Whether new rooms of a kind start encrypted (Rocket.Chat's `beforeCreateRoom`):
    /// `E2E_Enable` and the kind's `E2E_Enabled_Default_*Rooms`.
    pub(crate) fn e2e_default_on(&self, setting: &str) -> bool {
        self.settings.bool("E2E_Enable") && self.settings.bool(setting)
    }

    /// Whether a room of this type may be encrypted (private groups, DMs; not public channels).
    pub fn e2e_allowed_for(t: RoomType) -> bool {
        t != RoomType::Channel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_b64() -> String {
        STANDARD.encode([7u8; 256])
    }

    #[test]
    fn room_keys_are_kid_plus_one_rsa_block() {
        let data = rsa_b64();
        assert_eq!(data.len(), RSA_B64_LEN);
        assert!(check_room_key(&format!("a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b{data}")).is_ok());
        assert!(check_room_key(&format!("0123456789ab{data}")).is_ok());
        assert!(check_room_key(&data).is_err(), "no kid");
        assert!(
            check_room_key(&format!("kid{}", &data[4..])).is_err(),
            "short"
        );
        assert!(
            check_room_key(&format!("kid{}!", &data[..343])).is_err(),
            "bad base64"
        );
        assert!(check_room_key("").is_err());
    }

    #[test]
    fn public_keys_must_be_rsa_2048_jwks() {
        let n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let good = json!({"alg":"RSA-OAEP-256","e":"AQAB","ext":true,"key_ops":["encrypt"],"kty":"RSA","n": n});
        assert!(check_public_key(&good.to_string()).is_ok());
        let short = json!({"alg":"RSA-OAEP-256","e":"AQAB","kty":"RSA","n": URL_SAFE_NO_PAD.encode([1u8; 128])});
        assert!(check_public_key(&short.to_string()).is_err());
        assert!(check_public_key("not json").is_err());
        assert!(check_public_key(r#"{"kty":"oct","k":"AAAA"}"#).is_err());
        let private = json!({"alg":"RSA-OAEP-256","e":"AQAB","kty":"RSA","n": n, "d": "AAAA"});
        assert!(check_public_key(&private.to_string()).is_err());
    }

    #[test]
    fn private_keys_current_and_legacy() {
        let v2 = json!({"iv": STANDARD.encode([1u8; 12]), "ciphertext": STANDARD.encode([2u8; 100]), "salt": "v2:u:x", "iterations": 100000});
        assert!(check_private_key(&v2.to_string()).is_ok());
        let v1 = json!({"$binary": STANDARD.encode([3u8; 64])});
        assert!(check_private_key(&v1.to_string()).is_ok());
        assert!(
            check_private_key(r#"{"iv":"%%%","ciphertext":"AA==","salt":"s","iterations":1}"#)
                .is_err()
        );
        assert!(check_private_key("plain text").is_err());
    }

    #[test]
    fn envelopes_v1_and_v2() {
        let v2 = json!({"algorithm":"rc.v2.aes-sha2","kid":"a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b","iv": STANDARD.encode([0u8; 12]),"ciphertext": STANDARD.encode(b"0123456789abcdef0123")});
        assert!(check_encrypted_message("", Some(&v2)).is_ok());
        let v1 = json!({"algorithm":"rc.v1.aes-sha2","ciphertext": format!("0123456789ab{}", STANDARD.encode([9u8; 32]))});
        assert!(check_encrypted_message("", Some(&v1)).is_ok());
        let legacy = format!("0123456789ab{}", STANDARD.encode([9u8; 48]));
        assert!(check_encrypted_message(&legacy, None).is_ok());
        assert!(check_encrypted_message("hello world", None).is_err());
        let bad =
            json!({"algorithm":"rc.v2.aes-sha2","kid":"k","iv":"AAAA","ciphertext":"not base64!"});
        assert!(check_encrypted_message("", Some(&bad)).is_err());
        let other = json!({"algorithm":"m.megolm.v1.aes-sha2","ciphertext":"AAAA"});
        assert!(check_encrypted_message("", Some(&other)).is_err());
    }
}
