//! `rampart up`: the local platform. Three real servers on loopback, wired as in production:
//! auth-proxy in front of the auth API and core.

use std::path::PathBuf;

use rampart_auth_function::Backends;
use rampart_auth_proxy::{AuthProxy, ProxyConfig};
use rampart_kernel::forwarded::TrustedProxies;
use rampart_kernel::metrics::Registry;
use rampart_kernel::serve::{bind, serve, serve_with, shutdown_signal};
use rampart_kernel::{Backend, Settings};
use rampart_pki::{MtlsAcceptor, MutualTls};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// With mTLS on, core speaks only TLS: a route to it over `http://` could never be answered,
/// so it stops start-up, naming the route.
fn refuse_plain_routes_to_core(config: &ProxyConfig, core: std::net::SocketAddr, mtls: bool) -> Result<(), Error> {
    let plain_to_core = config.routes.iter().find(|route| {
        route.upstream.scheme_str() == Some("http")
            && route
                .upstream
                .authority()
                .is_some_and(|authority| authority.as_str() == core.to_string())
    });
    match plain_to_core {
        Some(route) if mtls => Err(format!(
            "route {}: core at {core} takes only mutual TLS (mtls.enabled), so its upstream must be https://{core}",
            route.prefix
        )
        .into()),
        _ => Ok(()),
    }
}

pub async fn run(settings: Settings, routes_file: Option<PathBuf>) -> Result<(), Error> {
    let _telemetry = rampart_kernel::telemetry::init("rampart", &settings.telemetry)?;
    let aws = rampart_kernel::aws::sdk_config_for(&settings).await;
    let backends = Backends::connect(&settings, aws.as_ref()).await?;

    // Bind everything first: a taken port fails start-up before anything serves.
    let auth_listener = bind(settings.listen.auth)
        .await
        .map_err(|e| format!("listen.auth {}: {e}", settings.listen.auth))?;
    let core_listener = bind(settings.listen.core)
        .await
        .map_err(|e| format!("listen.core {}: {e}", settings.listen.core))?;
    let proxy_listener = bind(settings.listen.proxy)
        .await
        .map_err(|e| format!("listen.proxy {}: {e}", settings.listen.proxy))?;
    let admin_listener = bind(settings.listen.admin)
        .await
        .map_err(|e| format!("listen.admin {}: {e}", settings.listen.admin))?;
    let (auth_addr, core_addr, proxy_addr, admin_addr) = (
        auth_listener.local_addr()?,
        core_listener.local_addr()?,
        proxy_listener.local_addr()?,
        admin_listener.local_addr()?,
    );

    let (store, secrets) = (backends.store.clone(), backends.secrets.clone());
    // The proxy in front reaches auth over loopback, so auth believes its X-Forwarded-For.
    let mut auth_settings = settings.clone();
    auth_settings.http.trusted_proxies = settings.http.trusted_proxies.clone().with(&TrustedProxies::loopback());
    // The proxy strips any client address header and names the client in X-Forwarded-For.
    auth_settings.http.client_address_header = None;
    // One process, one registry: the admin listener shows the proxy's, auth's and core's metrics.
    let metrics = Registry::default();
    let auth = rampart_auth_function::router(backends, &auth_settings, &metrics);
    // core checks every token itself, against the auth API it runs beside.
    let mut core_settings = settings.clone();
    core_settings.core.auth_url = Some(format!("http://{auth_addr}"));
    let core = rampart_core::Core::connect(&core_settings, aws.as_ref(), store, secrets.clone()).await?;
    let core = rampart_core::router(core, &settings, &metrics);
    // The proxy-to-core hop is mutually authenticated unless mtls.enabled = false.
    let core_tls = rampart_pki::connect(&settings, "core", "auth-proxy").await?;
    let proxy_tls = rampart_pki::connect(&settings, "auth-proxy", "core").await?;
    for tls in core_tls.iter().chain(&proxy_tls) {
        rampart_pki::register_metrics(&metrics, tls);
    }
    let core_scheme = if core_tls.is_some() { "https" } else { "http" };
    let proxy_config = match &routes_file {
        Some(path) => {
            let config = ProxyConfig::load(path)?;
            refuse_plain_routes_to_core(&config, core_addr, core_tls.is_some())?;
            config
        }
        None => rampart_auth_proxy::platform_config(
            &format!("http://{auth_addr}").parse()?,
            &format!("{core_scheme}://{core_addr}").parse()?,
            &settings,
        )?,
    };
    // The proxy carries what core's document routes take (a 256 KiB body, escaped as JSON).
    let mut proxy_settings = settings.clone();
    proxy_settings.http.body_limit_bytes = proxy_settings
        .http
        .body_limit_bytes
        .max(rampart_core::documents::REQUEST_LIMIT_BYTES);
    let proxy = AuthProxy::start(
        proxy_config,
        &proxy_settings,
        &metrics,
        proxy_tls.as_ref().map(MutualTls::client_config),
    )?;
    if let Some(path) = routes_file {
        proxy.reload_on_sighup(path)?;
    }

    // Before the announcement below: a signal sent as soon as it is read stops us cleanly.
    let stop = shutdown_signal();
    let backend = match settings.backend {
        Backend::Embedded => format!("embedded, data in {}", settings.data_dir.display()),
        Backend::Aws => format!("aws, prefix {}", settings.resource_prefix),
    };
    println!("rampart {} — local platform ({backend})", env!("CARGO_PKG_VERSION"));
    println!("proxy http://{proxy_addr}  <- send requests here");
    println!("auth  http://{auth_addr}");
    match &core_tls {
        Some(_) => println!("core  https://{core_addr}  (mutual TLS: the proxy's certificate only)"),
        None => println!("core  http://{core_addr}"),
    }
    println!("admin http://{admin_addr}/metrics  <- metrics of all three");
    println!("Ctrl-C stops (in-flight requests finish first)");

    // The proxy drains first, while the services behind it still answer its in-flight requests.
    let edge = CancellationToken::new();
    let services = CancellationToken::new();
    let spawn = |listener, router, token: &CancellationToken| {
        let (http, token) = (settings.http.clone(), token.clone());
        tokio::spawn(async move { serve(listener, router, &http, token).await })
    };
    let proxy_server = {
        let edge = edge.clone();
        tokio::spawn(async move { proxy.serve(proxy_listener, admin_listener, edge).await })
    };
    let core_server = {
        let (http, token) = (settings.http.clone(), services.clone());
        tokio::spawn(async move {
            match core_tls {
                Some(tls) => serve_with(core_listener, MtlsAcceptor::new(&tls), core, &http, token).await,
                None => serve(core_listener, core, &http, token).await,
            }
        })
    };
    let service_servers = [spawn(auth_listener, auth, &services), core_server];
    stop.await;
    tracing::info!("shutting down");
    edge.cancel();
    proxy_server.await??;
    services.cancel();
    for server in service_servers {
        server.await??;
    }
    // No print here: stdout may already be closed by whoever started us.
    tracing::info!("stopped");
    Ok(())
}
