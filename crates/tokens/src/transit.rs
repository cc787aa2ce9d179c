//! The Vault adapter: a Transit key signs, each of its versions one key of the ring; the private
//! halves never leave Vault. Vault is reached through the secrets crate's [`VaultSource`], whose
//! login and token renewal this adapter shares.
//!
//! A key reference is `transit:<key>:v<version>`. The signer of a reference always names that
//! version in its sign requests, so a rotation in Vault never signs under a `kid` whose public
//! key is another version's.

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_secrets::{SecretError, VaultSource};
use tracing::instrument;
use vaultrs::api::transit::requests::SignDataRequest;
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::api::transit::{MarshalingAlgorithm, SignatureAlgorithm};
use vaultrs::error::ClientError;

use crate::{Algorithm, Jwk, KeySource, Signer, SignerError};

/// The versions of one Transit key, under the mount `tokens.transit.mount`.
#[derive(Debug, Clone)]
pub struct TransitKeys {
    vault: Arc<VaultSource>,
    mount: String,
    key: String,
    /// Version 1 of the key: the same on every instance, whenever it started.
    initial_ref: String,
}

impl TransitKeys {
    /// `key` under `mount`, through `vault`'s login.
    pub fn new(vault: Arc<VaultSource>, mount: &str, key: &str) -> Self {
        Self {
            vault,
            mount: mount.to_owned(),
            key: key.to_owned(),
            initial_ref: key_ref(key, 1),
        }
    }
}

/// The reference of `version` of the Transit key `key`.
pub fn key_ref(key: &str, version: u64) -> String {
    format!("transit:{key}:v{version}")
}

/// The key name and version of a reference made by [`key_ref`]; anything else (another
/// adapter's reference, a path, a version 0, a sign or leading zeros) is refused.
pub fn parse_ref(key_ref: &str) -> Result<(&str, u64), SignerError> {
    let invalid = || {
        SignerError::InvalidKey(format!(
            "{key_ref:?} is not a Transit key reference (transit:<key>:v<version>)"
        ))
    };
    let (key, version) = key_ref
        .strip_prefix("transit:")
        .and_then(|rest| rest.rsplit_once(":v"))
        .ok_or_else(invalid)?;
    let digits = !version.is_empty() && version.len() <= 19 && version.bytes().all(|b| b.is_ascii_digit());
    if !rampart_kernel::config::is_transit_key_name(key) || !digits || version.starts_with('0') {
        return Err(invalid());
    }
    Ok((key, version.parse().map_err(|_| invalid())?))
}

#[async_trait::async_trait]
impl KeySource for TransitKeys {
    fn initial_ref(&self) -> &str {
        &self.initial_ref
    }

    /// A signer pinned to the reference's version. The reference may name another key of the
    /// mount than `tokens.transit.key`, so that keys published before a change of that setting
    /// keep verifying until they retire.
    async fn open(&self, key_ref: &str) -> Result<Arc<dyn Signer>, SignerError> {
        let (key, version) = parse_ref(key_ref)?;
        Ok(Arc::new(
            TransitSigner::connect(Arc::clone(&self.vault), &self.mount, key, version).await?,
        ))
    }

    /// Rotates the key in Vault and returns the reference of its new latest version. Signing
    /// with it starts when the ring schedules it: until then every signer names its own version.
    #[instrument(name = "tokens.transit_rotate", skip(self), fields(mount = %self.mount, key = %self.key))]
    async fn create(&self) -> Result<String, SignerError> {
        let (mount, key) = (self.mount.as_str(), self.key.as_str());
        let what = format!("rotating Transit key {mount}/{key}");
        self.vault
            .call(|client| async move { vaultrs::transit::key::rotate(&*client, mount, key).await })
            .await
            .map_err(login_failed)?
            .map_err(|e| refused(&what, &e))?;
        let versions = read_public_keys(&self.vault, mount, key).await?;
        let latest = versions.into_iter().map(|(version, _)| version).max();
        latest
            .map(|version| key_ref(key, version))
            .ok_or_else(|| SignerError::InvalidKey(format!("Transit key {mount}/{key} lists no public keys")))
    }
}

/// Signs with one version of a Transit key.
#[derive(Debug, Clone)]
pub struct TransitSigner {
    vault: Arc<VaultSource>,
    mount: String,
    key: String,
    version: u64,
    jwk: Jwk,
}

impl TransitSigner {
    /// Reads the public key of `version` of `key`. The key's type decides the algorithm:
    /// `rsa-2048` (and larger) signs RS256, `ecdsa-p256` ES256; other types are refused.
    #[instrument(name = "tokens.transit_connect", skip(vault))]
    pub async fn connect(vault: Arc<VaultSource>, mount: &str, key: &str, version: u64) -> Result<Self, SignerError> {
        let pem = read_public_keys(&vault, mount, key)
            .await?
            .into_iter()
            .find_map(|(listed, pem)| (listed == version).then_some(pem))
            .ok_or_else(|| SignerError::InvalidKey(format!("Transit key {mount}/{key} has no version {version}")))?;
        let jwk = Jwk::from_spki_der(&spki_der_from_pem(&pem)?)?;
        Ok(Self {
            vault,
            mount: mount.to_owned(),
            key: key.to_owned(),
            version,
            jwk,
        })
    }
}

#[async_trait::async_trait]
impl Signer for TransitSigner {
    fn public_key(&self) -> &Jwk {
        &self.jwk
    }

    #[instrument(name = "tokens.transit_sign", skip_all, fields(kid = %self.jwk.kid, version = self.version))]
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        // Only the digest goes to Vault: the claims never leave the process.
        let input = STANDARD.encode(digest(&SHA256, message));
        let (mount, version, alg) = (self.mount.as_str(), self.version, self.jwk.alg);
        // The hash is named in the path (`sign/<key>/sha2-256`): vaultrs 0.8 writes the body's
        // `hash_algorithm` as `sha2_256`, which Vault refuses.
        let name = format!("{}/sha2-256", self.key);
        let what = format!("signing with Transit key {mount}/{} version {version}", self.key);
        let answer = self
            .vault
            .call(|client| {
                let (name, input) = (name.as_str(), input.as_str());
                async move {
                    let mut request = SignDataRequest::builder();
                    request.key_version(version).prehashed(true);
                    match alg {
                        Algorithm::RS256 => request.signature_algorithm(SignatureAlgorithm::Pkcs1v15),
                        // JWS marshaling: the fixed-width r || s, base64url.
                        Algorithm::ES256 => request.marshaling_algorithm(MarshalingAlgorithm::Jws),
                    };
                    vaultrs::transit::data::sign(&*client, mount, name, input, Some(&mut request)).await
                }
            })
            .await
            .map_err(login_failed)?
            .map_err(|e| refused(&what, &e))?;
        // `vault:v<version>:<signature>`: the version Vault signed with must be the pinned one.
        let unexpected =
            || SignerError::Unavailable(format!("Vault's answer to {what} is not a signature by that version"));
        let encoded = answer
            .signature
            .strip_prefix(&format!("vault:v{version}:"))
            .ok_or_else(unexpected)?;
        let signature = match alg {
            Algorithm::RS256 => STANDARD.decode(encoded),
            Algorithm::ES256 => URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')),
        }
        .map_err(|_| unexpected())?;
        if alg == Algorithm::ES256 && signature.len() != 64 {
            return Err(unexpected());
        }
        Ok(signature)
    }
}

/// Each version of `key` with its public key (PEM).
async fn read_public_keys(vault: &VaultSource, mount: &str, key: &str) -> Result<Vec<(u64, String)>, SignerError> {
    let what = format!("reading Transit key {mount}/{key}");
    let read = vault
        .call(|client| async move { vaultrs::transit::key::read(&*client, mount, key).await })
        .await
        .map_err(login_failed)?
        .map_err(|e| refused(&what, &e))?;
    let not_signing =
        || SignerError::InvalidKey(format!("Transit key {mount}/{key} is not an RSA or P-256 signing key"));
    let ReadKeyData::Asymmetric(keys) = read.keys else {
        return Err(not_signing());
    };
    if !read.supports_signing {
        return Err(not_signing());
    }
    keys.into_iter()
        .map(|(version, entry)| Ok((version.parse().map_err(|_| not_signing())?, entry.public_key)))
        .collect()
}

/// The DER of a `PUBLIC KEY` PEM block (an X.509 `SubjectPublicKeyInfo`), as Transit gives it.
fn spki_der_from_pem(pem: &str) -> Result<Vec<u8>, SignerError> {
    let invalid = || SignerError::InvalidKey("Transit's public key is not a PUBLIC KEY PEM block".into());
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or_else(invalid)?;
    let base64: String = body.split_whitespace().collect();
    STANDARD.decode(base64).map_err(|_| invalid())
}

fn login_failed(error: SecretError) -> SignerError {
    match error {
        SecretError::Denied(why) => SignerError::Denied(why),
        other => SignerError::Unavailable(other.to_string()),
    }
}

/// What Vault's answer to `what` means. Its error strings name paths and causes, never keys.
fn refused(what: &str, error: &ClientError) -> SignerError {
    let errors = match error {
        ClientError::APIError { errors, .. } => errors.join("; "),
        _ => String::new(),
    };
    match rampart_secrets::vault::status(error) {
        Some(403) => SignerError::Denied(format!(
            "Vault refused {what} (403): the token's policies do not allow it"
        )),
        Some(code @ (400 | 404)) => SignerError::InvalidKey(format!("Vault answered {code} to {what}: {errors}")),
        Some(code) => SignerError::Unavailable(format!("Vault answered {code} to {what}: {errors}")),
        // Vault answered, but not as Transit answers (a key type vaultrs does not know).
        None if matches!(
            error,
            ClientError::JsonParseError { .. } | ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError
        ) =>
        {
            SignerError::InvalidKey(format!("Vault's answer to {what} is not what Transit answers"))
        }
        None => SignerError::Unavailable(format!("Vault could not be reached for {what}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_transit_key_and_a_version_and_nothing_else() {
        assert_eq!(
            parse_ref("transit:rampart-access-token:v1").ok(),
            Some(("rampart-access-token", 1))
        );
        assert_eq!(parse_ref(&key_ref("k.v2", 12)).ok(), Some(("k.v2", 12)));
        for bad in [
            "rampart-access-token:v1",
            "transit:rampart-access-token",
            "transit:rampart-access-token:v",
            "transit:rampart-access-token:v0",
            "transit:rampart-access-token:v01",
            "transit:rampart-access-token:v+1",
            "transit:rampart-access-token:v-1",
            "transit:rampart-access-token:v1 ",
            "transit:rampart-access-token:v99999999999999999999",
            "transit::v1",
            "transit:../keys:v1",
            "transit:a/b:v1",
            "transit:a:b:v1",
            "signing-key.pk8",
            "alias/rampart-token-signing",
        ] {
            assert!(matches!(parse_ref(bad), Err(SignerError::InvalidKey(_))), "{bad}");
        }
    }

    #[test]
    fn a_pem_public_key_decodes_to_its_der() {
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZkNQHGAy5j5YDaIWOl9Qr+rnVlPJ\nrCLPFbmcNAY9rAkdv3uz4F3OSsj0Oi8jyAj1Y9FMuA2b4F6A21RFj3KZCQ==\n-----END PUBLIC KEY-----\n";
        let jwk = Jwk::from_spki_der(&spki_der_from_pem(pem).expect("der")).expect("P-256");
        assert_eq!(jwk.alg, Algorithm::ES256);
        assert!(spki_der_from_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----").is_err());
        assert!(spki_der_from_pem("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----").is_err());
    }
}
