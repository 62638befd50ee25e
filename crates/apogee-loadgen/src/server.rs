//! Starting the server under test (or the bare reference server) as a child process.

use anyhow::{Context, Result, anyhow};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Credentials of the admin every apogee server is started with.
pub const ADMIN_USER: &str = "loadgen-admin";
pub const ADMIN_PASS: &str = "loadgen-admin-pass";
/// `CREATE_TOKENS_FOR_USERS_SECRET`: lets the generator mint tokens without password hashing.
pub const TOKEN_SECRET: &str = "loadgen-token-secret";

/// Rocket.Chat's DDP rate limiters, switched off so that a benchmark measures the server rather
/// than its limits (1 generator address, a few users, many connections).
pub const DDP_LIMITERS: &[&str] = &[
    "DDP_Rate_Limit_IP_Enabled",
    "DDP_Rate_Limit_User_Enabled",
    "DDP_Rate_Limit_Connection_Enabled",
    "DDP_Rate_Limit_User_By_Method_Enabled",
    "DDP_Rate_Limit_Connection_By_Method_Enabled",
];

/// A running child server; killed on drop.
pub struct Spawned {
    child: Child,
    pub pid: u32,
    /// `host:port` from the server's "address=" log line.
    pub addr: String,
    _dir: Option<tempfile::TempDir>,
}

/// Pins the calling process (the generator) to `cpus`.
pub fn pin_self(cpus: &[usize]) -> Result<()> {
    set_affinity(0, cpus).map_err(|e| anyhow!("sched_setaffinity: {e}"))
}

pub(crate) fn set_affinity(pid: libc::pid_t, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; the CPU_* helpers only touch the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Parses "0,1" or "0" into CPU numbers.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse().context("cpu list"))
        .collect()
}

async fn spawn(
    mut cmd: Command,
    cpus: Option<Vec<usize>>,
    dir: Option<tempfile::TempDir>,
) -> Result<Spawned> {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(cpus) = cpus {
        // SAFETY: only async-signal-safe work (one syscall) between fork and exec.
        unsafe {
            cmd.pre_exec(move || set_affinity(0, &cpus));
        }
    }
    let mut child = cmd.spawn().context("spawn server")?;
    let pid = child.id().context("server pid")?;
    let stderr = child.stderr.take().context("server stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("address=").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
                return Ok::<_, anyhow::Error>(addr);
            }
        }
        Err(anyhow!("server exited before listening"))
    })
    .await
    .context("server did not report listening within 120 s")??;
    // Keep draining so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Spawned {
        child,
        pid,
        addr,
        _dir: dir,
    })
}

/// Starts `apogee serve` on a free port with a fresh SQLite data directory.
pub async fn start_apogee(bin: &Path, cpus: Option<Vec<usize>>) -> Result<Spawned> {
    let dir = tempfile::tempdir().context("temp data dir")?;
    start_apogee_in(bin, cpus, dir).await
}

async fn start_apogee_in(
    bin: &Path,
    cpus: Option<Vec<usize>>,
    dir: tempfile::TempDir,
) -> Result<Spawned> {
    start_apogee_with(bin, cpus, dir, &[]).await
}

/// Starts `apogee serve` on a free port with `dir` as its data directory and `extra` arguments
/// (e.g. `--database-url postgres://…`).
pub async fn start_apogee_with(
    bin: &Path,
    cpus: Option<Vec<usize>>,
    dir: tempfile::TempDir,
    extra: &[String],
) -> Result<Spawned> {
    start_apogee_full(bin, cpus, dir, extra, &[]).await
}

/// [`start_apogee_with`] with extra environment variables (e.g. `OVERWRITE_SETTING_*`).
pub async fn start_apogee_env(
    bin: &Path,
    cpus: Option<Vec<usize>>,
    dir: tempfile::TempDir,
    env: &[(String, String)],
) -> Result<Spawned> {
    start_apogee_full(bin, cpus, dir, &[], env).await
}

async fn start_apogee_full(
    bin: &Path,
    cpus: Option<Vec<usize>>,
    dir: tempfile::TempDir,
    extra: &[String],
    env: &[(String, String)],
) -> Result<Spawned> {
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .env("ADMIN_USERNAME", ADMIN_USER)
        .env("ADMIN_PASS", ADMIN_PASS)
        .env("ADMIN_EMAIL", "loadgen-admin@example.invalid")
        .env("OVERWRITE_SETTING_API_Enable_Rate_Limiter", "false")
        .envs(
            DDP_LIMITERS
                .iter()
                .map(|id| (format!("OVERWRITE_SETTING_{id}"), "false")),
        )
        .env("CREATE_TOKENS_FOR_USERS", "true")
        .env("CREATE_TOKENS_FOR_USERS_SECRET", TOKEN_SECRET)
        .envs(env.iter().map(|(k, v)| (k, v)));
    spawn(cmd, cpus, Some(dir))
        .await
        .with_context(|| format!("start {}", bin.display()))
}

/// Starts this binary's hidden `bare-server` subcommand (the broadcast reference).
pub async fn start_bare(cpus: Option<Vec<usize>>) -> Result<Spawned> {
    let me = std::env::current_exe().context("current exe")?;
    let mut cmd = Command::new(me);
    cmd.args(["bare-server", "--listen", "127.0.0.1:0"]);
    spawn(cmd, cpus, None).await
}

impl Spawned {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn sample(&self) -> Result<crate::proc::Sample> {
        crate::proc::sample(self.pid)
    }

    /// Stops the server and starts a fresh process on the same data directory, so that memory
    /// left over from setup (password hashing, caches) does not count in a measurement.
    pub async fn restart(mut self, bin: &Path, cpus: Option<Vec<usize>>) -> Result<Spawned> {
        let dir = self._dir.take().context("only apogee servers restart")?;
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        start_apogee_in(bin, cpus, dir).await
    }

    /// Kills the server and waits for it, keeping its data directory.
    pub async fn stop_keep_dir(mut self) -> Result<tempfile::TempDir> {
        let dir = self
            ._dir
            .take()
            .context("only apogee servers have a data dir")?;
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        Ok(dir)
    }

    /// Kills the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
