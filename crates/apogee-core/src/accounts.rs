//! Accounts: registration, login and sessions, user administration, presence status.

use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::lockout::Blocked;
use crate::passwords::{Verified, digest, hash_token, new_token};
use crate::store::{Change, ClientInfo, LoginToken, Page, UserQuery};
use crate::two_factor::SecondFactorProof;
use crate::{Core, InitialAdmin};
use apogee_domain::user::{Email, is_valid_email, is_valid_username, status_code};
use apogee_domain::{RoomType, Timestamp, User, random_id};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

/// An authenticated caller: the user and the hash of the token they presented.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub token_hash: String,
}

/// How a client proves who it is at login.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A username or e-mail and the sha256-hex digest of the password.
    Password {
        identifier: Identifier,
        digest: String,
    },
    /// A token from an earlier login.
    Resume { token: String },
}

#[derive(Debug, Clone)]
pub enum Identifier {
    Username(String),
    Email(String),
    /// Rocket.Chat's `user` field: an e-mail if it looks like one, else a username.
    Either(String),
}

/// Where a login comes from: the address (failed-login blocks, device management) and the
/// `User-Agent` (device management).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub addr: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    pub(crate) fn info(&self) -> ClientInfo {
        ClientInfo {
            ip: self.addr.map(|a| a.to_string()),
            // A header is client-controlled: keep a bounded, printable prefix.
            user_agent: self.user_agent.as_ref().map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(512)
                    .collect::<String>()
            }),
        }
    }
}

impl Identifier {
    /// What the client typed.
    pub fn text(&self) -> &str {
        match self {
            Identifier::Username(s) | Identifier::Email(s) | Identifier::Either(s) => s,
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub user: User,
    pub token: String,
    pub token_expires: Timestamp,
}

/// Fields for a new user, from registration or an administrator.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
    pub verified: bool,
    pub join_default_channels: bool,
    pub require_password_change: bool,
    pub custom_fields: Option<Value>,
}

/// An administrator's changes to a user; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
    pub verified: Option<bool>,
    pub require_password_change: Option<bool>,
    pub status_text: Option<String>,
    pub bio: Option<String>,
    pub nickname: Option<String>,
    pub custom_fields: Option<Value>,
    /// For a user changing their own password: the session (token hash) that stays logged in.
    pub keep_session: Option<String>,
}

fn login_failed(code: &str, message: &str) -> CoreError {
    CoreError::new(ErrorKind::Unauthenticated, code, message)
}

impl Core {
    /// Resolves `X-User-Id` / `X-Auth-Token` to a session.
    /// The token and the user come from the session cache when it has them (see
    /// `session_cache.rs` for how it stays current).
    pub async fn authenticate(&self, user_id: &str, token: &str) -> CoreResult<Session> {
        let token_hash = hash_token(token);
        let cache = &self.sessions;
        let stored = match cache.token(&token_hash) {
            Some(stored) => stored,
            None => {
                let generation = cache.generation();
                let stored = self
                    .store
                    .login_token(&token_hash)
                    .await?
                    .ok_or_else(CoreError::unauthenticated)?;
                cache.remember_token(generation, &stored);
                stored
            }
        };
        if stored.user_id != user_id || !self.token_is_live(&stored) {
            return Err(CoreError::unauthenticated());
        }
        let user = match cache.user(user_id) {
            Some(user) => user,
            None => {
                let generation = cache.generation();
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .ok_or_else(CoreError::unauthenticated)?;
                cache.remember_user(generation, &user);
                user
            }
        };
        if !user.active {
            return Err(CoreError::unauthenticated());
        }
        Ok(Session { user, token_hash })
    }

    /// Logs in with a password or a resume token; a password login issues a new session token.
    /// Password logins are audited, either way.
    pub async fn login(
        &self,
        credentials: Credentials,
        client: &Client,
    ) -> CoreResult<LoginResult> {
        self.login_with_code(credentials, None, client).await
    }

    /// [`Core::login`] with the second factor the client sent (`code`, `totp.code`). A password
    /// login of a user with TOTP or e-mail codes on needs it: without one the answer is
    /// `totp-required` (an e-mail code is sent then), with a wrong one `totp-invalid`, both
    /// with Rocket.Chat's details. Resume logins carry no second factor, as in Rocket.Chat.
    pub async fn login_with_code(
        &self,
        credentials: Credentials,
        second_factor: Option<SecondFactorProof>,
        client: &Client,
    ) -> CoreResult<LoginResult> {
        let from = client.addr;
        let attempted = match &credentials {
            Credentials::Password { identifier, .. } => Some(identifier.text().to_string()),
            Credentials::Resume { .. } => None,
        };
        let outcome = self.check_login(credentials, second_factor, client).await;
        // A successful password login is audited in its own batch (`check_login`).
        if let (Some(name), Err(e)) = (attempted, &outcome) {
            self.audit_login_failed(&name, from, e).await;
        }
        outcome
    }

    async fn check_login(
        &self,
        credentials: Credentials,
        second_factor: Option<SecondFactorProof>,
        client: &Client,
    ) -> CoreResult<LoginResult> {
        let from = client.addr;
        let user = match credentials {
            Credentials::Resume { token } => {
                let stored = self
                    .store
                    .login_token(&hash_token(&token))
                    .await?
                    .filter(|t| self.token_is_live(t))
                    .ok_or_else(|| {
                        login_failed(
                            "403",
                            "You've been logged out by the server. Please log in again.",
                        )
                    })?;
                let user = self
                    .store
                    .user_by_id(&stored.user_id)
                    .await?
                    .ok_or_else(CoreError::unauthenticated)?;
                // A resume keeps the presented token rather than minting a second one.
                return self
                    .finish_login(user, token, stored.expires_at, None)
                    .await;
            }
            Credentials::Password { identifier, digest } => {
                let guard = &self.lockout;
                self.refuse_if_blocked(None, from)?;
                let Some(user) = self.find_login_user(&identifier).await? else {
                    guard.failed(&self.settings, None, from);
                    return Err(login_failed("", "Unauthorized"));
                };
                if let Err(refused) = self.refuse_if_blocked(Some(&user.id), from) {
                    // A refused attempt is a failed one for the address (as in Rocket.Chat,
                    // which records every failed login): hammering one blocked account still
                    // gets the address blocked. The user's block is not extended by it.
                    guard.failed(&self.settings, None, from);
                    return Err(refused);
                }
                let stored = self
                    .store
                    .password_hash(&user.id)
                    .await?
                    .ok_or_else(|| login_failed("403", "Incorrect password"))?;
                match self.hasher.verify(digest, stored).await {
                    Verified::No => {
                        guard.failed(&self.settings, Some(&user.id), from);
                        return Err(login_failed("403", "Incorrect password"));
                    }
                    Verified::Yes => {}
                    Verified::YesRehash(hash) => {
                        self.commit(vec![Change::SetPasswordHash {
                            user_id: user.id.clone(),
                            hash: Some(hash),
                        }])
                        .await?;
                    }
                }
                guard.succeeded(&user.id, from);
                self.expire_password_if_due(user).await?
            }
        };
        if !user.active {
            return Err(login_failed(
                "error-user-is-not-activated",
                "User is not activated",
            ));
        }
        self.login_second_factor(&user, second_factor.as_ref())
            .await
            .map_err(|mut e| {
                if e.kind == ErrorKind::BadRequest {
                    e.kind = ErrorKind::Unauthenticated;
                }
                e
            })?;
        // The audit entry of a successful password login goes into the login's own batch: one
        // commit per login, not two.
        let audit = self.audit_from("login", Some(&user), from, serde_json::json!({}));
        self.finish_login_with(user, new_token(), None, Some(client.info()), [audit])
            .await
    }

    /// Rocket.Chat's `error-login-blocked-for-ip` / `-for-user` after too many failures.
    fn refuse_if_blocked(&self, user_id: Option<&str>, from: Option<IpAddr>) -> CoreResult<()> {
        match self.lockout.check(&self.settings, user_id, from) {
            None => Ok(()),
            Some(Blocked::Ip) => Err(login_failed(
                "error-login-blocked-for-ip",
                "Login has been temporarily blocked For IP",
            )),
            Some(Blocked::User) => Err(login_failed(
                "error-login-blocked-for-user",
                "Login has been temporarily blocked For User",
            )),
        }
    }

    /// Records the login: a new session token from `client`, or (`client` is `None`) a resume
    /// of the presented one, which notes the session's last activity.
    pub(crate) async fn finish_login(
        &self,
        user: User,
        token: String,
        expires: Option<Timestamp>,
        client: Option<ClientInfo>,
    ) -> CoreResult<LoginResult> {
        self.finish_login_with(user, token, expires, client, Vec::new())
            .await
    }

    /// [`Core::finish_login`] committing `more` changes in the same batch.
    async fn finish_login_with(
        &self,
        mut user: User,
        token: String,
        expires: Option<Timestamp>,
        client: Option<ClientInfo>,
        more: impl IntoIterator<Item = Change>,
    ) -> CoreResult<LoginResult> {
        if !user.active {
            return Err(login_failed(
                "error-user-is-not-activated",
                "User is not activated",
            ));
        }
        let now = Timestamp::now();
        let token_expires = expires
            .unwrap_or_else(|| now.plus_days(self.settings.int("Accounts_LoginExpiration").max(1)));
        // Re-read under the user's lock: a presence change may have landed since the login began.
        let _guard = self.lock_user(&user.id).await;
        if let Some(fresh) = self.store.user_by_id(&user.id).await? {
            user = fresh;
        }
        user.last_login = Some(now);
        let mut changes = vec![Change::UpdateUser(user.clone())];
        let token_expires = match client {
            Some(client) => {
                let (login, expires) = self.session_token(&user.id, &token, client);
                changes.push(login);
                expires
            }
            None => {
                changes.push(Change::TouchLoginToken {
                    hashed: hash_token(&token),
                    at: now,
                });
                token_expires
            }
        };
        changes.extend(more);
        self.commit(changes).await?;
        Ok(LoginResult {
            user,
            token,
            token_expires,
        })
    }

    /// A new login session for `token` from `client`, and when it expires.
    pub(crate) fn session_token(
        &self,
        user_id: &str,
        token: &str,
        client: ClientInfo,
    ) -> (Change, Timestamp) {
        let now = Timestamp::now();
        let expires = now.plus_days(self.settings.int("Accounts_LoginExpiration").max(1));
        let login = Change::InsertLoginToken(LoginToken {
            hashed: hash_token(token),
            user_id: user_id.to_string(),
            created_at: now,
            expires_at: Some(expires),
            name: None,
            bypass_two_factor: false,
            session_id: Some(random_id()),
            last_token_part: None,
            client,
            last_active_at: Some(now),
        });
        (login, expires)
    }

    async fn find_login_user(&self, identifier: &Identifier) -> CoreResult<Option<User>> {
        Ok(match identifier {
            Identifier::Username(u) => self.store.user_by_username(u).await?,
            Identifier::Email(e) => self.store.user_by_email(e).await?,
            Identifier::Either(s) if s.contains('@') => match self.store.user_by_email(s).await? {
                Some(u) => Some(u),
                None => self.store.user_by_username(s).await?,
            },
            Identifier::Either(s) => self.store.user_by_username(s).await?,
        })
    }

    /// Ends the session the token belongs to.
    pub async fn logout(&self, session: &Session) -> CoreResult<()> {
        // The change announces `SessionsEnded` for this token: its connections close.
        self.commit(vec![
            Change::DeleteLoginToken {
                user_id: session.user.id.clone(),
                hashed: session.token_hash.clone(),
            },
            self.audit("logout", Some(&session.user), json!({})),
        ])
        .await
    }

    /// Public self-registration (`users.register`). The first user becomes admin when none exists.
    pub async fn register(&self, new: NewUser) -> CoreResult<User> {
        if self.settings.string("Accounts_RegistrationForm") == "Disabled" {
            return Err(CoreError::bad(
                "error-user-registration-disabled",
                "User registration is disabled",
            ));
        }
        let first_admin = self.store.count_users_with_role("admin").await? == 0;
        let roles = if first_admin {
            vec!["admin".into(), "user".into()]
        } else {
            vec!["user".into()]
        };
        let new = NewUser {
            roles: Some(roles),
            join_default_channels: true,
            ..new
        };
        self.insert_user(new, None, true).await
    }

    /// `users.create`: an administrator adds a user. Needs `create-user`.
    pub async fn create_user(&self, actor: &User, new: NewUser) -> CoreResult<User> {
        self.authz.require(actor, "create-user", None)?;
        if new
            .roles
            .as_ref()
            .is_some_and(|r| r.iter().any(|r| r == "admin"))
        {
            self.authz.require(actor, "assign-admin-role", None)?;
        }
        self.insert_user(new, Some(actor), true).await
    }

    /// Creates the user; `actor` is who did it (none: self-registration or the operator);
    /// `check_policy` applies the password policy (not to the operator's users).
    async fn insert_user(
        &self,
        new: NewUser,
        actor: Option<&User>,
        check_policy: bool,
    ) -> CoreResult<User> {
        let username = new.username.trim().to_string();
        if !is_valid_username(&username) {
            return Err(CoreError::bad(
                "error-invalid-username",
                format!("{username} is not a valid username"),
            ));
        }
        if self.store.user_by_username(&username).await?.is_some() {
            return Err(CoreError::bad(
                "error-field-unavailable",
                format!("{username} is already in use :("),
            ));
        }
        let email = new.email.map(|e| e.trim().to_string());
        if let Some(email) = &email {
            if !is_valid_email(email) {
                return Err(CoreError::bad(
                    "error-invalid-email",
                    format!("Invalid email {email}"),
                ));
            }
            if self.store.user_by_email(email).await?.is_some() {
                return Err(CoreError::bad(
                    "error-field-unavailable",
                    format!("{email} is already in use :("),
                ));
            }
        }
        let password = new.password.as_deref().filter(|p| !p.is_empty());
        if let (Some(p), true) = (password, check_policy) {
            self.check_password_policy(p)?;
        }
        let roles = new.roles.unwrap_or_else(|| vec!["user".into()]);
        let kind = if roles.iter().any(|r| r == "bot") {
            "bot"
        } else {
            "user"
        };
        let mut user = User::new(
            random_id(),
            username,
            new.name.filter(|n| !n.trim().is_empty()),
            kind,
            roles,
        );
        user.active = new.active.unwrap_or(true);
        user.emails = email
            .map(|address| {
                vec![Email {
                    address,
                    verified: new.verified,
                }]
            })
            .unwrap_or_default();
        if new.require_password_change {
            user.require_password_change = Some(true);
        }
        let password_hash = match password {
            Some(p) => Some(self.hasher.hash(digest(p)).await),
            None => None,
        };
        if let Some(Value::Object(fields)) = new.custom_fields {
            user.extra
                .insert("customFields".into(), Value::Object(fields));
        }
        let details = json!({"userId": user.id, "username": user.username, "roles": user.roles});
        let mut changes = vec![
            Change::InsertUser {
                user: user.clone(),
                password_hash: None,
            },
            self.audit("user.created", actor, details),
        ];
        if let Some(hash) = password_hash {
            changes.push(self.password_changed(&user.id, hash));
        }
        if new.join_default_channels {
            for room in self.store.default_rooms().await? {
                changes.extend(self.join_changes(room, &user, None, true));
            }
        }
        self.commit(changes).await?;
        Ok(user)
    }

    /// Creates the `ADMIN_USERNAME` admin unless a user by that name exists.
    pub(crate) async fn ensure_initial_admin(&self, admin: &InitialAdmin) -> CoreResult<()> {
        if self
            .store
            .user_by_username(&admin.username)
            .await?
            .is_some()
        {
            return Ok(());
        }
        self.insert_user(
            NewUser {
                username: admin.username.clone(),
                email: admin.email.clone(),
                password: Some(admin.password.clone()),
                name: Some(admin.username.clone()),
                roles: Some(vec!["admin".into(), "user".into()]),
                verified: true,
                join_default_channels: true,
                ..NewUser::default()
            },
            None,
            false,
        )
        .await?;
        tracing::info!(username = %admin.username, "created the initial admin");
        Ok(())
    }

    /// Finds a user by id or username, for `users.info` and friends.
    pub async fn find_user(&self, id: Option<&str>, username: Option<&str>) -> CoreResult<User> {
        let found = match (id, username) {
            (Some(id), _) => self.store.user_by_id(id).await?,
            (None, Some(name)) => self.store.user_by_username(name).await?,
            (None, None) => None,
        };
        found.ok_or_else(|| CoreError::bad("", "User not found."))
    }

    /// `users.update`: an administrator (or the user, for their own profile) changes a user.
    pub async fn update_user(
        &self,
        actor: &User,
        user_id: &str,
        patch: UserPatch,
    ) -> CoreResult<User> {
        let mut user = self.find_user(Some(user_id), None).await?;
        let before = user.clone();
        let password_changed = patch.password.as_ref().is_some_and(|p| !p.is_empty());
        if actor.id != user.id {
            self.authz.require(actor, "edit-other-user-info", None)?;
        }
        if patch.roles.is_some() || patch.active.is_some() {
            self.authz.require(actor, "edit-other-user-info", None)?;
        }
        if patch.password.is_some() && actor.id != user.id {
            self.authz
                .require(actor, "edit-other-user-password", None)?;
        }
        let mut changes = Vec::new();
        if let Some(username) = patch.username.filter(|u| *u != user.username) {
            if !is_valid_username(&username) {
                return Err(CoreError::bad(
                    "error-invalid-username",
                    format!("{username} is not a valid username"),
                ));
            }
            if self
                .store
                .user_by_username(&username)
                .await?
                .is_some_and(|u| u.id != user.id)
            {
                return Err(CoreError::bad(
                    "error-field-unavailable",
                    format!("{username} is already in use :("),
                ));
            }
            user.username = username;
        }
        if let Some(email) = patch.email {
            if !is_valid_email(&email) {
                return Err(CoreError::bad(
                    "error-invalid-email",
                    format!("Invalid email {email}"),
                ));
            }
            if self
                .store
                .user_by_email(&email)
                .await?
                .is_some_and(|u| u.id != user.id)
            {
                return Err(CoreError::bad(
                    "error-field-unavailable",
                    format!("{email} is already in use :("),
                ));
            }
            user.emails = vec![Email {
                address: email,
                verified: patch.verified.unwrap_or(false),
            }];
        } else if let (Some(v), Some(e)) = (patch.verified, user.emails.first_mut()) {
            e.verified = v;
        }
        if let Some(name) = patch.name {
            user.name = Some(name);
        }
        if let Some(roles) = patch.roles {
            user.roles = roles;
        }
        if let Some(active) = patch.active {
            user.active = active;
            if !active {
                changes.push(Change::DeleteSessionTokens {
                    user_id: user.id.clone(),
                });
            }
        }
        if let Some(r) = patch.require_password_change {
            user.require_password_change = Some(r);
            if !r {
                user.extra.remove("requirePasswordChangeReason");
            }
        }
        if let Some(text) = patch.status_text {
            user.status_text = text;
        }
        for (key, value) in [("bio", patch.bio), ("nickname", patch.nickname)] {
            if let Some(v) = value {
                user.extra.insert(key.into(), Value::String(v));
            }
        }
        if let Some(fields) = patch.custom_fields {
            user.extra.insert("customFields".into(), fields);
        }
        if let Some(p) = patch.password.filter(|p| !p.trim().is_empty()) {
            // Policy and history first: a refused password changes nothing else either.
            changes.push(self.new_password(&user.id, &p).await?);
            if actor.id == user.id {
                // One's own new password: the other sessions end, this one stays.
                changes.extend(
                    self.end_sessions_except(&user.id, patch.keep_session.as_deref())
                        .await?,
                );
            } else {
                // Set by an administrator: every session of the user ends.
                changes.push(Change::DeleteSessionTokens {
                    user_id: user.id.clone(),
                });
            }
            if patch.require_password_change.is_none() {
                user.require_password_change = None;
                user.extra.remove("requirePasswordChangeReason");
            }
        }
        user.updated_at = Timestamp::now();
        changes.extend(self.user_update_audits(actor, &before, &user, password_changed));
        if user.active != before.active {
            // A deactivated user leaves every federated room; activated again, they rejoin
            // the public ones.
            if user.active {
                changes.extend(self.federated_return(&user).await?);
            } else {
                changes.extend(self.federated_departure(&before).await?);
            }
        } else if user.name != before.name {
            // Federated rooms learn the new display name from a member event.
            changes.extend(self.federated_profile_changes(&user).await?);
        }
        changes.insert(0, Change::UpdateUser(user.clone()));
        self.commit(changes).await?;
        Ok(user)
    }

    /// `users.delete`. Needs `delete-user`; the last admin cannot be removed. A user who is the
    /// only owner of a room with other members is removed only with `confirm_relinquish`
    /// (`user-last-owner` otherwise, with those rooms in `details`); the room then passes to its
    /// oldest other active member. Rooms nobody else is in are deleted with the user. (Rocket.Chat
    /// also asks for confirmation before deleting those; the rocketchat-API suite deletes such
    /// users without it and expects success, so only a change of hands needs confirming.)
    pub async fn delete_user(
        &self,
        actor: &User,
        user_id: &str,
        confirm_relinquish: bool,
    ) -> CoreResult<()> {
        self.authz.require(actor, "delete-user", None)?;
        let user = self.find_user(Some(user_id), None).await?;
        if user.has_role("admin") && self.store.count_users_with_role("admin").await? <= 1 {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Leaving the app without admins is not allowed",
            ));
        }
        let mut changes = Vec::new();
        let mut handed_over = Vec::new();
        for sub in self.store.subscriptions_of_user(&user.id).await? {
            let Some(room) = self.store.room_by_id(&sub.rid).await? else {
                continue;
            };
            if room.t != RoomType::Direct {
                match self.ownership_after_leaving(&user, &sub).await? {
                    Relinquish::Nothing => {}
                    Relinquish::HandOver(mut heir) => {
                        handed_over.push(room.id.clone());
                        heir.roles.push("owner".into());
                        changes.push(Change::UpdateSubscription(*heir));
                    }
                    Relinquish::Remove => {
                        changes.extend(self.room_file_removals(&room.id).await?);
                        changes.extend(self.federated_room_deletion(&room.id).await?);
                        changes.push(Change::DeleteRoom(room.id.clone()));
                        continue;
                    }
                }
            }
            // The store counts the membership out of `usersCount` with `DeleteUser`; a
            // federated room hears that the user left.
            changes.extend(
                self.federated_membership_out(&room.id, &user, None, "leave")
                    .await?
                    .into_iter()
                    .flatten(),
            );
        }
        if !handed_over.is_empty() && !confirm_relinquish {
            return Err(
                CoreError::bad("user-last-owner", "").with_details(json!({"rooms": handed_over}))
            );
        }
        let details = json!({"userId": user.id, "username": user.username});
        changes.push(self.audit("user.deleted", Some(actor), details));
        changes.push(Change::DeleteUser(user.id));
        self.commit(changes).await
    }

    /// `users.list`. Needs `view-d-room`; full details need `view-full-other-user-info`.
    pub async fn list_users(
        &self,
        actor: &User,
        query: UserQuery,
        page: Page,
    ) -> CoreResult<(Vec<User>, i64)> {
        self.authz.require(actor, "view-d-room", None)?;
        Ok(self.store.list_users(&query, page).await?)
    }

    /// The user an edit applies to: the actor, or `target` when the actor holds
    /// `edit-other-user-info` (Rocket.Chat's `error-action-not-allowed` otherwise).
    async fn user_to_edit(&self, actor: &User, target: Option<&str>) -> CoreResult<User> {
        let id = match target {
            Some(id) if id != actor.id => {
                if !self.authz.has(actor, "edit-other-user-info") {
                    return Err(CoreError::bad(
                        "error-action-not-allowed",
                        "Editing user is not allowed",
                    ));
                }
                id
            }
            _ => actor.id.as_str(),
        };
        self.store
            .user_by_id(id)
            .await?
            .ok_or_else(CoreError::invalid_user)
    }

    /// `users.setStatus`: manual presence and status text.
    pub async fn set_status(
        &self,
        actor: &User,
        status: Option<&str>,
        text: Option<&str>,
    ) -> CoreResult<User> {
        self.set_status_of(actor, None, status, text).await
    }

    /// `users.setStatus` with `userId`: another user's status needs `edit-other-user-info`.
    pub async fn set_status_of(
        &self,
        actor: &User,
        target: Option<&str>,
        status: Option<&str>,
        text: Option<&str>,
    ) -> CoreResult<User> {
        let mut user = self.user_to_edit(actor, target).await?;
        if let Some(status) = status {
            if status_code(status).is_none() {
                return Err(CoreError::bad(
                    "error-invalid-status",
                    "Valid status types include online, away, offline, and busy.",
                ));
            }
            user.status_default = status.to_string();
            user.status = status.to_string();
        }
        if let Some(text) = text {
            if !self.settings.bool("Accounts_AllowUserStatusMessageChange") {
                return Err(CoreError::not_allowed("Change status is not allowed"));
            }
            user.status_text = text.chars().take(120).collect();
        }
        user.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUser(user.clone())]).await?;
        self.federate_presence(&user).await;
        Ok(user)
    }

    /// `users.createToken`: mints a login token for a user. Allowed to holders of
    /// `user-generate-access-token`, or with the operator's `CREATE_TOKENS_FOR_USERS_SECRET`.
    pub async fn create_token_for(
        &self,
        actor: Option<&User>,
        user: &User,
        secret: Option<&str>,
    ) -> CoreResult<LoginResult> {
        let by_secret = matches!((&self.options.create_tokens_secret, secret), (Some(s), Some(given)) if s == given);
        let by_permission = actor.is_some_and(|a| self.authz.has(a, "user-generate-access-token"));
        if !by_secret && !by_permission {
            return Err(CoreError::not_allowed("Not authorized"));
        }
        let login = self
            .finish_login(user.clone(), new_token(), None, Some(ClientInfo::default()))
            .await?;
        let details = json!({"userId": user.id, "bySecret": by_secret && !by_permission});
        self.audit_alone(self.audit("token.created", actor, details))
            .await;
        Ok(login)
    }

    /// Users by id, for rendering.
    pub async fn users_by_ids(&self, ids: &[String]) -> CoreResult<Vec<User>> {
        Ok(self.store.users_by_ids(ids).await?)
    }

    /// Stores user preferences under `settings.preferences`.
    pub async fn set_preferences(
        &self,
        actor: &User,
        target: Option<&str>,
        prefs: Map<String, Value>,
    ) -> CoreResult<User> {
        let mut user = self.user_to_edit(actor, target).await?;
        let settings = user
            .extra
            .entry("settings")
            .or_insert_with(|| Value::Object(Map::new()));
        if !settings.is_object() {
            *settings = Value::Object(Map::new());
        }
        let current = settings.as_object_mut().map(|s| {
            s.entry("preferences")
                .or_insert_with(|| Value::Object(Map::new()))
        });
        if let Some(Value::Object(current)) = current {
            current.extend(prefs);
        }
        user.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUser(user.clone())]).await?;
        Ok(user)
    }
}

/// Operator actions from the command line: no actor, the operator is trusted.
impl Core {
    pub async fn admin_create_user(&self, new: NewUser) -> CoreResult<User> {
        self.insert_user(new, None, false).await
    }

    pub async fn admin_update_user(&self, user_id: &str, patch: UserPatch) -> CoreResult<User> {
        let mut operator = User::new(
            "operator".into(),
            "operator".into(),
            None,
            "user",
            vec!["admin".into()],
        );
        operator.active = true;
        self.update_user(&operator, user_id, patch).await
    }
}

/// What becomes of a room a deleted user is in.
enum Relinquish {
    Nothing,
    /// The user was its only owner: this member's subscription becomes the owner.
    HandOver(Box<apogee_domain::Subscription>),
    /// Nobody else is left to own it.
    Remove,
}

impl Core {
    async fn ownership_after_leaving(
        &self,
        user: &User,
        sub: &apogee_domain::Subscription,
    ) -> CoreResult<Relinquish> {
        if !sub.has_role("owner") {
            // Only whether anyone else is there matters: a count, not the member list.
            let first = Page {
                offset: 0,
                count: 1,
            };
            let (_, members) = self.store.subscriptions_of_room(&sub.rid, first).await?;
            return Ok(if members <= 1 {
                Relinquish::Remove
            } else {
                Relinquish::Nothing
            });
        }
        let members = self.every_subscription(&sub.rid).await?;
        let others: Vec<_> = members.into_iter().filter(|m| m.u.id != user.id).collect();
        if others.iter().any(|m| m.has_role("owner")) {
            return Ok(Relinquish::Nothing);
        }
        let mut candidates = others;
        candidates.sort_by_key(|m| m.ts);
        let ids: Vec<String> = candidates.iter().map(|m| m.u.id.clone()).collect();
        let active: Vec<String> = self
            .store
            .users_by_ids(&ids)
            .await?
            .into_iter()
            .filter(|u| u.active)
            .map(|u| u.id)
            .collect();
        Ok(
            match candidates.into_iter().find(|m| active.contains(&m.u.id)) {
                Some(heir) => Relinquish::HandOver(Box::new(heir)),
                None => Relinquish::Remove,
            },
        )
    }
}
