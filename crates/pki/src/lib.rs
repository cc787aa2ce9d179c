//! Service identities for mutual TLS between Rampart's services.
//!
//! Three tiers, as a production PKI has them: a root that signs only the intermediate, an
//! intermediate that issues leaf certificates, and leaves that live an hour (renewed at half
//! their life). A service's identity is its certificate's one URI SAN, a SPIFFE ID such as
//! `spiffe://rampart/auth-proxy`; peers are checked by that identity, not by host name.
//!
//! [`CertificateIssuer`] is the port: [`LocalCa`] makes the three tiers under the data
//! directory (the embedded platform). [`MutualTls`] holds a service's current certificate and
//! trusted roots, hands rustls configurations that read them at each handshake, and swaps
//! both without a restart or a dropped connection.

mod identity;
mod local;
mod tls;
mod vault;

use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use identity::{SpiffeId, spiffe_id_of};
pub use local::LocalCa;
pub use tls::{MtlsAcceptor, MutualTls, Peer, PeerIdentity, register_metrics};
pub use vault::VaultPki;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Making, reading or storing a key or certificate failed.
    #[error("certificate authority: {0}")]
    Ca(String),
    /// A certificate or key handed in is not one a TLS stack can use.
    #[error("invalid certificate material: {0}")]
    Invalid(String),
}

/// A leaf certificate and its key: what a service presents.
pub struct Issued {
    /// The leaf first, then the intermediate that issued it (the root is the peer's to have).
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("chain", &self.chain.len())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Issues service certificates, and names the roots they chain to.
#[async_trait::async_trait]
pub trait CertificateIssuer: Send + Sync {
    /// A new key and a certificate for `service` (its SPIFFE ID, its DNS names and loopback
    /// address) that lives `ttl`.
    async fn issue(&self, service: &SpiffeId, ttl: Duration) -> Result<Issued, PkiError>;

    /// The roots a peer's chain must end at.
    async fn trust_anchors(&self) -> Result<Vec<CertificateDer<'static>>, PkiError>;
}

/// This service's mutual-TLS identity as `mtls` in `settings` asks, towards `peer`: `None`
/// when mTLS is off. Certificates come from the three-tier CA under `data_dir/pki` (made there
/// on first use) or from Vault's PKI, and are renewed in the background.
/// Refuses a local CA for a service run on its own with `backend = "aws"`: each host would make
/// a CA of its own, which the others do not trust. There, certificates come from Vault.
pub fn check_issuer_for_standalone(settings: &rampart_kernel::Settings) -> Result<(), rampart_kernel::ConfigError> {
    use rampart_kernel::config::CertificateIssuerKind;
    let mtls = &settings.mtls;
    if settings.backend == rampart_kernel::Backend::Aws && mtls.enabled && mtls.issuer == CertificateIssuerKind::Local {
        return Err(rampart_kernel::ConfigError::new(
            "mtls.issuer",
            "must be \"vault\" for a service run on its own with backend = \"aws\": a local CA is made per host, and services on other hosts would not trust it",
        ));
    }
    Ok(())
}

pub async fn connect(
    settings: &rampart_kernel::Settings,
    own: &str,
    peer: &str,
) -> Result<Option<std::sync::Arc<MutualTls>>, rampart_kernel::ConfigError> {
    let mtls = &settings.mtls;
    if !mtls.enabled {
        return Ok(None);
    }
    let failed = |e: PkiError| rampart_kernel::ConfigError::new("mtls", e.to_string());
    let domain = |e: PkiError| rampart_kernel::ConfigError::new("mtls.trust_domain", e.to_string());
    let issuer: std::sync::Arc<dyn CertificateIssuer> = match mtls.issuer {
        rampart_kernel::config::CertificateIssuerKind::Local => {
            std::sync::Arc::new(LocalCa::open(&settings.data_file("pki")?).map_err(failed)?)
        }
        rampart_kernel::config::CertificateIssuerKind::Vault => std::sync::Arc::new(VaultPki::new(
            rampart_secrets::connect_vault(settings).await?,
            &mtls.vault_intermediate_mount,
            &mtls.vault_root_mount,
        )),
    };
    let tls = MutualTls::start(
        issuer,
        SpiffeId::new(&mtls.trust_domain, own).map_err(domain)?,
        SpiffeId::new(&mtls.trust_domain, peer).map_err(domain)?,
        Duration::from_secs(mtls.certificate_ttl_secs),
    )
    .await
    .map_err(failed)?;
    Ok(Some(tls))
}
