//! The one place AWS SDK configuration is loaded.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the standard AWS configuration chain (environment, profile, container and instance
/// credentials). `AWS_ENDPOINT_URL` points every client at LocalStack or moto.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
