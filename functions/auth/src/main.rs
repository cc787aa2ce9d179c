//! The auth function on AWS Lambda: configuration from the environment only.

use rampart_auth_function::{Backends, StartupError, from_api_gateway, router};
use rampart_kernel::Settings;
use rampart_kernel::metrics::Registry;

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let settings = Settings::load(None)?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-auth", &settings.telemetry)?;
    let aws = rampart_kernel::aws::sdk_config_for(&settings).await;
    // Clients are built once per cold start and shared by every invocation.
    let backends = Backends::connect(&settings, aws.as_ref()).await?;
    // No listener to scrape on Lambda: security counts go out as EMF lines in the logs.
    let app = tower::ServiceExt::map_request(router(backends, &settings, &Registry::for_lambda()), from_api_gateway);
    lambda_http::run(app).await
}
