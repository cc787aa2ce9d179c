//! The one place AWS SDK configuration is loaded.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::{Backend, Settings};

/// Loads the standard AWS configuration chain (environment, profile, container and instance
/// credentials). `AWS_ENDPOINT_URL` points every client at LocalStack or moto.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The SDK configuration the settings call for: loaded with `backend = "aws"`, none with the
/// embedded backend (whose adapters need no AWS at all).
pub async fn sdk_config_for(settings: &Settings) -> Option<SdkConfig> {
    match settings.backend {
        Backend::Aws => Some(sdk_config().await),
        Backend::Embedded => None,
    }
}
