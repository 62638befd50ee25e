//! PostgreSQL storage for deployments that outgrow one machine. Each batch of changes is one
//! transaction; migrations run under an advisory lock so several nodes can start at once.

use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult};
use apogee_store_sql::{Arg, Database, Row, SqlStore, SqlTx, apply_changes, migrate};
use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgPoolOptions, PgRow};
use std::time::Duration;

pub type PostgresStore = SqlStore<Postgres>;

/// Arbitrary, fixed key for the migration advisory lock.
const MIGRATION_LOCK: i64 = 0x6170_6f67_6565;

pub struct Postgres {
    pool: PgPool,
}

/// Connects, applies migrations and returns the store.
pub async fn open(url: &str) -> StoreResult<PostgresStore> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| backend(&e))?;
    let mut tx = Tx(pool.begin().await.map_err(|e| backend(&e))?);
    tx.exec(
        "SELECT pg_advisory_xact_lock($1)",
        vec![Arg::Int(MIGRATION_LOCK)],
    )
    .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    migrate(&mut tx, now).await?;
    tx.0.commit().await.map_err(|e| backend(&e))?;
    Ok(SqlStore::new(Postgres { pool }))
}

apogee_store_sql::sqlx_glue!(sqlx::Postgres, PgRow);

/// Attempts at a batch that keeps losing to concurrent ones.
const CONTENTION_ATTEMPTS: usize = 4;

impl Postgres {
    async fn commit_once(&self, changes: Vec<Change>) -> StoreResult<()> {
        let mut tx = Tx(self.pool.begin().await.map_err(|e| backend(&e))?);
        apply_changes(&mut tx, changes).await?;
        tx.0.commit().await.map_err(|e| backend(&e))
    }
}

#[async_trait]
impl Database for Postgres {
    async fn query(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
        let rows = bind(sql, args)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend(&e))?;
        Ok(rows.iter().map(decode).collect())
    }

    async fn commit(&self, changes: Vec<Change>) -> StoreResult<()> {
        // A transaction that lost a deadlock (concurrent batches touching the same rows in
        // different orders, e.g. two users deleted from shared rooms) wrote nothing: run it again.
        for _ in 1..CONTENTION_ATTEMPTS {
            match self.commit_once(changes.clone()).await {
                Err(StoreError::Contention(e)) => tracing::debug!(error = %e, "retrying a batch"),
                done => return done,
            }
        }
        self.commit_once(changes).await
    }
}
