//! Federation reads: this server's signing key, the remote server keys it has fetched, and the
//! Matrix side of federated rooms (mapping, stored PDUs, current state, extremities).

use crate::{Database, Row, SqlStore, args, from_json};
use apogee_core::error::StoreError;
use apogee_core::store::{
    FederatedRoom, FederationEvent, FederationEventKind, FederationServerKey, FederationSigningKey,
    FederationStateEntry, FederationStore, StoreResult,
};
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

    async fn federated_room(&self, rid: &str) -> StoreResult<Option<FederatedRoom>> {
        self.federated_room_where("rid", rid).await
    }

    async fn federated_room_by_matrix_id(
        &self,
        matrix_room_id: &str,
    ) -> StoreResult<Option<FederatedRoom>> {
        self.federated_room_where("matrix_room_id", matrix_room_id)
            .await
    }

    async fn federation_event(&self, event_id: &str) -> StoreResult<Option<FederationEvent>> {
        let rows = self
            .db
            .query(
                "SELECT event_id, matrix_room_id, message_id, kind, depth, pdu
                 FROM federation_events WHERE event_id = $1",
                args![event_id],
            )
            .await?;
        rows.first().map(event_row).transpose()
    }

    async fn federation_oldest_events(
        &self,
        matrix_room_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<FederationEvent>> {
        let rows = self
            .db
            .query(
                "SELECT event_id, matrix_room_id, message_id, kind, depth, pdu
                 FROM federation_events
                 WHERE matrix_room_id = $1 AND kind IN ('timeline', 'backfilled')
                 ORDER BY depth, event_id LIMIT $2",
                args![matrix_room_id, limit],
            )
            .await?;
        rows.iter().map(event_row).collect()
    }

    async fn federation_relations(
        &self,
        matrix_room_id: &str,
        target_event_id: &str,
    ) -> StoreResult<Vec<FederationEvent>> {
        let rows = self
            .db
            .query(
                "SELECT event_id, matrix_room_id, message_id, kind, depth, pdu
                 FROM federation_events
                 WHERE relates_to = $1 AND matrix_room_id = $2
                   AND kind IN ('timeline', 'backfilled')
                 ORDER BY depth, event_id",
                args![target_event_id, matrix_room_id],
            )
            .await?;
        rows.iter().map(event_row).collect()
    }

    async fn federation_room_state(
        &self,
        matrix_room_id: &str,
    ) -> StoreResult<Vec<FederationStateEntry>> {
        let rows = self
            .db
            .query(
                "SELECT event_type, state_key, event_id FROM federation_room_state
                 WHERE matrix_room_id = $1 ORDER BY event_type, state_key",
                args![matrix_room_id],
            )
            .await?;
        Ok(state_entries(&rows))
    }

    async fn federation_extremities(&self, matrix_room_id: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .db
            .query(
                "SELECT event_id FROM federation_extremities WHERE matrix_room_id = $1
                 ORDER BY event_id",
                args![matrix_room_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r[0].text().unwrap_or_default().to_string())
            .collect())
    }

    async fn federation_event_snapshot(&self, event_id: &str) -> StoreResult<Option<String>> {
        let rows = self
            .db
            .query(
                "SELECT snapshot_id FROM federation_event_state WHERE event_id = $1",
                args![event_id],
            )
            .await?;
        Ok(rows.first().and_then(|r| r[0].text().map(str::to_string)))
    }

    async fn federation_state_snapshot(
        &self,
        snapshot_id: &str,
    ) -> StoreResult<Vec<FederationStateEntry>> {
        let rows = self
            .db
            .query(
                "SELECT event_type, state_key, event_id FROM federation_state_snapshots
                 WHERE snapshot_id = $1 ORDER BY event_type, state_key",
                args![snapshot_id],
            )
            .await?;
        Ok(state_entries(&rows))
    }
}

impl<D: Database> SqlStore<D> {
    /// `column` is one of this module's literals, never input.
    async fn federated_room_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<FederatedRoom>> {
        let sql = format!(
            "SELECT rid, matrix_room_id, room_version, origin FROM federation_rooms WHERE {column} = $1"
        );
        let rows = self.db.query(&sql, args![value]).await?;
        Ok(rows.first().map(|r| FederatedRoom {
            rid: r[0].text().unwrap_or_default().to_string(),
            matrix_room_id: r[1].text().unwrap_or_default().to_string(),
            room_version: r[2].text().unwrap_or_default().to_string(),
            origin: r[3].text().unwrap_or_default().to_string(),
        }))
    }
}

/// Rows of `(event_type, state_key, event_id)` as state entries.
fn state_entries(rows: &[Row]) -> Vec<FederationStateEntry> {
    rows.iter()
        .map(|r| FederationStateEntry {
            event_type: r[0].text().unwrap_or_default().to_string(),
            state_key: r[1].text().unwrap_or_default().to_string(),
            event_id: r[2].text().unwrap_or_default().to_string(),
        })
        .collect()
}

/// A row of `(event_id, matrix_room_id, message_id, kind, depth, pdu)` as a stored event.
fn event_row(r: &Row) -> StoreResult<FederationEvent> {
    let kind = r[3].text().unwrap_or_default();
    Ok(FederationEvent {
        event_id: r[0].text().unwrap_or_default().to_string(),
        matrix_room_id: r[1].text().unwrap_or_default().to_string(),
        message_id: r[2].text().map(str::to_string),
        kind: FederationEventKind::parse(kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown event kind {kind:?}")))?,
        depth: r[4].int(),
        pdu: from_json(&r[5])?,
    })
}
