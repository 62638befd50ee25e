//! Two-factor authentication, as Rocket.Chat does it (`app/2fa/server`).
//!
//! - A user may turn on TOTP (an authenticator app, with single-use backup codes) and e-mailed
//!   codes; `services.totp.enabled` / `services.email2fa.enabled` on the user document say which.
//!   The secrets live apart ([`TwoFactorSecrets`], its own table) so no rendering of a user can
//!   leak them.
//! - Logging in with a password asks for a code when either is on ([`Core::login_with_code`]).
//! - Sensitive calls ask for a second factor through [`Core::check_second_factor`]: the code of
//!   an enabled method, or — for users without one, when
//!   `Accounts_TwoFactorAuthentication_Enforce_Password_Fallback` is on — their password.
//!   Failures are Rocket.Chat's `totp-required` / `totp-invalid` / `totp-max-attempts` with
//!   `details: {method, codeGenerated, availableMethods, …}`, which clients retry on.
//! - Roles flagged `mandatory2fa` keep their users to the 2FA set-up calls until they turn it on
//!   ([`Core::require_two_factor_setup`]).

mod codes;
mod email;
mod totp;

pub use codes::current_totp;

use crate::Core;
use crate::accounts::Session;
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::passwords::Verified;
use crate::store::Change;
use apogee_domain::{Timestamp, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// A user's second-factor secrets. Stored in its own table, never on the user document, and
/// written only through [`Change::SaveTwoFactor`], which checks `revision` so two nodes
/// accepting the same code at once cannot both succeed.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TwoFactorSecrets {
    #[serde(skip)]
    pub user_id: String,
    /// The stored revision this was read at (0: nothing stored yet). The store refuses to save
    /// over a different revision.
    #[serde(skip)]
    pub revision: i64,
    /// The confirmed TOTP secret (base32), present while TOTP is on.
    pub totp_secret: Option<String>,
    /// A secret handed out by `2fa:enable`, waiting for its first code.
    pub pending_totp_secret: Option<String>,
    /// The last TOTP time step accepted: that code and older ones are refused from then on.
    pub last_totp_step: Option<i64>,
    /// sha256-hex of each unused backup code.
    pub backup_codes: Vec<String>,
    /// The outstanding e-mailed code, if any.
    pub email_code: Option<EmailCode>,
}

/// An e-mailed code: stored salted and hashed, with its expiry and the wrong guesses so far.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailCode {
    pub hash: String,
    pub salt: String,
    pub expires_at: Timestamp,
    pub failed_attempts: i64,
}

impl std::fmt::Debug for TwoFactorSecrets {
    /// Says what is there, never the secrets themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactorSecrets")
            .field("user_id", &self.user_id)
            .field("revision", &self.revision)
            .field("totp", &self.totp_secret.is_some())
            .field("pending_totp", &self.pending_totp_secret.is_some())
            .field("last_totp_step", &self.last_totp_step)
            .field("backup_codes", &self.backup_codes.len())
            .field("email_code", &self.email_code.is_some())
            .finish()
    }
}

impl std::fmt::Debug for EmailCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailCode")
            .field("expires_at", &self.expires_at)
            .field("failed_attempts", &self.failed_attempts)
            .finish_non_exhaustive()
    }
}

/// What a client sent as its second factor: `x-2fa-code` / `x-2fa-method` on REST, the
/// `{twoFactorCode, twoFactorMethod}` argument on DDP, `code` / `totp.code` at login.
#[derive(Clone)]
pub struct SecondFactorProof {
    pub code: String,
    /// `totp`, `email` or `password`; `None` lets core pick the user's first enabled method.
    pub method: Option<String>,
}

impl std::fmt::Debug for SecondFactorProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorProof")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Rocket.Chat's `ITwoFactorOptions`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TwoFactorOptions {
    /// Do not fall back to the password for users without a second factor.
    pub disable_password_fallback: bool,
    /// Ignore a recent successful check on this login token (and the grace after sign-up).
    pub disable_remember_me: bool,
    /// Demand a factor even from users without one (their password, then).
    pub require_second_factor: bool,
}

/// A way of proving the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Totp,
    Email,
    Password,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Email => "email",
            Method::Password => "password",
        }
    }
}

/// Successful checks remembered per login token (`Accounts_TwoFactorAuthentication_RememberFor`),
/// in memory on this node: another node asks again, which is only stricter.
#[derive(Default)]
pub(crate) struct Remembered {
    until: Mutex<HashMap<String, Timestamp>>,
}

/// Past this many remembered tokens, expired ones are dropped before adding more.
const REMEMBERED_PRUNE_AT: usize = 10_000;

impl Remembered {
    fn holds(&self, token_hash: &str, now: Timestamp) -> bool {
        let map = self.until.lock().unwrap_or_else(|e| e.into_inner());
        map.get(token_hash).is_some_and(|until| *until > now)
    }

    fn remember(&self, token_hash: &str, until: Timestamp) {
        let mut map = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REMEMBERED_PRUNE_AT {
            let now = Timestamp::now();
            map.retain(|_, u| *u > now);
        }
        map.insert(token_hash.to_string(), until);
    }
}

/// REST routes and DDP methods a user whose role makes 2FA mandatory may still call before
/// setting it up: who they are, logging out, and the set-up itself.
const ALLOWED_BEFORE_SETUP: &[&str] = &[
    "me",
    "logout",
    "login",
    "info",
    "settings.public",
    "users.enableTotp",
    "users.validateTotp",
    "users.totpCodesRemaining",
    "users.2fa.enableEmail",
    "users.2fa.sendEmailCode",
    "2fa:enable",
    "2fa:validateTempToken",
    "2fa:checkCodesRemaining",
];

fn two_factor_error(code: &str, message: &str, method: Method, mut details: Value) -> CoreError {
    details["method"] = json!(method.name());
    CoreError::new(ErrorKind::BadRequest, code, message).with_details(details)
}

impl Core {
    /// Asks `session`'s user for a second factor before a sensitive call (Rocket.Chat's
    /// `twoFactorRequired`): passes when 2FA is off for the workspace, the login token is a
    /// personal access token made to bypass it, a check on this token is remembered, the account
    /// is younger than `RememberFor`, or the user has no method and no password fallback applies.
    /// Otherwise `proof` must hold a valid code (it is consumed) or the call fails with
    /// `totp-required` / `totp-invalid` / `totp-max-attempts` and Rocket.Chat's details.
    pub async fn check_second_factor(
        &self,
        session: &Session,
        proof: Option<&SecondFactorProof>,
    ) -> CoreResult<()> {
        self.check_second_factor_with(session, proof, TwoFactorOptions::default())
            .await
    }

    /// [`Core::check_second_factor`] with Rocket.Chat's options.
    pub async fn check_second_factor_with(
        &self,
        session: &Session,
        proof: Option<&SecondFactorProof>,
        options: TwoFactorOptions,
    ) -> CoreResult<()> {
        if !self
            .settings
            .bool("Accounts_TwoFactorAuthentication_Enabled")
        {
            return Ok(());
        }
        let user = self
            .store
            .user_by_id(&session.user.id)
            .await?
            .ok_or_else(|| CoreError::bad("totp-user-not-found", "TOTP User not found"))?;
        if !options.require_second_factor {
            let token = self.store.login_token(&session.token_hash).await?;
            if token.is_some_and(|t| t.bypass_two_factor) {
                return Ok(());
            }
            if !options.disable_remember_me && self.remembered(&user, &session.token_hash) {
                return Ok(());
            }
        }
        let Some(method) = self
            .select_method(&user, proof.and_then(|p| p.method.as_deref()), options)
            .await?
        else {
            return Ok(());
        };
        self.verify_second_factor(&user, method, proof.map(|p| p.code.as_str()))
            .await?;
        if !options.disable_remember_me
            && let Some(until) = self.remember_until(Timestamp::now())
        {
            self.two_factor_remembered
                .remember(&session.token_hash, until);
        }
        Ok(())
    }

    /// The second factor at a password login (Rocket.Chat's `onValidateLogin` check): only for
    /// users with a method on, never the password fallback, never remembered.
    pub(crate) async fn login_second_factor(
        &self,
        user: &User,
        proof: Option<&SecondFactorProof>,
    ) -> CoreResult<()> {
        if !self
            .settings
            .bool("Accounts_TwoFactorAuthentication_Enabled")
        {
            return Ok(());
        }
        let options = TwoFactorOptions {
            disable_password_fallback: true,
            disable_remember_me: true,
            require_second_factor: false,
        };
        let named = proof.and_then(|p| p.method.as_deref());
        // A named method counts only among those the user has on; else the first of them.
        let enabled = self.enabled_methods(user);
        let named = named.filter(|n| enabled.iter().any(|m| m.name() == *n));
        let Some(method) = self.select_method(user, named, options).await? else {
            return Ok(());
        };
        self.verify_second_factor(user, method, proof.map(|p| p.code.as_str()))
            .await
    }

    /// Refuses users whose roles make 2FA mandatory and who have not set it up, except for
    /// the calls that set it up (`operation`: the REST route without `/api/v1/`, or the DDP
    /// method name).
    pub fn require_two_factor_setup(&self, user: &User, operation: &str) -> CoreResult<()> {
        if !self
            .settings
            .bool("Accounts_TwoFactorAuthentication_Enabled")
            || ALLOWED_BEFORE_SETUP.contains(&operation)
            || !self.authz.two_factor_mandatory(user)
            || !self.enabled_methods(user).is_empty()
        {
            return Ok(());
        }
        Err(CoreError::new(
            ErrorKind::Forbidden,
            "error-two-factor-setup-required",
            "Two-factor authentication must be set up for your role",
        ))
    }

    /// The second-factor methods the user has switched on, in Rocket.Chat's order.
    pub(crate) fn enabled_methods(&self, user: &User) -> Vec<Method> {
        let mut methods = Vec::new();
        if self.totp_usable(user) {
            methods.push(Method::Totp);
        }
        if self.email2fa_usable(user) {
            methods.push(Method::Email);
        }
        methods
    }

    fn totp_usable(&self, user: &User) -> bool {
        self.settings
            .bool("Accounts_TwoFactorAuthentication_By_TOTP_Enabled")
            && user.totp_enabled()
    }

    fn email2fa_usable(&self, user: &User) -> bool {
        self.settings
            .bool("Accounts_TwoFactorAuthentication_By_Email_Enabled")
            && user.email2fa_enabled()
            && !user.verified_emails().is_empty()
    }

    /// Rocket.Chat's `getSecondFactorMethod`: the named method if it is one of the code methods,
    /// else the first the user has on, else the password when required or as the fallback.
    async fn select_method(
        &self,
        user: &User,
        named: Option<&str>,
        options: TwoFactorOptions,
    ) -> CoreResult<Option<Method>> {
        match named {
            Some("totp") => return Ok(Some(Method::Totp)),
            Some("email") => return Ok(Some(Method::Email)),
            _ => {}
        }
        if let Some(first) = self.enabled_methods(user).first() {
            return Ok(Some(*first));
        }
        if options.require_second_factor {
            return Ok(Some(Method::Password));
        }
        let fallback = !options.disable_password_fallback
            && self
                .settings
                .bool("Accounts_TwoFactorAuthentication_Enforce_Password_Fallback")
            && self.store.password_hash(&user.id).await?.is_some();
        Ok(fallback.then_some(Method::Password))
    }

    /// Checks `code` with `method` and consumes it, or fails with Rocket.Chat's error and
    /// details (sending an e-mail code first when the method is e-mail and none is pending).
    /// Takes the user's lock: callers must not hold it.
    pub(crate) async fn verify_second_factor(
        &self,
        user: &User,
        method: Method,
        code: Option<&str>,
    ) -> CoreResult<()> {
        // One check at a time per user on this node; the revision check covers other nodes.
        let _guard = self.lock_user(&user.id).await;
        let mut secrets = self.two_factor_secrets(&user.id).await?;
        let before = secrets.clone();
        let mut changes = Vec::new();
        let mut details = match method {
            Method::Email => {
                self.prepare_email_code(user, &mut secrets, &mut changes)
                    .await?
            }
            Method::Totp | Method::Password => json!({"codeGenerated": false}),
        };
        details["availableMethods"] = json!(
            self.enabled_methods(user)
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
        );
        let code = code.filter(|c| !c.is_empty());
        let valid = match (code, method) {
            (None, _) => false,
            (Some(code), Method::Totp) => self.consume_totp(user, &mut secrets, code),
            (Some(code), Method::Email) => self.consume_email_code(user, &mut secrets, code),
            (Some(code), Method::Password) => self.password_matches(user, code).await?,
        };
        // A consumed code (or a counted wrong guess, or a new e-mail code) is saved whatever
        // the outcome, so it can be neither replayed nor guessed again for free.
        if secrets != before {
            changes.push(Change::SaveTwoFactor(secrets.clone()));
        }
        if !changes.is_empty() {
            self.commit(changes).await?;
        }
        if valid {
            return Ok(());
        }
        let (error, message) = if code.is_none() {
            ("totp-required", "TOTP Required")
        } else if method == Method::Email && self.email_attempts_exhausted(&secrets) {
            ("totp-max-attempts", "TOTP Maximun Failed Attempts Reached")
        } else {
            ("totp-invalid", "TOTP Invalid")
        };
        Err(two_factor_error(error, message, method, details))
    }

    /// `code` is the sha256-hex digest of the password, as Rocket.Chat's clients send it.
    async fn password_matches(&self, user: &User, code: &str) -> CoreResult<bool> {
        let Some(stored) = self.store.password_hash(&user.id).await? else {
            return Ok(false);
        };
        Ok(!matches!(
            self.hasher.verify(code.to_ascii_lowercase(), stored).await,
            Verified::No
        ))
    }

    /// The user's stored secrets, or an empty record (revision 0) to create.
    pub(crate) async fn two_factor_secrets(&self, user_id: &str) -> CoreResult<TwoFactorSecrets> {
        Ok(self
            .store
            .two_factor(user_id)
            .await?
            .unwrap_or_else(|| TwoFactorSecrets {
                user_id: user_id.to_string(),
                ..Default::default()
            }))
    }

    fn remember_until(&self, from: Timestamp) -> Option<Timestamp> {
        let seconds = self
            .settings
            .int("Accounts_TwoFactorAuthentication_RememberFor");
        (seconds > 0).then(|| Timestamp::from_millis(from.millis() + seconds * 1000))
    }

    /// Rocket.Chat's `isAuthorizedForToken`: a recent check on this token, or a new account.
    fn remembered(&self, user: &User, token_hash: &str) -> bool {
        let now = Timestamp::now();
        if self
            .remember_until(user.created_at)
            .is_some_and(|u| u >= now)
        {
            return true;
        }
        self.two_factor_remembered.holds(token_hash, now)
    }
}

/// Rocket.Chat's error for calls that need a user with TOTP on.
fn invalid_totp() -> CoreError {
    CoreError::bad("invalid-totp", "")
}
