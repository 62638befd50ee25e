//! Workspace assets (`assets.setAsset` / `assets.unsetAsset`, served at `/assets/<name>.<ext>`):
//! the logo, favicons and tiles. As in Rocket.Chat each asset is the public setting
//! `Assets_<name>`, `{url, defaultUrl}` (`url` only while one is uploaded); the image is a blob
//! under `assets/<name>/<etag>`, a new key per upload, and the replaced one is deleted after the
//! setting points away from it. Needs `manage-assets`. The type is sniffed from the bytes.

use crate::Core;
use crate::avatars::{StoredImage, image_type};
use crate::blobs::{BlobKey, ByteSource};
use crate::error::{CoreError, CoreResult};
use crate::files::blob_failure;
use crate::store::Change;
use apogee_domain::{User, random_id};
use serde_json::{Value, json};

/// `(name, default URL, accepted extensions)`, Rocket.Chat's asset list.
pub const ASSETS: &[(&str, &str, &[&str])] = &[
    (
        "logo",
        "images/logo/logo.svg",
        &["svg", "png", "jpg", "jpeg"],
    ),
    (
        "logo_dark",
        "images/logo/logo_dark.svg",
        &["svg", "png", "jpg", "jpeg"],
    ),
    ("background", "", &["png", "jpg", "jpeg"]),
    ("favicon_ico", "favicon.ico", &["ico"]),
    ("favicon", "images/logo/icon.svg", &["svg"]),
    ("favicon_16", "images/logo/favicon-16x16.png", &["png"]),
    ("favicon_32", "images/logo/favicon-32x32.png", &["png"]),
    (
        "favicon_192",
        "images/logo/android-chrome-192x192.png",
        &["png"],
    ),
    (
        "favicon_512",
        "images/logo/android-chrome-512x512.png",
        &["png"],
    ),
    (
        "touchicon_180",
        "images/logo/apple-touch-icon.png",
        &["png"],
    ),
    (
        "touchicon_180_pre",
        "images/logo/apple-touch-icon-precomposed.png",
        &["png"],
    ),
    ("tile_70", "images/logo/mstile-70x70.png", &["png"]),
    ("tile_144", "images/logo/mstile-144x144.png", &["png"]),
    ("tile_150", "images/logo/mstile-150x150.png", &["png"]),
    (
        "tile_310_square",
        "images/logo/mstile-310x310.png",
        &["png"],
    ),
    ("tile_310_wide", "images/logo/mstile-310x150.png", &["png"]),
    (
        "safari_pinned",
        "images/logo/safari-pinned-tab.svg",
        &["svg"],
    ),
];

/// The setting an asset lives in.
pub fn setting_id(name: &str) -> String {
    format!("Assets_{name}")
}

/// The type and extension of an asset image, from its first bytes.
fn sniff(head: &[u8]) -> Option<(&'static str, &'static str)> {
    if head.starts_with(&[0, 0, 1, 0]) {
        return Some(("image/x-icon", "ico"));
    }
    Some(match image_type(head)? {
        "image/png" => ("image/png", "png"),
        "image/jpeg" => ("image/jpeg", "jpg"),
        "image/gif" => ("image/gif", "gif"),
        "image/webp" => ("image/webp", "webp"),
        t => (t, "svg"),
    })
}

fn key_of(name: &str, etag: &str) -> CoreResult<BlobKey> {
    BlobKey::new(&format!("assets/{name}/{etag}")).map_err(|_| CoreError::internal("asset key"))
}

fn invalid_asset() -> CoreError {
    CoreError::bad("error-invalid-asset", "Invalid asset")
}

impl Core {
    fn asset(
        &self,
        actor: &User,
        name: &str,
    ) -> CoreResult<&'static (&'static str, &'static str, &'static [&'static str])> {
        if !self.authz.has(actor, "manage-assets") {
            return Err(CoreError::bad(
                "error-action-not-allowed",
                "Managing assets not allowed",
            ));
        }
        ASSETS
            .iter()
            .find(|a| a.0 == name)
            .ok_or_else(invalid_asset)
    }

    /// The etag of the stored image of an asset, if one is uploaded.
    fn asset_etag(&self, name: &str) -> Option<String> {
        self.settings.get(&setting_id(name))["etag"]
            .as_str()
            .map(str::to_string)
    }

    /// `assets.setAsset`: stores the image whole, then points the setting at it.
    pub async fn set_asset(
        &self,
        actor: &User,
        name: &str,
        body: &mut dyn ByteSource,
    ) -> CoreResult<()> {
        let (name, default_url, extensions) = *self.asset(actor, name)?;
        let max = self.settings.int("FileUpload_MaxFileSize");
        let etag = random_id();
        let key = key_of(name, &etag)?;
        let mut sniffed = crate::file_types::Sniffed::new(body);
        self.blobs
            .put(&key, &mut sniffed, (max >= 0).then_some(max as u64))
            .await
            .map_err(|e| blob_failure(e, max))?;
        let extension = match sniff(&sniffed.head) {
            Some((_, ext))
                if extensions.contains(&ext) || (ext == "jpg" && extensions.contains(&"jpeg")) =>
            {
                ext
            }
            _ => {
                self.drop_asset_blob(name, &etag).await;
                return Err(CoreError::bad(
                    "error-invalid-file-type",
                    "Invalid file type",
                ));
            }
        };
        let old = self.asset_etag(name);
        let value = json!({"url": format!("assets/{name}.{extension}"), "defaultUrl": default_url, "etag": etag});
        if let Err(e) = self.point_asset(actor, name, value).await {
            self.drop_asset_blob(name, &etag).await;
            return Err(e);
        }
        if let Some(old) = old {
            self.drop_asset_blob(name, &old).await;
        }
        Ok(())
    }

    /// `assets.unsetAsset`: back to the default.
    pub async fn unset_asset(&self, actor: &User, name: &str) -> CoreResult<()> {
        let (name, default_url, _) = *self.asset(actor, name)?;
        let old = self.asset_etag(name);
        self.point_asset(actor, name, json!({"defaultUrl": default_url}))
            .await?;
        if let Some(old) = old {
            self.drop_asset_blob(name, &old).await;
        }
        Ok(())
    }

    async fn point_asset(&self, actor: &User, name: &str, value: Value) -> CoreResult<()> {
        let id = setting_id(name);
        let audit = self.audit(
            "setting.changed",
            Some(actor),
            json!({"id": id, "value": value}),
        );
        self.commit(vec![
            Change::SetSetting {
                id: id.clone(),
                value: value.clone(),
            },
            audit,
        ])
        .await?;
        self.settings.remember(&id, value);
        Ok(())
    }

    async fn drop_asset_blob(&self, name: &str, etag: &str) {
        if let Ok(key) = key_of(name, etag)
            && let Err(e) = self.blobs.delete(&key).await
        {
            tracing::warn!(error = %e, "could not delete a replaced asset");
        }
    }

    /// The uploaded image of `/assets/<name>.<ext>`, or `None` (no such asset, or none uploaded).
    pub async fn asset_file(&self, file: &str) -> CoreResult<Option<StoredImage>> {
        let name = file.rsplit_once('.').map_or(file, |(n, _)| n);
        if !ASSETS.iter().any(|a| a.0 == name) {
            return Ok(None);
        }
        let Some(etag) = self.asset_etag(name) else {
            return Ok(None);
        };
        let image_type = |head: &[u8]| sniff(head).map(|(content_type, _)| content_type);
        self.open_image(&key_of(name, &etag)?, etag, image_type)
            .await
    }
}
