//! Password and token hashing.
//!
//! Passwords are hashed as argon2id over `sha256-hex(password)`: clients that log in over DDP send
//! only that digest, so the server never needs the plain password. Rocket.Chat's own
//! `bcrypt(sha256-hex)` hashes (from an import) verify too and are upgraded on the next login.
//! Hashing runs on a few dedicated threads fed by a bounded queue, so a login burst cannot starve
//! the runtime, and the memory argon2 needs (19 MiB a hash) is reused by those threads instead of
//! being left behind in the allocator of every blocking-pool thread that ever hashed.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Hashes waiting for a thread before callers wait to enqueue.
const HASH_QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// The sha256-hex digest clients send in place of a password.
pub fn digest(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

/// `base64(sha256(token))`, the only form in which login tokens are stored.
pub fn hash_token(token: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(token.as_bytes()))
}

/// A new login token: 43 URL-safe characters (256 bits), like Meteor's.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Outcome of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored in a legacy format: store this new hash.
    YesRehash(String),
}

#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
}

impl Default for Hasher {
    fn default() -> Self {
        let (jobs, rx) = mpsc::channel::<Job>(HASH_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        // One thread a core: hashing is CPU-bound.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("apogee-hash-{i}"))
                .spawn(move || {
                    loop {
                        // One idle thread waits on the queue at a time; the lock is released
                        // before the job runs.
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
                        match job {
                            Some(job) => job(),
                            None => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self { jobs }
    }
}

impl Hasher {
    /// Hashes a sha256-hex digest for storage.
    pub async fn hash(&self, digest: String) -> String {
        self.run(move || hash_digest(&digest)).await
    }

    /// Checks a sha256-hex digest against a stored hash.
    pub async fn verify(&self, digest: String, stored: String) -> Verified {
        self.run(move || verify_digest(&digest, &stored)).await
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        if self.jobs.send(job).await.is_err() {
            panic!("password hashing threads are gone");
        }
        match rx.await {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("password hashing thread ended"),
        }
    }
}

fn hash_digest(digest: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(digest.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

fn verify_digest(digest: &str, stored: &str) -> Verified {
    if stored.starts_with("$2") {
        return match bcrypt::verify(digest, stored) {
            Ok(true) => Verified::YesRehash(hash_digest(digest)),
            _ => Verified::No,
        };
    }
    match PasswordHash::new(stored) {
        Ok(parsed)
            if Argon2::default()
                .verify_password(digest.as_bytes(), &parsed)
                .is_ok() =>
        {
            Verified::Yes
        }
        _ => Verified::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest("pass"),
            "d74ff0ee8da3b9806b18c877dbf29bbde50b5bd8e4dad7a3a725000feb82e8f1"
        );
    }

    #[test]
    fn argon2_hashes_verify() {
        let d = digest("secret");
        let h = hash_digest(&d);
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify_digest(&d, &h), Verified::Yes);
        assert_eq!(verify_digest(&digest("wrong"), &h), Verified::No);
        assert_eq!(verify_digest(&d, "garbage"), Verified::No);
    }

    #[test]
    fn rocket_chat_bcrypt_hashes_verify_and_upgrade() {
        let d = digest("secret");
        let legacy = bcrypt::hash(&d, 4).unwrap();
        match verify_digest(&d, &legacy) {
            Verified::YesRehash(new) => assert_eq!(verify_digest(&d, &new), Verified::Yes),
            other => panic!("{other:?}"),
        }
        assert_eq!(verify_digest(&digest("no"), &legacy), Verified::No);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let t = new_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_token());
        assert_eq!(hash_token(&t).len(), 44);
    }
}
