//! The core business API. Until the core issue lands it serves health and version only, but it
//! is wired to its store and served exactly as in production.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rampart_kernel::Settings;
use rampart_kernel::health::{self, ReadinessProbe};
use rampart_kernel::metrics::Registry;
use rampart_store::ItemStore;

/// Core's routes inside the shared edge layers, its requests counted in `metrics`.
pub fn router(store: Arc<dyn ItemStore>, settings: &Settings, metrics: &Registry) -> Router {
    let probes: Vec<Arc<dyn ReadinessProbe>> = vec![store as Arc<dyn ReadinessProbe>];
    let api = Router::new()
        .route("/v1/version", get(|| async { axum::Json(health::version("core")) }))
        .merge(health::router("core", probes));
    rampart_kernel::http::with_edge_layers(api, &settings.http).layer(metrics.http_layer("core"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn ready_when_its_store_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = rampart_testkit::embedded_settings(dir.path());
        let store = rampart_store::connect(&settings, None).expect("store");
        let response = router(store, &settings, &Registry::default())
            .oneshot(
                axum::http::Request::get("/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), 200);
    }
}
