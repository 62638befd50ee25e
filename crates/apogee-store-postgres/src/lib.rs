//! PostgreSQL storage for deployments that outgrow one machine. Each batch of changes is one
//! transaction; migrations run under an advisory lock so several nodes can start at once.

use apogee_core::error::StoreError;
use apogee_core::store::{Change, StoreResult};
use apogee_store_sql::{Arg, Cell, Database, Row, SqlStore, SqlTx, apply_changes, migrate};
use async_trait::async_trait;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Row as _, ValueRef};
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

struct Tx<'c>(sqlx::Transaction<'c, sqlx::Postgres>);

fn bind<'q>(
    sql: &'q str,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    args.into_iter().fold(sqlx::query(sql), |q, a| match a {
        Arg::Text(s) => q.bind(s),
        Arg::Int(n) => q.bind(n),
        Arg::NullText => q.bind(None::<String>),
        Arg::NullInt => q.bind(None::<i64>),
    })
}

fn decode(row: &PgRow) -> Row {
    (0..row.columns().len())
        .map(|i| match row.try_get_raw(i) {
            Ok(v) if v.is_null() => Cell::Null,
            _ => match row.try_get::<i64, _>(i) {
                Ok(n) => Cell::Int(n),
                Err(_) => row.try_get::<String, _>(i).map_or(Cell::Null, Cell::Text),
            },
        })
        .collect()
}

fn backend(e: &sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.constraint().unwrap_or(db.message()).to_string())
        }
        other => StoreError::Backend(other.to_string()),
    }
}

#[async_trait]
impl SqlTx for Tx<'_> {
    async fn exec(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
        let done = bind(sql, args)
            .execute(&mut *self.0)
            .await
            .map_err(|e| backend(&e))?;
        Ok(done.rows_affected())
    }

    async fn query(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<Row>> {
        let rows = bind(sql, args)
            .fetch_all(&mut *self.0)
            .await
            .map_err(|e| backend(&e))?;
        Ok(rows.iter().map(decode).collect())
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
        let mut tx = Tx(self.pool.begin().await.map_err(|e| backend(&e))?);
        apply_changes(&mut tx, changes).await?;
        tx.0.commit().await.map_err(|e| backend(&e))
    }
}
