//! TOTP sign-in challenges: issued after a right password when TOTP is on, answered once with
//! a code, burnt after five wrong ones or five minutes.

use aws_lc_rs::{digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_kernel::now_unix as now;
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use super::unavailable;
use super::users::user_by_id;
use crate::totp;
use crate::{Email, IdentityError, ProviderSession, User, UserStatus};

/// Wrong answers after which an MFA challenge is burnt.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long an MFA challenge may be answered.
pub const MFA_CHALLENGE_TTL_SECS: i64 = 5 * 60;

pub(super) fn token_digest(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

pub(super) fn random_bytes<const N: usize>() -> Result<secrecy::zeroize::Zeroizing<[u8; N]>, IdentityError> {
    let mut bytes = secrecy::zeroize::Zeroizing::new([0u8; N]);
    rand::fill(bytes.as_mut()).map_err(|_| unavailable("the system random generator failed"))?;
    Ok(bytes)
}

/// A new challenge for a sign-in whose password was right, if the user has TOTP on: the token
/// to answer it with (stored only as its SHA-256 digest). Expired challenges are swept first.
pub(super) fn issue_challenge(connection: &Connection, id: &str) -> Result<Option<SecretString>, IdentityError> {
    let has_totp: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = ?1 AND secret IS NOT NULL)",
        params![id],
        |row| row.get(0),
    )?;
    if !has_totp {
        return Ok(None);
    }
    let token = SecretString::from(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?.as_slice()));
    let at = now();
    connection.execute("DELETE FROM mfa_challenges WHERE expires_at <= ?1", params![at])?;
    connection.execute(
        "INSERT INTO mfa_challenges (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_digest(token.expose_secret()), id, at + MFA_CHALLENGE_TTL_SECS],
    )?;
    Ok(Some(token))
}

/// Answers an MFA challenge inside the caller's transaction. Wrong codes count against the
/// challenge, which is burnt at the fifth; a right code consumes it and advances the user's
/// replay guard.
pub(super) fn answer_challenge(
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
        .optional()?;
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
        .optional()?;
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
            connection.execute(
                "UPDATE totp_factors SET last_used_step = ?2, updated_at = ?3 WHERE user_id = ?1",
                params![user_id, step as i64, now()],
            )?;
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
                connection.execute(
                    "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE token_hash = ?1",
                    params![token_hash],
                )?;
            }
            Err(IdentityError::InvalidCode)
        }
    }
}
