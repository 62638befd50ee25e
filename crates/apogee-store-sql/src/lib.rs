//! The storage logic both SQL backends share. A backend supplies a [`Database`]: a way to run
//! read queries and to run a closure-free batch of writes in one transaction through a [`SqlTx`].
//! Everything else — schema, queries, how a [`Change`] becomes rows — lives here, once.

mod appends;
mod apply;
mod audit;
mod emoji;
mod federation;
mod glue;
pub mod history;
mod integrations;
mod moderation;
mod outbox;
mod reads;
mod recovery;
mod room_columns;
pub mod schema;

pub use apply::{apply_batches, apply_changes};

use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult};
use async_trait::async_trait;

/// A bound query parameter. NULLs carry their column type, which PostgreSQL needs to plan
/// `$n IS NULL OR col = $n` filters.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}
impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}
impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}
impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}
impl From<bool> for Arg {
    fn from(b: bool) -> Self {
        Arg::Int(b as i64)
    }
}
impl From<Option<String>> for Arg {
    fn from(o: Option<String>) -> Self {
        o.map_or(Arg::NullText, Arg::Text)
    }
}
impl From<Option<&str>> for Arg {
    fn from(o: Option<&str>) -> Self {
        o.map_or(Arg::NullText, Arg::from)
    }
}
impl From<Option<i64>> for Arg {
    fn from(o: Option<i64>) -> Self {
        o.map_or(Arg::NullInt, Arg::Int)
    }
}
impl From<Option<bool>> for Arg {
    fn from(o: Option<bool>) -> Self {
        o.map_or(Arg::NullInt, Arg::from)
    }
}

/// One result column. Queries select only TEXT and BIGINT columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Null,
}

impl Cell {
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(n) => *n,
            _ => 0,
        }
    }
    pub fn int_or_null(&self) -> Option<i64> {
        match self {
            Cell::Int(n) => Some(*n),
            _ => None,
        }
    }
}

pub type Row = Vec<Cell>;

/// Builds an argument list: `args![a, b]`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::Arg::from($a)),*] };
}

/// A connection inside an open transaction.
#[async_trait]
pub trait SqlTx: Send {
    /// Runs a statement; returns the number of rows it changed.
    async fn exec(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<u64>;
    async fn query(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>>;
    /// Whether `WITH` clauses may write (PostgreSQL; not SQLite): several writes then go in one
    /// statement, one round trip.
    fn modifies_in_with(&self) -> bool {
        false
    }
    /// Whether multi-row writes may say `OR FAIL` (SQLite): a failing statement then stops
    /// where it failed, keeping the rows it already wrote, instead of undoing itself. Every
    /// write runs in a transaction or savepoint that is rolled back whole when anything in it
    /// fails, so that undo is never needed; keeping it open would have SQLite copy each page a
    /// multi-row statement touches into a statement journal first.
    fn fails_in_place(&self) -> bool {
        false
    }
}

/// What a backend provides to [`SqlStore`].
#[async_trait]
pub trait Database: Send + Sync + 'static {
    /// Runs a read-only query on any connection.
    async fn query(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>>;
    /// Applies the batch atomically (via [`apply_changes`]) and returns once it is durable.
    async fn commit(&self, changes: Vec<Change>) -> StoreResult<()>;
}

/// The store: every read and write trait of core, over a backend [`Database`].
pub struct SqlStore<D> {
    db: D,
}

impl<D: Database> SqlStore<D> {
    pub fn new(db: D) -> Self {
        Self { db }
    }

    pub fn database(&self) -> &D {
        &self.db
    }
}

/// Applies pending migrations inside the given transaction. Returns how many ran.
pub async fn migrate(tx: &mut dyn SqlTx, now_ms: i64) -> StoreResult<usize> {
    tx.exec(schema::CREATE_MIGRATIONS_TABLE, vec![]).await?;
    let done = tx
        .query("SELECT version FROM schema_migrations", vec![])
        .await?;
    let done: Vec<i64> = done.iter().map(|r| r[0].int()).collect();
    let mut ran = 0;
    for (version, statements) in schema::MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        for sql in *statements {
            tx.exec(sql, vec![]).await?;
        }
        if *version == schema::ROOM_COLUMNS_VERSION {
            room_columns::fill_from_documents(tx).await?;
        }
        if *version == schema::ROOM_ACTIVITY_VERSION {
            room_columns::fill_last_message_ids(tx).await?;
        }
        tx.exec(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            args![*version, now_ms],
        )
        .await?;
        ran += 1;
    }
    Ok(ran)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(cell: &Cell) -> StoreResult<T> {
    let text = cell
        .text()
        .ok_or_else(|| StoreError::Backend("document column is null".into()))?;
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("decode: {e}")))
}

/// `text` with `%`, `_` and `\` escaped for a `LIKE ... ESCAPE '\'` pattern.
fn like_escaped(text: &str) -> String {
    let mut p = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

/// A case-insensitive "contains" `LIKE ... ESCAPE '\'` pattern (for lowercased columns).
pub(crate) fn contains_pattern(needle: &str) -> String {
    format!("%{}%", like_escaped(&needle.to_lowercase()))
}

/// A list in one column, `|a|b|`, so that "holds X" is one `LIKE` ([`member_pattern`]).
pub(crate) fn delimited(items: &[String]) -> String {
    format!("|{}|", items.join("|"))
}

/// The `LIKE ... ESCAPE '\'` pattern of a [`delimited`] column holding `item`.
pub(crate) fn member_pattern(item: &str) -> String {
    format!("%|{}|%", like_escaped(item))
}
