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
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
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
    /// Ship every audit entry to a SIEM as RFC 5424 syslog: udp://host:port or tcp://host:port.
    #[arg(long, env = "APOGEE_AUDIT_SYSLOG")]
    pub audit_syslog: Option<String>,
    /// TOML configuration file with the same keys (listen, data_dir, database_url, nats_url,
    /// root_url, s3_bucket, s3_endpoint, s3_region, audit_syslog).
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
    audit_syslog: Option<String>,
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
    /// Where audit entries are shipped, if anywhere.
    pub audit_syslog: Option<crate::siem::Sink>,
    pub options: Options,
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
        let audit_syslog = nonempty(args.audit_syslog.clone().or(file.audit_syslog))
            .map(|url| crate::siem::Sink::parse(&url))
            .transpose()?;
        Ok(Config {
            listen,
            data_dir,
            database,
            nats_url,
            s3,
            audit_syslog,
            options: options_from_env(root_url),
        })
    }
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
}
