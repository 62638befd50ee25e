//! E-mail: use-cases queue a [`Mail`] in the outbox with the change that causes it
//! ([`Core::queue_mail`]); the outbox worker hands it to the [`Mailer`] port with the SMTP
//! settings current at delivery time (Rocket.Chat's `SMTP_*` and `From_Email`).

use crate::Core;
use crate::error::{CoreError, CoreResult};
use crate::outbox::{Deliverer, Delivery};
use crate::store::Change;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outbox kind of e-mail items.
pub const KIND: &str = "mail";

/// One plain-text message to one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Where and how to send (from the settings). The password is left out of `Debug`.
#[derive(Clone, PartialEq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    /// `smtps`: TLS from the first byte; `smtp`: plain, upgraded with STARTTLS unless `ignore_tls`.
    pub implicit_tls: bool,
    pub ignore_tls: bool,
    pub username: String,
    pub password: String,
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field("ignore_tls", &self.ignore_tls)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq)]
pub enum MailError {
    /// Worth retrying: connection failures, 4xx replies.
    Temporary(String),
    /// Not worth retrying: 5xx replies, addresses that do not parse.
    Permanent(String),
}

/// The port an SMTP adapter implements.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, smtp: &SmtpSettings, mail: &Mail) -> Result<(), MailError>;
}

impl Core {
    /// The change that queues `mail` for delivery; commit it in the use-case's batch.
    pub fn queue_mail(&self, mail: Mail) -> Change {
        let payload = serde_json::to_value(mail).unwrap_or(Value::Null);
        self.enqueue(KIND, payload)
    }

    /// The SMTP settings as they are now.
    pub fn smtp_settings(&self) -> SmtpSettings {
        let s = &self.settings;
        SmtpSettings {
            host: s.string("SMTP_Host").trim().to_string(),
            port: s.string("SMTP_Port").trim().parse().ok(),
            implicit_tls: s.string("SMTP_Protocol") == "smtps",
            ignore_tls: s.bool("SMTP_IgnoreTLS"),
            username: s.string("SMTP_Username"),
            password: s.string("SMTP_Password"),
            from: s.string("From_Email"),
        }
    }
}

/// Delivers `mail` outbox items through a [`Mailer`].
pub(crate) struct MailDeliverer(pub std::sync::Arc<dyn Mailer>);

#[async_trait]
impl Deliverer for MailDeliverer {
    async fn deliver(&self, core: &Core, payload: &Value) -> Delivery {
        let Ok(mail) = serde_json::from_value::<Mail>(payload.clone()) else {
            return Delivery::GiveUp("not a mail payload".into());
        };
        let smtp = core.smtp_settings();
        if smtp.host.is_empty() {
            return Delivery::Retry("SMTP_Host is not set".into());
        }
        match self.0.send(&smtp, &mail).await {
            Ok(()) => Delivery::Done,
            Err(MailError::Temporary(e)) => Delivery::Retry(e),
            Err(MailError::Permanent(e)) => Delivery::GiveUp(e),
        }
    }
}

impl Core {
    /// `sendSMTPTestEmail`: queues a test message to the caller's first address, so an
    /// administrator can check the SMTP settings. Needs `edit-privileged-setting`.
    pub async fn send_smtp_test_email(&self, actor: &apogee_domain::User) -> CoreResult<String> {
        self.authz.require(actor, "edit-privileged-setting", None)?;
        let to = actor
            .emails
            .first()
            .map(|e| e.address.clone())
            .ok_or_else(|| CoreError::bad("error-invalid-email", "Invalid email"))?;
        let site = self.settings.string("Site_Name");
        self.commit(vec![self.queue_mail(Mail {
            to: to.clone(),
            subject: format!("[{site}] SMTP Test Email"),
            text: "You have successfully sent an email".into(),
        })])
        .await?;
        Ok(to)
    }
}
