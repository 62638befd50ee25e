//! Image thumbnails and dimensions, made off the request path: confirming an image upload
//! queues a `thumbnail` outbox item with the message; the worker decodes the image (on a
//! blocking thread, with size limits against decompression bombs), stores a thumbnail no larger
//! than `Message_Attachments_Thumbnails_Width` × `_Height` as an upload of its own, and updates
//! the message as Rocket.Chat shapes it: `image_dimensions`, a tiny `image_preview`, `image_url`
//! pointing at the thumbnail, and the thumbnail listed second in `files`. Files of encrypted
//! rooms are never opened.

use crate::Core;
use crate::blobs::{BlobKey, BytesSource};
use crate::files::Upload;
use crate::outbox::{Deliverer, Delivery};
use crate::store::Change;
use apogee_domain::{Message, Timestamp, random_id};
use base64::Engine;
use image::{DynamicImage, ImageFormat, ImageReader};
use serde_json::{Value, json};
use std::io::Cursor;

pub(crate) const KIND: &str = "thumbnail";

/// Images larger than this are left without a thumbnail.
const MAX_SOURCE_BYTES: u64 = 32 << 20;
/// Nor are images wider or taller than this (a small file can claim a huge canvas).
const MAX_SIDE: u32 = 12_000;
/// The blurred preview clients show while the thumbnail loads.
const PREVIEW_SIDE: u32 = 32;

const THUMBNAILED: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

impl Core {
    /// The change that asks for a thumbnail of `upload`, posted as message `message_id`, when it
    /// is an image worth one.
    pub(crate) fn queue_thumbnail(
        &self,
        upload: &Upload,
        message_id: &str,
        encrypted: bool,
    ) -> Option<Change> {
        let wanted = self.settings.bool("Message_Attachments_Thumbnails_Enabled")
            && !encrypted
            && THUMBNAILED.contains(&upload.content_type.as_str())
            && (upload.size as u64) <= MAX_SOURCE_BYTES;
        wanted.then(|| {
            self.enqueue(
                KIND,
                json!({"uploadId": upload.id, "messageId": message_id}),
            )
        })
    }
}

/// What decoding an image gives.
struct Made {
    width: u32,
    height: u32,
    thumbnail: Vec<u8>,
    thumbnail_type: &'static str,
    preview_base64: String,
}

fn make(bytes: &[u8], max_w: u32, max_h: u32) -> Result<Made, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img: DynamicImage = reader.decode().map_err(|e| e.to_string())?;
    let (width, height) = (img.width(), img.height());
    let thumb = if width > max_w || height > max_h {
        img.thumbnail(max_w, max_h)
    } else {
        img.clone()
    };
    // Opaque images as JPEG (small); anything with transparency as PNG.
    let (format, thumbnail_type) = if img.color().has_alpha() {
        (ImageFormat::Png, "image/png")
    } else {
        (ImageFormat::Jpeg, "image/jpeg")
    };
    let thumb = if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(thumb.to_rgb8())
    } else {
        thumb
    };
    let mut thumbnail = Vec::new();
    thumb
        .write_to(&mut Cursor::new(&mut thumbnail), format)
        .map_err(|e| e.to_string())?;
    let preview = DynamicImage::ImageRgb8(img.thumbnail(PREVIEW_SIDE, PREVIEW_SIDE).to_rgb8());
    let mut small = Vec::new();
    preview
        .write_to(&mut Cursor::new(&mut small), ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    Ok(Made {
        width,
        height,
        thumbnail,
        thumbnail_type,
        preview_base64: base64::engine::general_purpose::STANDARD.encode(small),
    })
}

/// Makes the thumbnails `thumbnail` items ask for.
pub(crate) struct Thumbnailer;

#[async_trait::async_trait]
impl Deliverer for Thumbnailer {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        match thumbnail(core, payload).await {
            Ok(()) => Delivery::Done,
            Err(Failure::Retry(e)) => Delivery::Retry(e),
            Err(Failure::Skip(why)) => {
                // Not an image it can read, or gone meanwhile: nothing to do, ever.
                tracing::debug!(%why, "no thumbnail");
                Delivery::Done
            }
        }
    }
}

enum Failure {
    Retry(String),
    Skip(String),
}

async fn read_all(core: &Core, key: &BlobKey) -> Result<Vec<u8>, Failure> {
    let body = core
        .blobs
        .get(key, None)
        .await
        .map_err(|e| Failure::Retry(format!("{e:?}")))?
        .ok_or_else(|| Failure::Skip("contents gone".into()))?;
    let mut chunks = body.chunks;
    let mut bytes = Vec::with_capacity(body.size as usize);
    while let Some(c) = chunks
        .next_chunk()
        .await
        .map_err(|e| Failure::Retry(format!("{e:?}")))?
    {
        bytes.extend_from_slice(&c);
    }
    Ok(bytes)
}

async fn thumbnail(core: &Core, payload: &Value) -> Result<(), Failure> {
    let store_err = |e: crate::error::StoreError| Failure::Retry(e.to_string());
    let (Some(upload_id), Some(message_id)) =
        (payload["uploadId"].as_str(), payload["messageId"].as_str())
    else {
        return Err(Failure::Skip("bad payload".into()));
    };
    let Some(upload) = core
        .store
        .upload_by_id(upload_id)
        .await
        .map_err(store_err)?
    else {
        return Err(Failure::Skip("upload gone".into()));
    };
    let key = BlobKey::new(&upload.store_key).map_err(|_| Failure::Skip("bad key".into()))?;
    let bytes = read_all(core, &key).await?;
    let (w, h) = (
        core.settings
            .int("Message_Attachments_Thumbnails_Width")
            .clamp(16, 2048) as u32,
        core.settings
            .int("Message_Attachments_Thumbnails_Height")
            .clamp(16, 2048) as u32,
    );
    let made = tokio::task::spawn_blocking(move || make(&bytes, w, h))
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .map_err(Failure::Skip)?;

    let now = Timestamp::now();
    let thumb_id = random_id();
    let thumb_key = BlobKey::new(&thumb_id).map_err(|_| Failure::Skip("bad key".into()))?;
    let extension = if made.thumbnail_type == "image/png" {
        "png"
    } else {
        "jpg"
    };
    let thumb = Upload {
        id: thumb_id,
        rid: upload.rid.clone(),
        user_id: upload.user_id.clone(),
        username: upload.username.clone(),
        name: format!("thumb-{}.{extension}", upload.name),
        content_type: made.thumbnail_type.into(),
        size: made.thumbnail.len() as i64,
        store_key: thumb_key.as_str().to_string(),
        complete: true,
        description: None,
        content: None,
        created_at: now,
        updated_at: now,
    };
    core.blobs
        .put(
            &thumb_key,
            &mut BytesSource::new(made.thumbnail.clone()),
            None,
        )
        .await
        .map_err(|e| Failure::Retry(format!("{e:?}")))?;
    // The message may have been deleted or edited meanwhile: read it last, just before writing.
    let message = core
        .store
        .message_by_id(message_id)
        .await
        .map_err(store_err)?;
    let Some(mut message) = message else {
        let _ = core.blobs.delete(&thumb_key).await;
        return Err(Failure::Skip("message gone".into()));
    };
    annotate(&mut message, &upload, &thumb, &made);
    let changes = vec![Change::InsertUpload(thumb), Change::UpdateMessage(message)];
    if let Err(e) = core.commit(changes).await {
        let _ = core.blobs.delete(&thumb_key).await;
        return Err(Failure::Retry(e.message));
    }
    Ok(())
}

/// Adds the dimensions, preview and thumbnail to the message's attachment for `upload`.
fn annotate(message: &mut Message, upload: &Upload, thumb: &Upload, made: &Made) {
    if let Some(attachments) = message
        .extra
        .get_mut("attachments")
        .and_then(Value::as_array_mut)
    {
        for a in attachments
            .iter_mut()
            .filter(|a| a["fileId"] == upload.id.as_str())
        {
            a["image_dimensions"] = json!({"width": made.width, "height": made.height});
            a["image_preview"] = json!(made.preview_base64);
            a["image_url"] = json!(thumb.path());
        }
    }
    if let Some(files) = message.extra.get_mut("files").and_then(Value::as_array_mut) {
        files.push(json!({
            "_id": thumb.id,
            "name": thumb.name,
            "type": thumb.content_type,
            "size": thumb.size,
        }));
    }
    message.updated_at = Timestamp::now();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10])));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn thumbnails_fit_the_box_and_keep_the_aspect() {
        let made = make(&png(1200, 600), 480, 360).unwrap();
        assert_eq!((made.width, made.height), (1200, 600));
        let thumb = image::load_from_memory(&made.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (480, 240));
        assert_eq!(made.thumbnail_type, "image/jpeg");
        assert!(!made.preview_base64.is_empty());
    }

    #[test]
    fn small_images_are_not_enlarged_and_garbage_is_refused() {
        let made = make(&png(20, 10), 480, 360).unwrap();
        let thumb = image::load_from_memory(&made.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (20, 10));
        assert!(make(b"\x89PNG\r\n\x1a\nnot really", 480, 360).is_err());
    }

    #[test]
    fn huge_canvases_are_refused() {
        // A valid PNG header claiming 20000 × 20000 pixels.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        assert!(make(&bomb, 480, 360).is_err());
    }
}
