//! What every Rampart component shares: configuration, errors, telemetry and the HTTP edge.

pub mod aws;
pub mod config;
pub mod extract;
pub mod forwarded;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod path;
pub mod problem;
pub mod schema;
pub mod serve;
pub mod telemetry;

pub use config::{Backend, ConfigError, Settings};
pub use problem::{BearerRefusal, Problem, ProblemType};

/// Seconds since the Unix epoch: the clock of token, session and audit timestamps.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch: the clock of throttles and audit records.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
