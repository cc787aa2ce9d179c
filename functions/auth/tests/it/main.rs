//! The auth function's integration tests, in one binary (one link, one process start per run):
//! the API over HTTP on both stacks, the Lambda entry with API Gateway events, key rotation,
//! the session repository and the request decoders' property tests.

mod api;
mod decoders;
mod keys;
mod lambda;
mod sessions;
