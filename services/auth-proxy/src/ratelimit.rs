//! Rate limits per caller and route class with GCRA (the generic cell rate algorithm): each key
//! keeps one number, its theoretical arrival time (TAT). A class allows `burst` requests at once
//! and refills at `rate` per `period`. Answers carry `RateLimit-Limit`, `RateLimit-Remaining`
//! and `RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers); a refused request is 429 with
//! `Retry-After`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

/// How many independent locks the keys are spread over, so concurrent callers rarely contend.
const SHARDS: usize = 16;
/// A shard sweeps out keys whose TAT has passed (they are as good as new) once it holds this many.
const SWEEP_AT: usize = 4096;

/// One class's limit: `burst` at once, refilling at one request per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub interval: Duration,
}

/// What the limiter decided, with what the headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full burst is available again.
    pub reset_secs: u64,
    /// Seconds until a refused request would be allowed; 0 when allowed.
    pub retry_after_secs: u64,
}

impl Decision {
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset_secs),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    hasher: RandomState,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

impl RateLimiter {
    /// Counts one request for `key` under `limit` at `now` (nanoseconds on a monotonic clock).
    pub fn check(&self, key: &str, limit: Limit, now: u64) -> Decision {
        let interval = nanos(limit.interval).max(1);
        let burst = u64::from(limit.burst.max(1));
        // A request is allowed while the TAT it leads to is at most `burst` intervals ahead.
        let tolerance = interval.saturating_mul(burst);
        let mut shard = self.shard(key).lock().unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= SWEEP_AT {
            shard.retain(|_, tat| *tat > now);
        }
        let tat = shard.get(key).copied().unwrap_or(now).max(now);
        let next = tat.saturating_add(interval);
        let ahead = next - now;
        if ahead > tolerance {
            let ahead_now = tat - now;
            return Decision {
                allowed: false,
                limit: limit.burst,
                remaining: 0,
                reset_secs: ceil_secs(ahead_now),
                retry_after_secs: ceil_secs(ahead - tolerance).max(1),
            };
        }
        shard.insert(key.to_owned(), next);
        Decision {
            allowed: true,
            limit: limit.burst,
            remaining: u32::try_from((tolerance - ahead) / interval).unwrap_or(u32::MAX),
            reset_secs: ceil_secs(ahead),
            retry_after_secs: 0,
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, u64>> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn limit(burst: u32, interval_ms: u64) -> Limit {
        Limit {
            burst,
            interval: Duration::from_millis(interval_ms),
        }
    }

    #[test]
    fn a_burst_is_allowed_then_requests_refill_at_the_rate() {
        let limiter = RateLimiter::default();
        let limit = limit(3, 1000);
        let t0 = 100 * SECOND;
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check("k", limit, t0))
            .map(|d| {
                assert!(d.allowed);
                d.remaining
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check("k", limit, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.reset_secs, 3);
        // One interval later, exactly one more.
        assert!(limiter.check("k", limit, t0 + SECOND).allowed);
        assert!(!limiter.check("k", limit, t0 + SECOND).allowed);
        // After the whole burst has refilled, the full burst again.
        let later = t0 + 10 * SECOND;
        assert!((0..3).all(|_| limiter.check("k", limit, later).allowed));
        assert!(!limiter.check("k", limit, later).allowed);
    }

    #[test]
    fn keys_are_independent_and_refused_requests_cost_nothing() {
        let limiter = RateLimiter::default();
        let limit = limit(1, 1000);
        assert!(limiter.check("a", limit, SECOND).allowed);
        for _ in 0..100 {
            assert!(!limiter.check("a", limit, SECOND).allowed);
        }
        assert!(limiter.check("b", limit, SECOND).allowed);
        // Hammering while refused did not push a's next slot further out.
        assert!(limiter.check("a", limit, 2 * SECOND).allowed);
    }

    #[test]
    fn idle_keys_are_swept_so_memory_stays_bounded() {
        let limiter = RateLimiter::default();
        let limit = limit(1, 1);
        for i in 0..(SHARDS * SWEEP_AT * 2) {
            // Each caller comes once; its slot has refilled (1 ms) before the next arrives.
            limiter.check(&format!("caller-{i}"), limit, SECOND + i as u64 * 2_000_000);
        }
        let held: usize = limiter.shards.iter().map(|s| s.lock().expect("lock").len()).sum();
        assert!(held <= SHARDS * SWEEP_AT, "{held} keys held");
    }

    #[test]
    fn headers_report_the_decision() {
        let mut headers = HeaderMap::new();
        RateLimiter::default()
            .check("k", limit(5, 1000), SECOND)
            .write_headers(&mut headers);
        assert_eq!(headers["ratelimit-limit"], "5");
        assert_eq!(headers["ratelimit-remaining"], "4");
        assert_eq!(headers["ratelimit-reset"], "1");
    }
}
