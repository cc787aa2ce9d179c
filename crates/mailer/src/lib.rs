//! Mail to account owners: the [`Mailer`] port, with an SES adapter and the local outbox the
//! embedded platform "mails" into.
//!
//! Two kinds of message go out. A [`Notice`] tells the owner that something changed on their
//! account (their password, their second factor, every session ended) or that someone tried to
//! register their address, so a change they did not make is noticed (OWASP ASVS 6.3.7); notices
//! carry no secret and no link, so nothing in one can be used by whoever reads it instead of the
//! owner. A [`CodeMail`] carries a one-time code the owner types back to prove the address.

pub mod outbox;
pub mod ses;

pub use outbox::OutboxMailer;
use secrecy::SecretString;
pub use ses::SesMailer;

/// What happened to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Someone registered with this address, which already has an account.
    AlreadyRegistered,
    PasswordChanged,
    PasswordReset,
    TotpEnabled,
    TotpDisabled,
    /// Every session was ended (sign out everywhere).
    SignedOutEverywhere,
}

impl Notice {
    /// A stable label: the outbox's `purpose`, the audit's and the metrics' name for it.
    pub fn label(self) -> &'static str {
        match self {
            Self::AlreadyRegistered => "already_registered",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::SignedOutEverywhere => "signed_out_everywhere",
        }
    }

    pub fn subject(self) -> &'static str {
        match self {
            Self::AlreadyRegistered => "Someone tried to sign up with your email address",
            Self::PasswordChanged => "Your password was changed",
            Self::PasswordReset => "Your password was reset",
            Self::TotpEnabled => "Two-factor authentication was turned on",
            Self::TotpDisabled => "Two-factor authentication was turned off",
            Self::SignedOutEverywhere => "You were signed out everywhere",
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            Self::AlreadyRegistered => {
                "Someone tried to create an account with this email address, which already has one. \
                 Nothing changed. If it was you, sign in instead, or reset your password if you have \
                 forgotten it."
            }
            Self::PasswordChanged => {
                "The password of your account was changed, and your other sessions were signed out. \
                 If you did not do this, reset your password now."
            }
            Self::PasswordReset => {
                "The password of your account was reset with a code sent to this address, and every \
                 session was signed out. If you did not do this, reset your password now."
            }
            Self::TotpEnabled => {
                "An authenticator app was set up as the second factor of your account, and your other \
                 sessions were signed out. If you did not do this, reset your password now."
            }
            Self::TotpDisabled => {
                "Two-factor authentication was turned off for your account, and your other sessions \
                 were signed out. If you did not do this, reset your password and turn it on again."
            }
            Self::SignedOutEverywhere => {
                "Every session of your account was signed out. If you did not do this, reset your \
                 password."
            }
        }
    }
}

/// What a one-time code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    /// The address of a new sign-up.
    ConfirmSignUp,
    /// The owner's right to set a new password.
    ResetPassword,
}

impl CodePurpose {
    /// A stable label: the outbox's `purpose`, and the key the auth API stores codes and budgets
    /// under.
    pub fn label(self) -> &'static str {
        match self {
            Self::ConfirmSignUp => "confirm_sign_up",
            Self::ResetPassword => "reset_password",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::ConfirmSignUp => "Your confirmation code",
            Self::ResetPassword => "Your password-reset code",
        }
    }
}

/// A one-time code on its way to the owner of an address.
#[derive(Debug, Clone)]
pub struct CodeMail {
    pub purpose: CodePurpose,
    pub code: SecretString,
    /// How long the code stays valid, told to the reader.
    pub valid_for_secs: i64,
}

impl CodeMail {
    pub fn subject(&self) -> &'static str {
        self.purpose.subject()
    }

    /// The text of the message. It contains the code.
    pub fn body(&self) -> secrecy::zeroize::Zeroizing<String> {
        use secrecy::ExposeSecret;
        let why = match self.purpose {
            CodePurpose::ConfirmSignUp => "confirm your email address",
            CodePurpose::ResetPassword => "set a new password",
        };
        let minutes = self.valid_for_secs / 60;
        secrecy::zeroize::Zeroizing::new(format!(
            "Your code to {why} is {}. It is valid for {minutes} minutes and works once. \
             If you did not ask for it, ignore this message: nothing changes without the code.",
            self.code.expose_secret()
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message was not accepted for delivery; the reason is for the logs.
    #[error("mail could not be sent: {0}")]
    Unavailable(String),
}

/// Sends mail to account owners. `to` is always an address already validated as an account's
/// email.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, to: &str, notice: Notice) -> Result<(), MailError>;
    async fn send_code(&self, to: &str, mail: &CodeMail) -> Result<(), MailError>;
}

/// The mailer the settings select: the outbox in `data_dir`, or SES sending from
/// `mail.sender`.
pub fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
) -> Result<std::sync::Arc<dyn Mailer>, rampart_kernel::ConfigError> {
    match aws {
        Some(config) => {
            let sender = rampart_kernel::Settings::require_aws(&settings.mail.sender, "mail.sender")?;
            Ok(std::sync::Arc::new(SesMailer::new(
                aws_sdk_sesv2::Client::new(config),
                sender,
                settings.mail.configuration_set.clone(),
            )))
        }
        None => Ok(std::sync::Arc::new(OutboxMailer::new(
            settings.data_file(outbox::OUTBOX_FILE)?,
        ))),
    }
}
