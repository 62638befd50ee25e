//! Configuration: flags > `APOGEE_*` environment > TOML file > defaults, plus Rocket.Chat's own
//! deployment variables (`PORT`, `ROOT_URL`, `ADMIN_*`, `OVERWRITE_SETTING_*`, …).

use anyhow::{Context, Result, bail};
use apogee_core::{InitialAdmin, Options};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "apogee",
    version,
    about = "A fast, light, Rocket.Chat-compatible team-chat server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(StorageArgs),
    /// Operator tasks on the same database the server uses.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a user (admin with --admin).
    CreateUser {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password for a user.
    ResetPassword {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
    },
    /// Turn off a locked-out user's two-factor authentication (TOTP and e-mail codes) and end
    /// their sessions.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long)]
        username: String,
    },
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Matrix federation tools (build feature `federation`).
    #[command(subcommand)]
    Federation(FederationCommand),
}

#[derive(Subcommand, Debug)]
pub enum FederationCommand {
    /// Send one request signed with this server's key (X-Matrix) to another server and print
    /// the answer: a check that federation with it works.
    Request {
        #[command(flatten)]
        storage: StorageArgs,
        /// The server to ask, e.g. matrix.org or localhost:8448.
        destination: String,
        /// Path and query as they go on the wire, e.g.
        /// /_matrix/federation/v1/query/profile?user_id=%40alice%3Aexample.org
        target: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A JSON body.
        #[arg(long)]
        body: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain; exits non-zero naming the first bad entry.
    Verify {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Print entries, oldest first, as JSON lines or RFC 5424 syslog lines.
    Export {
        #[command(flatten)]
        storage: StorageArgs,
        /// `jsonl` or `syslog`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only entries after this number.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// Address to listen on [default: 127.0.0.1:3000; Rocket.Chat's PORT sets the port].
    #[arg(long, env = "APOGEE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded database and files [default: ./data].
    #[arg(long, env = "APOGEE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL; default: SQLite in the data directory.
    #[arg(long, env = "APOGEE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// `nats://…` to share realtime events with other nodes; default: this node only.
    #[arg(long, env = "APOGEE_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// Keep uploads in this S3 bucket instead of the data directory (build feature `s3`). The
    /// keys come from APOGEE_S3_ACCESS_KEY_ID / APOGEE_S3_SECRET_ACCESS_KEY only.
    #[arg(long, env = "APOGEE_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// `http(s)://host:port` of an S3-compatible service [default: AWS].
    #[arg(long, env = "APOGEE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region [default: us-east-1].
    #[arg(long, env = "APOGEE_S3_REGION")]
    pub s3_region: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); answers then carry HSTS.
    #[arg(long, env = "APOGEE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "APOGEE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Ship every audit entry to a SIEM as RFC 5424 syslog: udp://host:port or tcp://host:port.
    #[arg(long, env = "APOGEE_AUDIT_SYSLOG")]
    pub audit_syslog: Option<String>,
    /// What seals the private keys of encrypted bots: `file` (a key-encryption key from
    /// APOGEE_KMS_KEY, base64 of 32 bytes, or --kms-key-file) or `pkcs11` (build feature
    /// `pkcs11`; --pkcs11-module, --pkcs11-token, PIN from APOGEE_PKCS11_PIN only) [default: file].
    #[arg(long, env = "APOGEE_KMS")]
    pub kms: Option<String>,
    /// The file KMS's key file, created (mode 0600) when missing [default: <data-dir>/e2e-kms.key].
    #[arg(long, env = "APOGEE_KMS_KEY_FILE")]
    pub kms_key_file: Option<PathBuf>,
    /// The PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, env = "APOGEE_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// The label of the PKCS#11 token holding the keys.
    #[arg(long, env = "APOGEE_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// Federate over Matrix as this server name (`host` or `host:port`; build feature
    /// `federation`). Users here are `@username:<server-name>`.
    #[arg(long, env = "APOGEE_SERVER_NAME")]
    pub server_name: Option<String>,
    /// Address of the federation listener (TLS) [default: 127.0.0.1:8448].
    #[arg(long, env = "APOGEE_FEDERATION_LISTEN")]
    pub federation_listen: Option<SocketAddr>,
    /// PEM certificate chain of the federation listener (with --federation-tls-key); without
    /// both, a self-signed pair is made in the data directory.
    #[arg(long, env = "APOGEE_FEDERATION_TLS_CERT")]
    pub federation_tls_cert: Option<PathBuf>,
    /// The PEM private key of --federation-tls-cert.
    #[arg(long, env = "APOGEE_FEDERATION_TLS_KEY")]
    pub federation_tls_key: Option<PathBuf>,
    /// Reach server NAME at URL (`http://host:port` or `https://host[:port]`) instead of
    /// resolving it; repeatable (tests on loopback, private peers).
    #[arg(
        long = "federation-resolve",
        value_name = "NAME=URL",
        env = "APOGEE_FEDERATION_RESOLVE",
        value_delimiter = ','
    )]
    pub federation_resolve: Vec<String>,
    /// Accept any TLS certificate from federation peers (development and tests only).
    #[arg(long, env = "APOGEE_FEDERATION_ACCEPT_INVALID_CERTS")]
    pub federation_accept_invalid_certs: bool,
    /// Let resolution lead to loopback and private addresses (refused by default, so a remote
    /// server name cannot point us at internal services).
    #[arg(long, env = "APOGEE_FEDERATION_ALLOW_PRIVATE_ADDRESSES")]
    pub federation_allow_private_addresses: bool,
    /// What `/.well-known/matrix/server` on the client port names as our federation address
    /// [default: the server name when it has a port, else <server-name>:<federation port>].
    #[arg(long, env = "APOGEE_FEDERATION_DELEGATE")]
    pub federation_delegate: Option<String>,
    /// TOML configuration file with the same keys (listen, data_dir, database_url, nats_url,
    /// root_url, s3_bucket, s3_endpoint, s3_region, tls_cert, tls_key, audit_syslog, kms,
    /// kms_key_file, pkcs11_module, pkcs11_token, server_name, federation_listen, federation_tls_cert, federation_tls_key,
    /// federation_resolve (a list of "NAME=URL"), federation_accept_invalid_certs,
    /// federation_allow_private_addresses, federation_delegate).
    #[arg(long, env = "APOGEE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    nats_url: Option<String>,
    root_url: Option<String>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    audit_syslog: Option<String>,
    kms: Option<String>,
    kms_key_file: Option<PathBuf>,
    pkcs11_module: Option<PathBuf>,
    pkcs11_token: Option<String>,
    server_name: Option<String>,
    federation_listen: Option<SocketAddr>,
    federation_tls_cert: Option<PathBuf>,
    federation_tls_key: Option<PathBuf>,
    federation_resolve: Option<Vec<String>>,
    federation_accept_invalid_certs: Option<bool>,
    federation_allow_private_addresses: Option<bool>,
    federation_delegate: Option<String>,
}

/// What seals bot keys (the secrets themselves come from the environment when opened).
#[derive(Debug, Clone, PartialEq)]
pub enum KmsConfig {
    File { key_file: PathBuf },
    Pkcs11 { module: PathBuf, token: String },
}

/// Matrix federation, when a server name is configured. Read and checked without the cargo
/// feature too, so a misconfiguration fails the same way either way.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "federation"), allow(dead_code))]
pub struct FederationConfig {
    pub server_name: String,
    pub listen: SocketAddr,
    /// `None`: a self-signed pair in the data directory.
    pub tls: Option<TlsFiles>,
    /// `(NAME, URL)` resolution overrides.
    pub resolve: Vec<(String, String)>,
    pub accept_invalid_certs: bool,
    pub allow_private_addresses: bool,
    /// The `m.server` of `/.well-known/matrix/server`.
    pub delegate: String,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    /// The NATS server of a multi-node deployment; `None`: the in-process bus.
    pub nats_url: Option<String>,
    /// Where uploads go: `None` is `<data_dir>/uploads`.
    pub s3: Option<apogee_blob::S3Config>,
    /// HTTPS instead of HTTP: the certificate chain and key files (PEM).
    pub tls: Option<TlsFiles>,
    /// Rocket.Chat's `HTTP_FORWARDED_COUNT`: proxies in front whose `X-Forwarded-For` entries
    /// are trusted to name the client.
    pub forwarded_count: usize,
    /// Where audit entries are shipped, if anywhere.
    pub audit_syslog: Option<crate::siem::Sink>,
    pub kms: KmsConfig,
    /// Matrix federation: `None` when no server name is configured.
    pub federation: Option<FederationConfig>,
    pub options: Options,
}

/// Where `--tls-cert` / `--tls-key` point.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Resolves flags and env (already merged by clap), the config file and the defaults.
    pub fn resolve(args: &StorageArgs) -> Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let federation = federation_config(args, &file)?;
        let port = match std::env::var("PORT") {
            Ok(p) => Some(
                p.parse::<u16>()
                    .with_context(|| format!("PORT is not a port number: {p}"))?,
            ),
            Err(_) => None,
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(3000))));
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database = match args.database_url.clone().or(file.database_url) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url)
            }
            Some(url) if url.starts_with("sqlite:") => Database::Sqlite(PathBuf::from(
                url.trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:"),
            )),
            Some(other) => bail!(
                "--database-url must be postgres://… or sqlite:…, got {}",
                redact(&other)
            ),
            None => Database::Sqlite(data_dir.join("apogee.db")),
        };
        let root_url = std::env::var("ROOT_URL").ok().or(file.root_url);
        let nats_url = args
            .nats_url
            .clone()
            .or(file.nats_url)
            .filter(|u| !u.is_empty());
        let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
        let env = |name: &str| nonempty(std::env::var(name).ok());
        let s3 = nonempty(args.s3_bucket.clone().or(file.s3_bucket)).map(|bucket| {
            apogee_blob::S3Config {
                bucket,
                endpoint: nonempty(args.s3_endpoint.clone().or(file.s3_endpoint)),
                region: nonempty(args.s3_region.clone().or(file.s3_region)),
                access_key_id: env("APOGEE_S3_ACCESS_KEY_ID"),
                secret_access_key: env("APOGEE_S3_SECRET_ACCESS_KEY"),
            }
        });
        if let Some(endpoint) = s3.as_ref().and_then(|s3| s3.endpoint.as_deref())
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            bail!(
                "--s3-endpoint must be http://… or https://…, got {}",
                redact(endpoint)
            );
        }
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together: give both or neither"),
        };
        let forwarded_count = match std::env::var("HTTP_FORWARDED_COUNT") {
            Ok(n) if !n.trim().is_empty() => n
                .trim()
                .parse::<usize>()
                .with_context(|| format!("HTTP_FORWARDED_COUNT is not a number of proxies: {n}"))?,
            _ => 0,
        };
        let audit_syslog = nonempty(args.audit_syslog.clone().or(file.audit_syslog))
            .map(|url| crate::siem::Sink::parse(&url))
            .transpose()?;
        let kms = match nonempty(args.kms.clone().or(file.kms)).as_deref() {
            None | Some("file") => KmsConfig::File {
                key_file: args
                    .kms_key_file
                    .clone()
                    .or(file.kms_key_file)
                    .unwrap_or_else(|| data_dir.join("e2e-kms.key")),
            },
            Some("pkcs11") => match (
                args.pkcs11_module.clone().or(file.pkcs11_module),
                nonempty(args.pkcs11_token.clone().or(file.pkcs11_token)),
            ) {
                (Some(module), Some(token)) => KmsConfig::Pkcs11 { module, token },
                _ => bail!("--kms pkcs11 needs --pkcs11-module and --pkcs11-token"),
            },
            Some(other) => bail!("--kms must be file or pkcs11, got {other}"),
        };
        Ok(Config {
            listen,
            data_dir,
            database,
            nats_url,
            s3,
            tls,
            forwarded_count,
            audit_syslog,
            kms,
            federation,
            options: options_from_env(root_url),
        })
    }
}

/// The federation part of the configuration; checked here so a bad value fails the start.
fn federation_config(args: &StorageArgs, file: &FileConfig) -> Result<Option<FederationConfig>> {
    let server_name = args
        .server_name
        .clone()
        .or_else(|| file.server_name.clone())
        .filter(|n| !n.is_empty());
    let listen = args.federation_listen.or(file.federation_listen);
    let Some(server_name) = server_name else {
        if listen.is_some() || !args.federation_resolve.is_empty() {
            bail!("--federation-listen and --federation-resolve need --server-name");
        }
        return Ok(None);
    };
    if server_name.contains(['/', ' ', '@', '#', '!']) || server_name.starts_with(':') {
        bail!("--server-name must be host or host:port, got {server_name:?}");
    }
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8448)));
    let tls = match (
        args.federation_tls_cert
            .clone()
            .or_else(|| file.federation_tls_cert.clone()),
        args.federation_tls_key
            .clone()
            .or_else(|| file.federation_tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => bail!(
            "--federation-tls-cert and --federation-tls-key go together: give both or neither"
        ),
    };
    let entries = if args.federation_resolve.is_empty() {
        file.federation_resolve.clone().unwrap_or_default()
    } else {
        args.federation_resolve.clone()
    };
    let mut resolve = Vec::new();
    for entry in entries.iter().filter(|e| !e.trim().is_empty()) {
        let Some((name, url)) = entry.trim().split_once('=') else {
            bail!("--federation-resolve takes NAME=URL, got {entry:?}");
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!(
                "--federation-resolve {name}: the URL must be http://… or https://…, got {url:?}"
            );
        }
        resolve.push((name.to_string(), url.to_string()));
    }
    let has_port = server_name
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.ends_with(':') && port.parse::<u16>().is_ok());
    let delegate = args
        .federation_delegate
        .clone()
        .or_else(|| file.federation_delegate.clone())
        .unwrap_or_else(|| {
            if has_port {
                server_name.clone()
            } else {
                format!("{server_name}:{}", listen.port())
            }
        });
    Ok(Some(FederationConfig {
        server_name,
        listen,
        tls,
        resolve,
        accept_invalid_certs: args.federation_accept_invalid_certs
            || file.federation_accept_invalid_certs.unwrap_or(false),
        allow_private_addresses: args.federation_allow_private_addresses
            || file.federation_allow_private_addresses.unwrap_or(false),
        delegate,
    }))
}

/// Hides credentials in a URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn options_from_env(root_url: Option<String>) -> Options {
    let setting_overrides = std::env::vars()
        .filter_map(|(k, v)| {
            k.strip_prefix("OVERWRITE_SETTING_")
                .map(|id| (id.to_string(), v))
        })
        .collect();
    let initial_admin = match (std::env::var("ADMIN_USERNAME"), std::env::var("ADMIN_PASS")) {
        (Ok(username), Ok(password)) if !username.is_empty() && !password.is_empty() => {
            Some(InitialAdmin {
                username,
                password,
                email: std::env::var("ADMIN_EMAIL").ok(),
            })
        }
        _ => None,
    };
    let tokens_enabled = std::env::var("CREATE_TOKENS_FOR_USERS").is_ok_and(|v| v == "true");
    let create_tokens_secret = std::env::var("CREATE_TOKENS_FOR_USERS_SECRET")
        .ok()
        .filter(|s| tokens_enabled && !s.is_empty());
    Options {
        setting_overrides,
        initial_admin,
        root_url,
        create_tokens_secret,
        ..Options::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_settings_from_flags_and_file() {
        assert!(
            Config::resolve(&StorageArgs::default())
                .unwrap()
                .federation
                .is_none()
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apogee.toml");
        std::fs::write(
            &file,
            "server_name = \"chat.example.org\"\nfederation_listen = \"0.0.0.0:8449\"\n\
             federation_resolve = [\"peer.test=http://127.0.0.1:8008\"]\n\
             federation_accept_invalid_certs = true\n",
        )
        .unwrap();
        let args = StorageArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let fed = Config::resolve(&args)
            .unwrap()
            .federation
            .expect("federation");
        assert_eq!(fed.server_name, "chat.example.org");
        assert_eq!(fed.listen.port(), 8449);
        assert_eq!(fed.delegate, "chat.example.org:8449");
        assert!(fed.accept_invalid_certs && !fed.allow_private_addresses);
        assert!(fed.tls.is_none());
        assert_eq!(
            fed.resolve,
            vec![("peer.test".to_string(), "http://127.0.0.1:8008".to_string())]
        );
        // Flags win, and a server name with a port is its own delegation.
        let args = StorageArgs {
            config: Some(file),
            server_name: Some("localhost:8448".into()),
            federation_resolve: vec![
                "a.test=https://127.0.0.1:9".into(),
                "b.test=http://h:1".into(),
            ],
            ..Default::default()
        };
        let fed = Config::resolve(&args).unwrap().federation.unwrap();
        assert_eq!(fed.delegate, "localhost:8448");
        assert_eq!(fed.resolve.len(), 2);
        for bad in [
            StorageArgs {
                federation_listen: Some("127.0.0.1:1".parse().unwrap()),
                ..Default::default()
            },
            StorageArgs {
                server_name: Some("x.test".into()),
                federation_resolve: vec!["no-url".into()],
                ..Default::default()
            },
            StorageArgs {
                server_name: Some("x.test".into()),
                federation_resolve: vec!["a=ftp://h".into()],
                ..Default::default()
            },
            StorageArgs {
                server_name: Some("x.test".into()),
                federation_tls_cert: Some("/c.pem".into()),
                ..Default::default()
            },
            StorageArgs {
                server_name: Some("bad/name".into()),
                ..Default::default()
            },
        ] {
            assert!(Config::resolve(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact("postgres://u:secret@host/db"),
            "postgres://***@host/db"
        );
        assert_eq!(redact("sqlite:x.db"), "sqlite:x.db");
    }

    #[test]
    fn flags_win_over_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apogee.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:4000\"\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let args = StorageArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.port(), 4000);
        assert!(matches!(c.database, Database::Sqlite(ref p) if p.ends_with("apogee.db")));
        let args = StorageArgs {
            config: Some(file),
            listen: Some("127.0.0.1:5000".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(Config::resolve(&args).unwrap().listen.port(), 5000);
        assert!(Config::resolve(&args).unwrap().s3.is_none());
        let bad = StorageArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert!(Config::resolve(&bad).is_err());
    }

    #[test]
    fn s3_settings_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apogee.toml");
        std::fs::write(&file, "s3_bucket = \"b1\"\ns3_region = \"eu-west-1\"\n").unwrap();
        let args = StorageArgs {
            config: Some(file.clone()),
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            ..Default::default()
        };
        let s3 = Config::resolve(&args).unwrap().s3.expect("s3");
        assert_eq!(s3.bucket, "b1");
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let args = StorageArgs {
            config: Some(file),
            s3_bucket: Some("b2".into()),
            s3_endpoint: Some("ftp://x".into()),
            ..Default::default()
        };
        let err = Config::resolve(&args).unwrap_err().to_string();
        assert!(err.contains("--s3-endpoint"), "{err}");
        let shown = format!(
            "{:?}",
            apogee_blob::S3Config {
                secret_access_key: Some("hunter2".into()),
                access_key_id: Some("AKIA".into()),
                ..Default::default()
            }
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("AKIA"),
            "{shown}"
        );
    }

    #[test]
    fn tls_files_from_flags_or_file_and_only_in_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apogee.toml");
        std::fs::write(
            &file,
            "tls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\n",
        )
        .unwrap();
        let args = StorageArgs {
            config: Some(file.clone()),
            tls_key: Some("/flag/k.pem".into()),
            ..Default::default()
        };
        let tls = Config::resolve(&args).unwrap().tls.expect("tls");
        assert_eq!(tls.cert, PathBuf::from("/etc/c.pem"));
        assert_eq!(
            tls.key,
            PathBuf::from("/flag/k.pem"),
            "a flag wins over the file"
        );
        let half = StorageArgs {
            tls_cert: Some("/c.pem".into()),
            ..Default::default()
        };
        let err = Config::resolve(&half).unwrap_err().to_string();
        assert!(err.contains("--tls-key"), "{err}");
        assert!(
            Config::resolve(&StorageArgs::default())
                .unwrap()
                .tls
                .is_none()
        );
    }
}
