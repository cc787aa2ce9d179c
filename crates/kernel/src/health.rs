//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::problem::{Problem, ProblemType};

/// A dependency whose failure makes the component not ready for traffic.
#[async_trait::async_trait]
pub trait ReadinessProbe: Send + Sync {
    /// Short stable name reported by `/readyz`, e.g. `store`.
    fn name(&self) -> &'static str;
    /// `Err` carries the reason for the logs; callers only see the probe's name.
    async fn check(&self) -> Result<(), String>;
    /// What a ready `/readyz` says of this dependency beside passing, e.g. that it serves
    /// values read before its store became unreachable, and for how long still.
    fn detail(&self) -> Option<serde_json::Value> {
        None
    }
}

/// How long one probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const VERSION: &str = "/version";

/// The health routes, plus `GET /version` naming `service`.
pub fn router(service: &'static str, probes: Vec<Arc<dyn ReadinessProbe>>) -> Router {
    Router::new()
        .route(HEALTHZ, get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route(READYZ, get(readyz).with_state(Arc::new(probes)))
        .route(VERSION, get(move || async move { axum::Json(version(service)) }))
}

/// Whether [`router`] answers `path`: for a service that routes without a `Router` of its own.
pub fn serves(path: &str) -> bool {
    [HEALTHZ, READYZ, VERSION].contains(&path)
}

/// The body of version endpoints.
pub fn version(service: &str) -> serde_json::Value {
    json!({ "service": service, "version": env!("CARGO_PKG_VERSION") })
}

async fn readyz(State(probes): State<Arc<Vec<Arc<dyn ReadinessProbe>>>>) -> Response {
    let mut failing = Vec::new();
    let mut details = serde_json::Map::new();
    for probe in probes.iter() {
        if let Some(detail) = probe.detail() {
            details.insert(probe.name().to_owned(), detail);
        }
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await;
        let reason = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(reason)) => reason,
            Err(_) => "timed out".to_string(),
        };
        tracing::warn!(probe = probe.name(), %reason, "not ready");
        failing.push(probe.name());
    }
    if failing.is_empty() && details.is_empty() {
        axum::Json(json!({ "status": "ready" })).into_response()
    } else if failing.is_empty() {
        axum::Json(json!({ "status": "ready", "checks": details })).into_response()
    } else {
        Problem::new(
            ProblemType::ServiceUnavailable,
            format!("Not ready: {}.", failing.join(", ")),
        )
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    struct Fixed(Result<(), String>);

    #[async_trait::async_trait]
    impl ReadinessProbe for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        async fn check(&self) -> Result<(), String> {
            self.0.clone()
        }
    }

    async fn status(probes: Vec<Arc<dyn ReadinessProbe>>, path: &str) -> u16 {
        router("test", probes)
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response")
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn readiness_follows_probes_and_liveness_does_not() {
        let failing: Vec<Arc<dyn ReadinessProbe>> = vec![Arc::new(Fixed(Err("down".into())))];
        assert_eq!(status(failing.clone(), "/readyz").await, 503);
        assert_eq!(status(failing, "/healthz").await, 200);
        assert_eq!(status(vec![Arc::new(Fixed(Ok(())))], "/readyz").await, 200);
    }
}
