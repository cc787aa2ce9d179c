//! Small JSON documents fetched from the issuer (JWKS, revocation feed) over HTTP or HTTPS
//! (the system's trusted roots), with a timeout and a size cap so a misbehaving issuer cannot
//! stall or bloat the verifier.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client for `http://` and `https://` issuers. Fails only if the system has no trusted
/// root certificates at all.
pub fn client() -> std::io::Result<HttpClient> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(2)));
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1024 * 1024;

/// GETs `uri` and decodes a 200 JSON body; the error says what went wrong, for the logs.
pub async fn get_json<T: DeserializeOwned>(client: &HttpClient, uri: &Uri) -> Result<(HeaderMap, T), String> {
    let request = http::Request::get(uri.clone())
        .header(header::ACCEPT, "application/json")
        .body(Empty::new())
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
