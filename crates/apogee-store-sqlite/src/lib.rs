//! SQLite storage. WAL journal with `synchronous=FULL`: a write is acknowledged only once it is
//! on disk. All writes go through one writer task that folds concurrent batches into a single
//! transaction (group commit), each batch in its own savepoint so one failing batch does not
//! undo the others. Reads use a small pool of separate connections, which WAL lets run alongside.

use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult};
use apogee_store_sql::{Arg, Database, Row, SqlStore, SqlTx, apply_changes, migrate};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most batches folded into one transaction.
const MAX_GROUP: usize = 128;
/// Pending write batches before callers wait (backpressure).
const QUEUE: usize = 1024;

pub type SqliteStore = SqlStore<Sqlite>;

/// The backend handle: a read pool and the writer task's queue.
pub struct Sqlite {
    read: SqlitePool,
    writer: mpsc::Sender<WriteJob>,
}

struct WriteJob {
    changes: Vec<Change>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Opens (creating if needed) the database file, applies migrations and starts the writer.
pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| backend(&e))?;
    {
        let mut tx = Tx(conn.begin().await.map_err(|e| backend(&e))?);
        migrate(&mut tx, now_millis()).await?;
        tx.0.commit().await.map_err(|e| backend(&e))?;
    }
    let read = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options.read_only(true))
        .await
        .map_err(|e| backend(&e))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(write_loop(conn, rx));
    Ok(SqlStore::new(Sqlite { read, writer: tx }))
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn write_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<WriteJob>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let results = write_group(&mut conn, &mut group).await;
        for (job, result) in group.drain(..).zip(results) {
            let _ = job.done.send(result);
        }
    }
}

/// Commits every job of the group in one transaction; returns each job's own outcome.
async fn write_group(conn: &mut SqliteConnection, group: &mut [WriteJob]) -> Vec<StoreResult<()>> {
    let mut results = Vec::with_capacity(group.len());
    let mut tx = match conn.begin().await {
        Ok(tx) => Tx(tx),
        Err(e) => return group.iter().map(|_| Err(backend(&e))).collect(),
    };
    for job in group.iter_mut() {
        let changes = std::mem::take(&mut job.changes);
        let outcome = async {
            tx.exec("SAVEPOINT batch", vec![]).await?;
            match apply_changes(&mut tx, changes).await {
                Ok(()) => tx.exec("RELEASE batch", vec![]).await.map(|_| ()),
                Err(e) => {
                    tx.exec("ROLLBACK TO batch", vec![]).await?;
                    tx.exec("RELEASE batch", vec![]).await?;
                    Err(e)
                }
            }
        }
        .await;
        results.push(outcome);
    }
    if let Err(e) = tx.0.commit().await {
        tracing::error!(error = %e, "sqlite group commit failed");
        return results.iter().map(|_| Err(backend(&e))).collect();
    }
    results
}

apogee_store_sql::sqlx_glue!(sqlx::Sqlite, SqliteRow);

#[async_trait]
impl Database for Sqlite {
    async fn query(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
        let rows = bind(sql, args)
            .fetch_all(&self.read)
            .await
            .map_err(|e| backend(&e))?;
        Ok(rows.iter().map(decode).collect())
    }

    async fn commit(&self, changes: Vec<Change>) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(WriteJob { changes, done })
            .await
            .map_err(|_| StoreError::Backend("writer stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Backend("writer stopped".into()))?
    }
}
