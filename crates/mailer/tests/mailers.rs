//! Both mailers for real: the outbox file the embedded platform writes, and SES on moto.

use std::os::unix::fs::PermissionsExt;

use rampart_mailer::{Mailer, Notice, OutboxMailer, SesMailer};

#[tokio::test]
async fn the_outbox_holds_one_owner_only_line_per_notice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outbox.log");
    let mailer = OutboxMailer::new(path.clone());
    mailer
        .send("ada@example.com", Notice::PasswordChanged)
        .await
        .expect("send");
    mailer
        .send("ada@example.com", Notice::TotpDisabled)
        .await
        .expect("send");
    let text = std::fs::read_to_string(&path).expect("outbox");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("to=ada@example.com purpose=password_changed subject=Your password was changed"));
    assert!(lines[1].contains("purpose=totp_disabled"));
    assert_eq!(
        std::fs::metadata(&path).expect("file").permissions().mode() & 0o777,
        0o600
    );
}

/// SES accepts a notice from a verified sender and refuses one from an address it has not
/// verified, which the adapter reports rather than hides.
#[tokio::test]
async fn ses_sends_from_a_verified_sender_only() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_sesv2::Client::new(&aws.config);
    let sender = format!("no-reply@{}.example.com", aws.prefix);
    client
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .expect("verify the sender");
    let mailer = SesMailer::new(client.clone(), &sender, None);
    for notice in [
        Notice::AlreadyRegistered,
        Notice::PasswordReset,
        Notice::SignedOutEverywhere,
    ] {
        mailer.send("ada@example.com", notice).await.expect("sent");
    }
    let stranger = SesMailer::new(client, "someone@unverified.example.net", None);
    assert!(stranger.send("ada@example.com", Notice::PasswordChanged).await.is_err());
}
