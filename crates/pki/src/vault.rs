//! Certificates from Vault's PKI engine (on EKS): leaves issued by the intermediate mount's
//! role named after the service (`pki_int/issue/<service>`, as `ansible/playbooks/vault.yml`
//! makes them), the root read from the root mount. Vault is reached with the login
//! `secrets.vault` describes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rampart_secrets::VaultSource;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vaultrs::api::pki::requests::GenerateCertificateRequest;

use crate::{CertificateIssuer, Issued, PkiError, SpiffeId};

/// Issues through `<intermediate mount>/issue/<service>`; trusts the root mount's issuer.
#[derive(Debug)]
pub struct VaultPki {
    vault: Arc<VaultSource>,
    intermediate_mount: String,
    root_mount: String,
}

impl VaultPki {
    pub fn new(vault: Arc<VaultSource>, intermediate_mount: &str, root_mount: &str) -> Self {
        Self {
            vault,
            intermediate_mount: intermediate_mount.to_owned(),
            root_mount: root_mount.to_owned(),
        }
    }
}

fn refused(what: &str, error: impl std::fmt::Display) -> PkiError {
    PkiError::Ca(format!("Vault PKI {what}: {error}"))
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Invalid(format!("{e:?}")))
}

#[async_trait::async_trait]
impl CertificateIssuer for VaultPki {
    async fn issue(&self, service: &SpiffeId, ttl: Duration) -> Result<Issued, PkiError> {
        let name = service.service();
        let answer = self
            .vault
            .call(|client| async move {
                let mut request = GenerateCertificateRequest::builder();
                request
                    .common_name(name)
                    .alt_names(format!("{name},localhost"))
                    .ip_sans("127.0.0.1")
                    .uri_sans(service.as_str())
                    .ttl(format!("{}s", ttl.as_secs()))
                    .private_key_format("pkcs8");
                vaultrs::pki::cert::generate(&*client, &self.intermediate_mount, name, Some(&mut request)).await
            })
            .await
            .map_err(|e| refused("login", e))?
            .map_err(|e| refused(&format!("{}/issue/{name}", self.intermediate_mount), e))?;
        let mut chain = certificates(&answer.certificate)?;
        chain.extend(certificates(&answer.issuing_ca)?);
        let key = PrivateKeyDer::from_pem_slice(answer.private_key.as_bytes())
            .map_err(|_| PkiError::Invalid("Vault's private key is not PEM".into()))?;
        let expiration = answer
            .expiration
            .ok_or_else(|| PkiError::Invalid("Vault gave no expiration".into()))?;
        Ok(Issued {
            chain,
            key,
            not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(expiration),
        })
    }

    async fn trust_anchors(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        let root = self
            .vault
            .call(|client| async move { vaultrs::pki::issuer::read(&*client, &self.root_mount, None).await })
            .await
            .map_err(|e| refused("login", e))?
            .map_err(|e| refused(&format!("{}/issuer/default", self.root_mount), e))?;
        certificates(&root.certificate)
    }
}
