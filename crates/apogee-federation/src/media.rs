//! Federated media (`mxc://`): serving our files to other servers
//! (`GET /_matrix/federation/v1/media/download/{mediaId}` and `…/thumbnail/{mediaId}`,
//! `X-Matrix` authenticated, answered `multipart/mixed`: a JSON metadata part, then the bytes),
//! and downloading remote files the same way. Core decides which files a server may read
//! (files of rooms it shares with us) and what is kept.

use crate::server::{Authenticated, MatrixError};
use crate::{FedError, Federation, parse_server_name};
use apogee_core::blobs::read_all;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// A media id as Matrix allows it (`[A-Za-z0-9_-]`), so it never changes a path.
pub fn valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `(server, media id)` of an `mxc://server/id` URL.
pub fn parse_mxc(url: &str) -> Option<(&str, &str)> {
    let (server, id) = url.strip_prefix("mxc://")?.split_once('/')?;
    (parse_server_name(server).is_ok() && valid_media_id(id)).then_some((server, id))
}

/// `GET /media/download/{mediaId}` (and `/thumbnail/`, answered with the file itself).
pub(crate) async fn download(
    State(fed): State<Arc<Federation>>,
    Path(media_id): Path<String>,
    signed: Authenticated,
) -> Result<Response, MatrixError> {
    let not_found = || MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Media not found");
    if !valid_media_id(&media_id) {
        return Err(not_found());
    }
    if apogee_core::federated_avatars::is_avatar_media(&media_id) {
        return avatar(&fed, &media_id, signed.origin.as_str())
            .await
            .map_err(|()| not_found());
    }
    let file = fed
        .core
        .federated_media(&media_id, signed.origin.as_str())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "federated media");
            not_found()
        })?
        .ok_or_else(not_found)?;
    let mut body = fed
        .core
        .read_download(&file, None)
        .await
        .map_err(|_| not_found())?;
    let bytes = read_all(body.chunks.as_mut())
        .await
        .map_err(|_| not_found())?;
    let boundary = apogee_domain::random_id();
    let (content_type, payload) = multipart(
        &boundary,
        &file.upload.content_type,
        &file.upload.name,
        &bytes,
    );
    Ok(([(header::CONTENT_TYPE, content_type)], payload).into_response())
}

/// A local user's or federated room's avatar (`mxc://<us>/avatar_…`, `…/roomavatar_…`);
/// core decides who sees it.
async fn avatar(fed: &Federation, media_id: &str, origin: &str) -> Result<Response, ()> {
    let mut image = fed
        .core
        .federated_avatar(media_id, origin)
        .await
        .map_err(|e| tracing::warn!(error = %e, "federated avatar"))?
        .ok_or(())?;
    let bytes = read_all(image.body.as_mut()).await.map_err(|_| ())?;
    let boundary = apogee_domain::random_id();
    let (content_type, payload) = multipart(&boundary, image.content_type, "avatar", &bytes);
    Ok(([(header::CONTENT_TYPE, content_type)], payload).into_response())
}

/// The `multipart/mixed` answer: `{}` metadata, then the file.
fn multipart(boundary: &str, content_type: &str, name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let mut out = Vec::with_capacity(bytes.len() + 256);
    out.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n").as_bytes(),
    );
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: {content_type}\r\nContent-Disposition: inline; filename*=utf-8''{}\r\n\r\n",
            apogee_core::files::encode_uri(name).replace(['#', '?', '&', ';', ','], "_")
        )
        .as_bytes(),
    );
    out.extend_from_slice(bytes);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), out)
}

/// The file part of a `multipart/mixed` answer: its type and bytes. The boundary is read from
/// the body's first line (the body starts with it).
pub fn file_part(body: &[u8]) -> Result<(String, Vec<u8>), FedError> {
    let bad = |why: &str| FedError::BadResponse(format!("media answer: {why}"));
    // Synapse starts with a line break before the first boundary; any preamble is skipped.
    let start = find(body, b"--").ok_or_else(|| bad("no boundary"))?;
    let body = &body[start..];
    let first_end = find(body, b"\r\n").ok_or_else(|| bad("no boundary"))?;
    let boundary = &body[..first_end];
    if !boundary.starts_with(b"--") || boundary.len() < 3 {
        return Err(bad("no boundary"));
    }
    let mut delimiter = b"\r\n".to_vec();
    delimiter.extend_from_slice(boundary);
    // Parts: after the first boundary line, each up to the next "\r\n--boundary".
    let mut rest = &body[first_end + 2..];
    let mut parts = Vec::new();
    while let Some(end) = find(rest, &delimiter) {
        parts.push(&rest[..end]);
        rest = &rest[end + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("broken part"))?;
    }
    let file = parts.get(1).ok_or_else(|| bad("no file part"))?;
    let head_end = find(file, b"\r\n\r\n").ok_or_else(|| bad("part without headers"))?;
    let headers = String::from_utf8_lossy(&file[..head_end]);
    let mut content_type = "application/octet-stream".to_string();
    for line in headers.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = value.trim().to_string();
        }
        if name.trim().eq_ignore_ascii_case("location") {
            return Err(bad("redirects to another location are not followed"));
        }
    }
    Ok((content_type, file[head_end + 4..].to_vec()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Federation {
    /// Downloads `mxc://server/media_id` from its server: its type and bytes, at most `max`.
    pub async fn fetch_media(
        &self,
        server: &str,
        media_id: &str,
        max: u64,
    ) -> Result<(String, Vec<u8>), FedError> {
        if !valid_media_id(media_id) {
            return Err(FedError::BadResponse("invalid media id".into()));
        }
        let server = parse_server_name(server)?;
        let target = format!("/_matrix/federation/v1/media/download/{media_id}");
        let answer = self
            .client
            .request(&server, http::Method::GET, &target, None)
            .await?;
        if !answer.status.is_success() {
            return Err(FedError::BadResponse(format!(
                "media download: {}",
                answer.status
            )));
        }
        let (content_type, bytes) = file_part(&answer.body)?;
        if bytes.len() as u64 > max {
            return Err(FedError::BadResponse(format!(
                "media of {} bytes is over the limit of {max}",
                bytes.len()
            )));
        }
        Ok((content_type, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_round_trip() {
        let (ct, body) = multipart("b0undary", "image/png", "a b.png", b"\x89PNG\r\n--x");
        assert_eq!(ct, "multipart/mixed; boundary=b0undary");
        let (t, bytes) = file_part(&body).unwrap();
        assert_eq!(t, "image/png");
        assert_eq!(bytes, b"\x89PNG\r\n--x");
    }

    #[test]
    fn broken_answers_are_errors() {
        assert!(file_part(b"").is_err());
        let synapse_style = b"\r\n--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
        assert_eq!(
            file_part(synapse_style).unwrap(),
            ("text/plain".to_string(), b"hi".to_vec())
        );
        assert!(file_part(b"--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--").is_err());
        assert!(
            file_part(b"--b\r\n\r\n{}\r\n--b\r\nLocation: https://x\r\n\r\n\r\n--b--").is_err()
        );
    }

    #[test]
    fn mxc_urls_are_checked() {
        assert_eq!(
            parse_mxc("mxc://synapse.test/abc_D-1"),
            Some(("synapse.test", "abc_D-1"))
        );
        assert_eq!(
            parse_mxc("mxc://localhost:8448/x"),
            Some(("localhost:8448", "x"))
        );
        assert!(parse_mxc("mxc://synapse.test/../etc").is_none());
        assert!(parse_mxc("https://synapse.test/x").is_none());
        assert!(parse_mxc("mxc://bad host/x").is_none());
    }
}
