use apogee_blob::FsBlobStore;
use apogee_core::blobs::{BlobKey, BlobStore, BytesSource, conformance};

#[tokio::test]
async fn filesystem_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path().join("uploads")).await.unwrap();
    conformance::check(&store).await;
    // Nothing is left in the temporary area after failed and successful writes.
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("uploads/.tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[tokio::test]
async fn files_stay_under_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path().join("uploads")).await.unwrap();
    let key = BlobKey::new("uploads/x1").unwrap();
    store
        .put(&key, &mut BytesSource::new(b"hello".to_vec()), None)
        .await
        .unwrap();
    let on_disk = std::fs::read(dir.path().join("uploads/uploads/x1")).unwrap();
    assert_eq!(on_disk, b"hello");
    assert!(BlobKey::new("../escape").is_err());
}

#[tokio::test]
async fn leftover_temporary_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("uploads");
    std::fs::create_dir_all(root.join(".tmp")).unwrap();
    std::fs::write(root.join(".tmp/partial"), b"half").unwrap();
    FsBlobStore::open(&root).await.unwrap();
    assert!(!root.join(".tmp/partial").exists());
}
