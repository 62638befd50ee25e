//! TOTP set-up and upkeep: `2fa:enable` / `users.enableTotp`, `2fa:validateTempToken` /
//! `users.validateTotp`, `2fa:disable` / `users.disableTotp`, `2fa:regenerateCodes` /
//! `users.regenerateTotpCodes`, `2fa:checkCodesRemaining` / `users.totpCodesRemaining`,
//! `users.resetTOTP` and the operator's reset.

use super::codes::{
    check_totp, consume_backup_code, looks_like_backup_code, new_backup_codes, new_totp_secret,
    otpauth_uri,
};
use super::{SecondFactorProof, TwoFactorSecrets, invalid_totp};
use crate::Core;
use crate::accounts::Session;
use crate::error::{CoreError, CoreResult};
use crate::mail::Mail;
use crate::store::Change;
use apogee_domain::{Timestamp, User};

/// What `2fa:enable` hands out: the secret and the `otpauth://` URI to scan.
#[derive(Clone)]
pub struct TotpSetup {
    pub secret: String,
    pub url: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup { .. }")
    }
}

impl Core {
    /// Starts TOTP set-up: a new secret, pending until its first code is validated. Asks for
    /// a second factor first (Rocket.Chat's `users.enableTotp` is `twoFactorRequired`), so a
    /// stolen session cannot enrol an attacker's authenticator without the password.
    pub async fn enable_totp(
        &self,
        session: &Session,
        proof: Option<&SecondFactorProof>,
    ) -> CoreResult<TotpSetup> {
        let user = self.user_now(&session.user.id).await?;
        if user.totp_enabled() {
            return Err(CoreError::bad("error-2fa-already-enabled", ""));
        }
        self.check_second_factor(session, proof).await?;
        let _guard = self.lock_user(&user.id).await;
        let mut secrets = self.two_factor_secrets(&user.id).await?;
        let secret = new_totp_secret();
        let issuer = self.settings.string("Site_Name");
        let issuer = if issuer.trim().is_empty() {
            "Apogee".to_string()
        } else {
            issuer
        };
        let url = otpauth_uri(&secret, &issuer, &user.username)
            .ok_or_else(|| CoreError::internal("otpauth uri"))?;
        secrets.pending_totp_secret = Some(secret.clone());
        self.commit(vec![Change::SaveTwoFactor(secrets)]).await?;
        Ok(TotpSetup { secret, url })
    }

    /// Confirms TOTP with a first code from the pending secret: TOTP is on from now, and the
    /// backup codes (shown this once, stored hashed) are returned. Wrong or missing pending
    /// secret: Rocket.Chat's `invalid-totp`, nothing changed.
    pub async fn validate_totp(&self, user: &User, code: &str) -> CoreResult<Vec<String>> {
        let _guard = self.lock_user(&user.id).await;
        let mut user = self.user_now(&user.id).await?;
        let mut secrets = self.two_factor_secrets(&user.id).await?;
        let Some(pending) = secrets.pending_totp_secret.clone() else {
            return Err(invalid_totp());
        };
        // The pending secret's codes are only ever checked here, so no step is on record yet.
        let Some(step) = check_totp(&pending, code, now_secs(), self.totp_max_delta(), None) else {
            return Err(invalid_totp());
        };
        let (codes, hashes) = new_backup_codes();
        secrets.totp_secret = Some(pending);
        secrets.pending_totp_secret = None;
        secrets.last_totp_step = Some(step);
        secrets.backup_codes = hashes;
        user.set_totp_enabled(true);
        user.updated_at = Timestamp::now();
        let audit = self.audit("2fa.totp_enabled", Some(&user), serde_json::json!({}));
        self.commit(vec![
            Change::SaveTwoFactor(secrets),
            Change::UpdateUser(user),
            audit,
        ])
        .await?;
        Ok(codes)
    }

    /// Turns TOTP off given a current code or a backup code. `false` (nothing changed) when
    /// TOTP is off or the code is wrong, as Rocket.Chat answers.
    pub async fn disable_totp(&self, user: &User, code: &str) -> CoreResult<bool> {
        let _guard = self.lock_user(&user.id).await;
        let mut user = self.user_now(&user.id).await?;
        if !user.totp_enabled() {
            return Ok(false);
        }
        let mut secrets = self.two_factor_secrets(&user.id).await?;
        if !self.consume_totp_code(&mut secrets, code) {
            return Ok(false);
        }
        secrets.totp_secret = None;
        secrets.pending_totp_secret = None;
        secrets.backup_codes.clear();
        user.set_totp_enabled(false);
        user.updated_at = Timestamp::now();
        let audit = self.audit("2fa.totp_disabled", Some(&user), serde_json::json!({}));
        self.commit(vec![
            Change::SaveTwoFactor(secrets),
            Change::UpdateUser(user),
            audit,
        ])
        .await?;
        Ok(true)
    }

    /// New backup codes (the old ones stop working) given a current code or a backup code.
    /// `None` when the code is wrong; `invalid-totp` when TOTP is off.
    pub async fn regenerate_totp_codes(
        &self,
        user: &User,
        code: &str,
    ) -> CoreResult<Option<Vec<String>>> {
        let _guard = self.lock_user(&user.id).await;
        let user = self.user_now(&user.id).await?;
        if !user.totp_enabled() {
            return Err(invalid_totp());
        }
        let mut secrets = self.two_factor_secrets(&user.id).await?;
        if !self.consume_totp_code(&mut secrets, code) {
            return Ok(None);
        }
        let (codes, hashes) = new_backup_codes();
        secrets.backup_codes = hashes;
        self.commit(vec![Change::SaveTwoFactor(secrets)]).await?;
        Ok(Some(codes))
    }

    /// How many backup codes are left; `invalid-totp` when TOTP is off.
    pub async fn totp_codes_remaining(&self, user: &User) -> CoreResult<usize> {
        let user = self.user_now(&user.id).await?;
        if !user.totp_enabled() {
            return Err(invalid_totp());
        }
        Ok(self.two_factor_secrets(&user.id).await?.backup_codes.len())
    }

    /// `users.resetTOTP`: an administrator (`edit-other-user-totp`, and their own second
    /// factor) turns a user's TOTP off; the user is logged out everywhere and told by mail.
    pub async fn reset_totp(
        &self,
        session: &Session,
        proof: Option<&SecondFactorProof>,
        user_id: &str,
    ) -> CoreResult<()> {
        if !self
            .settings
            .bool("Accounts_TwoFactorAuthentication_Enabled")
        {
            return Err(CoreError::bad(
                "error-two-factor-not-enabled",
                "Two factor authentication is not enabled",
            ));
        }
        self.authz
            .require(&session.user, "edit-other-user-totp", None)?;
        let target = self.find_user(Some(user_id), None).await?;
        self.check_second_factor(session, proof).await?;
        self.reset_second_factors(&target.id, false, Some(&session.user))
            .await
    }

    /// Rocket.Chat tells the user by mail that an administrator reset their TOTP.
    fn reset_notices(&self, user: &User) -> Vec<Change> {
        user.verified_emails()
            .into_iter()
            .map(|to| {
                self.queue_mail(Mail {
                    to: to.to_string(),
                    subject: "TOTP reset".into(),
                    text: "Your TOTP has been reset.\n\nAny TOTP key you set up before will \
                           no longer work; set up two-factor authentication again.\n"
                        .into(),
                })
            })
            .collect()
    }

    /// The operator's `apogee admin reset-2fa`: TOTP and e-mail codes off, sessions ended, the
    /// user told by mail.
    pub async fn admin_reset_two_factor(&self, username: &str) -> CoreResult<User> {
        let user = self.find_user(None, Some(username)).await?;
        self.reset_second_factors(&user.id, true, None).await?;
        self.user_now(&user.id).await
    }

    /// Turns the user's second factors off; `actor` is the administrator (none: the operator).
    async fn reset_second_factors(
        &self,
        user_id: &str,
        email_too: bool,
        actor: Option<&User>,
    ) -> CoreResult<()> {
        let _guard = self.lock_user(user_id).await;
        let mut user = self.user_now(user_id).await?;
        user.set_totp_enabled(false);
        if email_too {
            user.set_email2fa_enabled(false);
        }
        user.updated_at = Timestamp::now();
        let mut changes = self.reset_notices(&user);
        let details = serde_json::json!({"userId": user.id, "username": user.username, "emailToo": email_too});
        changes.push(self.audit("2fa.reset", actor, details));
        changes.push(Change::UpdateUser(user));
        if email_too {
            changes.push(Change::DeleteTwoFactor {
                user_id: user_id.to_string(),
            });
        } else {
            // Keep an outstanding e-mail code's state; forget everything TOTP.
            let mut secrets = self.two_factor_secrets(user_id).await?;
            secrets.totp_secret = None;
            secrets.pending_totp_secret = None;
            secrets.backup_codes.clear();
            changes.push(Change::SaveTwoFactor(secrets));
        }
        changes.push(Change::DeleteSessionTokens {
            user_id: user_id.to_string(),
        });
        self.commit(changes).await
    }

    /// A TOTP check as a login or sensitive call makes it: only while TOTP is usable.
    pub(crate) fn consume_totp(
        &self,
        user: &User,
        secrets: &mut TwoFactorSecrets,
        code: &str,
    ) -> bool {
        self.totp_usable(user) && self.consume_totp_code(secrets, code)
    }

    /// A current code (newer than the last accepted) or an unused backup code; records it.
    fn consume_totp_code(&self, secrets: &mut TwoFactorSecrets, code: &str) -> bool {
        if looks_like_backup_code(code) {
            return consume_backup_code(&mut secrets.backup_codes, code);
        }
        let Some(secret) = &secrets.totp_secret else {
            return false;
        };
        match check_totp(
            secret,
            code,
            now_secs(),
            self.totp_max_delta(),
            secrets.last_totp_step,
        ) {
            Some(step) => {
                secrets.last_totp_step = Some(step);
                true
            }
            None => false,
        }
    }

    /// `Accounts_TwoFactorAuthentication_MaxDelta`: steps accepted either side of now.
    fn totp_max_delta(&self) -> u16 {
        self.settings
            .int("Accounts_TwoFactorAuthentication_MaxDelta")
            .clamp(0, 10) as u16
    }

    pub(crate) async fn user_now(&self, user_id: &str) -> CoreResult<User> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or_else(CoreError::invalid_user)
    }
}

fn now_secs() -> u64 {
    Timestamp::now().millis().max(0) as u64 / 1000
}
