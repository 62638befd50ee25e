//! TLS for federation: the client's trust (system CA roots, or anything for tests on loopback)
//! and the self-signed certificate a server without one gets in its data directory.

use crate::FedError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

/// The client side: certificates checked against the system's CA roots, or not at all when
/// `accept_invalid` (development and tests only: a self-signed peer on loopback).
pub fn client_config(accept_invalid: bool) -> Result<rustls::ClientConfig, FedError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FedError::Internal(format!("TLS: {e}")))?;
    let mut config = if accept_invalid {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "a system CA certificate could not be read");
        }
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!("no system CA certificates: federation peers cannot be verified");
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any certificate, still checking that the handshake is signed by its key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `<dir>/federation-tls.crt` and `.key`, made self-signed for `host` (and localhost) when
/// absent. Peers that check certificates will refuse it: this is for development, tests and
/// peers configured to skip the check (Synapse's `federation_verify_certificates: false`).
pub fn self_signed_pair(dir: &Path, host: &str) -> Result<(PathBuf, PathBuf), FedError> {
    let cert = dir.join("federation-tls.crt");
    let key = dir.join("federation-tls.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec![
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    ];
    if names[0] != "localhost" {
        names.push("localhost".into());
    }
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| FedError::Internal(format!("self-signed certificate: {e}")))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| FedError::Internal(format!("{}: {e}", dir.display())))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem())
        .map_err(|e| FedError::Internal(format!("{}: {e}", cert.display())))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed federation certificate");
    Ok((cert, key))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FedError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| FedError::Internal(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| FedError::Internal(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn self_signed_pair_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = super::self_signed_pair(dir.path(), "ours.test").unwrap();
        let first = std::fs::read(&cert).unwrap();
        assert!(String::from_utf8_lossy(&std::fs::read(&key).unwrap()).contains("PRIVATE KEY"));
        super::self_signed_pair(dir.path(), "ours.test").unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "kept, not regenerated"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is private");
        }
    }
}
