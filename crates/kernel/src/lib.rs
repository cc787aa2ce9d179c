//! What every Rampart component shares: configuration, errors, telemetry and the HTTP edge.

pub mod aws;
pub mod config;
pub mod extract;
pub mod health;
pub mod http;
pub mod problem;
pub mod schema;
pub mod serve;
pub mod telemetry;

pub use config::{Backend, ConfigError, Settings};
pub use problem::{Problem, ProblemType};
