//! E-mail through the outbox to a real SMTP server (aiosmtpd under `scripts/with-smtp.sh`):
//! `sendSMTPTestEmail` reaches the mailbox, and mail queued while SMTP is unreachable waits in
//! the outbox across a crash and is delivered once the server is pointed at a working SMTP.

mod common;

use common::mail::Mailbox;
use common::{Auth, Server, backends};
use reqwest::Method;
use serde_json::{Value, json};

fn mailbox() -> Option<Mailbox> {
    let found = Mailbox::from_env();
    if found.is_none() {
        eprintln!("skipped: no APOGEE_TEST_SMTP_URL (run under scripts/with-smtp.sh)");
    }
    found
}

async fn send_test_email(server: &Server, who: &Auth) -> Value {
    let message = json!({"msg": "method", "id": "1", "method": "sendSMTPTestEmail", "params": []});
    let (status, v) = server
        .call(
            Method::POST,
            "/api/v1/method.call/sendSMTPTestEmail",
            Some(who),
            Some(json!({"message": message.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    serde_json::from_str(v["message"].as_str().expect("DDP answer")).expect("DDP JSON")
}

#[tokio::test]
async fn smtp_test_email_reaches_the_mailbox() {
    let Some(mailbox) = mailbox() else { return };
    for backend in backends() {
        let server = Server::start_with(backend, &mailbox.server_env()).await;
        // The first registered user is the administrator.
        let admin = server.user("mailadmin").await;
        let answer = send_test_email(&server, &admin).await;
        assert_eq!(
            answer["result"],
            json!({"message": "Sending_your_mail_to_s", "params": ["mailadmin@example.com"]})
        );
        let message = mailbox.wait_for_message("mailadmin@example.com").await;
        assert!(message.body.contains("You have successfully sent an email"));
        assert!(message.headers.contains("SMTP Test Email"), "{message:?}");
        assert!(message.headers.contains("X-MailFrom: apogee@example.com"));

        // Not for everyone: a plain user is refused and nothing is sent.
        let user = server.user("plainuser").await;
        let answer = send_test_email(&server, &user).await;
        assert_eq!(answer["error"]["error"], "error-unauthorized", "{answer}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!mailbox.has_mail_for("plainuser@example.com"));
    }
}

#[tokio::test]
async fn queued_mail_survives_a_crash_and_an_smtp_outage() {
    let Some(mailbox) = mailbox() else { return };
    for backend in backends() {
        // Port 9 on loopback: nothing listens, every attempt fails.
        let unreachable = [
            ("OVERWRITE_SETTING_SMTP_Host", "127.0.0.1"),
            ("OVERWRITE_SETTING_SMTP_Port", "9"),
            ("OVERWRITE_SETTING_From_Email", "apogee@example.com"),
        ];
        let server = Server::start_with(backend, &unreachable).await;
        let admin = server.user("outageadmin").await;
        send_test_email(&server, &admin).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!mailbox.has_mail_for("outageadmin@example.com"));

        let (dir, db) = server.crash();
        let server = Server::start_in(backend, dir, &mailbox.server_env(), db).await;
        // The failed attempt put the item off by 10 s; the restarted node's worker picks it up.
        let body = mailbox.wait_for_within("outageadmin@example.com", 30).await;
        assert!(body.contains("You have successfully sent an email"));
        drop(server);
    }
}
