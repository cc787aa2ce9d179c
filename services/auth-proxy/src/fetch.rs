//! Small JSON documents fetched from the issuer (JWKS, revocation feed) over the proxy's own
//! HTTP client, with a timeout and a size cap so a misbehaving issuer cannot stall or bloat
//! the proxy.

use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Uri, header};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;

pub type HttpClient = Client<HttpConnector, Body>;

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1024 * 1024;

/// GETs `uri` and decodes a 200 JSON body; the error says what went wrong, for the logs.
pub async fn get_json<T: DeserializeOwned>(client: &HttpClient, uri: &Uri) -> Result<(HeaderMap, T), String> {
    let request = http::Request::get(uri.clone())
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("{uri}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("{uri}: {e}"))?;
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(format!("{uri}: status {}", parts.status));
    }
    let bytes = tokio::time::timeout(TIMEOUT, Limited::new(body, MAX_BYTES).collect())
        .await
        .map_err(|_| format!("{uri}: body not received within {TIMEOUT:?}"))?
        .map_err(|e| format!("{uri}: {e}"))?
        .to_bytes();
    let value = serde_json::from_slice(&bytes).map_err(|e| format!("{uri}: {e}"))?;
    Ok((parts.headers, value))
}
