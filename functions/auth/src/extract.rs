//! Who is calling: the client's address and agent, and the signed-in user behind a bearer token.

use axum::extract::{ConnectInfo, FromRequestParts};
use http::header;
use http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use rampart_identity::{ProviderSession, User, UserStatus};
use rampart_kernel::forwarded::{self, Client};
use rampart_kernel::{BearerRefusal, now_unix, now_unix_ms};
use rampart_store::StoreError;
use rampart_tokens::jwt::{self, AccessClaims};

use crate::error::ApiError;
use crate::sessions::Session;
use crate::{App, audit};

/// Longest user agent kept in the audit log and session list.
const MAX_USER_AGENT_CHARS: usize = 256;

/// The caller's network address and user agent, for throttling, sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// None when the request reached us with no address at all (an event source not wired to
    /// this function).
    client: Option<Client>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The full address, for the audit log and the session list; none when unattributed.
    pub fn ip(&self) -> Option<String> {
        self.client.and_then(|client| client.ip()).map(|ip| ip.to_string())
    }

    /// The key throttles count by ([`Client::rate_key`]: IPv6 by its /64); a request with no
    /// address (the configured client address header absent, repeated or unreadable) shares
    /// one counter, [`forwarded::UNATTRIBUTED`], with every other such request.
    pub fn rate_key(&self) -> String {
        self.client
            .map_or_else(|| forwarded::UNATTRIBUTED.to_string(), |client| client.rate_key())
    }

    /// An audit event of `kind` about the signed-in user's own session, from this client.
    pub fn user_event(&self, user: &AuthUser, kind: audit::EventKind) -> audit::Event {
        let mut event = self.event(kind, audit::Outcome::Success);
        event.user_id = Some(user.session.user_id.clone());
        event.session_id = Some(user.session.id.clone());
        event
    }

    /// An audit event of `kind` from this client at the current time.
    pub fn event(&self, kind: audit::EventKind, outcome: audit::Outcome) -> audit::Event {
        let at_ms = now_unix_ms();
        audit::Event {
            client_ip: self.ip(),
            user_agent: self.user_agent.clone(),
            ..audit::Event::new(kind, outcome, at_ms)
        }
    }
}

impl FromRequestParts<App> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
        Ok(Self {
            client: client(parts, app),
            user_agent,
        })
    }
}

/// On Lambda, the address in `http.client_address_header` when it is set (CloudFront's
/// `CloudFront-Viewer-Address`: behind CloudFront, the address API Gateway saw is an edge's
/// origin-facing address, which changes from one connection to the next; the stage's web ACL
/// admits only requests that came through CloudFront, which writes the header): when it is
/// absent, repeated or unreadable, the client is unattributed, never `sourceIp`, so a forger
/// lands on one shared key rather than on rotating ones. Without the setting, the address API
/// Gateway saw (`requestContext`; API Gateway builds `X-Forwarded-For` from what the client
/// sent, so that header is never read there). Served directly, the peer, unless the peer is
/// one of `http.trusted_proxies`: then as [`forwarded::TrustedProxies::client_from`] says.
fn client(parts: &Parts, app: &App) -> Option<Client> {
    let header = app.client_address_header.as_ref();
    if let Some(context) = parts.extensions.request_context_ref() {
        if let Some(header) = header {
            let client = header.client(&parts.headers);
            if let Client::Unattributed(problem) = client {
                app.metrics.unattributed(problem.as_str());
            }
            return Some(client);
        }
        let source = match context {
            RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref(),
            RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
            // Other event sources are not wired to this function.
            _ => None,
        };
        return source.and_then(|ip| ip.parse().ok()).map(Client::Address);
    }
    let peer = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()?.0.ip();
    Some(app.trusted_proxies.client_from(peer, &parts.headers, header))
}

/// A request carrying a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub claims: AccessClaims,
    pub session: Session,
}

impl AuthUser {
    /// The provider session stored with the sign-in, for self-service calls. Built only from
    /// what the auth API stored, never from client input.
    pub async fn provider_session(&self, app: &App) -> Result<ProviderSession, ApiError> {
        let session = &self.session;
        let email = rampart_identity::Email::parse(&session.email)
            .map_err(|_| StoreError::Corrupt(format!("session {} has an invalid email", session.id)))?;
        Ok(ProviderSession {
            user: User {
                id: session.user_id.clone(),
                email,
                status: UserStatus::Confirmed,
            },
            credential: app.sessions.provider_credential(session).await?,
        })
    }
}

fn refused(refusal: BearerRefusal) -> ApiError {
    ApiError(refusal.into())
}

impl FromRequestParts<App> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        // Read as the proxy and the authorizer read it: one header, any case of `Bearer`.
        let token = rampart_tokens::bearer::from_headers(&parts.headers, app.validation.max_token_bytes)
            .map_err(|rejection| {
                tracing::info!(reason = rejection.reason(), "access token refused");
                refused(BearerRefusal::Invalid)
            })?
            .ok_or_else(|| refused(BearerRefusal::Missing))?;
        let now = now_unix();
        let keys = app.keys.verification_keys(now).await?;
        let claims = jwt::verify(token, &keys, &app.validation, now).map_err(|rejection| {
            tracing::info!(reason = rejection.reason(), "access token refused");
            refused(BearerRefusal::Invalid)
        })?;
        let session = app
            .sessions
            .get(&claims.sid)
            .await?
            .filter(|s| s.is_active(now) && s.user_id == claims.sub)
            .ok_or_else(|| refused(BearerRefusal::Invalid))?;
        if app.sessions.is_cut_off(&session).await? {
            return Err(refused(BearerRefusal::Invalid));
        }
        Ok(Self { claims, session })
    }
}
