//! What a file is, from its bytes rather than from what the client says: the type of an upload
//! is sniffed from its first bytes as they stream in, and checked against Rocket.Chat's MIME
//! allow and deny lists (`FileUpload_MediaTypeWhiteList` / `BlackList`) before the rest is kept.

use crate::blobs::{BlobError, ByteSource};
use async_trait::async_trait;

/// Bytes kept from the start of an upload to recognise its type.
pub const SNIFF: usize = 8192;

/// Declared types taken as they are when the bytes are text (text has no magic number).
const TEXT_TYPES: &[&str] = &[
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/yaml",
    "application/x-sh",
    "application/sql",
];

/// The type of a file whose first bytes are `head` and that the client called `declared`.
/// Magic numbers win; SVG is recognised as such; text keeps a declared text type (else
/// `text/plain`); anything else unrecognised is `application/octet-stream`, whatever it claimed.
pub fn sniffed_type(head: &[u8], declared: &str) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    if crate::avatars::image_type(head) == Some("image/svg+xml") {
        return "image/svg+xml".into();
    }
    if looks_like_text(head) {
        let textual = declared.starts_with("text/") || TEXT_TYPES.contains(&declared);
        return if textual { declared } else { "text/plain" }.into();
    }
    "application/octet-stream".into()
}

/// UTF-8 (allowing a character cut at the end of the sample) without NULs or control bytes
/// other than whitespace.
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !head.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// Rocket.Chat's `fileUploadIsValidContentType`: refused when on the deny list; when the allow
/// list is set, accepted only when on it. Lists are comma-separated; `image/*` covers a family.
pub fn type_accepted(content_type: &str, allow: &str, deny: &str) -> bool {
    let on = |list: &str| {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .any(|entry| match entry.strip_suffix("/*") {
                Some(family) => content_type.split('/').next() == Some(family),
                None => entry.eq_ignore_ascii_case(content_type),
            })
    };
    if on(deny) {
        return false;
    }
    allow.trim().is_empty() || on(allow)
}

/// Decides on the first bytes of a stream; `Err` holds why it is refused.
type HeadCheck<'a> = Box<dyn FnOnce(&[u8]) -> Result<(), String> + Send + 'a>;

/// Passes an upload through while keeping its first [`SNIFF`] bytes. With a `check`, the
/// check sees those bytes (or all of a smaller file) before more is passed on; when it refuses,
/// the stream fails, so the blob store keeps nothing of it, and `refused` holds the reason.
pub(crate) struct Sniffed<'a> {
    inner: &'a mut dyn ByteSource,
    pub head: Vec<u8>,
    check: Option<HeadCheck<'a>>,
    pub refused: Option<String>,
    /// Chunks read while filling `head`, not yet passed on.
    held: Vec<Vec<u8>>,
    done: bool,
}

impl<'a> Sniffed<'a> {
    pub fn new(inner: &'a mut dyn ByteSource) -> Self {
        Sniffed {
            inner,
            head: Vec::new(),
            check: None,
            refused: None,
            held: Vec::new(),
            done: false,
        }
    }

    pub fn checked(
        inner: &'a mut dyn ByteSource,
        check: impl FnOnce(&[u8]) -> Result<(), String> + Send + 'a,
    ) -> Self {
        Sniffed {
            check: Some(Box::new(check)),
            ..Sniffed::new(inner)
        }
    }

    async fn pull(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        let chunk = self.inner.next_chunk().await?;
        if let Some(c) = &chunk
            && self.head.len() < SNIFF
        {
            let take = (SNIFF - self.head.len()).min(c.len());
            self.head.extend_from_slice(&c[..take]);
        }
        Ok(chunk)
    }
}

#[async_trait]
impl ByteSource for Sniffed<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        if self.check.is_some() {
            // Read ahead until the sample is complete (or the file ends), then decide.
            while self.head.len() < SNIFF && !self.done {
                match self.pull().await? {
                    Some(c) => self.held.push(c),
                    None => self.done = true,
                }
            }
            let check = self.check.take().expect("checked above");
            if let Err(reason) = check(&self.head) {
                self.refused = Some(reason.clone());
                return Err(BlobError::Source(reason));
            }
            self.held.reverse();
        }
        if let Some(c) = self.held.pop() {
            return Ok(Some(c));
        }
        if self.done {
            return Ok(None);
        }
        self.pull().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::BytesSource;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(
            sniffed_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "text/plain"),
            "image/png"
        );
        assert_eq!(sniffed_type(b"%PDF-1.7\n", "image/png"), "application/pdf");
        assert_eq!(
            sniffed_type(b"<svg xmlns='x'/>", "image/png"),
            "image/svg+xml"
        );
        assert_eq!(sniffed_type(b"a,b\n1,2\n", "text/csv"), "text/csv");
        assert_eq!(
            sniffed_type(b"{\"a\":1}", "application/json"),
            "application/json"
        );
        assert_eq!(
            sniffed_type(b"hello", "image/png"),
            "text/plain",
            "a lie is not kept"
        );
        assert_eq!(
            sniffed_type(b"\0\x01\x02garbage", "image/png"),
            "application/octet-stream"
        );
        assert_eq!(sniffed_type("héllo".as_bytes(), "text/plain"), "text/plain");
    }

    #[test]
    fn lists_work_as_in_rocket_chat() {
        assert!(type_accepted("image/png", "", "image/svg+xml"));
        assert!(!type_accepted("image/svg+xml", "", "image/svg+xml"));
        assert!(type_accepted("image/png", "image/*,application/pdf", ""));
        assert!(type_accepted(
            "application/pdf",
            "image/*, application/pdf",
            ""
        ));
        assert!(!type_accepted("text/plain", "image/*,application/pdf", ""));
        assert!(!type_accepted("image/gif", "image/*", "image/gif"));
    }

    #[tokio::test]
    async fn a_refused_sample_stops_the_stream() {
        let mut src = BytesSource::new(vec![b'x'; 20_000]);
        let mut s = Sniffed::checked(&mut src, |head| {
            assert_eq!(head.len(), SNIFF);
            Err("no".into())
        });
        assert!(s.next_chunk().await.is_err());
        assert_eq!(s.refused.as_deref(), Some("no"));

        let mut src = BytesSource::new(b"small".to_vec());
        let mut s = Sniffed::checked(&mut src, |_| Ok(()));
        assert_eq!(s.next_chunk().await.unwrap(), Some(b"small".to_vec()));
        assert_eq!(s.next_chunk().await.unwrap(), None);
        assert_eq!(s.head, b"small");
    }
}
