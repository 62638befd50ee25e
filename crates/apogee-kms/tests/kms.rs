//! Both adapters seal, open, bind the label and survive a restart; PKCS#11 destroys keys.
//! The PKCS#11 checks need a token: `scripts/with-softhsm.sh cargo test -p apogee-kms
//! --features pkcs11` (they say so and pass without one, as the cluster tests do without NATS).

use apogee_core::kms::Kms;
use apogee_kms::FileKms;

const SECRET: &[u8] = b"{\"alg\":\"RSA-OAEP-256\",\"d\":\"private\"}";

async fn round_trip(kms: &dyn Kms, label: &str) -> apogee_core::kms::Sealed {
    let sealed = kms.seal(label, SECRET).await.unwrap();
    assert!(
        !sealed.ciphertext.windows(8).any(|w| w == &SECRET[..8]),
        "sealed"
    );
    assert_eq!(kms.open(label, &sealed).await.unwrap().as_slice(), SECRET);
    assert!(
        kms.open("another-label", &sealed).await.is_err(),
        "label bound"
    );
    let mut tampered = sealed.clone();
    *tampered.ciphertext.last_mut().unwrap() ^= 1;
    assert!(kms.open(label, &tampered).await.is_err(), "tamper evident");
    assert!(!format!("{kms:?}{sealed:?}").contains("private"));
    sealed
}

#[tokio::test]
async fn file_kms_key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    let kms = FileKms::load_or_create(&path).unwrap();
    let sealed = round_trip(&kms, "bot-1").await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A restart reads the same key.
    let again = FileKms::load_or_create(&path).unwrap();
    assert_eq!(
        again.open("bot-1", &sealed).await.unwrap().as_slice(),
        SECRET
    );
    // Another key cannot open it; a bad key is refused.
    let other = FileKms::from_key([9; 32]);
    assert!(other.open("bot-1", &sealed).await.is_err());
    assert!(FileKms::from_base64("AAAA").is_err());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(FileKms::from_base64(&text).is_ok());
}

#[cfg(feature = "pkcs11")]
#[tokio::test]
async fn pkcs11_keys_live_in_the_token_across_restarts_and_are_destroyed() {
    use apogee_kms::{Pkcs11Config, Pkcs11Kms};
    let (Ok(module), Ok(token), Ok(pin)) = (
        std::env::var("APOGEE_TEST_PKCS11_MODULE"),
        std::env::var("APOGEE_TEST_PKCS11_TOKEN"),
        std::env::var("APOGEE_TEST_PKCS11_PIN"),
    ) else {
        eprintln!("skipped: no PKCS#11 token (run under scripts/with-softhsm.sh)");
        return;
    };
    let config = Pkcs11Config {
        module: module.into(),
        token,
        pin,
    };
    let kms = Pkcs11Kms::open(&config).unwrap();
    let label = format!("apogee-test-{}", std::process::id());
    let sealed = round_trip(&kms, &label).await;
    assert_eq!(sealed.key_ref, label);
    assert!(!format!("{config:?}").contains(&config.pin));
    // Another handle on the token (a restarted server) opens it.
    let again = Pkcs11Kms::open(&config).unwrap();
    assert_eq!(
        again.open(&label, &sealed).await.unwrap().as_slice(),
        SECRET
    );
    // Destroyed: nothing opens it any more; destroying again is fine.
    kms.destroy(&label).await.unwrap();
    assert!(again.open(&label, &sealed).await.is_err());
    kms.destroy(&label).await.unwrap();
    // A wrong PIN is refused.
    let wrong = Pkcs11Config {
        pin: "0000".into(),
        ..config
    };
    assert!(Pkcs11Kms::open(&wrong).is_err());
}
