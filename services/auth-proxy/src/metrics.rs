//! The proxy's metrics, in the process's registry (`rampart_kernel::metrics`), served on the
//! admin listener, never on the public one:
//!
//! - `rampart_proxy_requests_total{route,status}`: answered requests;
//! - `rampart_proxy_request_duration_seconds{route}`: a latency histogram;
//! - `rampart_proxy_denials_total{reason}`: requests refused by token checks, by reason;
//! - `rampart_proxy_rate_limited_total{class}`: requests refused by a rate limit;
//! - `rampart_proxy_config_reloads_total{result}`: SIGHUP reloads, applied or refused;
//! - `rampart_proxy_breaker_state{upstream}`: 0 closed, 1 open, 2 half-open, read when scraped.
//!
//! `route` is the matched prefix (or `none`) and `class` a configured name, so the number of
//! series is bounded by the configuration, not by what clients send.

use std::sync::Arc;
use std::time::Duration;

use rampart_kernel::metrics::{
    Collector, ConstGauge, Counter, DescriptorEncoder, EncodeLabelSet, EncodeMetric, Family, Histogram, Registry,
    latency_histogram,
};

use crate::breaker::Breakers;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<String>,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    /// The route label of a request no route matched.
    no_route: Arc<String>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    denials: Family<ReasonLabels, Counter>,
    rate_limited: Family<ClassLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    unattributed: Family<ReasonLabels, Counter>,
}

impl Metrics {
    /// The proxy's families, registered in `registry` with its breakers' states.
    pub fn new(registry: &Registry, breakers: &Arc<Breakers>) -> Self {
        registry.register_collector(BreakerStates(Arc::clone(breakers)));
        Self {
            no_route: Arc::new("none".into()),
            requests: registry.add(
                "rampart_proxy_requests",
                "Requests answered, by route prefix and status",
                Family::default(),
            ),
            durations: registry.add(
                "rampart_proxy_request_duration_seconds",
                "Time to answer, by route prefix",
                Family::new_with_constructor(latency_histogram),
            ),
            denials: registry.add(
                "rampart_proxy_denials",
                "Requests refused by token checks, by reason",
                Family::default(),
            ),
            rate_limited: registry.add(
                "rampart_proxy_rate_limited",
                "Requests refused by a rate limit, by class",
                Family::default(),
            ),
            reloads: registry.add(
                "rampart_proxy_config_reloads",
                "Reloads of the routes file on SIGHUP, by result (applied or refused)",
                Family::default(),
            ),
            unattributed: registry.add(
                "rampart_proxy_unattributed_clients",
                "Requests from trusted peers whose client address header was absent, repeated or unreadable, by reason",
                Family::default(),
            ),
        }
    }

    /// Counts one answered request under its route prefix (`none` when no route matched),
    /// without allocating: the labels share the route's prefix.
    pub fn request(&self, prefix: Option<&Arc<String>>, status: u16, elapsed: Duration) {
        let route = Arc::clone(prefix.unwrap_or(&self.no_route));
        self.durations
            .get_or_create(&RouteLabels {
                route: Arc::clone(&route),
            })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&RequestLabels { route, status }).inc();
    }

    pub fn denial(&self, reason: &'static str) {
        self.denials.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn rate_limited(&self, class: &str) {
        self.rate_limited
            .get_or_create(&ClassLabels {
                class: class.to_owned(),
            })
            .inc();
    }

    /// Counts one request rate-limited under the unattributed key, by why (`absent`,
    /// `repeated`, `unreadable`): behind CloudFront a steady count means a misconfigured edge.
    pub fn unattributed(&self, reason: &'static str) {
        self.unattributed.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts one SIGHUP reload of the routes file: `applied`, or `refused` (the running routes
    /// stay), so a deploy that shipped a bad file raises an alert instead of passing unseen.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }
}

/// Each upstream's breaker state, read when the metrics are scraped rather than stored on every
/// request.
#[derive(Debug)]
struct BreakerStates(Arc<Breakers>);

impl Collector for BreakerStates {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let gauge = ConstGauge::new(0_i64);
        let mut family = encoder.encode_descriptor(
            "rampart_proxy_breaker_state",
            "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open",
            None,
            gauge.metric_type(),
        )?;
        for (upstream, state) in self.0.states() {
            ConstGauge::new(state as i64).encode(family.encode_family(&[("upstream", upstream)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::breaker::BreakerConfig;

    #[test]
    fn renders_counters_histograms_and_breaker_states() {
        let registry = Registry::default();
        let breakers = Arc::new(Breakers::default());
        let metrics = Metrics::new(&registry, &breakers);
        let route = Arc::new("/v1/".to_owned());
        metrics.request(Some(&route), 200, Duration::from_micros(800));
        metrics.request(Some(&route), 200, Duration::from_millis(30));
        metrics.request(Some(&route), 401, Duration::from_micros(100));
        metrics.request(None, 404, Duration::from_micros(100));
        metrics.denial("expired");
        metrics.denial("expired");
        metrics.rate_limited("api\"");
        metrics.reload(false);
        let config = BreakerConfig::default();
        let now = Instant::now();
        breakers.admit("127.0.0.1:9", &config, now);
        for _ in 0..config.min_requests {
            breakers.admit("127.0.0.1:8", &config, now);
            breakers.record("127.0.0.1:8", &config, false, now);
        }
        let text = registry.render();
        for line in [
            r#"rampart_proxy_requests_total{route="/v1/",status="200"} 2"#,
            r#"rampart_proxy_requests_total{route="/v1/",status="401"} 1"#,
            r#"rampart_proxy_requests_total{route="none",status="404"} 1"#,
            r#"rampart_proxy_denials_total{reason="expired"} 2"#,
            r#"rampart_proxy_rate_limited_total{class="api\""} 1"#,
            r#"rampart_proxy_config_reloads_total{result="refused"} 1"#,
            r#"rampart_proxy_request_duration_seconds_bucket{le="0.0005",route="/v1/"} 1"#,
            r#"rampart_proxy_request_duration_seconds_bucket{le="0.001",route="/v1/"} 2"#,
            r#"rampart_proxy_request_duration_seconds_bucket{le="0.05",route="/v1/"} 3"#,
            r#"rampart_proxy_request_duration_seconds_bucket{le="+Inf",route="/v1/"} 3"#,
            r#"rampart_proxy_request_duration_seconds_count{route="/v1/"} 3"#,
            "# TYPE rampart_proxy_request_duration_seconds histogram",
            r#"rampart_proxy_breaker_state{upstream="127.0.0.1:9"} 0"#,
            r#"rampart_proxy_breaker_state{upstream="127.0.0.1:8"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
