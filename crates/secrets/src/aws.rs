//! The AWS adapter: Secrets Manager secrets named `<resource_prefix>/<name>`.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use rampart_kernel::schema::secret_name;
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::{Rotated, SecretError, SecretSink, SecretSource};

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

    /// The value `name` holds at `stage` (`AWSCURRENT` when `None`); `None` if no version
    /// carries that stage, or the secret does not exist.
    async fn at_stage(&self, name: &str, stage: Option<&str>) -> Result<Option<SecretString>, SecretError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_name(&self.prefix, name))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.secret_string.map(SecretString::from)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

#[async_trait::async_trait]
impl SecretSource for SecretsManagerSource {
    #[instrument(name = "secrets.get", skip(self))]
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.at_stage(name, None)
            .await?
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))
    }

    /// `AWSCURRENT` and `AWSPREVIOUS`: the version a rotation's `finishSecret` moved
    /// `AWSCURRENT` from. `AWSPENDING` is never served: it is not the secret until the
    /// rotation has tested it.
    #[instrument(name = "secrets.get_with_previous", skip(self))]
    async fn get_with_previous(&self, name: &str) -> Result<Rotated, SecretError> {
        let current = self.get(name).await?;
        let previous = self.at_stage(name, Some("AWSPREVIOUS")).await?;
        Ok(Rotated { current, previous })
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
