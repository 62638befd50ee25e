//! Where an S3 bucket is and how to sign requests: plain configuration, available whether or
//! not the binary is built with the S3 adapter (feature `s3`), so the server can read and check
//! it either way.

/// Where the bucket is and how to sign requests. `Debug` never shows the secret.
#[derive(Clone, Default)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible service; default: AWS for `region`.
    pub endpoint: Option<String>,
    /// Default `us-east-1`.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint.as_deref().map(hide_userinfo))
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// `scheme://user:pass@host` → `scheme://***@host`, for printing.
fn hide_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}
