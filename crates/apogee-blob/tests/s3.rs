//! The S3 adapter against a real S3 API: `scripts/with-s3.sh` (moto) sets
//! `APOGEE_TEST_S3_ENDPOINT`; without it the tests say so and pass.
#![cfg(feature = "s3")]

use apogee_blob::{S3BlobStore, S3Config};
use apogee_core::blobs::{BlobError, BlobKey, BlobStore, ByteRange, conformance, read_all};

fn endpoint() -> Option<String> {
    let endpoint = std::env::var("APOGEE_TEST_S3_ENDPOINT").ok();
    if endpoint.is_none() {
        eprintln!("skipped: APOGEE_TEST_S3_ENDPOINT is not set (scripts/with-s3.sh starts one)");
    }
    endpoint
}

/// A fresh bucket (moto accepts unsigned requests).
async fn bucket(endpoint: &str) -> String {
    let name = format!("apogee-{}", uuid_like());
    let resp = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
    name
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}-{}", std::process::id())
}

fn config(endpoint: &str, bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_string(),
        endpoint: Some(endpoint.to_string()),
        region: None,
        access_key_id: Some("testing".into()),
        secret_access_key: Some("hunter2-secret".into()),
    }
}

/// What the bucket holds: object keys and unfinished multipart uploads, from the raw XML.
async fn bucket_state(endpoint: &str, bucket: &str) -> (usize, usize) {
    let client = reqwest::Client::new();
    let objects = client
        .get(format!("{endpoint}/{bucket}?list-type=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let uploads = client
        .get(format!("{endpoint}/{bucket}?uploads"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (
        objects.matches("<Key>").count(),
        uploads.matches("<UploadId>").count(),
    )
}

#[tokio::test]
async fn s3_store_conforms() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = bucket(&endpoint).await;
    let store = S3BlobStore::open(&config(&endpoint, &bucket))
        .await
        .unwrap();
    conformance::check(&store).await;
    assert_eq!(bucket_state(&endpoint, &bucket).await, (0, 0));
}

#[tokio::test]
async fn s3_multipart_uploads_are_streamed_capped_and_aborted() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = bucket(&endpoint).await;
    let store = S3BlobStore::open(&config(&endpoint, &bucket))
        .await
        .unwrap();
    let key = BlobKey::new("uploads/big").unwrap();
    // 12 MiB in 64 KiB chunks: three multipart parts.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    let chunks: Vec<Vec<u8>> = data.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let n = store
        .put(&key, &mut Chunks(chunks.clone()), Some(data.len() as u64))
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    // A range across the first part boundary (5 MiB).
    let (start, end) = (5 * 1024 * 1024 - 10, 5 * 1024 * 1024 + 10);
    let mut got = store
        .get(&key, Some(ByteRange { start, end }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.size, data.len() as u64);
    let bytes = read_all(got.chunks.as_mut()).await.unwrap();
    assert_eq!(bytes, &data[start as usize..end as usize]);

    // Over the cap after two parts went out: rejected, the upload aborted, the old object kept.
    let other = BlobKey::new("uploads/too-big").unwrap();
    let err = store
        .put(&other, &mut Chunks(chunks), Some(11 * 1024 * 1024))
        .await
        .unwrap_err();
    assert_eq!(err, BlobError::TooLarge(11 * 1024 * 1024));
    assert!(store.get(&other, None).await.unwrap().is_none());
    assert_eq!(bucket_state(&endpoint, &bucket).await, (1, 0));
    store.delete(&key).await.unwrap();
    assert_eq!(bucket_state(&endpoint, &bucket).await, (0, 0));
}

#[tokio::test]
async fn s3_misconfiguration_fails_at_open_without_secrets() {
    let Some(endpoint) = endpoint() else { return };
    let err = S3BlobStore::open(&config(&endpoint, "no-such-bucket-apogee"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-bucket-apogee"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let shown = format!("{:?}", config(&endpoint, "b"));
    assert!(
        !shown.contains("hunter2") && !shown.contains("testing"),
        "{shown}"
    );
}

struct Chunks(Vec<Vec<u8>>);

#[async_trait::async_trait]
impl apogee_core::blobs::ByteSource for Chunks {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
    }
}
