//! Serving a router (or any service over axum's request and response types) over HTTP/1.1 with
//! the connection limits axum's `serve` does not expose (request-head size, header count,
//! slow-client timeout) and a graceful drain on shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use crate::config::HttpSettings;

/// Binds `addr` (port 0 picks a free port; read it back with `local_addr`).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// How each accepted TCP connection becomes the stream HTTP is served over: as it is, or
/// after a TLS handshake that names the peer.
pub trait Handshake: Clone + Send + Sync + 'static {
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// Who the peer proved to be; put in each of its requests' extensions.
    type Peer: Clone + Send + Sync + 'static;

    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl std::future::Future<Output = io::Result<(Self::Stream, Self::Peer)>> + Send;

    /// Resolves once `peer` is no longer trusted (its CA was removed, or its certificate ran
    /// out): its connection is then closed, so a trust change reaches kept-alive connections too.
    fn distrusted(&self, peer: &Self::Peer) -> impl std::future::Future<Output = ()> + Send + 'static;

    /// Whether `peer`'s connection should end after its current response (`Connection:
    /// close`): a fresh handshake would present newer certificates, or the peer's has run out.
    /// A renewed certificate so comes into use on kept-alive connections without dropping a
    /// request.
    fn stale(&self, peer: &Self::Peer) -> bool;
}

/// Plain TCP: no handshake, an anonymous peer that is never distrusted.
#[derive(Debug, Clone, Copy)]
pub struct PlainTcp;

impl Handshake for PlainTcp {
    type Stream = TcpStream;
    type Peer = ();

    async fn handshake(&self, tcp: TcpStream) -> io::Result<(TcpStream, ())> {
        Ok((tcp, ()))
    }

    fn distrusted(&self, (): &()) -> impl std::future::Future<Output = ()> + Send + 'static {
        std::future::pending()
    }

    fn stale(&self, (): &()) -> bool {
        false
    }
}

/// Serves `service` (an axum `Router`, or any service over axum's request and response) on
/// `listener` until `shutdown` is cancelled, then stops accepting and waits up to
/// `drain_timeout_secs` for in-flight requests to finish. Each request carries its client's
/// address as a `ConnectInfo<SocketAddr>` extension.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    settings: &HttpSettings,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    serve_with(listener, PlainTcp, service, settings, shutdown).await
}

/// [`serve`], each connection through `handshake` first (within `header_read_timeout_secs`);
/// each request also carries the peer the handshake named, a connection whose peer stops
/// being trusted is closed, and one whose certificates are [`Handshake::stale`] ends after its
/// current response.
pub async fn serve_with<H, S>(
    listener: TcpListener,
    handshake: H,
    service: S,
    settings: &HttpSettings,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    H: Handshake,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_secs))
        .max_buf_size(settings.max_header_bytes)
        .max_headers(settings.max_headers)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let local = listener.local_addr()?;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (service, handshake, http1, watcher) =
            (service.clone(), handshake.clone(), http1.clone(), graceful.watcher());
        let handshake_timeout = Duration::from_secs(settings.header_read_timeout_secs);
        tokio::spawn(async move {
            let (stream, identity) = match tokio::time::timeout(handshake_timeout, handshake.handshake(stream)).await {
                Ok(Ok(done)) => done,
                Ok(Err(error)) => {
                    tracing::debug!(%error, %peer, "handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "handshake timed out");
                    return;
                }
            };
            let distrusted = handshake.distrusted(&identity);
            let named = identity.clone();
            let service = service
                .map_request(move |request: http::Request<Incoming>| {
                    let mut request = request.map(Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(named.clone());
                    request
                })
                .map_response(move |mut response: Response| {
                    if handshake.stale(&identity) {
                        response
                            .headers_mut()
                            .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                    }
                    response
                });
            let connection =
                watcher.watch(http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
            tokio::select! {
                ended = connection => if let Err(error) = ended {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                },
                // Dropping the connection closes it.
                () = distrusted => tracing::info!(%peer, "closed a connection whose peer is no longer trusted"),
            }
        });
    }
    drop(listener);
    tracing::info!(%local, "draining in-flight requests");
    let drain = Duration::from_secs(settings.drain_timeout_secs);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(%local, "drain timed out; closing remaining connections");
    }
    Ok(())
}

/// Serves one listener from several threads, each running a service on its own single-threaded
/// runtime: one thread per service given. Every thread accepts from the same socket, and a
/// connection, its requests and whatever their handlers spawn or connect to stay on the thread
/// that accepted it. A reverse proxy gains most from this: on a shared multi-threaded runtime
/// its upstream call and its client's answer wake each other across threads, and on loopback
/// those wake-ups cost more than the proxying (see docs/performance.md).
///
/// Give each thread its own service when handlers hold connection pools, so that pooled
/// connections are driven by the thread that uses them. Returns once every thread has drained.
pub async fn serve_on_threads<S>(
    listener: TcpListener,
    services: Vec<S>,
    settings: &HttpSettings,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let listener = listener.into_std()?;
    let local = listener.local_addr()?;
    let mut threads = Vec::with_capacity(services.len());
    for (index, service) in services.into_iter().enumerate() {
        let (listener, settings, shutdown) = (listener.try_clone()?, settings.clone(), shutdown.clone());
        let (done, finished) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("serve-{}-{index}", local.port()))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async {
                            serve(TcpListener::from_std(listener)?, service, &settings, shutdown).await
                        })
                    });
                let _ = done.send(served);
            })?;
        threads.push(finished);
    }
    for finished in threads {
        finished
            .await
            .map_err(|_| io::Error::other("a serving thread stopped without finishing"))??;
    }
    Ok(())
}

/// How many threads to serve a busy listener from: one per CPU this process may use (which on
/// Linux honours a container's CPU quota).
pub fn threads_per_listener() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when it is first awaited: call it before announcing that the process serves, so
/// that a signal sent right after the announcement stops it cleanly instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        async move {
            match handlers {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {},
                        _ = terminate.recv() => {},
                    }
                }
                _ => {
                    tracing::warn!("cannot listen for SIGINT and SIGTERM; only Ctrl-C stops");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(
        router: Router,
        settings: HttpSettings,
    ) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<io::Result<()>>) {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token = CancellationToken::new();
        let handle = tokio::spawn({
            let token = token.clone();
            async move { serve(listener, router, &settings, token).await }
        });
        (addr, token, handle)
    }

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "done"
    }

    /// Starts a request to `/slow` (see [`slow`]), shuts down while it is in flight, and checks
    /// that it still gets its answer, that serving then ends, and that the listener is closed.
    async fn slow_request_finishes_after_shutdown(
        addr: SocketAddr,
        token: &CancellationToken,
        handle: tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let request = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
        let response = request.await.expect("join").expect("response");
        assert_eq!(response.text().await.expect("body"), "done");
        handle.await.expect("join").expect("serve");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
    }

    #[tokio::test]
    async fn in_flight_request_finishes_after_shutdown_begins() {
        let router = Router::new().route("/slow", get(slow));
        let (addr, token, handle) = start(router, HttpSettings::default()).await;
        slow_request_finishes_after_shutdown(addr, &token, handle).await;
    }

    #[tokio::test]
    async fn threads_serve_one_listener_and_drain_on_shutdown() {
        let router = || {
            Router::new()
                .route(
                    "/thread",
                    get(|| async { std::thread::current().name().unwrap_or_default().to_owned() }),
                )
                .route("/slow", get(slow))
        };
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token = CancellationToken::new();
        let handle = tokio::spawn({
            let (token, settings) = (token.clone(), HttpSettings::default());
            async move { serve_on_threads(listener, vec![router(), router()], &settings, token).await }
        });
        // Each client its own connection: every one is served on a serving thread, none on ours.
        for _ in 0..10 {
            let thread = reqwest::Client::new()
                .get(format!("http://{addr}/thread"))
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("body");
            let serving = [0, 1].map(|i| format!("serve-{}-{i}", addr.port()));
            assert!(serving.contains(&thread), "served on {thread:?}");
        }
        slow_request_finishes_after_shutdown(addr, &token, handle).await;
    }

    #[tokio::test]
    async fn oversized_request_head_is_refused() {
        let router = Router::new().route("/", get(|| async { "ok" }));
        let (addr, token, _handle) = start(router, HttpSettings::default()).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let big = "a".repeat(20 * 1024);
        let request = format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        token.cancel();
    }

    #[tokio::test]
    async fn more_header_fields_than_the_limit_are_refused() {
        let router = Router::new().route("/", get(|| async { "ok" }));
        let settings = HttpSettings::default();
        let limit = settings.max_headers;
        let (addr, token, _handle) = start(router, settings).await;
        let status_line = |fields: usize| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            // `host` and `connection` are fields too.
            let extra: String = (0..fields - 2).map(|i| format!("x-field-{i}: v\r\n")).collect();
            let request = format!("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n");
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(status_line(limit).await, "HTTP/1.1 200 OK");
        assert_eq!(
            status_line(limit + 1).await,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        token.cancel();
    }

    #[tokio::test]
    async fn a_client_that_dawdles_over_its_request_head_is_disconnected() {
        let router = Router::new().route("/", get(|| async { "ok" }));
        let settings = HttpSettings {
            header_read_timeout_secs: 1,
            ..HttpSettings::default()
        };
        let (addr, token, _handle) = start(router, settings).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // A head that never ends (slow loris): no blank line.
        stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.expect("write");
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        assert!(
            read.is_ok(),
            "the connection was held open past the header-read timeout"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "closed too early, after {waited:?}"
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains("200"),
            "the request was served"
        );
        token.cancel();
    }

    #[tokio::test]
    async fn client_address_is_available_to_handlers() {
        let router = Router::new().route(
            "/ip",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (addr, token, _handle) = start(router, HttpSettings::default()).await;
        let body = reqwest::get(format!("http://{addr}/ip"))
            .await
            .expect("get")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "127.0.0.1");
        token.cancel();
    }
}
