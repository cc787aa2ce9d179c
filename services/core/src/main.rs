//! core as its own process (EKS): the API on `listen.core`; its metrics, `/healthz` and `/readyz`
//! on `listen.admin`, the plain listener the kubelet probes; SIGTERM or Ctrl-C drains both and
//! exits.

use rampart_kernel::Settings;
use rampart_kernel::http::with_edge_layers;
use rampart_kernel::metrics::Registry;
use rampart_kernel::serve::{bind, serve, serve_with, shutdown_signal};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let settings = Settings::load(None)?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-core", &settings.telemetry)?;
    let aws = rampart_kernel::aws::sdk_config_for(&settings).await;
    let store = rampart_store::connect(&settings, aws.as_ref())?;
    let secrets = rampart_secrets::connect(&settings, aws.as_ref()).await?;
    let core = rampart_core::Core::connect(&settings, aws.as_ref(), store, secrets).await?;
    let listener = bind(settings.listen.core)
        .await
        .map_err(|e| format!("listen.core {}: {e}", settings.listen.core))?;
    let admin = bind(settings.listen.admin)
        .await
        .map_err(|e| format!("listen.admin {}: {e}", settings.listen.admin))?;
    tracing::info!(addr = %listener.local_addr()?, admin = %admin.local_addr()?, "core listening");
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let (shutdown, stop) = (shutdown.clone(), shutdown_signal());
        async move {
            stop.await;
            shutdown.cancel();
        }
    });
    let metrics = Registry::default();
    // With mtls.enabled, only the auth-proxy's certificate is served (CA under data_dir/pki).
    rampart_pki::check_issuer_for_standalone(&settings)?;
    let tls = rampart_pki::connect(&settings, "core", "auth-proxy").await?;
    // The kubelet cannot present the auth-proxy's certificate: it probes the admin listener.
    let admin_routes = metrics.router().merge(rampart_core::health_router(&core));
    let api = rampart_core::router(core, &settings, &metrics);
    let api_shutdown = shutdown.clone();
    let api = async {
        let shutdown = api_shutdown;
        match &tls {
            Some(tls) => {
                rampart_pki::register_metrics(&metrics, tls);
                let acceptor = rampart_pki::MtlsAcceptor::new(tls);
                serve_with(listener, acceptor, api, &settings.http, shutdown.clone()).await
            }
            None => serve(listener, api, &settings.http, shutdown.clone()).await,
        }
    };
    tokio::try_join!(
        api,
        serve(
            admin,
            with_edge_layers(admin_routes, &settings.http),
            &settings.http,
            shutdown
        ),
    )?;
    Ok(())
}
