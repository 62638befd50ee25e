//! Removing file contents: an upload's record goes in the use-case's batch and its blob is
//! deleted afterwards through the outbox (so a crash never leaves a record without contents,
//! and contents whose record is gone are still deleted). Covers deleted file messages, deleted
//! rooms and uploads never posted as a message.

use crate::Core;
use crate::blobs::BlobKey;
use crate::error::CoreResult;
use crate::files::Upload;
use crate::store::{Change, Page};
use apogee_domain::{Message, Timestamp};
use serde_json::{Value, json};

/// The outbox kind that deletes a blob once the records pointing at it are gone.
pub(crate) const BLOB_DELETE: &str = "blob.delete";

/// Deletes blobs queued by [`Core::remove_upload`].
pub(crate) struct BlobDeleter;

#[async_trait::async_trait]
impl crate::outbox::Deliverer for BlobDeleter {
    async fn deliver(&self, core: &Core, payload: &Value) -> crate::outbox::Delivery {
        use crate::outbox::Delivery;
        let Some(key) = payload["key"].as_str().and_then(|k| BlobKey::new(k).ok()) else {
            return Delivery::GiveUp("not a blob key".into());
        };
        match core.blobs.delete(&key).await {
            Ok(()) => Delivery::Done,
            Err(e) => Delivery::Retry(format!("{e:?}")),
        }
    }
}

/// How many stale uploads one cleanup round removes.
const CLEANUP_BATCH: i64 = 100;

impl Core {
    /// The changes that remove `upload`'s record and, once that commits, its contents.
    pub(crate) fn remove_upload(&self, upload: &Upload) -> [Change; 2] {
        [
            Change::DeleteUpload(upload.id.clone()),
            self.enqueue(BLOB_DELETE, json!({"key": upload.store_key})),
        ]
    }

    /// The removals for the files a message carries (`file`, `files`).
    pub(crate) async fn message_file_removals(&self, message: &Message) -> CoreResult<Vec<Change>> {
        let mut ids: Vec<&str> = Vec::new();
        if let Some(id) = message.extra.get("file").and_then(|f| f["_id"].as_str()) {
            ids.push(id);
        }
        if let Some(files) = message.extra.get("files").and_then(Value::as_array) {
            ids.extend(files.iter().filter_map(|f| f["_id"].as_str()));
        }
        ids.sort_unstable();
        ids.dedup();
        let mut changes = Vec::new();
        for id in ids {
            if let Some(upload) = self.store.upload_by_id(id).await?
                && upload.rid == message.rid
            {
                changes.extend(self.remove_upload(&upload));
            }
        }
        Ok(changes)
    }

    /// The removals for every file of a room, its avatar image included (the room is being
    /// deleted).
    pub(crate) async fn room_file_removals(&self, rid: &str) -> CoreResult<Vec<Change>> {
        let (uploads, _) = self.store.uploads_of_room(rid, None, Page::ALL).await?;
        let mut changes: Vec<Change> = uploads.iter().flat_map(|u| self.remove_upload(u)).collect();
        let room = self.store.room_by_id(rid).await?;
        if let Some(key) = room.as_ref().and_then(crate::avatars::room_image_key) {
            changes.push(self.enqueue(BLOB_DELETE, json!({"key": key.as_str()})));
        }
        Ok(changes)
    }

    /// Removes uploads that were never posted within `FileUpload_Unconfirmed_Expiry_Minutes`
    /// (a client that uploaded and went away). Returns how many went.
    pub async fn clean_unconfirmed_uploads(&self) -> CoreResult<usize> {
        let minutes = self
            .settings
            .int("FileUpload_Unconfirmed_Expiry_Minutes")
            .max(0);
        let before = Timestamp::from_millis(Timestamp::now().millis() - minutes * 60_000);
        let stale = self
            .store
            .unconfirmed_uploads(before, CLEANUP_BATCH)
            .await?;
        let mut removed = 0;
        for upload in &stale {
            // One batch each: another node cleaning the same upload fails only that one.
            if self
                .commit(self.remove_upload(upload).to_vec())
                .await
                .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
