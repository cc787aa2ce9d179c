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

use std::sync::Arc;

pub use config::IssuerConfig;
use rampart_kernel::health::ReadinessProbe;
pub use verify::{Denial, Verifier, bearer_token};

/// What a service that checks tokens is not ready without: the issuer's keys, and its
/// revocation feed read within the bound.
pub fn readiness_probes(verifier: &Arc<Verifier>) -> Vec<Arc<dyn ReadinessProbe>> {
    vec![
        Arc::new(JwksLoaded(Arc::clone(verifier))),
        Arc::new(RevocationsFresh(Arc::clone(verifier))),
    ]
}

struct JwksLoaded(Arc<Verifier>);

#[async_trait::async_trait]
impl ReadinessProbe for JwksLoaded {
    fn name(&self) -> &'static str {
        "jwks"
    }
    async fn check(&self) -> Result<(), String> {
        if self.0.keys_loaded() {
            Ok(())
        } else {
            Err("no keys loaded yet".into())
        }
    }
}

struct RevocationsFresh(Arc<Verifier>);

#[async_trait::async_trait]
impl ReadinessProbe for RevocationsFresh {
    fn name(&self) -> &'static str {
        "revocations"
    }
    async fn check(&self) -> Result<(), String> {
        if self.0.revocations_fresh() {
            Ok(())
        } else {
            Err("the revocation feed has not been read within its bound".into())
        }
    }
}
