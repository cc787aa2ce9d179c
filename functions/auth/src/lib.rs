//! The authentication API. The same router runs on Lambda (behind API Gateway) and inside the
//! local platform.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{HeaderValue, header};
use rampart_identity::IdentityProvider;
use rampart_kernel::Settings;
use rampart_kernel::health::{self, ReadinessProbe};
use rampart_secrets::SecretSource;
use rampart_store::ItemStore;
use rampart_tokens::Signer;
use serde_json::json;

/// The ports the auth API depends on.
#[derive(Debug, Clone)]
pub struct Backends {
    pub identity: Arc<dyn IdentityProvider>,
    pub signer: Arc<dyn Signer>,
    pub store: Arc<dyn ItemStore>,
    pub secrets: Arc<dyn SecretSource>,
}

/// A start-up failure, naming the setting or backend that caused it.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

impl Backends {
    /// Connects the adapters the settings select. `aws` is the SDK configuration when
    /// `backend = "aws"`.
    pub async fn connect(settings: &Settings, aws: Option<&aws_types::SdkConfig>) -> Result<Self, StartupError> {
        let secrets = rampart_secrets::connect(settings, aws)?;
        let store = rampart_store::connect(settings, aws)?;
        let signer = rampart_tokens::connect(settings, aws).await?;
        let identity = rampart_identity::connect(settings, aws, &*secrets).await?;
        Ok(Self {
            identity,
            signer,
            store,
            secrets,
        })
    }
}

/// How long clients and the proxy may cache the JWKS. Short, because a rotated key must be
/// picked up well inside the previous key's verification window.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The auth API's routes inside the shared edge layers.
pub fn router(backends: Backends, settings: &Settings) -> Router {
    let probes: Vec<Arc<dyn ReadinessProbe>> = vec![Arc::clone(&backends.store) as Arc<dyn ReadinessProbe>];
    let api = Router::new()
        .route(
            "/v1/auth/version",
            get(|| async { axum::Json(health::version("auth")) }),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(backends)
        .merge(health::router("auth", probes));
    rampart_kernel::http::with_edge_layers(api, &settings.http)
}

async fn jwks(State(backends): State<Backends>) -> impl IntoResponse {
    let cache = HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
        .unwrap_or(HeaderValue::from_static("no-store"));
    (
        [(header::CACHE_CONTROL, cache)],
        axum::Json(json!({ "keys": [backends.signer.public_key()] })),
    )
}
