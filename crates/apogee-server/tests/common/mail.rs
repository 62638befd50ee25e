//! The capturing SMTP server of `scripts/with-smtp.sh` (aiosmtpd writing a Maildir), seen from
//! tests: the settings that point a server at it, and the messages it received.

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Mailbox {
    port: String,
    maildir: PathBuf,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: String,
    pub body: String,
}

impl Mailbox {
    /// The capturing server, when the tests run under `scripts/with-smtp.sh`.
    pub fn from_env() -> Option<Mailbox> {
        let url = std::env::var("APOGEE_TEST_SMTP_URL").ok()?;
        let maildir = std::env::var("APOGEE_TEST_SMTP_DIR").ok()?.into();
        let port = url.rsplit(':').next()?.to_string();
        Some(Mailbox { port, maildir })
    }

    /// `OVERWRITE_SETTING_*` pairs that make a server send its mail here.
    pub fn server_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("OVERWRITE_SETTING_SMTP_Host", "127.0.0.1"),
            ("OVERWRITE_SETTING_SMTP_Port", self.port.as_str()),
            ("OVERWRITE_SETTING_From_Email", "apogee@example.com"),
        ]
    }

    /// The body of the next message to `to`, waiting up to 10 s. Each message is handed out once
    /// (moved from `new/` to `cur/`), so a test sees only mail sent after the last call.
    pub async fn wait_for(&self, to: &str) -> String {
        self.wait_for_message(to).await.body
    }

    pub async fn wait_for_message(&self, to: &str) -> Received {
        self.wait(to, 10).await
    }

    /// [`Mailbox::wait_for`] with a longer wait (retries after a failed attempt).
    pub async fn wait_for_within(&self, to: &str, secs: u64) -> String {
        self.wait(to, secs).await.body
    }

    async fn wait(&self, to: &str, secs: u64) -> Received {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(found) = self.take(to) {
                return found;
            }
            assert!(Instant::now() < deadline, "no mail to {to} within {secs} s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether a message to `to` is waiting (without taking it).
    pub fn has_mail_for(&self, to: &str) -> bool {
        self.find(to).is_some()
    }

    fn find(&self, to: &str) -> Option<(PathBuf, Received)> {
        let mut entries: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        entries.into_iter().find_map(|path| {
            let raw = std::fs::read_to_string(&path).ok()?;
            let raw = raw.replace("\r\n", "\n");
            let (headers, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
            let rcpt = headers
                .lines()
                .find_map(|l| l.strip_prefix("X-RcptTo: "))
                .unwrap_or_default();
            rcpt.split(',')
                .any(|r| r.trim().eq_ignore_ascii_case(to))
                .then(|| {
                    let message = Received {
                        headers: headers.to_string(),
                        body: body.to_string(),
                    };
                    (path, message)
                })
        })
    }

    fn take(&self, to: &str) -> Option<Received> {
        let (path, message) = self.find(to)?;
        let name = path.file_name()?;
        std::fs::rename(&path, self.maildir.join("cur").join(name)).ok()?;
        Some(message)
    }
}
