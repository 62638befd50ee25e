//! What Matrix federation keeps in the store: this server's signing key (made once, shared by
//! every node) and the public keys of remote servers. Signing and verifying live in the
//! `apogee-federation` adapter; core only stores opaque key material.

use crate::Core;
use crate::error::CoreResult;
use crate::store::{Change, FederationServerKey, FederationSigningKey};

impl Core {
    /// This server's signing key. On first use `make` creates one; when several nodes start at
    /// once, the first key written wins and every node returns that one, so a key id is never
    /// published with two different keys.
    pub async fn federation_signing_key(
        &self,
        make: impl FnOnce() -> FederationSigningKey,
    ) -> CoreResult<FederationSigningKey> {
        if let Some(key) = self.store.federation_signing_key().await? {
            return Ok(key);
        }
        self.store
            .commit(vec![Change::InsertFederationSigningKey(make())])
            .await?;
        self.store
            .federation_signing_key()
            .await?
            .ok_or_else(|| crate::error::CoreError::internal("federation signing key not stored"))
    }

    /// The public keys known for `server_name` (expired ones included: the caller decides).
    pub async fn federation_server_keys(
        &self,
        server_name: &str,
    ) -> CoreResult<Vec<FederationServerKey>> {
        Ok(self.store.federation_server_keys(server_name).await?)
    }

    /// Remembers public keys fetched from a remote server.
    pub async fn remember_federation_server_keys(
        &self,
        keys: Vec<FederationServerKey>,
    ) -> CoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        Ok(self
            .store
            .commit(vec![Change::SaveFederationServerKeys(keys)])
            .await?)
    }
}

/// What a federated server may learn of a local user (`query/profile`).
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedProfile {
    pub displayname: String,
    /// `mxc://<us>/…` of an uploaded avatar (none for initials).
    pub avatar_url: Option<String>,
}

impl Core {
    /// The profile another server may see of the local user `username`: active people only
    /// (deactivated accounts, bots and apps are not shown to other servers). `None`: no such user.
    pub async fn federated_profile(&self, username: &str) -> CoreResult<Option<FederatedProfile>> {
        let Some(user) = self.store.user_by_username(username).await? else {
            return Ok(None);
        };
        if !user.active || user.kind != "user" {
            return Ok(None);
        }
        let avatar_url = self
            .federation
            .get()
            .and_then(|g| crate::federated_avatars::avatar_mxc(&user, g.server_name()));
        let displayname = user
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(user.username);
        Ok(Some(FederatedProfile {
            displayname,
            avatar_url,
        }))
    }
}
