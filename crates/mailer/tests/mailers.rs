//! Both mailers for real: the outbox file the embedded platform writes, and SES on moto.

use std::os::unix::fs::PermissionsExt;

use rampart_mailer::{CodeMail, CodePurpose, Mailer, Notice, OutboxMailer, SesMailer};
use secrecy::SecretString;

fn reset_code() -> CodeMail {
    CodeMail {
        purpose: CodePurpose::ResetPassword,
        code: SecretString::from("7KQ2M9XD"),
        valid_for_secs: 600,
    }
}

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
    mailer.send_code("ada@example.com", &reset_code()).await.expect("send");
    let text = std::fs::read_to_string(&path).expect("outbox");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("to=ada@example.com purpose=password_changed subject=Your password was changed"));
    assert!(lines[1].contains("purpose=totp_disabled"));
    assert!(
        lines[2].ends_with("to=ada@example.com purpose=reset_password code=7KQ2M9XD valid_for=600s"),
        "{}",
        lines[2]
    );
    assert_eq!(
        std::fs::metadata(&path).expect("file").permissions().mode() & 0o777,
        0o600
    );
}

/// A code mail says what the code is for and how long it lasts, and its `Debug` keeps the code.
#[test]
fn a_code_mail_tells_the_code_and_debug_hides_it() {
    let mail = reset_code();
    assert_eq!(mail.subject(), "Your password-reset code");
    assert!(
        mail.body()
            .contains("set a new password is 7KQ2M9XD. It is valid for 10 minutes")
    );
    assert!(!format!("{mail:?}").contains("7KQ2M9XD"));
}

/// SES accepts a notice or a code from a verified sender and refuses one from an address it has not
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
    mailer
        .send_code("ada@example.com", &reset_code())
        .await
        .expect("code sent");
    let stranger = SesMailer::new(client, "someone@unverified.example.net", None);
    assert!(stranger.send("ada@example.com", Notice::PasswordChanged).await.is_err());
}
