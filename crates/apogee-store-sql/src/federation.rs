//! Federation reads: this server's signing key and the remote server keys it has fetched.

use crate::{Database, SqlStore, args};
use apogee_core::store::{FederationServerKey, FederationSigningKey, FederationStore, StoreResult};
use apogee_domain::Timestamp;
use async_trait::async_trait;

#[async_trait]
impl<D: Database> FederationStore for SqlStore<D> {
    async fn federation_signing_key(&self) -> StoreResult<Option<FederationSigningKey>> {
        let rows = self
            .db
            .query(
                "SELECT key_id, pkcs8, created_at FROM federation_signing_keys WHERE current_key = 1",
                args![],
            )
            .await?;
        Ok(rows.first().map(|r| FederationSigningKey {
            key_id: r[0].text().unwrap_or_default().to_string(),
            pkcs8: r[1].text().unwrap_or_default().to_string(),
            created_at: Timestamp::from_millis(r[2].int()),
        }))
    }

    async fn federation_server_keys(
        &self,
        server_name: &str,
    ) -> StoreResult<Vec<FederationServerKey>> {
        let rows = self
            .db
            .query(
                "SELECT key_id, public_key, valid_until, fetched_at FROM federation_server_keys
                 WHERE server_name = $1 ORDER BY key_id",
                args![server_name],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FederationServerKey {
                server_name: server_name.to_string(),
                key_id: r[0].text().unwrap_or_default().to_string(),
                public_key: r[1].text().unwrap_or_default().to_string(),
                valid_until: Timestamp::from_millis(r[2].int()),
                fetched_at: Timestamp::from_millis(r[3].int()),
            })
            .collect())
    }
}
