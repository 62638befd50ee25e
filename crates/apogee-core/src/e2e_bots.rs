//! Encrypted participants: bot users that read and write in end-to-end encrypted rooms.
//!
//! An admin (`manage-e2e-bots`) authorises a bot user for a set of encrypted rooms. The server
//! gives the bot an RSA-OAEP-256 identity: the public JWK is published as the bot's
//! `e2e.public_key`, so Rocket.Chat clients treat it as any member without a room key and send it
//! one through the normal suggested-key flow (`e2e.provideUsersSuggestedGroupKeys`); the private
//! JWK exists only sealed by the [`Kms`](crate::kms::Kms) (record in `e2e_bots`) and in memory
//! while a request uses it. Suggested keys are checked by unwrapping them with the bot's key and
//! then accepted (or rejected, which queues the bot again), at once when a client provides them
//! and again whenever the bot uses the room. Rotation keeps older keys in `oldRoomKeys`, which the
//! bot reads to decrypt history.
//!
//! The bot (logged in as itself) sends with `e2e_bot_send` (plaintext in, a `t: 'e2e'` v2
//! message out), seals its own payloads with `e2e_bot_encrypt`, and reads with
//! `e2e_bot_messages` / `e2e_bot_decrypt`. Every decryption is an audit entry. Plaintext is never
//! stored, indexed or logged: what is stored is the client-identical envelope.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::kms::{Kms, Sealed};
use crate::store::{Change, HistoryQuery};
use apogee_domain::{Message, Room, Timestamp, User};
use apogee_e2ee::{E2EKey, Envelope, Keyring, RoomKey, UserKeyPair, UserPublicKey, new_key_id};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Most rooms one authorisation names.
const MAX_ROOMS: usize = 100;
/// Most messages one read returns.
const MAX_READ: i64 = 100;
/// Largest encrypted file a bot decrypts (in memory).
const MAX_BOT_FILE: i64 = 32 * 1024 * 1024;
/// Most members one pass hands the room key to (the rest on the bot's next use of the room).
const MAX_SERVE: i64 = 500;

/// A bot's record (`e2e_bots` table): the sealed private key and the rooms it may use.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct E2eBot {
    pub user_id: String,
    pub rooms: Vec<String>,
    /// Which Kms sealed the key (`file`, `pkcs11`).
    pub kms: String,
    /// The key inside the Kms that opens `sealed_key`.
    pub key_ref: String,
    /// Base64 of the sealed private JWK string.
    pub sealed_key: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

impl std::fmt::Debug for E2eBot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2eBot")
            .field("user_id", &self.user_id)
            .field("rooms", &self.rooms)
            .field("kms", &self.kms)
            .field("key_ref", &self.key_ref)
            .field("sealed_key", &"<sealed>")
            .finish()
    }
}

impl E2eBot {
    fn sealed(&self) -> CoreResult<Sealed> {
        Ok(Sealed {
            key_ref: self.key_ref.clone(),
            ciphertext: STANDARD
                .decode(&self.sealed_key)
                .map_err(|_| CoreError::internal("sealed bot key"))?,
        })
    }
}

fn crypto_error(e: apogee_e2ee::E2eeError) -> CoreError {
    CoreError::bad("error-e2e-bot-crypto", e.to_string())
}

fn not_authorised() -> CoreError {
    CoreError::not_allowed("Not an encrypted participant of this room")
}

fn room_kid(room: &Room) -> Option<&str> {
    room.extra
        .get("e2eKeyId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn sub_str<'a>(sub: &'a apogee_domain::Subscription, field: &str) -> Option<&'a str> {
    sub.extra
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `@name` / `#name` tokens of the plaintext, as the client fills `e2eMentions`.
fn e2e_mentions(text: &str) -> Value {
    let users: Vec<String> = apogee_domain::mentions::mentioned_usernames(text)
        .into_iter()
        .map(|u| format!("@{u}"))
        .collect();
    let channels: Vec<String> = apogee_domain::mentions::mentioned_channels(text)
        .into_iter()
        .map(|c| format!("#{c}"))
        .collect();
    json!({"e2eUserMentions": users, "e2eChannelMentions": channels})
}

impl Core {
    fn kms(&self) -> CoreResult<&Arc<dyn Kms>> {
        self.options.kms.as_ref().ok_or_else(|| {
            CoreError::bad(
                "error-e2e-bots-unavailable",
                "No key management service is configured",
            )
        })
    }

    /// `POST e2e.bots.authorize {userId, roomIds}`: makes a bot user an encrypted participant of
    /// these encrypted rooms (added as a member where it is not one, queued for the room key).
    /// The first authorisation creates its identity; later ones add rooms.
    pub async fn e2e_bot_authorize(
        &self,
        actor: &User,
        user_id: &str,
        room_ids: &[String],
    ) -> CoreResult<Value> {
        self.authz.require(actor, "manage-e2e-bots", None)?;
        let mut rids: Vec<String> = room_ids.to_vec();
        rids.sort();
        rids.dedup();
        if rids.is_empty() || rids.len() > MAX_ROOMS {
            return Err(CoreError::invalid_params(
                "roomIds must name 1 to 100 rooms",
            ));
        }
        let mut bot_user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(CoreError::invalid_user)?;
        if !bot_user.has_role("bot") {
            return Err(CoreError::bad(
                "error-not-a-bot",
                "Only users with the bot role can be encrypted participants",
            ));
        }
        let rooms = self.store.rooms_by_ids(&rids).await?;
        if rooms.len() != rids.len() {
            return Err(CoreError::invalid_room());
        }
        if let Some(r) = rooms.iter().find(|r| !r.is_encrypted()) {
            return Err(CoreError::bad(
                "error-room-not-encrypted",
                format!("Room {} is not encrypted", r.id),
            ));
        }
        let kms = self.kms()?.clone();
        let existing = self.store.e2e_bot(user_id).await?;
        let mut changes = Vec::new();
        let mut fresh_key_ref = None;
        let mut bot = match existing {
            Some(bot) => bot,
            None => {
                let keys = tokio::task::spawn_blocking(UserKeyPair::generate)
                    .await
                    .map_err(|_| CoreError::internal("bot key generation"))?
                    .map_err(crypto_error)?;
                let label = format!("apogee-e2e-bot-{user_id}-{}", apogee_domain::random_id());
                let sealed = kms
                    .seal(&label, keys.private_jwk().as_bytes())
                    .await
                    .map_err(|e| CoreError::internal(&e.to_string()))?;
                fresh_key_ref = Some(sealed.key_ref.clone());
                // The private half is never in the user document: clients that fetch it get ''.
                bot_user.extra.insert(
                    "e2e".into(),
                    json!({"public_key": keys.public_jwk(), "private_key": ""}),
                );
                bot_user.updated_at = Timestamp::now();
                changes.push(Change::UpdateUser(bot_user.clone()));
                E2eBot {
                    user_id: user_id.to_string(),
                    rooms: Vec::new(),
                    kms: kms.kind().to_string(),
                    key_ref: sealed.key_ref,
                    sealed_key: STANDARD.encode(&sealed.ciphertext),
                    created_at: Timestamp::now(),
                    created_by: actor.id.clone(),
                }
            }
        };
        let mut key_requests = Vec::new();
        for mut room in rooms {
            let sub = self.store.subscription(&room.id, user_id).await?;
            let has_key = sub.as_ref().is_some_and(|s| sub_str(s, "E2EKey").is_some());
            let queued = !has_key && crate::e2e::enqueue_waiting(&mut room, user_id);
            if sub.is_none() {
                key_requests.extend(self.e2e_key_request_on_join(&room, user_id));
                changes.extend(self.join_changes(room.clone(), &bot_user, Some(actor), true));
            } else if queued {
                changes.push(Change::UpdateRoom(room.clone()));
            }
            if !bot.rooms.contains(&room.id) {
                bot.rooms.push(room.id.clone());
            }
        }
        bot.rooms.sort();
        changes.push(Change::SaveE2eBot(bot.clone()));
        changes.push(self.audit(
            "e2e.bot.authorized",
            Some(actor),
            json!({"userId": user_id, "username": bot_user.username, "roomIds": rids, "kms": bot.kms}),
        ));
        if let Err(e) = self.commit(changes).await {
            if let Some(key_ref) = fresh_key_ref {
                let _ = kms.destroy(&key_ref).await;
            }
            return Err(e);
        }
        for e in key_requests {
            self.publish(e);
        }
        let public_key = bot_user
            .extra
            .get("e2e")
            .and_then(|e| e.get("public_key"))
            .cloned()
            .unwrap_or(Value::Null);
        Ok(
            json!({"bot": {"userId": user_id, "roomIds": bot.rooms, "kms": bot.kms, "publicKey": public_key}}),
        )
    }

    /// `POST e2e.bots.revoke {userId}`: the bot leaves its rooms, loses its room keys and
    /// identity, and the Kms destroys the key that sealed its private key.
    pub async fn e2e_bot_revoke(&self, actor: &User, user_id: &str) -> CoreResult<()> {
        self.authz.require(actor, "manage-e2e-bots", None)?;
        let bot = self.store.e2e_bot(user_id).await?.ok_or_else(|| {
            CoreError::bad(
                "error-not-an-e2e-bot",
                "This user is not an encrypted participant",
            )
        })?;
        let kms = self.kms()?.clone();
        let mut user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(CoreError::invalid_user)?;
        let mut changes = Vec::new();
        for mut room in self.store.rooms_by_ids(&bot.rooms).await? {
            if self.store.subscription(&room.id, user_id).await?.is_none() {
                continue;
            }
            crate::e2e::dequeue_waiting(&mut room, user_id);
            room.users_count = (room.users_count - 1).max(0);
            room.updated_at = Timestamp::now();
            changes.push(Change::DeleteSubscription {
                rid: room.id.clone(),
                user_id: user_id.to_string(),
            });
            changes.push(Change::AppendMessage {
                message: Message::system(&room.id, "ru", user.username.clone(), actor.as_ref()),
                mentioned_user_ids: vec![],
                mentions_all: false,
            });
            changes.push(Change::UpdateRoom(room));
        }
        user.extra.remove("e2e");
        user.updated_at = Timestamp::now();
        changes.push(Change::UpdateUser(user.clone()));
        changes.push(Change::DeleteE2eBot {
            user_id: user_id.to_string(),
        });
        changes.push(self.audit(
            "e2e.bot.revoked",
            Some(actor),
            json!({"userId": user_id, "username": user.username, "roomIds": bot.rooms, "kms": bot.kms}),
        ));
        self.commit(changes).await?;
        // The sealed copy is gone from the database; destroying the key also voids backups.
        if let Err(e) = kms.destroy(&bot.key_ref).await {
            tracing::error!(key_ref = %bot.key_ref, error = %e, "bot key not destroyed in the KMS");
            return Err(CoreError::internal("bot key not destroyed"));
        }
        Ok(())
    }

    /// `GET e2e.bots.info?userId=`: the bot's rooms and whether it holds each room's key.
    pub async fn e2e_bot_info(&self, actor: &User, user_id: &str) -> CoreResult<Value> {
        if actor.id != user_id {
            self.authz.require(actor, "manage-e2e-bots", None)?;
        }
        let bot = self.store.e2e_bot(user_id).await?.ok_or_else(|| {
            CoreError::bad(
                "error-not-an-e2e-bot",
                "This user is not an encrypted participant",
            )
        })?;
        let mut rooms = Vec::new();
        for room in self.store.rooms_by_ids(&bot.rooms).await? {
            let sub = self.store.subscription(&room.id, user_id).await?;
            let key = sub.as_ref().and_then(|s| sub_str(s, "E2EKey"));
            let kid = key
                .and_then(|k| E2EKey::split(k).ok())
                .map(|(kid, _)| kid.to_string());
            rooms.push(json!({
                "rid": room.id,
                "member": sub.is_some(),
                "e2eKeyId": room_kid(&room),
                "hasKey": kid.is_some() && kid.as_deref() == room_kid(&room),
                "oldKeys": sub.as_ref().and_then(|s| s.extra.get("oldRoomKeys")).and_then(Value::as_array).map_or(0, Vec::len),
            }));
        }
        Ok(
            json!({"bot": {"userId": bot.user_id, "kms": bot.kms, "createdAt": bot.created_at, "rooms": rooms}}),
        )
    }

    /// The bot's record and the room, if the actor is authorised for it.
    async fn bot_room(&self, actor: &User, rid: &str) -> CoreResult<(E2eBot, Room)> {
        let bot = self
            .store
            .e2e_bot(&actor.id)
            .await?
            .ok_or_else(not_authorised)?;
        if !bot.rooms.iter().any(|r| r == rid) {
            return Err(not_authorised());
        }
        let room = self
            .store
            .room_by_id(rid)
            .await?
            .ok_or_else(CoreError::invalid_room)?;
        Ok((bot, room))
    }

    async fn bot_keys(&self, bot: &E2eBot) -> CoreResult<UserKeyPair> {
        let jwk = self
            .kms()?
            .open(&bot.key_ref, &bot.sealed()?)
            .await
            .map_err(|e| CoreError::internal(&e.to_string()))?;
        let jwk = std::str::from_utf8(&jwk).map_err(|_| CoreError::internal("bot key"))?;
        UserKeyPair::from_private_jwk(jwk).map_err(|_| CoreError::internal("bot key"))
    }

    /// Takes a suggested key if one waits: accepted when it opens with the bot's key (and its
    /// old keys too), rejected — so the bot is queued again — when it does not.
    async fn bot_take_suggested(
        &self,
        bot_user: &User,
        keys: &UserKeyPair,
        rid: &str,
    ) -> CoreResult<()> {
        let Some(sub) = self.store.subscription(rid, &bot_user.id).await? else {
            return Ok(());
        };
        let Some(suggested) = sub_str(&sub, "E2ESuggestedKey") else {
            return Ok(());
        };
        let opens = E2EKey::unwrap(keys, suggested).is_ok();
        if opens {
            self.e2e_accept_suggested_key(bot_user, rid).await
        } else {
            self.e2e_reject_suggested_key(bot_user, rid).await
        }
    }

    /// After `e2e.provideUsersSuggestedGroupKeys`: encrypted participants among the recipients
    /// take their keys now rather than at their next request. Failures wait for that request.
    pub(crate) async fn e2e_bots_take_suggested(&self, served: &[(String, String)]) {
        for (rid, uid) in served {
            let Ok(Some(bot)) = self.store.e2e_bot(uid).await else {
                continue;
            };
            if !bot.rooms.contains(rid) {
                continue;
            }
            let Ok(Some(user)) = self.store.user_by_id(uid).await else {
                continue;
            };
            let result = match self.bot_keys(&bot).await {
                Ok(keys) => self.bot_take_suggested(&user, &keys, rid).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(bot = %uid, rid = %rid, error = %e.code, "bot did not take its suggested key");
            }
        }
    }

    /// Suggested keys (the room key wrapped for each) for members who have published a public
    /// key and hold neither the key nor a suggestion — what a member's client does for those
    /// waiting — and the room with them taken off its waiting list. Returns the changes and the
    /// served user ids.
    async fn bot_key_suggestions(
        &self,
        bot_id: &str,
        room: &mut Room,
        kid: &str,
        key: &RoomKey,
    ) -> CoreResult<(Vec<Change>, Vec<String>)> {
        let subs: Vec<_> = self
            .store
            .subscriptions_without_e2e_key(&room.id, MAX_SERVE)
            .await?
            .into_iter()
            .filter(|s| s.u.id != bot_id && sub_str(s, "E2ESuggestedKey").is_none())
            .collect();
        let ids: Vec<String> = subs.iter().map(|s| s.u.id.clone()).collect();
        let users = self.store.users_by_ids(&ids).await?;
        let now = Timestamp::now();
        let mut changes = Vec::new();
        let mut served = Vec::new();
        for mut sub in subs {
            let Some(public) = users
                .iter()
                .find(|u| u.id == sub.u.id && u.active)
                .and_then(|u| u.extra.get("e2e"))
                .and_then(|e| e.get("public_key"))
                .and_then(Value::as_str)
                .and_then(|k| UserPublicKey::from_jwk(k).ok())
            else {
                continue;
            };
            let wrapped = E2EKey::wrap(&public, kid, key).map_err(crypto_error)?;
            sub.extra.insert("E2ESuggestedKey".into(), json!(wrapped));
            sub.extra.remove("suggestedOldRoomKeys");
            sub.updated_at = now;
            served.push(sub.u.id.clone());
            changes.push(Change::UpdateSubscription(sub));
        }
        let mut dequeued = false;
        for uid in &served {
            dequeued |= crate::e2e::dequeue_waiting(room, uid);
        }
        if dequeued {
            room.updated_at = now;
        }
        Ok((changes, served))
    }

    /// `POST e2e.bot.createRoomKey {rid}`: the bot as the room's first key holder — a room with
    /// no key id yet gets a fresh `A256GCM` key made by the bot, which keeps it as its `E2EKey`
    /// and suggests it to every member who has published a public key (their clients accept it
    /// as from any member). One batch, audited (`e2e.bot.room_key_created`, ids and counts).
    pub async fn e2e_bot_create_room_key(&self, actor: &User, rid: &str) -> CoreResult<Value> {
        let (bot, mut room) = self.bot_room(actor, rid).await?;
        if !room.is_encrypted() {
            return Err(CoreError::bad(
                "error-room-not-encrypted",
                format!("Room {} is not encrypted", room.id),
            ));
        }
        if room_kid(&room).is_some() {
            return Err(CoreError::bad(
                "error-room-e2e-key-already-exists",
                "Room E2E key already exists",
            ));
        }
        let mut mine = self
            .store
            .subscription(rid, &actor.id)
            .await?
            .ok_or_else(not_authorised)?;
        let keys = self.bot_keys(&bot).await?;
        let kid = new_key_id();
        let key = RoomKey::generate();
        let now = Timestamp::now();
        mine.extra.insert(
            "E2EKey".into(),
            json!(E2EKey::wrap(&keys.public(), &kid, &key).map_err(crypto_error)?),
        );
        mine.extra.remove("E2ESuggestedKey");
        mine.updated_at = now;
        room.extra.insert("e2eKeyId".into(), json!(kid));
        crate::e2e::dequeue_waiting(&mut room, &actor.id);
        room.updated_at = now;
        let (mut changes, served) = self
            .bot_key_suggestions(&actor.id, &mut room, &kid, &key)
            .await?;
        changes.push(Change::UpdateSubscription(mine));
        changes.push(Change::UpdateRoom(room));
        changes.push(self.audit(
            "e2e.bot.room_key_created",
            Some(actor),
            json!({"rid": rid, "kid": kid, "suggestedTo": served.len()}),
        ));
        self.commit(changes).await?;
        let pairs: Vec<(String, String)> = served
            .iter()
            .map(|u| (rid.to_string(), u.clone()))
            .collect();
        self.e2e_bots_take_suggested(&pairs).await;
        Ok(json!({"e2eKeyId": kid, "suggestedTo": served}))
    }

    /// Whenever the bot uses a room whose current key it holds, members still without it get
    /// it suggested (later joiners of a room whose key the bot made). Best effort: a failure is
    /// logged and retried at the next use.
    async fn bot_serve_waiting(&self, actor: &User, room: &Room, ring: &Keyring) {
        let Some((kid, key)) = ring
            .current()
            .filter(|(kid, _)| room_kid(room) == Some(*kid))
        else {
            return;
        };
        let mut updated = room.clone();
        let served = match self
            .bot_key_suggestions(&actor.id, &mut updated, kid, key)
            .await
        {
            Ok((mut changes, served)) if !served.is_empty() => {
                changes.push(Change::UpdateRoom(updated));
                self.commit(changes).await.map(|_| served)
            }
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(e),
        };
        match served {
            Ok(served) => {
                let pairs: Vec<(String, String)> =
                    served.into_iter().map(|u| (room.id.clone(), u)).collect();
                self.e2e_bots_take_suggested(&pairs).await;
            }
            Err(e) => {
                tracing::warn!(bot = %actor.id, rid = %room.id, error = %e.code, "bot did not hand out the room key");
            }
        }
    }

    /// The bot's keys for a room: the current one and every old key it holds.
    async fn bot_keyring(&self, actor: &User, rid: &str) -> CoreResult<(Room, Keyring)> {
        let (bot, room) = self.bot_room(actor, rid).await?;
        let keys = self.bot_keys(&bot).await?;
        self.bot_take_suggested(actor, &keys, rid).await?;
        let sub = self
            .store
            .subscription(rid, &actor.id)
            .await?
            .ok_or_else(not_authorised)?;
        let mut ring = Keyring::new();
        if let Some(k) = sub_str(&sub, "E2EKey")
            && let Ok((kid, key, _)) = E2EKey::unwrap(&keys, k)
        {
            ring = ring.with_current(kid, key);
        }
        for old in sub
            .extra
            .get("oldRoomKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = old.get("E2EKey").and_then(Value::as_str)
                && let Ok((kid, key, _)) = E2EKey::unwrap(&keys, k)
            {
                ring.add_old(kid, key);
            }
        }
        self.bot_serve_waiting(actor, &room, &ring).await;
        Ok((room, ring))
    }

    /// The current key for sealing, which must be the room's current key id.
    fn current_key<'a>(
        room: &Room,
        ring: &'a Keyring,
    ) -> CoreResult<(&'a str, &'a apogee_e2ee::RoomKey)> {
        match (room_kid(room), ring.current()) {
            (Some(want), Some((kid, key))) if want == kid => Ok((kid, key)),
            _ => Err(CoreError::bad(
                "error-e2e-no-room-key",
                "The bot has not received this room's key yet",
            )),
        }
    }

    /// `POST e2e.bot.encrypt {rid, payload}`: the v2 `content` envelope of `payload` under the
    /// room's current key, for bots that build their own messages.
    pub async fn e2e_bot_encrypt(
        &self,
        actor: &User,
        rid: &str,
        payload: &Value,
    ) -> CoreResult<Value> {
        if !payload.is_object() {
            return Err(CoreError::invalid_params("payload must be an object"));
        }
        let (room, ring) = self.bot_keyring(actor, rid).await?;
        let (kid, key) = Self::current_key(&room, &ring)?;
        let content = Envelope::seal_v2(key, kid, payload).map_err(crypto_error)?;
        Ok(json!({"content": content.to_value()}))
    }

    /// `POST e2e.bot.sendMessage {rid, msg, tmid?}`: encrypts `msg` as a client would (v2,
    /// 12-byte IV, `e2eMentions`) and posts it as the bot.
    pub async fn e2e_bot_send(
        &self,
        actor: &User,
        rid: &str,
        text: &str,
        tmid: Option<String>,
    ) -> CoreResult<Message> {
        let max = self.settings.int("Message_MaxAllowedSize");
        if text.is_empty() || (max > 0 && text.chars().count() as i64 > max) {
            return Err(CoreError::bad(
                "error-message-size-exceeded",
                "Message is empty or exceeds Message_MaxAllowedSize",
            ));
        }
        let (room, ring) = self.bot_keyring(actor, rid).await?;
        let (kid, key) = Self::current_key(&room, &ring)?;
        let content = Envelope::seal_v2(key, kid, &json!({ "msg": text })).map_err(crypto_error)?;
        let mut extra = Map::new();
        extra.insert("t".into(), json!("e2e"));
        extra.insert("e2e".into(), json!("pending"));
        extra.insert("content".into(), content.to_value());
        extra.insert("e2eMentions".into(), e2e_mentions(text));
        self.send_message(
            actor,
            crate::messages::NewMessage {
                id: None,
                rid: rid.to_string(),
                msg: String::new(),
                tmid,
                tshow: false,
                extra,
            },
        )
        .await
    }

    /// One message as the bot reads it: decrypted when it is `t: 'e2e'` (an audit entry), as is
    /// otherwise.
    fn bot_view(
        &self,
        actor: &User,
        ring: &Keyring,
        m: &Message,
        audits: &mut Vec<Change>,
    ) -> Value {
        let mut out =
            json!({"_id": m.id, "rid": m.rid, "ts": m.ts, "u": m.u, "tmid": m.tmid, "t": m.t});
        if m.t.as_deref() != Some("e2e") {
            out["msg"] = json!(m.msg);
            out["encrypted"] = json!(false);
            return out;
        }
        out["t"] = Value::Null;
        out["encrypted"] = json!(true);
        let opened = Envelope::from_message(Some(&m.msg), m.extra.get("content"))
            .and_then(|env| env.open(ring).map(|d| (env.kid, d)));
        match opened {
            Ok((kid, d)) => {
                audits.push(self.audit(
                    "e2e.bot.decrypted",
                    Some(actor),
                    json!({"rid": m.rid, "messageId": m.id, "kid": kid}),
                ));
                if let Value::Object(payload) = d.payload {
                    for (k, v) in payload {
                        if matches!(k.as_str(), "msg" | "attachments" | "files" | "file") {
                            out[k] = v;
                        }
                    }
                }
            }
            Err(e) => out["decryptError"] = json!(e.to_string()),
        }
        out
    }

    /// `GET e2e.bot.messages?rid=&oldest=&count=`: the room's messages after `oldest` (oldest
    /// first, at most 100 plus the rest of the last one's millisecond), decrypted for the bot.
    pub async fn e2e_bot_messages(
        &self,
        actor: &User,
        rid: &str,
        oldest: Option<Timestamp>,
        count: i64,
    ) -> CoreResult<Value> {
        let (_, ring) = self.bot_keyring(actor, rid).await?;
        let (messages, _) = self
            .store
            .history(
                rid,
                &HistoryQuery {
                    oldest,
                    count: count.clamp(1, MAX_READ),
                    ascending: true,
                    include_thread_replies: true,
                    // The bot's next `oldest` is the last message's `ts` (exclusive).
                    whole_last_millisecond: true,
                    ..Default::default()
                },
            )
            .await?;
        let mut audits = Vec::new();
        let out: Vec<Value> = messages
            .iter()
            .map(|m| self.bot_view(actor, &ring, m, &mut audits))
            .collect();
        if !audits.is_empty() {
            self.commit(audits).await?;
        }
        Ok(json!({"messages": out, "count": out.len()}))
    }

    /// `GET e2e.bot.file?msgId=&fileId=`: an encrypted file of an encrypted message, decrypted
    /// for the bot with the key in the message's payload (`attachments[].encryption`) and checked
    /// against its `hashes.sha256`. Audited (`e2e.bot.file_decrypted`); the plaintext is only
    /// in the answer (`{file: {_id, name, type, size, data: base64}}`).
    pub async fn e2e_bot_file(
        &self,
        actor: &User,
        message_id: &str,
        file_id: &str,
    ) -> CoreResult<Value> {
        let m = self
            .store
            .message_by_id(message_id)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-message", "Invalid message"))?;
        let (_, ring) = self.bot_keyring(actor, &m.rid).await?;
        let no_file = || CoreError::bad("invalid-file", "No such encrypted file in this message");
        if m.t.as_deref() != Some("e2e") {
            return Err(no_file());
        }
        let envelope =
            Envelope::from_message(Some(&m.msg), m.extra.get("content")).map_err(crypto_error)?;
        let kid = envelope.kid.clone();
        let payload = envelope.open(&ring).map_err(crypto_error)?.payload;
        let files = payload.get("files").and_then(Value::as_array);
        let index = files
            .and_then(|f| f.iter().position(|f| f["_id"] == file_id))
            .ok_or_else(no_file)?;
        let attachments = payload.get("attachments").and_then(Value::as_array);
        // The attachment that links this file, else the one at the file's position.
        let link = format!("/file-upload/{file_id}/");
        let attachment = attachments
            .and_then(|a| {
                a.iter()
                    .find(|a| a["title_link"].as_str().is_some_and(|l| l.contains(&link)))
                    .or_else(|| a.get(index))
            })
            .filter(|a| a.get("encryption").is_some())
            .ok_or_else(no_file)?;
        let key = apogee_e2ee::FileKey::from_encryption(&attachment["encryption"])
            .map_err(crypto_error)?;
        let upload = self
            .store
            .upload_by_id(file_id)
            .await?
            .filter(|u| u.rid == m.rid)
            .ok_or_else(no_file)?;
        if upload.size > MAX_BOT_FILE {
            return Err(CoreError::bad(
                "error-file-too-large",
                "The file is too large for a bot to decrypt",
            ));
        }
        let mut body = self
            .blobs
            .get(&crate::files::key_of(&upload)?, None)
            .await
            .map_err(|e| crate::files::blob_failure(e, 0))?
            .ok_or_else(no_file)?;
        let ciphertext = crate::blobs::read_all(body.chunks.as_mut())
            .await
            .map_err(|e| crate::files::blob_failure(e, 0))?;
        let plain = zeroize::Zeroizing::new(key.apply(&ciphertext));
        if let Some(expected) = attachment["hashes"]["sha256"].as_str()
            && apogee_e2ee::sha256_hex(&plain) != expected
        {
            return Err(CoreError::bad(
                "error-e2e-bot-crypto",
                "The decrypted file does not match its hash",
            ));
        }
        let described = &files.map(|f| f[index].clone()).unwrap_or(Value::Null);
        self.commit(vec![self.audit(
            "e2e.bot.file_decrypted",
            Some(actor),
            json!({"rid": m.rid, "messageId": m.id, "fileId": file_id, "kid": kid}),
        )])
        .await?;
        Ok(json!({"file": {
            "_id": file_id,
            "name": described.get("name"),
            "type": described.get("type"),
            "size": plain.len(),
            "data": STANDARD.encode(plain.as_slice()),
        }}))
    }

    /// `GET e2e.bot.decrypt?msgId=`: one message of an authorised room, decrypted.
    pub async fn e2e_bot_decrypt(&self, actor: &User, message_id: &str) -> CoreResult<Value> {
        let m = self
            .store
            .message_by_id(message_id)
            .await?
            .ok_or_else(|| CoreError::bad("error-invalid-message", "Invalid message"))?;
        let (_, ring) = self.bot_keyring(actor, &m.rid).await?;
        let mut audits = Vec::new();
        let view = self.bot_view(actor, &ring, &m, &mut audits);
        if !audits.is_empty() {
            self.commit(audits).await?;
        }
        Ok(json!({ "message": view }))
    }
}
