//! The codes themselves, as pure functions: TOTP secrets and checks (RFC 6238 via `totp-rs`),
//! backup codes and e-mailed codes. Nothing here reads a clock or a store: callers pass the time
//! and persist what changed.

use apogee_domain::ids::random_string;
use rand::Rng;
use sha2::{Digest, Sha256};
use totp_rs::{Builder, Secret, Totp};

/// How many backup codes a user gets (Rocket.Chat: 12 of 8 characters).
pub const BACKUP_CODES: usize = 12;
const BACKUP_CODE_LEN: usize = 8;
/// E-mailed codes: six digits, as Rocket.Chat.
const EMAIL_CODE_DIGITS: usize = 6;

/// A new TOTP secret, base32 (160 random bits, the RFC 4226 recommendation).
pub fn new_totp_secret() -> String {
    Secret::generate().to_base32()
}

fn totp(secret_base32: &str, skew: u16) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    Builder::new()
        .with_secret(secret)
        .with_skew(skew)
        .build()
        .ok()
}

/// The `otpauth://totp/<issuer>:<account>?secret=…&issuer=…` URI an authenticator app scans.
pub fn otpauth_uri(secret_base32: &str, issuer: &str, account: &str) -> Option<String> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    // A colon separates issuer and account in the label; neither may contain one.
    let clean = |s: &str| s.replace(':', "");
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
        .ok()?
        .to_url()
        .ok()
}

/// The time step (`unix_seconds / 30`) a six-digit `code` is valid for, within `max_delta` steps
/// of `now` either way, and only if later than `last_step`: a code, once accepted, is never
/// accepted again (RFC 6238 §5.2), nor is any older one.
pub fn check_totp(
    secret_base32: &str,
    code: &str,
    now_secs: u64,
    max_delta: u16,
    last_step: Option<i64>,
) -> Option<i64> {
    let totp = totp(secret_base32, max_delta)?;
    let step = totp.check(code.trim(), now_secs)? as i64;
    match last_step {
        Some(last) if step <= last => None,
        _ => Some(step),
    }
}

/// The current code for a secret (tests and the operator's own checks).
pub fn current_totp(secret_base32: &str, now_secs: u64) -> Option<String> {
    Some(totp(secret_base32, 0)?.generate(now_secs).to_string())
}

/// Backup codes are stored as sha256-hex, as Rocket.Chat stores `hashedBackup`.
pub fn hash_backup_code(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// New backup codes and their hashes.
pub fn new_backup_codes() -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..BACKUP_CODES)
        .map(|_| random_string(BACKUP_CODE_LEN))
        .collect();
    let hashes = codes.iter().map(|c| hash_backup_code(c)).collect();
    (codes, hashes)
}

/// Whether `code` has the shape of a backup code rather than a TOTP code.
pub fn looks_like_backup_code(code: &str) -> bool {
    code.len() == BACKUP_CODE_LEN
}

/// Removes the backup code from `hashes` if present; true when it was (each code works once).
pub fn consume_backup_code(hashes: &mut Vec<String>, code: &str) -> bool {
    let hashed = hash_backup_code(code);
    match hashes.iter().position(|h| *h == hashed) {
        Some(i) => {
            hashes.remove(i);
            true
        }
        None => false,
    }
}

/// A new six-digit e-mail code.
pub fn new_email_code() -> String {
    let mut rng = rand::thread_rng();
    (0..EMAIL_CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// `sha256-hex(salt ":" code)`. A six-digit code is short-lived (expiry setting) and
/// attempt-limited online; the salt keeps one precomputed table from covering every user.
pub fn hash_email_code(salt: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{code}").as_bytes()))
}

/// Rocket.Chat shows e-mail codes as `123-456` and ignores everything but digits when checking.
pub fn normalise_email_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_digit).collect()
}

/// `123456` → `123-456`, as in the e-mail.
pub fn format_email_code(code: &str) -> String {
    if code.len() > 3 {
        format!("{}-{}", &code[..3], &code[3..])
    } else {
        code.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_codes_are_checked_within_the_window_and_once() {
        let secret = new_totp_secret();
        let now = 1_700_000_000;
        let code = current_totp(&secret, now).unwrap();
        let step = check_totp(&secret, &code, now, 1, None).unwrap();
        assert_eq!(step, (now / 30) as i64);
        // The same code again: refused (replay).
        assert_eq!(check_totp(&secret, &code, now, 1, Some(step)), None);
        // The previous step's code after the current one was used: refused.
        let previous = current_totp(&secret, now - 30).unwrap();
        assert_eq!(check_totp(&secret, &previous, now, 1, Some(step)), None);
        // One step late is within MaxDelta 1; two are not; delta 0 allows only the current.
        assert!(check_totp(&secret, &code, now + 30, 1, None).is_some());
        assert_eq!(check_totp(&secret, &code, now + 60, 1, None), None);
        assert_eq!(check_totp(&secret, &code, now + 30, 0, None), None);
        assert_eq!(check_totp(&secret, "12345", now, 1, None), None);
        assert_eq!(check_totp(&secret, "abcdef", now, 1, None), None);
        assert_eq!(check_totp("not base32!", &code, now, 1, None), None);
    }

    #[test]
    fn otpauth_uri_names_issuer_account_and_secret() {
        let secret = new_totp_secret();
        let uri = otpauth_uri(&secret, "Apogee", "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/Apogee:alice?"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
        assert!(uri.contains("issuer=Apogee"), "{uri}");
    }

    #[test]
    fn backup_codes_work_once() {
        let (codes, mut hashes) = new_backup_codes();
        assert_eq!(codes.len(), BACKUP_CODES);
        assert!(codes.iter().all(|c| looks_like_backup_code(c)));
        assert!(!hashes.contains(&codes[0]), "stored hashed");
        assert!(consume_backup_code(&mut hashes, &codes[0]));
        assert!(!consume_backup_code(&mut hashes, &codes[0]));
        assert_eq!(hashes.len(), BACKUP_CODES - 1);
    }

    #[test]
    fn email_codes_are_six_digits_and_normalised() {
        let code = new_email_code();
        assert_eq!(code.len(), 6);
        assert!(code.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(normalise_email_code(&format_email_code(&code)), code);
        assert_ne!(hash_email_code("a", &code), hash_email_code("b", &code));
    }
}
