//! E-mailed second-factor codes: `users.2fa.enableEmail`, `users.2fa.disableEmail`,
//! `users.2fa.sendEmailCode`, and the codes sent when a login or sensitive call asks for one.

use super::codes::{format_email_code, hash_email_code, new_email_code, normalise_email_code};
use super::{EmailCode, SecondFactorProof, TwoFactorOptions, TwoFactorSecrets};
use crate::Core;
use crate::accounts::Session;
use crate::error::CoreResult;
use crate::mail::Mail;
use crate::store::Change;
use apogee_domain::ids::random_string;
use apogee_domain::{Timestamp, User};
use serde_json::{Value, json};

/// A pending code this close to expiry is replaced rather than reused (Rocket.Chat: 5 minutes).
const REUSE_MARGIN_MS: i64 = 5 * 60 * 1000;

impl Core {
    /// `users.2fa.enableEmail`: codes will be e-mailed to the user's verified addresses.
    pub async fn enable_email2fa(&self, user: &User) -> CoreResult<()> {
        self.set_email2fa(&user.id, true).await
    }

    /// `users.2fa.disableEmail`: needs a second factor, never a remembered one.
    pub async fn disable_email2fa(
        &self,
        session: &Session,
        proof: Option<&SecondFactorProof>,
    ) -> CoreResult<()> {
        let options = TwoFactorOptions {
            disable_remember_me: true,
            ..Default::default()
        };
        self.check_second_factor_with(session, proof, options)
            .await?;
        self.set_email2fa(&session.user.id, false).await
    }

    async fn set_email2fa(&self, user_id: &str, on: bool) -> CoreResult<()> {
        let _guard = self.lock_user(user_id).await;
        let mut user = self.user_now(user_id).await?;
        if user.email2fa_enabled() == on {
            return Ok(());
        }
        user.set_email2fa_enabled(on);
        user.updated_at = Timestamp::now();
        let event = if on {
            "2fa.email_enabled"
        } else {
            "2fa.email_disabled"
        };
        let audit = self.audit(event, Some(&user), serde_json::json!({}));
        self.commit(vec![Change::UpdateUser(user), audit]).await
    }

    /// `users.2fa.sendEmailCode`: a fresh code to the caller, or (logged out, e.g. at the login
    /// form) to the user named by `email_or_username`. Unknown users get the same success, so
    /// the endpoint does not tell who has an account.
    pub async fn send_email_code(
        &self,
        caller: Option<&User>,
        email_or_username: &str,
    ) -> CoreResult<()> {
        let user = match caller {
            Some(u) => Some(self.user_now(&u.id).await?),
            None if email_or_username.contains('@') => {
                self.store.user_by_email(email_or_username).await?
            }
            None => self.store.user_by_username(email_or_username).await?,
        };
        let Some(user) = user else {
            return Ok(());
        };
        let _guard = self.lock_user(&user.id).await;
        let mut secrets = self.two_factor_secrets(&user.id).await?;
        let mut changes = Vec::new();
        self.new_email_code(&user, &mut secrets, &mut changes);
        changes.push(Change::SaveTwoFactor(secrets));
        self.commit(changes).await
    }

    /// Rocket.Chat's `processInvalidCode` for e-mail: reuse a pending code that is neither
    /// about to expire nor out of attempts, else make and send a new one. The details say which.
    pub(crate) async fn prepare_email_code(
        &self,
        user: &User,
        secrets: &mut TwoFactorSecrets,
        changes: &mut Vec<Change>,
    ) -> CoreResult<Value> {
        let now = Timestamp::now().millis();
        if secrets
            .email_code
            .as_ref()
            .is_some_and(|c| c.expires_at.millis() <= now)
        {
            secrets.email_code = None;
        }
        let email_or_username = user.username.clone();
        if let Some(code) = &secrets.email_code
            && code.expires_at.millis() > now + REUSE_MARGIN_MS
            && !self.email_attempts_exhausted(secrets)
        {
            return Ok(json!({
                "emailOrUsername": email_or_username,
                "codeGenerated": false,
                "codeExpires": code.expires_at,
            }));
        }
        self.new_email_code(user, secrets, changes);
        Ok(json!({"codeGenerated": true, "emailOrUsername": email_or_username}))
    }

    /// Replaces the pending code with a new one and queues it to every verified address.
    fn new_email_code(
        &self,
        user: &User,
        secrets: &mut TwoFactorSecrets,
        changes: &mut Vec<Change>,
    ) {
        let code = new_email_code();
        let salt = random_string(16);
        let lifetime = self
            .settings
            .int("Accounts_TwoFactorAuthentication_By_Email_Code_Expiration")
            .max(1);
        secrets.email_code = Some(EmailCode {
            hash: hash_email_code(&salt, &code),
            salt,
            expires_at: Timestamp::from_millis(Timestamp::now().millis() + lifetime * 1000),
            failed_attempts: 0,
        });
        for address in user.verified_emails() {
            changes.push(self.queue_mail(Mail {
                to: address.to_string(),
                subject: "Authentication code".into(),
                text: format!(
                    "Here is your authentication code:\n\n{}\n\nDo not provide this code to anyone.\n\
                     If you didn't try to login in your account please ignore this email.\n",
                    format_email_code(&code)
                ),
            }));
        }
    }

    /// Checks an e-mailed code (digits only, `123-456` allowed); a match is used up, a miss
    /// counted. Out of attempts or expired: refused whatever the code.
    pub(crate) fn consume_email_code(
        &self,
        user: &User,
        secrets: &mut TwoFactorSecrets,
        code: &str,
    ) -> bool {
        if !self.email2fa_usable(user) || self.email_attempts_exhausted(secrets) {
            return false;
        }
        let Some(pending) = secrets.email_code.as_mut() else {
            return false;
        };
        if pending.expires_at.millis() <= Timestamp::now().millis() {
            return false;
        }
        let given = hash_email_code(&pending.salt, &normalise_email_code(code));
        if given == pending.hash {
            secrets.email_code = None;
            return true;
        }
        pending.failed_attempts += 1;
        false
    }

    /// `Accounts_TwoFactorAuthentication_Max_Invalid_Email_Code_Attempts` wrong guesses made.
    pub(crate) fn email_attempts_exhausted(&self, secrets: &TwoFactorSecrets) -> bool {
        let max = self
            .settings
            .int("Accounts_TwoFactorAuthentication_Max_Invalid_Email_Code_Attempts");
        secrets
            .email_code
            .as_ref()
            .is_some_and(|c| max > 0 && c.failed_attempts >= max)
    }
}
