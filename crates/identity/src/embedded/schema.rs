//! The tables of the embedded identity store. Additive only: new tables and indexes, never a
//! changed one, so files written by an older version keep working.

use rusqlite::Connection;

/// Creates whatever the file does not have yet.
pub(super) fn create(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
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
}
