use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use apogee_core::kms::{Kms, KmsError, Sealed};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

const NONCE: usize = 12;

/// Seals with AES-256-GCM under one key-encryption key. `Debug` never shows the key.
pub struct FileKms {
    kek: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FileKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKms(<key-encryption key redacted>)")
    }
}

fn err(what: &str) -> KmsError {
    KmsError(what.to_string())
}

impl FileKms {
    pub fn from_key(kek: [u8; 32]) -> Self {
        Self {
            kek: Zeroizing::new(kek),
        }
    }

    /// From base64 of 32 bytes (the `APOGEE_KMS_KEY` form, and the key file's content).
    pub fn from_base64(text: &str) -> Result<Self, KmsError> {
        let raw = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| err("key-encryption key is not base64"))?,
        );
        let kek: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| err("key-encryption key is not 32 bytes"))?;
        Ok(Self::from_key(kek))
    }

    /// Reads the key file, creating it (mode 0600, a fresh random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KmsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut kek = [0u8; 32];
                OsRng.fill_bytes(&mut kek);
                let text = Zeroizing::new(STANDARD.encode(kek));
                write_private(path, text.as_bytes())
                    .map_err(|e| KmsError(format!("cannot create {}: {e}", path.display())))?;
                Ok(Self::from_key(kek))
            }
            Err(e) => Err(KmsError(format!("cannot read {}: {e}", path.display()))),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.kek.as_ref()).expect("32-byte key")
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[async_trait]
impl Kms for FileKms {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Sealed, KmsError> {
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| err("seal failed"))?;
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend(ct);
        Ok(Sealed {
            key_ref: label.to_string(),
            ciphertext,
        })
    }

    async fn open(&self, label: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if sealed.ciphertext.len() <= NONCE {
            return Err(err("sealed secret too short"));
        }
        let (nonce, ct) = sealed.ciphertext.split_at(NONCE);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: label.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| err("sealed secret does not open with this key"))
    }

    async fn destroy(&self, _key_ref: &str) -> Result<(), KmsError> {
        // One key seals every secret: the secret dies with its sealed copy.
        Ok(())
    }
}
