//! core: the multi-tenant business API. Organisations (the tenants), their members, projects
//! and documents, and each organisation's audit log.
//!
//! Modules depend one way: `permissions` (the role × action matrix) and `records` (how items
//! are kept) → `error` → `pages` (limits, cursors, a page of a list) → `caller` (the bearer
//! token, checked here) →
//! `audit` (the guard in front of every organisation route, and the log) → `idempotency`
//! (`Idempotency-Key` on POSTs) → handlers (`orgs`,
//! `members`, `projects`, `documents`) → `openapi` → this router.
//!
//! Zero trust: core checks every bearer token itself against the issuer's keys and revocation
//! feed (`rampart_verifier`), so a revoked session or a request sent around the proxy is
//! refused here too. Each organisation has its own data keys (`rampart_envelope`); deleting
//! one destroys them first.

pub mod audit;
pub mod caller;
pub mod documents;
pub mod error;
pub mod idempotency;
pub mod members;
pub mod openapi;
pub mod orgs;
pub mod pages;
pub mod permissions;
pub mod projects;
pub mod records;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use rampart_envelope::TenantKeys;
use rampart_kernel::Settings;
use rampart_kernel::health::{self, ReadinessProbe};
use rampart_kernel::metrics::Registry;
use rampart_store::ItemStore;
use rampart_verifier::{IssuerConfig, Verifier};

/// What every core handler shares.
#[derive(Debug, Clone)]
pub struct Core(Arc<CoreState>);

#[derive(Debug)]
pub struct CoreState {
    pub store: Arc<dyn ItemStore>,
    pub keys: Arc<TenantKeys>,
    pub verifier: Arc<Verifier>,
    pub cursors: Arc<pages::Cursors>,
    /// Where the cursor key is read; its state is in `/readyz` and the metrics.
    pub secrets: Arc<dyn rampart_secrets::SecretSource>,
    /// How long an audit record is kept (`audit.retention_days`).
    pub audit_retention_secs: i64,
    /// How long an `Idempotency-Key` stays leased to a request that has not answered: past the
    /// edge's request timeout, by when the request is cancelled.
    pub idempotency_lease_secs: i64,
}

impl Deref for Core {
    type Target = CoreState;
    fn deref(&self) -> &CoreState {
        &self.0
    }
}

/// A start-up failure, naming the setting or backend that caused it.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

impl Core {
    /// core on the settings' backends: the tenant keys on `store` (the local key-encryption key
    /// in `secrets`, the process's one handle on them), the cursor key from `secrets` (read
    /// again every `secrets.refresh_secs`), and a verifier that follows the issuer whose auth
    /// API is at `core.auth_url` (default `tokens.issuer`), refreshing in the background.
    pub async fn connect(
        settings: &Settings,
        aws: Option<&aws_types::SdkConfig>,
        store: Arc<dyn ItemStore>,
        secrets: Arc<dyn rampart_secrets::SecretSource>,
    ) -> Result<Self, StartupError> {
        let keys = rampart_envelope::connect(settings, aws, Arc::clone(&store), &*secrets).await?;
        let auth = settings.core.auth_url.as_deref().unwrap_or(&settings.tokens.issuer);
        let issuer = IssuerConfig::for_platform(settings, auth)?;
        issuer.check()?;
        let verifier = Arc::new(Verifier::new(&issuer)?);
        verifier.spawn_refreshers();
        let cursors = Arc::new(pages::Cursors::load(&*secrets).await?);
        pages::Cursors::keep_fresh(
            &cursors,
            Arc::clone(&secrets),
            Duration::from_secs(settings.secrets.refresh_secs),
        );
        Ok(Self(Arc::new(CoreState {
            store,
            keys: Arc::new(keys),
            verifier,
            cursors,
            secrets,
            audit_retention_secs: i64::from(settings.audit.retention_days) * 86_400,
            idempotency_lease_secs: i64::try_from(settings.http.request_timeout_secs)
                .unwrap_or(i64::MAX)
                .saturating_add(5),
        })))
    }
}

/// core's `/healthz`, `/readyz` and `/version`: on its API port ([`router`]) and on its plain
/// admin listener, where the kubelet probes it (the API port takes only the auth-proxy's client
/// certificate). Ready once its table answers and the issuer's keys and revocation feed are in,
/// and while its secret source can read.
pub fn health_router(core: &Core) -> Router {
    let mut probes = vec![rampart_store::readiness_probe(&core.store, rampart_store::Table::Core)];
    probes.extend(rampart_verifier::readiness_probes(&core.verifier));
    probes.push(Arc::new(rampart_secrets::SecretsProbe(Arc::clone(&core.secrets))) as Arc<dyn ReadinessProbe>);
    health::router("core", probes)
}

/// core's routes and [`health_router`] inside the shared edge layers, its requests and secret
/// source counted in `metrics`.
pub fn router(core: Core, settings: &Settings, metrics: &Registry) -> Router {
    let health = health_router(&core);
    rampart_secrets::register_metrics(metrics, Arc::clone(&core.secrets));
    let orgs = Router::new()
        .route("/v1/orgs", get(orgs::list).post(orgs::create))
        .route("/v1/orgs/{org}", get(orgs::get).patch(orgs::patch).delete(orgs::delete))
        .route("/v1/orgs/{org}/audit", get(audit::list))
        .route("/v1/orgs/{org}/members", get(members::list).post(members::add))
        .route(
            "/v1/orgs/{org}/members/{user}",
            axum::routing::patch(members::patch).delete(members::remove),
        )
        .route("/v1/orgs/{org}/projects", get(projects::list).post(projects::create))
        .route(
            "/v1/orgs/{org}/projects/{project}",
            get(projects::get).patch(projects::patch).delete(projects::delete),
        )
        // Every route takes the usual body limit but documents, which take theirs, below.
        .layer(DefaultBodyLimit::max(settings.http.body_limit_bytes));
    let documents = Router::new()
        .route(
            "/v1/orgs/{org}/projects/{project}/documents",
            get(documents::list).post(documents::create),
        )
        .route(
            "/v1/orgs/{org}/projects/{project}/documents/{document}",
            get(documents::get)
                .put(documents::put)
                .patch(documents::patch)
                .delete(documents::delete),
        )
        .layer(DefaultBodyLimit::max(documents::REQUEST_LIMIT_BYTES));
    // The guard first (the caller, and the audit of refusals), then idempotent POSTs.
    let guard = axum::middleware::from_fn_with_state(core.clone(), audit::guard);
    let idempotent = axum::middleware::from_fn_with_state(core.clone(), idempotency::layer);
    let api = Router::new()
        .route("/v1/version", get(|| async { axum::Json(health::version("core")) }))
        .route("/v1/openapi.json", get(openapi::openapi))
        .merge(orgs.merge(documents).route_layer(idempotent).route_layer(guard));
    let api = api.with_state(core).merge(health);
    // The edge admits the largest body a route takes; each route holds its own limit.
    let mut http = settings.http.clone();
    http.body_limit_bytes = http.body_limit_bytes.max(documents::REQUEST_LIMIT_BYTES);
    rampart_kernel::http::with_edge_layers(api, &http).layer(metrics.http_layer("core"))
}
