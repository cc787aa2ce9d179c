//! Who may pass: bearer access tokens checked against an issuer's published keys (JWKS) and its
//! revocation feed, with the scopes a caller needs.
//!
//! One implementation serves both places Rampart checks tokens at the edge: the auth-proxy,
//! which keeps keys and revocations fresh in the background ([`Verifier::spawn_refreshers`]),
//! and the API Gateway authorizer, whose Lambda sandbox is frozen between invocations and so
//! refreshes them as invocations arrive ([`Verifier::refresh_if_due`]).

mod config;
mod fetch;
mod jwks;
mod revocations;
mod verify;

pub use config::IssuerConfig;
pub use verify::{Denial, Verifier, bearer_token};
