//! PostgreSQL storage for deployments that outgrow one machine. Migrations run under an
//! advisory lock so several nodes can start at once.
//!
//! Writes are group-committed: one committer task per node takes the batches waiting for it and
//! applies them all in one transaction, so a busy node pays one `BEGIN`/`COMMIT` pair (and one
//! WAL flush) per group rather than per batch. Should any batch of a group fail, the group's
//! transaction is rolled back and each batch runs again in a transaction of its own, so a
//! failing batch still writes nothing and fails alone. The group's appended messages are
//! written together, a handful of multi-row statements (round trips) per group rather than
//! four or more per message. One committer means no two of this
//! node's groups wait on each other's row locks. Prepared statements are cached per connection
//! (sqlx), with room for every statement the store uses.

use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult};
use apogee_store_sql::{Arg, Database, Row, SqlStore, SqlTx, apply_batches, migrate};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub type PostgresStore = SqlStore<Postgres>;

/// Arbitrary, fixed key for the migration advisory lock.
const MIGRATION_LOCK: i64 = 0x6170_6f67_6565;

/// Most batches folded into one transaction.
const MAX_GROUP: usize = 64;
/// Pending write batches before callers wait (backpressure).
const QUEUE: usize = 1024;
/// Prepared statements kept per connection: more than the store has, so none is re-planned.
const STATEMENT_CACHE: usize = 1024;

pub struct Postgres {
    pool: PgPool,
    writer: mpsc::Sender<WriteJob>,
}

struct WriteJob {
    changes: Vec<Change>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Connects, applies migrations and returns the store.
pub async fn open(url: &str) -> StoreResult<PostgresStore> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| backend(&e))?
        .statement_cache_capacity(STATEMENT_CACHE);
    // No ping before each use of a pooled connection: that is a round trip on every read's
    // path. sqlx pings each connection when it is given back anyway, and closes it if that
    // fails, so only a connection broken while idle in the pool fails one query.
    let pool = PgPoolOptions::new()
        .test_before_acquire(false)
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
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
    let (writer, jobs) = mpsc::channel(QUEUE);
    tokio::spawn(committer(pool.clone(), jobs));
    Ok(SqlStore::new(Postgres { pool, writer }))
}

apogee_store_sql::sqlx_glue!(sqlx::Postgres, PgRow, modifies_in_with = true);

/// Attempts at a batch that keeps losing to concurrent ones.
const CONTENTION_ATTEMPTS: usize = 4;

/// Commits the batches sent to it until the store is dropped: whatever is waiting when a
/// transaction ends goes into the next one. The committer keeps one connection for as long as
/// it works, rather than taking one from the pool per group (each hand-back costs a ping); after
/// a failure it gives the connection back, where sqlx tests it, and takes another.
async fn committer(pool: PgPool, mut jobs: mpsc::Receiver<WriteJob>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut held: Option<PoolConnection<sqlx::Postgres>> = None;
    while let Some(first) = jobs.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if group.len() > 1 {
            match commit_group(&pool, &mut held, &group).await {
                Ok(()) => {
                    for job in group.drain(..) {
                        let _ = job.done.send(Ok(()));
                    }
                    continue;
                }
                // Each batch on its own below: the failing one fails alone.
                Err(e) => {
                    tracing::debug!(error = %e, "group failed; committing its batches one by one")
                }
            }
        }
        for job in group.drain(..) {
            let result = commit_alone(&pool, &mut held, &job.changes).await;
            let _ = job.done.send(result);
        }
    }
}

/// Applies `batches` in one transaction on the committer's connection, taking one from the pool
/// when it has none; a failure gives the connection back.
async fn in_transaction(
    pool: &PgPool,
    held: &mut Option<PoolConnection<sqlx::Postgres>>,
    batches: &[&[Change]],
) -> StoreResult<()> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(pool.acquire().await.map_err(|e| backend(&e))?),
    };
    let result = async {
        let mut tx = Tx(conn.begin().await.map_err(|e| backend(&e))?);
        apply_batches(&mut tx, batches).await?;
        tx.0.commit().await.map_err(|e| backend(&e))
    }
    .await;
    if result.is_err() {
        *held = None;
    }
    result
}

/// Every batch of `group` in one transaction (borrowed: the batches are kept for a retry). The
/// batches are applied as one, so their appended messages share a few multi-row statements.
async fn commit_group(
    pool: &PgPool,
    held: &mut Option<PoolConnection<sqlx::Postgres>>,
    group: &[WriteJob],
) -> StoreResult<()> {
    let batches: Vec<&[Change]> = group.iter().map(|job| job.changes.as_slice()).collect();
    in_transaction(pool, held, &batches).await
}

/// One batch in its own transaction, run again when it lost a deadlock (concurrent batches of
/// other nodes touching the same rows in different orders): a transaction that lost wrote nothing.
async fn commit_alone(
    pool: &PgPool,
    held: &mut Option<PoolConnection<sqlx::Postgres>>,
    changes: &[Change],
) -> StoreResult<()> {
    for _ in 1..CONTENTION_ATTEMPTS {
        match in_transaction(pool, held, &[changes]).await {
            Err(StoreError::Contention(e)) => tracing::debug!(error = %e, "retrying a batch"),
            done => return done,
        }
    }
    in_transaction(pool, held, &[changes]).await
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
        let (done, wait) = oneshot::channel();
        self.writer
            .send(WriteJob { changes, done })
            .await
            .map_err(|_| StoreError::Backend("committer stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Backend("committer stopped".into()))?
    }
}
