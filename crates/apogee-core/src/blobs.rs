//! The `BlobStore` port: file contents by opaque key, streamed in both directions so an upload
//! or download never has to sit whole in memory. Adapters: the filesystem and S3 (`object_store`),
//! in `apogee-blob`; [`MemoryBlobStore`] serves tests and stores without a data dir.

use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

/// Size of the chunks adapters hand out when reading.
pub const CHUNK: usize = 64 * 1024;

/// A storage key: 1–8 `/`-separated segments of `[A-Za-z0-9_-]`, each 1–64 characters. Built
/// only by [`BlobKey::new`], so an adapter can map it to a path or object name without escaping
/// and no key can reach outside its store (no `.`/`..`, no absolute paths, no separators).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new(key: &str) -> Result<Self, BlobError> {
        let segments: Vec<&str> = key.split('/').collect();
        let ok = (1..=8).contains(&segments.len())
            && segments.iter().all(|s| {
                (1..=64).contains(&s.len())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if ok {
            Ok(Self(key.to_string()))
        } else {
            Err(BlobError::InvalidKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlobError {
    /// More than the allowed bytes arrived; nothing was kept.
    #[error("blob larger than {0} bytes")]
    TooLarge(u64),
    /// The data being stored could not be read (a truncated or malformed upload).
    #[error("upload stream failed: {0}")]
    Source(String),
    #[error("invalid blob key")]
    InvalidKey,
    /// The requested range starts at or past the end of the blob (of this many bytes).
    #[error("range outside a blob of {0} bytes")]
    OutOfRange(u64),
    /// The storage itself failed (disk, network). Never carries credentials.
    #[error("blob storage failed: {0}")]
    Backend(String),
}

/// A pull-based stream of bytes: an upload being received, or a stored blob being read.
#[async_trait]
pub trait ByteSource: Send {
    /// The next non-empty chunk, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError>;
}

/// A whole byte buffer as a source (tests, small blobs).
pub struct BytesSource(Option<Vec<u8>>);

impl BytesSource {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self((!bytes.is_empty()).then_some(bytes))
    }
}

#[async_trait]
impl ByteSource for BytesSource {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self.0.take())
    }
}

/// Reads a source to the end (tests and small blobs only).
pub async fn read_all(source: &mut dyn ByteSource) -> Result<Vec<u8>, BlobError> {
    let mut out = Vec::new();
    while let Some(chunk) = source.next_chunk().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Bytes `start..end` (end exclusive) of a blob, as `get` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// What of a blob of `size` bytes this range reads: `start..min(end, size)`, or
    /// [`BlobError::OutOfRange`] when that is empty. Adapters share this rule.
    pub fn within(&self, size: u64) -> Result<std::ops::Range<u64>, BlobError> {
        let end = self.end.min(size);
        if self.start >= end {
            return Err(BlobError::OutOfRange(size));
        }
        Ok(self.start..end)
    }
}

/// A stored blob opened for reading.
pub struct BlobBody {
    /// The whole blob's size.
    pub size: u64,
    /// The bytes `chunks` yields: `0..size`, or the part of a requested [`ByteRange`] that
    /// exists.
    pub range: std::ops::Range<u64>,
    pub chunks: Box<dyn ByteSource>,
}

#[async_trait]
pub trait BlobStore: Send + Sync + Debug {
    /// Streams `body` into `key`, replacing what was there. Fails with [`BlobError::TooLarge`]
    /// as soon as more than `max` bytes arrive. The blob becomes visible only complete: on any
    /// failure nothing new is left in the store. Returns the number of bytes stored.
    async fn put(
        &self,
        key: &BlobKey,
        body: &mut dyn ByteSource,
        max: Option<u64>,
    ) -> Result<u64, BlobError>;

    /// The blob, or `None` when there is none under `key`. With a range, only those bytes are
    /// read (clipped to the blob's end; [`BlobError::OutOfRange`] when none of them exist),
    /// without reading or buffering the rest.
    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError>;

    /// Removes the blob; removing a missing blob succeeds.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
}

/// Blobs in memory: for tests and servers started without a data directory.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<String, std::sync::Arc<Vec<u8>>>>,
}

struct SharedChunks {
    data: std::sync::Arc<Vec<u8>>,
    at: usize,
    end: usize,
}

#[async_trait]
impl ByteSource for SharedChunks {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        if self.at >= self.end {
            return Ok(None);
        }
        let end = (self.at + CHUNK).min(self.end);
        let chunk = self.data[self.at..end].to_vec();
        self.at = end;
        Ok(Some(chunk))
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: &mut dyn ByteSource,
        max: Option<u64>,
    ) -> Result<u64, BlobError> {
        let mut data = Vec::new();
        while let Some(chunk) = body.next_chunk().await? {
            data.extend_from_slice(&chunk);
            if let Some(max) = max
                && data.len() as u64 > max
            {
                return Err(BlobError::TooLarge(max));
            }
        }
        let size = data.len() as u64;
        self.blobs
            .lock()
            .expect("blob map")
            .insert(key.0.clone(), std::sync::Arc::new(data));
        Ok(size)
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError> {
        let Some(data) = self.blobs.lock().expect("blob map").get(&key.0).cloned() else {
            return Ok(None);
        };
        let size = data.len() as u64;
        let range = match range {
            Some(r) => r.within(size)?,
            None => 0..size,
        };
        Ok(Some(BlobBody {
            size,
            range: range.clone(),
            chunks: Box::new(SharedChunks {
                data,
                at: range.start as usize,
                end: range.end as usize,
            }),
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.blobs.lock().expect("blob map").remove(&key.0);
        Ok(())
    }
}

/// The checks every `BlobStore` adapter must pass (run by each adapter's tests).
pub mod conformance {
    use super::*;

    /// A source that yields `chunks` and then fails, like a truncated upload.
    pub struct FailingSource(pub Vec<Vec<u8>>);

    #[async_trait]
    impl ByteSource for FailingSource {
        async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
            if self.0.is_empty() {
                Err(BlobError::Source("truncated".into()))
            } else {
                Ok(Some(self.0.remove(0)))
            }
        }
    }

    /// Round trip, replace, size cap, failed sources, deletes.
    pub async fn check(store: &dyn BlobStore) {
        let key = BlobKey::new("uploads/abc-1").unwrap();
        assert!(store.get(&key, None).await.unwrap().is_none());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let n = store
            .put(&key, &mut BytesSource::new(data.clone()), Some(200_000))
            .await
            .unwrap();
        assert_eq!(n, 200_000);
        let mut got = store.get(&key, None).await.unwrap().expect("stored");
        assert_eq!(got.size, 200_000);
        assert_eq!(read_all(got.chunks.as_mut()).await.unwrap(), data);

        // Too large: rejected, the previous blob stays as it was.
        let err = store
            .put(&key, &mut BytesSource::new(vec![1; 1001]), Some(1000))
            .await
            .unwrap_err();
        assert_eq!(err, BlobError::TooLarge(1000));
        let mut got = store.get(&key, None).await.unwrap().expect("still stored");
        assert_eq!(read_all(got.chunks.as_mut()).await.unwrap(), data);

        // A failing source leaves nothing under a new key.
        let other = BlobKey::new("uploads/abc-2").unwrap();
        let err = store
            .put(&other, &mut FailingSource(vec![vec![7; 10]]), None)
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::Source(_)));
        assert!(store.get(&other, None).await.unwrap().is_none());

        // Empty blobs are blobs.
        store
            .put(&other, &mut BytesSource::new(Vec::new()), None)
            .await
            .unwrap();
        assert_eq!(
            store.get(&other, None).await.unwrap().expect("empty").size,
            0
        );

        check_ranges(store, &key, &data).await;

        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(store.get(&key, None).await.unwrap().is_none());
        store.delete(&other).await.unwrap();
        assert!(
            store
                .get(&other, Some(ByteRange { start: 0, end: 1 }))
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Ranged reads of `key`, which holds `data`: exact bytes, clipped ends, out of range.
    async fn check_ranges(store: &dyn BlobStore, key: &BlobKey, data: &[u8]) {
        let size = data.len() as u64;
        for (start, end) in [
            (0, 1),
            (0, size),
            (1, 2),
            (65_000, 140_001),
            (size - 1, size),
            (size - 10, size + 1_000_000),
            (12_345, u64::MAX),
        ] {
            let mut got = store
                .get(key, Some(ByteRange { start, end }))
                .await
                .unwrap()
                .expect("stored");
            let want = &data[start as usize..end.min(size) as usize];
            assert_eq!(got.size, size, "{start}..{end}");
            assert_eq!(got.range, start..end.min(size), "{start}..{end}");
            let bytes = read_all(got.chunks.as_mut()).await.unwrap();
            assert_eq!(bytes.len(), want.len(), "{start}..{end}");
            assert!(bytes == want, "{start}..{end}: wrong bytes");
        }
        for (start, end) in [(size, size + 1), (size + 5, size + 10), (10, 10), (10, 5)] {
            let err = store.get(key, Some(ByteRange { start, end })).await.err();
            assert_eq!(err, Some(BlobError::OutOfRange(size)), "{start}..{end}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "", "..", "a/../b", "/a", "a/", "a//b", "a/./b", "a\\b", "a b", "ä", "a.txt",
        ] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(BlobKey::new(&"a".repeat(65)).is_err());
        assert!(BlobKey::new("uploads/AbC_1-x").is_ok());
    }

    #[tokio::test]
    async fn memory_store_conforms() {
        conformance::check(&MemoryBlobStore::default()).await;
    }
}
