//! The embedded adapter: users in a SQLite file, passwords hashed with argon2id at the OWASP
//! parameters (19 MiB, 2 iterations, 1 lane), and TOTP per RFC 6238.
//!
//! TOTP secrets are stored as they are in SQLite, because the server must compute codes from
//! them. The file is owner-only (0600, in the 0700 data directory), which is the protection the
//! local platform offers for all its keys; the AWS backend leaves secrets to Cognito.

mod mfa;
mod provider;
mod schema;
#[cfg(test)]
mod tests;
mod users;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

pub use mfa::{MAX_ATTEMPTS, MFA_CHALLENGE_TTL_SECS};
use rusqlite::Connection;

use crate::argon;
use crate::{Email, IdentityError, Password};

#[derive(Debug, Clone)]
pub struct EmbeddedIdentity {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(error.to_string())
}

/// Every SQLite failure is the store being unavailable to the caller; the text is for the logs.
impl From<rusqlite::Error> for IdentityError {
    fn from(error: rusqlite::Error) -> Self {
        unavailable(error)
    }
}

/// A hash at the same parameters that no password matches, verified against when the email is
/// unknown so that an unknown email costs as much as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| argon::unmatchable().unwrap_or_default())
}

impl EmbeddedIdentity {
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        let connection = Connection::open(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(unavailable)?;
        }
        schema::create(&connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Deletes an account with its TOTP factor and pending challenges. Returns whether it
    /// existed.
    pub async fn delete_user(&self, email: &Email) -> Result<bool, IdentityError> {
        let deleted = self
            .execute("DELETE FROM users WHERE email = ?1", (email.as_str().to_owned(),))
            .await?;
        Ok(deleted == 1)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, IdentityError> + Send + 'static,
    ) -> Result<T, IdentityError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let guard = connection
                .lock()
                .map_err(|_| unavailable("identity store lock poisoned"))?;
            work(&guard)
        })
        .await
        .map_err(unavailable)?
    }

    /// Runs one statement on the blocking pool; returns how many rows it changed.
    async fn execute<P: rusqlite::Params + Send + 'static>(
        &self,
        sql: &'static str,
        params: P,
    ) -> Result<usize, IdentityError> {
        self.run(move |connection| Ok(connection.execute(sql, params)?)).await
    }
}

/// argon2id-hashes a password on the blocking pool, if the hashing gate admits it.
async fn hash_password(password: &Password) -> Result<String, IdentityError> {
    let password = password.clone();
    argon::admitted(move || argon::hash(password.expose().as_bytes()))
        .await?
        .map_err(unavailable)
}

/// Verifies a password against a stored PHC string on the blocking pool, if the hashing gate
/// admits it.
async fn password_matches(password: &Password, hash: String) -> Result<bool, IdentityError> {
    let password = password.clone();
    argon::admitted(move || argon::verify(password.expose().as_bytes(), &hash))
        .await?
        .map_err(unavailable)
}
