//! File uploads: receiving a file into the blob store (`rooms.media`), posting it as a message
//! (`rooms.mediaConfirm`), downloading it (`/file-upload`) and listing a room's files.

use crate::Core;
use crate::blobs::{BlobBody, BlobError, BlobKey, ByteRange, ByteSource};
use crate::error::{CoreError, CoreResult, ErrorKind};
use crate::file_types::{Sniffed, sniffed_type, type_accepted};
use crate::malware::Scanned;
use crate::messages::NewMessage;
use crate::rooms::{RoomRef, RoomView};
use crate::store::{Change, Page};
use apogee_domain::{Message, RoomType, Timestamp, User, random_id};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// An uploaded file. Its contents live in the blob store under `store_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub id: String,
    pub rid: String,
    pub user_id: String,
    pub username: String,
    /// The client's file name, reduced to its last path component.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    pub size: i64,
    pub store_key: String,
    /// Posted as a message (`rooms.mediaConfirm`); unconfirmed uploads may be cleaned up.
    pub complete: bool,
    #[serde(default)]
    pub description: Option<String>,
    /// An encrypted room's file: its encrypted metadata (name, type, key…) as the client sent
    /// it (`{algorithm, ciphertext, …}`), kept and served as-is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Upload {
    /// `/file-upload/<id>/<name>`, the path clients download from.
    pub fn path(&self) -> String {
        format!("/file-upload/{}/{}", self.id, encode_uri(&self.name))
    }

    /// Rocket.Chat's `typeGroup`: the part of the MIME type before the slash.
    pub fn type_group(&self) -> &str {
        self.content_type.split('/').next().unwrap_or("")
    }

    pub fn extension(&self) -> &str {
        match self.name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext,
            _ => "",
        }
    }
}

/// JavaScript's `encodeURI`: keeps reserved characters, escapes the rest.
pub fn encode_uri(s: &str) -> String {
    const KEEP: &[u8] = b";,/?:@&=+$-_.!~*'()#";
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || KEEP.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file its caller may read, from [`Core::download`]. Only core builds one, after checking
/// that the caller may read the file's room.
#[derive(Debug, Clone)]
pub struct Download {
    pub upload: Upload,
    pub(crate) key: BlobKey,
}

/// A file as a client announces it.
#[derive(Debug, Clone, Default)]
pub struct NewUpload {
    pub name: String,
    pub content_type: Option<String>,
}

/// What `rooms.mediaConfirm` adds to the file.
#[derive(Debug, Clone, Default)]
pub struct FileMessage {
    pub msg: String,
    pub description: Option<String>,
    pub tmid: Option<String>,
    /// Other message fields (`alias`, `emoji`, `customFields`, and for an encrypted message
    /// `t: 'e2e'` with its `content`) as sent.
    pub extra: Map<String, Value>,
}

/// One of `sendMessage`'s `filesToConfirm`: an upload of the sender's, its name as the message
/// shows it, and for an encrypted message the file's encrypted `content`.
#[derive(Debug, Clone, Default)]
pub struct FileToConfirm {
    pub id: String,
    pub name: Option<String>,
    pub content: Option<Value>,
}

/// Files one message may carry (Rocket.Chat's `FileUpload_MaxFilesPerMessage` default).
const MAX_FILES_PER_MESSAGE: usize = 10;

fn is_e2e(extra: &Map<String, Value>) -> bool {
    extra.get("t").and_then(Value::as_str) == Some("e2e")
}

/// The name a file is stored and served under: the last path component, without control
/// characters, at most 255 characters; never empty.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".to_string()
    } else {
        cleaned
    }
}

/// A syntactically valid `type/subtype` (lower-cased), else `application/octet-stream`.
pub fn clean_content_type(t: Option<&str>) -> String {
    let t = t
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match t.split_once('/') {
        Some((a, b)) if token(a) && token(b) => t,
        _ => "application/octet-stream".to_string(),
    }
}

fn file_too_large(max: i64) -> CoreError {
    CoreError::bad(
        "error-file-too-large",
        format!("File exceeds allowed size of {}.", human_size(max)),
    )
}

/// `filesize()` as Rocket.Chat's messages show it (`100 MB`, `1 kB`, `10 B`).
fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{} {}", value as i64, units[unit])
    } else {
        format!("{:.2} {}", value, units[unit])
            .replace(".00 ", " ")
            .replace("0 ", " ")
    }
}

pub(crate) fn blob_failure(e: BlobError, max: i64) -> CoreError {
    match e {
        BlobError::TooLarge(_) => file_too_large(max),
        BlobError::Source(reason) => CoreError::bad("", reason),
        BlobError::InvalidKey => CoreError::internal("invalid blob key"),
        BlobError::OutOfRange(size) => {
            CoreError::internal(&format!("blob range outside its {size} bytes"))
        }
        BlobError::Backend(reason) => CoreError::internal(&format!("blob store: {reason}")),
    }
}

fn invalid_file_type() -> CoreError {
    CoreError::bad("error-invalid-file-type", "File type is not accepted.")
}

fn invalid_file() -> CoreError {
    CoreError::bad("invalid-file", "Invalid file")
}

pub(crate) fn key_of(upload: &Upload) -> CoreResult<BlobKey> {
    BlobKey::new(&upload.store_key).map_err(|_| CoreError::internal("invalid blob key"))
}

impl Core {
    /// Whether files may be uploaded, and into this room by this user.
    async fn upload_room(&self, actor: &User, rid: &str) -> CoreResult<RoomView> {
        if !self.settings.bool("FileUpload_Enabled") {
            return Err(CoreError::bad(
                "error-file-upload-disabled",
                "File upload is disabled",
            ));
        }
        let view = match self
            .readable_room(actor, &RoomRef::Id(rid.to_string()))
            .await
        {
            Ok(view) => view,
            Err(e) if e.code == "error-room-not-found" => return Err(CoreError::invalid_room()),
            Err(_) => return Err(CoreError::unauthorized()),
        };
        self.check_can_post(actor, &view.room, view.sub.as_ref())?;
        Ok(view)
    }

    /// `rooms.media`: streams a file into the blob store, enforcing `FileUpload_MaxFileSize`
    /// while it arrives, and records it unconfirmed. On any failure nothing is kept.
    pub async fn upload_file(
        &self,
        actor: &User,
        rid: &str,
        new: NewUpload,
        body: &mut dyn ByteSource,
    ) -> CoreResult<Upload> {
        let view = self.upload_room(actor, rid).await?;
        let (max, federation_limit) = self.upload_limit(&view.room.id).await?;
        let id = random_id();
        let key = BlobKey::new(&id).map_err(|_| CoreError::internal("invalid blob key"))?;
        let declared = clean_content_type(new.content_type.as_deref());
        // Ciphertext of an encrypted room is stored as it comes, never inspected.
        let encrypted = view.room.is_encrypted();
        let allow = self.settings.string("FileUpload_MediaTypeWhiteList");
        let deny = self.settings.string("FileUpload_MediaTypeBlackList");
        let mut content_type = declared.clone();
        let decided = &mut content_type;
        let mut sniffed = Sniffed::checked(body, move |head| {
            let found = if encrypted {
                declared
            } else {
                sniffed_type(head, &declared)
            };
            if !type_accepted(&found, &allow, &deny) {
                return Err(found);
            }
            *decided = found;
            Ok(())
        });
        let stored = self
            .blobs
            .put(&key, &mut sniffed, (max >= 0).then_some(max as u64))
            .await;
        let refused = sniffed.refused.take();
        drop(sniffed);
        let size = match (stored, refused) {
            (Ok(size), _) => size,
            (Err(_), Some(_refused_type)) => return Err(invalid_file_type()),
            (Err(BlobError::TooLarge(_)), None) if federation_limit => {
                return Err(CoreError::bad(
                    "error-file-too-large",
                    format!(
                        "File exceeds the size other Matrix servers of this room accept ({}).",
                        human_size(max)
                    ),
                ));
            }
            (Err(e), None) => return Err(blob_failure(e, max)),
        };
        let name = clean_file_name(&new.name);
        if !encrypted {
            let scanned = Scanned {
                key: &key,
                kind: "upload",
                name: &name,
                rid: Some(&view.room.id),
            };
            self.scan_stored(actor, scanned).await?;
        }
        let now = Timestamp::now();
        let upload = Upload {
            id,
            rid: view.room.id.clone(),
            user_id: actor.id.clone(),
            username: actor.username.clone(),
            name,
            content_type,
            size: size as i64,
            store_key: key.as_str().to_string(),
            complete: false,
            description: None,
            content: None,
            created_at: now,
            updated_at: now,
        };
        if let Err(e) = self
            .commit(vec![Change::InsertUpload(upload.clone())])
            .await
        {
            let _ = self.blobs.delete(&key).await;
            return Err(e);
        }
        Ok(upload)
    }

    /// Removes an upload that never became a message (a form that failed after its file).
    pub async fn discard_upload(&self, actor: &User, id: &str) -> CoreResult<()> {
        let Some(upload) = self.store.upload_by_id(id).await? else {
            return Ok(());
        };
        if upload.user_id != actor.id || upload.complete {
            return Err(invalid_file());
        }
        self.commit(vec![Change::DeleteUpload(upload.id.clone())])
            .await?;
        self.blobs
            .delete(&key_of(&upload)?)
            .await
            .map_err(|e| blob_failure(e, 0))
    }

    /// `rooms.media`'s `content` field: the encrypted metadata of an upload not yet posted.
    pub async fn set_upload_content(
        &self,
        actor: &User,
        id: &str,
        content: Value,
    ) -> CoreResult<Upload> {
        let mut upload = self
            .store
            .upload_by_id(id)
            .await?
            .filter(|u| u.user_id == actor.id && !u.complete)
            .ok_or_else(invalid_file)?;
        if !content.is_object() {
            return Err(CoreError::bad("invalid-field-content", "Invalid content"));
        }
        upload.content = Some(content);
        upload.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUpload(upload.clone())])
            .await?;
        Ok(upload)
    }

    /// `rooms.mediaConfirm`: posts the uploader's file as a message with Rocket.Chat's `file`,
    /// `files` and `attachments`, and marks the upload complete in the same batch. An encrypted
    /// message (`t: 'e2e'` with `content`) carries none of these: its attachments are inside
    /// its ciphertext.
    pub async fn confirm_upload(
        &self,
        actor: &User,
        rid: &str,
        file_id: &str,
        message: FileMessage,
    ) -> CoreResult<Message> {
        let file = FileToConfirm {
            id: file_id.to_string(),
            ..Default::default()
        };
        let new = NewMessage {
            id: None,
            rid: rid.to_string(),
            msg: message.msg,
            tmid: message.tmid.filter(|t| !t.is_empty()),
            tshow: false,
            extra: message.extra,
        };
        self.post_files(actor, new, vec![file], message.description)
            .await
    }

    /// `sendMessage(message, previewUrls, filesToConfirm)`: the message with the sender's
    /// uploads, in one batch (Rocket.Chat 7's way of posting files, encrypted ones included).
    pub async fn send_message_with_files(
        &self,
        actor: &User,
        new: NewMessage,
        files: Vec<FileToConfirm>,
    ) -> CoreResult<Message> {
        if files.is_empty() {
            return self.send_message(actor, new).await;
        }
        self.post_files(actor, new, files, None).await
    }

    async fn post_files(
        &self,
        actor: &User,
        mut new: NewMessage,
        files: Vec<FileToConfirm>,
        description: Option<String>,
    ) -> CoreResult<Message> {
        if files.len() > MAX_FILES_PER_MESSAGE {
            return Err(CoreError::bad(
                "error-too-many-files",
                format!("Cannot send more than {MAX_FILES_PER_MESSAGE} files in one message"),
            ));
        }
        let view = self.upload_room(actor, &new.rid).await?;
        let encrypted_message = is_e2e(&new.extra);
        let mut uploads: Vec<Upload> = Vec::new();
        for file in files {
            if uploads.iter().any(|u| u.id == file.id) {
                continue;
            }
            let mut upload = self
                .store
                .upload_by_id(&file.id)
                .await?
                .filter(|u| u.rid == view.room.id && u.user_id == actor.id && !u.complete)
                .ok_or_else(invalid_file)?;
            if encrypted_message {
                // The name is inside the encrypted content; the stored one is the client's
                // digest of it. Nothing readable is added.
                if let Some(content) = file.content {
                    crate::e2e::check_encrypted_message("", Some(&content))?;
                    upload.content = Some(content);
                }
            } else if let Some(name) = file.name.filter(|n| !n.trim().is_empty()) {
                upload.name = clean_file_name(&name);
            }
            upload.complete = true;
            upload.updated_at = Timestamp::now();
            uploads.push(upload);
        }
        if !encrypted_message && let Some(first) = uploads.first_mut() {
            first.description = description.filter(|d| !d.is_empty());
        }
        for reserved in ["file", "files", "attachments", "_id", "rid", "msg", "tmid"] {
            new.extra.remove(reserved);
        }
        let message_id = new.id.clone().unwrap_or_else(random_id);
        new.id = Some(message_id.clone());
        let mut more: Vec<Change> = Vec::new();
        if !encrypted_message {
            let (mut files, mut attachments) = (Vec::new(), Vec::new());
            for upload in &uploads {
                let (_, f, a) = file_message_fields(upload);
                files.extend(f.as_array().cloned().unwrap_or_default());
                attachments.extend(a.as_array().cloned().unwrap_or_default());
                more.extend(self.queue_thumbnail(upload, &message_id, view.room.is_encrypted()));
            }
            new.extra.insert("file".into(), files[0].clone());
            new.extra.insert("files".into(), Value::Array(files));
            new.extra
                .insert("attachments".into(), Value::Array(attachments));
        }
        more.extend(uploads.into_iter().map(Change::UpdateUpload));
        self.send_message_with(actor, new, more).await
    }

    /// `GET /file-upload/:id/:name`: the file, for readers of its room — or for anyone with
    /// the link when `FileUpload_ProtectFiles` is off. Unknown files answer "not found"; the
    /// contents are read with [`Core::read_download`] once the caller knows which bytes it wants.
    pub async fn download(&self, actor: Option<&User>, file_id: &str) -> CoreResult<Download> {
        let not_found = || CoreError::new(ErrorKind::NotFound, "", "File not found");
        let upload = self
            .store
            .upload_by_id(file_id)
            .await?
            .ok_or_else(not_found)?;
        let room = self
            .store
            .room_by_id(&upload.rid)
            .await?
            .ok_or_else(not_found)?;
        let allowed = match actor {
            Some(actor) => {
                let sub = self.store.subscription(&room.id, &actor.id).await?;
                self.authz.can_read_room(actor, &room, sub.as_ref())
            }
            None => !self.settings.bool("FileUpload_ProtectFiles"),
        };
        if !allowed {
            return Err(CoreError::unauthorized());
        }
        let key = key_of(&upload)?;
        Ok(Download { upload, key })
    }

    /// The contents of a file [`Core::download`] allowed: all of it, or `range` (which must
    /// start inside the file).
    pub async fn read_download(
        &self,
        download: &Download,
        range: Option<ByteRange>,
    ) -> CoreResult<BlobBody> {
        match self.blobs.get(&download.key, range).await {
            Ok(Some(body)) => Ok(body),
            Ok(None) => Err(CoreError::new(ErrorKind::NotFound, "", "File not found")),
            Err(e) => Err(blob_failure(e, 0)),
        }
    }

    /// `channels.files` / `groups.files` / `im.files`: a readable room's uploads, newest first.
    pub async fn room_files(
        &self,
        actor: &User,
        room: &RoomRef,
        t: RoomType,
        name_contains: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<Upload>, i64)> {
        let view = self.readable_room_of(actor, room, t).await?;
        Ok(self
            .store
            .uploads_of_room(&view.room.id, name_contains, page)
            .await?)
    }
}

/// Rocket.Chat's `file`, `files` and `attachments` for a file message
/// (`parseFileIntoMessageAttachments`).
pub fn file_message_fields(upload: &Upload) -> (Value, Value, Value) {
    let file = json!({
        "_id": upload.id,
        "name": upload.name,
        "type": upload.content_type,
        "size": upload.size,
        "format": upload.extension(),
    });
    let url = upload.path();
    let mut attachment = json!({
        "title": upload.name,
        "type": "file",
        "title_link": url,
        "title_link_download": true,
        "fileId": upload.id,
    });
    if let Some(d) = &upload.description {
        attachment["description"] = json!(d);
    }
    let kind = upload.type_group();
    match kind {
        "image" | "audio" | "video" => {
            attachment[format!("{kind}_url")] = json!(url);
            attachment[format!("{kind}_type")] = json!(upload.content_type);
            attachment[format!("{kind}_size")] = json!(upload.size);
        }
        _ => {
            attachment["format"] = json!(upload.extension());
            attachment["size"] = json!(upload.size);
        }
    }
    (file.clone(), json!([file]), json!([attachment]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_paths() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\x\\a.png"), "a.png");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_file_name(""), "file");
    }

    #[test]
    fn content_types_are_checked() {
        assert_eq!(clean_content_type(Some("image/PNG")), "image/png");
        assert_eq!(
            clean_content_type(Some("text/plain; charset=utf-8")),
            "text/plain"
        );
        assert_eq!(
            clean_content_type(Some("text/html\r\nX: y")),
            "application/octet-stream"
        );
        assert_eq!(clean_content_type(None), "application/octet-stream");
    }

    #[test]
    fn sizes_read_like_rocket_chat() {
        assert_eq!(human_size(104857600), "104.86 MB");
        assert_eq!(human_size(1000), "1 kB");
        assert_eq!(human_size(10), "10 B");
    }

    #[test]
    fn uri_encoding_matches_encode_uri() {
        assert_eq!(encode_uri("a b/ä?.png"), "a%20b/%C3%A4?.png");
    }
}
