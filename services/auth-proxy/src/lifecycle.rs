//! A proxy's life: started from a configuration, served on its listeners, reloaded on SIGHUP,
//! ready once the issuer's keys and revocation feed are in.

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_kernel::Settings;
use rampart_kernel::health;
use rampart_kernel::http::{EdgeLayer, with_edge_layers};
use rampart_kernel::metrics::Registry;
use rampart_kernel::serve::{serve, serve_on_threads, threads_per_listener};
use rampart_verifier::Verifier;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};

use crate::breaker::Breakers;
use crate::config::{ConfigError, ProxyConfig};
use crate::metrics::Metrics;
use crate::phases::{Forwarder, Gateway};
use crate::ratelimit::RateLimiter;

/// A running proxy: its routes, its view of the issuer's keys and revocations, and the tasks
/// that keep that view fresh.
#[derive(Debug, Clone)]
pub struct AuthProxy(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) routes: RwLock<Arc<ProxyConfig>>,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) limiter: RateLimiter,
    pub(crate) metrics: Metrics,
    pub(crate) breakers: Arc<Breakers>,
    /// The process's registry, rendered on the admin listener.
    pub(crate) registry: Registry,
    /// The rate limiter's clock: nanoseconds since start, monotonic.
    pub(crate) started: Instant,
    pub(crate) settings: Settings,
    /// What the proxy presents to `https://` upstreams and accepts from them (mutual TLS);
    /// without it, only plain `http://` upstreams are reached.
    pub(crate) upstream_tls: Option<rustls::ClientConfig>,
}

impl AuthProxy {
    /// Starts fetching the issuer's keys and polling its revocation feed. The proxy is ready
    /// (`/readyz`) once both have answered; protected routes answer 503 until then. Its
    /// metrics go into `registry`, which its admin listener renders. `upstream_tls` is its
    /// mutual-TLS identity towards `https://` upstreams (core).
    pub fn start(
        config: ProxyConfig,
        settings: &Settings,
        registry: &Registry,
        upstream_tls: Option<rustls::ClientConfig>,
    ) -> std::io::Result<Self> {
        let verifier = Arc::new(Verifier::new(&config.issuer)?);
        verifier.spawn_refreshers();
        let breakers = Arc::new(Breakers::default());
        Ok(Self(Arc::new(Inner {
            routes: RwLock::new(Arc::new(config)),
            verifier,
            limiter: RateLimiter::default(),
            metrics: Metrics::new(registry, &breakers),
            breakers,
            registry: registry.clone(),
            started: Instant::now(),
            settings: settings.clone(),
            upstream_tls,
        })))
    }

    /// The proxy as a service, inside the shared edge ([`EdgeLayer`]): its own health routes,
    /// and everything else forwarded by route. Each service has its own pool of upstream
    /// connections: serve each from one thread
    /// ([`serve_on_threads`](rampart_kernel::serve::serve_on_threads)) so that a request and
    /// its upstream connection are driven by the same thread.
    ///
    /// A plain service rather than an axum `Router`: routing is one prefix match, and the
    /// router's per-request matching, boxing and layering were a measurable part of the proxy's
    /// CPU (docs/performance.md).
    pub fn service(
        &self,
    ) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static
    {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        // https:// upstreams are dialled here too; the TLS layer wraps the connection.
        connector.enforce_http(false);
        let probes = rampart_verifier::readiness_probes(&self.0.verifier);
        let gateway = Gateway {
            // One Arc, so that handing it to each request is a single count increment.
            forwarder: Arc::new(Forwarder {
                proxy: self.clone(),
                client: Client::builder(TokioExecutor::new()).build(self.with_tls(connector)),
            }),
            health: health::router("auth-proxy", probes),
        };
        // Every route is timed by the proxy itself, which says which bound was hit (504).
        EdgeLayer::new(&self.0.settings.http).timed_by_service().layer(gateway)
    }

    /// `connector`, taking `https://` upstreams through the proxy's mutual-TLS identity when it
    /// has one; without one, an `https://` upstream fails its handshake (no roots are trusted).
    fn with_tls(&self, connector: HttpConnector) -> HttpsConnector<HttpConnector> {
        let tls = self.0.upstream_tls.clone().unwrap_or_else(|| {
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| unreachable!("the aws-lc-rs provider supports the default versions"))
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector)
    }

    /// The admin listener's routes: `GET /metrics` (the process's registry, OpenMetrics text),
    /// inside the same edge as every other port (request id, security headers, problem+json
    /// errors). Serve it on an address only the monitoring system reaches.
    pub fn admin_router(&self) -> Router {
        with_edge_layers(self.0.registry.router(), &self.0.settings.http)
    }

    /// Serves the proxy on `listener`, from a thread per CPU (see [`Self::service`]), and its
    /// metrics on `admin` until `shutdown` is cancelled; returns once both have drained their
    /// in-flight requests.
    pub async fn serve(
        &self,
        listener: TcpListener,
        admin: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let http = &self.0.settings.http;
        let services = (0..threads_per_listener()).map(|_| self.service()).collect();
        tokio::try_join!(
            serve_on_threads(listener, services, http, shutdown.clone()),
            serve(admin, self.admin_router(), http, shutdown),
        )?;
        Ok(())
    }

    /// Replaces the routes. The issuer section cannot change while running (its keys and feed
    /// are already being followed): such a configuration is refused and the old one kept.
    pub fn reload(&self, config: ProxyConfig) -> Result<(), ConfigError> {
        let mut current = self.0.routes.write().unwrap_or_else(PoisonError::into_inner);
        if config.issuer != current.issuer {
            return Err(ConfigError::new("issuer", "changes to [issuer] need a restart"));
        }
        *current = Arc::new(config);
        Ok(())
    }

    /// Reloads the configuration file on every SIGHUP; a file that fails to load or check is
    /// logged with the reason and the running configuration stays.
    pub fn reload_on_sighup(&self, path: PathBuf) -> std::io::Result<()> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let proxy = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let reloaded = ProxyConfig::load(&path).and_then(|config| proxy.reload(config));
                proxy.0.metrics.reload(reloaded.is_ok());
                match reloaded {
                    Ok(()) => tracing::info!(path = %path.display(), "routes reloaded"),
                    Err(error) => {
                        tracing::error!(path = %path.display(), %error, "reload refused; the running routes stay");
                    }
                }
            }
        });
        Ok(())
    }

    pub(crate) fn config(&self) -> Arc<ProxyConfig> {
        Arc::clone(&self.0.routes.read().unwrap_or_else(PoisonError::into_inner))
    }
}
