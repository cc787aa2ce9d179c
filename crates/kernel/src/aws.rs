//! The one place AWS SDK configuration is loaded.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

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
/// credentials), with [`timeouts`], every call [`traced`]. `AWS_ENDPOINT_URL` points every
/// client at LocalStack or moto.
pub async fn sdk_config() -> SdkConfig {
    traced(
        aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts())
            .load()
            .await,
    )
}

/// `config` with every AWS call carrying the trace it is part of in `X-Amzn-Trace-Id` (parent:
/// the span that made the call), so X-Ray joins the calls to the request that made them. The SDK
/// sets that header only on Lambda, from the function's own segment; a header already set is
/// left alone. Signing leaves the header out, so adding it after signing is allowed.
pub fn traced(config: SdkConfig) -> SdkConfig {
    // The SDK's own default: hyper 1 with rustls on aws-lc.
    let inner = config.http_client().unwrap_or_else(|| {
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .build_https()
    });
    config.to_builder().http_client(TracedClient(inner)).build()
}

#[derive(Debug)]
struct TracedClient(SharedHttpClient);

impl HttpClient for TracedClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(TracedConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct TracedConnector(SharedHttpConnector);

impl HttpConnector for TracedConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        if !request.headers().contains_key(X_AMZN_TRACE_ID) {
            let mut trace = http::HeaderMap::new();
            crate::telemetry::inject_current_context(&mut trace);
            if let Some(value) = trace.get(X_AMZN_TRACE_ID).and_then(|v| v.to_str().ok()) {
                request.headers_mut().insert(X_AMZN_TRACE_ID, value.to_owned());
            }
        }
        self.0.call(request)
    }
}

const X_AMZN_TRACE_ID: &str = "x-amzn-trace-id";

/// The SDK configuration the settings call for: loaded with `backend = "aws"`, none with the
/// embedded backend (whose adapters need no AWS at all).
pub async fn sdk_config_for(settings: &Settings) -> Option<SdkConfig> {
    match settings.backend {
        Backend::Aws => Some(sdk_config().await),
        Backend::Embedded => None,
    }
}
