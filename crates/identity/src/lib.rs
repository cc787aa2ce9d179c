//! Who the users are: the [`IdentityProvider`] port, with a Cognito adapter and an embedded one
//! (users in SQLite, passwords hashed with argon2id).

pub mod cognito;
pub mod embedded;
mod input;

pub use cognito::CognitoIdentity;
pub use embedded::EmbeddedIdentity;
pub use input::{Email, InputError, Password};

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

/// What sign-up did. The HTTP layer answers both the same way, so callers cannot learn which
/// emails are registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignUpOutcome {
    Created { user_id: String },
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the password was refused by the identity provider's policy")]
    PasswordRefused,
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync + std::fmt::Debug {
    async fn sign_up(&self, email: &Email, password: &Password) -> Result<SignUpOutcome, IdentityError>;
    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError>;
}

/// The identity provider the settings select: `data_dir/identity.sqlite`, or the Cognito pool
/// named by `aws.user_pool_id` and `aws.user_pool_client_id`, whose client secret is read from
/// the secret `auth/cognito-client-secret`.
pub async fn connect(
    settings: &rampart_kernel::Settings,
    aws: Option<&aws_types::SdkConfig>,
    secrets: &dyn rampart_secrets::SecretSource,
) -> Result<std::sync::Arc<dyn IdentityProvider>, Box<dyn std::error::Error + Send + Sync>> {
    use rampart_kernel::Settings;
    match aws {
        Some(config) => {
            let pool = Settings::require_aws(&settings.aws.user_pool_id, "aws.user_pool_id")?;
            let client_id = Settings::require_aws(&settings.aws.user_pool_client_id, "aws.user_pool_client_id")?;
            let secret = match secrets.get(CLIENT_SECRET_NAME).await {
                Ok(secret) => Some(secret),
                Err(rampart_secrets::SecretError::NotFound(_)) => None,
                Err(error) => return Err(error.into()),
            };
            let client = aws_sdk_cognitoidentityprovider::Client::new(config);
            Ok(std::sync::Arc::new(CognitoIdentity::new(
                client, pool, client_id, secret,
            )))
        }
        None => Ok(std::sync::Arc::new(EmbeddedIdentity::open(
            &settings.data_file("identity.sqlite")?,
        )?)),
    }
}

/// The secret holding the Cognito app client secret (see `schema/platform.json`).
pub const CLIENT_SECRET_NAME: &str = "auth/cognito-client-secret";
