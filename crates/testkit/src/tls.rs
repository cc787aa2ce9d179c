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

/// One kept-alive HTTPS connection, as a proxy's pool holds one, that tells which certificate
/// the server presented and whether the server ended the connection.
#[derive(Debug)]
pub struct KeptConnection {
    /// The leaf the server presented in the handshake.
    pub server_certificate: rustls::pki_types::CertificateDer<'static>,
    host: String,
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl KeptConnection {
    /// Connects to `url` (`https://host:port/`) with `config`.
    pub async fn open(config: rustls::ClientConfig, url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let host = uri.authority().ok_or_else(|| format!("{url}: no host"))?.to_string();
        let tcp = tokio::net::TcpStream::connect(&host).await.map_err(|e| e.to_string())?;
        // As the auth-proxy's connector does: without it, Nagle's algorithm holds the
        // handshake's last flight for the peer's delayed ACK (40 ms on Linux).
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from(uri.host().unwrap_or_default().to_owned())
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let server_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or("the server presented no certificate")?
            .clone()
            .into_owned();
        let (sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Self {
            server_certificate,
            host,
            sender,
        })
    }

    /// GETs `path` over this connection: whether the server said it ends the connection after
    /// this answer (`Connection: close`); an error unless the answer is a success.
    pub async fn get(&mut self, path: &str) -> Result<bool, String> {
        self.sender.ready().await.map_err(|e| format!("connection gone: {e}"))?;
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.host)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("{e:?}"))?;
        let status = response.status();
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        response.into_body().collect().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(closes)
        } else {
            Err(status.to_string())
        }
    }

    /// Whether the connection can carry no more requests.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}
