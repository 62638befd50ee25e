//! Matrix federation in the binary (cargo feature `federation`): loads the identity, opens the
//! TLS listener (a self-signed pair in the data directory when none is configured) and gives
//! the client port its `/.well-known/matrix/server`.

use crate::config::FederationConfig;
use anyhow::{Context, Result};
use apogee_core::Core;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What serving federation needs, made before anything is served.
pub struct Listener {
    pub listener: TcpListener,
    pub tls: TlsAcceptor,
    pub app: axum::Router,
    /// Routes for the client port.
    pub well_known: axum::Router,
}

pub async fn prepare(
    core: Arc<Core>,
    config: &FederationConfig,
    data_dir: &Path,
) -> Result<Listener> {
    let (cert, key) = match &config.tls {
        Some(files) => (files.cert.clone(), files.key.clone()),
        None => {
            let host = apogee_federation::parse_server_name(&config.server_name)?
                .host()
                .to_string();
            apogee_federation::tls::self_signed_pair(&data_dir.join("federation"), &host)?
        }
    };
    let tls = crate::listen::tls_acceptor(&cert, &key)?;
    let settings = settings(config);
    let federation = apogee_federation::Federation::start(core, &settings).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen for federation on {}", config.listen))?;
    Ok(Listener {
        listener,
        tls,
        app: federation
            .router()
            .layer(tower_http::trace::TraceLayer::new_for_http()),
        well_known: apogee_federation::server::well_known_router(config.delegate.clone()),
    })
}

/// `apogee admin federation request`: one signed request; prints the status and the body.
pub async fn request(
    core: Arc<Core>,
    config: &FederationConfig,
    destination: &str,
    method: &str,
    target: &str,
    body: Option<&str>,
) -> Result<axum::http::StatusCode> {
    let settings = settings(config);
    let federation = apogee_federation::Federation::start(core, &settings).await?;
    let destination = apogee_federation::parse_server_name(destination)?;
    let method = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("--method {method:?}"))?;
    let body: Option<serde_json::Value> = body
        .map(serde_json::from_str)
        .transpose()
        .context("--body is not JSON")?;
    let answer = federation
        .client
        .request(&destination, method, target, body.as_ref())
        .await?;
    println!("{}", answer.status);
    println!("{}", String::from_utf8_lossy(&answer.body));
    Ok(answer.status)
}

fn settings(config: &FederationConfig) -> apogee_federation::Settings {
    apogee_federation::Settings {
        server_name: config.server_name.clone(),
        resolve: config.resolve.clone(),
        accept_invalid_certs: config.accept_invalid_certs,
        allow_private_addresses: config.allow_private_addresses,
    }
}
