//! Audit export to a SIEM: each audit entry as an RFC 5424 syslog message (over UDP, one datagram
//! per entry, or TCP with RFC 6587 octet-counting frames) or as a JSON line. The shipper follows
//! the chain from where the sink's export last got (kept in the database), so a restart neither
//! loses nor, barring a crash between sending and recording, repeats entries. Every message
//! carries the entry's number and chain hashes, so the SIEM holds an outside copy of the chain.

use anyhow::{Context, Result, bail};
use apogee_core::Core;
use apogee_core::store::AuditRecord;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Where audit entries go: `udp://host:port` or `tcp://host:port`.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    Udp(String),
    Tcp(String),
}

impl Sink {
    pub fn parse(url: &str) -> Result<Sink> {
        let (scheme, addr) = url.split_once("://").with_context(|| {
            format!("audit syslog target {url:?}: expected udp://host:port or tcp://host:port")
        })?;
        if addr
            .rsplit_once(':')
            .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            bail!("audit syslog target {url:?}: expected host:port after {scheme}://");
        }
        match scheme {
            "udp" => Ok(Sink::Udp(addr.to_string())),
            "tcp" => Ok(Sink::Tcp(addr.to_string())),
            _ => bail!("audit syslog target {url:?}: the scheme must be udp or tcp"),
        }
    }

    /// The name the export position is kept under.
    fn key(&self) -> String {
        match self {
            Sink::Udp(a) => format!("syslog+udp://{a}"),
            Sink::Tcp(a) => format!("syslog+tcp://{a}"),
        }
    }
}

/// RFC 5424 facility 13, "log audit".
const FACILITY: u8 = 13;
/// Entries sent per round.
const BATCH: i64 = 500;

/// One entry as a JSON line: the stored document with its place in the chain.
pub fn json_line(record: &AuditRecord) -> String {
    record.to_json().to_string()
}

/// One entry as an RFC 5424 message: PRI, version, time, host, app, pid, MSGID = the event,
/// structured data with the chain position, and the entry's JSON document as the message.
pub fn syslog_line(record: &AuditRecord, hostname: &str) -> String {
    let entry: Value = serde_json::from_str(&record.doc).unwrap_or(Value::Null);
    let event = entry["event"].as_str().unwrap_or("audit");
    // Failures are warnings (4), the rest notices (5).
    let severity = if event.ends_with(".failed") { 4 } else { 5 };
    let ts = entry["ts"].as_str().unwrap_or("-");
    format!(
        "<{}>1 {ts} {} apogee {} {} [apogee@32473 seq=\"{}\" hash=\"{}\" prevHash=\"{}\"] {}",
        FACILITY * 8 + severity,
        header_field(hostname, 255),
        std::process::id(),
        header_field(event, 32),
        record.seq,
        record.hash,
        record.prev_hash,
        record.doc,
    )
}

/// A header field: printable US-ASCII without spaces, at most `max` long, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Ships new audit entries to `sink` until the process ends; failures are retried.
pub async fn ship(core: Arc<Core>, sink: Sink) {
    let host = hostname();
    let mut tcp: Option<tokio::net::TcpStream> = None;
    let mut pause = Duration::from_secs(1);
    loop {
        match ship_round(&core, &sink, &host, &mut tcp).await {
            Ok(sent) if sent > 0 => {
                pause = Duration::from_secs(1);
                continue;
            }
            Ok(_) => pause = Duration::from_secs(1),
            Err(e) => {
                tcp = None;
                tracing::warn!(error = %format!("{e:#}"), "audit export failed; will retry");
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
        tokio::time::sleep(pause).await;
    }
}

async fn ship_round(
    core: &Core,
    sink: &Sink,
    host: &str,
    tcp: &mut Option<tokio::net::TcpStream>,
) -> Result<usize> {
    let records = core
        .audit_to_export(&sink.key(), BATCH)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(last) = records.last().map(|r| r.seq) else {
        return Ok(0);
    };
    match sink {
        Sink::Udp(addr) => {
            let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
            socket
                .connect(addr)
                .await
                .with_context(|| format!("udp {addr}"))?;
            for r in &records {
                socket.send(syslog_line(r, host).as_bytes()).await?;
            }
        }
        Sink::Tcp(addr) => {
            if tcp.is_none() {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("tcp {addr}"))?;
                *tcp = Some(stream);
            }
            let stream = tcp.as_mut().expect("connected above");
            let mut frames = Vec::new();
            for r in &records {
                let line = syslog_line(r, host);
                frames.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
            }
            stream.write_all(&frames).await?;
            stream.flush().await?;
        }
    }
    core.audit_exported(&sink.key(), last)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            seq: 7,
            doc: r#"{"_id":"x","ts":"2026-11-22T05:00:00.000Z","event":"login.failed","actor":null,"ip":"127.0.0.1","details":{}}"#.into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        }
    }

    #[test]
    fn syslog_lines_follow_rfc_5424() {
        let line = syslog_line(&record(), "host one");
        let expected_start = "<108>1 2026-11-22T05:00:00.000Z hostone apogee ";
        assert!(line.starts_with(expected_start), "{line}");
        assert!(
            line.contains(" login.failed [apogee@32473 seq=\"7\" hash=\"bbbb"),
            "{line}"
        );
        assert!(line.ends_with(r#""details":{}}"#), "{line}");
    }

    #[test]
    fn json_lines_carry_the_chain() {
        let v: Value = serde_json::from_str(&json_line(&record())).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["event"], "login.failed");
        assert_eq!(v["hash"], "b".repeat(64));
    }

    #[test]
    fn sinks_parse() {
        assert_eq!(
            Sink::parse("udp://127.0.0.1:514").unwrap(),
            Sink::Udp("127.0.0.1:514".into())
        );
        assert_eq!(
            Sink::parse("tcp://siem:6514").unwrap(),
            Sink::Tcp("siem:6514".into())
        );
        assert!(Sink::parse("http://x:1").is_err());
        assert!(Sink::parse("udp://nohost").is_err());
    }
}
