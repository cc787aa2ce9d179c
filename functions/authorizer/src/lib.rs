//! The API Gateway Lambda authorizer: the auth-proxy's token checks ([`rampart_verifier`]) for
//! APIs that API Gateway fronts directly.
//!
//! One function answers the three event formats API Gateway sends:
//! - REST API `TOKEN` authorizers (the `Authorization` value in `authorizationToken`) and
//!   `REQUEST` authorizers (all headers), answered with an IAM policy;
//! - HTTP API authorizers with payload format 2.0, answered with a simple response
//!   (`isAuthorized`).
//!
//! A caller without a valid, unrevoked token gets 401 on REST APIs (the function fails with the
//! message `Unauthorized`, which is what API Gateway turns into 401) and `isAuthorized: false`
//! (403) on HTTP APIs. A token lacking a required scope gets an explicit Deny (403). When the
//! keys or the revocation feed cannot be read, the function fails and API Gateway answers 500:
//! it never lets a request through unchecked.
//!
//! What passes carries the caller's identity to the integration in the authorizer context:
//! `sub`, `scope`, `sessionId` and `amr`.
//!
//! Revocations take effect within the verifier's bound only if API Gateway does not cache the
//! answer for longer: set the authorizer's result TTL to at most `revocation_bound_secs` (5 s by
//! default), or 0.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use rampart_kernel::{ConfigError, Settings, now_unix};
use rampart_tokens::jwt::AccessClaims;
use rampart_verifier::{Denial, IssuerConfig, Verifier};
use serde::Deserialize;
use serde_json::{Value, json};

/// Why an invocation did not produce an answer. API Gateway answers 401 for
/// [`AuthorizerError::Unauthorized`] and 500 for the others.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// The exact message API Gateway maps to 401 on REST APIs.
    #[error("Unauthorized")]
    Unauthorized,
    #[error("tokens cannot be checked right now")]
    Unavailable,
    #[error("not an API Gateway authorizer event: {0}")]
    UnknownEvent(String),
}

impl From<AuthorizerError> for lambda_runtime::Diagnostic {
    fn from(error: AuthorizerError) -> Self {
        let error_type = match error {
            AuthorizerError::Unauthorized => "Unauthorized",
            AuthorizerError::Unavailable => "Unavailable",
            AuthorizerError::UnknownEvent(_) => "UnknownEvent",
        };
        Self {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

/// The fields of the three event formats this function reads; everything else is ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    version: Option<String>,
    /// REST `TOKEN`: the `Authorization` header's value.
    #[serde(default)]
    authorization_token: Option<String>,
    /// REST (`methodArn`) or HTTP API (`routeArn`).
    #[serde(default)]
    method_arn: Option<String>,
    #[serde(default)]
    headers: Option<HashMap<String, String>>,
    /// REST `REQUEST`: every value of every header, so a repeated `Authorization` is seen.
    #[serde(default)]
    multi_value_headers: Option<HashMap<String, Vec<String>>>,
}

impl Event {
    /// The request's headers: every value from `multiValueHeaders` where the event has it (REST),
    /// else `headers` (HTTP APIs, which join repeated values with commas). Names or values HTTP
    /// does not allow are dropped: they can never be a valid `Authorization`.
    fn header_map(&self) -> HeaderMap {
        let pairs: Vec<(&String, &[String])> = match &self.multi_value_headers {
            Some(all) => all.iter().map(|(name, values)| (name, values.as_slice())).collect(),
            None => (self.headers.iter().flatten())
                .map(|(name, value)| (name, std::slice::from_ref(value)))
                .collect(),
        };
        let mut map = HeaderMap::new();
        for (name, values) in pairs {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            for value in values {
                if let Ok(value) = HeaderValue::from_str(value) {
                    map.append(name.clone(), value);
                }
            }
        }
        map
    }
}

/// A configured authorizer; one per Lambda sandbox, reused across invocations.
#[derive(Debug)]
pub struct Authorizer {
    verifier: Verifier,
    required_scopes: Vec<String>,
}

impl Authorizer {
    /// An authorizer trusting the issuer `settings` name (`tokens.issuer`), whose discovery
    /// document publishes the keys and the revocation feed under that URL.
    pub fn from_settings(settings: &Settings) -> Result<Self, StartupError> {
        let issuer = IssuerConfig::for_platform(settings, &settings.tokens.issuer)?;
        Self::new(&issuer, settings.authorizer.required_scopes.clone())
    }

    pub fn new(issuer: &IssuerConfig, required_scopes: Vec<String>) -> Result<Self, StartupError> {
        issuer.check()?;
        Ok(Self {
            verifier: Verifier::new(issuer)?,
            required_scopes,
        })
    }

    /// Answers one authorizer event.
    pub async fn handle(&self, event: Value) -> Result<Value, AuthorizerError> {
        let event: Event = serde_json::from_value(event).map_err(|e| AuthorizerError::UnknownEvent(e.to_string()))?;
        // Nothing runs while the sandbox is frozen, so keys and revocations are brought up to
        // date here, before the check.
        self.verifier.refresh_if_due().await;
        let now = now_unix();
        let scopes = &self.required_scopes;
        match (event.kind.as_str(), event.version.as_deref()) {
            ("TOKEN", _) => {
                let authorization = event.authorization_token.unwrap_or_default();
                let outcome = self.verifier.authorize_header(&authorization, scopes, now).await;
                iam_policy(outcome, event.method_arn.as_deref())
            }
            ("REQUEST", version) => {
                let outcome = self.verifier.authorize(&event.header_map(), scopes, now).await;
                match version {
                    Some("2.0") => simple_response(outcome),
                    // REST APIs and HTTP APIs with payload format 1.0 send the same shape.
                    _ => iam_policy(outcome, event.method_arn.as_deref()),
                }
            }
            (other, _) => Err(AuthorizerError::UnknownEvent(format!("type {other:?}"))),
        }
    }
}

/// Why the authorizer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Issuer(#[from] ConfigError),
    #[error("HTTPS client: {0}")]
    Client(#[from] std::io::Error),
}

type Outcome = Result<Arc<AccessClaims>, Denial>;

/// The REST answer: Allow on the whole stage (the decision does not depend on the method or
/// path, so a cached answer is right for every route), Deny for a missing scope, 401 for the
/// rest.
fn iam_policy(outcome: Outcome, method_arn: Option<&str>) -> Result<Value, AuthorizerError> {
    let (principal, effect, context) = match outcome {
        Ok(claims) => (claims.sub.clone(), "Allow", Some(identity(&claims))),
        Err(Denial::InsufficientScope) => {
            log_denial(Denial::InsufficientScope);
            ("insufficient_scope".to_owned(), "Deny", None)
        }
        Err(denial) => return Err(refusal(denial)),
    };
    let method_arn = method_arn.ok_or_else(|| AuthorizerError::UnknownEvent("no methodArn".into()))?;
    let mut policy = json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": effect,
                "Resource": stage_wide(method_arn),
            }],
        },
    });
    if let Some(context) = context {
        policy["context"] = context;
    }
    Ok(policy)
}

/// The HTTP API answer with simple responses enabled.
fn simple_response(outcome: Outcome) -> Result<Value, AuthorizerError> {
    match outcome {
        Ok(claims) => Ok(json!({ "isAuthorized": true, "context": identity(&claims) })),
        Err(denial @ (Denial::KeysUnavailable | Denial::RevocationUnknown)) => Err(refusal(denial)),
        Err(denial) => {
            log_denial(denial);
            Ok(json!({ "isAuthorized": false }))
        }
    }
}

fn refusal(denial: Denial) -> AuthorizerError {
    log_denial(denial);
    match denial {
        Denial::KeysUnavailable | Denial::RevocationUnknown => AuthorizerError::Unavailable,
        _ => AuthorizerError::Unauthorized,
    }
}

fn log_denial(denial: Denial) {
    tracing::info!(reason = denial.reason(), "request denied");
}

/// What the integration learns about the caller.
fn identity(claims: &AccessClaims) -> Value {
    json!({
        "sub": claims.sub,
        "scope": claims.scope,
        "sessionId": claims.sid,
        "amr": claims.amr.join(" "),
    })
}

/// `arn:aws:execute-api:region:account:api/stage/VERB/path` → `…:api/stage/*/*`.
fn stage_wide(method_arn: &str) -> String {
    let mut parts = method_arn.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(api), Some(stage)) => format!("{api}/{stage}/*/*"),
        _ => method_arn.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_covers_the_whole_stage() {
        assert_eq!(
            stage_wide("arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request/child"),
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"
        );
        assert_eq!(
            stage_wide("arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/"),
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/*/*"
        );
    }

    #[test]
    fn only_the_unauthorized_error_reads_as_401_to_api_gateway() {
        let diagnostic = lambda_runtime::Diagnostic::from(AuthorizerError::Unauthorized);
        assert_eq!(diagnostic.error_message, "Unauthorized");
        let diagnostic = lambda_runtime::Diagnostic::from(AuthorizerError::Unavailable);
        assert_ne!(diagnostic.error_message, "Unauthorized");
    }
}
