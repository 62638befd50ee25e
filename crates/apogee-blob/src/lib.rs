//! Adapters for core's [`BlobStore`] port. [`FsBlobStore`] keeps each blob as one file under
//! `<data-dir>/uploads`; `S3BlobStore` (feature `s3`, `object_store`) keeps it in a bucket.

#[cfg(feature = "s3")]
mod s3;
mod s3_config;
#[cfg(feature = "s3")]
pub use s3::S3BlobStore;
pub use s3_config::S3Config;

use apogee_core::blobs::{BlobBody, BlobError, BlobKey, BlobStore, ByteRange, ByteSource, CHUNK};
use async_trait::async_trait;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Blobs as files: `<root>/<segment>/<segment>…`. Writes go to `<root>/.tmp/<random>` and are
/// renamed into place once complete and synced, so a reader never sees a partial file and a
/// failed or oversize upload leaves nothing behind. Keys are validated [`BlobKey`]s (plain
/// `[A-Za-z0-9_-]` segments), so no key can name a path outside `root` or inside `.tmp`.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

fn backend(what: &str, e: std::io::Error) -> BlobError {
    // The OS error only: paths stay in the server's own logs, never in client answers.
    tracing::warn!(error = %e, "blob store: {what} failed");
    BlobError::Backend(format!("{what}: {}", e.kind()))
}

impl FsBlobStore {
    /// Opens (creating if needed) the store at `root`, e.g. `<data-dir>/uploads`, and removes
    /// temporary files a crash may have left.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        let tmp = root.join(".tmp");
        match tokio::fs::remove_dir_all(&tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(backend("clearing temporary files", e)),
        }
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(|e| backend("creating the store directory", e))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        let mut path = self.root.clone();
        for segment in key.segments() {
            path.push(segment);
        }
        path
    }

    async fn write_temp(
        &self,
        tmp: &Path,
        body: &mut dyn ByteSource,
        max: Option<u64>,
    ) -> Result<u64, BlobError> {
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(|e| backend("creating a temporary file", e))?;
        let mut written: u64 = 0;
        while let Some(chunk) = body.next_chunk().await? {
            written += chunk.len() as u64;
            if let Some(max) = max
                && written > max
            {
                return Err(BlobError::TooLarge(max));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| backend("writing", e))?;
        }
        file.flush().await.map_err(|e| backend("writing", e))?;
        file.sync_all().await.map_err(|e| backend("syncing", e))?;
        Ok(written)
    }
}

/// Reads a file from where it was positioned, at most `left` more bytes, a chunk at a time.
struct FileChunks {
    file: tokio::fs::File,
    left: u64,
}

#[async_trait]
impl ByteSource for FileChunks {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut buf = vec![0; CHUNK.min(usize::try_from(self.left).unwrap_or(CHUNK))];
        let n = self
            .file
            .read(&mut buf)
            .await
            .map_err(|e| backend("reading", e))?;
        if n == 0 {
            // The file shrank under us (it never should: blobs are replaced by rename).
            return Err(BlobError::Backend("reading: unexpected end of file".into()));
        }
        buf.truncate(n);
        self.left -= n as u64;
        Ok(Some(buf))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: &mut dyn ByteSource,
        max: Option<u64>,
    ) -> Result<u64, BlobError> {
        let tmp = self
            .root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let target = self.path(key);
        let result = async {
            let size = self.write_temp(&tmp, body, max).await?;
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| backend("creating a directory", e))?;
            }
            tokio::fs::rename(&tmp, &target)
                .await
                .map_err(|e| backend("moving into place", e))?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, BlobError> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(backend("opening", e)),
        };
        let meta = file.metadata().await.map_err(|e| backend("opening", e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let size = meta.len();
        let range = match range {
            Some(r) => r.within(size)?,
            None => 0..size,
        };
        if range.start > 0 {
            file.seek(std::io::SeekFrom::Start(range.start))
                .await
                .map_err(|e| backend("seeking", e))?;
        }
        Ok(Some(BlobBody {
            size,
            range: range.clone(),
            chunks: Box::new(FileChunks {
                file,
                left: range.end - range.start,
            }),
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend("deleting", e)),
        }
    }
}
