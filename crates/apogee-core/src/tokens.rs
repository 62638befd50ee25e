//! Personal access tokens (`users.generatePersonalAccessToken` and friends): named, long-lived
//! tokens a user creates for scripts. Shown once, stored hashed, names unique per user, never
//! expiring; they survive logouts and password changes, as in Rocket.Chat.

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::passwords::{hash_token, new_token};
use crate::store::{Change, ClientInfo, LoginToken};
use apogee_domain::{Timestamp, User};
use serde_json::json;

fn not_authorized() -> CoreError {
    CoreError::bad("not-authorized", "Not Authorized")
}

fn no_such_token() -> CoreError {
    CoreError::bad("error-token-does-not-exists", "Token does not exist")
}

impl Core {
    fn require_token_permission(&self, actor: &User) -> CoreResult<()> {
        if self.authz.has(actor, "create-personal-access-tokens") {
            Ok(())
        } else {
            Err(not_authorized())
        }
    }

    async fn personal_token_named(
        &self,
        actor: &User,
        name: &str,
    ) -> CoreResult<Option<LoginToken>> {
        Ok(self
            .store
            .personal_tokens(&actor.id)
            .await?
            .into_iter()
            .find(|t| t.name.as_deref() == Some(name)))
    }

    fn personal_token(&self, actor: &User, name: &str, token: &str, bypass: bool) -> Change {
        Change::InsertLoginToken(LoginToken {
            hashed: hash_token(token),
            user_id: actor.id.clone(),
            created_at: Timestamp::now(),
            expires_at: None,
            name: Some(name.to_string()),
            bypass_two_factor: bypass,
            session_id: None,
            last_token_part: Some(token[token.len().saturating_sub(6)..].to_string()),
            client: ClientInfo::default(),
            last_active_at: None,
        })
    }

    /// `users.generatePersonalAccessToken`: the new token, shown this once.
    pub async fn generate_personal_token(
        &self,
        actor: &User,
        name: &str,
        bypass_two_factor: bool,
    ) -> CoreResult<String> {
        self.require_token_permission(actor)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(CoreError::invalid_params(
                "must NOT have fewer than 1 characters",
            ));
        }
        if self.personal_token_named(actor, name).await?.is_some() {
            return Err(CoreError::bad(
                "error-token-already-exists",
                "A token with this name already exists",
            ));
        }
        let token = new_token();
        self.commit(vec![
            self.personal_token(actor, name, &token, bypass_two_factor),
            self.audit(
                "token.created",
                Some(actor),
                json!({"name": name, "personal": true, "bypassTwoFactor": bypass_two_factor}),
            ),
        ])
        .await?;
        Ok(token)
    }

    /// `users.regeneratePersonalAccessToken`: replaces the named token (same 2FA bypass).
    pub async fn regenerate_personal_token(&self, actor: &User, name: &str) -> CoreResult<String> {
        self.require_token_permission(actor)?;
        let old = self
            .personal_token_named(actor, name)
            .await?
            .ok_or_else(no_such_token)?;
        let token = new_token();
        self.commit(vec![
            Change::DeleteLoginToken {
                user_id: actor.id.clone(),
                hashed: old.hashed,
            },
            self.personal_token(actor, name, &token, old.bypass_two_factor),
            self.audit(
                "token.regenerated",
                Some(actor),
                json!({"name": name, "personal": true}),
            ),
        ])
        .await?;
        Ok(token)
    }

    /// `users.removePersonalAccessToken`.
    pub async fn remove_personal_token(&self, actor: &User, name: &str) -> CoreResult<()> {
        self.require_token_permission(actor)?;
        let old = self
            .personal_token_named(actor, name)
            .await?
            .ok_or_else(no_such_token)?;
        self.commit(vec![
            Change::DeleteLoginToken {
                user_id: actor.id.clone(),
                hashed: old.hashed,
            },
            self.audit(
                "token.removed",
                Some(actor),
                json!({"name": name, "personal": true}),
            ),
        ])
        .await
    }

    /// `users.getPersonalAccessTokens`: names, creation times, last characters; never tokens.
    pub async fn personal_tokens(&self, actor: &User) -> CoreResult<Vec<LoginToken>> {
        self.require_token_permission(actor)?;
        Ok(self.store.personal_tokens(&actor.id).await?)
    }
}
