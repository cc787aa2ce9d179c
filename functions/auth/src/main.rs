//! The auth function on AWS Lambda: configuration from the environment only.

use lambda_http::LambdaEvent;
use lambda_http::request::LambdaRequest;
use rampart_auth_function::{Backends, StartupError, from_api_gateway, router, with_repeated_headers};
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
    // lambda_http::run, with each REST event's repeated header lines kept (see
    // `with_repeated_headers`).
    let handler =
        tower::ServiceExt::map_request(lambda_http::Adapter::from(app), |event: LambdaEvent<LambdaRequest>| {
            LambdaEvent::new(with_repeated_headers(event.payload), event.context)
        });
    lambda_http::lambda_runtime::run(handler).await
}
