//! How long a renewed certificate waits before it is used, under keep-alive load: 16 clients
//! (as the auth-proxy's pool) each keep one mutual-TLS connection to core busy on loopback.
//!
//!   cargo bench -p rampart-pki --bench renewal_to_use
//!
//! core's renewal: from `install` of core's new certificate to the first answer over a
//! connection that met it, and to the moment every client's connection has. The proxy's
//! renewal (its own schedule, 30 s certificates): from the renewal to the first answer over a
//! connection that presented the new certificate, and to every client's connection. Prints a
//! Markdown table; counts failed requests, which must be none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use rampart_pki::{CertificateIssuer, LocalCa, MutualTls, SpiffeId};
use rampart_testkit::KeptConnection;
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 16;
const ROUNDS: usize = 20;

fn id(service: &str) -> SpiffeId {
    SpiffeId::new("rampart", service).expect("id")
}

/// What each client's connection was opened with: core's certificate as met, and the proxy's
/// renewals before it connected (so the certificate it presented).
#[derive(Clone, Default)]
struct Opened {
    core: Vec<u8>,
    proxy_renewals: u64,
}

/// Each client's latest answered connection, and failures.
struct Load {
    answered: Mutex<Vec<Opened>>,
    failed: AtomicU64,
    done: AtomicU64,
}

fn clients(proxy: &Arc<MutualTls>, url: &str, load: &Arc<Load>, stop: &CancellationToken) {
    for client in 0..CLIENTS {
        let (proxy, url, load, stop) = (proxy.clone(), url.to_owned(), load.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let proxy_renewals = proxy.renewals();
                let Ok(mut connection) = KeptConnection::open(proxy.client_config(), &url).await else {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let opened = Opened {
                    core: connection.server_certificate.to_vec(),
                    proxy_renewals,
                };
                while !stop.is_cancelled() {
                    match connection.get("/").await {
                        Ok(closes) => {
                            load.done.fetch_add(1, Ordering::Relaxed);
                            load.answered.lock().expect("lock")[client] = opened.clone();
                            if closes {
                                break;
                            }
                        }
                        Err(_) => {
                            load.failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        });
    }
}

/// Waits (up to 20 s) for the first and for every client to have been answered over a
/// connection `renewed` says is new; the times since `since`.
async fn switched(load: &Load, since: Instant, renewed: impl Fn(&Opened) -> bool) -> (Duration, Duration) {
    let mut first = None;
    let deadline = since + Duration::from_secs(20);
    loop {
        let (any, all) = {
            let answered = load.answered.lock().expect("lock");
            (answered.iter().any(&renewed), answered.iter().all(&renewed))
        };
        if any && first.is_none() {
            first = Some(since.elapsed());
        }
        if all {
            return (first.unwrap_or_default(), since.elapsed());
        }
        assert!(Instant::now() < deadline, "not every connection switched within 20 s");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn row(what: &str, first: &mut [Duration], all: &mut [Duration]) {
    first.sort();
    all.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!(
        "| {what} | {} | {} | {} | {} | {} |",
        first.len(),
        ms(first[first.len() / 2]),
        ms(first[first.len() - 1]),
        ms(all[all.len() / 2]),
        ms(all[all.len() - 1])
    );
}

#[tokio::main]
async fn main() {
    let ca = Arc::new(LocalCa::ephemeral().expect("ca"));
    let hour = Duration::from_secs(3600);
    let core = MutualTls::new(
        id("core"),
        id("auth-proxy"),
        ca.issue(&id("core"), hour).await.expect("issue"),
        vec![ca.root()],
    )
    .expect("core");
    // The proxy renews on its own schedule, as it does in service, with 30 s certificates
    // (long enough that X.509's whole seconds do not blur when it has surely renewed).
    let proxy_ttl = Duration::from_secs(30);
    let proxy = MutualTls::start(ca.clone(), id("auth-proxy"), id("core"), proxy_ttl)
        .await
        .expect("proxy");
    let shutdown = CancellationToken::new();
    let url = common::serve(&core, &shutdown).await;
    let load = Arc::new(Load {
        answered: Mutex::new(vec![Opened::default(); CLIENTS]),
        failed: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    clients(&proxy, &url, &load, &shutdown);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let (mut first, mut all) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let issued = ca.issue(&id("core"), hour).await.expect("issue");
        let leaf = issued.chain[0].to_vec();
        let installed = Instant::now();
        core.install(issued).expect("install");
        let (one, every) = switched(&load, installed, |opened| opened.core == leaf).await;
        first.push(one);
        all.push(every);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut proxy_first, mut proxy_all) = (Vec::new(), Vec::new());
    let mut seen = proxy.renewals();
    while proxy_first.len() < 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if proxy.renewals() == seen {
            continue;
        }
        let renewed = Instant::now();
        seen = proxy.renewals();
        let (one, every) = switched(&load, renewed, |opened| opened.proxy_renewals >= seen).await;
        proxy_first.push(one);
        proxy_all.push(every);
    }
    let elapsed = started.elapsed();
    shutdown.cancel();

    println!(
        "| renewal | renewals | first use, median (ms) | first use, max (ms) | all {CLIENTS} connections, median (ms) | all, max (ms) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    row("core's (server) certificate", &mut first, &mut all);
    row(
        "the proxy's (client) certificate, 30 s life",
        &mut proxy_first,
        &mut proxy_all,
    );
    let (done, failed) = (load.done.load(Ordering::Relaxed), load.failed.load(Ordering::Relaxed));
    println!(
        "\n{done} requests in {:.1} s ({:.0} req/s), {failed} failed",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(failed, 0, "no request may fail while certificates are renewed");
}
