//! Outbox reads: what is due, what a node leased, what was given up on, a queue's items in
//! order and the queues' health.

use crate::{Cell, Database, Row, SqlStore, args, from_json};
use apogee_core::store::{OutboxItem, OutboxQueueHealth, OutboxStore, StoreResult};
use apogee_domain::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;

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

    async fn queued_outbox(&self, queue: &str, limit: i64) -> StoreResult<Vec<OutboxItem>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE queue = $1 AND due_at IS NOT NULL
             ORDER BY created_at, id LIMIT $2"
        );
        let rows = self.db.query(&sql, args![queue, limit]).await?;
        rows.iter().map(item).collect()
    }

    async fn outbox_queue_health(&self, prefix: &str) -> StoreResult<Vec<OutboxQueueHealth>> {
        // A prefix compared exactly: LIKE would need escaping (and is case-blind in SQLite),
        // and a range would follow the database's collation.
        let mut queues: BTreeMap<String, OutboxQueueHealth> = BTreeMap::new();
        let entry = |queues: &mut BTreeMap<String, OutboxQueueHealth>, q: &str| {
            queues
                .entry(q.to_string())
                .or_insert_with(|| OutboxQueueHealth {
                    queue: q.to_string(),
                    ..Default::default()
                })
                .clone()
        };
        let pending = self
            .db
            .query(
                "SELECT queue, COUNT(*), MIN(created_at) FROM outbox
                 WHERE SUBSTR(queue, 1, LENGTH($1)) = $1 AND due_at IS NOT NULL GROUP BY queue",
                args![prefix],
            )
            .await?;
        for r in &pending {
            let q = r[0].text().unwrap_or_default();
            let mut h = entry(&mut queues, q);
            h.length = r[1].int();
            h.oldest_pending_at = millis(&r[2]);
            let head = self
                .db
                .query(
                    "SELECT due_at, lease_node, attempts FROM outbox
                     WHERE queue = $1 AND due_at IS NOT NULL ORDER BY created_at, id LIMIT 1",
                    args![q],
                )
                .await?;
            if let Some(head) = head.first() {
                h.next_attempt_at = millis(&head[0]);
                h.in_flight = head[1].text().is_some();
                h.attempts = head[2].int();
            }
            queues.insert(q.to_string(), h);
        }
        let recorded = self
            .db
            .query(
                "SELECT queue, last_success_at, last_failure_at, last_error FROM outbox_queue_health
                 WHERE SUBSTR(queue, 1, LENGTH($1)) = $1",
                args![prefix],
            )
            .await?;
        for r in &recorded {
            let q = r[0].text().unwrap_or_default();
            let mut h = entry(&mut queues, q);
            h.last_success_at = millis(&r[1]);
            h.last_failure_at = millis(&r[2]);
            h.last_error = r[3].text().map(str::to_string);
            queues.insert(q.to_string(), h);
        }
        Ok(queues.into_values().collect())
    }
}

fn millis(cell: &Cell) -> Option<Timestamp> {
    match cell {
        Cell::Int(n) => Some(Timestamp::from_millis(*n)),
        _ => None,
    }
}
