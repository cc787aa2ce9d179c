//! The rotation function on AWS Lambda: configuration from the environment only.

use lambda_runtime::{LambdaEvent, service_fn};
use rampart_kernel::Settings;
use rampart_rotate_secret_function::Rotator;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = Settings::load(None)?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-rotate-secret", &settings.telemetry)?;
    // The SDK client is built once per cold start and shared by every invocation.
    let rotator = Rotator::from_settings(&settings).await?;
    let rotator = &rotator;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rotator.handle(event.payload).await
    }))
    .await
}
