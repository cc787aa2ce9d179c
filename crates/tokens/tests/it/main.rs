//! The tokens crate's integration tests, in one binary: both signers against their published
//! keys, and access tokens issued, verified and attacked.

mod jwt;
mod signers;
