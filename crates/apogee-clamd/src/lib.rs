//! [`ClamdScanner`]: core's [`MalwareScanner`] port over clamd's `INSTREAM` command. The file is
//! streamed as it is read from the blob store — never held whole — in length-prefixed chunks
//! (4-byte big-endian size, then the bytes; a zero size ends it), and clamd answers one line:
//! `stream: OK`, `stream: <signature> FOUND`, or an error (`INSTREAM size limit exceeded. ERROR`
//! when the file is larger than its `StreamMaxLength`).

use apogee_core::blobs::ByteSource;
use apogee_core::malware::{MalwareScanner, Verdict};
use async_trait::async_trait;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long one read or write to clamd may take before the scan counts as failed.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// clamd's reply is one short line; anything longer is not clamd.
const MAX_REPLY: usize = 4096;
/// Chunks sent to clamd are at most this long (its default `StreamMaxLength` is far larger).
const MAX_CHUNK: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
pub struct ClamdScanner;

/// Where clamd listens: `unix:/path`, `/path`, `tcp://host:port` or `host:port`.
#[derive(Debug, PartialEq)]
enum Address<'a> {
    Unix(&'a str),
    Tcp(&'a str),
}

fn address(text: &str) -> Result<Address<'_>, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix:") {
        return Ok(Address::Unix(path.trim_start_matches("//")));
    }
    if text.starts_with('/') {
        return Ok(Address::Unix(text));
    }
    let host_port = text.strip_prefix("tcp://").unwrap_or(text);
    if host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
    {
        Ok(Address::Tcp(host_port))
    } else {
        Err(format!("not a clamd address: {text:?}"))
    }
}

async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("clamd {what}: {e}")),
        Err(_) => Err(format!("clamd {what}: timed out")),
    }
}

/// clamd's reply up to its NUL (or the end of the connection).
async fn read_reply(conn: &mut (impl AsyncRead + Unpin)) -> Result<String, String> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = timed("read", conn.read(&mut buf)).await?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if let Some(end) = reply.iter().position(|b| *b == 0) {
            reply.truncate(end);
            break;
        }
        if reply.len() > MAX_REPLY {
            return Err("clamd reply too long".into());
        }
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_string())
}

/// `stream: OK` / `stream: <name> FOUND` / anything else (an error).
fn verdict(reply: &str) -> Result<Verdict, String> {
    let body = reply.strip_prefix("stream:").map(str::trim);
    match body {
        Some("OK") => Ok(Verdict::Clean),
        Some(found) if found.ends_with(" FOUND") => Ok(Verdict::Infected(
            found.trim_end_matches(" FOUND").trim().to_string(),
        )),
        _ => Err(format!("clamd: {reply}")),
    }
}

/// Sends `zINSTREAM` and the file; returns clamd's verdict.
async fn instream(
    conn: &mut (impl AsyncRead + AsyncWrite + Unpin),
    body: &mut dyn ByteSource,
) -> Result<Verdict, String> {
    timed("write", conn.write_all(b"zINSTREAM\0")).await?;
    loop {
        let chunk = body
            .next_chunk()
            .await
            .map_err(|e| format!("reading the file: {e}"))?;
        let Some(chunk) = chunk else { break };
        for piece in chunk.chunks(MAX_CHUNK) {
            let len = (piece.len() as u32).to_be_bytes();
            let sent = async {
                conn.write_all(&len).await?;
                conn.write_all(piece).await
            };
            if let Err(e) = timed("write", sent).await {
                // clamd stops reading when the stream passes its limit and says why.
                return match read_reply(conn).await {
                    Ok(reply) if !reply.is_empty() => verdict(&reply),
                    _ => Err(e),
                };
            }
        }
    }
    timed("write", conn.write_all(&0u32.to_be_bytes())).await?;
    timed("flush", conn.flush()).await?;
    verdict(&read_reply(conn).await?)
}

#[async_trait]
impl MalwareScanner for ClamdScanner {
    async fn scan(&self, address_text: &str, body: &mut dyn ByteSource) -> Result<Verdict, String> {
        match address(address_text)? {
            Address::Unix(path) => {
                let mut conn = timed("connect", tokio::net::UnixStream::connect(path)).await?;
                instream(&mut conn, body).await
            }
            Address::Tcp(host_port) => {
                let mut conn = timed("connect", tokio::net::TcpStream::connect(host_port)).await?;
                instream(&mut conn, body).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address("unix:/run/c.sock"),
            Ok(Address::Unix("/run/c.sock"))
        );
        assert_eq!(
            address("unix:///run/c.sock"),
            Ok(Address::Unix("/run/c.sock"))
        );
        assert_eq!(address("/run/c.sock"), Ok(Address::Unix("/run/c.sock")));
        assert_eq!(
            address("tcp://127.0.0.1:3310"),
            Ok(Address::Tcp("127.0.0.1:3310"))
        );
        assert_eq!(address("clamav:3310"), Ok(Address::Tcp("clamav:3310")));
        assert!(address("").is_err());
        assert!(address("tcp://nohost").is_err());
        assert!(address("host:99999").is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(verdict("stream: OK"), Ok(Verdict::Clean));
        assert_eq!(
            verdict("stream: Eicar-Signature FOUND"),
            Ok(Verdict::Infected("Eicar-Signature".into()))
        );
        assert!(verdict("INSTREAM size limit exceeded. ERROR").is_err());
        assert!(verdict("").is_err());
    }
}
