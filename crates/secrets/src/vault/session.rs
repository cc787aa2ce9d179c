//! The token a service holds: got by logging in, renewed at about two thirds of its TTL, and got
//! anew when renewal is refused or the token's max TTL is near.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::{VaultLogin, VaultSettings, status};
use crate::SecretError;

/// A client holding a token, and what Vault said of that token.
pub(super) struct Session {
    pub(super) client: Arc<VaultClient>,
    obtained: Instant,
    /// The TTL Vault gave the token when it was issued or last renewed; zero: it never expires.
    ttl: Duration,
    /// The TTL at login: a renewal that gives much less means the max TTL is near.
    login_ttl: Duration,
    renewable: bool,
}

impl Session {
    /// Logs in as `settings.login` says.
    pub(super) async fn login(settings: &VaultSettings) -> Result<Self, SecretError> {
        let mut client = client_with(settings, "")?;
        let (ttl, renewable) = match &settings.login {
            VaultLogin::Token(token) => {
                client.set_token(token.read()?.expose_secret());
                let looked_up = vaultrs::token::lookup_self(&client).await.map_err(refused)?;
                (looked_up.ttl, looked_up.renewable.unwrap_or(false))
            }
            VaultLogin::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let auth = vaultrs::auth::approle::login(&client, mount, role_id, secret_id.read()?.expose_secret())
                    .await
                    .map_err(refused)?;
                client.set_token(&auth.client_token);
                (auth.lease_duration, auth.renewable)
            }
            VaultLogin::Jwt {
                mount,
                role,
                token_file,
            } => {
                let jwt = zeroize::Zeroizing::new(std::fs::read_to_string(token_file).map_err(|e| {
                    SecretError::Unavailable(format!("cannot read the JWT in {}: {e}", token_file.display()))
                })?);
                let auth = vaultrs::auth::oidc::login(&client, mount, jwt.trim(), Some(role.clone()))
                    .await
                    .map_err(refused)?;
                client.set_token(&auth.client_token);
                (auth.lease_duration, auth.renewable)
            }
        };
        let ttl = Duration::from_secs(ttl);
        Ok(Self {
            client: Arc::new(client),
            obtained: Instant::now(),
            ttl,
            login_ttl: ttl,
            renewable,
        })
    }

    /// Renews the token; `None` if it cannot be renewed usefully (not renewable, or its max TTL
    /// is near), so the caller logs in again.
    pub(super) async fn renew(&self) -> Result<Option<Self>, SecretError> {
        if !self.renewable {
            return Ok(None);
        }
        let auth = vaultrs::token::renew_self(&*self.client, None).await.map_err(refused)?;
        let ttl = Duration::from_secs(auth.lease_duration);
        // Vault caps a renewal at the token's max TTL: once it gives less than two thirds of
        // the TTL at login, a new login is due.
        if ttl * 3 < self.login_ttl * 2 {
            return Ok(None);
        }
        Ok(Some(Self {
            client: Arc::clone(&self.client),
            obtained: Instant::now(),
            ttl,
            login_ttl: self.login_ttl,
            renewable: auth.renewable,
        }))
    }

    /// When the token runs out; `None` if it never does.
    pub(super) fn expires_at(&self) -> Option<Instant> {
        (!self.ttl.is_zero()).then(|| self.obtained + self.ttl)
    }

    /// When to renew: at two thirds of the TTL, moved by up to a tenth of it either way, so a
    /// fleet that logged in together does not renew together. `None` if it never expires.
    pub(super) fn renew_at(&self) -> Option<Instant> {
        let share = 2.0 / 3.0 + 0.2 * unit_random() - 0.1;
        self.expires_at().map(|_| self.obtained + self.ttl.mul_f64(share))
    }
}

/// A uniform number in [0, 1).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 4];
    // A failed random source only loses the jitter.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

fn client_with(settings: &VaultSettings, token: &str) -> Result<VaultClient, SecretError> {
    // Every setting given, so that none comes from vaultrs's `VAULT_*` environment defaults
    // (`VAULT_SKIP_VERIFY` would turn certificate checks off).
    let ca_certs = settings.ca_file.iter().map(|path| path.display().to_string()).collect();
    let built = VaultClientSettingsBuilder::default()
        .address(&settings.address)
        .token(token)
        .timeout(Some(settings.timeout))
        .verify(true)
        .ca_certs(ca_certs)
        .identity(None)
        .build()
        .map_err(|e| SecretError::Unavailable(format!("Vault settings: {e}")))?;
    VaultClient::new(built).map_err(|e| SecretError::Unavailable(format!("Vault client: {e}")))
}

/// A login or renewal Vault refused (400, 401, 403: waiting does not mend it); anything else,
/// a 429 included, is an outage.
fn refused(error: ClientError) -> SecretError {
    match (status(&error), &error) {
        (Some(code @ (400 | 401 | 403)), ClientError::APIError { errors, .. }) => {
            SecretError::Denied(format!("Vault refused the login ({code}): {}", errors.join("; ")))
        }
        (Some(code @ (400 | 401 | 403)), _) => SecretError::Denied(format!("Vault refused the login ({code})")),
        (Some(code), _) => SecretError::Unavailable(format!("Vault answered {code} to the login")),
        (None, _) => SecretError::Unavailable(format!("Vault could not be reached to log in: {error}")),
    }
}
