//! The shared store conformance suite, on a fresh SQLite file per test.

use apogee_core::store::Store;
use std::sync::Arc;

async fn fresh() -> Option<Arc<dyn Store>> {
    // Leaked so the directory outlives the store for the rest of the test process.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    let store = apogee_store_sqlite::open(&dir.path().join("apogee.db"))
        .await
        .expect("open sqlite");
    Some(Arc::new(store))
}

apogee_core::conformance_tests!(fresh());

#[tokio::test]
async fn data_survives_reopening() {
    use apogee_core::store::{Change, Writer};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apogee.db");
    {
        let store = apogee_store_sqlite::open(&path).await.unwrap();
        let value = serde_json::json!("kept");
        store
            .commit(vec![Change::SetSetting {
                id: "Site_Name".into(),
                value,
            }])
            .await
            .unwrap();
    }
    let store = apogee_store_sqlite::open(&path).await.unwrap();
    use apogee_core::store::SettingStore;
    assert_eq!(store.settings().await.unwrap()[0].1, "kept");
}
