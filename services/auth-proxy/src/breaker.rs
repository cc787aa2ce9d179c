//! Upstream resilience: a circuit breaker per upstream and a retry budget.
//!
//! The breaker counts failures (no connection, timeout, 502, 504, and 503 without `Retry-After`:
//! one with it is load shed on purpose) in a window. Once at least
//! `min_requests` have been seen and `failure_ratio` of them failed, it opens: requests are
//! answered 503 at once instead of waiting on a sick upstream. After `open_for`, one probe is let
//! through (half-open); its success closes the breaker, its failure opens it again. A probe that
//! never reports (its client went away) is replaced after `open_for`.
//!
//! Retries draw on a budget that each request tops up by a fifth of a retry, so retries can add
//! at most about 20 % load to an upstream that is already failing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub failure_ratio: f64,
    pub min_requests: u32,
    pub window: Duration,
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_ratio: 0.5,
            min_requests: 10,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
        }
    }
}

/// What the breaker lets a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Open: answer 503, suggesting a retry after this long.
    Rejected {
        retry_after: Duration,
    },
}

/// The breaker's state, as the metrics report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

#[derive(Debug)]
struct Breaker {
    state: State,
    /// Open: until when. Half-open: when the probe was let through.
    since: Instant,
    window_start: Instant,
    requests: u32,
    failures: u32,
    /// Retry budget, in retries.
    budget: f64,
}

const BUDGET_PER_REQUEST: f64 = 0.2;
const BUDGET_CAP: f64 = 10.0;
const BUDGET_START: f64 = 3.0;

/// The breakers of every upstream. The configuration is passed on each call, so a reload
/// takes effect at once while the counts carry over.
#[derive(Debug, Default)]
pub struct Breakers {
    upstreams: Mutex<HashMap<String, Breaker>>,
}

impl Breakers {
    fn with<T>(&self, upstream: &str, now: Instant, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut upstreams = self.upstreams.lock().unwrap_or_else(PoisonError::into_inner);
        // Looked up by `&str` first: the key is copied only the first time an upstream is seen.
        if let Some(breaker) = upstreams.get_mut(upstream) {
            return f(breaker);
        }
        f(upstreams.entry(upstream.to_owned()).or_insert(Breaker {
            state: State::Closed,
            since: now,
            window_start: now,
            requests: 0,
            failures: 0,
            budget: BUDGET_START,
        }))
    }

    /// Every upstream called so far and its breaker's state, for the metrics.
    pub fn states(&self) -> Vec<(String, State)> {
        let upstreams = self.upstreams.lock().unwrap_or_else(PoisonError::into_inner);
        upstreams
            .iter()
            .map(|(upstream, b)| (upstream.clone(), b.state))
            .collect()
    }

    /// Whether a request may go to `upstream` now; also tops up the retry budget.
    pub fn admit(&self, upstream: &str, config: &BreakerConfig, now: Instant) -> Admission {
        self.with(upstream, now, |b| {
            b.budget = (b.budget + BUDGET_PER_REQUEST).min(BUDGET_CAP);
            match b.state {
                State::Closed => Admission::Allowed,
                State::Open if now >= b.since => {
                    b.state = State::HalfOpen;
                    b.since = now;
                    Admission::Allowed
                }
                State::Open => Admission::Rejected {
                    retry_after: b.since - now,
                },
                // One probe at a time, unless the last one never came back.
                State::HalfOpen if now.duration_since(b.since) >= config.open_for => {
                    b.since = now;
                    Admission::Allowed
                }
                State::HalfOpen => Admission::Rejected {
                    retry_after: config.open_for.saturating_sub(now.duration_since(b.since)),
                },
            }
        })
    }

    /// Reports how a request to `upstream` went; returns the state afterwards.
    pub fn record(&self, upstream: &str, config: &BreakerConfig, success: bool, now: Instant) -> State {
        self.with(upstream, now, |b| {
            match b.state {
                State::HalfOpen if success => {
                    b.state = State::Closed;
                    b.window_start = now;
                    b.requests = 0;
                    b.failures = 0;
                }
                State::HalfOpen => {
                    b.state = State::Open;
                    b.since = now + config.open_for;
                }
                State::Closed => {
                    if now.duration_since(b.window_start) > config.window {
                        b.window_start = now;
                        b.requests = 0;
                        b.failures = 0;
                    }
                    b.requests += 1;
                    b.failures += u32::from(!success);
                    let ratio = f64::from(b.failures) / f64::from(b.requests);
                    if b.requests >= config.min_requests && ratio >= config.failure_ratio {
                        b.state = State::Open;
                        b.since = now + config.open_for;
                    }
                }
                // A late report from before the breaker opened changes nothing.
                State::Open => {}
            }
            b.state
        })
    }

    /// Takes one retry from `upstream`'s budget, if there is one to take.
    pub fn take_retry(&self, upstream: &str, now: Instant) -> bool {
        self.with(upstream, now, |b| {
            let available = b.budget >= 1.0;
            if available {
                b.budget -= 1.0;
            }
            available
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_ratio: 0.5,
            min_requests: 4,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
        }
    }

    #[test]
    fn opens_on_the_failure_ratio_then_probes_once_and_closes_on_success() {
        let (breakers, config) = (Breakers::default(), config());
        let t0 = Instant::now();
        for success in [true, false, true] {
            assert_eq!(breakers.admit("u", &config, t0), Admission::Allowed);
            assert_eq!(
                breakers.record("u", &config, success, t0),
                State::Closed,
                "too few requests to judge"
            );
        }
        assert_eq!(breakers.record("u", &config, false, t0), State::Open, "2 of 4 failed");
        assert_eq!(
            breakers.admit("u", &config, t0 + Duration::from_secs(1)),
            Admission::Rejected {
                retry_after: Duration::from_secs(4)
            }
        );
        // After open_for, exactly one probe.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(breakers.admit("u", &config, later), Admission::Allowed);
        assert!(matches!(
            breakers.admit("u", &config, later),
            Admission::Rejected { .. }
        ));
        assert_eq!(breakers.record("u", &config, true, later), State::Closed);
        assert_eq!(breakers.admit("u", &config, later), Admission::Allowed);
    }

    #[test]
    fn a_failed_probe_reopens_and_a_lost_probe_is_replaced() {
        let (breakers, config) = (Breakers::default(), config());
        let t0 = Instant::now();
        for _ in 0..4 {
            breakers.record("u", &config, false, t0);
        }
        let probe = t0 + Duration::from_secs(5);
        assert_eq!(breakers.admit("u", &config, probe), Admission::Allowed);
        assert_eq!(breakers.record("u", &config, false, probe), State::Open);
        assert!(matches!(
            breakers.admit("u", &config, probe + Duration::from_secs(1)),
            Admission::Rejected { .. }
        ));
        // The next probe's client vanishes without a report; another is allowed after open_for.
        let second = probe + Duration::from_secs(5);
        assert_eq!(breakers.admit("u", &config, second), Admission::Allowed);
        assert!(matches!(
            breakers.admit("u", &config, second + Duration::from_secs(1)),
            Admission::Rejected { .. }
        ));
        assert_eq!(
            breakers.admit("u", &config, second + Duration::from_secs(5)),
            Admission::Allowed
        );
    }

    #[test]
    fn old_failures_age_out_of_the_window_and_upstreams_are_separate() {
        let (breakers, config) = (Breakers::default(), config());
        let t0 = Instant::now();
        for _ in 0..3 {
            breakers.record("u", &config, false, t0);
        }
        // Eleven seconds later the window restarts: one more failure is not four.
        assert_eq!(
            breakers.record("u", &config, false, t0 + Duration::from_secs(11)),
            State::Closed
        );
        for _ in 0..4 {
            breakers.record("sick", &config, false, t0);
        }
        assert!(matches!(
            breakers.admit("sick", &config, t0),
            Admission::Rejected { .. }
        ));
        assert_eq!(
            breakers.admit("u", &config, t0 + Duration::from_secs(11)),
            Admission::Allowed
        );
    }

    #[test]
    fn retries_are_limited_by_a_budget_refilled_by_requests() {
        let (breakers, config) = (Breakers::default(), config());
        let t0 = Instant::now();
        breakers.admit("u", &config, t0);
        let granted = (0..10).filter(|_| breakers.take_retry("u", t0)).count();
        assert_eq!(granted, 3, "the starting budget");
        for _ in 0..10 {
            breakers.admit("u", &config, t0);
        }
        assert_eq!(
            (0..10).filter(|_| breakers.take_retry("u", t0)).count(),
            2,
            "a fifth per request"
        );
    }
}
