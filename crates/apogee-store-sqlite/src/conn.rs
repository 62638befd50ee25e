//! rusqlite glue: connections with the store's pragmas, `$n` parameters bound by name, rows
//! decoded into [`Cell`]s, and errors mapped to store errors.

use crate::wal_writes;
use apogee_core::error::StoreError;
use apogee_core::store::StoreResult;
use apogee_store_sql::{Arg, Cell, Row, SqlTx};
use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, OpenFlags, ffi};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Prepared statements kept per connection; the store uses fewer distinct statements than this
/// on its hot paths, so they are parsed once per connection.
const STATEMENT_CACHE: usize = 256;

/// WAL pages (4 KiB each) after which a commit checkpoints: at most 16 MiB of WAL. Ingest
/// measured 4,700–4,900 messages/s at SQLite's default of 1,000 and 5,900–6,200 at 4,000
/// (docs/BENCHMARKS.md).
const WAL_AUTOCHECKPOINT: u32 = 4_000;

/// Opens `path` with the store's settings: WAL, `synchronous=FULL`, foreign keys, a busy timeout
/// (another process — `apogee admin` — may hold the write lock briefly).
pub(crate) fn open_connection(path: &Path, flags: OpenFlags) -> StoreResult<Connection> {
    let create = !flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY);
    let flags = if create {
        flags | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        flags
    };
    // A connection that writes hands each commit's WAL frames to the kernel in a few writes
    // (wal_writes.rs); that relies on the `synchronous = FULL` set below.
    let conn = if create {
        wal_writes::register().map_err(|rc| {
            StoreError::Backend(format!("register the WAL-writes VFS: SQLite code {rc}"))
        })?;
        Connection::open_with_flags_and_vfs(path, flags, wal_writes::VFS_NAME)
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(|e| backend(&e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| backend(&e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if create {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| backend(&e))?;
    }
    // Memory-mapped reads: a connection discards its page cache whenever another one has
    // written, so without mmap every read would copy its pages in again with read(2).
    // Temporary storage in memory: a statement that may change several rows (a group's
    // multi-row appends) keeps a statement journal of the pages it touches, which would
    // otherwise be a temporary file written through the kernel.
    // Checkpoints every WAL_AUTOCHECKPOINT pages rather than SQLite's 1,000: a checkpoint
    // copies each page once however many commits wrote it, and under load the same pages (a
    // busy room's index leaves and row, its members' subscriptions) are written by commit
    // after commit.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT};"
    ))
    .map_err(|e| backend(&e))?;
    Ok(conn)
}

/// The writer's connection inside its open transaction.
pub(crate) struct Tx<'c>(pub &'c mut Connection);

#[async_trait]
impl SqlTx for Tx<'_> {
    async fn exec(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
        let mut stmt = prepare(&*self.0, sql, args)?;
        let changed = stmt.raw_execute().map_err(|e| backend(&e))?;
        Ok(changed as u64)
    }

    async fn query(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
        read_rows(&*self.0, sql, args)
    }

    /// The writer runs every change in a transaction or savepoint it rolls back on failure
    /// (`write_group`).
    fn fails_in_place(&self) -> bool {
        true
    }
}

/// Runs a query and collects its rows.
pub(crate) fn read_rows(conn: &Connection, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
    let mut stmt = prepare(conn, sql, args)?;
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| backend(&e))? {
        let mut cells = Vec::with_capacity(columns);
        for i in 0..columns {
            cells.push(decode(row.get_ref(i).map_err(|e| backend(&e))?));
        }
        out.push(cells);
    }
    Ok(out)
}

/// A cached statement with `args` bound to `$1`, `$2`, …: SQLite numbers `$name` parameters in
/// order of first appearance, so one that SQL repeats or reorders is looked up by its name.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: Vec<Arg>,
) -> StoreResult<CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| backend(&e))?;
    // Most statements number their parameters in order (a group's appends have hundreds):
    // those bind by position. Asking SQLite for a parameter's name or index walks its list of
    // names, which made binding hundreds of them quadratic.
    let in_order = in_order(sql);
    for (i, arg) in args.into_iter().enumerate() {
        let n = i + 1;
        let index = match in_order {
            Some(highest) if n <= highest => n,
            Some(_) => continue,
            None => match stmt
                .parameter_index(&format!("${n}"))
                .map_err(|e| backend(&e))?
            {
                Some(index) => index,
                None => continue,
            },
        };
        let bound = match arg {
            Arg::Text(s) => stmt.raw_bind_parameter(index, s),
            Arg::Int(n) => stmt.raw_bind_parameter(index, n),
            Arg::NullText | Arg::NullInt => stmt.raw_bind_parameter(index, rusqlite::types::Null),
        };
        bound.map_err(|e| backend(&e))?;
    }
    Ok(stmt)
}

/// Statement texts kept by [`in_order`] per thread; more start the memory over.
const IN_ORDER_KEPT: usize = 1_024;

thread_local! {
    /// [`highest_in_order`] of each statement text this thread has run, so a text (a group's
    /// appends are kilobytes) is scanned once rather than at every execution: hashing it is
    /// several times cheaper than the byte-by-byte scan.
    static IN_ORDER: RefCell<HashMap<Box<str>, Option<usize>, foldhash::fast::RandomState>> =
        RefCell::default();
}

/// [`highest_in_order`], remembered per statement text.
fn in_order(sql: &str) -> Option<usize> {
    IN_ORDER.with_borrow_mut(|known| {
        if let Some(&highest) = known.get(sql) {
            return highest;
        }
        let highest = highest_in_order(sql);
        if known.len() >= IN_ORDER_KEPT {
            known.clear();
        }
        known.insert(sql.into(), highest);
        highest
    })
}

/// The highest `$n` of `sql` when its parameters first appear as `$1`, `$2`, … in order (so
/// SQLite's index of `$n` is `n`); `None` when they do not, or when a parameter is not a plain
/// number. Quoted text and comments are skipped, as SQLite's tokenizer skips them.
fn highest_in_order(sql: &str) -> Option<usize> {
    let b = sql.as_bytes();
    let mut highest = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(b.len(), |end| i + 2 + end + 2);
            }
            b'$' => {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let plain_end = b.get(i).is_none_or(|&c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b':' | b'('))
                });
                let n: usize = sql[start..i].parse().ok().filter(|_| plain_end)?;
                if n == highest + 1 {
                    highest = n;
                } else if n > highest {
                    return None;
                }
            }
            _ => i += 1,
        }
    }
    Some(highest)
}

/// Queries select only TEXT and BIGINT columns; anything else is read as the nearest of those.
fn decode(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Real(f) => Cell::Int(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Cell::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

/// Unique and primary-key violations become conflicts (SQLite's message names the column, as
/// "UNIQUE constraint failed: users.username_lower"); everything else is a backend error.
pub(crate) fn backend(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(err, message)
            if matches!(
                err.extended_code,
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StoreError::Conflict(message.clone().unwrap_or_else(|| err.to_string()))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(sql: &str, args: Vec<Arg>) -> Vec<i64> {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = prepare(&conn, sql, args).unwrap();
        let width = stmt.column_count();
        stmt.raw_query()
            .next()
            .unwrap()
            .map(|row| (0..width).map(|i| row.get(i).unwrap()).collect())
            .unwrap()
    }

    #[test]
    fn parameters_bind_by_number_in_any_order() {
        let args = || vec![Arg::Int(10), Arg::Int(20), Arg::Int(30)];
        assert_eq!(select("SELECT $1, $2, $3", args()), [10, 20, 30]);
        assert_eq!(select("SELECT $3, $1, $2", args()), [30, 10, 20]);
        assert_eq!(select("SELECT $2, $2, $1", args()), [20, 20, 10]);
        assert_eq!(
            select("SELECT $1, $3", args()),
            [10, 30],
            "an unused one is skipped"
        );
        assert_eq!(select("SELECT $1, length('$3'), $2", args()), [10, 2, 20]);
        assert_eq!(select("SELECT $1 -- $3\n, $2", args()), [10, 20]);
        assert_eq!(select("SELECT $1, $2 /* $1 */", args()), [10, 20]);
    }

    #[test]
    fn parameters_in_order_are_recognised_from_the_text() {
        assert_eq!(highest_in_order("SELECT 1"), Some(0));
        assert_eq!(highest_in_order("SELECT $1, $2, $1, $3"), Some(3));
        assert_eq!(highest_in_order("SELECT $2, $1"), None);
        assert_eq!(highest_in_order("SELECT $1, $3"), None);
        assert_eq!(highest_in_order("SELECT '$2', $1"), Some(1));
        assert_eq!(highest_in_order("SELECT \"$2\", $1 -- $3"), Some(1));
        assert_eq!(highest_in_order("SELECT $1x"), None);
        assert_eq!(highest_in_order("SELECT $name"), None);
    }
}
