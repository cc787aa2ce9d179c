//! core's integration tests: one binary, a module per concern. Each stack runs the real auth
//! API (for tokens and the revocation feed) and core on loopback, embedded or on moto.

mod api;
mod binary;
mod faults;
mod lost_answer;
mod stack;
mod vault;
