//! `apogee`: the composition root. Reads configuration, opens the chosen store, starts core and
//! serves Rocket.Chat's API until SIGINT/SIGTERM.

mod config;
#[cfg(feature = "federation")]
mod federation;
mod listen;
mod siem;

use anyhow::{Context, Result};
use apogee_core::Core;
use apogee_core::accounts::{NewUser, UserPatch};
use apogee_core::store::Store;
use clap::Parser;
use config::{
    AdminCommand, AuditCommand, Cli, Command, Config, Database, FederationCommand, StorageArgs,
    redact,
};
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("APOGEE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(&args).await,
        Command::Admin(cmd) => admin(cmd).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apogee: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open_core(config: &Config) -> Result<Arc<Core>> {
    ensure_writable(&config.data_dir)?;
    let store: Arc<dyn Store> = match &config.database {
        Database::Sqlite(path) => {
            let store = apogee_store_sqlite::open(path)
                .await
                .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
            Arc::new(store)
        }
        Database::Postgres(url) => {
            let store = apogee_store_postgres::open(url)
                .await
                .with_context(|| format!("cannot reach PostgreSQL at {}", redact(url)))?;
            Arc::new(store)
        }
    };
    let mut options = config.options.clone();
    options.blobs = Some(open_blobs(config).await?);
    options.mailer = Some(Arc::new(apogee_mail::SmtpMailer));
    options.scanner = Some(Arc::new(apogee_clamd::ClamdScanner));
    options.kms = Some(open_kms(config)?);
    options.http = Some(Arc::new(
        apogee_http::OutboundHttp::from_env().context("outbound HTTP client")?,
    ));
    let bus: Arc<dyn apogee_core::events::Bus> = match &config.nats_url {
        Some(url) => Arc::new(
            apogee_bus::NatsBus::connect(url)
                .await
                .with_context(|| format!("cannot reach NATS at {}", redact(url)))?,
        ),
        None => Arc::new(apogee_core::events::LocalBus::default()),
    };
    Core::start_with_bus(store, bus, options)
        .await
        .map_err(|e| anyhow::anyhow!("start-up failed: {e}"))
}

/// What seals bot keys: the file KMS (APOGEE_KMS_KEY, else the key file) or a PKCS#11 token.
fn open_kms(config: &Config) -> Result<Arc<dyn apogee_core::kms::Kms>> {
    match &config.kms {
        crate::config::KmsConfig::File { key_file } => {
            let kms = match std::env::var("APOGEE_KMS_KEY") {
                Ok(key) if !key.is_empty() => apogee_kms::FileKms::from_base64(&key)
                    .map_err(|e| anyhow::anyhow!("APOGEE_KMS_KEY: {e}"))?,
                _ => apogee_kms::FileKms::load_or_create(key_file)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            Ok(Arc::new(kms))
        }
        #[cfg(feature = "pkcs11")]
        crate::config::KmsConfig::Pkcs11 { module, token } => {
            let pin = std::env::var("APOGEE_PKCS11_PIN")
                .context("--kms pkcs11 needs the token PIN in APOGEE_PKCS11_PIN")?;
            let kms = apogee_kms::Pkcs11Kms::open(&apogee_kms::Pkcs11Config {
                module: module.clone(),
                token: token.clone(),
                pin,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(Arc::new(kms))
        }
        #[cfg(not(feature = "pkcs11"))]
        crate::config::KmsConfig::Pkcs11 { .. } => {
            anyhow::bail!("--kms pkcs11 needs a build with the `pkcs11` feature")
        }
    }
}

/// Upload storage: the S3 bucket when one is configured, else `<data-dir>/uploads`.
async fn open_blobs(config: &Config) -> Result<Arc<dyn apogee_core::blobs::BlobStore>> {
    let Some(s3) = &config.s3 else {
        let fs = apogee_blob::FsBlobStore::open(config.data_dir.join("uploads"))
            .await
            .map_err(|e| anyhow::anyhow!("upload storage under the data directory: {e}"))?;
        return Ok(Arc::new(fs));
    };
    #[cfg(feature = "s3")]
    {
        let store = apogee_blob::S3BlobStore::open(s3)
            .await
            .map_err(|e| anyhow::anyhow!("upload storage in S3 bucket {:?}: {e}", s3.bucket))?;
        Ok(Arc::new(store))
    }
    #[cfg(not(feature = "s3"))]
    anyhow::bail!(
        "--s3-bucket {:?}: this apogee was built without S3 support (cargo feature `s3`)",
        s3.bucket
    )
}

/// Fails early, with a clear message, when the data directory cannot be created or written.
fn ensure_writable(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("data directory {} cannot be created", dir.display()))?;
    let probe = dir.join(".apogee-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("data directory {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

async fn serve(args: &StorageArgs) -> Result<()> {
    let config = Config::resolve(args)?;
    // Certificate problems fail the start before anything else is opened.
    let tls = match &config.tls {
        Some(files) => Some(listen::tls_acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let core = open_core(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        scheme = listen::scheme(tls.is_some()),
        "apogee is listening"
    );
    if let Some(sink) = config.audit_syslog.clone() {
        tracing::info!(?sink, "shipping the audit log");
        tokio::spawn(siem::ship(core.clone(), sink));
    }
    let http = apogee_rc::HttpOptions {
        hsts: tls.is_some(),
        forwarded_count: config.forwarded_count,
        web_client: Some(apogee_rc::web_client::WebClient {
            files: apogee_web::FILES,
        }),
    };
    let app = apogee_rc::router_with(core.clone(), http);
    let (app, federation_serving) = with_federation(&core, &config, app).await?;
    let app = app.layer(tower_http::trace::TraceLayer::new_for_http());
    listen::serve(listener, app, tls, shutdown_signal()).await?;
    if let Some(serving) = federation_serving {
        serving.await??;
    }
    tracing::info!("apogee stopped");
    Ok(())
}

type Serving = tokio::task::JoinHandle<Result<()>>;

/// Starts the federation listener when a server name is configured, and adds
/// `/.well-known/matrix/server` to the client port's routes.
#[cfg(feature = "federation")]
async fn with_federation(
    core: &Arc<Core>,
    config: &Config,
    app: axum::Router,
) -> Result<(axum::Router, Option<Serving>)> {
    let Some(settings) = &config.federation else {
        return Ok((app, None));
    };
    let fed = federation::prepare(core.clone(), settings, &config.data_dir).await?;
    tracing::info!(address = %fed.listener.local_addr()?, scheme = "https", "federation is listening");
    let serving = tokio::spawn(listen::serve(
        fed.listener,
        fed.app,
        Some(fed.tls),
        shutdown_signal(),
    ));
    Ok((fed.well_known.merge(app), Some(serving)))
}

/// Without the feature there is nothing to start; a configured server name is an error.
#[cfg(not(feature = "federation"))]
async fn with_federation(
    _core: &Arc<Core>,
    config: &Config,
    app: axum::Router,
) -> Result<(axum::Router, Option<Serving>)> {
    if let Some(fed) = &config.federation {
        anyhow::bail!(
            "--server-name {:?}: this apogee was built without federation (cargo feature `federation`)",
            fed.server_name
        );
    }
    Ok((app, None))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn admin(cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::CreateUser {
            storage,
            username,
            password,
            email,
            admin,
        } => {
            let core = open_core(&Config::resolve(&storage)?).await?;
            let roles = if admin {
                vec!["admin".into(), "user".into()]
            } else {
                vec!["user".into()]
            };
            let new = NewUser {
                username: username.clone(),
                email,
                password: Some(password),
                name: Some(username),
                roles: Some(roles),
                verified: true,
                join_default_channels: true,
                ..NewUser::default()
            };
            let user = core
                .admin_create_user(new)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created user {} ({})", user.username, user.id);
        }
        AdminCommand::ResetPassword {
            storage,
            username,
            password,
        } => {
            let core = open_core(&Config::resolve(&storage)?).await?;
            let user = core
                .find_user(None, Some(&username))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let patch = UserPatch {
                password: Some(password),
                ..Default::default()
            };
            core.admin_update_user(&user.id, patch)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("password reset for {username}");
        }
        AdminCommand::ResetTwoFactor { storage, username } => {
            let core = open_core(&Config::resolve(&storage)?).await?;
            let user = core
                .admin_reset_two_factor(&username)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("two-factor authentication reset for {}", user.username);
        }
        AdminCommand::Audit(cmd) => audit(cmd).await?,
        AdminCommand::Federation(cmd) => federation_tool(cmd).await?,
    }
    Ok(())
}

#[cfg(feature = "federation")]
async fn federation_tool(cmd: FederationCommand) -> Result<()> {
    match cmd {
        FederationCommand::Request {
            storage,
            destination,
            target,
            method,
            body,
        } => {
            let config = Config::resolve(&storage)?;
            let Some(settings) = &config.federation else {
                anyhow::bail!("--server-name is needed to sign federation requests");
            };
            let core = open_core(&config).await?;
            let status = federation::request(
                core,
                settings,
                &destination,
                &method,
                &target,
                body.as_deref(),
            )
            .await?;
            if !status.is_success() {
                anyhow::bail!("{destination} answered {status}");
            }
        }
    }
    Ok(())
}

#[cfg(not(feature = "federation"))]
async fn federation_tool(_cmd: FederationCommand) -> Result<()> {
    anyhow::bail!("this apogee was built without federation (cargo feature `federation`)")
}

async fn audit(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Verify { storage } => {
            let core = open_core(&Config::resolve(&storage)?).await?;
            match core
                .verify_audit()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Ok(n) => println!("audit log intact: {n} entries, chain and head agree"),
                Err(broken) => anyhow::bail!("audit log tampered with: {broken}"),
            }
        }
        AuditCommand::Export {
            storage,
            format,
            after,
        } => {
            let line: fn(&apogee_core::store::AuditRecord, &str) -> String = match format.as_str() {
                "jsonl" => |r, _| siem::json_line(r),
                "syslog" => siem::syslog_line,
                other => anyhow::bail!("--format must be jsonl or syslog, got {other:?}"),
            };
            let core = open_core(&Config::resolve(&storage)?).await?;
            let host = siem::hostname();
            let mut after = after;
            loop {
                let page = core
                    .audit_after(after, 1000)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in &page {
                    println!("{}", line(r, &host));
                }
            }
        }
    }
    Ok(())
}
