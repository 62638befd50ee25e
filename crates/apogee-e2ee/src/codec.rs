//! The encodings Rocket.Chat's client uses, which are easy to get subtly wrong (e2ee.md §1).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::{E2eeError, Result};

/// Standard alphabet, `=` padded (`@rocket.chat/base64`).
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(s: &str, what: &'static str) -> Result<Vec<u8>> {
    STANDARD.decode(s).map_err(|_| E2eeError::Base64(what))
}

/// JWK members: URL-safe alphabet without padding (as WebCrypto exports).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64url(s: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| E2eeError::Base64(what))
}

/// Rocket.Chat's `Binary.decode`: one character to one byte; characters above U+00FF are refused.
/// Used for passphrases, salts and the JWK strings that are wrapped — never UTF-8.
pub fn latin1_decode(s: &str) -> Result<Vec<u8>> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| E2eeError::Latin1))
        .collect()
}

/// Rocket.Chat's `Binary.encode`: one byte to one character.
pub fn latin1_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_not_utf8() {
        assert_eq!(latin1_decode("é").unwrap(), vec![0xE9]);
        assert_eq!(latin1_decode("€"), Err(E2eeError::Latin1));
        assert_eq!(latin1_encode(&[0xE9, b'a']), "éa");
    }

    #[test]
    fn base64_alphabets() {
        assert_eq!(b64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(unb64url("-_8", "x").unwrap(), vec![0xfb, 0xff]);
        assert!(unb64("!!", "x").is_err());
    }
}
