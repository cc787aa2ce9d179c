//! The AWS adapter: a Cognito user pool holds users, passwords and MFA.

use aws_lc_rs::hmac;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::DisplayErrorContext;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, ExplicitAuthFlowsType, PasswordPolicyType, PreventUserExistenceErrorTypes,
    SoftwareTokenMfaConfigType, UserPoolMfaType, UserPoolPolicyType, UsernameAttributeType, VerifiedAttributeType,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rampart_kernel::schema::{resource_name, schema};
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::{Email, IdentityError, IdentityProvider, Password, SignUpOutcome, User, UserStatus};

#[derive(Debug, Clone)]
pub struct CognitoIdentity {
    client: Client,
    user_pool_id: String,
    client_id: String,
    client_secret: Option<SecretString>,
}

fn unavailable(error: impl std::error::Error) -> IdentityError {
    IdentityError::Unavailable(DisplayErrorContext(&error).to_string())
}

impl CognitoIdentity {
    /// `client_secret` is required when the app client has one (then every call carries
    /// SECRET_HASH).
    pub fn new(client: Client, user_pool_id: &str, client_id: &str, client_secret: Option<SecretString>) -> Self {
        Self {
            client,
            user_pool_id: user_pool_id.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
        }
    }

    /// Base64(HMAC-SHA256(client secret, username + client id)), as Cognito defines it.
    fn secret_hash(&self, username: &str) -> Option<String> {
        self.client_secret.as_ref().map(|secret| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
            let tag = hmac::sign(&key, format!("{username}{}", self.client_id).as_bytes());
            STANDARD.encode(tag.as_ref())
        })
    }
}

#[async_trait::async_trait]
impl IdentityProvider for CognitoIdentity {
    #[instrument(name = "identity.sign_up", skip_all)]
    async fn sign_up(&self, email: &Email, password: &Password) -> Result<SignUpOutcome, IdentityError> {
        let attribute = AttributeType::builder()
            .name("email")
            .value(email.as_str())
            .build()
            .map_err(unavailable)?;
        let result = self
            .client
            .sign_up()
            .client_id(&self.client_id)
            .set_secret_hash(self.secret_hash(email.as_str()))
            .username(email.as_str())
            .password(password.expose())
            .user_attributes(attribute)
            .send()
            .await;
        match result {
            Ok(output) => Ok(SignUpOutcome::Created {
                user_id: output.user_sub,
            }),
            Err(error) => match error.as_service_error() {
                Some(e) if e.is_username_exists_exception() => Ok(SignUpOutcome::AlreadyExists),
                Some(e) if e.is_invalid_password_exception() => Err(IdentityError::PasswordRefused),
                _ => Err(unavailable(error)),
            },
        }
    }

    #[instrument(name = "identity.find_user", skip_all)]
    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        let result = self
            .client
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(email.as_str())
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_user_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(unavailable(error)),
        };
        let id = output
            .user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap_or(output.username())
            .to_owned();
        let status = if !output.enabled() {
            UserStatus::Disabled
        } else if output.user_status().is_some_and(|s| s.as_str() == "CONFIRMED") {
            UserStatus::Confirmed
        } else {
            UserStatus::Unconfirmed
        };
        Ok(Some(User {
            id,
            email: email.clone(),
            status,
        }))
    }
}

/// The user pool and app client `rampart bootstrap` made (or found).
#[derive(Debug)]
pub struct ProvisionedPool {
    pub user_pool_id: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

/// Creates the schema's user pool `<prefix>-users` and app client, or finds them by name.
pub async fn provision_user_pool(client: &Client, prefix: &str) -> Result<ProvisionedPool, IdentityError> {
    let definition = &schema().user_pool;
    let pool_name = resource_name(prefix, &definition.name);
    let client_name = resource_name(prefix, &definition.client_name);

    let pools = client
        .list_user_pools()
        .max_results(60)
        .send()
        .await
        .map_err(unavailable)?;
    let existing = pools
        .user_pools()
        .iter()
        .find(|p| p.name() == Some(pool_name.as_str()))
        .and_then(|p| p.id());
    let user_pool_id = match existing {
        Some(id) => id.to_owned(),
        None => {
            let policy = PasswordPolicyType::builder()
                .minimum_length(i32::try_from(definition.password_minimum_length).unwrap_or(12))
                // NIST SP 800-63B: length and a block list, not composition rules.
                .require_lowercase(false)
                .require_uppercase(false)
                .require_numbers(false)
                .require_symbols(false)
                .build();
            let created = client
                .create_user_pool()
                .pool_name(&pool_name)
                .policies(UserPoolPolicyType::builder().password_policy(policy).build())
                .username_attributes(UsernameAttributeType::Email)
                .auto_verified_attributes(VerifiedAttributeType::Email)
                .mfa_configuration(UserPoolMfaType::from(definition.mfa.as_str()))
                .send()
                .await
                .map_err(unavailable)?;
            let id = created
                .user_pool()
                .and_then(|p| p.id())
                .ok_or_else(|| IdentityError::Unavailable("Cognito returned no pool id".into()))?
                .to_owned();
            client
                .set_user_pool_mfa_config()
                .user_pool_id(&id)
                .software_token_mfa_configuration(SoftwareTokenMfaConfigType::builder().enabled(true).build())
                .mfa_configuration(UserPoolMfaType::from(definition.mfa.as_str()))
                .send()
                .await
                .map_err(unavailable)?;
            id
        }
    };

    let clients = client
        .list_user_pool_clients()
        .user_pool_id(&user_pool_id)
        .max_results(60)
        .send()
        .await
        .map_err(unavailable)?;
    let existing = clients
        .user_pool_clients()
        .iter()
        .find(|c| c.client_name() == Some(client_name.as_str()))
        .and_then(|c| c.client_id())
        .map(str::to_owned);
    let client_id = match existing {
        Some(id) => id,
        None => {
            let flows = definition
                .explicit_auth_flows
                .iter()
                .map(|f| ExplicitAuthFlowsType::from(f.as_str()))
                .collect();
            let created = client
                .create_user_pool_client()
                .user_pool_id(&user_pool_id)
                .client_name(&client_name)
                .generate_secret(definition.generate_client_secret)
                .set_explicit_auth_flows(Some(flows))
                .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
                .send()
                .await
                .map_err(unavailable)?;
            created
                .user_pool_client()
                .and_then(|c| c.client_id())
                .ok_or_else(|| IdentityError::Unavailable("Cognito returned no client id".into()))?
                .to_owned()
        }
    };
    let described = client
        .describe_user_pool_client()
        .user_pool_id(&user_pool_id)
        .client_id(&client_id)
        .send()
        .await
        .map_err(unavailable)?;
    let client_secret = described
        .user_pool_client()
        .and_then(|c| c.client_secret())
        .map(|s| SecretString::from(s.to_owned()));
    Ok(ProvisionedPool {
        user_pool_id,
        client_id,
        client_secret,
    })
}
