//! Reading users: by email, by id, behind a session; and forgetting expired sign-ups.

use rampart_kernel::now_unix as now;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::unavailable;
use crate::{Email, IdentityError, UNCONFIRMED_SIGN_UP_TTL_SECS, User, UserStatus};

pub(super) fn status_from(text: &str) -> UserStatus {
    match text {
        "confirmed" => UserStatus::Confirmed,
        "unconfirmed" => UserStatus::Unconfirmed,
        _ => UserStatus::Disabled,
    }
}

pub(super) fn immediate(connection: &Connection) -> Result<Transaction<'_>, IdentityError> {
    Transaction::new_unchecked(connection, TransactionBehavior::Immediate).map_err(unavailable)
}

/// A user row: id, password hash and status. A sign-up that has expired unconfirmed is not
/// there, even before [`forget_expired_sign_ups`] deletes it.
pub(super) fn user_by_email(
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
pub(super) fn user_by_id(
    connection: &Connection,
    id: &str,
) -> Result<Option<(Email, String, UserStatus)>, IdentityError> {
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
        .optional()?;
    row.map(|(email, hash, status)| Ok((Email::parse(&email)?, hash, status)))
        .transpose()
}

/// The user behind a session, if it may still act: deleted or unconfirmed gives
/// `SessionInvalid`, disabled gives `Disabled`. Returns the user and their password hash.
pub(super) fn session_user(connection: &Connection, id: &str) -> Result<(User, String), IdentityError> {
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
pub(super) fn forget_expired_sign_ups(connection: &Connection) -> Result<(), IdentityError> {
    connection
        .execute(
            "DELETE FROM users WHERE status = 'unconfirmed' AND created_at <= ?1",
            params![now() - UNCONFIRMED_SIGN_UP_TTL_SECS],
        )
        .map(|_| ())
        .map_err(unavailable)
}
