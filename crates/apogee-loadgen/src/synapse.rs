//! Starting a real Synapse (PyPI `matrix-synapse` in a venv, SQLite) as the peer server: a
//! fresh data directory per run, a free loopback port, pinned like the Apogee server.

use crate::server::set_affinity;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// `registration_shared_secret` of every Synapse started here (loopback only).
pub const SHARED_SECRET: &str = "apogee-loadgen-registration";

/// The venv `scripts/with-synapse.sh` installs and caches.
pub fn default_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("APOGEE_SYNAPSE_DIR") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    cache.join("apogee-synapse")
}

/// A running Synapse; killed on drop.
pub struct Synapse {
    venv: PathBuf,
    cpus: Option<Vec<usize>>,
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    pub pid: u32,
}

/// The configuration: client API only (no federation listener), presence off, rate limits out of
/// the way (else the run measures them), and bcrypt at its lowest cost so that registering the
/// load's users does not dominate setup (logins are not measured here). Everything else is
/// Synapse's default, logging at INFO included.
fn config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    let unlimited = "{per_second: 100000, burst_count: 100000}";
    format!(
        "server_name: synapse.bench
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources: [{{names: [client], compress: false}}]
database:
  name: sqlite3
  args: {{database: {d}/homeserver.db}}
media_store_path: {d}/media
signing_key_path: {d}/signing.key
registration_shared_secret: {SHARED_SECRET}
macaroon_secret_key: apogee-loadgen-macaroon
form_secret: apogee-loadgen-form
report_stats: false
enable_metrics: false
trusted_key_servers: []
suppress_key_server_warning: true
presence: {{enabled: false}}
bcrypt_rounds: 4
rc_message: {unlimited}
rc_registration: {unlimited}
rc_room_creation: {unlimited}
rc_joins_per_room: {unlimited}
rc_login:
  address: {unlimited}
  account: {unlimited}
  failed_attempts: {unlimited}
rc_joins:
  local: {unlimited}
  remote: {unlimited}
rc_invites:
  per_room: {unlimited}
  per_user: {unlimited}
  per_issuer: {unlimited}
"
    )
}

/// A port nothing listens on right now (the kernel's choice for an ephemeral bind).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("bind a probe port")?;
    Ok(l.local_addr()?.port())
}

impl Synapse {
    /// Starts Synapse from `venv` on an empty database and waits until its client API answers.
    pub async fn start(venv: &Path, cpus: Option<Vec<usize>>) -> Result<Synapse> {
        let python = venv.join("bin/python");
        if !python.exists() {
            bail!(
                "no Synapse venv at {} (run `bash scripts/with-synapse.sh true` once to install \
                 it, or pass --synapse-venv)",
                venv.display()
            );
        }
        let dir = tempfile::tempdir().context("synapse data dir")?;
        std::fs::create_dir_all(dir.path().join("media"))?;
        // The key signs events nobody outside this loopback server ever verifies (there is no
        // federation listener), so a fixed seed is enough.
        std::fs::write(
            dir.path().join("signing.key"),
            "ed25519 a_bench AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        )?;
        let port = free_port()?;
        std::fs::write(dir.path().join("homeserver.yaml"), config(dir.path(), port))?;
        let (child, pid) = spawn(venv, dir.path(), cpus.clone()).await?;
        let mut s = Synapse {
            venv: venv.to_path_buf(),
            cpus,
            dir,
            port,
            child,
            pid,
        };
        s.wait_ready().await?;
        Ok(s)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn sample(&self) -> Result<crate::proc::Sample> {
        crate::proc::sample(self.pid)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/_matrix/client/versions", self.base_url());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let until = Instant::now() + Duration::from_secs(180);
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "synapse exited ({status}) before serving:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("synapse did not serve within 180 s:\n{}", self.log_tail())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("synapse.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops Synapse and starts a fresh process on the same database and port, so that memory
    /// left over from setup does not count in a measurement.
    pub async fn restart(mut self) -> Result<Synapse> {
        self.kill().await;
        let (child, pid) = spawn(&self.venv, self.dir.path(), self.cpus.clone()).await?;
        self.child = child;
        self.pid = pid;
        self.wait_ready().await?;
        Ok(self)
    }

    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub async fn stop(mut self) {
        self.kill().await;
    }
}

async fn spawn(venv: &Path, dir: &Path, cpus: Option<Vec<usize>>) -> Result<(Child, u32)> {
    // Its log goes to a file: nothing has to drain a pipe, and a failed start can be shown.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("synapse.log"))?;
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-m", "synapse.app.homeserver", "-c"])
        .arg(dir.join("homeserver.yaml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    if let Some(cpus) = cpus {
        // SAFETY: only async-signal-safe work (one syscall) between fork and exec.
        unsafe {
            cmd.pre_exec(move || set_affinity(0, &cpus));
        }
    }
    let child = cmd.spawn().context("spawn synapse")?;
    let pid = child.id().context("synapse pid")?;
    Ok((child, pid))
}
