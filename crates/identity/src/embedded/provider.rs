//! The embedded adapter's side of the [`IdentityProvider`] port.

use rampart_kernel::now_unix as now;
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use super::mfa::{self, answer_challenge, random_bytes, token_digest};
use super::users::{forget_expired_sign_ups, immediate, session_user, user_by_email, user_by_id};
use super::{EmbeddedIdentity, dummy_hash, hash_password, password_matches, unavailable};
use crate::totp;
use crate::{
    Email, IdentityError, IdentityProvider, LoginOutcome, Password, ProviderSession, SignUpOutcome, TotpEnrolment,
    UNCONFIRMED_SIGN_UP_TTL_SECS, User, UserStatus,
};

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
            let inserted = tx.execute(
                "INSERT INTO users (id, email, password_hash, status, created_at)
                     VALUES (?1, ?2, ?3, 'unconfirmed', ?4) ON CONFLICT (email) DO NOTHING",
                params![id, email.as_str(), hash, now()],
            )?;
            let outcome = if inserted == 1 {
                SignUpOutcome::Created { user_id: id }
            } else {
                match user_by_email(&tx, &email)? {
                    Some((user_id, _, UserStatus::Unconfirmed)) => SignUpOutcome::AwaitingConfirmation { user_id },
                    _ => SignUpOutcome::AlreadyRegistered,
                }
            };
            tx.commit()?;
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
        let confirmed = self
            .execute(
                "UPDATE users SET status = 'confirmed'
                 WHERE id = ?1 AND status = 'unconfirmed' AND created_at > ?2",
                (user_id.to_owned(), now() - UNCONFIRMED_SIGN_UP_TTL_SECS),
            )
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
            .run(move |connection| mfa::issue_challenge(connection, &id))
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
            tx.commit()?;
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
            )?;
            tx.commit()?;
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
                .optional()?
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
            )?;
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
            )?;
            tx.execute("DELETE FROM mfa_challenges WHERE user_id = ?1", params![id])?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    #[instrument(name = "identity.set_password", skip_all)]
    async fn set_password(&self, user_id: &str, new_password: &Password) -> Result<(), IdentityError> {
        let hash = hash_password(new_password).await?;
        let updated = self
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND status = 'confirmed'",
                (user_id.to_owned(), hash),
            )
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
        self.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            (session.user.id.clone(), hash),
        )
        .await?;
        Ok(())
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
            connection.execute("UPDATE users SET status = 'disabled' WHERE id = ?1", params![id])?;
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
