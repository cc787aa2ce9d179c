//! Public keys as JWKs (RFC 7517), their thumbprints (RFC 7638), and signature checks.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkcs1::der::Decode;
use serde::{Deserialize, Serialize};

use crate::{Algorithm, SignerError};

/// A public signing key as published in `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: Algorithm,
    #[serde(rename = "use")]
    pub use_: String,
    /// RSA modulus, base64url without padding.
    pub n: String,
    /// RSA public exponent, base64url without padding.
    pub e: String,
}

impl Jwk {
    /// Builds the JWK of an RSA key from its PKCS#1 `RSAPublicKey` DER.
    pub fn from_rsa_pkcs1_der(der: &[u8]) -> Result<Self, SignerError> {
        let key = pkcs1::RsaPublicKey::from_der(der).map_err(|e| SignerError::InvalidKey(e.to_string()))?;
        let modulus_bits = key.modulus.as_bytes().len() * 8;
        if modulus_bits < 2048 {
            return Err(SignerError::InvalidKey(format!(
                "RSA modulus of {modulus_bits} bits is below 2048"
            )));
        }
        let n = URL_SAFE_NO_PAD.encode(key.modulus.as_bytes());
        let e = URL_SAFE_NO_PAD.encode(key.public_exponent.as_bytes());
        Ok(Self {
            kty: "RSA".into(),
            kid: rsa_thumbprint(&n, &e),
            alg: Algorithm::RS256,
            use_: "sig".into(),
            n,
            e,
        })
    }

    /// Builds the JWK of an RSA key from its X.509 `SubjectPublicKeyInfo` DER (what KMS returns).
    pub fn from_rsa_spki_der(der: &[u8]) -> Result<Self, SignerError> {
        let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|e| SignerError::InvalidKey(e.to_string()))?;
        if info.algorithm.oid.to_string() != RSA_ENCRYPTION_OID {
            return Err(SignerError::InvalidKey(format!(
                "expected an RSA key, got {}",
                info.algorithm.oid
            )));
        }
        let pkcs1 = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| SignerError::InvalidKey("public key bit string is not octet-aligned".into()))?;
        Self::from_rsa_pkcs1_der(pkcs1)
    }
}

/// `rsaEncryption` (RFC 8017), the algorithm of every RSA SubjectPublicKeyInfo.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()).as_ref())
}

/// Checks a JWS signature of `message` against `jwk`. A malformed key counts as a failure.
pub fn verify_signature(jwk: &Jwk, message: &[u8], signature: &[u8]) -> bool {
    let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(&jwk.n), URL_SAFE_NO_PAD.decode(&jwk.e)) else {
        return false;
    };
    match jwk.alg {
        Algorithm::RS256 => RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // The example key of RFC 7638 section 3.1 and its published thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(rsa_thumbprint(n, "AQAB"), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn garbage_key_material_is_an_error_not_a_panic() {
        assert!(Jwk::from_rsa_spki_der(b"not der").is_err());
        assert!(Jwk::from_rsa_pkcs1_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }
}
