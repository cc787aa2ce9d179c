//! The secret sources against what they wrap: a local file, Secrets Manager on moto, and a real
//! Vault (OpenBao).

mod sources;
mod vault;
