//! The proxy's Prometheus metrics, served on the admin listener (`GET /metrics`, text format
//! 0.0.4), never on the public one.
//!
//! - `rampart_proxy_requests_total{route,status}`: answered requests;
//! - `rampart_proxy_request_duration_seconds{route}`: a latency histogram;
//! - `rampart_proxy_denials_total{reason}`: requests refused by token checks, by reason;
//! - `rampart_proxy_rate_limited_total{class}`: requests refused by a rate limit;
//! - `rampart_proxy_breaker_state{upstream}`: 0 closed, 1 open, 2 half-open.
//!
//! Counters are atomics behind a read-mostly map, so the hot path takes a read lock and adds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::breaker::State;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Family<AtomicU64>,
    durations: Family<Histogram>,
    denials: Family<AtomicU64>,
    rate_limited: Family<AtomicU64>,
    reloads: Family<AtomicU64>,
}

/// One metric's series, by their rendered label set (e.g. `route="/v1/",status="200"`).
#[derive(Debug)]
struct Family<T>(RwLock<BTreeMap<String, Arc<T>>>);

impl<T> Default for Family<T> {
    fn default() -> Self {
        Self(RwLock::new(BTreeMap::new()))
    }
}

impl<T: Default> Family<T> {
    fn series(&self, labels: &str) -> Arc<T> {
        if let Some(series) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(labels) {
            return Arc::clone(series);
        }
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(labels.to_owned()).or_default())
    }

    fn snapshot(&self) -> Vec<(String, Arc<T>)> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()
    }
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires; copied only
/// when it has any of them.
fn escape(value: &str) -> Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        Cow::Owned(value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
    } else {
        Cow::Borrowed(value)
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the matched prefix (or `none`), so the number
    /// of series is bounded by the configuration, not by what clients send.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        // One label buffer: the histogram's labels, then the counter's (the same plus status).
        let mut labels = String::with_capacity(route.len() + 24);
        let _ = write!(labels, "route=\"{}\"", escape(route));
        let histogram = self.durations.series(&labels);
        let _ = write!(labels, ",status=\"{status}\"");
        self.requests.series(&labels).fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in histogram.buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        histogram.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn denial(&self, reason: &str) {
        self.denials
            .series(&format!("reason=\"{}\"", escape(reason)))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self, class: &str) {
        self.rate_limited
            .series(&format!("class=\"{}\"", escape(class)))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one SIGHUP reload of the routes file: `applied`, or `refused` (the running routes
    /// stay), so a deploy that shipped a bad file raises an alert instead of passing unseen.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads
            .series(&format!("result=\"{result}\""))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in the Prometheus text exposition format, with `breakers` (each upstream's
    /// breaker state, read when rendering rather than stored on every request) as a gauge.
    pub fn render(&self, breakers: &[(String, State)]) -> String {
        let mut out = String::new();
        let counters = [
            (
                "rampart_proxy_requests_total",
                "Requests answered, by route prefix and status.",
                &self.requests,
            ),
            (
                "rampart_proxy_denials_total",
                "Requests refused by token checks, by reason.",
                &self.denials,
            ),
            (
                "rampart_proxy_rate_limited_total",
                "Requests refused by a rate limit, by class.",
                &self.rate_limited,
            ),
            (
                "rampart_proxy_config_reloads_total",
                "Reloads of the routes file on SIGHUP, by result (applied or refused).",
                &self.reloads,
            ),
        ];
        for (name, help, family) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in family.snapshot() {
                let _ = writeln!(out, "{name}{{{labels}}} {}", value.load(Ordering::Relaxed));
            }
        }
        let name = "rampart_proxy_breaker_state";
        let _ = writeln!(
            out,
            "# HELP {name} Circuit breaker per upstream: 0 closed, 1 open, 2 half-open.\n# TYPE {name} gauge"
        );
        for (upstream, state) in breakers {
            let _ = writeln!(out, "{name}{{upstream=\"{}\"}} {}", escape(upstream), *state as u8);
        }
        let name = "rampart_proxy_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer, by route prefix.\n# TYPE {name} histogram"
        );
        for (labels, histogram) in self.durations.snapshot() {
            for (bucket, bound) in histogram.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let metrics = Metrics::default();
        metrics.request("/v1/", 200, Duration::from_micros(800));
        metrics.request("/v1/", 200, Duration::from_millis(30));
        metrics.request("/v1/", 401, Duration::from_micros(100));
        metrics.denial("expired");
        metrics.denial("expired");
        metrics.rate_limited("api");
        let text = metrics.render(&[("127.0.0.1:9\"".into(), State::Open)]);
        for line in [
            r#"rampart_proxy_requests_total{route="/v1/",status="200"} 2"#,
            r#"rampart_proxy_requests_total{route="/v1/",status="401"} 1"#,
            r#"rampart_proxy_denials_total{reason="expired"} 2"#,
            r#"rampart_proxy_rate_limited_total{class="api"} 1"#,
            r#"rampart_proxy_request_duration_seconds_bucket{route="/v1/",le="0.0005"} 1"#,
            r#"rampart_proxy_request_duration_seconds_bucket{route="/v1/",le="0.001"} 2"#,
            r#"rampart_proxy_request_duration_seconds_bucket{route="/v1/",le="0.05"} 3"#,
            r#"rampart_proxy_request_duration_seconds_bucket{route="/v1/",le="+Inf"} 3"#,
            r#"rampart_proxy_request_duration_seconds_count{route="/v1/"} 3"#,
            "# TYPE rampart_proxy_request_duration_seconds histogram",
            r#"rampart_proxy_breaker_state{upstream="127.0.0.1:9\""} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.denial("a\"b\\c\nd");
        assert!(metrics.render(&[]).contains(r#"reason="a\"b\\c\nd""#));
    }
}
