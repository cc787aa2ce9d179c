//! The tokens crate's integration tests, in one binary: the signers against their published
//! keys, access tokens issued, verified and attacked, and the Transit signer on a real Vault.

mod jwt;
mod signers;
mod transit;
