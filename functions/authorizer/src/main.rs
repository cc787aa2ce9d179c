//! The authorizer on AWS Lambda: configuration from the environment only.

use lambda_runtime::{LambdaEvent, service_fn};
use rampart_authorizer_function::Authorizer;
use rampart_kernel::Settings;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = Settings::load(None)?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-authorizer", &settings.telemetry)?;
    // Built once per cold start: keys, revocations and verified tokens carry over between
    // invocations of a warm sandbox.
    let authorizer = Authorizer::from_settings(&settings)?;
    let authorizer = &authorizer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        authorizer.handle(event.payload).await
    }))
    .await
}
