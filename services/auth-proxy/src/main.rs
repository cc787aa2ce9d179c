//! The auth-proxy as its own process (EKS): routes from a TOML file, reloaded on SIGHUP; the
//! proxy on `listen.proxy` and its metrics on `listen.admin`; SIGTERM or Ctrl-C stops
//! accepting and drains in-flight requests (`http.drain_timeout_secs`), then exits 0.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rampart_auth_proxy::{AuthProxy, ProxyConfig};
use rampart_kernel::Settings;
use rampart_kernel::metrics::Registry;
use rampart_kernel::serve::{bind, shutdown_signal};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "rampart-auth-proxy",
    version,
    about = "Rampart's identity-aware reverse proxy"
)]
struct Cli {
    /// The routes file (TOML: [issuer], [[routes]], see docs/auth-proxy.md), reloaded on SIGHUP.
    /// The settings loader skips its variable (`NOT_SETTINGS_ENV`).
    #[arg(long, env = rampart_kernel::config::PROXY_ROUTES_ENV)]
    routes: PathBuf,
    /// TOML settings read beneath the RAMPART_* environment (default: $RAMPART_CONFIG).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// glibc's allocator took about a sixth of the proxy's CPU under load (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rampart-auth-proxy: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let settings = Settings::load(cli.config.as_deref())?;
    let _telemetry = rampart_kernel::telemetry::init("rampart-auth-proxy", &settings.telemetry)?;
    let config = ProxyConfig::load(&cli.routes)?;
    let listener = bind(settings.listen.proxy)
        .await
        .map_err(|e| format!("listen.proxy {}: {e}", settings.listen.proxy))?;
    let admin = bind(settings.listen.admin)
        .await
        .map_err(|e| format!("listen.admin {}: {e}", settings.listen.admin))?;
    // Its certificate towards https:// upstreams (core), from the CA under data_dir/pki.
    rampart_pki::check_issuer_for_standalone(&settings)?;
    let tls = rampart_pki::connect(&settings, "auth-proxy", "core").await?;
    let metrics = Registry::default();
    if let Some(tls) = &tls {
        rampart_pki::register_metrics(&metrics, tls);
    }
    let proxy = AuthProxy::start(
        config,
        &settings,
        &metrics,
        tls.as_ref().map(rampart_pki::MutualTls::client_config),
    )?;
    proxy.reload_on_sighup(cli.routes)?;
    tracing::info!(
        proxy = %listener.local_addr()?,
        admin = %admin.local_addr()?,
        "auth-proxy listening"
    );
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let (shutdown, stop) = (shutdown.clone(), shutdown_signal());
        async move {
            stop.await;
            tracing::info!("shutting down");
            shutdown.cancel();
        }
    });
    proxy.serve(listener, admin, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
