//! [`ClamdScanner`] against a real clamd (`scripts/with-clamd.sh` exports its addresses; the
//! database holds one signature, for the EICAR test string). Skips without it.

use apogee_clamd::ClamdScanner;
use apogee_core::blobs::{BlobError, ByteSource};
use apogee_core::malware::{MalwareScanner, Verdict};

/// The EICAR anti-virus test string, assembled at run time.
fn eicar() -> Vec<u8> {
    [
        r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR",
        "-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ]
    .concat()
    .into_bytes()
}

/// Chunks of a file, as the blob store yields them.
struct Chunks(std::vec::IntoIter<Vec<u8>>);

impl Chunks {
    fn of(data: &[u8], size: usize) -> Self {
        Self(
            data.chunks(size)
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }
}

#[async_trait::async_trait]
impl ByteSource for Chunks {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self.0.next())
    }
}

/// A source that fails half-way (a truncated upload).
struct Failing;

#[async_trait::async_trait]
impl ByteSource for Failing {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BlobError> {
        Err(BlobError::Source("cut off".into()))
    }
}

#[tokio::test]
async fn scans_over_unix_and_tcp_sockets() {
    let (Ok(unix), Ok(tcp)) = (
        std::env::var("APOGEE_TEST_CLAMD"),
        std::env::var("APOGEE_TEST_CLAMD_TCP"),
    ) else {
        eprintln!("skipped: APOGEE_TEST_CLAMD is not set (scripts/with-clamd.sh starts clamd)");
        return;
    };
    let scanner = ClamdScanner;
    for address in [unix.as_str(), tcp.as_str()] {
        let clean = b"just some text".repeat(10_000);
        assert_eq!(
            scanner.scan(address, &mut Chunks::of(&clean, 7_000)).await,
            Ok(Verdict::Clean),
            "{address}"
        );
        // The EICAR string split across chunks: clamd sees one stream.
        let found = scanner.scan(address, &mut Chunks::of(&eicar(), 10)).await;
        assert!(
            matches!(&found, Ok(Verdict::Infected(name)) if name.starts_with("Apogee.Test.EICAR")),
            "{address}: {found:?}"
        );
        assert_eq!(
            scanner.scan(address, &mut Chunks::of(b"", 1)).await,
            Ok(Verdict::Clean)
        );
        assert!(scanner.scan(address, &mut Failing).await.is_err());
    }
    // Nobody listening: an error, never "clean".
    let dir = std::env::temp_dir().join(format!("apogee-no-clamd-{}", std::process::id()));
    let gone = format!("unix:{}", dir.display());
    assert!(scanner.scan(&gone, &mut Chunks::of(b"x", 1)).await.is_err());
    assert!(
        scanner
            .scan("nonsense", &mut Chunks::of(b"x", 1))
            .await
            .is_err()
    );
}
