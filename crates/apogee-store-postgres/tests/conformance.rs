//! The shared store conformance suite, on a fresh PostgreSQL database per test. Runs when
//! `APOGEE_TEST_DATABASE_URL` names a server (the test scripts start one); skips otherwise.

use apogee_core::store::Store;
use sqlx::Connection;
use std::sync::Arc;

async fn fresh() -> Option<Arc<dyn Store>> {
    let base = std::env::var("APOGEE_TEST_DATABASE_URL").ok()?;
    let name = format!(
        "conformance_{}",
        apogee_core::domain::random_id().to_lowercase()
    );
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (root, _) = base.rsplit_once('/').expect("database URL with a path");
    let store = apogee_store_postgres::open(&format!("{root}/{name}"))
        .await
        .expect("open postgres");
    Some(Arc::new(store))
}

apogee_core::conformance_tests!(fresh());
