use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use apogee_core::kms::{Kms, KmsError, Sealed};
use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

const IV: usize = 12;

/// Where the token is. The PIN never shows in `Debug`.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    pub pin: String,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &"<redacted>")
            .finish()
    }
}

struct Token {
    ctx: Pkcs11,
    slot: Slot,
    pin: String,
}

/// One AES-256 key per secret inside a PKCS#11 token. Calls are blocking and serialised.
#[derive(Clone)]
pub struct Pkcs11Kms {
    token: Arc<Mutex<Token>>,
    label: String,
}

impl std::fmt::Debug for Pkcs11Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Kms(token {})", self.label)
    }
}

fn ck(what: &str) -> impl Fn(CkError) -> KmsError + '_ {
    move |e| KmsError(format!("{what}: {e}"))
}

impl Token {
    fn session(&self) -> Result<Session, KmsError> {
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(ck("open session"))?;
        match session.login(UserType::User, Some(&AuthPin::new(self.pin.clone()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(ck("login")(e)),
        }
    }
}

/// One initialised context per module and process: PKCS#11 allows a single `C_Initialize`, and
/// dropping a context finalises the module for every other handle.
fn context(module: &std::path::Path) -> Result<Pkcs11, KmsError> {
    static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut contexts = CONTEXTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, ctx)) = contexts.iter().find(|(m, _)| m == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(ck("load module"))?;
    ctx.initialize(CInitializeArgs::OsThreads)
        .map_err(ck("initialize"))?;
    contexts.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

fn find(session: &Session, label: &str) -> Result<Vec<ObjectHandle>, KmsError> {
    session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(ck("find key"))
}

impl Pkcs11Kms {
    /// Loads the module and finds the token (checking the PIN once).
    pub fn open(config: &Pkcs11Config) -> Result<Self, KmsError> {
        let ctx = context(&config.module)?;
        let mut found = None;
        for slot in ctx.get_slots_with_token().map_err(ck("list slots"))? {
            let info = ctx.get_token_info(slot).map_err(ck("token info"))?;
            if info.label().trim_end() == config.token {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| KmsError(format!("no token labelled {}", config.token)))?;
        let token = Token {
            ctx,
            slot,
            pin: config.pin.clone(),
        };
        token.session()?;
        Ok(Self {
            token: Arc::new(Mutex::new(token)),
            label: config.token.clone(),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Token) -> Result<T, KmsError> + Send + 'static,
    ) -> Result<T, KmsError> {
        let token = self.token.clone();
        tokio::task::spawn_blocking(move || {
            let token = token.lock().unwrap_or_else(|e| e.into_inner());
            f(&token)
        })
        .await
        .map_err(|_| KmsError("token task failed".into()))?
    }
}

#[async_trait]
impl Kms for Pkcs11Kms {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    async fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Sealed, KmsError> {
        let label = label.to_string();
        let plaintext = Zeroizing::new(plaintext.to_vec());
        self.blocking(move |t| {
            let session = t.session()?;
            // Sensitive and never extractable: the key exists only inside the token.
            let key = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ],
                )
                .map_err(ck("generate key"))?;
            let mut iv = [0u8; IV];
            OsRng.fill_bytes(&mut iv);
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, label.as_bytes(), 128.into())
                .map_err(ck("GCM parameters"))?;
            let ct = session
                .encrypt(&Mechanism::AesGcm(params), key, &plaintext)
                .map_err(ck("encrypt"))?;
            let mut ciphertext = iv.to_vec();
            ciphertext.extend(ct);
            Ok(Sealed {
                key_ref: label,
                ciphertext,
            })
        })
        .await
    }

    async fn open(&self, label: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if sealed.ciphertext.len() <= IV {
            return Err(KmsError("sealed secret too short".into()));
        }
        let label = label.to_string();
        let data = sealed.ciphertext.clone();
        self.blocking(move |t| {
            let session = t.session()?;
            let key = *find(&session, &label)?
                .first()
                .ok_or_else(|| KmsError("no key for this secret in the token".into()))?;
            let (iv, ct) = data.split_at(IV);
            let mut iv = iv.to_vec();
            let params = GcmParams::new(&mut iv, label.as_bytes(), 128.into())
                .map_err(ck("GCM parameters"))?;
            session
                .decrypt(&Mechanism::AesGcm(params), key, ct)
                .map(Zeroizing::new)
                .map_err(ck("decrypt"))
        })
        .await
    }

    async fn destroy(&self, key_ref: &str) -> Result<(), KmsError> {
        let label = key_ref.to_string();
        self.blocking(move |t| {
            let session = t.session()?;
            for key in find(&session, &label)? {
                session.destroy_object(key).map_err(ck("destroy key"))?;
            }
            Ok(())
        })
        .await
    }
}
