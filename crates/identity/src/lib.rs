//! Who the users are: the [`IdentityProvider`] port, with a Cognito adapter and an embedded one
//! (users in SQLite, passwords hashed with argon2id, RFC 6238 TOTP). Sign-up, sign-in with
//! optional TOTP MFA, password change, and the self-service calls a signed-in user makes through
//! a [`ProviderSession`].
//!
//! The emailed one-time codes that confirm a sign-up or reset a password are not the provider's:
//! the auth API issues, mails and checks them the same way on every backend (Cognito's own
//! six-digit codes are too guessable), and then asks the provider to
//! [`confirm_user`](IdentityProvider::confirm_user) or [`set_password`](IdentityProvider::set_password).

pub mod argon;
pub mod cognito;
pub mod embedded;
mod input;
pub mod totp;

pub use cognito::CognitoIdentity;
pub use embedded::EmbeddedIdentity;
pub use input::{Email, InputError, Password};
use secrecy::SecretString;

/// How long a sign-up may stay unconfirmed. After that it expires on every backend and the
/// address is free again, so nobody can hold an address they cannot read mail for.
pub const UNCONFIRMED_SIGN_UP_TTL_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Signed up; the emailed code has not been confirmed yet.
    Unconfirmed,
    Confirmed,
    /// Disabled by an administrator: may not sign in or refresh.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable, opaque subject identifier (Cognito's `sub`).
    pub id: String,
    pub email: Email,
    pub status: UserStatus,
}

/// What sign-up did. The HTTP layer answers all three the same way, so callers cannot learn
/// which emails are registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUpOutcome {
    /// A new, unconfirmed account: the auth API mails it a confirmation code.
    Created { user_id: String },
    /// The address has an account awaiting confirmation, whose password stays as it was: the
    /// auth API mails its owner a fresh code.
    AwaitingConfirmation { user_id: String },
    /// The address has a confirmed account: the auth API tells its owner by mail, and answers
    /// the caller as for a new address.
    AlreadyRegistered,
}

/// What a signed-in user's provider session carries for later self-service calls (enrolling
/// TOTP, changing the password, checking the user on refresh).
///
/// The auth API keeps it with its own session. Only [`IdentityProvider::authenticate`] and
/// [`IdentityProvider::answer_mfa`] make one; the auth API may rebuild one from what it stored,
/// but never from client input: the embedded provider trusts `user.id` as proof of sign-in.
#[derive(Debug, Clone)]
pub struct ProviderSession {
    pub user: User,
    /// The provider's own long-lived credential: Cognito's refresh token, from which each
    /// self-service call obtains a fresh access token. `None` for the embedded provider, which
    /// acts on `user.id` directly.
    pub credential: Option<SecretString>,
}

/// What a correct email and password led to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    Authenticated(ProviderSession),
    /// The user has TOTP enabled: answer with [`IdentityProvider::answer_mfa`], passing this
    /// opaque challenge back (Cognito's `Session`, or the embedded provider's single-use token,
    /// valid for five minutes).
    MfaRequired {
        challenge: SecretString,
    },
}

/// A TOTP secret being enrolled; it takes effect only once a code from it is confirmed.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The shared secret in RFC 4648 base32, for manual entry into an authenticator app.
    pub secret: SecretString,
    /// `otpauth://totp/Rampart:<email>?secret=…&issuer=Rampart&algorithm=SHA1&digits=6&period=30`,
    /// usually shown as a QR code. It contains the secret.
    pub otpauth_uri: SecretString,
}

/// Why an identity operation failed. The `Display` texts are safe to show to the user, except
/// the detail of [`IdentityError::Unavailable`], which is for the logs.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the password was refused by the identity provider's policy")]
    PasswordRefused,
    /// Unknown email or wrong password: deliberately indistinguishable.
    #[error("incorrect email or password")]
    InvalidCredentials,
    /// The password was correct but the sign-up has not been confirmed with its code.
    #[error("the account has not been confirmed yet")]
    NotConfirmed,
    #[error("the account is disabled")]
    Disabled,
    /// A wrong, expired, already used or exhausted code, or a code for an unknown account; also
    /// a sign-up that is no longer there to confirm.
    #[error("the code is invalid or has expired")]
    InvalidCode,
    /// The MFA challenge is unknown, expired, used, or had too many wrong answers: sign in again.
    #[error("the sign-in attempt has expired; sign in again")]
    ChallengeExpired,
    /// The provider session no longer works (user deleted, credential revoked): sign in again.
    #[error("the session is no longer valid; sign in again")]
    SessionInvalid,
    #[error("too many attempts; try again later")]
    RateLimited,
    /// Too many requests at once for the password-hashing work: refused at once, so that a
    /// flood is shed quickly instead of holding every request past its timeout.
    #[error("the identity provider is at capacity; try again shortly")]
    Overloaded,
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// Who the users are and how they prove it. Every method that takes an email answers the same
/// way for unknown and known accounts wherever an answer could reveal which emails exist.
#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync + std::fmt::Debug {
    /// Creates an unconfirmed account, unless the address has one. A sign-up left unconfirmed
    /// for [`UNCONFIRMED_SIGN_UP_TTL_SECS`] is forgotten first, so its address is free.
    async fn sign_up(&self, email: &Email, password: &Password) -> Result<SignUpOutcome, IdentityError>;
    /// The account with this email; `None` also for a sign-up that has expired unconfirmed.
    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError>;
    /// Marks an unconfirmed sign-up confirmed (and its email verified), once the auth API has
    /// checked the code sent to it. [`IdentityError::InvalidCode`] if there is no such sign-up
    /// any more (expired, deleted) or it is not awaiting confirmation.
    async fn confirm_user(&self, user_id: &str) -> Result<(), IdentityError>;

    /// Checks the password. [`IdentityError::InvalidCredentials`] for an unknown email and for a
    /// wrong password alike (with the same work done); [`IdentityError::NotConfirmed`] only after
    /// a correct password; [`IdentityError::Disabled`] for a disabled account.
    async fn authenticate(&self, email: &Email, password: &Password) -> Result<LoginOutcome, IdentityError>;
    /// Completes a sign-in that asked for MFA with a TOTP code. [`IdentityError::InvalidCode`] for
    /// a wrong or replayed code (the challenge stays usable for a few more tries),
    /// [`IdentityError::ChallengeExpired`] when the challenge itself is no longer valid.
    async fn answer_mfa(&self, email: &Email, challenge: &str, code: &str) -> Result<ProviderSession, IdentityError>;

    /// Starts TOTP enrolment with a new secret; nothing changes until it is confirmed.
    async fn begin_totp_enrolment(&self, session: &ProviderSession) -> Result<TotpEnrolment, IdentityError>;
    /// Confirms the pending secret with a code from it and makes TOTP required at sign-in.
    async fn confirm_totp_enrolment(&self, session: &ProviderSession, code: &str) -> Result<(), IdentityError>;
    /// Turns TOTP off. Whether that needs a fresh proof (password or code) is the caller's policy.
    async fn disable_totp(&self, session: &ProviderSession) -> Result<(), IdentityError>;
    /// Whether sign-in asks this user for a TOTP code: then changing the factor needs a recent
    /// sign-in that answered one.
    async fn totp_enabled(&self, session: &ProviderSession) -> Result<bool, IdentityError>;

    /// Sets a new password for a confirmed account, once the auth API has checked the reset code
    /// sent to it. [`IdentityError::InvalidCode`] for an account that is gone or not confirmed.
    async fn set_password(&self, user_id: &str, new_password: &Password) -> Result<(), IdentityError>;
    /// Changes the password of a signed-in user. [`IdentityError::InvalidCredentials`] when `old`
    /// is wrong.
    async fn change_password(
        &self,
        session: &ProviderSession,
        old: &Password,
        new: &Password,
    ) -> Result<(), IdentityError>;

    /// Revokes every credential the provider has issued to the user, so that none kept by a
    /// revoked session can still act for them (Cognito's `AdminUserGlobalSignOut`: a password
    /// reset has no user token for the self-service `GlobalSignOut`). `Ok` for a user the
    /// provider no longer has. The embedded provider issues no credentials of its own: its
    /// sessions live in the auth API alone.
    async fn sign_out_everywhere(&self, user_id: &str) -> Result<(), IdentityError>;

    /// Disables the account with this email, an administrator's act: it can no longer sign in
    /// or refresh. Returns the user, `None` if there is no such account. Ending the sessions it
    /// already holds is the auth API's part (`App::disable_user`).
    async fn disable_user(&self, email: &Email) -> Result<Option<User>, IdentityError>;

    /// The user as the provider sees them now: `None` once deleted, status
    /// [`UserStatus::Disabled`] once disabled. The auth API checks this on every refresh.
    async fn current_user(&self, user_id: &str) -> Result<Option<User>, IdentityError>;
}

/// Creates the schema's Cognito user pool and app client under `prefix`, or finds them, and
/// keeps the client secret in `secrets` (as `auth/cognito-client-secret`, where [`connect`]
/// reads it): what `rampart bootstrap` runs.
pub async fn provision(
    aws: &aws_types::SdkConfig,
    prefix: &str,
    secrets: &dyn rampart_secrets::SecretSink,
) -> Result<cognito::ProvisionedPool, Box<dyn std::error::Error + Send + Sync>> {
    let pool = cognito::provision_user_pool(&aws_sdk_cognitoidentityprovider::Client::new(aws), prefix).await?;
    if let Some(secret) = &pool.client_secret {
        secrets.put(CLIENT_SECRET_NAME, secret).await?;
    }
    Ok(pool)
}

/// The identity provider the settings select: `data_dir/identity.sqlite`, or the Cognito pool
/// named by `aws.user_pool_id` and `aws.user_pool_client_id`, whose client secret is read from
/// the secret `auth/cognito-client-secret`.
pub async fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
    secrets: &dyn rampart_secrets::SecretSource,
) -> Result<std::sync::Arc<dyn IdentityProvider>, rampart_kernel::ConfigError> {
    use rampart_kernel::{ConfigError, Settings};
    match aws {
        Some(config) => {
            let pool = Settings::require_aws(&settings.aws.user_pool_id, "aws.user_pool_id")?;
            let client_id = Settings::require_aws(&settings.aws.user_pool_client_id, "aws.user_pool_client_id")?;
            let secret = match secrets.get(CLIENT_SECRET_NAME).await {
                Ok(secret) => Some(secret),
                Err(rampart_secrets::SecretError::NotFound(_)) => None,
                Err(error) => {
                    return Err(ConfigError::new(
                        "aws.user_pool_client_id",
                        format!("its client secret ({CLIENT_SECRET_NAME}) could not be read: {error}"),
                    ));
                }
            };
            let client = aws_sdk_cognitoidentityprovider::Client::new(config);
            Ok(std::sync::Arc::new(CognitoIdentity::new(
                client, pool, client_id, secret,
            )))
        }
        None => {
            let path = settings.data_file("identity.sqlite")?;
            let identity = EmbeddedIdentity::open(&path)
                .map_err(|e| ConfigError::new("data_dir", format!("{}: {e}", path.display())))?;
            Ok(std::sync::Arc::new(identity))
        }
    }
}

/// The secret holding the Cognito app client secret (see `schema/platform.json`).
pub const CLIENT_SECRET_NAME: &str = "auth/cognito-client-secret";
