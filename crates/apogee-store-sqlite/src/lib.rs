//! SQLite storage. WAL journal with `synchronous=FULL`: a write is acknowledged only once it is
//! on disk. All writes go through one writer thread that folds concurrent batches into a single
//! transaction (group commit). The group's batches are applied as one (`apply_batches`: their
//! appended messages share multi-row statements, each room's document is decoded and written
//! once per group); should that fail, the transaction is rolled back and the batches run again,
//! each in its own savepoint, so one failing batch fails alone and undoes nothing of the others.
//! Reads use separate read-only connections, which WAL lets run alongside.
//!
//! SQLite is a library, not a server: a statement costs microseconds, so what costs most is
//! moving work between threads. The writer therefore runs whole batches on its own thread
//! (one hand-off per batch, not per statement), and reads run on the calling task's thread as
//! they are (memory-mapped pages, no I/O wait in the common case). They used to run inside
//! `block_in_place`, so that a long scan would not hold up the runtime's other tasks; but that
//! hands the runtime's core to another thread on every read, and under 64 concurrent senders the
//! runtime grew to about 200 threads on one core, each with its own allocator pages: ingest
//! measured 18–22% more messages per second and half the p99 without it (docs/BENCHMARKS.md).
//! A long read (a search over a huge room) now occupies its worker thread while it runs; the
//! other workers take over that worker's queued tasks.

mod conn;
mod wal_writes;

use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult};
use apogee_store_sql::{Arg, Database, Row, SqlStore, apply_batches, apply_changes, migrate};
use async_trait::async_trait;
use conn::{Tx, backend, open_connection, read_rows};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Most batches folded into one transaction.
const MAX_GROUP: usize = 128;
/// Pending write batches before callers wait (backpressure).
const QUEUE: usize = 1024;
/// Idle read connections kept open for reuse.
const KEEP_READERS: usize = 8;

pub type SqliteStore = SqlStore<Sqlite>;

/// The backend handle: idle read connections and the writer thread's queue.
pub struct Sqlite {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: mpsc::Sender<WriteJob>,
}

struct WriteJob {
    changes: Vec<Change>,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Opens (creating if needed) the database file, applies migrations and starts the writer.
pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (ready, started) = oneshot::channel();
    let writer_path = path.to_path_buf();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer_thread(&writer_path, rx, ready))
        .map_err(|e| StoreError::Backend(format!("start the sqlite writer: {e}")))?;
    started
        .await
        .map_err(|_| StoreError::Backend("sqlite writer stopped".into()))??;
    Ok(SqlStore::new(Sqlite {
        path: path.to_path_buf(),
        readers: Mutex::new(Vec::new()),
        writer: tx,
    }))
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Owns the only writing connection: migrates, reports readiness, then commits groups until
/// the store is dropped.
fn writer_thread(
    path: &Path,
    mut rx: mpsc::Receiver<WriteJob>,
    ready: oneshot::Sender<StoreResult<()>>,
) {
    // `apply_changes` is async only because PostgreSQL needs it; over this connection every
    // await completes at once, so a current-thread runtime just drives it.
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(StoreError::Backend(format!("writer runtime: {e}"))));
            return;
        }
    };
    let opened = open_connection(path, OpenFlags::default()).and_then(|mut conn| {
        in_transaction(&mut conn, |c| {
            runtime.block_on(migrate(&mut Tx(c), now_millis()))
        })?;
        Ok(conn)
    });
    let mut conn = match opened {
        Ok(conn) => {
            let _ = ready.send(Ok(()));
            conn
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let results = write_group(&mut conn, &runtime, &mut group);
        for (job, result) in group.drain(..).zip(results) {
            let _ = job.done.send(result);
        }
    }
}

/// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back when it fails.
fn in_transaction<T>(
    conn: &mut Connection,
    body: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| backend(&e))?;
    match body(conn) {
        Ok(value) => {
            conn.execute_batch("COMMIT").map_err(|e| backend(&e))?;
            Ok(value)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Commits every job of the group in one transaction; returns each job's own outcome.
fn write_group(
    conn: &mut Connection,
    runtime: &tokio::runtime::Runtime,
    group: &mut [WriteJob],
) -> Vec<StoreResult<()>> {
    if group.len() > 1 {
        // Borrowed: the batches are kept for the one-by-one path below.
        let batches: Vec<&[Change]> = group.iter().map(|job| job.changes.as_slice()).collect();
        let together = in_transaction(conn, |conn| {
            runtime.block_on(apply_batches(&mut Tx(conn), &batches))
        });
        match together {
            Ok(()) => return group.iter().map(|_| Ok(())).collect(),
            Err(e) => tracing::debug!(error = %e, "group failed; applying its batches one by one"),
        }
    }
    write_one_by_one(conn, runtime, group)
}

/// The group's jobs in one transaction, each in its own savepoint: a failing job writes nothing
/// and fails alone.
fn write_one_by_one(
    conn: &mut Connection,
    runtime: &tokio::runtime::Runtime,
    group: &mut [WriteJob],
) -> Vec<StoreResult<()>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return group.iter().map(|_| Err(backend(&e))).collect();
    }
    let mut results = Vec::with_capacity(group.len());
    for job in group.iter() {
        results.push(apply_in_savepoint(conn, runtime, &job.changes));
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        tracing::error!(error = %e, "sqlite group commit failed");
        let _ = conn.execute_batch("ROLLBACK");
        return results.iter().map(|_| Err(backend(&e))).collect();
    }
    results
}

fn apply_in_savepoint(
    conn: &mut Connection,
    runtime: &tokio::runtime::Runtime,
    changes: &[Change],
) -> StoreResult<()> {
    conn.execute_batch("SAVEPOINT batch")
        .map_err(|e| backend(&e))?;
    match runtime.block_on(apply_changes(&mut Tx(&mut *conn), changes)) {
        Ok(()) => conn.execute_batch("RELEASE batch").map_err(|e| backend(&e)),
        Err(e) => {
            conn.execute_batch("ROLLBACK TO batch; RELEASE batch")
                .map_err(|e| backend(&e))?;
            Err(e)
        }
    }
}

impl Sqlite {
    /// Runs `read` on an idle read connection (opening one when none is idle).
    fn with_reader<T>(&self, read: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.readers.lock().map_or(None, |mut r| r.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => open_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        let result = read(&conn);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < KEEP_READERS
        {
            readers.push(conn);
        }
        result
    }
}

#[async_trait]
impl Database for Sqlite {
    async fn query(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
        self.with_reader(|conn| read_rows(conn, sql, args))
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
