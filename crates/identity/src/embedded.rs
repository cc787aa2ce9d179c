//! The embedded adapter: users in a SQLite file, passwords hashed with argon2id at the OWASP
//! parameters (19 MiB, 2 iterations, 1 lane).

use std::path::Path;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Email, IdentityError, IdentityProvider, Password, SignUpOutcome, User, UserStatus};

#[derive(Debug, Clone)]
pub struct EmbeddedIdentity {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(error.to_string())
}

/// argon2id with OWASP's recommended minimum: m = 19 MiB, t = 2, p = 1.
pub fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl EmbeddedIdentity {
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        let connection = Connection::open(path).map_err(unavailable)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('unconfirmed', 'confirmed', 'disabled')),
                    created_at INTEGER NOT NULL
                 );",
            )
            .map_err(unavailable)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
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
}

fn status_from(text: &str) -> UserStatus {
    match text {
        "confirmed" => UserStatus::Confirmed,
        "unconfirmed" => UserStatus::Unconfirmed,
        _ => UserStatus::Disabled,
    }
}

#[async_trait::async_trait]
impl IdentityProvider for EmbeddedIdentity {
    async fn sign_up(&self, email: &Email, password: &Password) -> Result<SignUpOutcome, IdentityError> {
        let password = password.clone();
        // Hash first, even if the email turns out to be taken, so both answers take as long.
        let hash = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            hasher()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
        let email = email.clone();
        self.run(move |connection| {
            let id = uuid::Uuid::new_v4().to_string();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let inserted = connection
                .execute(
                    "INSERT INTO users (id, email, password_hash, status, created_at)
                     VALUES (?1, ?2, ?3, 'unconfirmed', ?4) ON CONFLICT (email) DO NOTHING",
                    params![id, email.as_str(), hash, now],
                )
                .map_err(unavailable)?;
            Ok(if inserted == 1 {
                SignUpOutcome::Created { user_id: id }
            } else {
                SignUpOutcome::AlreadyExists
            })
        })
        .await
    }

    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        let email = email.clone();
        self.run(move |connection| {
            let row = connection
                .query_row(
                    "SELECT id, status FROM users WHERE email = ?1",
                    params![email.as_str()],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(row.map(|(id, status)| User {
                id,
                email,
                status: status_from(&status),
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHash;

    #[tokio::test]
    async fn stored_hash_is_argon2id_with_owasp_parameters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedIdentity::open(&dir.path().join("identity.sqlite")).expect("open");
        let email = Email::parse("ada@example.com").expect("email");
        store
            .sign_up(&email, &Password::parse("correct horse battery").expect("pw"))
            .await
            .expect("sign up");
        let hash: String = store
            .run(|c| {
                c.query_row("SELECT password_hash FROM users", [], |r| r.get(0))
                    .map_err(unavailable)
            })
            .await
            .expect("hash");
        let parsed = PasswordHash::new(&hash).expect("PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.get_decimal("m"), Some(19 * 1024));
        assert_eq!(parsed.params.get_decimal("t"), Some(2));
        assert_eq!(parsed.params.get_decimal("p"), Some(1));
        assert!(!hash.contains("horse"));
    }
}
