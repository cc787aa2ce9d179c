//! Rampart access tokens: RFC 9068 JWTs (`typ: at+jwt`), issued through a [`Signer`] and
//! verified against a key set with every check an attacker could try to skip made explicit.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use aws_lc_rs::signature::ParsedPublicKey;

use crate::{Algorithm, Jwk, Signer, SignerError};

/// The claims of every access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// The session the token belongs to; revoking the session revokes the token.
    pub sid: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Authentication methods (RFC 8176): `pwd`, `otp`, `mfa`.
    pub amr: Vec<String>,
    pub auth_time: i64,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The media type of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Signs `claims` with `signer`'s key; the header names the key (`kid`) and the token type.
pub async fn issue(signer: &dyn Signer, claims: &AccessClaims) -> Result<String, SignerError> {
    let jwk = signer.public_key();
    let header = Header {
        alg: jwk.alg.name(),
        typ: ACCESS_TOKEN_TYPE,
        kid: &jwk.kid,
    };
    let mut token = format!("{}.{}", base64url_json(&header)?, base64url_json(claims)?);
    let signature = signer.sign(token.as_bytes()).await?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

fn base64url_json<T: Serialize>(value: &T) -> Result<String, SignerError> {
    let json = serde_json::to_vec(value).map_err(|e| SignerError::Unavailable(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Why a token was refused. The reason is for logs and metrics; clients only ever see 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("token is larger than allowed")]
    Oversized,
    #[error("token is not a well-formed JWS compact serialisation")]
    Malformed,
    #[error("algorithm is not RS256 or ES256")]
    UnsupportedAlgorithm,
    #[error("typ is not at+jwt")]
    WrongType,
    #[error("header carries a key reference that is never followed")]
    ForbiddenHeader,
    #[error("kid names no published key")]
    UnknownKey,
    #[error("alg does not match the key's algorithm")]
    AlgorithmMismatch,
    #[error("signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("issuer is not trusted")]
    WrongIssuer,
    #[error("audience does not include this service")]
    WrongAudience,
}

impl Rejection {
    /// A stable label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_alg",
            Self::WrongType => "wrong_typ",
            Self::ForbiddenHeader => "forbidden_header",
            Self::UnknownKey => "unknown_kid",
            Self::AlgorithmMismatch => "alg_mismatch",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_iss",
            Self::WrongAudience => "wrong_aud",
        }
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct Validation {
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: i64,
    pub max_token_bytes: usize,
}

/// Published keys by `kid`, each parsed once for verification. A key that does not parse (or
/// whose type does not match its `alg`) is left out, so tokens naming it are refused as naming
/// no usable key.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, (Jwk, ParsedPublicKey)>,
}

impl KeySet {
    pub fn new(keys: impl IntoIterator<Item = Jwk>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .filter_map(|jwk| {
                    let parsed = jwk.parsed_key()?;
                    Some((jwk.kid.clone(), (jwk, parsed)))
                })
                .collect(),
        }
    }

    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.get(kid).map(|(jwk, _)| jwk)
    }
}

/// A token that verified: its claims and the `kid` of the key that verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: AccessClaims,
    pub kid: String,
}

/// Header members that point at other keys. Honouring any of them would let the token choose
/// its own verification key, so their presence alone refuses the token.
const KEY_REFERENCES: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// Verifies `token` at time `now` (Unix seconds) and returns its claims.
pub fn verify(token: &str, keys: &KeySet, validation: &Validation, now: i64) -> Result<AccessClaims, Rejection> {
    verify_with_kid(token, keys, validation, now).map(|verified| verified.claims)
}

/// [`verify`], also saying which key verified the token (for caches that must forget a token
/// once its key is withdrawn).
pub fn verify_with_kid(token: &str, keys: &KeySet, validation: &Validation, now: i64) -> Result<Verified, Rejection> {
    if token.len() > validation.max_token_bytes {
        return Err(Rejection::Oversized);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: serde_json::Map<String, serde_json::Value> = decode_json(header_b64)?;
    if KEY_REFERENCES.iter().any(|name| header.contains_key(*name)) {
        return Err(Rejection::ForbiddenHeader);
    }
    let algorithm = match header.get("alg").and_then(|v| v.as_str()) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        _ => return Err(Rejection::UnsupportedAlgorithm),
    };
    let typ = header
        .get("typ")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if typ != ACCESS_TOKEN_TYPE && typ != "application/at+jwt" {
        return Err(Rejection::WrongType);
    }
    let kid = header
        .get("kid")
        .and_then(|v| v.as_str())
        .ok_or(Rejection::UnknownKey)?;
    let (jwk, key) = keys.keys.get(kid).ok_or(Rejection::UnknownKey)?;
    if jwk.alg != algorithm {
        return Err(Rejection::AlgorithmMismatch);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| Rejection::Malformed)?;
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    if key.verify_sig(signing_input.as_bytes(), &signature).is_err() {
        return Err(Rejection::BadSignature);
    }
    let claims: AccessClaims = decode_json(claims_b64)?;
    if now > claims.exp.saturating_add(validation.leeway_secs) {
        return Err(Rejection::Expired);
    }
    if now.saturating_add(validation.leeway_secs) < claims.nbf {
        return Err(Rejection::NotYetValid);
    }
    if claims.iss != validation.issuer {
        return Err(Rejection::WrongIssuer);
    }
    if claims.aud != validation.audience {
        return Err(Rejection::WrongAudience);
    }
    Ok(Verified {
        claims,
        kid: kid.to_owned(),
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Rejection> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}
