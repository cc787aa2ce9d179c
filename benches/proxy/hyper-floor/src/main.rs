//! The floor under any hyper-based reverse proxy on this machine: `hyper-floor LISTEN UPSTREAM`
//! passes every request to UPSTREAM and its answer back, and does nothing else (no routing,
//! token check, header hygiene, ids, traces, metrics or limits).
//!
//! It serves as the auth-proxy does: one thread per CPU, each with a single-threaded tokio
//! runtime and its own hyper-util client pool, all accepting from one listener, with mimalloc.
//! The gap between it and nginx is what hyper and tokio cost; the gap between it and the
//! auth-proxy is what the auth-proxy's own work costs.

use std::net::TcpListener;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        eprintln!("usage: hyper-floor LISTEN_ADDR UPSTREAM_URL");
        std::process::exit(2);
    };
    let upstream: Arc<Uri> = Arc::new(upstream.parse().map_err(std::io::Error::other)?);
    let listener = TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let serving: Vec<_> = (0..threads)
        .map(|_| {
            let (listener, upstream) = (listener.try_clone()?, Arc::clone(&upstream));
            Ok(std::thread::spawn(move || serve(listener, upstream)))
        })
        .collect::<std::io::Result<_>>()?;
    for thread in serving {
        thread.join().expect("a serving thread panicked")?;
    }
    Ok(())
}

fn serve(listener: TcpListener, upstream: Arc<Uri>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let (client, upstream) = (client.clone(), Arc::clone(&upstream));
            let service = service_fn(move |mut request: Request<Incoming>| {
                let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                let uri = Uri::builder()
                    .scheme("http")
                    .authority(upstream.authority().map_or("", |a| a.as_str()))
                    .path_and_query(path)
                    .build();
                request.headers_mut().remove(header::HOST);
                let client = client.clone();
                async move {
                    *request.uri_mut() = uri?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(client.request(request).await?)
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    })
}
