//! The AWS adapter: Secrets Manager secrets named `<resource_prefix>/<name>`.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use rampart_kernel::schema::secret_name;
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::{SecretError, SecretSink, SecretSource};

#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
    prefix: String,
}

fn unavailable(error: impl std::error::Error) -> SecretError {
    SecretError::Unavailable(DisplayErrorContext(&error).to_string())
}

impl SecretsManagerSource {
    pub fn new(client: Client, resource_prefix: &str) -> Self {
        Self {
            client,
            prefix: resource_prefix.to_owned(),
        }
    }

    /// The secrets under `resource_prefix` in the account and region of `aws`.
    pub fn from_sdk_config(aws: &aws_types::SdkConfig, resource_prefix: &str) -> Self {
        Self::new(Client::new(aws), resource_prefix)
    }
}

#[async_trait::async_trait]
impl SecretSource for SecretsManagerSource {
    #[instrument(name = "secrets.get", skip(self))]
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_name(&self.prefix, name))
            .send()
            .await;
        match result {
            Ok(output) => output
                .secret_string
                .map(SecretString::from)
                .ok_or_else(|| SecretError::NotFound(name.to_owned())),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Err(SecretError::NotFound(name.to_owned()))
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

#[async_trait::async_trait]
impl SecretSink for SecretsManagerSource {
    #[instrument(name = "secrets.put", skip(self, value))]
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let id = secret_name(&self.prefix, name);
        let updated = self
            .client
            .put_secret_value()
            .secret_id(&id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(&id)
                    .description("managed by rampart")
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(unavailable)
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}
