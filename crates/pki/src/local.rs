//! The embedded platform's CA: a root and an intermediate made once under a directory (the
//! intermediate's key 0600), leaf certificates issued in memory and never written down.
//!
//! The root's key signs the intermediate and is then dropped, never written: nothing can make
//! another intermediate under this root. So the intermediate lives as long as the root (ten
//! years; a new CA after that). Both keys of a local CA would sit on the same disk anyway: the
//! tiers are kept for the shape a real PKI has (and Vault's, which `VaultPki` uses, renews its
//! intermediate apart).

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::{CertificateIssuer, Issued, PkiError, SpiffeId};

const ROOT_CERT: &str = "root.pem";
const INTERMEDIATE_CERT: &str = "intermediate.pem";
const INTERMEDIATE_KEY: &str = "intermediate.key";

/// How long the local root and intermediate live.
const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400 - 86_400);
/// Certificates are valid from a minute back, so a peer whose clock is a little behind takes
/// them; a leaf from at most a tenth of its life back, so that its validity still tells a peer
/// when its holder renews it.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A file of the CA: its name, its PEM text and its mode.
type CaFile = (&'static str, String, u32);

fn ca_error(error: impl std::fmt::Display) -> PkiError {
    PkiError::Ca(error.to_string())
}

/// A root, an intermediate it signed, and the intermediate's key, which issues the leaves.
pub struct LocalCa {
    root: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    intermediate_expires: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Rampart");
    name.push(DnType::CommonName, common_name);
    name
}

/// A CA certificate's parameters: `path_len` CAs may follow it in a chain.
fn ca_params(common_name: &str, path_len: u8, lifetime: Duration) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = named(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = OffsetDateTime::now_utc() - CLOCK_SKEW;
    params.not_after = OffsetDateTime::now_utc() + lifetime;
    Ok(params)
}

fn root_params() -> Result<CertificateParams, PkiError> {
    // The root signs the intermediate and nothing else: one CA may follow it, none after that.
    ca_params("Rampart Root CA", 1, ROOT_LIFETIME)
}

fn intermediate_params() -> Result<CertificateParams, PkiError> {
    ca_params("Rampart Intermediate CA", 0, INTERMEDIATE_LIFETIME)
}

impl LocalCa {
    /// The CA kept under `dir`, made there first if it has none. Two processes starting at once
    /// on a fresh directory end up with the same CA: one's is moved into place whole, and the
    /// other reads it.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        if !dir.join(INTERMEDIATE_KEY).exists() {
            let parent = dir.parent().ok_or_else(|| ca_error("the CA directory has no parent"))?;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(ca_error)?;
            // A name no other process (another container's PID 1 too) picks, removed only by us.
            let staging = parent.join(format!(".pki-{}", random_suffix()?));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&staging)
                .map_err(ca_error)?;
            let made = Self::make(&staging).and_then(|()| match std::fs::rename(&staging, dir) {
                Ok(()) => sync_dir(parent),
                // Another process moved its CA into place first.
                Err(_) if dir.join(INTERMEDIATE_KEY).exists() => Ok(()),
                Err(error) => Err(ca_error(format!("{}: {error}", dir.display()))),
            });
            let _ = std::fs::remove_dir_all(&staging);
            made?;
        }
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| ca_error(format!("{file}: {e}")));
        let key = KeyPair::from_pem(&read(INTERMEDIATE_KEY)?).map_err(ca_error)?;
        let intermediate = certificate_from_pem(&read(INTERMEDIATE_CERT)?)?;
        Ok(Self {
            root: certificate_from_pem(&read(ROOT_CERT)?)?,
            intermediate_expires: not_after(&intermediate)?,
            intermediate,
            issuer: Issuer::new(intermediate_params()?, key),
        })
    }

    /// A CA in memory only, trusted by no one but whoever is handed its root.
    pub fn ephemeral() -> Result<Self, PkiError> {
        Ok(Self::generate()?.0)
    }

    /// A new root and intermediate, with the PEM files that keep them.
    fn generate() -> Result<(Self, [CaFile; 3]), PkiError> {
        let root_key = KeyPair::generate().map_err(ca_error)?;
        let root_params = root_params()?;
        let root = root_params.self_signed(&root_key).map_err(ca_error)?;
        let intermediate_key = KeyPair::generate().map_err(ca_error)?;
        let intermediate = intermediate_params()?
            .signed_by(&intermediate_key, &Issuer::from_params(&root_params, &root_key))
            .map_err(ca_error)?;
        let files = [
            (ROOT_CERT, root.pem(), 0o644),
            (INTERMEDIATE_CERT, intermediate.pem(), 0o644),
            (INTERMEDIATE_KEY, intermediate_key.serialize_pem(), 0o600),
        ];
        let ca = Self {
            root: root.der().clone(),
            intermediate_expires: not_after(intermediate.der())?,
            intermediate: intermediate.der().clone(),
            issuer: Issuer::new(intermediate_params()?, intermediate_key),
        };
        Ok((ca, files))
    }

    /// Makes a root and an intermediate in the empty directory `dir`, each file on disk
    /// before the directory is moved into place.
    fn make(dir: &Path) -> Result<(), PkiError> {
        let (_, files) = Self::generate()?;
        for (name, text, mode) in files {
            write_file(&dir.join(name), &text, mode)?;
        }
        sync_dir(dir)
    }

    /// The root, as a peer's trust anchor.
    pub fn root(&self) -> CertificateDer<'static> {
        self.root.clone()
    }

    fn leaf(&self, service: &SpiffeId, ttl: Duration) -> Result<Issued, PkiError> {
        let name = service.service();
        let mut params = CertificateParams::default();
        params.distinguished_name = named(name);
        params.subject_alt_names = vec![
            SanType::URI(service.as_str().try_into().map_err(ca_error)?),
            SanType::DnsName(name.try_into().map_err(ca_error)?),
            SanType::DnsName("localhost".try_into().map_err(ca_error)?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW.min(ttl / 10);
        // No leaf outlives the intermediate that vouches for it.
        params.not_after = (now + ttl).min(self.intermediate_expires);
        let key = KeyPair::generate().map_err(ca_error)?;
        let leaf = params.signed_by(&key, &self.issuer).map_err(ca_error)?;
        Ok(Issued {
            chain: vec![leaf.der().clone(), self.intermediate.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            not_after: params.not_after.into(),
        })
    }
}

#[async_trait::async_trait]
impl CertificateIssuer for LocalCa {
    async fn issue(&self, service: &SpiffeId, ttl: Duration) -> Result<Issued, PkiError> {
        self.leaf(service, ttl)
    }

    async fn trust_anchors(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        Ok(vec![self.root()])
    }
}

fn certificate_from_pem(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Invalid(format!("{e:?}")))
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| ca_error(format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(ca_error)?;
    file.sync_all().map_err(ca_error)
}

fn sync_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(ca_error)
}

fn random_suffix() -> Result<u64, PkiError> {
    let mut bytes = [0u8; 8];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| ca_error("the random source failed"))?;
    Ok(u64::from_le_bytes(bytes))
}

/// When `certificate` stops being valid.
fn not_after(certificate: &CertificateDer<'_>) -> Result<OffsetDateTime, PkiError> {
    crate::identity::validity(certificate).map(|(_, not_after)| OffsetDateTime::from(not_after))
}
