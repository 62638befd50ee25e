//! What the PostgreSQL tests share: a fresh database on the server the test scripts start.

use sqlx::Connection;

/// The URL of a new, empty database named `<label>_<random>` on the server that
/// `APOGEE_TEST_DATABASE_URL` names; `None` (the test skips) when no server is configured.
pub async fn fresh_database(label: &str) -> Option<String> {
    let Ok(base) = std::env::var("APOGEE_TEST_DATABASE_URL") else {
        eprintln!("skipped: no database configured");
        return None;
    };
    let name = format!(
        "{label}_{}",
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
    Some(format!("{root}/{name}"))
}
