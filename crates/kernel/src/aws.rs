//! The one place AWS SDK configuration is loaded.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::{Backend, Settings};

/// How long an AWS call may take. The SDK sets no limit on an attempt by default, so an endpoint
/// that accepts connections and never answers would hold a request until the edge's timeout.
/// With these, a call gives up (and the request answers 503) after 8 seconds at most, below the
/// edge's default of 10, whatever the SDK's retries.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// Loads the standard AWS configuration chain (environment, profile, container and instance
/// credentials), with [`timeouts`]. `AWS_ENDPOINT_URL` points every client at LocalStack or moto.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .load()
        .await
}

/// The SDK configuration the settings call for: loaded with `backend = "aws"`, none with the
/// embedded backend (whose adapters need no AWS at all).
pub async fn sdk_config_for(settings: &Settings) -> Option<SdkConfig> {
    match settings.backend {
        Backend::Aws => Some(sdk_config().await),
        Backend::Embedded => None,
    }
}
