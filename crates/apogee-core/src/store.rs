//! Storage ports. Reads are one trait per aggregate; writes go through [`Writer::commit`], which
//! applies a batch of [`Change`]s atomically, so every use-case writes all or nothing.

use crate::error::StoreError;
use apogee_domain::{Message, Room, RoomType, Subscription, Timestamp, User};
use async_trait::async_trait;
use serde_json::Value;

pub type StoreResult<T> = Result<T, StoreError>;

/// A login or personal access token, stored only as `base64(sha256(token))`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginToken {
    pub hashed: String,
    pub user_id: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// Personal access token name; `None` for a session token.
    pub name: Option<String>,
    /// Personal access tokens may skip two-factor checks.
    pub bypass_two_factor: bool,
    /// The public id device management lists and revokes a login session by (never the token
    /// or its hash); `None` for personal access tokens.
    pub session_id: Option<String>,
    /// The last six characters of a personal access token, shown in its listing.
    pub last_token_part: Option<String>,
    /// Where the login came from.
    pub client: ClientInfo,
    /// The last resume of this session (a reconnect); requests do not write it.
    pub last_active_at: Option<Timestamp>,
}

/// The client a login came from: its address and `User-Agent`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A pending password reset: the e-mailed token, stored hashed; single use.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordReset {
    pub hashed: String,
    pub user_id: String,
    /// The address the link was sent to (verified when the reset succeeds).
    pub email: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Order of a device-management listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionSort {
    #[default]
    LoginAt,
    DeviceName,
    OsName,
    OsVersion,
    Username,
    Name,
}

/// Filter and order for listing login sessions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionQuery {
    /// Only this user's sessions (`sessions/list`); all users' otherwise.
    pub user_id: Option<String>,
    /// Case-insensitive substring of the device, system, address or session id.
    pub text: Option<String>,
    pub sort: SessionSort,
    pub descending: bool,
    /// Only sessions that began after this (login expiry counted from the login).
    pub logged_in_after: Option<Timestamp>,
}

/// A custom or built-in role.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Role {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub scope: String,
    pub description: String,
    pub protected: bool,
    pub mandatory2fa: bool,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Timestamp,
}

/// A record removed after `since`, for `updatedSince` delta answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Tombstone {
    pub id: String,
    pub deleted_at: Timestamp,
}

/// Offset/count window for admin-style lists (Rocket.Chat's REST paging).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page {
    pub offset: i64,
    pub count: i64,
}

impl Page {
    /// Every row (for internal reads that need the whole list).
    pub const ALL: Page = Page {
        offset: 0,
        count: i64::MAX,
    };
}

/// A message's place in a room's history. Messages are ordered by `ts`, then by `_id` among
/// those of one millisecond: a total order, so a page boundary is one place and no message
/// sent in the same millisecond as the boundary can fall between two pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    pub ts: Timestamp,
    pub id: String,
}

impl MessageKey {
    pub fn of(message: &Message) -> Self {
        MessageKey {
            ts: message.ts,
            id: message.id.clone(),
        }
    }
}

/// Keyset window over a room's messages, newest first (`ts`, then `_id`; see [`MessageKey`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryQuery {
    /// Timestamp bounds (Rocket.Chat's `latest`/`oldest`), exclusive unless `inclusive`.
    pub latest: Option<Timestamp>,
    pub oldest: Option<Timestamp>,
    pub inclusive: bool,
    /// Keyset bounds, always exclusive: only messages strictly before / after this place.
    pub before: Option<MessageKey>,
    pub after: Option<MessageKey>,
    pub count: i64,
    /// For pages whose next page is asked for by a timestamp alone (the wire's exclusive
    /// `latest`/`oldest`/`end`): a page of `count` messages also gets the rest of its last
    /// millisecond, so it may be longer than `count`, and the client's next bound — the last
    /// message's `ts` — leaves nothing of that millisecond behind.
    pub whole_last_millisecond: bool,
    /// Skip this many after the keyset bound (Rocket.Chat's `offset`).
    pub offset: i64,
    /// Include thread replies not shown in the channel.
    pub include_thread_replies: bool,
    /// Only messages whose text contains this (case-insensitive).
    pub text: Option<String>,
    /// Only replies to this thread.
    pub tmid: Option<String>,
    /// Only thread parents (messages with replies).
    pub threads_only: bool,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    /// Only pinned / starred-by / mentioning this user.
    pub pinned_only: bool,
    pub starred_by: Option<String>,
    pub mentioning: Option<String>,
    /// Also count every matching message (a scan of the matches: only where a total is shown).
    pub with_total: bool,
}

/// Filter for listing rooms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoomQuery {
    pub types: Vec<RoomType>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Only rooms this user is subscribed to.
    pub member: Option<String>,
}

/// Filter for listing users.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserQuery {
    /// Case-insensitive substring of username or name.
    pub text: Option<String>,
    pub role: Option<String>,
    pub active: Option<bool>,
}

/// One atomic mutation. A batch of them is committed in one transaction.
#[derive(Debug, Clone)]
pub enum Change {
    InsertUser {
        user: User,
        password_hash: Option<String>,
    },
    UpdateUser(User),
    SetPasswordHash {
        user_id: String,
        hash: Option<String>,
    },
    /// Removes the user with their tokens and subscriptions.
    DeleteUser(String),
    InsertLoginToken(LoginToken),
    /// Ends one session (or removes one personal access token); its connections close.
    DeleteLoginToken {
        user_id: String,
        hashed: String,
    },
    /// A session was resumed at `at` (device management's last activity).
    TouchLoginToken {
        hashed: String,
        at: Timestamp,
    },
    /// A person set a password: the hash, when (for password expiry), and the hash kept in the
    /// password history, of which the newest `history_keep` entries remain.
    PasswordChanged {
        user_id: String,
        hash: String,
        at: Timestamp,
        history_keep: i64,
    },
    /// Replaces the user's pending password reset, if any.
    InsertPasswordReset(PasswordReset),
    /// Removes the user's pending password reset (used, or superseded).
    DeletePasswordResets {
        user_id: String,
    },
    /// Removes every session token of a user (personal access tokens stay).
    DeleteSessionTokens {
        user_id: String,
    },
    /// Inserts a room with `usersCount` 0: the store counts memberships (subscriptions) in and out
    /// itself, so concurrent joins, leaves and deletions cannot lose an update.
    InsertRoom(Room),
    /// Replaces the room document; what the store maintains is left alone (the message sequence,
    /// `msgs`, `lm`, `lastMessage`, `usersCount`).
    UpdateRoom(Room),
    /// Removes the room with its subscriptions, messages and invites (and the team it is the
    /// main room of).
    DeleteRoom(String),
    /// Inserts the subscription (fails on a second subscription for the same user and room).
    InsertSubscription(Subscription),
    /// Replaces the subscription document; read state (`read_seq`, mention counters) is left alone.
    UpdateSubscription(Subscription),
    /// Removes the membership (and, for a team's main room, the team membership).
    DeleteSubscription {
        rid: String,
        user_id: String,
    },
    /// Marks the room read up to its current sequence for the user and clears mention counters.
    MarkRead {
        rid: String,
        user_id: String,
    },
    /// Marks the room unread from the given message on (read state set just before it).
    MarkUnreadFrom {
        rid: String,
        user_id: String,
        message_id: String,
    },
    /// Appends a message: allocates the next room sequence when it shows in the main timeline,
    /// bumps `msgs`, `lm` and `lastMessage`, keeps the sender's subscription read, and counts the
    /// mentions on mentioned users' subscriptions. Constant work whatever the room size.
    AppendMessage {
        message: Message,
        mentioned_user_ids: Vec<String>,
        mentions_all: bool,
    },
    /// Inserts a message older than what the room shows (history backfilled from another
    /// Matrix server): the row and `msgs` only — no room sequence (so it is never unread), no
    /// `lm`/`lastMessage`, no read state or mention counts, and no live event.
    InsertBackfilledMessage(Message),
    /// Replaces a message document (edits, reactions, pins, thread counters).
    UpdateMessage(Message),
    DeleteMessage {
        id: String,
        rid: String,
    },
    SetSetting {
        id: String,
        value: Value,
    },
    SetPermissionRoles {
        id: String,
        roles: Vec<String>,
    },
    UpsertRole(Role),
    DeleteRole(String),
    /// Inserts a team record (its main room is written separately).
    InsertTeam(Team),
    /// Replaces the team record (name, type).
    UpdateTeam(Team),
    /// Removes the team with all its memberships.
    DeleteTeam(String),
    /// Inserts or replaces the membership of `user_id` in `team_id`.
    UpsertTeamMember(TeamMember),
    DeleteTeamMember {
        team_id: String,
        user_id: String,
    },
    /// Inserts or replaces an invite link.
    UpsertInvite(Invite),
    DeleteInvite(String),
    /// Inserts or replaces a custom user status (names are unique).
    UpsertCustomUserStatus(CustomUserStatus),
    DeleteCustomUserStatus(String),
    /// Inserts or replaces a custom sound record (names are unique).
    UpsertCustomSound(CustomSound),
    DeleteCustomSound(String),
    /// Inserts or replaces an integration (incoming or outgoing webhook).
    UpsertIntegration(Integration),
    /// Removes an integration with its history.
    DeleteIntegration(String),
    /// Records one outgoing webhook delivery (`integrations.history`).
    InsertIntegrationHistory {
        id: String,
        integration_id: String,
        doc: Value,
    },
    /// Inserts or replaces a moderation report (dismissing one replaces it, hidden).
    UpsertModerationReport(ModerationReport),
    /// Inserts or replaces a custom emoji (names and aliases are unique).
    UpsertCustomEmoji(CustomEmoji),
    /// Removes a custom emoji (leaving a tombstone for `emoji-custom.list`'s `remove`).
    DeleteCustomEmoji(CustomEmoji),
    /// Records an uploaded file whose contents are already in the blob store.
    InsertUpload(Upload),
    /// Replaces an upload record (confirmation, description).
    UpdateUpload(Upload),
    DeleteUpload(String),
    /// One node's view of a user's presence (`None`: no connection of theirs on that node).
    SetPresence {
        node: String,
        user_id: String,
        status: Option<String>,
    },
    /// A node is alive at `at`.
    NodeSeen {
        node: String,
        at: Timestamp,
    },
    /// A node is gone: its presence rows with it.
    DropNode(String),
    /// Queues a side effect for delivery after this batch commits.
    Enqueue(OutboxItem),
    /// Leases those of `ids` still due at `now` to `node` until `until` (others are left alone).
    LeaseOutbox {
        ids: Vec<String>,
        node: String,
        now: Timestamp,
        until: Timestamp,
    },
    /// Delivered: the item goes.
    OutboxDelivered(String),
    /// Failed: counts the attempt, records why, and retries at `retry_at` (`None`: never).
    OutboxFailed {
        id: String,
        error: String,
        retry_at: Option<Timestamp>,
    },
    /// Makes item `id` due at `now` if it is waiting for a retry (not leased, not given up).
    RetryOutboxNow {
        id: String,
        now: Timestamp,
    },
    /// How an attempt at a queue's items ended (`error` `None`: delivered), kept per queue for
    /// its health; one row per queue, replaced in place.
    RecordQueueAttempt {
        queue: String,
        at: Timestamp,
        error: Option<String>,
    },
    /// Saves a user's second-factor secrets, only if the stored revision still is
    /// `secrets.revision` (0: none stored); the stored revision becomes one more. Otherwise
    /// fails with a conflict, so a code cannot be accepted twice by racing nodes.
    SaveTwoFactor(TwoFactorSecrets),
    /// Forgets a user's second-factor secrets (admin reset).
    DeleteTwoFactor {
        user_id: String,
    },
    /// Creates or replaces an encrypted participant's record (sealed key, authorised rooms).
    SaveE2eBot(E2eBot),
    /// Forgets an encrypted participant's record (revocation; its sealed key goes with it).
    DeleteE2eBot {
        user_id: String,
    },
    /// Adds a key-recovery policy version (a conflict if that version exists: two admins
    /// changing the policy at once do not both win).
    InsertRecoveryPolicy(RecoveryPolicy),
    /// Creates or replaces a recovery officer's public key.
    SaveRecoveryOfficerKey(RecoveryOfficerKey),
    /// Creates or replaces a user's recovery enrolment.
    SaveRecoveryEnrolment(RecoveryEnrolment),
    /// Forgets a user's recovery enrolment (consent withdrawn).
    DeleteRecoveryEnrolment {
        user_id: String,
    },
    /// Opens a recovery request; a conflict if the user already has a pending one.
    InsertRecoveryRequest(RecoveryRequest),
    /// Moves a request out of `pending` to `request.state`; a conflict if it is no longer
    /// pending (so approved material is released once).
    CloseRecoveryRequest(RecoveryRequest),
    /// Records an officer's approval; a conflict if that officer already approved the request.
    InsertRecoveryApproval(RecoveryApproval),
    /// Appends an entry to the audit chain (numbered and hashed by the store).
    Audit(crate::audit::AuditEntry),
    /// The export to `sink` has shipped every entry up to `seq`.
    AuditExported {
        sink: String,
        seq: i64,
    },
    /// Makes `key` this server's federation signing key unless one is already current (then
    /// nothing changes: nodes starting together agree on the first key written).
    InsertFederationSigningKey(FederationSigningKey),
    /// Remembers a remote server's public keys (replacing what was known of the same key ids).
    SaveFederationServerKeys(Vec<FederationServerKey>),
    /// Maps a Rocket.Chat room to a Matrix room (both ids are unique).
    InsertFederatedRoom(FederatedRoom),
    /// Drops a Rocket.Chat room's mapping to its Matrix room (the room, the events and the
    /// state stay), so the room can be mapped to another Matrix room in the same batch: a DM
    /// following the newest Matrix room of its members.
    DeleteFederatedRoom {
        rid: String,
    },
    /// Stores PDUs of a federated room; an event already known is left as it is (an event id
    /// names one immutable event).
    SaveFederationEvents(Vec<FederationEvent>),
    /// Sets entries of a Matrix room's current state (`(type, state_key)` → event id).
    SetFederationRoomState {
        matrix_room_id: String,
        entries: Vec<FederationStateEntry>,
    },
    /// Moves a Matrix room's forward extremities: `remove` go, `add` come.
    SetFederationExtremities {
        matrix_room_id: String,
        remove: Vec<String>,
        add: Vec<String>,
    },
    /// Stores a state snapshot under its content-derived id (a second copy is ignored).
    InsertFederationStateSnapshot {
        snapshot_id: String,
        entries: Vec<FederationStateEntry>,
    },
    /// Records the state snapshot before `event_id` (set once; an event's state never changes).
    SetFederationEventState {
        event_id: String,
        snapshot_id: String,
    },
}

/// A Rocket.Chat room that is a Matrix room.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedRoom {
    pub rid: String,
    /// `!opaque:server` (v10/v11) or `!<hash>` (v12).
    pub matrix_room_id: String,
    pub room_version: String,
    /// The server the room was created on (the one we joined through).
    pub origin: String,
}

/// What a stored PDU is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FederationEventKind {
    /// Part of the room's timeline (received over `/send`, sent by us, or our join).
    Timeline,
    /// Room state or auth chain learned when joining; not in the timeline.
    Outlier,
    /// Passed its auth events but not the room's current state: kept, never shown.
    SoftFailed,
    /// History from before our join, fetched with `/backfill` for a local reader: in the
    /// timeline (older than our join), with no state snapshot of its own.
    Backfilled,
}

impl FederationEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeline => "timeline",
            Self::Outlier => "outlier",
            Self::SoftFailed => "soft_failed",
            Self::Backfilled => "backfilled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "timeline" => Some(Self::Timeline),
            "outlier" => Some(Self::Outlier),
            "soft_failed" => Some(Self::SoftFailed),
            "backfilled" => Some(Self::Backfilled),
            _ => None,
        }
    }
}

/// One PDU of a federated room, as checked and stored (`unsigned` stripped; the redacted form
/// when its content hash did not match).
#[derive(Debug, Clone, PartialEq)]
pub struct FederationEvent {
    pub event_id: String,
    pub matrix_room_id: String,
    /// The Rocket.Chat message this event made or changed (a message, an edit, a reaction or
    /// a redaction of one), if any.
    pub message_id: Option<String>,
    pub kind: FederationEventKind,
    pub depth: i64,
    pub pdu: Value,
}

/// One entry of a Matrix room's current state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FederationStateEntry {
    pub event_type: String,
    pub state_key: String,
    pub event_id: String,
}

/// This server's ed25519 signing key for Matrix federation: a PKCS#8 document (base64) under a
/// key id. A private key cannot be hashed, so it is kept apart from every record that is
/// rendered, and `Debug` never shows it.
#[derive(Clone, PartialEq)]
pub struct FederationSigningKey {
    /// `ed25519:<version>`.
    pub key_id: String,
    /// Standard base64 of the PKCS#8 v2 DER document.
    pub pkcs8: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for FederationSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationSigningKey")
            .field("key_id", &self.key_id)
            .field("pkcs8", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A remote server's public signing key, as fetched from it, usable until `valid_until`
/// (its `valid_until_ts`, or `expired_ts` for an old key).
#[derive(Debug, Clone, PartialEq)]
pub struct FederationServerKey {
    pub server_name: String,
    /// `ed25519:<version>`.
    pub key_id: String,
    /// Unpadded standard base64, as published.
    pub public_key: String,
    pub valid_until: Timestamp,
    pub fetched_at: Timestamp,
}

/// A queued side effect: `kind` names the worker that delivers `payload`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: String,
    pub kind: String,
    /// Items of one queue (e.g. `federation:<server>`) are delivered one at a time, oldest
    /// first: a newer item is not due while an older one of its queue is pending or in flight.
    pub queue: Option<String>,
    pub payload: Value,
    pub created_at: Timestamp,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// One outbox queue as operators see it (e.g. a federation destination).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutboxQueueHealth {
    pub queue: String,
    /// Items waiting (in flight included, given-up ones not).
    pub length: i64,
    /// When the oldest waiting item was queued.
    pub oldest_pending_at: Option<Timestamp>,
    /// When the next attempt may start (while one is in flight: when its lease ends).
    pub next_attempt_at: Option<Timestamp>,
    /// Whether a node holds the oldest item's lease right now.
    pub in_flight: bool,
    /// Failed attempts at the oldest waiting item.
    pub attempts: i64,
    pub last_success_at: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    /// Why the last failed attempt failed (redacted by whoever recorded it).
    pub last_error: Option<String>,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Case-insensitive, any of the user's addresses.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>>;
    async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>>;
    async fn login_token(&self, hashed: &str) -> StoreResult<Option<LoginToken>>;
    async fn personal_tokens(&self, user_id: &str) -> StoreResult<Vec<LoginToken>>;
    /// The user's second-factor secrets with their stored revision.
    async fn two_factor(&self, user_id: &str) -> StoreResult<Option<TwoFactorSecrets>>;
    /// The user's record as an encrypted participant (bot), if it is one.
    async fn e2e_bot(&self, user_id: &str) -> StoreResult<Option<E2eBot>>;
    /// Users ordered by username.
    async fn list_users(&self, query: &UserQuery, page: Page) -> StoreResult<(Vec<User>, i64)>;
    async fn count_users_with_role(&self, role: &str) -> StoreResult<i64>;
}

/// Login sessions, password history and resets.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// A login session by its public id (personal access tokens have none).
    async fn login_session(&self, session_id: &str) -> StoreResult<Option<LoginToken>>;
    /// A page of login sessions (never personal access tokens) with the total matching.
    async fn login_sessions(
        &self,
        query: &SessionQuery,
        page: Page,
    ) -> StoreResult<(Vec<LoginToken>, i64)>;
    /// Every login session of the user.
    async fn session_tokens(&self, user_id: &str) -> StoreResult<Vec<LoginToken>>;
    /// When a person last set the user's password.
    async fn password_changed_at(&self, user_id: &str) -> StoreResult<Option<Timestamp>>;
    /// The newest `limit` password hashes the user has had, newest first.
    async fn password_history(&self, user_id: &str, limit: i64) -> StoreResult<Vec<String>>;
    async fn password_reset(&self, hashed: &str) -> StoreResult<Option<PasswordReset>>;
}

#[async_trait]
pub trait RoomStore: Send + Sync {
    /// The room with its current message sequence.
    async fn room_by_id(&self, id: &str) -> StoreResult<Option<Room>>;
    /// Case-sensitive, as Rocket.Chat's room names.
    async fn room_by_name(&self, name: &str) -> StoreResult<Option<Room>>;
    async fn rooms_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Room>>;
    /// Rooms ordered by name.
    async fn list_rooms(&self, query: &RoomQuery, page: Page) -> StoreResult<(Vec<Room>, i64)>;
    /// Rooms marked `default` (joined by new users).
    async fn default_rooms(&self) -> StoreResult<Vec<Room>>;
    async fn deleted_rooms_since(
        &self,
        ids: &[String],
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>>;
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// The subscription with `unread` derived from the room sequence.
    async fn subscription(&self, rid: &str, user_id: &str) -> StoreResult<Option<Subscription>>;
    async fn subscriptions_of_user(&self, user_id: &str) -> StoreResult<Vec<Subscription>>;
    /// The subscriptions to `rid` of those of `user_ids` who are members, in one read (realtime
    /// fan-out asks this once per event, not once per recipient).
    async fn subscriptions_in_room(
        &self,
        rid: &str,
        user_ids: &[String],
    ) -> StoreResult<Vec<Subscription>>;
    /// Members of a room ordered by username.
    async fn subscriptions_of_room(
        &self,
        rid: &str,
        page: Page,
    ) -> StoreResult<(Vec<Subscription>, i64)>;
    /// Members of `rid` whose subscription holds no room key (`E2EKey`), ordered by username, at
    /// most `limit` (`e2e.getUsersOfRoomWithoutKey`).
    async fn subscriptions_without_e2e_key(
        &self,
        rid: &str,
        limit: i64,
    ) -> StoreResult<Vec<Subscription>>;
    /// Subscription ids of the user removed after `since`.
    /// Rooms the user stopped being a member of after `since` (left, kicked, room deleted).
    async fn left_rooms_since(
        &self,
        user_id: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>>;
    async fn deleted_subscriptions_since(
        &self,
        user_id: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    async fn message_by_id(&self, id: &str) -> StoreResult<Option<Message>>;
    /// Messages of a room by keyset on `(ts, _id)`; returns the page and, when
    /// `with_total`, the number matching (else 0).
    async fn history(&self, rid: &str, query: &HistoryQuery) -> StoreResult<(Vec<Message>, i64)>;
    /// Up to `limit` messages of a room updated after `since`, ordered by `(_updatedAt, _id)`.
    /// With `after_id` (the keyset of a previous page), messages updated in `since`'s own
    /// millisecond whose id sorts after it are included too.
    async fn messages_updated_since(
        &self,
        rid: &str,
        since: Timestamp,
        after_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    async fn deleted_messages_since(
        &self,
        rid: &str,
        since: Timestamp,
    ) -> StoreResult<Vec<Tombstone>>;
}

#[async_trait]
pub trait SettingStore: Send + Sync {
    async fn settings(&self) -> StoreResult<Vec<(String, Value)>>;
}

#[async_trait]
pub trait AuthzStore: Send + Sync {
    async fn permissions(&self) -> StoreResult<Vec<(String, Vec<String>)>>;
    async fn roles(&self) -> StoreResult<Vec<Role>>;
}

pub use crate::e2e_bots::E2eBot;
pub use crate::e2e_recovery::{
    RecoveryApproval, RecoveryEnrolment, RecoveryOfficerKey, RecoveryPolicy, RecoveryRequest,
};
pub use crate::emoji::CustomEmoji;
pub use crate::files::Upload;
pub use crate::integrations::{Integration, IntegrationQuery};
pub use crate::invites::Invite;
pub use crate::moderation::{ModerationReport, ReportKind, ReportQuery, ReportSummary};
pub use crate::sounds::CustomSound;
pub use crate::teams::{Team, TeamMember};
pub use crate::two_factor::{EmailCode, TwoFactorSecrets};
pub use crate::user_status::CustomUserStatus;

#[async_trait]
pub trait TeamStore: Send + Sync {
    async fn team_by_id(&self, id: &str) -> StoreResult<Option<Team>>;
    /// Case-sensitive, as room names.
    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>>;
    /// Teams ordered by name; only those `member` belongs to when given.
    async fn list_teams(&self, member: Option<&str>, page: Page) -> StoreResult<(Vec<Team>, i64)>;
    async fn team_member(&self, team_id: &str, user_id: &str) -> StoreResult<Option<TeamMember>>;
    /// Memberships ordered by creation.
    async fn team_members(&self, team_id: &str) -> StoreResult<Vec<TeamMember>>;
    /// Rooms of the team other than its main room, ordered by name.
    async fn team_rooms(&self, team_id: &str) -> StoreResult<Vec<Room>>;
    /// Discussions (rooms with `prid`) of a room.
    async fn discussion_rooms(&self, prid: &str) -> StoreResult<Vec<Room>>;
    /// `discussion-created` messages of a room (those with `drid`), newest first.
    async fn discussion_messages(
        &self,
        rid: &str,
        text: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<Message>, i64)>;
}

#[async_trait]
pub trait InviteStore: Send + Sync {
    async fn invite_by_id(&self, id: &str) -> StoreResult<Option<Invite>>;
    /// All invites, oldest first.
    async fn invites(&self) -> StoreResult<Vec<Invite>>;
}

#[async_trait]
pub trait UserStatusStore: Send + Sync {
    /// Custom statuses ordered by name; `name_contains` is case-insensitive.
    async fn custom_user_statuses(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<CustomUserStatus>, i64)>;
    async fn custom_user_status_by_id(&self, id: &str) -> StoreResult<Option<CustomUserStatus>>;
    /// Case-insensitive.
    async fn custom_user_status_by_name(&self, name: &str)
    -> StoreResult<Option<CustomUserStatus>>;
}

#[async_trait]
pub trait SoundStore: Send + Sync {
    /// Sounds ordered by name; `name_contains` is case-insensitive.
    async fn custom_sounds(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<CustomSound>, i64)>;
    async fn custom_sound_by_id(&self, id: &str) -> StoreResult<Option<CustomSound>>;
    async fn custom_sound_by_name(&self, name: &str) -> StoreResult<Option<CustomSound>>;
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    async fn integration_by_id(&self, id: &str) -> StoreResult<Option<Integration>>;
    /// The outgoing integration calling `url`.
    async fn outgoing_integration_by_url(&self, url: &str) -> StoreResult<Option<Integration>>;
    /// Integrations matching `query`, newest first, with the total matching.
    async fn integrations(
        &self,
        query: &IntegrationQuery,
        page: Page,
    ) -> StoreResult<(Vec<Integration>, i64)>;
    /// Delivery records of an integration, newest first, with their total.
    async fn integration_history(
        &self,
        integration_id: &str,
        page: Page,
    ) -> StoreResult<(Vec<Value>, i64)>;
}

#[async_trait]
pub trait ModerationStore: Send + Sync {
    async fn moderation_report_by_id(&self, id: &str) -> StoreResult<Option<ModerationReport>>;
    /// Open (not dismissed) reports matching `query`, newest first, with the total matching.
    async fn moderation_reports(
        &self,
        query: &ReportQuery,
        page: Page,
    ) -> StoreResult<(Vec<ModerationReport>, i64)>;
    /// Open reports of `kind` summed up per reported user (message author or reported user),
    /// the most recently reported first, with the number of such users.
    async fn moderation_report_summaries(
        &self,
        kind: ReportKind,
        text: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<ReportSummary>, i64)>;
}

#[async_trait]
pub trait EmojiStore: Send + Sync {
    async fn custom_emoji_by_id(&self, id: &str) -> StoreResult<Option<CustomEmoji>>;
    /// The emoji with this name or alias.
    async fn custom_emoji_by_name_or_alias(&self, name: &str) -> StoreResult<Option<CustomEmoji>>;
    /// Emoji ordered by name; `name_contains` is case-insensitive.
    async fn custom_emoji(
        &self,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<CustomEmoji>, i64)>;
    /// All emoji (no `since`), or those changed after `since` and the ids removed after it.
    async fn custom_emoji_changed_since(
        &self,
        since: Option<Timestamp>,
    ) -> StoreResult<(Vec<CustomEmoji>, Vec<Tombstone>)>;
}

#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn upload_by_id(&self, id: &str) -> StoreResult<Option<Upload>>;
    /// Uploads of a room, newest first; `name_contains` is case-insensitive.
    async fn uploads_of_room(
        &self,
        rid: &str,
        name_contains: Option<&str>,
        page: Page,
    ) -> StoreResult<(Vec<Upload>, i64)>;
    /// Uploads never posted as a message and created before `before`, oldest first.
    async fn unconfirmed_uploads(&self, before: Timestamp, limit: i64) -> StoreResult<Vec<Upload>>;
}

#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Every node's presence for the user: `(node, status)`, status `online` or `away`.
    async fn presence_of(&self, user_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Nodes last seen before `before`.
    async fn stale_nodes(&self, before: Timestamp) -> StoreResult<Vec<String>>;
    /// Users a node has presence rows for.
    async fn users_on_node(&self, node: &str) -> StoreResult<Vec<String>>;
}

/// An audit entry in its place in the chain: `doc` is the stored JSON exactly as hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub doc: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A window of the audit log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditQuery {
    /// Events named this or starting with `this.`.
    pub event: Option<String>,
    pub actor_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Keyset bounds on the entry number.
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    /// Oldest first (export, verification) instead of newest first.
    pub ascending: bool,
    pub limit: i64,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
    /// The number and hash of the last entry written (0 and the genesis hash when none).
    async fn audit_head(&self) -> StoreResult<(i64, String)>;
    /// How far the export to `sink` got (0: nothing shipped yet).
    async fn audit_exported(&self, sink: &str) -> StoreResult<i64>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` items due at `now`, oldest due first.
    async fn due_outbox(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<OutboxItem>>;
    /// The items `node` holds a lease on until `until` (what a [`Change::LeaseOutbox`] won).
    async fn leased_outbox(&self, node: &str, until: Timestamp) -> StoreResult<Vec<OutboxItem>>;
    /// Items given up on, newest first (for operators).
    async fn failed_outbox(&self, limit: i64) -> StoreResult<Vec<OutboxItem>>;
    /// The first `limit` items of `queue` not given up, in delivery order (oldest first).
    async fn queued_outbox(&self, queue: &str, limit: i64) -> StoreResult<Vec<OutboxItem>>;
    /// The health of every queue whose name starts with `prefix` that has pending items or a
    /// recorded attempt, sorted by queue name.
    async fn outbox_queue_health(&self, prefix: &str) -> StoreResult<Vec<OutboxQueueHealth>>;
}

#[async_trait]
pub trait FederationStore: Send + Sync {
    /// This server's current signing key, if one was made.
    async fn federation_signing_key(&self) -> StoreResult<Option<FederationSigningKey>>;
    /// What is known of `server_name`'s public keys, expired ones included.
    async fn federation_server_keys(
        &self,
        server_name: &str,
    ) -> StoreResult<Vec<FederationServerKey>>;
    /// The Matrix room a Rocket.Chat room is, if it is federated.
    async fn federated_room(&self, rid: &str) -> StoreResult<Option<FederatedRoom>>;
    /// The Rocket.Chat room a Matrix room is mapped to.
    async fn federated_room_by_matrix_id(
        &self,
        matrix_room_id: &str,
    ) -> StoreResult<Option<FederatedRoom>>;
    /// A stored PDU by event id.
    async fn federation_event(&self, event_id: &str) -> StoreResult<Option<FederationEvent>>;
    /// A Matrix room's current state, ordered by type and state key.
    async fn federation_room_state(
        &self,
        matrix_room_id: &str,
    ) -> StoreResult<Vec<FederationStateEntry>>;
    /// A Matrix room's forward extremities (the events a new event points back to), sorted.
    async fn federation_extremities(&self, matrix_room_id: &str) -> StoreResult<Vec<String>>;
    /// The room's oldest events in the timeline (kinds `timeline` and `backfilled`), by depth
    /// then event id, at most `limit`: where backfilling goes on from.
    async fn federation_oldest_events(
        &self,
        matrix_room_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<FederationEvent>>;
    /// The snapshot id of the room state before `event_id`, if it was recorded (timeline
    /// events; not outliers).
    async fn federation_event_snapshot(&self, event_id: &str) -> StoreResult<Option<String>>;
    /// The entries of a state snapshot, ordered by type and state key (empty if unknown).
    async fn federation_state_snapshot(
        &self,
        snapshot_id: &str,
    ) -> StoreResult<Vec<FederationStateEntry>>;
}

/// E2EE key recovery (`e2e_recovery.rs`).
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// The newest policy version, if one was ever set.
    async fn recovery_policy(&self) -> StoreResult<Option<RecoveryPolicy>>;
    /// Every officer key published (officers of older policies included).
    async fn recovery_officer_keys(&self) -> StoreResult<Vec<RecoveryOfficerKey>>;
    async fn recovery_enrolment(&self, user_id: &str) -> StoreResult<Option<RecoveryEnrolment>>;
    async fn recovery_request(&self, id: &str) -> StoreResult<Option<RecoveryRequest>>;
    /// Requests still `pending` (expired ones included), oldest first; only `user_id`'s when given.
    async fn pending_recovery_requests(
        &self,
        user_id: Option<&str>,
    ) -> StoreResult<Vec<RecoveryRequest>>;
    /// A request's approvals, oldest first.
    async fn recovery_approvals(&self, request_id: &str) -> StoreResult<Vec<RecoveryApproval>>;
}

#[async_trait]
pub trait Writer: Send + Sync {
    /// Applies all changes in one transaction and returns once they are durable.
    async fn commit(&self, changes: Vec<Change>) -> StoreResult<()>;
}

/// Everything a backend provides.
pub trait Store:
    UserStore
    + CredentialStore
    + RoomStore
    + SubscriptionStore
    + MessageStore
    + SettingStore
    + AuthzStore
    + TeamStore
    + InviteStore
    + UserStatusStore
    + SoundStore
    + IntegrationStore
    + ModerationStore
    + EmojiStore
    + UploadStore
    + PresenceStore
    + OutboxStore
    + AuditStore
    + FederationStore
    + RecoveryStore
    + Writer
{
}

impl<T> Store for T where
    T: UserStore
        + CredentialStore
        + RoomStore
        + SubscriptionStore
        + MessageStore
        + SettingStore
        + AuthzStore
        + TeamStore
        + InviteStore
        + UserStatusStore
        + SoundStore
        + IntegrationStore
        + ModerationStore
        + EmojiStore
        + UploadStore
        + PresenceStore
        + OutboxStore
        + AuditStore
        + FederationStore
        + RecoveryStore
        + Writer
{
}
