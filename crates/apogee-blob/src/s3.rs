//! [`S3BlobStore`]: blobs as objects in an S3 bucket (or any S3 API), through `object_store`.
//! Uploads are streamed as multipart uploads, so an object appears only once complete; ranged
//! reads ask S3 for just those bytes.

use crate::S3Config;
use apogee_core::blobs::{BlobBody, BlobError, BlobKey, BlobStore, ByteRange, ByteSource};
use async_trait::async_trait;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};

/// Multipart parts in flight per upload: with S3's 5 MiB parts, an upload holds at most about
/// `(PARTS_IN_FLIGHT + 1) * 5 MiB` in memory whatever its size.
const PARTS_IN_FLIGHT: usize = 2;

/// Blobs as S3 objects named by their key (`uploads/<id>`).
pub struct S3BlobStore {
    store: AmazonS3,
    bucket: String,
}

impl std::fmt::Debug for S3BlobStore {
    // Not derived: the client's own `Debug` would print its credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .finish()
    }
}

/// An S3 failure: the detail goes to the server log (object_store's messages name the bucket
/// and key, never the credentials); callers get what failed.
fn backend(what: &str, e: object_store::Error) -> BlobError {
    tracing::warn!(error = %e, "S3 blob store: {what} failed");
    BlobError::Backend(format!("S3 {what} failed"))
}

impl S3BlobStore {
    /// Builds the client and checks that the bucket can be listed, so a wrong endpoint,
    /// bucket or key fails at start-up rather than on the first upload.
    pub async fn open(config: &S3Config) -> Result<Self, BlobError> {
        if config.bucket.is_empty() {
            return Err(BlobError::Backend("S3: no bucket given".into()));
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"));
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| backend("configuring the client", e))?;
        let s3 = Self {
            store,
            bucket: config.bucket.clone(),
        };
        s3.store
            .list_with_delimiter(Some(&Path::from("uploads")))
            .await
            .map_err(|e| backend(&format!("listing bucket {:?}", s3.bucket), e))?;
        Ok(s3)
    }

    fn path(key: &BlobKey) -> Path {
        // Keys are plain `[A-Za-z0-9_-]` segments: valid object path parts as they are.
        Path::from(key.as_str())
    }

    async fn stream_parts(
        writer: &mut WriteMultipart,
        body: &mut dyn ByteSource,
        max: Option<u64>,
    ) -> Result<u64, BlobError> {
        let mut written: u64 = 0;
        while let Some(chunk) = body.next_chunk().await? {
            written += chunk.len() as u64;
            if let Some(max) = max
                && written > max
            {
                return Err(BlobError::TooLarge(max));
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| backend("uploading a part", e))?;
            writer.write(&chunk);
        }
        Ok(written)
    }
}

/// An object's bytes as they arrive from S3.
struct StreamChunks<S>(S);

#[async_trait]
impl<S, B> ByteSource for StreamChunks<S>
where
    S: futures_util::Stream<Item = object_store::Result<B>> + Send + Unpin,
    B: AsRef<[u8]> + Send,
{
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        loop {
            match self.0.next().await {
                None => return Ok(None),
                Some(Ok(b)) if b.as_ref().is_empty() => continue,
                Some(Ok(b)) => return Ok(Some(b.as_ref().to_vec())),
                Some(Err(e)) => return Err(backend("reading", e)),
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: &mut dyn ByteSource,
        max: Option<u64>,
    ) -> Result<u64, BlobError> {
        let upload = self
            .store
            .put_multipart(&Self::path(key))
            .await
            .map_err(|e| backend("starting an upload", e))?;
        let mut writer = WriteMultipart::new(upload);
        match Self::stream_parts(&mut writer, body, max).await {
            // `finish` aborts the upload itself when completing fails.
            Ok(size) => writer
                .finish()
                .await
                .map(|_| size)
                .map_err(|e| backend("completing an upload", e)),
            Err(e) => {
                // Nothing may remain: abort discards the parts sent so far.
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "S3 blob store: aborting an upload failed");
                }
                Err(e)
            }
        }
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError> {
        let path = Self::path(key);
        let mut options = GetOptions::default();
        if let Some(range) = range {
            // S3 reports a range past the end only as an error; check it against the size.
            let meta = match self.store.head(&path).await {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(backend("reading", e)),
            };
            options.range = Some(GetRange::Bounded(range.within(meta.size)?));
        }
        let result = match self.store.get_opts(&path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(backend("reading", e)),
        };
        let size = result.meta.size;
        let range = result.range.clone();
        Ok(Some(BlobBody {
            size,
            range,
            chunks: Box::new(StreamChunks(result.into_stream())),
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&Self::path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend("deleting", e)),
        }
    }
}
