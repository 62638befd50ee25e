//! Outbox reads: what is due, what a node leased, what was given up on.

use crate::{Database, Row, SqlStore, args, from_json};
use apogee_core::store::{OutboxItem, OutboxStore, StoreResult};
use apogee_domain::Timestamp;
use async_trait::async_trait;

const COLUMNS: &str = "id, kind, payload, created_at, attempts, last_error, queue";

fn item(r: &Row) -> StoreResult<OutboxItem> {
    Ok(OutboxItem {
        id: r[0].text().unwrap_or_default().to_string(),
        kind: r[1].text().unwrap_or_default().to_string(),
        payload: from_json(&r[2])?,
        created_at: Timestamp::from_millis(r[3].int()),
        attempts: r[4].int(),
        last_error: r[5].text().map(str::to_string),
        queue: r[6].text().map(str::to_string),
    })
}

#[async_trait]
impl<D: Database> OutboxStore for SqlStore<D> {
    async fn due_outbox(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<OutboxItem>> {
        // A queued item waits for every older item of its queue that is still pending or in
        // flight (given-up items, `due_at IS NULL`, do not block).
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE due_at <= $1 AND (queue IS NULL OR NOT EXISTS (
                 SELECT 1 FROM outbox older WHERE older.queue = outbox.queue
                 AND older.due_at IS NOT NULL
                 AND (older.created_at < outbox.created_at
                      OR (older.created_at = outbox.created_at AND older.id < outbox.id))))
             ORDER BY due_at LIMIT $2"
        );
        let rows = self.db.query(&sql, args![now.millis(), limit]).await?;
        rows.iter().map(item).collect()
    }

    async fn leased_outbox(&self, node: &str, until: Timestamp) -> StoreResult<Vec<OutboxItem>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE lease_node = $1 AND due_at = $2 ORDER BY created_at"
        );
        let rows = self.db.query(&sql, args![node, until.millis()]).await?;
        rows.iter().map(item).collect()
    }

    async fn failed_outbox(&self, limit: i64) -> StoreResult<Vec<OutboxItem>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE due_at IS NULL ORDER BY created_at DESC LIMIT $1"
        );
        let rows = self.db.query(&sql, args![limit]).await?;
        rows.iter().map(item).collect()
    }
}
