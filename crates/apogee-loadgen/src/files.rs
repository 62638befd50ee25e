//! Large files: one upload (`rooms.media`, multipart) and one download (`/file-upload/…`) of
//! a file of N MiB through a fresh server, both streamed by the generator as well (the body is
//! made while it is sent, the download checked while it arrives), while the server's RSS is
//! sampled every 20 ms. Shows whether server memory stays flat whatever the file size.

use crate::proc;
use crate::rest::{Rest, Session};
use crate::scenario::{Env, load_note, round};
use crate::server::{self, ADMIN_PASS, ADMIN_USER};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct FilesArgs {
    /// File size in MiB.
    pub mib: u64,
}

const MIB: u64 = 1 << 20;
/// The file is this block repeated, each copy stamped with its index in its first 8 bytes (so a
/// misplaced block is noticed) — cheap to make and to check, not compressible by accident.
const BLOCK: usize = 1 << 20;
/// The generator hands the body to the HTTP client in pieces of this size.
const PIECE: usize = 256 * 1024;

fn base_block() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The bytes of block `index`.
fn block(base: &[u8], index: u64) -> Vec<u8> {
    let mut b = base.to_vec();
    b[..8].copy_from_slice(&index.to_le_bytes());
    b
}

/// Peak and last RSS of a process, sampled until stopped.
struct Sampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kib.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Ok(sample) = proc::sample(pid) {
                    p.fetch_max(sample.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Sampler {
            peak_kib,
            stop,
            task,
        }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kib.load(Ordering::Relaxed)
    }
}

/// This process's own RSS (the generator), KiB.
fn own_rss_kib() -> u64 {
    proc::sample(std::process::id()).map_or(0, |s| s.rss_kib)
}

/// The upload body: `size` bytes made piece by piece as the client asks for them.
fn body_stream(size: u64) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    let base = Arc::new(base_block());
    futures_util::stream::unfold(0u64, move |sent| {
        let base = base.clone();
        async move {
            if sent >= size {
                return None;
            }
            let index = sent / BLOCK as u64;
            let at = (sent % BLOCK as u64) as usize;
            let len = (PIECE.min(BLOCK - at) as u64).min(size - sent) as usize;
            let mut piece = base[at..at + len].to_vec();
            if at < 8 {
                let stamp = index.to_le_bytes();
                let n = (8 - at).min(len);
                piece[..n].copy_from_slice(&stamp[at..at + n]);
            }
            Some((Ok(piece), sent + len as u64))
        }
    })
}

/// Uploads with `rooms.media`; returns the file's download path.
async fn upload(base_url: &str, auth: &Session, size: u64) -> Result<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(body_stream(size)),
        size,
    )
    .file_name("big.bin")
    .mime_str("application/octet-stream")?;
    let resp = client
        .post(format!("{base_url}/api/v1/rooms.media/GENERAL"))
        .header("X-User-Id", &auth.user_id)
        .header("X-Auth-Token", &auth.token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .context("upload")?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("upload: {status} {v}");
    }
    v["file"]["url"]
        .as_str()
        .map(str::to_string)
        .context("no file url")
}

/// Downloads `path`, checking every byte against what was uploaded; returns the bytes read.
async fn download(base_url: &str, auth: &Session, path: &str, size: u64) -> Result<u64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let resp = client
        .get(format!("{base_url}{path}"))
        .header("X-User-Id", &auth.user_id)
        .header("X-Auth-Token", &auth.token)
        .send()
        .await
        .context("download")?;
    if !resp.status().is_success() {
        bail!("download: {}", resp.status());
    }
    let base = base_block();
    let mut expected = block(&base, 0);
    let mut expected_index = 0;
    let mut got: u64 = 0;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("download body")?;
        let mut rest = chunk.as_ref();
        while !rest.is_empty() {
            let index = got / BLOCK as u64;
            if index != expected_index {
                expected = block(&base, index);
                expected_index = index;
            }
            let at = (got % BLOCK as u64) as usize;
            let n = rest.len().min(BLOCK - at);
            if rest[..n] != expected[at..at + n] {
                bail!("download differs from the upload near byte {got}");
            }
            got += n as u64;
            rest = &rest[n..];
        }
    }
    if got != size {
        bail!("downloaded {got} of {size} bytes");
    }
    Ok(got)
}

pub async fn files(env: &Env, a: &FilesArgs) -> Result<Value> {
    let size = a.mib * MIB;
    eprintln!(
        "files: upload then download {} MiB through one server",
        a.mib
    );
    let load_before = load_note();
    let env_vars = [(
        "OVERWRITE_SETTING_FileUpload_MaxFileSize".to_string(),
        (size + MIB).to_string(),
    )];
    let dir = tempfile::tempdir().context("temp data dir")?;
    let srv =
        server::start_apogee_env(&env.apogee_bin, env.server_cpus.clone(), dir, &env_vars).await?;
    let rest = Rest::new(&srv.base_url())?;
    let admin = rest.login(ADMIN_USER, ADMIN_PASS).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_kib = srv.sample()?.rss_kib;
    let generator_before = own_rss_kib();

    let sampler = Sampler::start(srv.pid);
    let t = Instant::now();
    let path = upload(&srv.base_url(), &admin, size).await?;
    let up_secs = t.elapsed().as_secs_f64();
    let up_peak = sampler.finish().await;
    let after_upload = srv.sample()?.rss_kib;

    let sampler = Sampler::start(srv.pid);
    let t = Instant::now();
    download(&srv.base_url(), &admin, &path, size).await?;
    let down_secs = t.elapsed().as_secs_f64();
    let down_peak = sampler.finish().await;
    let generator_after = own_rss_kib();
    srv.stop().await;

    let mib_s = |secs: f64| round(a.mib as f64 / secs, 1);
    let mib = |kib: u64| round(kib as f64 / 1024.0, 1);
    let result = json!({
        "scenario": "files",
        "file_mib": a.mib,
        "server_rss_idle_mib": mib(idle_kib),
        "upload": {
            "seconds": round(up_secs, 2),
            "mib_per_s": mib_s(up_secs),
            "server_peak_rss_mib": mib(up_peak),
            "server_rss_after_mib": mib(after_upload),
        },
        "download": {
            "seconds": round(down_secs, 2),
            "mib_per_s": mib_s(down_secs),
            "server_peak_rss_mib": mib(down_peak),
        },
        "server_peak_over_idle_mib": mib(up_peak.max(down_peak).saturating_sub(idle_kib)),
        "generator_rss_mib": {"before": mib(generator_before), "after": mib(generator_after)},
        "load_before": load_before,
    });
    eprintln!(
        "\n| file | direction | time | throughput | server peak RSS | idle RSS |\n|---|---|---|---|---|---|\n\
         | {} MiB | upload | {:.1} s | {} MiB/s | {} MiB | {} MiB |\n\
         | {} MiB | download | {:.1} s | {} MiB/s | {} MiB | |",
        a.mib,
        up_secs,
        mib_s(up_secs),
        mib(up_peak),
        mib(idle_kib),
        a.mib,
        down_secs,
        mib_s(down_secs),
        mib(down_peak),
    );
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_is_the_stamped_blocks() {
        let size = 2 * BLOCK as u64 + 1234;
        let mut made = Vec::new();
        let mut s = Box::pin(body_stream(size));
        while let Some(piece) = s.next().await {
            made.extend(piece.unwrap());
        }
        assert_eq!(made.len() as u64, size);
        let base = base_block();
        assert_eq!(&made[..BLOCK], block(&base, 0).as_slice());
        assert_eq!(&made[BLOCK..2 * BLOCK], block(&base, 1).as_slice());
        assert_eq!(&made[2 * BLOCK..], &block(&base, 2)[..1234]);
    }
}
