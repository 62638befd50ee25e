//! [`SmtpMailer`]: core's [`Mailer`] port over SMTP with lettre. A transport is built per message
//! from the settings of the moment, so an administrator's SMTP change applies to the next mail.

use apogee_core::mail::{Mail, MailError, Mailer, SmtpSettings};
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct SmtpMailer;

/// Longest an SMTP conversation may take before the attempt counts as failed.
const TIMEOUT: Duration = Duration::from_secs(30);

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, smtp: &SmtpSettings, mail: &Mail) -> Result<(), MailError> {
        let message = build(smtp, mail)?;
        let transport = transport(smtp)?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            // A permanent (5xx) reply will not change by retrying; anything else might.
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Temporary(e.to_string())),
        }
    }
}

fn mailbox(address: &str, what: &str) -> Result<Mailbox, MailError> {
    address
        .trim()
        .parse()
        .map_err(|e| MailError::Permanent(format!("{what} address {address:?}: {e}")))
}

fn build(smtp: &SmtpSettings, mail: &Mail) -> Result<Message, MailError> {
    Message::builder()
        .from(mailbox(&smtp.from, "From_Email")?)
        .to(mailbox(&mail.to, "recipient")?)
        .subject(mail.subject.clone())
        .body(mail.text.clone())
        .map_err(|e| MailError::Permanent(format!("message: {e}")))
}

fn transport(smtp: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let tls_parameters = || {
        TlsParameters::new(smtp.host.clone())
            .map_err(|e| MailError::Temporary(format!("TLS set-up: {e}")))
    };
    let tls = if smtp.implicit_tls {
        Tls::Wrapper(tls_parameters()?)
    } else if smtp.ignore_tls {
        Tls::None
    } else {
        Tls::Opportunistic(tls_parameters()?)
    };
    let default_port = if smtp.implicit_tls { 465 } else { 25 };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port.unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.clone(),
        ));
    }
    Ok(builder.build())
}
