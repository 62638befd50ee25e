//! The sqlx glue both backends need, written once. It is a macro because this crate does not
//! depend on sqlx: each backend expands it against its own sqlx driver.

/// Defines, in the calling crate, `Tx` (an open transaction implementing [`SqlTx`](crate::SqlTx)),
/// `bind` (our [`Arg`](crate::Arg)s onto a sqlx query), `decode` (a row into [`Cell`](crate::Cell)s)
/// and `backend` (sqlx errors into store errors, unique violations as conflicts).
/// `modifies_in_with`: whether the database runs writes in `WITH` clauses ([`SqlTx::modifies_in_with`](crate::SqlTx::modifies_in_with)).
#[macro_export]
macro_rules! sqlx_glue {
    ($db:ty, $row:ty, modifies_in_with = $modifies_in_with:expr) => {
        struct Tx<'c>(sqlx::Transaction<'c, $db>);

        fn bind<'q>(
            sql: &'q str,
            args: Vec<$crate::Arg>,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            args.into_iter().fold(sqlx::query(sql), |q, a| match a {
                $crate::Arg::Text(s) => q.bind(s),
                $crate::Arg::Int(n) => q.bind(n),
                $crate::Arg::NullText => q.bind(None::<String>),
                $crate::Arg::NullInt => q.bind(None::<i64>),
            })
        }

        /// Queries select only TEXT and BIGINT columns: try an integer, then text.
        fn decode(row: &$row) -> $crate::Row {
            use sqlx::{Row as _, ValueRef as _};
            (0..row.columns().len())
                .map(|i| match row.try_get_raw(i) {
                    Ok(v) if v.is_null() => $crate::Cell::Null,
                    _ => match row.try_get::<i64, _>(i) {
                        Ok(n) => $crate::Cell::Int(n),
                        Err(_) => row
                            .try_get::<String, _>(i)
                            .map_or($crate::Cell::Null, $crate::Cell::Text),
                    },
                })
                .collect()
        }

        fn backend(e: &sqlx::Error) -> apogee_core::error::StoreError {
            use apogee_core::error::StoreError;
            match e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    // PostgreSQL names the constraint; SQLite says "UNIQUE constraint failed: t.col".
                    StoreError::Conflict(db.constraint().unwrap_or(db.message()).to_string())
                }
                // PostgreSQL's deadlock_detected and serialization_failure.
                sqlx::Error::Database(db)
                    if matches!(db.code().as_deref(), Some("40P01" | "40001")) =>
                {
                    StoreError::Contention(db.message().to_string())
                }
                other => StoreError::Backend(other.to_string()),
            }
        }

        #[async_trait::async_trait]
        impl $crate::SqlTx for Tx<'_> {
            async fn exec(
                &mut self,
                sql: &str,
                args: Vec<$crate::Arg>,
            ) -> apogee_core::store::StoreResult<u64> {
                let done = bind(sql, args)
                    .execute(&mut *self.0)
                    .await
                    .map_err(|e| backend(&e))?;
                Ok(done.rows_affected())
            }

            async fn query(
                &mut self,
                sql: &str,
                args: Vec<$crate::Arg>,
            ) -> apogee_core::store::StoreResult<Vec<$crate::Row>> {
                let rows = bind(sql, args)
                    .fetch_all(&mut *self.0)
                    .await
                    .map_err(|e| backend(&e))?;
                Ok(rows.iter().map(decode).collect())
            }

            fn modifies_in_with(&self) -> bool {
                $modifies_in_with
            }
        }
    };
}
