//! The Secrets Manager rotation function for the secrets Rampart makes itself (`"generated": true`
//! in the schema, e.g. `core/cursor-key`): AWS's rotation template, in Rust.
//!
//! Secrets Manager starts a rotation by adding an empty version, labelled `AWSPENDING`, whose id
//! is the event's `ClientRequestToken`, then invokes this function once per step:
//! - `createSecret` puts a new value, from [`rampart_secrets::generate`], into that version;
//! - `setSecret` has nothing to do: no other system holds these keys;
//! - `testSecret` refuses a value that is not a well-formed Rampart key, and abandons its version
//!   (removes `AWSPENDING`), so a failed rotation never blocks the next one;
//! - `finishSecret` moves `AWSCURRENT` to the version (Secrets Manager then labels the one it
//!   left `AWSPREVIOUS`, which services still accept while the rotation settles) and removes
//!   `AWSPENDING`.
//!
//! Every step can run again, in any order after a failure, and changes nothing the second time:
//! a version that is already `AWSCURRENT` ends the step at once, and only a version labelled
//! `AWSPENDING` is worked on. Only the generated secrets under the configured prefix are rotated,
//! the same ones the function's IAM role is granted. No value is logged or put in an error.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rampart_kernel::schema::{schema, secret_name};
use rampart_kernel::{ConfigError, Settings};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tracing::instrument;

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// Why a step failed: the Lambda error Secrets Manager and the function's logs record, so none
/// carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("not a Secrets Manager rotation event: {0}")]
    BadEvent(String),
    #[error("secret {0} is not one Rampart generates under this prefix: this function does not rotate it")]
    NotRotatable(String),
    #[error("rotation is not enabled on secret {0}")]
    RotationDisabled(String),
    #[error("{token} is not a version of secret {secret}")]
    UnknownVersion { secret: String, token: String },
    #[error("version {token} of secret {secret} is not AWSPENDING")]
    NotPending { secret: String, token: String },
    #[error("version {token} of secret {secret} has no value yet: createSecret has not run")]
    NoValue { secret: String, token: String },
    #[error("the value of version {token} of secret {secret} is not a well-formed Rampart key")]
    Malformed { secret: String, token: String },
    #[error("no new value: {0}")]
    Generate(#[from] rampart_secrets::SecretError),
    #[error("Secrets Manager {operation} failed: {message}")]
    Aws { operation: &'static str, message: String },
}

impl From<RotationError> for lambda_runtime::Diagnostic {
    fn from(error: RotationError) -> Self {
        let error_type = match error {
            RotationError::BadEvent(_) => "BadEvent",
            RotationError::NotRotatable(_) => "NotRotatable",
            RotationError::RotationDisabled(_) => "RotationDisabled",
            RotationError::UnknownVersion { .. } => "UnknownVersion",
            RotationError::NotPending { .. } => "NotPending",
            RotationError::NoValue { .. } => "NoValue",
            RotationError::Malformed { .. } => "Malformed",
            RotationError::Generate(_) => "Generate",
            RotationError::Aws { .. } => "SecretsManager",
        };
        Self {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// An SDK error as text: what Secrets Manager said, never a request's parameters.
fn aws<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> RotationError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    move |error| RotationError::Aws {
        operation,
        message: DisplayErrorContext(&error).to_string(),
    }
}

/// The event Secrets Manager sends for each step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationEvent {
    step: Step,
    /// The secret's ARN (or its name).
    secret_id: String,
    /// The id of the version this rotation makes.
    client_request_token: String,
    /// Proves to Secrets Manager that a write comes from this rotation; sensitive, so redacted.
    #[serde(default)]
    rotation_token: Option<SecretString>,
}

/// The `Step` values, as Secrets Manager spells them.
#[derive(Debug, Deserialize)]
enum Step {
    #[serde(rename = "createSecret")]
    Create,
    #[serde(rename = "setSecret")]
    Set,
    #[serde(rename = "testSecret")]
    Test,
    #[serde(rename = "finishSecret")]
    Finish,
}

/// What DescribeSecret says of the secret being rotated.
#[derive(Debug)]
struct Secret {
    arn: String,
    name: String,
    /// Each version's id and its staging labels.
    versions: HashMap<String, Vec<String>>,
}

impl Secret {
    fn version_with(&self, label: &str) -> Option<&str> {
        (self.versions.iter())
            .find(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| id.as_str())
    }

    fn has_label(&self, token: &str, label: &str) -> bool {
        self.versions
            .get(token)
            .is_some_and(|labels| labels.iter().any(|l| l == label))
    }
}

/// Rotates the generated secrets under one resource prefix; built once per Lambda sandbox.
#[derive(Debug)]
pub struct Rotator {
    client: Client,
    /// The full names (`<prefix>/<name>`) of the secrets this function may rotate.
    rotatable: Vec<String>,
}

impl Rotator {
    /// Rotates the generated secrets under `resource_prefix` in the account and region of `aws`.
    pub fn new(aws: &aws_types::SdkConfig, resource_prefix: &str) -> Self {
        let rotatable = (schema().secrets.iter())
            .filter(|(_, secret)| secret.generated)
            .map(|(name, _)| secret_name(resource_prefix, name))
            .collect();
        Self {
            client: Client::new(aws),
            rotatable,
        }
    }

    /// The rotator the settings describe. The secrets are in Secrets Manager, so the settings must
    /// select the AWS backend.
    pub async fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let aws = rampart_kernel::aws::sdk_config_for(settings).await.ok_or_else(|| {
            ConfigError::new(
                "backend",
                "must be \"aws\": this function rotates Secrets Manager secrets",
            )
        })?;
        Ok(Self::new(&aws, &settings.resource_prefix))
    }

    /// Runs one rotation step.
    pub async fn handle(&self, event: Value) -> Result<(), RotationError> {
        let event: RotationEvent = serde_json::from_value(event).map_err(|e| RotationError::BadEvent(e.to_string()))?;
        // Boxed: laid out inline, the SDK's nested futures take the Lambda runtime's service past
        // the compiler's query depth limit.
        Box::pin(self.step(&event)).await
    }

    /// The checks every step makes first, then the step itself on a pending version.
    #[instrument(
        name = "rotate_secret.step",
        skip_all,
        fields(step = ?event.step, secret_id = %event.secret_id, token = %event.client_request_token)
    )]
    async fn step(&self, event: &RotationEvent) -> Result<(), RotationError> {
        let token = event.client_request_token.as_str();
        let secret = self.describe(&event.secret_id).await?;
        if !secret.versions.contains_key(token) {
            return Err(RotationError::UnknownVersion {
                secret: secret.name,
                token: token.to_owned(),
            });
        }
        if secret.has_label(token, CURRENT) {
            tracing::info!("version already current: nothing to do");
            return Ok(());
        }
        if !secret.has_label(token, PENDING) {
            return Err(RotationError::NotPending {
                secret: secret.name,
                token: token.to_owned(),
            });
        }
        match event.step {
            Step::Create => self.create(&secret, token, event.rotation_token.as_ref()).await,
            // Nothing outside Secrets Manager holds the key; the value must be there all the same.
            Step::Set => self.pending_value(&secret, token).await.map(drop),
            Step::Test => self.test_or_abandon(&secret, token).await,
            Step::Finish => self.finish(&secret, token).await,
        }
    }

    /// The secret `secret_id` names, if it is one this function rotates and rotation is enabled on
    /// it. Its name comes from Secrets Manager, so an ARN and a name are checked alike.
    #[instrument(name = "rotate_secret.describe", skip_all)]
    async fn describe(&self, secret_id: &str) -> Result<Secret, RotationError> {
        let output = (self.client.describe_secret().secret_id(secret_id).send())
            .await
            .map_err(aws("DescribeSecret"))?;
        let (Some(arn), Some(name)) = (output.arn, output.name) else {
            return Err(RotationError::Aws {
                operation: "DescribeSecret",
                message: format!("no ARN and name for {secret_id}"),
            });
        };
        if !self.rotatable.contains(&name) {
            return Err(RotationError::NotRotatable(name));
        }
        if output.rotation_enabled != Some(true) {
            return Err(RotationError::RotationDisabled(name));
        }
        Ok(Secret {
            arn,
            name,
            versions: output.version_ids_to_stages.unwrap_or_default(),
        })
    }

    /// The version's value; [`RotationError::NoValue`] while it is still the empty version
    /// Secrets Manager began the rotation with.
    async fn pending_value(&self, secret: &Secret, token: &str) -> Result<SecretString, RotationError> {
        let result = (self.client.get_secret_value())
            .secret_id(&secret.arn)
            .version_id(token)
            .version_stage(PENDING)
            .send()
            .await;
        let no_value = || RotationError::NoValue {
            secret: secret.name.clone(),
            token: token.to_owned(),
        };
        match result {
            Ok(output) => output.secret_string.map(SecretString::from).ok_or_else(no_value),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Err(no_value()),
            Err(error) => Err(aws("GetSecretValue")(error)),
        }
    }

    /// Puts a new key into the pending version, unless an earlier run of this step already did:
    /// Secrets Manager keeps a version's value once written, so a second key would be refused.
    #[instrument(name = "rotate_secret.create", skip_all)]
    async fn create(
        &self,
        secret: &Secret,
        token: &str,
        rotation_token: Option<&SecretString>,
    ) -> Result<(), RotationError> {
        match self.pending_value(secret, token).await {
            Ok(_) => {
                tracing::info!("pending version already has a value");
                return Ok(());
            }
            Err(RotationError::NoValue { .. }) => {}
            Err(error) => return Err(error),
        }
        let value = rampart_secrets::generate()?;
        (self.client.put_secret_value())
            .secret_id(&secret.arn)
            .client_request_token(token)
            .secret_string(value.expose_secret())
            .version_stages(PENDING)
            .set_rotation_token(rotation_token.map(|t| t.expose_secret().to_owned()))
            .send()
            .await
            .map_err(aws("PutSecretValue"))?;
        tracing::info!("new key put in the pending version");
        Ok(())
    }

    /// Refuses a pending value that is not what [`rampart_secrets::generate`] makes.
    #[instrument(name = "rotate_secret.test", skip_all)]
    async fn test(&self, secret: &Secret, token: &str) -> Result<(), RotationError> {
        if is_rampart_key(&self.pending_value(secret, token).await?) {
            Ok(())
        } else {
            Err(RotationError::Malformed {
                secret: secret.name.clone(),
                token: token.to_owned(),
            })
        }
    }

    /// [`Self::test`]; a value that fails it is abandoned: its `AWSPENDING` label is removed,
    /// so the rotation ends failed and the next one starts afresh (Secrets Manager would
    /// otherwise retry this version at every rotation, and never get past it).
    async fn test_or_abandon(&self, secret: &Secret, token: &str) -> Result<(), RotationError> {
        let Err(error) = self.test(secret, token).await else {
            return Ok(());
        };
        if matches!(error, RotationError::Malformed { .. }) {
            self.remove_pending(secret, token).await?;
            tracing::warn!("pending value failed its test; the version is abandoned");
        }
        Err(error)
    }

    /// Makes the pending version current and clears `AWSPENDING`, which ends the rotation. The
    /// value is tested again first, so no sequence of steps ever makes a bad key current. A fault
    /// between the two calls leaves both labels on the new version, which AWS also counts as a
    /// finished rotation (a run again finds it current and does nothing).
    #[instrument(name = "rotate_secret.finish", skip_all)]
    async fn finish(&self, secret: &Secret, token: &str) -> Result<(), RotationError> {
        self.test(secret, token).await?;
        (self.client.update_secret_version_stage())
            .secret_id(&secret.arn)
            .version_stage(CURRENT)
            .move_to_version_id(token)
            .set_remove_from_version_id(secret.version_with(CURRENT).map(str::to_owned))
            .send()
            .await
            .map_err(aws("UpdateSecretVersionStage"))?;
        self.remove_pending(secret, token).await?;
        tracing::info!("version is now current");
        Ok(())
    }

    /// Takes `AWSPENDING` off the version `token`.
    async fn remove_pending(&self, secret: &Secret, token: &str) -> Result<(), RotationError> {
        (self.client.update_secret_version_stage())
            .secret_id(&secret.arn)
            .version_stage(PENDING)
            .remove_from_version_id(token)
            .send()
            .await
            .map_err(aws("UpdateSecretVersionStage"))?;
        Ok(())
    }
}

/// What [`rampart_secrets::generate`] makes: 64 base64 characters encoding 48 random bytes.
fn is_rampart_key(value: &SecretString) -> bool {
    use base64::Engine as _;
    let text = value.expose_secret();
    text.len() == 64
        && base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(zeroize::Zeroizing::new)
            .is_ok_and(|bytes| bytes.len() == 48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_generate_makes_is_a_rampart_key() {
        let key = rampart_secrets::generate().expect("generate");
        assert!(is_rampart_key(&key));
        for bad in [
            "",
            "short",
            &"A".repeat(63),
            // 64 characters, but not base64.
            &"!".repeat(64),
            // 64 base64 characters with padding: 46 bytes.
            &format!("{}==", "A".repeat(62)),
            // 88 characters: 64 bytes, too long.
            &"A".repeat(88),
        ] {
            assert!(!is_rampart_key(&SecretString::from(bad)), "{bad:?}");
        }
    }

    #[test]
    fn an_event_never_shows_its_rotation_token() {
        let event: RotationEvent = serde_json::from_value(serde_json::json!({
            "Step": "createSecret",
            "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:p/core/cursor-key-AbCdEf",
            "ClientRequestToken": "7e9f0a52-3c1a-4d5b-8f77-0d6c2f1b9a11",
            "RotationToken": "rotation-token-value",
        }))
        .expect("event");
        assert!(matches!(event.step, Step::Create));
        assert!(!format!("{event:?}").contains("rotation-token-value"));
    }

    #[test]
    fn an_unknown_step_is_a_bad_event() {
        let event = serde_json::json!({"Step": "dropSecret", "SecretId": "x", "ClientRequestToken": "y"});
        assert!(serde_json::from_value::<RotationEvent>(event).is_err());
    }

    #[tokio::test]
    async fn starting_without_the_aws_backend_names_the_setting() {
        let error = Rotator::from_settings(&Settings::default())
            .await
            .expect_err("embedded backend");
        assert_eq!(error.key, "backend");
    }
}
