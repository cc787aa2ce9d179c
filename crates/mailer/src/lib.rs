//! Security notices to account owners: the [`Mailer`] port, with an SES adapter and the local
//! outbox the embedded platform "mails" into.
//!
//! A notice tells the owner that something changed on their account (their password, their
//! second factor, every session ended) or that someone tried to register their address, so a
//! change they did not make is noticed (OWASP ASVS 6.3.7). Notices carry no secret and no link:
//! nothing in one can be used by whoever reads it instead of the owner.

pub mod outbox;
pub mod ses;

pub use outbox::OutboxMailer;
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

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message was not accepted for delivery; the reason is for the logs.
    #[error("mail could not be sent: {0}")]
    Unavailable(String),
}

/// Sends notices to account owners.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends `notice` to `to`, an address already validated as an account's email.
    async fn send(&self, to: &str, notice: Notice) -> Result<(), MailError>;
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
