//! The auth function on AWS Lambda: configuration from the environment only.

use rampart_auth_function::{Backends, StartupError, from_api_gateway, router};
use rampart_kernel::{Backend, Settings};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let settings = Settings::load(None)?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-auth", &settings.telemetry)?;
    let aws = match settings.backend {
        Backend::Aws => Some(rampart_kernel::aws::sdk_config().await),
        Backend::Embedded => None,
    };
    // Clients are built once per cold start and shared by every invocation.
    let backends = Backends::connect(&settings, aws.as_ref()).await?;
    let app = tower::ServiceExt::map_request(router(backends, &settings), from_api_gateway);
    lambda_http::run(app).await
}
