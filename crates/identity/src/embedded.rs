//! The embedded adapter: users in a SQLite file, passwords hashed with argon2id at the OWASP
//! parameters (19 MiB, 2 iterations, 1 lane), and TOTP per RFC 6238.
//!
//! TOTP secrets are stored as they are in SQLite, because the server must compute codes from
//! them. The file is owner-only (0600, in the 0700 data directory), which is the protection the
//! local platform offers for all its keys; the AWS backend leaves secrets to Cognito.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::{digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_kernel::now_unix as now;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::{
    Email, IdentityError, IdentityProvider, LoginOutcome, Password, ProviderSession, SignUpOutcome, TotpEnrolment,
    UNCONFIRMED_SIGN_UP_TTL_SECS, User, UserStatus,
};
use crate::{argon, totp};

/// Wrong answers after which an MFA challenge is burnt.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long an MFA challenge may be answered.
pub const MFA_CHALLENGE_TTL_SECS: i64 = 5 * 60;

#[derive(Debug, Clone)]
pub struct EmbeddedIdentity {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(error.to_string())
}

/// A hash of a random password at the same parameters, verified against when the email is
/// unknown so that an unknown email costs as much as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut password = [0u8; 32];
        let _ = rand::fill(&mut password);
        argon::hash(&password).unwrap_or_default()
    })
}

fn token_digest(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

fn random_bytes<const N: usize>() -> Result<secrecy::zeroize::Zeroizing<[u8; N]>, IdentityError> {
    let mut bytes = secrecy::zeroize::Zeroizing::new([0u8; N]);
    rand::fill(bytes.as_mut()).map_err(|_| unavailable("the system random generator failed"))?;
    Ok(bytes)
}

fn status_from(text: &str) -> UserStatus {
    match text {
        "confirmed" => UserStatus::Confirmed,
        "unconfirmed" => UserStatus::Unconfirmed,
        _ => UserStatus::Disabled,
    }
}

fn immediate(connection: &Connection) -> Result<Transaction<'_>, IdentityError> {
    Transaction::new_unchecked(connection, TransactionBehavior::Immediate).map_err(unavailable)
}

/// A user row: id, password hash and status. A sign-up that has expired unconfirmed is not
/// there, even before [`forget_expired_sign_ups`] deletes it.
fn user_by_email(
    connection: &Connection,
    email: &Email,
) -> Result<Option<(String, String, UserStatus)>, IdentityError> {
    connection
        .query_row(
            "SELECT id, password_hash, status FROM users
             WHERE email = ?1 AND NOT (status = 'unconfirmed' AND created_at <= ?2)",
            params![email.as_str(), now() - UNCONFIRMED_SIGN_UP_TTL_SECS],
            |row| Ok((row.get(0)?, row.get(1)?, status_from(&row.get::<_, String>(2)?))),
        )
        .optional()
        .map_err(unavailable)
}

/// A user row by id: email, password hash and status.
fn user_by_id(connection: &Connection, id: &str) -> Result<Option<(Email, String, UserStatus)>, IdentityError> {
    let row = connection
        .query_row(
            "SELECT email, password_hash, status FROM users WHERE id = ?1",
            params![id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get(1)?,
                    status_from(&row.get::<_, String>(2)?),
                ))
            },
        )
        .optional()
        .map_err(unavailable)?;
    row.map(|(email, hash, status)| Ok((Email::parse(&email)?, hash, status)))
        .transpose()
}

/// The user behind a session, if it may still act: deleted or unconfirmed gives
/// `SessionInvalid`, disabled gives `Disabled`. Returns the user and their password hash.
fn session_user(connection: &Connection, id: &str) -> Result<(User, String), IdentityError> {
    match user_by_id(connection, id)? {
        None => Err(IdentityError::SessionInvalid),
        Some((_, _, UserStatus::Disabled)) => Err(IdentityError::Disabled),
        Some((_, _, UserStatus::Unconfirmed)) => Err(IdentityError::SessionInvalid),
        Some((email, hash, status)) => Ok((
            User {
                id: id.to_owned(),
                email,
                status,
            },
            hash,
        )),
    }
}

/// Deletes the sign-ups that expired unconfirmed ([`UNCONFIRMED_SIGN_UP_TTL_SECS`]).
fn forget_expired_sign_ups(connection: &Connection) -> Result<(), IdentityError> {
    connection
        .execute(
            "DELETE FROM users WHERE status = 'unconfirmed' AND created_at <= ?1",
            params![now() - UNCONFIRMED_SIGN_UP_TTL_SECS],
        )
        .map(|_| ())
        .map_err(unavailable)
}

impl EmbeddedIdentity {
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        let connection = Connection::open(path).map_err(unavailable)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(unavailable)?;
        }
        // Additive schema only: new tables, never a changed one, so older files keep working.
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;
                 CREATE TABLE IF NOT EXISTS users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('unconfirmed', 'confirmed', 'disabled')),
                    created_at INTEGER NOT NULL
                 );
                 -- Emailed codes moved to the auth API's store; files that still have them
                 -- lose them (at worst a pending code has to be sent again).
                 DROP TABLE IF EXISTS one_time_codes;
                 -- TOTP: the active secret (NULL when off), one awaiting confirmation, and the
                 -- last accepted time step, which no later code may repeat.
                 CREATE TABLE IF NOT EXISTS totp_factors (
                    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
                    secret BLOB,
                    pending_secret BLOB,
                    last_used_step INTEGER,
                    updated_at INTEGER NOT NULL
                 );
                 -- Sign-ins waiting for a TOTP code; the token is stored as its SHA-256 digest.
                 CREATE TABLE IF NOT EXISTS mfa_challenges (
                    token_hash BLOB PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    expires_at INTEGER NOT NULL,
                    failed_attempts INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE INDEX IF NOT EXISTS mfa_challenges_by_expiry ON mfa_challenges (expires_at);
                 CREATE INDEX IF NOT EXISTS unconfirmed_users_by_age ON users (created_at)
                    WHERE status = 'unconfirmed';",
            )
            .map_err(unavailable)?;
        // Computed now so the first sign-in with an unknown email is not the slow one.
        let _ = dummy_hash();
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Deletes an account with its TOTP factor and pending challenges. Returns whether it
    /// existed.
    pub async fn delete_user(&self, email: &Email) -> Result<bool, IdentityError> {
        let email = email.clone();
        self.run(move |connection| {
            let deleted = connection
                .execute("DELETE FROM users WHERE email = ?1", params![email.as_str()])
                .map_err(unavailable)?;
            Ok(deleted == 1)
        })
        .await
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

    async fn set_password_hash(&self, user_id: String, hash: String) -> Result<(), IdentityError> {
        self.run(move |connection| {
            connection
                .execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                    params![user_id, hash],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
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

#[async_trait::async_trait]
impl IdentityProvider for EmbeddedIdentity {
    #[instrument(name = "identity.sign_up", skip_all)]
    async fn sign_up(&self, email: &Email, password: &Password) -> Result<SignUpOutcome, IdentityError> {
        // Hash first, even if the email turns out to be taken, so both answers take as long.
        let hash = hash_password(password).await?;
        let email = email.clone();
        self.run(move |connection| {
            let tx = immediate(connection)?;
            forget_expired_sign_ups(&tx)?;
            let id = uuid::Uuid::new_v4().to_string();
            let inserted = tx
                .execute(
                    "INSERT INTO users (id, email, password_hash, status, created_at)
                     VALUES (?1, ?2, ?3, 'unconfirmed', ?4) ON CONFLICT (email) DO NOTHING",
                    params![id, email.as_str(), hash, now()],
                )
                .map_err(unavailable)?;
            let outcome = if inserted == 1 {
                SignUpOutcome::Created { user_id: id }
            } else {
                match user_by_email(&tx, &email)? {
                    Some((user_id, _, UserStatus::Unconfirmed)) => SignUpOutcome::AwaitingConfirmation { user_id },
                    _ => SignUpOutcome::AlreadyRegistered,
                }
            };
            tx.commit().map_err(unavailable)?;
            Ok(outcome)
        })
        .await
    }

    #[instrument(name = "identity.find_user", skip_all)]
    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        let email = email.clone();
        self.run(move |connection| {
            Ok(user_by_email(connection, &email)?.map(|(id, _, status)| User { id, email, status }))
        })
        .await
    }

    #[instrument(name = "identity.confirm_user", skip_all)]
    async fn confirm_user(&self, user_id: &str) -> Result<(), IdentityError> {
        let id = user_id.to_owned();
        let confirmed = self
            .run(move |connection| {
                connection
                    .execute(
                        "UPDATE users SET status = 'confirmed'
                         WHERE id = ?1 AND status = 'unconfirmed' AND created_at > ?2",
                        params![id, now() - UNCONFIRMED_SIGN_UP_TTL_SECS],
                    )
                    .map_err(unavailable)
            })
            .await?;
        if confirmed == 1 {
            Ok(())
        } else {
            Err(IdentityError::InvalidCode)
        }
    }

    #[instrument(name = "identity.authenticate", skip_all)]
    async fn authenticate(&self, email: &Email, password: &Password) -> Result<LoginOutcome, IdentityError> {
        let lookup = email.clone();
        let found = self.run(move |connection| user_by_email(connection, &lookup)).await?;
        // One argon2id verification whether or not the email exists.
        let hash = found
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |(_, hash, _)| hash.clone());
        let matches = password_matches(password, hash).await?;
        let Some((id, _, status)) = found else {
            return Err(IdentityError::InvalidCredentials);
        };
        if !matches {
            return Err(IdentityError::InvalidCredentials);
        }
        match status {
            UserStatus::Disabled => return Err(IdentityError::Disabled),
            UserStatus::Unconfirmed => return Err(IdentityError::NotConfirmed),
            UserStatus::Confirmed => {}
        }
        let user = User {
            id: id.clone(),
            email: email.clone(),
            status,
        };
        let challenge = self
            .run(move |connection| {
                let has_totp: bool = connection
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?1 AND secret IS NOT NULL)",
                        params![id],
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
                if !has_totp {
                    return Ok(None);
                }
                let token = SecretString::from(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?.as_slice()));
                let at = now();
                connection
                    .execute("DELETE FROM mfa_challenges WHERE expires_at <= ?1", params![at])
                    .map_err(unavailable)?;
                connection
                    .execute(
                        "INSERT INTO mfa_challenges (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                        params![token_digest(token.expose_secret()), id, at + MFA_CHALLENGE_TTL_SECS],
                    )
                    .map_err(unavailable)?;
                Ok(Some(token))
            })
            .await?;
        Ok(match challenge {
            Some(challenge) => LoginOutcome::MfaRequired { challenge },
            None => LoginOutcome::Authenticated(ProviderSession { user, credential: None }),
        })
    }

    #[instrument(name = "identity.answer_mfa", skip_all)]
    async fn answer_mfa(&self, email: &Email, challenge: &str, code: &str) -> Result<ProviderSession, IdentityError> {
        let email = email.clone();
        let token_hash = token_digest(challenge);
        let code = SecretString::from(code);
        self.run(move |connection| {
            let tx = immediate(connection)?;
            let result = answer_challenge(&tx, &email, &token_hash, code.expose_secret());
            tx.commit().map_err(unavailable)?;
            result
        })
        .await
    }

    #[instrument(name = "identity.begin_totp_enrolment", skip_all)]
    async fn begin_totp_enrolment(&self, session: &ProviderSession) -> Result<TotpEnrolment, IdentityError> {
        let id = session.user.id.clone();
        self.run(move |connection| {
            let tx = immediate(connection)?;
            let (user, _) = session_user(&tx, &id)?;
            let secret = random_bytes::<{ totp::SECRET_BYTES }>()?;
            tx.execute(
                "INSERT INTO totp_factors (user_id, pending_secret, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                    pending_secret = excluded.pending_secret, updated_at = excluded.updated_at",
                params![id, secret.as_slice(), now()],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            let encoded = totp::base32_encode(secret.as_slice());
            let uri = totp::otpauth_uri(user.email.as_str(), &encoded);
            Ok(TotpEnrolment {
                secret: SecretString::from(encoded),
                otpauth_uri: SecretString::from(uri),
            })
        })
        .await
    }

    #[instrument(name = "identity.confirm_totp_enrolment", skip_all)]
    async fn confirm_totp_enrolment(&self, session: &ProviderSession, code: &str) -> Result<(), IdentityError> {
        let id = session.user.id.clone();
        let code = SecretString::from(code);
        self.run(move |connection| {
            let tx = immediate(connection)?;
            session_user(&tx, &id)?;
            let pending: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT pending_secret FROM totp_factors WHERE user_id = ?1",
                    params![id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?
                .flatten();
            let pending = pending.map(secrecy::zeroize::Zeroizing::new);
            let step = pending
                .as_ref()
                .and_then(|secret| totp::verify(secret, code.expose_secret(), now() as u64, None))
                .ok_or(IdentityError::InvalidCode)?;
            tx.execute(
                "UPDATE totp_factors SET secret = pending_secret, pending_secret = NULL,
                    last_used_step = ?2, updated_at = ?3 WHERE user_id = ?1",
                params![id, step as i64, now()],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    #[instrument(name = "identity.totp_enabled", skip_all)]
    async fn totp_enabled(&self, session: &ProviderSession) -> Result<bool, IdentityError> {
        let id = session.user.id.clone();
        self.run(move |connection| {
            session_user(connection, &id)?;
            connection
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?1 AND secret IS NOT NULL)",
                    params![id],
                    |row| row.get(0),
                )
                .map_err(unavailable)
        })
        .await
    }

    #[instrument(name = "identity.disable_totp", skip_all)]
    async fn disable_totp(&self, session: &ProviderSession) -> Result<(), IdentityError> {
        let id = session.user.id.clone();
        self.run(move |connection| {
            let tx = immediate(connection)?;
            session_user(&tx, &id)?;
            tx.execute(
                "UPDATE totp_factors SET secret = NULL, pending_secret = NULL, updated_at = ?2 WHERE user_id = ?1",
                params![id, now()],
            )
            .map_err(unavailable)?;
            tx.execute("DELETE FROM mfa_challenges WHERE user_id = ?1", params![id])
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    #[instrument(name = "identity.set_password", skip_all)]
    async fn set_password(&self, user_id: &str, new_password: &Password) -> Result<(), IdentityError> {
        let hash = hash_password(new_password).await?;
        let id = user_id.to_owned();
        let updated = self
            .run(move |connection| {
                connection
                    .execute(
                        "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND status = 'confirmed'",
                        params![id, hash],
                    )
                    .map_err(unavailable)
            })
            .await?;
        if updated == 1 {
            Ok(())
        } else {
            Err(IdentityError::InvalidCode)
        }
    }

    #[instrument(name = "identity.change_password", skip_all)]
    async fn change_password(
        &self,
        session: &ProviderSession,
        old: &Password,
        new: &Password,
    ) -> Result<(), IdentityError> {
        let id = session.user.id.clone();
        let (_, current) = self.run(move |connection| session_user(connection, &id)).await?;
        if !password_matches(old, current).await? {
            return Err(IdentityError::InvalidCredentials);
        }
        let hash = hash_password(new).await?;
        self.set_password_hash(session.user.id.clone(), hash).await
    }

    async fn sign_out_everywhere(&self, _user_id: &str) -> Result<(), IdentityError> {
        Ok(())
    }

    #[instrument(name = "identity.disable_user", skip_all)]
    async fn disable_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        let email = email.clone();
        self.run(move |connection| {
            let Some((id, _, _)) = user_by_email(connection, &email)? else {
                return Ok(None);
            };
            connection
                .execute("UPDATE users SET status = 'disabled' WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(Some(User {
                id,
                email,
                status: UserStatus::Disabled,
            }))
        })
        .await
    }

    #[instrument(name = "identity.current_user", skip_all)]
    async fn current_user(&self, user_id: &str) -> Result<Option<User>, IdentityError> {
        let id = user_id.to_owned();
        self.run(move |connection| {
            Ok(user_by_id(connection, &id)?.map(|(email, _, status)| User {
                id: id.clone(),
                email,
                status,
            }))
        })
        .await
    }
}

/// Answers an MFA challenge inside the caller's transaction. Wrong codes count against the
/// challenge, which is burnt at the fifth; a right code consumes it and advances the user's
/// replay guard.
fn answer_challenge(
    connection: &Connection,
    email: &Email,
    token_hash: &[u8],
    code: &str,
) -> Result<ProviderSession, IdentityError> {
    let row: Option<(String, i64, i64)> = connection
        .query_row(
            "SELECT user_id, expires_at, failed_attempts FROM mfa_challenges WHERE token_hash = ?1",
            params![token_hash],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let Some((user_id, expires_at, failed_attempts)) = row else {
        return Err(IdentityError::ChallengeExpired);
    };
    let burn = |connection: &Connection| {
        connection
            .execute("DELETE FROM mfa_challenges WHERE token_hash = ?1", params![token_hash])
            .map_err(unavailable)
    };
    if expires_at <= now() || failed_attempts >= MAX_ATTEMPTS {
        burn(connection)?;
        return Err(IdentityError::ChallengeExpired);
    }
    let Some((user_email, _, status)) = user_by_id(connection, &user_id)? else {
        return Err(IdentityError::ChallengeExpired);
    };
    if user_email != *email {
        // Someone else's challenge: not theirs to spend attempts on.
        return Err(IdentityError::ChallengeExpired);
    }
    if status == UserStatus::Disabled {
        burn(connection)?;
        return Err(IdentityError::Disabled);
    }
    let factor: Option<(Option<Vec<u8>>, Option<i64>)> = connection
        .query_row(
            "SELECT secret, last_used_step FROM totp_factors WHERE user_id = ?1",
            params![user_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let Some((Some(secret), last_used_step)) = factor else {
        // TOTP was turned off after the challenge was issued.
        burn(connection)?;
        return Err(IdentityError::ChallengeExpired);
    };
    let secret = secrecy::zeroize::Zeroizing::new(secret);
    let last_used_step = last_used_step.map(|step| step.max(0) as u64);
    match totp::verify(&secret, code, now() as u64, last_used_step) {
        Some(step) => {
            burn(connection)?;
            connection
                .execute(
                    "UPDATE totp_factors SET last_used_step = ?2, updated_at = ?3 WHERE user_id = ?1",
                    params![user_id, step as i64, now()],
                )
                .map_err(unavailable)?;
            Ok(ProviderSession {
                user: User {
                    id: user_id,
                    email: user_email,
                    status,
                },
                credential: None,
            })
        }
        None => {
            if failed_attempts + 1 >= MAX_ATTEMPTS {
                burn(connection)?;
            } else {
                connection
                    .execute(
                        "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE token_hash = ?1",
                        params![token_hash],
                    )
                    .map_err(unavailable)?;
            }
            Err(IdentityError::InvalidCode)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(name: &str) -> Email {
        Email::parse(&format!("{name}@example.com")).expect("email")
    }

    fn password(text: &str) -> Password {
        Password::parse(text).expect("password")
    }

    fn open(dir: &tempfile::TempDir) -> EmbeddedIdentity {
        EmbeddedIdentity::open(&dir.path().join("identity.sqlite")).expect("open")
    }

    async fn sql(store: &EmbeddedIdentity, statement: &'static str) {
        store
            .run(move |c| c.execute_batch(statement).map_err(unavailable))
            .await
            .expect("sql");
    }

    async fn signed_in(store: &EmbeddedIdentity, email: &Email) -> ProviderSession {
        let SignUpOutcome::Created { user_id } = store
            .sign_up(email, &password("correct horse battery"))
            .await
            .expect("sign up")
        else {
            panic!("a new address is created");
        };
        store.confirm_user(&user_id).await.expect("confirm");
        match store
            .authenticate(email, &password("correct horse battery"))
            .await
            .expect("sign in")
        {
            LoginOutcome::Authenticated(session) => session,
            LoginOutcome::MfaRequired { .. } => panic!("no MFA yet"),
        }
    }

    #[tokio::test]
    async fn stored_hash_is_argon2id_with_owasp_parameters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("ada");
        store
            .sign_up(&email, &password("correct horse battery"))
            .await
            .expect("sign up");
        let hash: String = store
            .run(|c| {
                c.query_row("SELECT password_hash FROM users", [], |r| r.get(0))
                    .map_err(unavailable)
            })
            .await
            .expect("hash");
        let parsed = argon2::PasswordHash::new(&hash).expect("PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.get_decimal("m"), Some(19 * 1024));
        assert_eq!(parsed.params.get_decimal("t"), Some(2));
        assert_eq!(parsed.params.get_decimal("p"), Some(1));
        assert!(!hash.contains("horse"));
        // The dummy hash verified for unknown emails costs exactly as much.
        let dummy = argon2::PasswordHash::new(dummy_hash()).expect("dummy PHC string");
        assert_eq!(dummy.algorithm, parsed.algorithm);
        assert_eq!(dummy.params, parsed.params);
    }

    #[tokio::test]
    async fn the_database_file_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        open(&dir);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("identity.sqlite"))
            .expect("db")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn an_unconfirmed_sign_up_expires_and_frees_the_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("squatted");
        let SignUpOutcome::Created { user_id: squatter } = store
            .sign_up(&email, &password("squatter chosen words"))
            .await
            .expect("sign up")
        else {
            panic!("a new address is created");
        };
        // Within the day the address stays taken...
        assert_eq!(
            store
                .sign_up(&email, &password("owner chosen words"))
                .await
                .expect("again"),
            SignUpOutcome::AwaitingConfirmation {
                user_id: squatter.clone()
            }
        );
        // ...after it, the unconfirmed sign-up is gone (not found, not confirmable) and the
        // owner can register.
        sql(&store, "UPDATE users SET created_at = created_at - 86400").await;
        assert_eq!(store.find_user(&email).await.expect("find"), None);
        assert!(matches!(
            store.confirm_user(&squatter).await,
            Err(IdentityError::InvalidCode)
        ));
        let SignUpOutcome::Created { user_id: owner } = store
            .sign_up(&email, &password("owner chosen words"))
            .await
            .expect("sign up")
        else {
            panic!("the expired sign-up freed the address");
        };
        assert_ne!(owner, squatter);
        store.confirm_user(&owner).await.expect("confirm");
        assert!(matches!(
            store.authenticate(&email, &password("owner chosen words")).await,
            Ok(LoginOutcome::Authenticated(_))
        ));
        assert!(matches!(
            store.authenticate(&email, &password("squatter chosen words")).await,
            Err(IdentityError::InvalidCredentials)
        ));
    }

    #[tokio::test]
    async fn registering_a_confirmed_address_is_reported_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("taken");
        signed_in(&store, &email).await;
        assert_eq!(
            store
                .sign_up(&email, &password("someone else entirely"))
                .await
                .expect("sign up"),
            SignUpOutcome::AlreadyRegistered
        );
        // The notice is the auth API's to send; the password stands.
        assert!(matches!(
            store.authenticate(&email, &password("someone else entirely")).await,
            Err(IdentityError::InvalidCredentials)
        ));
    }

    #[tokio::test]
    async fn confirming_and_setting_a_password_need_the_right_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("ada");
        let SignUpOutcome::Created { user_id } = store
            .sign_up(&email, &password("correct horse battery"))
            .await
            .expect("sign up")
        else {
            panic!("a new address is created");
        };
        // No password reset before the address is proven.
        assert!(matches!(
            store.set_password(&user_id, &password("a new long password")).await,
            Err(IdentityError::InvalidCode)
        ));
        store.confirm_user(&user_id).await.expect("confirm");
        assert!(matches!(
            store.confirm_user(&user_id).await,
            Err(IdentityError::InvalidCode)
        ));
        store
            .set_password(&user_id, &password("a new long password"))
            .await
            .expect("set");
        assert!(matches!(
            store.authenticate(&email, &password("a new long password")).await,
            Ok(LoginOutcome::Authenticated(_))
        ));
        store.disable_user(&email).await.expect("disable");
        assert!(matches!(
            store.set_password(&user_id, &password("the thief's password")).await,
            Err(IdentityError::InvalidCode)
        ));
        assert!(matches!(
            store
                .set_password("no-such-user", &password("the thief's password"))
                .await,
            Err(IdentityError::InvalidCode)
        ));
    }

    #[tokio::test]
    async fn expired_mfa_challenges_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("ada");
        let session = signed_in(&store, &email).await;
        let enrolment = store.begin_totp_enrolment(&session).await.expect("begin");
        let key = totp::base32_decode(enrolment.secret.expose_secret()).expect("base32");
        let now = now() as u64;
        store
            .confirm_totp_enrolment(&session, &totp::code_at(&key, now))
            .await
            .expect("confirm");
        let LoginOutcome::MfaRequired { challenge } = store
            .authenticate(&email, &password("correct horse battery"))
            .await
            .expect("sign in")
        else {
            panic!("MFA is on");
        };
        sql(&store, "UPDATE mfa_challenges SET expires_at = expires_at - 300").await;
        assert!(matches!(
            store
                .answer_mfa(&email, challenge.expose_secret(), &totp::code_at(&key, now + 30))
                .await,
            Err(IdentityError::ChallengeExpired)
        ));
    }

    /// Collects formatted log output.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Everything this test binary logs, from a global subscriber: a scoped one would miss
    /// events whose callsites other tests' threads registered first.
    fn captured_logs() -> &'static Captured {
        static LOGS: OnceLock<Captured> = OnceLock::new();
        LOGS.get_or_init(|| {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(captured.clone())
                .with_ansi(false)
                .without_time()
                // Span fields are where a leak would hide: print every span as it closes.
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
            captured
        })
    }

    #[tokio::test]
    async fn logs_never_hold_a_password_secret_or_token() {
        let captured = captured_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("logged-ada");
        let mut secrets = vec!["correct horse battery".to_owned()];
        let session = signed_in(&store, &email).await;
        store
            .set_password(&session.user.id, &password("another horse battery"))
            .await
            .expect("set");
        secrets.push("another horse battery".to_owned());
        store
            .set_password(&session.user.id, &password("correct horse battery"))
            .await
            .expect("set back");
        let enrolment = store.begin_totp_enrolment(&session).await.expect("begin");
        let key = totp::base32_decode(enrolment.secret.expose_secret()).expect("base32");
        let now = now() as u64;
        let code = totp::code_at(&key, now);
        store.confirm_totp_enrolment(&session, &code).await.expect("confirm");
        let LoginOutcome::MfaRequired { challenge } = store
            .authenticate(&email, &password("correct horse battery"))
            .await
            .expect("sign in")
        else {
            panic!("MFA is on");
        };
        let next = totp::code_at(&key, now + 30);
        store
            .answer_mfa(&email, challenge.expose_secret(), &next)
            .await
            .expect("answer");
        secrets.extend([
            enrolment.secret.expose_secret().to_owned(),
            challenge.expose_secret().to_owned(),
            code,
            next,
        ]);

        let logs = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
        assert!(
            logs.contains("identity.set_password"),
            "the spans were captured: {logs}"
        );
        for secret in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "a secret leaked into the logs:\n{logs}"
            );
        }
    }

    #[tokio::test]
    async fn deleting_a_user_removes_their_factor_and_challenges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("ada");
        let session = signed_in(&store, &email).await;
        store.begin_totp_enrolment(&session).await.expect("begin");
        assert!(store.delete_user(&email).await.expect("delete"));
        let left: i64 = store
            .run(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM totp_factors) + (SELECT COUNT(*) FROM mfa_challenges)",
                    [],
                    |r| r.get(0),
                )
                .map_err(unavailable)
            })
            .await
            .expect("count");
        assert_eq!(left, 0);
        assert!(!store.delete_user(&email).await.expect("delete again"));
    }
}
