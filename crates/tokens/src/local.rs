//! The embedded adapter: an RSA key in a PKCS#8 file that only its owner can read.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256};
use zeroize::Zeroizing;

use crate::{Algorithm, Jwk, Signer, SignerError};

/// The key file of each algorithm, so switching `tokens.algorithm` never reuses a key.
pub fn key_file(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RS256 => "signing-key.pk8",
        Algorithm::ES256 => "signing-key-es256.pk8",
    }
}

enum PrivateKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

pub struct LocalKeySigner {
    key: PrivateKey,
    jwk: Jwk,
    path: PathBuf,
}

impl std::fmt::Debug for LocalKeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeySigner")
            .field("kid", &self.jwk.kid)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, error: std::io::Error) -> SignerError {
    SignerError::Unavailable(format!("{}: {error}", path.display()))
}

impl LocalKeySigner {
    /// Loads the key file of `algorithm` in `dir` (RSA-2048 or P-256 PKCS#8), generating it on
    /// first start. The directory is made owner-only (0700) and the file 0600; a key file that
    /// others can read is refused rather than used.
    pub fn load_or_create(dir: &Path, algorithm: Algorithm) -> Result<Self, SignerError> {
        Self::load_or_create_file(dir, key_file(algorithm), algorithm)
    }

    /// Like [`LocalKeySigner::load_or_create`], for the key file `name` in `dir`.
    pub fn load_or_create_file(dir: &Path, name: &str, algorithm: Algorithm) -> Result<Self, SignerError> {
        create_private_dir(dir)?;
        let path = dir.join(name);
        let invalid = |e: &dyn std::fmt::Display| SignerError::InvalidKey(format!("{}: {e}", path.display()));
        let der = match fs::read(&path) {
            Ok(der) => {
                check_private(&path)?;
                Zeroizing::new(der)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let der = Zeroizing::new(generate_pkcs8(algorithm)?);
                write_private(&path, &der)?;
                tracing::info!(path = %path.display(), alg = algorithm.name(), "generated a new local signing key");
                der
            }
            Err(error) => return Err(io_error(&path, error)),
        };
        let (key, jwk) = match algorithm {
            Algorithm::RS256 => {
                let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| invalid(&e))?;
                let jwk = Jwk::from_rsa_pkcs1_der(key.public_key().as_ref())?;
                (PrivateKey::Rsa(key), jwk)
            }
            Algorithm::ES256 => {
                let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(|e| invalid(&e))?;
                let jwk = Jwk::from_p256_point(key.public_key().as_ref())?;
                (PrivateKey::Ec(key), jwk)
            }
        };
        Ok(Self { key, jwk, path })
    }
}

#[async_trait::async_trait]
impl Signer for LocalKeySigner {
    fn public_key(&self) -> &Jwk {
        &self.jwk
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let failed = |e: aws_lc_rs::error::Unspecified| SignerError::Unavailable(e.to_string());
        match &self.key {
            PrivateKey::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            PrivateKey::Ec(key) => Ok(key
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
        }
    }
}

fn generate_pkcs8(algorithm: Algorithm) -> Result<Vec<u8>, SignerError> {
    let invalid = |e: &dyn std::fmt::Display| SignerError::InvalidKey(e.to_string());
    match algorithm {
        Algorithm::RS256 => {
            let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| invalid(&e))?;
            Ok(key.as_der().map_err(|e| invalid(&e))?.as_ref().to_vec())
        }
        Algorithm::ES256 => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|e| invalid(&e))?;
            Ok(key.to_pkcs8v1().map_err(|e| invalid(&e))?.as_ref().to_vec())
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), SignerError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_error(dir, e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| io_error(dir, e))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SignerError> {
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: never overwrite a key another process wrote meanwhile.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(path, e))
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SignerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).map_err(|e| io_error(path, e))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(SignerError::InvalidKey(format!(
            "{} is readable by others (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_is_owner_only_and_reloads_with_the_same_kid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let first = LocalKeySigner::load_or_create(&keys, Algorithm::RS256).expect("create");
        let mode = fs::metadata(keys.join(key_file(Algorithm::RS256)))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::metadata(&keys).expect("dir").permissions().mode() & 0o777, 0o700);
        let second = LocalKeySigner::load_or_create(&keys, Algorithm::RS256).expect("reload");
        assert_eq!(first.public_key().kid, second.public_key().kid);
    }

    #[test]
    fn world_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        LocalKeySigner::load_or_create(dir.path(), Algorithm::ES256).expect("create");
        fs::set_permissions(
            dir.path().join(key_file(Algorithm::ES256)),
            fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let error = LocalKeySigner::load_or_create(dir.path(), Algorithm::ES256).expect_err("refused");
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = LocalKeySigner::load_or_create(dir.path(), Algorithm::RS256).expect("create");
        let debug = format!("{signer:?}");
        assert!(debug.contains(&signer.public_key().kid));
        assert!(!debug.contains(&signer.public_key().n.as_deref().expect("rsa")[..20]));
    }
}
