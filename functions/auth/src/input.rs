//! Field validation at the edge: each failure is a 422 naming the field.

use rampart_identity::{Email, Password};
use rampart_kernel::Problem;

use crate::error::{ApiError, invalid_input};

pub fn email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| invalid_input("/email", e))
}

/// A password being set: held to the full policy.
pub fn new_password(pointer: &str, raw: &str) -> Result<Password, ApiError> {
    Password::parse(raw).map_err(|e| invalid_input(pointer, e))
}

/// A password being checked: only normalised and bounded.
pub fn current_password(pointer: &str, raw: &str) -> Result<Password, ApiError> {
    Password::for_sign_in(raw).map_err(|e| invalid_input(pointer, e))
}

/// A one-time code (emailed or TOTP): short printable ASCII, so nothing odd reaches a backend.
pub fn code(raw: &str) -> Result<&str, ApiError> {
    let raw = raw.trim();
    if (4..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(raw)
    } else {
        Err(ApiError(Problem::invalid_field(
            "/code",
            "Must be the code you were sent, without spaces.",
        )))
    }
}

/// An opaque value the client echoes back (an MFA challenge): bounded in size.
pub fn opaque<'a>(pointer: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    if (1..=4096).contains(&raw.len()) {
        Ok(raw)
    } else {
        Err(ApiError(Problem::invalid_field(
            pointer,
            "Must be the value the previous step returned.",
        )))
    }
}
