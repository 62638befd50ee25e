//! Passwords beyond login: Rocket.Chat's password policy and history, one's own password change
//! (`users.updateOwnBasicInfo`, `setUserPassword`), password expiry (an Apogee setting that sets
//! `requirePasswordChange` at login), the e-mailed reset (`users.forgotPassword`,
//! `resetPassword`) and login-token expiry.

use crate::Core;
use crate::accounts::{Client, LoginResult, Session, UserPatch};
use crate::error::{CoreError, CoreResult};
use crate::mail::Mail;
use crate::passwords::{Verified, digest, hash_token, new_token};
use crate::store::{Change, LoginToken, PasswordReset};
use apogee_domain::password_policy::{POLICY_NOT_MET, POLICY_NOT_MET_MESSAGE, PasswordPolicy};
use apogee_domain::user::is_valid_email;
use apogee_domain::{Timestamp, User};
use serde_json::{Value, json};

/// How long an e-mailed reset link works. Meteor keeps them three days; a link that can take
/// over an account should not outlive the hour it is needed in.
pub const RESET_TOKEN_HOURS: i64 = 1;

/// The most old hashes kept per user, whatever `Accounts_Password_History_Amount` says.
const HISTORY_CAP: i64 = 50;

/// A new password as a client sends it: plain, or (Meteor's `resetPassword`) its sha256-hex
/// digest, which cannot be held to the password policy.
#[derive(Debug, Clone, Copy)]
pub enum NewPassword<'a> {
    Plain(&'a str),
    Digest(&'a str),
}

fn policy_error(reasons: &[apogee_domain::password_policy::Reason]) -> CoreError {
    let details: Vec<Value> = reasons
        .iter()
        .map(|r| json!({"error": r.error, "message": r.message}))
        .collect();
    let e = CoreError::bad(POLICY_NOT_MET, POLICY_NOT_MET_MESSAGE);
    if details.is_empty() {
        e
    } else {
        e.with_details(Value::Array(details))
    }
}

fn invalid_password() -> CoreError {
    CoreError::bad("error-invalid-password", "Invalid password")
}

fn in_history() -> CoreError {
    CoreError::bad(
        "error-password-in-history",
        "Entered password has been previously used",
    )
}

/// A reset token that is unknown, used or expired: Meteor's answer, whichever it was.
fn reset_expired() -> CoreError {
    CoreError::bad("403", "Token expired")
}

impl Core {
    /// The policy as the settings currently say.
    pub fn password_policy(&self) -> PasswordPolicy {
        let s = &self.settings;
        PasswordPolicy {
            enabled: s.bool("Accounts_Password_Policy_Enabled"),
            min_length: s.int("Accounts_Password_Policy_MinLength"),
            max_length: s.int("Accounts_Password_Policy_MaxLength"),
            forbid_repeating: s.bool("Accounts_Password_Policy_ForbidRepeatingCharacters"),
            repeating_count: s.int("Accounts_Password_Policy_ForbidRepeatingCharactersCount"),
            lowercase: s.bool("Accounts_Password_Policy_AtLeastOneLowercase"),
            uppercase: s.bool("Accounts_Password_Policy_AtLeastOneUppercase"),
            number: s.bool("Accounts_Password_Policy_AtLeastOneNumber"),
            special: s.bool("Accounts_Password_Policy_AtLeastOneSpecialCharacter"),
        }
    }

    /// Rocket.Chat's `error-password-policy-not-met`, with each broken rule in `details`.
    pub fn check_password_policy(&self, password: &str) -> CoreResult<()> {
        self.password_policy()
            .violations(password)
            .map_err(|reasons| policy_error(&reasons))
    }

    /// `pw.getPolicyReset`: the policy, for the holder of a live reset token.
    pub async fn password_policy_for_reset(&self, token: &str) -> CoreResult<Value> {
        self.live_reset(token).await?;
        Ok(self.password_policy().describe())
    }

    /// Whether a login or personal access token still works. Session tokens end at their
    /// stored expiry or `Accounts_LoginExpiration` days after login, whichever is sooner (so
    /// shortening the setting ends older sessions, as in Meteor); personal tokens never expire.
    pub(crate) fn token_is_live(&self, t: &LoginToken) -> bool {
        if t.name.is_some() {
            return true;
        }
        t.expires_at.is_none_or(|e| e > Timestamp::now()) && t.created_at > self.oldest_live_login()
    }

    /// Session tokens from logins before this have expired (`Accounts_LoginExpiration` days).
    pub(crate) fn oldest_live_login(&self) -> Timestamp {
        let days = self.settings.int("Accounts_LoginExpiration").max(1);
        Timestamp::from_millis(Timestamp::now().millis() - days * 86_400_000)
    }

    /// The change setting a password a person chose: checked against the policy and, when
    /// enabled, the user's password history.
    pub(crate) async fn new_password(&self, user_id: &str, password: &str) -> CoreResult<Change> {
        self.new_password_from(user_id, NewPassword::Plain(password))
            .await
    }

    async fn new_password_from(
        &self,
        user_id: &str,
        password: NewPassword<'_>,
    ) -> CoreResult<Change> {
        let digest = match password {
            NewPassword::Plain(plain) => {
                self.check_password_policy(plain)?;
                digest(plain)
            }
            // Only a plain password can be held to the policy.
            NewPassword::Digest(_) if self.password_policy().enabled => {
                return Err(policy_error(&[]));
            }
            NewPassword::Digest(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                d.to_ascii_lowercase()
            }
            NewPassword::Digest(_) => return Err(CoreError::bad("400", "Match failed")),
        };
        if self.settings.bool("Accounts_Password_History_Enabled") {
            let amount = self
                .settings
                .int("Accounts_Password_History_Amount")
                .clamp(1, HISTORY_CAP);
            let mut old = self.store.password_history(user_id, amount).await?;
            if let Some(current) = self.store.password_hash(user_id).await? {
                old.push(current);
            }
            for hash in old {
                if self.hasher.verify(digest.clone(), hash).await != Verified::No {
                    return Err(in_history());
                }
            }
        }
        let hash = self.hasher.hash(digest).await;
        Ok(self.password_changed(user_id, hash))
    }

    /// The change recording a newly set password hash (and keeping it in the history).
    pub(crate) fn password_changed(&self, user_id: &str, hash: String) -> Change {
        let keep = self
            .settings
            .int("Accounts_Password_History_Amount")
            .clamp(1, HISTORY_CAP);
        Change::PasswordChanged {
            user_id: user_id.to_string(),
            hash,
            at: Timestamp::now(),
            history_keep: keep,
        }
    }

    /// Ends every login session of the user except `keep` (a token hash); each one's
    /// connections hear `force_logout` and close. Personal access tokens stay.
    pub(crate) async fn end_sessions_except(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> CoreResult<Vec<Change>> {
        Ok(self
            .store
            .session_tokens(user_id)
            .await?
            .into_iter()
            .filter(|t| Some(t.hashed.as_str()) != keep)
            .map(|t| Change::DeleteLoginToken {
                user_id: t.user_id,
                hashed: t.hashed,
            })
            .collect())
    }

    /// At a password login: when `Accounts_Password_Expiration_Days` is on and the password is
    /// older, the user must change it (`requirePasswordChange`, with the reason).
    pub(crate) async fn expire_password_if_due(&self, mut user: User) -> CoreResult<User> {
        let days = self.settings.int("Accounts_Password_Expiration_Days");
        if days <= 0 || user.require_password_change == Some(true) {
            return Ok(user);
        }
        let Some(changed) = self.store.password_changed_at(&user.id).await? else {
            return Ok(user);
        };
        if changed.plus_days(days) > Timestamp::now() {
            return Ok(user);
        }
        user.require_password_change = Some(true);
        user.extra.insert(
            "requirePasswordChangeReason".into(),
            json!("Your password has expired"),
        );
        user.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUser(user.clone())]).await?;
        Ok(user)
    }

    /// `users.updateOwnBasicInfo`: the caller's profile fields and, with `newPassword`, their
    /// password — after the current one (`currentPassword`, the sha256-hex digest clients send;
    /// a plain password is accepted too) is checked. The caller's other sessions end.
    pub async fn update_own_basic_info(
        &self,
        session: &Session,
        mut patch: UserPatch,
        current_password: Option<&str>,
    ) -> CoreResult<User> {
        if patch.password.is_some() {
            if !self.settings.bool("Accounts_AllowPasswordChange") {
                return Err(CoreError::bad(
                    "error-action-not-allowed",
                    "Changing password is not allowed",
                ));
            }
            if let Some(stored) = self.store.password_hash(&session.user.id).await? {
                let current = current_password.ok_or_else(invalid_password)?;
                if !self.current_password_matches(current, stored).await {
                    return Err(invalid_password());
                }
            }
            patch.keep_session = Some(session.token_hash.clone());
        }
        // Profile fields only: roles, activation and the forced-change flag are not one's own.
        patch.roles = None;
        patch.active = None;
        patch.verified = None;
        patch.require_password_change = None;
        self.update_user(&session.user, &session.user.id, patch)
            .await
    }

    async fn current_password_matches(&self, given: &str, stored: String) -> bool {
        let looks_digested = given.len() == 64 && given.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_digested
            && self
                .hasher
                .verify(given.to_ascii_lowercase(), stored.clone())
                .await
                != Verified::No
        {
            return true;
        }
        self.hasher.verify(digest(given), stored).await != Verified::No
    }

    /// The DDP method `setUserPassword(password)`: only for a user who must change their
    /// password; clears the requirement. The other sessions end.
    pub async fn set_required_password(&self, session: &Session, password: &str) -> CoreResult<()> {
        let mut user = self
            .store
            .user_by_id(&session.user.id)
            .await?
            .ok_or_else(CoreError::invalid_user)?;
        if user.require_password_change != Some(true) {
            return Err(CoreError::not_allowed("Not allowed"));
        }
        let mut changes = vec![self.new_password(&user.id, password).await?];
        user.require_password_change = None;
        user.extra.remove("requirePasswordChangeReason");
        user.updated_at = Timestamp::now();
        changes.push(self.audit(
            "user.password_changed",
            Some(&session.user),
            json!({"userId": user.id, "username": user.username, "forced": true}),
        ));
        changes.insert(0, Change::UpdateUser(user));
        changes.extend(
            self.end_sessions_except(&session.user.id, Some(&session.token_hash))
                .await?,
        );
        self.commit(changes).await
    }

    /// `users.forgotPassword`: whether or not the address belongs to someone, the answer is the
    /// same, so it reveals nothing. For a user, a new single-use reset token (stored hashed,
    /// replacing any earlier one) and the mail carrying its link.
    pub(crate) async fn prepare_password_reset(
        &self,
        email: &str,
    ) -> CoreResult<Option<Vec<Change>>> {
        if !self.settings.bool("Accounts_PasswordReset") {
            return Err(CoreError::bad("", "Password reset is not enabled"));
        }
        let email = email.trim().to_lowercase();
        if !is_valid_email(&email) {
            return Err(CoreError::bad("error-invalid-email", "Invalid email"));
        }
        let Some(user) = self.store.user_by_email(&email).await? else {
            return Ok(None);
        };
        if !user.active {
            return Ok(None);
        }
        let token = new_token();
        let now = Timestamp::now();
        let reset = PasswordReset {
            hashed: hash_token(&token),
            user_id: user.id.clone(),
            email: email.clone(),
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + RESET_TOKEN_HOURS * 3_600_000),
        };
        let site = self.settings.string("Site_Url");
        let link = format!("{}/reset-password/{token}", site.trim_end_matches('/'));
        let site_name = self.settings.string("Site_Name");
        let mail = Mail {
            to: email,
            subject: format!("[{site_name}] Reset your password"),
            text: format!(
                "Hello {},\n\nTo reset your password on {site_name}, open this link:\n\n{link}\n\n\
                 The link works once, for {RESET_TOKEN_HOURS} hour. If you did not ask for it, ignore this mail.\n",
                user.name.as_deref().unwrap_or(&user.username)
            ),
        };
        // The token and its mail are committed together: no mail without a token, and no
        // token whose mail was lost.
        Ok(Some(vec![
            Change::InsertPasswordReset(reset),
            self.queue_mail(mail),
            self.audit(
                "user.password_reset_requested",
                Some(&user),
                json!({"userId": user.id}),
            ),
        ]))
    }

    /// `users.forgotPassword`.
    pub async fn forgot_password(&self, email: &str) -> CoreResult<()> {
        if let Some(changes) = self.prepare_password_reset(email).await? {
            self.commit(changes).await?;
        }
        Ok(())
    }

    async fn live_reset(&self, token: &str) -> CoreResult<PasswordReset> {
        self.store
            .password_reset(&hash_token(token))
            .await?
            .filter(|r| r.expires_at > Timestamp::now())
            .ok_or_else(reset_expired)
    }

    /// The DDP method `resetPassword(token, password)`: with a live reset token, sets a new
    /// password (policy and history apply), uses the token up, verifies the address it was
    /// mailed to, ends every session and logs in on a new one, as Meteor does.
    pub async fn reset_password(
        &self,
        token: &str,
        password: NewPassword<'_>,
        client: &Client,
    ) -> CoreResult<LoginResult> {
        let reset = self.live_reset(token).await?;
        let mut user = self
            .store
            .user_by_id(&reset.user_id)
            .await?
            .filter(|u| {
                u.emails
                    .iter()
                    .any(|e| e.address.eq_ignore_ascii_case(&reset.email))
            })
            .ok_or_else(|| CoreError::bad("403", "Token has invalid email address"))?;
        if !user.active {
            return Err(CoreError::bad(
                "error-user-is-not-activated",
                "User is not activated",
            ));
        }
        let password_change = self.new_password_from(&user.id, password).await?;
        for e in &mut user.emails {
            if e.address.eq_ignore_ascii_case(&reset.email) {
                e.verified = true;
            }
        }
        let now = Timestamp::now();
        user.require_password_change = None;
        user.extra.remove("requirePasswordChangeReason");
        user.updated_at = now;
        user.last_login = Some(now);
        let token = new_token();
        let (login, token_expires) = self.session_token(&user.id, &token, client.info());
        // One batch: the token is used up, every old session ends, the new one begins. Each
        // old session is ended by name, so the announcement cannot reach the new one.
        let mut changes = vec![
            Change::UpdateUser(user.clone()),
            password_change,
            Change::DeletePasswordResets {
                user_id: user.id.clone(),
            },
        ];
        changes.extend(self.end_sessions_except(&user.id, None).await?);
        changes.push(login);
        changes.push(self.audit_from(
            "user.password_reset",
            Some(&user),
            client.addr,
            json!({"userId": user.id, "username": user.username}),
        ));
        self.commit(changes).await?;
        Ok(LoginResult {
            user,
            token,
            token_expires,
        })
    }
}
