//! Key recovery with M-of-N recovery officers (Apogee's own; `docs/E2EE-RECOVERY.md`).
//!
//! The user's client makes a random 256-bit backup key, encrypts the private JWK string with it
//! (AES-256-GCM over `Binary.decode(jwk)`, the same plaintext the passphrase wrapping protects,
//! so the restored key is byte-identical), splits the backup key into Shamir shares and seals
//! one share to each officer's RSA-OAEP-256 public key. To restore, officers re-seal their share
//! to a one-off restore key of the user's; M of them give back the backup key.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::{b64, latin1_decode, latin1_encode, unb64};
use crate::user_key::RSA_BLOCK;
use crate::{E2eeError, Result, UserKeyPair, UserPublicKey, shamir};

/// Length of a share: the x-coordinate and one byte per backup-key byte.
pub const SHARE_LEN: usize = 33;

/// The key that encrypts the private-key backup. Zeroized on drop, never shown.
pub struct BackupKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(<redacted>)")
    }
}

/// The encrypted private key as uploaded at enrolment: base64 of a 12-byte IV and of the
/// AES-GCM ciphertext (tag appended, as WebCrypto produces it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryBackup {
    pub iv: String,
    pub ciphertext: String,
}

/// One officer's share of a backup key. Zeroized on drop, never shown.
pub struct KeyShare(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyShare(<redacted>)")
    }
}

impl KeyShare {
    /// Base64 of `RSA-OAEP-256(recipient, x ‖ y)`: what is stored for an officer, or what an
    /// officer sends back re-sealed to the user's restore key.
    pub fn seal_to(&self, recipient: &UserPublicKey) -> Result<String> {
        Ok(b64(&recipient.encrypt(&self.0)?))
    }

    /// Opens a sealed share with the recipient's private key.
    pub fn open(sealed: &str, recipient: &UserKeyPair) -> Result<Self> {
        let block = unb64(sealed, "sealed share")?;
        if block.len() != RSA_BLOCK {
            return Err(E2eeError::Format("sealed share"));
        }
        let share = recipient.decrypt(&block)?;
        if share.len() != SHARE_LEN {
            return Err(E2eeError::Format("share length"));
        }
        Ok(Self(Zeroizing::new(share.to_vec())))
    }
}

impl BackupKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// `count` shares of which any `threshold` give this key back.
    pub fn split(&self, threshold: u8, count: u8) -> Result<Vec<KeyShare>> {
        Ok(shamir::split(self.0.as_ref(), threshold, count)?
            .into_iter()
            .map(KeyShare)
            .collect())
    }

    /// The key from shares. With fewer than the threshold this is a wrong key, which
    /// [`BackupKey::open_private_key`] then refuses.
    pub fn combine(shares: &[KeyShare]) -> Result<Self> {
        let parts: Vec<&[u8]> = shares.iter().map(|s| &s.0[..]).collect();
        let secret = shamir::combine(&parts)?;
        let mut key = Zeroizing::new([0u8; 32]);
        if secret.len() != key.len() {
            return Err(E2eeError::Format("share length"));
        }
        key.copy_from_slice(&secret);
        Ok(Self(key))
    }

    /// Encrypts the private JWK string (Latin-1 bytes, as the passphrase wrapping does).
    pub fn seal_private_key(&self, private_jwk: &str) -> Result<RecoveryBackup> {
        let plain = Zeroizing::new(latin1_decode(private_jwk)?);
        let mut iv = [0u8; 12];
        OsRng.fill_bytes(&mut iv);
        let ct = self
            .cipher()
            .encrypt(Nonce::from_slice(&iv), plain.as_slice())
            .map_err(|_| E2eeError::Encrypt)?;
        Ok(RecoveryBackup {
            iv: b64(&iv),
            ciphertext: b64(&ct),
        })
    }

    /// The private JWK string back; a wrong key (too few or tampered shares) fails here.
    pub fn open_private_key(&self, backup: &RecoveryBackup) -> Result<Zeroizing<String>> {
        let iv = unb64(&backup.iv, "iv")?;
        if iv.len() != 12 {
            return Err(E2eeError::Format("backup iv"));
        }
        let ct = unb64(&backup.ciphertext, "ciphertext")?;
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(Nonce::from_slice(&iv), ct.as_slice())
                .map_err(|_| E2eeError::Decrypt)?,
        );
        Ok(Zeroizing::new(latin1_encode(&plain)))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.as_ref().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_round_trip_through_sealed_shares() {
        let user = UserKeyPair::generate().unwrap();
        let officers: Vec<UserKeyPair> = (0..3).map(|_| UserKeyPair::generate().unwrap()).collect();
        let restore = UserKeyPair::generate().unwrap();

        let key = BackupKey::generate();
        let backup = key.seal_private_key(&user.private_jwk()).unwrap();
        let sealed: Vec<String> = key
            .split(2, 3)
            .unwrap()
            .iter()
            .zip(&officers)
            .map(|(share, officer)| share.seal_to(&officer.public()).unwrap())
            .collect();
        drop(key);

        // Officers 0 and 2 open their shares and re-seal them to the restore key.
        let resealed: Vec<String> = [0, 2]
            .iter()
            .map(|&i| {
                KeyShare::open(&sealed[i], &officers[i])
                    .unwrap()
                    .seal_to(&restore.public())
                    .unwrap()
            })
            .collect();
        let shares: Vec<KeyShare> = resealed
            .iter()
            .map(|s| KeyShare::open(s, &restore).unwrap())
            .collect();
        let restored = BackupKey::combine(&shares).unwrap();
        assert_eq!(
            *restored.open_private_key(&backup).unwrap(),
            *user.private_jwk()
        );

        // One share is not enough, and an officer cannot open another's share.
        let one = vec![KeyShare::open(&resealed[0], &restore).unwrap()];
        let wrong = BackupKey::combine(&one);
        assert!(wrong.is_err() || wrong.unwrap().open_private_key(&backup).is_err());
        assert!(KeyShare::open(&sealed[1], &officers[0]).is_err());
        assert_eq!(format!("{:?}", shares[0]), "KeyShare(<redacted>)");
    }
}
