//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer).

use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// How long a round of checks answers `/readyz`. Whoever can reach the port (the kubelet, a
/// load balancer, or a flood) then costs the dependencies at most one round a second, and
/// callers during a round wait for it rather than starting their own.
const VERDICT_LIFETIME: Duration = Duration::from_secs(1);

const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const VERSION: &str = "/version";

/// The health routes, plus `GET /version` naming `service`.
pub fn router(service: &'static str, probes: Vec<Arc<dyn ReadinessProbe>>) -> Router {
    Router::new()
        .route(HEALTHZ, get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .route(
            READYZ,
            get(readyz).with_state(Arc::new(Readiness {
                probes: Arc::new(probes),
                verdict: Arc::new(tokio::sync::Mutex::new(None)),
            })),
        )
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

type Verdict = Option<(Instant, Vec<&'static str>)>;

struct Readiness {
    probes: Arc<Vec<Arc<dyn ReadinessProbe>>>,
    /// When the last round of checks ended, and which probes failed in it.
    verdict: Arc<tokio::sync::Mutex<Verdict>>,
}

impl Readiness {
    /// The failing probes, from a round of checks at most [`VERDICT_LIFETIME`] old.
    ///
    /// A round runs in a task of its own that holds the lock until it has stored its verdict:
    /// a caller that gives up (a probe's timeout shorter than the round) does not take the
    /// round with it, and the callers queued behind get its verdict instead of starting over.
    async fn failing(&self) -> Vec<&'static str> {
        let mut verdict = Arc::clone(&self.verdict).lock_owned().await;
        if let Some((at, failing)) = verdict.as_ref()
            && at.elapsed() < VERDICT_LIFETIME
        {
            return failing.clone();
        }
        let probes = Arc::clone(&self.probes);
        let round = tokio::spawn(async move {
            let mut failing = Vec::new();
            for probe in probes.iter() {
                let reason = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(reason)) => reason,
                    Err(_) => "timed out".to_string(),
                };
                tracing::warn!(probe = probe.name(), %reason, "not ready");
                failing.push(probe.name());
            }
            *verdict = Some((Instant::now(), failing.clone()));
            failing
        });
        // A round that panicked answers as if every probe had failed.
        round
            .await
            .unwrap_or_else(|_| self.probes.iter().map(|probe| probe.name()).collect())
    }
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    let failing = readiness.failing().await;
    // Details are local state, read afresh each time.
    let details: serde_json::Map<_, _> = readiness
        .probes
        .iter()
        .filter_map(|probe| Some((probe.name().to_owned(), probe.detail()?)))
        .collect();
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

    /// Passes after 50 ms, and counts its checks.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl ReadinessProbe for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn check(&self) -> Result<(), String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_flood_of_readiness_requests_costs_the_dependencies_one_check_a_second() {
        let probe = Arc::new(Counting::default());
        let app = router("test", vec![Arc::clone(&probe) as Arc<dyn ReadinessProbe>]);
        let ask = || {
            let app = app.clone();
            async move {
                let response = app
                    .oneshot(Request::get("/readyz").body(Body::empty()).expect("request"))
                    .await
                    .expect("response");
                assert_eq!(response.status(), 200);
            }
        };
        let flood: Vec<_> = (0..50).map(|_| tokio::spawn(ask())).collect();
        for request in flood {
            request.await.expect("request task");
        }
        assert_eq!(
            probe.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "concurrent requests share one round"
        );
        ask().await;
        assert_eq!(
            probe.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a fresh verdict is reused"
        );
        tokio::time::sleep(VERDICT_LIFETIME).await;
        ask().await;
        assert_eq!(
            probe.0.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "an old verdict is not"
        );
    }

    #[tokio::test]
    async fn a_round_outlives_the_caller_that_gave_up_on_it() {
        let probe = Arc::new(Counting::default());
        let app = router("test", vec![Arc::clone(&probe) as Arc<dyn ReadinessProbe>]);
        let ask = || {
            app.clone()
                .oneshot(Request::get("/readyz").body(Body::empty()).expect("request"))
        };
        // The caller gives up 10 ms into the 50 ms round, as a kubelet probe with a short
        // timeout does when the dependencies are slow.
        assert!(tokio::time::timeout(Duration::from_millis(10), ask()).await.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ask().await.expect("response").status(), 200);
        assert_eq!(
            probe.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the abandoned round finished and its verdict was reused"
        );
    }

    #[tokio::test]
    async fn readiness_follows_probes_and_liveness_does_not() {
        let failing: Vec<Arc<dyn ReadinessProbe>> = vec![Arc::new(Fixed(Err("down".into())))];
        assert_eq!(status(failing.clone(), "/readyz").await, 503);
        assert_eq!(status(failing, "/healthz").await, 200);
        assert_eq!(status(vec![Arc::new(Fixed(Ok(())))], "/readyz").await, 200);
    }
}
