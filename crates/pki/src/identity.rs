//! SPIFFE IDs: `spiffe://<trust domain>/<service>`, carried as a certificate's URI SAN.

use rustls::pki_types::CertificateDer;
use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::der::oid::AssociatedOid as _;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::PkiError;

/// A service's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    uri: String,
    service: String,
}

impl SpiffeId {
    /// `spiffe://<trust_domain>/<service>`; both parts lower-case letters, digits and `-`.
    pub fn new(trust_domain: &str, service: &str) -> Result<Self, PkiError> {
        let well_formed = |part: &str| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        if !well_formed(trust_domain) || !well_formed(service) {
            return Err(PkiError::Invalid(format!(
                "spiffe://{trust_domain}/{service} is not a SPIFFE ID this platform issues"
            )));
        }
        Ok(Self {
            uri: format!("spiffe://{trust_domain}/{service}"),
            service: service.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The service's name: the last part of the ID, and its DNS name in the cluster.
    pub fn service(&self) -> &str {
        &self.service
    }
}

impl std::fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.uri)
    }
}

/// When `certificate` starts and stops being valid.
pub(crate) fn validity(
    certificate: &CertificateDer<'_>,
) -> Result<(std::time::SystemTime, std::time::SystemTime), PkiError> {
    let parsed = Certificate::from_der(certificate.as_ref()).map_err(|e| PkiError::Invalid(e.to_string()))?;
    let validity = parsed.tbs_certificate.validity;
    let at = |time: x509_cert::time::Time| std::time::SystemTime::UNIX_EPOCH + time.to_unix_duration();
    Ok((at(validity.not_before), at(validity.not_after)))
}

/// The `spiffe://` URI SAN of `certificate`; `None` unless it is its one URI SAN (as the SPIFFE
/// X.509 profile requires).
pub fn spiffe_id_of(certificate: &CertificateDer<'_>) -> Option<String> {
    let certificate = Certificate::from_der(certificate.as_ref()).ok()?;
    let extensions = certificate.tbs_certificate.extensions?;
    let san = extensions
        .iter()
        .find(|extension| extension.extn_id == SubjectAltName::OID)?;
    let names = SubjectAltName::from_der(san.extn_value.as_bytes()).ok()?;
    let mut uris = names.0.iter().filter_map(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str()),
        _ => None,
    });
    let first = uris.next().filter(|uri| uri.starts_with("spiffe://"))?;
    uris.next().is_none().then(|| first.to_owned())
}
