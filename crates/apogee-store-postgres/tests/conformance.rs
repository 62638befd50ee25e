//! The shared store conformance suite, on a fresh PostgreSQL database per test. Runs when
//! `APOGEE_TEST_DATABASE_URL` names a server (the test scripts start one); skips otherwise.

mod common;

use apogee_core::store::Store;
use std::sync::Arc;

async fn fresh() -> Option<Arc<dyn Store>> {
    let url = common::fresh_database("conformance").await?;
    let store = apogee_store_postgres::open(&url)
        .await
        .expect("open postgres");
    Some(Arc::new(store))
}

apogee_core::conformance_tests!(fresh());
