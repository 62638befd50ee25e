//! Device management (Rocket.Chat's `sessions/*`): a user's login sessions with the device,
//! address and times each was used, and revoking one — by its owner or an administrator. A
//! revoked session's token is deleted; its connections hear `force_logout` and close.

use crate::Core;
use crate::accounts::Session;
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::store::{Change, LoginToken, Page, SessionQuery};
use apogee_domain::User;

/// One login session, with its user for the administrators' views.
#[derive(Debug, Clone)]
pub struct DeviceSession {
    pub token: LoginToken,
    pub user: Option<User>,
}

/// Who is asking: the session's owner (`sessions/list`, `info`, `logout.me`) or an
/// administrator (`list.all`, `info.admin`, `logout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Own,
    Admin,
}

fn session_not_found() -> CoreError {
    CoreError::new(ErrorKind::NotFound, "", "Session not found")
}

impl Core {
    fn require_scope(&self, actor: &User, scope: Scope, permission: &str) -> CoreResult<()> {
        match scope {
            Scope::Own => Ok(()),
            Scope::Admin => self.authz.require(actor, permission, None),
        }
    }

    /// A page of sessions: the caller's own, or everyone's (`view-device-management`).
    pub async fn device_sessions(
        &self,
        actor: &User,
        scope: Scope,
        mut query: SessionQuery,
        page: Page,
    ) -> CoreResult<(Vec<DeviceSession>, i64)> {
        self.require_scope(actor, scope, "view-device-management")?;
        query.user_id = match scope {
            Scope::Own => Some(actor.id.clone()),
            Scope::Admin => None,
        };
        query.logged_in_after = Some(self.oldest_live_login());
        let (tokens, total) = self.store.login_sessions(&query, page).await?;
        let sessions = self.with_users(tokens, scope).await?;
        Ok((sessions, total))
    }

    async fn with_users(
        &self,
        tokens: Vec<LoginToken>,
        scope: Scope,
    ) -> CoreResult<Vec<DeviceSession>> {
        let users = match scope {
            Scope::Own => Vec::new(),
            Scope::Admin => {
                let mut ids: Vec<String> = tokens.iter().map(|t| t.user_id.clone()).collect();
                ids.sort();
                ids.dedup();
                self.store.users_by_ids(&ids).await?
            }
        };
        Ok(tokens
            .into_iter()
            .map(|token| DeviceSession {
                user: users.iter().find(|u| u.id == token.user_id).cloned(),
                token,
            })
            .collect())
    }

    /// The live session `session_id`, if the scope may see it: an owner sees only their own.
    async fn find_device_session(
        &self,
        actor: &User,
        scope: Scope,
        session_id: &str,
    ) -> CoreResult<LoginToken> {
        self.store
            .login_session(session_id)
            .await?
            .filter(|t| scope == Scope::Admin || t.user_id == actor.id)
            .filter(|t| self.token_is_live(t))
            .ok_or_else(session_not_found)
    }

    /// `sessions/info` / `sessions/info.admin`.
    pub async fn device_session(
        &self,
        actor: &User,
        scope: Scope,
        session_id: &str,
    ) -> CoreResult<DeviceSession> {
        self.require_scope(actor, scope, "view-device-management")?;
        let token = self.find_device_session(actor, scope, session_id).await?;
        Ok(self
            .with_users(vec![token], scope)
            .await?
            .pop()
            .expect("one token in, one session out"))
    }

    /// `sessions/logout.me` / `sessions/logout` (`logout-device-management`): ends the session.
    pub async fn end_device_session(
        &self,
        caller: &Session,
        scope: Scope,
        session_id: &str,
    ) -> CoreResult<()> {
        self.require_scope(&caller.user, scope, "logout-device-management")?;
        let token = self
            .find_device_session(&caller.user, scope, session_id)
            .await?;
        let details = serde_json::json!({"sessionId": session_id, "userId": token.user_id});
        self.commit(vec![
            Change::DeleteLoginToken {
                user_id: token.user_id,
                hashed: token.hashed,
            },
            self.audit("session.revoked", Some(&caller.user), details),
        ])
        .await
    }
}
