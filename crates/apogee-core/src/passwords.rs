//! Password and token hashing.
//!
//! Passwords are hashed as argon2id over `sha256-hex(password)`: clients that log in over DDP send
//! only that digest, so the server never needs the plain password. Rocket.Chat's own
//! `bcrypt(sha256-hex)` hashes (from an import) verify too and are upgraded on the next login.
//! Hashing runs on a few dedicated threads fed by a bounded queue, so a login burst cannot starve
//! the runtime, and the memory argon2 needs (19 MiB a hash) is kept by each of those threads and
//! reused by every hash it runs: the argon2 crate's own entry points allocate, zero and free
//! those 19 MiB per hash, and the allocator hands such large blocks back to the kernel, so each
//! login also paid ~5,000 page faults and a 19 MiB memset before any hashing (measured in
//! `docs/BENCHMARKS.md`, login storm).

use argon2::password_hash::{
    self, Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
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

/// Argon2 memory a hashing thread keeps between hashes, at most (the default needs 19 MiB;
/// a stored hash with larger parameters gets memory of its own for that one hash).
const KEEP_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// This thread's argon2 memory, reused by every hash it runs. Argon2 writes every block
    /// before reading it, so what an earlier hash left there does not matter.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `out`, on this thread's memory.
fn argon2_into(
    argon: &Argon2,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> password_hash::Result<()> {
    if blocks > KEEP_BLOCKS {
        let mut memory = vec![Block::default(); blocks];
        return Ok(argon.hash_password_into_with_memory(password, salt, out, &mut memory)?);
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        Ok(argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])?)
    })
}

/// argon2id with the crate's default parameters, in PHC string form (`$argon2id$v=19$…`).
fn hash_digest(digest: &str) -> String {
    let hash = || -> password_hash::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
        let params = Params::default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(len, |out| {
            argon2_into(&argon, params.block_count(), digest.as_bytes(), salt_bytes, out)
        })?;
        Ok(PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string())
    };
    hash().unwrap_or_default()
}

fn verify_digest(digest: &str, stored: &str) -> Verified {
    if stored.starts_with("$2") {
        return match bcrypt::verify(digest, stored) {
            Ok(true) => Verified::YesRehash(hash_digest(digest)),
            _ => Verified::No,
        };
    }
    if argon2_matches(digest, stored).unwrap_or(false) {
        Verified::Yes
    } else {
        Verified::No
    }
}

/// Whether `digest` hashes to the stored PHC string, with the stored algorithm, version and
/// parameters (what the argon2 crate's `verify_password` checks, on reused memory).
fn argon2_matches(digest: &str, stored: &str) -> password_hash::Result<bool> {
    let parsed = PasswordHash::new(stored)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = Output::init_with(expected.len(), |out| {
        argon2_into(&argon, params.block_count(), digest.as_bytes(), salt_bytes, out)
    })?;
    // `Output`'s comparison is constant-time.
    Ok(computed == expected)
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
    fn hashes_agree_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let d = digest("secret");
        // A hash stored before memory was reused (or by another tool) still verifies …
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(d.as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify_digest(&d, &theirs), Verified::Yes);
        assert_eq!(verify_digest(&digest("wrong"), &theirs), Verified::No);
        // … and ours verify with the crate, with its default parameters.
        let ours = hash_digest(&d);
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(d.as_bytes(), &parsed).is_ok());
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(theirs.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{theirs}");
        assert_eq!(ours.len(), theirs.len());
        // Other parameters (an imported argon2i hash with less memory) are honoured too.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8 * 1024, 2, 1, Some(32)).unwrap(),
        )
        .hash_password(d.as_bytes(), &salt)
        .unwrap()
        .to_string();
        assert_eq!(verify_digest(&d, &other), Verified::Yes);
        assert_eq!(verify_digest(&digest("wrong"), &other), Verified::No);
        // Memory reused after a larger hash leaves results unchanged.
        assert_eq!(verify_digest(&d, &theirs), Verified::Yes);
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
