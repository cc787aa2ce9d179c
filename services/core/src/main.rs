//! core as its own process (EKS): listens on `listen.core`.

use rampart_kernel::Settings;
use rampart_kernel::serve::{bind, serve, shutdown_signal};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let settings = Settings::load(None)?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-core", &settings.telemetry)?;
    let aws = rampart_kernel::aws::sdk_config_for(&settings).await;
    let store = rampart_store::connect(&settings, aws.as_ref())?;
    let listener = bind(settings.listen.core).await?;
    tracing::info!(addr = %listener.local_addr()?, "core listening");
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    serve(
        listener,
        rampart_core::router(store, &settings),
        &settings.http,
        shutdown,
    )
    .await?;
    Ok(())
}
