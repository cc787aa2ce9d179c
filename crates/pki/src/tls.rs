//! A service's side of mutual TLS: its current certificate and the roots it trusts, swapped
//! while it serves. Every handshake reads them afresh, and session resumption is off, so a
//! renewed certificate is used from the next handshake and a removed root refuses the next
//! one; kept-alive connections from a peer that is no longer trusted are closed (see
//! [`MtlsAcceptor`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use tokio::sync::watch;

use crate::{CertificateIssuer, Issued, PkiError, SpiffeId, spiffe_id_of};

/// The certificate in use and when it runs out.
struct Current {
    key: Arc<CertifiedKey>,
    not_after: SystemTime,
}

/// The roots trusted, and the client verifier built over them.
struct Trust {
    roots: Arc<RootCertStore>,
    clients: Arc<dyn ClientCertVerifier>,
}

/// One service's mutual-TLS identity: what it presents, whom it takes as its peer, and the
/// roots both must chain to.
pub struct MutualTls {
    own: SpiffeId,
    peer: SpiffeId,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Current>>,
    trust: ArcSwap<Trust>,
    /// Counts trust changes; connections watch it to re-check their peer.
    trust_changed: watch::Sender<u64>,
    renewals: AtomicU64,
}

impl std::fmt::Debug for MutualTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutualTls")
            .field("own", &self.own)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

fn invalid(error: impl std::fmt::Display) -> PkiError {
    PkiError::Invalid(error.to_string())
}

impl MutualTls {
    /// `own`, presenting `issued`, taking only `peer`, both chaining to `anchors`.
    pub fn new(
        own: SpiffeId,
        peer: SpiffeId,
        issued: Issued,
        anchors: Vec<CertificateDer<'static>>,
    ) -> Result<Arc<Self>, PkiError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = current(&provider, issued)?;
        let trust = trust(&provider, anchors)?;
        Ok(Arc::new(Self {
            own,
            peer,
            provider,
            current: RwLock::new(Arc::new(current)),
            trust: ArcSwap::from_pointee(trust),
            trust_changed: watch::Sender::new(0),
            renewals: AtomicU64::new(0),
        }))
    }

    /// [`MutualTls::new`] with a certificate of `ttl` from `issuer`, renewed at about half its
    /// life (and the roots read again) until the last handle is dropped.
    pub async fn start(
        issuer: Arc<dyn CertificateIssuer>,
        own: SpiffeId,
        peer: SpiffeId,
        ttl: Duration,
    ) -> Result<Arc<Self>, PkiError> {
        let issued = issuer.issue(&own, ttl).await?;
        let tls = Self::new(own, peer, issued, issuer.trust_anchors().await?)?;
        tls.keep_renewed(issuer, ttl);
        Ok(tls)
    }

    /// Presents `issued` from the next handshake on.
    pub fn install(&self, issued: Issued) -> Result<(), PkiError> {
        let current = current(&self.provider, issued)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(current);
        // Release/Acquire: a handshake that reads the new count also reads the new certificate.
        self.renewals.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Trusts `anchors` alone from the next handshake on, and closes connections whose peer
    /// does not chain to them.
    pub fn set_trust(&self, anchors: Vec<CertificateDer<'static>>) -> Result<(), PkiError> {
        self.trust.store(Arc::new(trust(&self.provider, anchors)?));
        self.trust_changed.send_modify(|changes| *changes += 1);
        Ok(())
    }

    /// Until the certificate in use runs out.
    pub fn expires_in(&self) -> Duration {
        self.current()
            .not_after
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    /// Certificates installed since the first.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Acquire)
    }

    fn current(&self) -> Arc<Current> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Renews at half the certificate's remaining life (±10 %, so services started together do
    /// not renew together), reading the roots again each time; after a failure, tries again
    /// within a quarter of the life left (1 to 30 s). Ends when the last handle is dropped.
    fn keep_renewed(self: &Arc<Self>, issuer: Arc<dyn CertificateIssuer>, ttl: Duration) {
        let tls: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = None;
            loop {
                let pause = {
                    let Some(tls) = tls.upgrade() else { return };
                    wait.take().unwrap_or_else(|| jittered(tls.expires_in() / 2))
                };
                tokio::time::sleep(pause).await;
                let Some(tls) = tls.upgrade() else { return };
                let renewed = async {
                    let issued = issuer.issue(&tls.own, ttl).await?;
                    let anchors = issuer.trust_anchors().await?;
                    tls.install(issued)?;
                    tls.set_trust_if_changed(anchors)
                };
                if let Err(error) = renewed.await {
                    let retry = (tls.expires_in() / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
                    tracing::warn!(%error, service = %tls.own, retry_in = ?retry, "certificate renewal failed");
                    wait = Some(retry);
                }
            }
        });
    }

    fn set_trust_if_changed(&self, anchors: Vec<CertificateDer<'static>>) -> Result<(), PkiError> {
        let now = trust(&self.provider, anchors.clone())?;
        if now.roots.roots == self.trust.load().roots.roots {
            return Ok(());
        }
        self.set_trust(anchors)
    }

    /// What a server presents and asks of its clients: TLS 1.3, a client certificate required,
    /// no session tickets or session cache (a resumed session would skip the trust check).
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap_or_else(|_| unreachable!("the aws-lc-rs provider supports TLS 1.3"))
            .with_client_cert_verifier(Arc::new(ClientCheck(Arc::clone(self))))
            .with_cert_resolver(Arc::new(Presents(Arc::clone(self))));
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// What a client presents and accepts of its server: TLS 1.3, the server's SPIFFE ID
    /// rather than its host name, no resumption.
    pub fn client_config(self: &Arc<Self>) -> ClientConfig {
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap_or_else(|_| unreachable!("the aws-lc-rs provider supports TLS 1.3"))
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerCheck(Arc::clone(self))))
            .with_client_cert_resolver(Arc::new(Presents(Arc::clone(self))));
        config.resumption = Resumption::disabled();
        config
    }

    /// Whether `chain` is the peer's and chains to the roots trusted now.
    fn is_peer(&self, chain: &[CertificateDer<'_>], now: UnixTime, as_client: bool) -> Result<(), rustls::Error> {
        let (end_entity, intermediates) = chain.split_first().ok_or(rustls::Error::NoCertificatesPresented)?;
        let trust = self.trust.load();
        if as_client {
            trust.clients.verify_client_cert(end_entity, intermediates, now)?;
        } else {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &trust.roots,
                intermediates,
                now,
                self.algorithms().all,
            )?;
        }
        match spiffe_id_of(end_entity) {
            Some(id) if id == self.peer.as_str() => Ok(()),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

fn current(provider: &CryptoProvider, issued: Issued) -> Result<Current, PkiError> {
    let key = provider.key_provider.load_private_key(issued.key).map_err(invalid)?;
    Ok(Current {
        key: Arc::new(CertifiedKey::new(issued.chain, key)),
        not_after: issued.not_after,
    })
}

fn trust(provider: &Arc<CryptoProvider>, anchors: Vec<CertificateDer<'static>>) -> Result<Trust, PkiError> {
    let mut roots = RootCertStore::empty();
    for anchor in anchors {
        roots.add(anchor).map_err(invalid)?;
    }
    let roots = Arc::new(roots);
    let clients = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider))
        .build()
        .map_err(invalid)?;
    Ok(Trust { roots, clients })
}

/// `wait`, give or take 10 %.
fn jittered(wait: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let spread = match rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut byte)
    {
        Ok(()) => f64::from(byte[0]) / 255.0 * 0.2 + 0.9,
        Err(_) => 1.0,
    };
    wait.mul_f64(spread)
}

/// Hands the certificate in use to each handshake, as server or as client.
#[derive(Debug)]
struct Presents(Arc<MutualTls>);

impl ResolvesServerCert for Presents {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current().key))
    }
}

impl ResolvesClientCert for Presents {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current().key))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The server's check of its client: chains to a root trusted now, and is the peer.
#[derive(Debug)]
struct ClientCheck(Arc<MutualTls>);

impl ClientCertVerifier for ClientCheck {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: the client has one certificate to present, whatever the server trusts.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain: Vec<_> = std::iter::once(end_entity.clone())
            .chain(intermediates.iter().cloned())
            .collect();
        self.0.is_peer(&chain, now, true)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.0.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.0.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.algorithms().supported_schemes()
    }
}

/// The client's check of its server: chains to a root trusted now, and is the peer (by its
/// SPIFFE ID; the host name dialled is not what identifies a service).
#[derive(Debug)]
struct ServerCheck(Arc<MutualTls>);

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<_> = std::iter::once(end_entity.clone())
            .chain(intermediates.iter().cloned())
            .collect();
        self.0.is_peer(&chain, now, false)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.0.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.0.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.algorithms().supported_schemes()
    }
}

/// The SPIFFE ID a server's connection proved its peer to be (in [`Peer`], which each of its
/// requests carries as an extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub String);

/// Accepts mutual-TLS connections for `rampart_kernel::serve::serve_with`: the handshake
/// requires the peer's certificate, and a connection is closed once its peer's chain no longer
/// ends at a trusted root.
#[derive(Clone)]
pub struct MtlsAcceptor {
    tls: Arc<MutualTls>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for MtlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsAcceptor")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl MtlsAcceptor {
    pub fn new(tls: &Arc<MutualTls>) -> Self {
        Self {
            tls: Arc::clone(tls),
            acceptor: tokio_rustls::TlsAcceptor::from(tls.server_config()),
        }
    }
}

/// A connection's peer: its identity and the chain it presented, checked again on trust changes,
/// and what tells when a fresh handshake would use newer certificates.
#[derive(Debug, Clone)]
pub struct Peer {
    pub identity: PeerIdentity,
    chain: Arc<Vec<CertificateDer<'static>>>,
    /// Our renewals before the handshake began (so one racing it counts as after).
    renewals: u64,
    established: SystemTime,
    /// When the peer has surely renewed the certificate it presented.
    peer_renewed_by: SystemTime,
    peer_expires: SystemTime,
}

/// Share of a certificate's validity still left when its holder has surely renewed it:
/// [`MutualTls::start`] renews with 45 % of its life left at the least, issuers backdate
/// validity by at most a tenth of that life (the local CA; Vault's default 30 s, for
/// certificates of 5 minutes or more), so at least 41 % of the validity is left then, minus
/// up to a second (X.509 times have whole-second resolution). With shorter Vault
/// certificates a connection may end before its peer renewed, costing one reconnection.
const LEFT_WHEN_RENEWED: f64 = 0.35;

impl rampart_kernel::serve::Handshake for MtlsAcceptor {
    type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Peer = Peer;

    async fn handshake(&self, tcp: tokio::net::TcpStream) -> std::io::Result<(Self::Stream, Peer)> {
        let renewals = self.tls.renewals();
        let stream = self.acceptor.accept(tcp).await?;
        let chain: Vec<_> = stream
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|cert| cert.clone().into_owned())
            .collect();
        let end_entity = chain
            .first()
            .ok_or_else(|| std::io::Error::other("the peer presented no certificate"))?;
        let identity =
            spiffe_id_of(end_entity).ok_or_else(|| std::io::Error::other("the peer presented no SPIFFE ID"))?;
        let (not_before, not_after) = crate::identity::validity(end_entity).map_err(std::io::Error::other)?;
        let life = not_after.duration_since(not_before).unwrap_or_default();
        Ok((
            stream,
            Peer {
                identity: PeerIdentity(identity),
                chain: Arc::new(chain),
                renewals,
                established: SystemTime::now(),
                peer_renewed_by: not_after - life.mul_f64(LEFT_WHEN_RENEWED),
                peer_expires: not_after,
            },
        ))
    }

    /// Stale once we have renewed since the handshake, once the peer has surely renewed (each
    /// connection once, so a peer whose renewal fails is not made to reconnect at every
    /// request), and once the peer's certificate has run out.
    fn stale(&self, peer: &Peer) -> bool {
        let now = SystemTime::now();
        self.tls.renewals() != peer.renewals
            || (peer.established < peer.peer_renewed_by && now >= peer.peer_renewed_by)
            || now > peer.peer_expires
    }

    /// Resolves when a trust change leaves the peer's chain without a trusted root (checked
    /// once at the start too, so a change made during the handshake is not missed), or when
    /// the peer's certificate runs out.
    fn distrusted(&self, peer: &Peer) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tls, chain) = (Arc::clone(&self.tls), Arc::clone(&peer.chain));
        let mut changes = tls.trust_changed.subscribe();
        // X.509 counts whole seconds: a second past its notAfter, the chain no longer verifies.
        let until_expired =
            peer.peer_expires.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_secs(1);
        async move {
            let expired = tokio::time::sleep(until_expired);
            tokio::pin!(expired);
            loop {
                if tls.is_peer(&chain, UnixTime::now(), true).is_err() {
                    return;
                }
                tokio::select! {
                    () = &mut expired => return,
                    changed = changes.changed() => if changed.is_err() {
                        // No more trust changes: only the expiry is left to wait for.
                        expired.as_mut().await;
                        return;
                    },
                }
            }
        }
    }
}

/// Adds `tls`'s certificate to `registry`: time left and renewals, read when scraped.
pub fn register_metrics(registry: &rampart_kernel::metrics::Registry, tls: &Arc<MutualTls>) {
    registry.register_collector(CertificateMetrics(Arc::clone(tls)));
}

#[derive(Debug)]
struct CertificateMetrics(Arc<MutualTls>);

impl prometheus_client::collector::Collector for CertificateMetrics {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let service = [("service", self.0.own.service())];
        let left = ConstGauge::new(i64::try_from(self.0.expires_in().as_secs()).unwrap_or(i64::MAX));
        left.encode(
            encoder
                .encode_descriptor(
                    "rampart_mtls_certificate_expires_in_seconds",
                    "Until the service's mTLS certificate runs out",
                    None,
                    left.metric_type(),
                )?
                .encode_family(&service)?,
        )?;
        let renewals = ConstCounter::new(self.0.renewals());
        renewals.encode(
            encoder
                .encode_descriptor(
                    "rampart_mtls_certificate_renewals",
                    "mTLS certificates installed since start",
                    None,
                    renewals.metric_type(),
                )?
                .encode_family(&service)?,
        )
    }
}
