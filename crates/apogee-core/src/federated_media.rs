//! Files in federated rooms. Ours go out as `m.image`/`m.video`/`m.audio`/`m.file` with an
//! `mxc://<our server>/<upload id>` URL that other servers download from us (only a server
//! with a member in the file's room, only files of federated rooms, never an encrypted
//! room's). Remote files are downloaded from their server when their message arrives and kept
//! as uploads of the remote user, so the message is an ordinary Rocket.Chat file message.
//!
//! File-size alignment: Matrix has no way to ask a server what it accepts, so
//! `Federation_Matrix_Max_File_Size` says what peers take (default 50 MiB, Synapse's default
//! `max_upload_size`); an upload into a federated room over it is refused before anything is
//! sent, naming that limit. Remote files are kept up to our own `FileUpload_MaxFileSize`.

use crate::Core;
use crate::avatars::RoomAvatar;
use crate::blobs::{BlobKey, BytesSource};
use crate::error::{CoreError, CoreResult};
use crate::file_types::{sniffed_type, type_accepted};
use crate::files::{Download, Upload, clean_content_type, clean_file_name, file_message_fields};
use crate::malware::Scanned;
use crate::store::Change;
use apogee_domain::{Message, Timestamp, User, random_id};
use serde_json::{Value, json};

/// What an incoming file became: the upload and the message fields to set.
pub(crate) struct IncomingFile {
    pub upload: Upload,
    pub caption: String,
}

/// The Matrix content of a local file message, if it is one.
pub(crate) fn file_content(message: &Message, ours: &str) -> Option<Value> {
    let file = message.extra.get("file")?;
    let id = file.get("_id").and_then(Value::as_str)?;
    let name = file.get("name").and_then(Value::as_str).unwrap_or("file");
    let mimetype = file
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream");
    let msgtype = match mimetype.split('/').next() {
        Some("image") => "m.image",
        Some("video") => "m.video",
        Some("audio") => "m.audio",
        _ => "m.file",
    };
    let mut content = json!({
        "msgtype": msgtype,
        "body": name,
        "url": format!("mxc://{ours}/{id}"),
        "info": {"mimetype": mimetype, "size": file.get("size").cloned().unwrap_or(json!(0))},
    });
    // A caption (Matrix 1.10): the text is the body, the name moves to `filename`.
    let caption = message.msg.trim();
    if !caption.is_empty() {
        content["filename"] = json!(name);
        content["body"] = json!(caption);
    }
    Some(content)
}

impl Core {
    /// The biggest upload `rid` takes: `FileUpload_MaxFileSize`, and in a federated room no
    /// more than peers accept. The second value is true when the federation limit decides.
    pub(crate) async fn upload_limit(&self, rid: &str) -> CoreResult<(i64, bool)> {
        let ours = self.settings.int("FileUpload_MaxFileSize");
        if self.federation.get().is_none() || self.store.federated_room(rid).await?.is_none() {
            return Ok((ours, false));
        }
        let peers = self.settings.int("Federation_Matrix_Max_File_Size");
        if peers >= 0 && (ours < 0 || peers < ours) {
            Ok((peers, true))
        } else {
            Ok((ours, false))
        }
    }

    /// The file `mxc://<us>/<media_id>` for server `origin`: an upload posted in a federated
    /// room where `origin` has a joined member; never an encrypted one.
    pub async fn federated_media(
        &self,
        media_id: &str,
        origin: &str,
    ) -> CoreResult<Option<Download>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(None);
        };
        let Some(upload) = self.store.upload_by_id(media_id).await? else {
            return Ok(None);
        };
        if !upload.complete || upload.content.is_some() {
            return Ok(None);
        }
        let Some(room) = self.store.federated_room(&upload.rid).await? else {
            return Ok(None);
        };
        let servers = self
            .federation_destinations(&room, gateway.server_name())
            .await?;
        if !servers.iter().any(|s| s == origin) {
            return Ok(None);
        }
        let key = crate::files::key_of(&upload)?;
        Ok(Some(Download { upload, key }))
    }

    /// Downloads the file of a remote `m.image`/`m.file`/… message and keeps it as an upload
    /// of `sender` in room `rid`. `None` (the message stays text) when there is no usable
    /// `mxc://` URL, the file is too big or of a refused type, or its server does not give it.
    pub(crate) async fn incoming_file(
        &self,
        rid: &str,
        sender: &User,
        content: &Value,
    ) -> CoreResult<Option<IncomingFile>> {
        let Some(gateway) = self.federation.get() else {
            return Ok(None);
        };
        let msgtype = content.get("msgtype").and_then(Value::as_str).unwrap_or("");
        if !matches!(msgtype, "m.image" | "m.file" | "m.video" | "m.audio") {
            return Ok(None);
        }
        let Some((server, media_id)) = content
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| u.strip_prefix("mxc://"))
            .and_then(|u| u.split_once('/'))
        else {
            return Ok(None);
        };
        let max = self.settings.int("FileUpload_MaxFileSize");
        let max = if max < 0 { u64::MAX } else { max as u64 };
        let announced = content
            .get("info")
            .and_then(|i| i.get("size"))
            .and_then(Value::as_u64);
        if announced.is_some_and(|size| size > max) {
            tracing::info!(
                server,
                media_id,
                "remote file over FileUpload_MaxFileSize: not kept"
            );
            return Ok(None);
        }
        let (declared, bytes) = match gateway.fetch_media(server, media_id, max).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(server, media_id, error = %e, "remote file not downloaded");
                return Ok(None);
            }
        };
        let body = content.get("body").and_then(Value::as_str).unwrap_or("");
        let filename = content.get("filename").and_then(Value::as_str);
        let (name, caption) = match filename {
            Some(f) if f != body => (f, body.to_string()),
            _ => (body, String::new()),
        };
        let declared = clean_content_type(Some(&declared));
        let content_type = sniffed_type(&bytes[..bytes.len().min(8192)], &declared);
        if !type_accepted(
            &content_type,
            &self.settings.string("FileUpload_MediaTypeWhiteList"),
            &self.settings.string("FileUpload_MediaTypeBlackList"),
        ) {
            tracing::info!(
                server,
                media_id,
                content_type,
                "remote file of a refused type"
            );
            return Ok(None);
        }
        let id = random_id();
        let key = BlobKey::new(&id).map_err(|_| CoreError::internal("invalid blob key"))?;
        let size = self
            .blobs
            .put(&key, &mut BytesSource::new(bytes), Some(max))
            .await
            .map_err(|e| crate::files::blob_failure(e, max as i64))?;
        let name = clean_file_name(name);
        let scanned = Scanned {
            key: &key,
            kind: "upload",
            name: &name,
            rid: Some(rid),
        };
        if let Err(e) = self.scan_stored(sender, scanned).await {
            tracing::warn!(server, media_id, error = %e, "remote file refused by the scanner");
            return Ok(None);
        }
        let now = Timestamp::now();
        Ok(Some(IncomingFile {
            upload: Upload {
                id,
                rid: rid.to_string(),
                user_id: sender.id.clone(),
                username: sender.username.clone(),
                name,
                content_type,
                size: size as i64,
                store_key: key.as_str().to_string(),
                complete: true,
                description: None,
                content: None,
                created_at: now,
                updated_at: now,
            },
            caption,
        }))
    }

    /// Makes `message` the file message of `file`: Rocket.Chat's `file`, `files` and
    /// `attachments`, the caption as text; the upload and its thumbnail in `changes`.
    pub(crate) fn attach_incoming_file(
        &self,
        message: &mut Message,
        file: IncomingFile,
        changes: &mut Vec<Change>,
    ) {
        let (f, files, attachments) = file_message_fields(&file.upload);
        message.msg = file.caption;
        message.md = Some(apogee_domain::markdown::parse(&message.msg));
        message.extra.insert("file".into(), f);
        message.extra.insert("files".into(), files);
        message.extra.insert("attachments".into(), attachments);
        changes.push(Change::InsertUpload(file.upload.clone()));
        changes.extend(self.queue_thumbnail(&file.upload, &message.id, false));
    }
}

impl Core {
    /// A remote user's avatar follows the `avatar_url` of their own member join events: the
    /// `mxc://` image is downloaded into the avatar store (checked as an uploaded avatar is),
    /// a removed one resets to initials. Runs after the event's batch, as a follow-up of its
    /// own: an image that cannot be had keeps the old avatar and is not asked for again.
    pub(crate) async fn follow_remote_avatar(&self, sender: &str, content: &Value) {
        if let Err(e) = self.try_follow_remote_avatar(sender, content).await {
            tracing::info!(sender, error = %e, "remote avatar not taken");
        }
    }

    async fn try_follow_remote_avatar(&self, sender: &str, content: &Value) -> CoreResult<()> {
        let Some(gateway) = self.federation.get() else {
            return Ok(());
        };
        let Some(mut user) = self.store.user_by_username(sender).await? else {
            return Ok(());
        };
        if !user
            .roles
            .iter()
            .any(|r| r == crate::federated_rooms::FEDERATED_ROLE)
        {
            return Ok(());
        }
        let url = content
            .get("avatar_url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let mut federation = user.extra.get("federation").cloned().unwrap_or(json!({}));
        let known = federation
            .get("avatarUrl")
            .and_then(Value::as_str)
            .map(str::to_string);
        if known == url {
            return Ok(());
        }
        federation["avatarUrl"] = json!(url);
        user.extra.insert("federation".into(), federation);
        user.updated_at = Timestamp::now();
        self.commit(vec![Change::UpdateUser(user.clone())]).await?;
        let Some(url) = url else {
            return self.clear_user_avatar(&user).await.map(|_| ());
        };
        let Some((server, media_id)) = url.strip_prefix("mxc://").and_then(|u| u.split_once('/'))
        else {
            return Ok(());
        };
        let max = self.settings.int("FileUpload_MaxFileSize");
        let max = if max < 0 { u64::MAX } else { max as u64 };
        let (_, bytes) = gateway
            .fetch_media(server, media_id, max)
            .await
            .map_err(|e| CoreError::bad("error-federation", e))?;
        self.store_user_avatar(&user, &user, &mut BytesSource::new(bytes))
            .await
            .map(|_| ())
    }
}

impl Core {
    /// A federated room's image follows its `m.room.avatar`: the `mxc://` image is downloaded
    /// and stored as the room's avatar (checked as an uploaded one is, `FileUpload_MaxFileSize`
    /// the limit), an event without `url` resets it to initials. After the event's batch, as
    /// with member avatars: an image that cannot be had keeps the old one.
    pub(crate) async fn follow_remote_room_avatar(&self, rid: &str, sender: &str, content: &Value) {
        if let Err(e) = self
            .try_follow_remote_room_avatar(rid, sender, content)
            .await
        {
            tracing::info!(rid, sender, error = %e, "remote room avatar not taken");
        }
    }

    async fn try_follow_remote_room_avatar(
        &self,
        rid: &str,
        sender: &str,
        content: &Value,
    ) -> CoreResult<()> {
        let Some(gateway) = self.federation.get() else {
            return Ok(());
        };
        let Some(by) = self.store.user_by_username(sender).await? else {
            return Ok(());
        };
        let url = content
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        let change = match url {
            None => RoomAvatar::Reset,
            Some(url) => {
                let (server, media_id) = url
                    .strip_prefix("mxc://")
                    .and_then(|u| u.split_once('/'))
                    .ok_or_else(|| CoreError::bad("error-invalid-image", "Not an mxc URL"))?;
                let max = self.settings.int("FileUpload_MaxFileSize");
                let max = if max < 0 { u64::MAX } else { max as u64 };
                let (_, bytes) = gateway
                    .fetch_media(server, media_id, max)
                    .await
                    .map_err(|e| CoreError::bad("error-federation", e))?;
                if crate::avatars::image_type(&bytes).is_none() {
                    return Err(CoreError::bad(
                        "error-invalid-image",
                        "Invalid image format",
                    ));
                }
                RoomAvatar::Image(bytes)
            }
        };
        // Read after the download, so nothing changed meanwhile is overwritten.
        let Some(mut room) = self.store.room_by_id(rid).await? else {
            return Ok(());
        };
        if matches!(change, RoomAvatar::Reset) && !room.extra.contains_key("avatarETag") {
            return Ok(());
        }
        let (staged, mut changes) = self
            .stage_room_avatar(&by, &mut room, change, &random_id())
            .await?;
        room.updated_at = Timestamp::now();
        changes.insert(0, Change::UpdateRoom(room));
        let committed = self.commit(changes).await;
        self.room_avatar_done(staged, committed.is_ok()).await;
        committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_domain::UserRef;

    #[test]
    fn file_messages_go_out_as_media() {
        let mut m = Message::new(
            "m1".into(),
            "r1",
            UserRef {
                id: "u1".into(),
                username: "bob".into(),
                name: None,
            },
            String::new(),
        );
        assert!(file_content(&m, "us.test").is_none());
        m.extra.insert(
            "file".into(),
            json!({"_id": "f1", "name": "cat.png", "type": "image/png", "size": 3}),
        );
        assert_eq!(
            file_content(&m, "us.test").unwrap(),
            json!({"msgtype": "m.image", "body": "cat.png", "url": "mxc://us.test/f1",
                "info": {"mimetype": "image/png", "size": 3}})
        );
        m.msg = "look".into();
        let c = file_content(&m, "us.test").unwrap();
        assert_eq!(
            (c["body"].as_str(), c["filename"].as_str()),
            (Some("look"), Some("cat.png"))
        );
    }
}
