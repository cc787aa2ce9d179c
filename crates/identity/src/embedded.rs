//! The embedded adapter: users in a SQLite file, passwords hashed with argon2id at the OWASP
//! parameters (19 MiB, 2 iterations, 1 lane), TOTP per RFC 6238, and emailed codes written to a
//! local outbox file instead of being sent.
//!
//! Next to `identity.sqlite` it keeps `outbox.log` (0600): one line per code "sent", which is how
//! a person running Rampart locally reads their confirmation and reset codes. The codes
//! themselves are stored only as SHA-256 digests bound to the user and purpose, expire
//! (confirmation 24 h, reset 10 min, as ASVS 5.0 6.5.5 asks), are single-use and are burnt after five wrong attempts.
//!
//! TOTP secrets are stored as they are in SQLite, because the server must compute codes from
//! them. The file is owner-only (0600, in the 0700 data directory), which is the protection the
//! local platform offers for all its keys; the AWS backend leaves secrets to Cognito.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_kernel::now_unix as now;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::{
    Email, IdentityError, IdentityProvider, LoginOutcome, Password, ProviderSession, SignUpOutcome, TotpEnrolment,
    User, UserStatus,
};
use crate::{argon, totp};

/// How long a sign-up confirmation code is valid.
pub const CONFIRMATION_CODE_TTL_SECS: i64 = 24 * 60 * 60;
/// How long a password-reset code is valid.
pub const RESET_CODE_TTL_SECS: i64 = 10 * 60;
/// Wrong answers after which a code or MFA challenge is burnt.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long an MFA challenge may be answered.
pub const MFA_CHALLENGE_TTL_SECS: i64 = 5 * 60;
/// The outbox file, created next to the SQLite file.
pub const OUTBOX_FILE: &str = rampart_mailer::outbox::OUTBOX_FILE;

#[derive(Debug, Clone)]
pub struct EmbeddedIdentity {
    connection: Arc<Mutex<Connection>>,
    outbox: PathBuf,
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

/// The emailed codes, one pending per user and purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodePurpose {
    ConfirmSignUp,
    ResetPassword,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmSignUp => "confirm_sign_up",
            Self::ResetPassword => "reset_password",
        }
    }

    fn ttl_secs(self) -> i64 {
        match self {
            Self::ConfirmSignUp => CONFIRMATION_CODE_TTL_SECS,
            Self::ResetPassword => RESET_CODE_TTL_SECS,
        }
    }
}

/// The stored form of a code: SHA-256 over purpose, user and code, so a digest is useless for any
/// other account or purpose.
fn code_digest(purpose: CodePurpose, user_id: &str, code: &str) -> Vec<u8> {
    let input = format!(
        "rampart-code\0{}\0{user_id}\0{}",
        purpose.as_str(),
        normalise_code(code)
    );
    digest::digest(&digest::SHA256, input.as_bytes()).as_ref().to_vec()
}

fn token_digest(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

fn random_bytes<const N: usize>() -> Result<secrecy::zeroize::Zeroizing<[u8; N]>, IdentityError> {
    let mut bytes = secrecy::zeroize::Zeroizing::new([0u8; N]);
    rand::fill(bytes.as_mut()).map_err(|_| unavailable("the system random generator failed"))?;
    Ok(bytes)
}

/// The characters of an emailed code: Crockford's base32, without the letters that read
/// like digits (I, L, O, U). Codes are matched case-insensitively.
pub const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters per emailed code: 40 random bits, so a year of guessing at the auth API's code
/// budget stays far below one chance in a million (`docs/security.md`).
pub const CODE_LENGTH: usize = 8;

/// A uniformly random code: each character takes five bits of a random byte, so none is
/// likelier than another.
fn random_code() -> Result<SecretString, IdentityError> {
    let bytes = random_bytes::<CODE_LENGTH>()?;
    let code: String = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b & 0x1f)]))
        .collect();
    Ok(SecretString::from(code))
}

/// A code as typed: case and surrounding space do not matter.
fn normalise_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
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

/// A user row: id, password hash and status.
fn user_by_email(
    connection: &Connection,
    email: &Email,
) -> Result<Option<(String, String, UserStatus)>, IdentityError> {
    connection
        .query_row(
            "SELECT id, password_hash, status FROM users WHERE email = ?1",
            params![email.as_str()],
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

/// Replaces the user's pending code for `purpose` with a new one and returns it.
fn issue_code(connection: &Connection, user_id: &str, purpose: CodePurpose) -> Result<SecretString, IdentityError> {
    let code = random_code()?;
    connection
        .execute(
            "INSERT INTO one_time_codes (user_id, purpose, code_hash, expires_at, failed_attempts)
             VALUES (?1, ?2, ?3, ?4, 0)
             ON CONFLICT (user_id, purpose) DO UPDATE SET
                code_hash = excluded.code_hash, expires_at = excluded.expires_at, failed_attempts = 0",
            params![
                user_id,
                purpose.as_str(),
                code_digest(purpose, user_id, code.expose_secret()),
                now() + purpose.ttl_secs()
            ],
        )
        .map_err(unavailable)?;
    Ok(code)
}

/// Checks and, if right, consumes the user's pending code. A wrong code counts an attempt; the
/// fifth wrong attempt, like expiry, deletes the code.
fn consume_code(
    connection: &Connection,
    user_id: &str,
    purpose: CodePurpose,
    code: &str,
) -> Result<bool, IdentityError> {
    let row: Option<(Vec<u8>, i64, i64)> = connection
        .query_row(
            "SELECT code_hash, expires_at, failed_attempts FROM one_time_codes WHERE user_id = ?1 AND purpose = ?2",
            params![user_id, purpose.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let Some((stored, expires_at, failed_attempts)) = row else {
        return Ok(false);
    };
    let delete = |connection: &Connection| {
        connection
            .execute(
                "DELETE FROM one_time_codes WHERE user_id = ?1 AND purpose = ?2",
                params![user_id, purpose.as_str()],
            )
            .map_err(unavailable)
    };
    if expires_at <= now() || failed_attempts >= MAX_ATTEMPTS {
        delete(connection)?;
        return Ok(false);
    }
    let candidate = code_digest(purpose, user_id, code);
    if constant_time::verify_slices_are_equal(&stored, &candidate).is_ok() {
        delete(connection)?;
        return Ok(true);
    }
    if failed_attempts + 1 >= MAX_ATTEMPTS {
        delete(connection)?;
    } else {
        connection
            .execute(
                "UPDATE one_time_codes SET failed_attempts = failed_attempts + 1 WHERE user_id = ?1 AND purpose = ?2",
                params![user_id, purpose.as_str()],
            )
            .map_err(unavailable)?;
    }
    Ok(false)
}

/// "Sends" a code by appending it to the outbox (0600).
fn deliver(outbox: &Path, email: &Email, purpose: CodePurpose, code: &SecretString) -> Result<(), IdentityError> {
    let line = secrecy::zeroize::Zeroizing::new(format!(
        "{} to={} purpose={} code={} valid_for={}s\n",
        now(),
        email.as_str(),
        purpose.as_str(),
        code.expose_secret(),
        purpose.ttl_secs()
    ));
    append_to_outbox(outbox, &line)
}

fn append_to_outbox(outbox: &Path, line: &str) -> Result<(), IdentityError> {
    rampart_mailer::outbox::append(outbox, line).map_err(unavailable)
}

/// Sign-ups not confirmed within the confirmation code's lifetime expire, freeing the address
/// for its real owner (nobody can hold an address they cannot read mail for).
fn forget_expired_sign_ups(connection: &Connection) -> Result<(), IdentityError> {
    connection
        .execute(
            "DELETE FROM users WHERE status = 'unconfirmed' AND created_at <= ?1",
            params![now() - CONFIRMATION_CODE_TTL_SECS],
        )
        .map(|_| ())
        .map_err(unavailable)
}

/// The only log line about a code: who it went to and why, never the code.
fn log_delivery(email: &Email, purpose: CodePurpose) {
    tracing::info!(
        email = email.as_str(),
        purpose = purpose.as_str(),
        "code delivered to outbox"
    );
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
                 -- Emailed codes, one pending per user and purpose, stored as SHA-256 digests.
                 CREATE TABLE IF NOT EXISTS one_time_codes (
                    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    purpose TEXT NOT NULL CHECK (purpose IN ('confirm_sign_up', 'reset_password')),
                    code_hash BLOB NOT NULL,
                    expires_at INTEGER NOT NULL,
                    failed_attempts INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (user_id, purpose)
                 );
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
            outbox: path.with_file_name(OUTBOX_FILE),
        })
    }

    /// Where codes are "emailed": `outbox.log` next to the SQLite file, one line per message,
    /// `<unix time> to=<email> purpose=<confirm_sign_up|reset_password> code=<8 characters> valid_for=<s>s`.
    pub fn outbox_path(&self) -> &Path {
        &self.outbox
    }

    /// Deletes an account with its codes, TOTP factor and pending challenges. Returns whether it
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

    /// Issues a code for `purpose` to the account with this email if it is in `wanted` status,
    /// writing it to the outbox in the same transaction. Silently does nothing otherwise.
    async fn send_code(&self, email: &Email, purpose: CodePurpose, wanted: UserStatus) -> Result<(), IdentityError> {
        let recipient = email.clone();
        let outbox = self.outbox.clone();
        let delivered = self
            .run(move |connection| {
                let tx = immediate(connection)?;
                forget_expired_sign_ups(&tx)?;
                let delivered = match user_by_email(&tx, &recipient)? {
                    Some((id, _, status)) if status == wanted => {
                        let code = issue_code(&tx, &id, purpose)?;
                        deliver(&outbox, &recipient, purpose, &code)?;
                        true
                    }
                    _ => false,
                };
                tx.commit().map_err(unavailable)?;
                Ok(delivered)
            })
            .await?;
        if delivered {
            log_delivery(email, purpose);
        }
        Ok(())
    }

    /// Checks and consumes a code for the account with this email, which must not be disabled.
    /// Returns the user id.
    async fn redeem_code(&self, email: &Email, purpose: CodePurpose, code: &str) -> Result<String, IdentityError> {
        let email = email.clone();
        let code = SecretString::from(code);
        self.run(move |connection| {
            let tx = immediate(connection)?;
            let user = user_by_email(&tx, &email)?;
            let redeemed = match &user {
                Some((id, _, status)) if *status != UserStatus::Disabled => {
                    consume_code(&tx, id, purpose, code.expose_secret())?
                }
                _ => false,
            };
            tx.commit().map_err(unavailable)?;
            match user {
                Some((id, _, _)) if redeemed => Ok(id),
                _ => Err(IdentityError::InvalidCode),
            }
        })
        .await
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
        let recipient = email.clone();
        let outbox = self.outbox.clone();
        let outcome = self
            .run(move |connection| {
                let tx = immediate(connection)?;
                forget_expired_sign_ups(&tx)?;
                let id = uuid::Uuid::new_v4().to_string();
                let inserted = tx
                    .execute(
                        "INSERT INTO users (id, email, password_hash, status, created_at)
                         VALUES (?1, ?2, ?3, 'unconfirmed', ?4) ON CONFLICT (email) DO NOTHING",
                        params![id, recipient.as_str(), hash, now()],
                    )
                    .map_err(unavailable)?;
                if inserted != 1 {
                    // The owner learns of it by mail: a fresh code if they never confirmed, a
                    // notice (sent by the auth API) if they did.
                    let outcome = match user_by_email(&tx, &recipient)? {
                        Some((id, _, UserStatus::Unconfirmed)) => {
                            let code = issue_code(&tx, &id, CodePurpose::ConfirmSignUp)?;
                            deliver(&outbox, &recipient, CodePurpose::ConfirmSignUp, &code)?;
                            SignUpOutcome::AwaitingConfirmation
                        }
                        Some(_) => SignUpOutcome::AlreadyRegistered,
                        None => SignUpOutcome::AwaitingConfirmation,
                    };
                    tx.commit().map_err(unavailable)?;
                    return Ok(outcome);
                }
                // The code is written to the outbox before the commit: either the account
                // exists and its owner has the code, or neither happened.
                let code = issue_code(&tx, &id, CodePurpose::ConfirmSignUp)?;
                deliver(&outbox, &recipient, CodePurpose::ConfirmSignUp, &code)?;
                tx.commit().map_err(unavailable)?;
                Ok(SignUpOutcome::Created { user_id: id })
            })
            .await?;
        if matches!(outcome, SignUpOutcome::Created { .. }) {
            log_delivery(email, CodePurpose::ConfirmSignUp);
        }
        Ok(outcome)
    }

    #[instrument(name = "identity.find_user", skip_all)]
    async fn find_user(&self, email: &Email) -> Result<Option<User>, IdentityError> {
        let email = email.clone();
        self.run(move |connection| {
            Ok(user_by_email(connection, &email)?.map(|(id, _, status)| User { id, email, status }))
        })
        .await
    }

    #[instrument(name = "identity.confirm_sign_up", skip_all)]
    async fn confirm_sign_up(&self, email: &Email, code: &str) -> Result<(), IdentityError> {
        let id = self.redeem_code(email, CodePurpose::ConfirmSignUp, code).await?;
        self.run(move |connection| {
            connection
                .execute(
                    "UPDATE users SET status = 'confirmed' WHERE id = ?1 AND status = 'unconfirmed'",
                    params![id],
                )
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    #[instrument(name = "identity.resend_confirmation", skip_all)]
    async fn resend_confirmation(&self, email: &Email) -> Result<(), IdentityError> {
        self.send_code(email, CodePurpose::ConfirmSignUp, UserStatus::Unconfirmed)
            .await
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

    #[instrument(name = "identity.forgot_password", skip_all)]
    async fn forgot_password(&self, email: &Email) -> Result<(), IdentityError> {
        self.send_code(email, CodePurpose::ResetPassword, UserStatus::Confirmed)
            .await
    }

    #[instrument(name = "identity.reset_password", skip_all)]
    async fn reset_password(&self, email: &Email, code: &str, new_password: &Password) -> Result<(), IdentityError> {
        // The code is consumed before the (slow) hash, so two requests racing with one code
        // cannot both succeed.
        let id = self.redeem_code(email, CodePurpose::ResetPassword, code).await?;
        let hash = hash_password(new_password).await?;
        self.set_password_hash(id, hash).await
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

    /// A fresh store holding one unconfirmed sign-up of `name`, and its confirmation code.
    async fn signed_up(name: &str) -> (tempfile::TempDir, EmbeddedIdentity, Email, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email(name);
        store
            .sign_up(&email, &password("correct horse battery"))
            .await
            .expect("sign up");
        let code = outbox_code(&store, &email, CodePurpose::ConfirmSignUp);
        (dir, store, email, code)
    }

    /// The last code the outbox holds for this email and purpose.
    fn outbox_code(store: &EmbeddedIdentity, email: &Email, purpose: CodePurpose) -> String {
        let text = std::fs::read_to_string(store.outbox_path()).expect("outbox");
        let needle = format!("to={} purpose={} code=", email.as_str(), purpose.as_str());
        text.lines()
            .rev()
            .find_map(|line| line.split_once(&needle).map(|(_, rest)| rest[..CODE_LENGTH].to_owned()))
            .expect("a code in the outbox")
    }

    async fn sql(store: &EmbeddedIdentity, statement: &'static str) {
        store
            .run(move |c| c.execute_batch(statement).map_err(unavailable))
            .await
            .expect("sql");
    }

    async fn signed_in(store: &EmbeddedIdentity, email: &Email) -> ProviderSession {
        store
            .sign_up(email, &password("correct horse battery"))
            .await
            .expect("sign up");
        let code = outbox_code(store, email, CodePurpose::ConfirmSignUp);
        store.confirm_sign_up(email, &code).await.expect("confirm");
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
    async fn codes_are_stored_hashed_and_the_outbox_is_owner_only() {
        let (dir, store, _email, code) = signed_up("ada").await;
        assert!(
            code.len() == CODE_LENGTH && code.bytes().all(|b| CODE_ALPHABET.contains(&b)),
            "{code:?}"
        );
        let (stored, expires_at): (Vec<u8>, i64) = store
            .run(|c| {
                c.query_row("SELECT code_hash, expires_at FROM one_time_codes", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(unavailable)
            })
            .await
            .expect("row");
        assert_eq!(stored.len(), 32, "a SHA-256 digest");
        assert!(!stored.windows(6).any(|w| w == code.as_bytes()));
        let ttl = expires_at - now();
        assert!((CONFIRMATION_CODE_TTL_SECS - 5..=CONFIRMATION_CODE_TTL_SECS).contains(&ttl));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.outbox_path())
                .expect("outbox")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.path().join("identity.sqlite"))
                .expect("db")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn random_codes_use_every_character_of_the_alphabet_evenly() {
        let codes: Vec<String> = (0..2000)
            .map(|_| random_code().expect("code").expose_secret().to_owned())
            .collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == CODE_LENGTH && c.bytes().all(|b| CODE_ALPHABET.contains(&b)))
        );
        let distinct: std::collections::HashSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len(), "2000 draws from 2^40 should not collide");
        // 16,000 characters over 32 symbols: 500 each on average; a biased draw (e.g. a modulo
        // over an alphabet that does not divide 256) would push some far off.
        for symbol in CODE_ALPHABET {
            let seen = codes.iter().flat_map(|c| c.bytes()).filter(|b| b == symbol).count();
            assert!((380..=620).contains(&seen), "{} seen {seen} times", char::from(*symbol));
        }
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
            SignUpOutcome::AwaitingConfirmation
        );
        // ...after it, the unconfirmed sign-up is gone and the owner can register.
        sql(&store, "UPDATE users SET created_at = created_at - 86400").await;
        let SignUpOutcome::Created { user_id: owner } = store
            .sign_up(&email, &password("owner chosen words"))
            .await
            .expect("sign up")
        else {
            panic!("the expired sign-up freed the address");
        };
        assert_ne!(owner, squatter);
        let code = outbox_code(&store, &email, CodePurpose::ConfirmSignUp);
        store.confirm_sign_up(&email, &code).await.expect("confirm");
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
        let before = std::fs::read_to_string(store.outbox_path()).expect("outbox");
        assert_eq!(
            store
                .sign_up(&email, &password("someone else entirely"))
                .await
                .expect("sign up"),
            SignUpOutcome::AlreadyRegistered
        );
        // The notice is the auth API's to send; no code goes out, and the password stands.
        assert_eq!(std::fs::read_to_string(store.outbox_path()).expect("outbox"), before);
        assert!(matches!(
            store.authenticate(&email, &password("someone else entirely")).await,
            Err(IdentityError::InvalidCredentials)
        ));
    }

    #[tokio::test]
    async fn codes_are_matched_whatever_their_case() {
        let (_dir, store, email, code) = signed_up("ada").await;
        store
            .confirm_sign_up(&email, &format!(" {} ", code.to_ascii_lowercase()))
            .await
            .expect("a lower-case code with spaces around it confirms");
    }

    #[tokio::test]
    async fn expired_codes_are_refused() {
        let (_dir, store, email, code) = signed_up("ada").await;
        sql(&store, "UPDATE one_time_codes SET expires_at = expires_at - 86400").await;
        assert!(matches!(
            store.confirm_sign_up(&email, &code).await,
            Err(IdentityError::InvalidCode)
        ));
        // A fresh code works, and the reset code expires after 10 minutes.
        store.resend_confirmation(&email).await.expect("resend");
        let code = outbox_code(&store, &email, CodePurpose::ConfirmSignUp);
        store.confirm_sign_up(&email, &code).await.expect("confirm");
        store.forgot_password(&email).await.expect("forgot");
        let code = outbox_code(&store, &email, CodePurpose::ResetPassword);
        sql(&store, "UPDATE one_time_codes SET expires_at = expires_at - 600").await;
        assert!(matches!(
            store
                .reset_password(&email, &code, &password("a new long password"))
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
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
            captured
        })
    }

    #[tokio::test]
    async fn logs_name_the_recipient_but_never_a_password_code_secret_or_token() {
        let captured = captured_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("logged-ada");
        let mut secrets = vec!["correct horse battery".to_owned()];
        let session = signed_in(&store, &email).await;
        secrets.push(outbox_code(&store, &email, CodePurpose::ConfirmSignUp));
        store.forgot_password(&email).await.expect("forgot");
        let reset = outbox_code(&store, &email, CodePurpose::ResetPassword);
        store
            .reset_password(&email, &reset, &password("correct horse battery"))
            .await
            .expect("reset");
        secrets.push(reset);
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
        let deliveries = logs
            .lines()
            .filter(|line| line.contains("code delivered to outbox") && line.contains("logged-ada@example.com"))
            .count();
        assert_eq!(deliveries, 2, "{logs}");
        assert!(logs.contains("identity.sign_up"), "the line carries its span: {logs}");
        for secret in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "a secret leaked into the logs:\n{logs}"
            );
        }
    }

    #[tokio::test]
    async fn deleting_a_user_removes_their_codes_factor_and_challenges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let email = email("ada");
        let session = signed_in(&store, &email).await;
        store.begin_totp_enrolment(&session).await.expect("begin");
        store.forgot_password(&email).await.expect("forgot");
        assert!(store.delete_user(&email).await.expect("delete"));
        let left: i64 = store
            .run(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM one_time_codes) + (SELECT COUNT(*) FROM totp_factors)
                          + (SELECT COUNT(*) FROM mfa_challenges)",
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
