//! An HTTPS client for tests of mutual TLS: hyper over hyper-rustls with the rustls
//! configuration a service would use (its certificate, its check of the server).

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A client that keeps its connections alive, as the auth-proxy's pool does.
pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client presenting and checking what `config` says; `https://` URLs only.
pub fn https_client(config: rustls::ClientConfig) -> HttpsClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// GET `url`: its body if the answer is a success; any failure (a refused handshake, a closed
/// connection, an error status) as text.
pub async fn https_get(client: &HttpsClient, url: &str) -> Result<String, String> {
    let uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let response = client.get(uri).await.map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("{status}: {text}"))
    }
}
