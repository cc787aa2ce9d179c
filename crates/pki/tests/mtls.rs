//! Mutual TLS over loopback, as core and the auth-proxy use it: real handshakes through
//! `rampart_kernel::serve::serve_with`, a hyper client over hyper-rustls, certificates from
//! the local three-tier CA.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::serve;
use rampart_pki::{CertificateIssuer, LocalCa, MutualTls, SpiffeId};
use rampart_testkit::{HttpsClient, KeptConnection, https_client as client, https_get as get_text};
use tokio_util::sync::CancellationToken;

fn id(service: &str) -> SpiffeId {
    SpiffeId::new("rampart", service).expect("id")
}

async fn identity(ca: &LocalCa, own: &str, peer: &str) -> Arc<MutualTls> {
    let issued = ca.issue(&id(own), Duration::from_secs(3600)).await.expect("issue");
    MutualTls::new(id(own), id(peer), issued, vec![ca.root()]).expect("identity")
}

#[tokio::test]
async fn the_proxy_is_served_and_core_knows_who_called() {
    let ca = LocalCa::ephemeral().expect("ca");
    let shutdown = CancellationToken::new();
    let url = serve(&identity(&ca, "core", "auth-proxy").await, &shutdown).await;
    let proxy = client(identity(&ca, "auth-proxy", "core").await.client_config());
    assert_eq!(
        get_text(&proxy, &url).await.expect("served"),
        "spiffe://rampart/auth-proxy"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn core_refuses_no_certificate_another_ca_and_another_identity() {
    let ca = LocalCa::ephemeral().expect("ca");
    let shutdown = CancellationToken::new();
    let url = serve(&identity(&ca, "core", "auth-proxy").await, &shutdown).await;
    let proxy = identity(&ca, "auth-proxy", "core").await;

    // No certificate: the proxy's own checks of core, but nothing to present.
    let mut anonymous = proxy.client_config();
    anonymous.client_auth_cert_resolver = Arc::new(NoCertificate);
    // The proxy's identity, from another CA; it trusts core's, so only its own chain is wrong.
    let foreign = identity(&LocalCa::ephemeral().expect("other ca"), "auth-proxy", "core").await;
    foreign.set_trust(vec![ca.root()]).expect("trust");
    let impostor = identity(&ca, "reports", "core").await;
    for (who, config) in [
        ("no certificate", anonymous),
        ("another CA", foreign.client_config()),
        ("another identity", impostor.client_config()),
    ] {
        let refused = get_text(&client(config), &url).await;
        assert!(refused.is_err(), "{who} was served: {refused:?}");
    }
    assert!(
        get_text(&client(proxy.client_config()), &url).await.is_ok(),
        "the proxy still is"
    );
    shutdown.cancel();
}

/// A client with no certificate to present.
#[derive(Debug)]
struct NoCertificate;

impl rustls::client::ResolvesClientCert for NoCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn the_proxy_refuses_a_server_that_is_not_core() {
    let ca = LocalCa::ephemeral().expect("ca");
    let shutdown = CancellationToken::new();
    let url = serve(&identity(&ca, "reports", "auth-proxy").await, &shutdown).await;
    let proxy = client(identity(&ca, "auth-proxy", "core").await.client_config());
    assert!(get_text(&proxy, &url).await.is_err(), "a server that is not core");
    shutdown.cancel();
}

/// A leaf comes with the intermediate that issued it, carries the service's SPIFFE ID alone,
/// and lives as long as asked; the CA is kept (keys owner-only) and read back after a restart.
#[tokio::test]
async fn leaves_chain_through_the_intermediate_and_live_as_long_as_asked() {
    let ca = LocalCa::ephemeral().expect("ca");
    let issued = ca.issue(&id("core"), Duration::from_secs(3600)).await.expect("issue");
    assert_eq!(issued.chain.len(), 2, "the leaf and the intermediate");
    let left = issued
        .not_after
        .duration_since(std::time::SystemTime::now())
        .expect("future");
    assert!((3590..=3600).contains(&left.as_secs()), "{left:?}");
    assert_eq!(
        rampart_pki::spiffe_id_of(&issued.chain[0]).as_deref(),
        Some("spiffe://rampart/core")
    );
    assert_eq!(
        rampart_pki::spiffe_id_of(&issued.chain[1]),
        None,
        "the intermediate is no service"
    );
    assert_eq!(ca.trust_anchors().await.expect("roots"), vec![ca.root()]);

    let dir = tempfile::tempdir().expect("dir");
    let kept = LocalCa::open(&dir.path().join("pki")).expect("made");
    let again = LocalCa::open(&dir.path().join("pki")).expect("read back");
    assert_eq!(kept.root(), again.root(), "the same CA after a restart");
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("pki/intermediate.key");
    assert_eq!(std::fs::metadata(key).expect("key").permissions().mode() & 0o777, 0o600);
    assert!(
        !dir.path().join("pki/root.key").exists(),
        "the root's key is never written"
    );
    // No leaf outlives its intermediate, however long it is asked to live.
    let long = kept
        .issue(&id("core"), Duration::from_secs(20 * 365 * 86_400))
        .await
        .expect("issue");
    let left = long
        .not_after
        .duration_since(std::time::SystemTime::now())
        .expect("future");
    assert!(left < Duration::from_secs(10 * 365 * 86_400), "{left:?}");
}

#[tokio::test]
async fn certificates_renewed_under_load_fail_no_request_and_no_handshake() {
    let ca = Arc::new(LocalCa::ephemeral().expect("ca"));
    let shutdown = CancellationToken::new();
    // Both sides renew on their own schedule: 2 s certificates, renewed at about half that.
    let ttl = Duration::from_secs(2);
    let core = MutualTls::start(ca.clone(), id("core"), id("auth-proxy"), ttl)
        .await
        .expect("core");
    let proxy = MutualTls::start(ca.clone(), id("auth-proxy"), id("core"), ttl)
        .await
        .expect("proxy");
    let url = serve(&core, &shutdown).await;
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut workers = Vec::new();
    for worker in 0..8 {
        // Half the workers keep their connections; half make a new one (a handshake) each time.
        let fresh = worker % 2 == 0;
        let (proxy, url, done, failed) = (proxy.clone(), url.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut kept = client(proxy.client_config());
            while Instant::now() < deadline {
                if fresh {
                    kept = client(proxy.client_config());
                }
                match get_text(&kept, &url).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        eprintln!("failed: {error}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(done.load(Ordering::Relaxed) > 100, "load ran: {done:?}");
    assert!(
        core.renewals() >= 3 && proxy.renewals() >= 3,
        "renewed {} and {} times",
        core.renewals(),
        proxy.renewals()
    );
    // And what a new handshake meets is the latest certificate, still valid.
    assert!(core.expires_in() > Duration::ZERO && proxy.expires_in() > Duration::ZERO);
    shutdown.cancel();
}

#[tokio::test]
async fn a_kept_alive_connection_ends_after_its_next_answer_once_core_renews() {
    let ca = LocalCa::ephemeral().expect("ca");
    let shutdown = CancellationToken::new();
    let core = identity(&ca, "core", "auth-proxy").await;
    let url = serve(&core, &shutdown).await;
    let proxy = identity(&ca, "auth-proxy", "core").await;
    let mut kept = KeptConnection::open(proxy.client_config(), &url)
        .await
        .expect("connect");
    assert_eq!(kept.get("/").await, Ok(false), "kept alive while nothing changed");
    assert_eq!(kept.get("/").await, Ok(false));

    let renewed = ca.issue(&id("core"), Duration::from_secs(3600)).await.expect("issue");
    let new_leaf = renewed.chain[0].clone();
    core.install(renewed).expect("install");
    // The request already on its way is answered, and told the connection ends with it.
    assert_eq!(kept.get("/").await, Ok(true), "answered, then closed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(kept.is_closed(), "the old connection carries no more requests");
    // The next connection meets the renewed certificate, and is kept alive again.
    let mut next = KeptConnection::open(proxy.client_config(), &url)
        .await
        .expect("connect");
    assert_eq!(next.server_certificate, new_leaf, "the renewed certificate is in use");
    assert_eq!(next.get("/").await, Ok(false));
    assert_eq!(next.get("/").await, Ok(false));
    shutdown.cancel();
}

#[tokio::test]
async fn a_connection_ends_once_its_client_has_surely_renewed_and_only_once() {
    let ca = LocalCa::ephemeral().expect("ca");
    let shutdown = CancellationToken::new();
    let url = serve(&identity(&ca, "core", "auth-proxy").await, &shutdown).await;
    // The proxy's certificate lives 4 s (and is valid from 0.4 s back): a proxy renews it at
    // about 2 s; core ends its connections once 35 % of its validity is left, by 2.3 s (X.509
    // counts whole seconds).
    let short = ca
        .issue(&id("auth-proxy"), Duration::from_secs(4))
        .await
        .expect("issue");
    let proxy = MutualTls::new(id("auth-proxy"), id("core"), short, vec![ca.root()]).expect("proxy");
    let mut early = KeptConnection::open(proxy.client_config(), &url)
        .await
        .expect("connect");
    assert_eq!(
        early.get("/").await,
        Ok(false),
        "kept alive early in the certificate's life"
    );
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        early.get("/").await,
        Ok(true),
        "ended once the proxy has surely renewed"
    );
    // A proxy whose renewal failed reconnects with the same certificate: that connection is
    // kept alive (no reconnection at every request) until the certificate runs out.
    let mut late = KeptConnection::open(proxy.client_config(), &url)
        .await
        .expect("connect");
    assert_eq!(
        late.get("/").await,
        Ok(false),
        "not ended again for the same certificate"
    );
    assert_eq!(late.get("/").await, Ok(false));
    // Past the end of its validity by more than the second X.509 times are counted in: core
    // has closed the connection, idle as it was, and serves it nothing more.
    tokio::time::sleep(Duration::from_millis(2800)).await;
    assert!(late.is_closed(), "closed once the certificate ran out");
    assert!(late.get("/").await.is_err(), "and no request served over it");
    // (In TLS 1.3 the client finishes its handshake before core checks its certificate.)
    let refused = match KeptConnection::open(proxy.client_config(), &url).await {
        Ok(mut expired) => expired.get("/").await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "and no new connection serves it");
    shutdown.cancel();
}

#[tokio::test]
async fn a_root_removed_from_trust_is_refused_within_a_second_kept_and_resumed_sessions_included() {
    let ca = LocalCa::ephemeral().expect("ca");
    let shutdown = CancellationToken::new();
    let core = identity(&ca, "core", "auth-proxy").await;
    let url = serve(&core, &shutdown).await;
    let proxy = identity(&ca, "auth-proxy", "core").await;
    // One client keeps its connection alive; another makes a new connection each time and
    // would resume its TLS session if core offered one (rustls' client cache is on for it, and
    // shared by every connection made from that configuration).
    let kept = client(proxy.client_config());
    let mut resuming = proxy.client_config();
    resuming.resumption = rustls::client::Resumption::default();
    assert!(get_text(&kept, &url).await.is_ok());
    assert!(get_text(&client(resuming.clone()), &url).await.is_ok());

    let other = LocalCa::ephemeral().expect("other");
    let removed_at = Instant::now();
    core.set_trust(vec![other.root()]).expect("trust only the other root");
    // When each client is first refused, if within 5 s.
    let refused = |client: Box<dyn Fn() -> HttpsClient + Send>, url: String| async move {
        let first = async {
            loop {
                if get_text(&client(), &url).await.is_err() {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), first).await.ok()
    };
    let (kept_at, resumed_at) = tokio::join!(
        refused(Box::new(move || kept.clone()), url.clone()),
        refused(Box::new(move || client(resuming.clone())), url.clone())
    );
    for (who, at) in [("kept-alive", kept_at), ("resuming", resumed_at)] {
        let after = at.map(|at| at - removed_at);
        assert!(
            after.is_some_and(|after| after < Duration::from_secs(1)),
            "{who} client refused after {after:?}"
        );
    }
    assert!(
        get_text(&client(proxy.client_config()), &url).await.is_err(),
        "and new ones"
    );
    shutdown.cancel();
}

#[test]
fn spiffe_ids_are_checked_for_shape() {
    assert_eq!(id("auth-proxy").as_str(), "spiffe://rampart/auth-proxy");
    for (domain, service) in [
        ("rampart", ""),
        ("", "core"),
        ("rampart", "core/admin"),
        ("Rampart", "core"),
        ("rampart", ".."),
        ("rampart", "."),
    ] {
        assert!(SpiffeId::new(domain, service).is_err(), "{domain}/{service}");
    }
}
