//! The embedded adapter: a JSON object of name → value in a file only its owner can read.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::{SecretError, SecretSink, SecretSource};

#[derive(Debug, Clone)]
pub struct LocalSecretsFile {
    path: PathBuf,
}

fn unavailable(path: &Path, error: impl std::fmt::Display) -> SecretError {
    SecretError::Unavailable(format!("{}: {error}", path.display()))
}

impl LocalSecretsFile {
    /// Uses `path`, creating an empty owner-only file if there is none.
    pub fn open(path: &Path) -> Result<Self, SecretError> {
        let file = Self {
            path: path.to_path_buf(),
        };
        if !path.exists() {
            file.write_all(&BTreeMap::new())?;
        }
        file.check_private()?;
        Ok(file)
    }

    fn read_all(&self) -> Result<BTreeMap<String, String>, SecretError> {
        let text = Zeroizing::new(fs::read_to_string(&self.path).map_err(|e| unavailable(&self.path, e))?);
        // The parse error is not included: it could quote a secret.
        serde_json::from_str(&text).map_err(|_| unavailable(&self.path, "is not a JSON object of strings"))
    }

    /// Replaces the file atomically (write a 0600 temporary, then rename over the old one).
    fn write_all(&self, secrets: &BTreeMap<String, String>) -> Result<(), SecretError> {
        use std::os::unix::fs::OpenOptionsExt;
        let json = Zeroizing::new(serde_json::to_vec_pretty(secrets).map_err(|e| unavailable(&self.path, e))?);
        let temporary = self.path.with_extension("tmp");
        let _ = fs::remove_file(&temporary);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|e| unavailable(&temporary, e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| unavailable(&temporary, e))?;
        fs::rename(&temporary, &self.path).map_err(|e| unavailable(&self.path, e))
    }

    fn check_private(&self) -> Result<(), SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&self.path)
            .map_err(|e| unavailable(&self.path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(unavailable(
                &self.path,
                format!("is readable by others (mode {:o}); run chmod 600 on it", mode & 0o777),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SecretSource for LocalSecretsFile {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.check_private()?;
        let mut secrets = self.read_all()?;
        let value = secrets
            .remove(name)
            .ok_or_else(|| SecretError::NotFound(name.to_owned()));
        for (_, mut other) in secrets {
            zeroize::Zeroize::zeroize(&mut other);
        }
        value.map(SecretString::from)
    }

    async fn get_or_create(
        &self,
        name: &str,
        generate: &(dyn Fn() -> Result<SecretString, SecretError> + Sync),
    ) -> Result<SecretString, SecretError> {
        match self.get(name).await {
            Err(SecretError::NotFound(_)) => {
                let value = generate()?;
                self.put(name, &value).await?;
                Ok(value)
            }
            found => found,
        }
    }
}

#[async_trait::async_trait]
impl SecretSink for LocalSecretsFile {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let mut secrets = self.read_all()?;
        secrets.insert(name.to_owned(), value.expose_secret().to_owned());
        let result = self.write_all(&secrets);
        for (_, mut other) in secrets {
            zeroize::Zeroize::zeroize(&mut other);
        }
        result
    }
}
