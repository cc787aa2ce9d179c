//! Public keys as JWKs (RFC 7517), their thumbprints (RFC 7638), and signature checks.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkcs1::der::Decode;
use serde::{Deserialize, Serialize};

use crate::{Algorithm, SignerError};

/// A public signing key as published in `/.well-known/jwks.json`: RSA (`n`, `e`) or EC P-256
/// (`crv`, `x`, `y`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: Algorithm,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// `rsaEncryption` (RFC 8017) and `id-ecPublicKey` (RFC 5480) with the P-256 curve.
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";
const P256_OID: &str = "1.2.840.10045.3.1.7";

fn invalid(error: impl std::fmt::Display) -> SignerError {
    SignerError::InvalidKey(error.to_string())
}

impl Jwk {
    /// Builds the JWK of an RSA key from its PKCS#1 `RSAPublicKey` DER.
    pub fn from_rsa_pkcs1_der(der: &[u8]) -> Result<Self, SignerError> {
        let key = pkcs1::RsaPublicKey::from_der(der).map_err(invalid)?;
        let modulus_bits = key.modulus.as_bytes().len() * 8;
        if modulus_bits < 2048 {
            return Err(invalid(format!("RSA modulus of {modulus_bits} bits is below 2048")));
        }
        let n = URL_SAFE_NO_PAD.encode(key.modulus.as_bytes());
        let e = URL_SAFE_NO_PAD.encode(key.public_exponent.as_bytes());
        let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
        Ok(Self {
            kty: "RSA".into(),
            kid,
            alg: Algorithm::RS256,
            use_: "sig".into(),
            n: Some(n),
            e: Some(e),
            crv: None,
            x: None,
            y: None,
        })
    }

    /// Builds the JWK of a P-256 key from its uncompressed SEC1 point (`04 || x || y`).
    pub fn from_p256_point(point: &[u8]) -> Result<Self, SignerError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(invalid("expected an uncompressed P-256 point"));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
        Ok(Self {
            kty: "EC".into(),
            kid,
            alg: Algorithm::ES256,
            use_: "sig".into(),
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(x),
            y: Some(y),
        })
    }

    /// Builds the JWK from an X.509 `SubjectPublicKeyInfo` DER (what KMS returns): RSA or P-256.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignerError> {
        let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(invalid)?;
        let key = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| invalid("public key bit string is not octet-aligned"))?;
        match info.algorithm.oid.to_string().as_str() {
            RSA_ENCRYPTION_OID => Self::from_rsa_pkcs1_der(key),
            EC_PUBLIC_KEY_OID => {
                let curve = info.algorithm.parameters_oid().map_err(invalid)?;
                if curve.to_string() != P256_OID {
                    return Err(invalid(format!("unsupported curve {curve}")));
                }
                Self::from_p256_point(key)
            }
            other => Err(invalid(format!("unsupported key algorithm {other}"))),
        }
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
fn thumbprint(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()).as_ref())
}

fn decode_member(member: Option<&String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(member?).ok()
}

/// Checks a JWS signature of `message` against `jwk`. A malformed key, or a key whose type does
/// not match its `alg`, counts as a failure.
pub fn verify_signature(jwk: &Jwk, message: &[u8], signature: &[u8]) -> bool {
    jwk.parsed_key()
        .is_some_and(|key| key.verify_sig(message, signature).is_ok())
}

impl Jwk {
    /// The key parsed for verification under its `alg`, or `None` if it is malformed or its type
    /// does not match its `alg`. Parsing is most of an RSA check's cost outside the modular
    /// exponentiation, so verifiers parse each published key once.
    pub fn parsed_key(&self) -> Option<ParsedPublicKey> {
        match (self.alg, self.kty.as_str()) {
            (Algorithm::RS256, "RSA") => {
                let (n, e) = (decode_member(self.n.as_ref())?, decode_member(self.e.as_ref())?);
                RsaPublicKeyComponents { n: &n, e: &e }
                    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                    .ok()
            }
            (Algorithm::ES256, "EC") if self.crv.as_deref() == Some("P-256") => {
                let (x, y) = (decode_member(self.x.as_ref())?, decode_member(self.y.as_ref())?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = [&[0x04][..], &x, &y].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).ok()
            }
            _ => None,
        }
    }
}

/// Converts an ASN.1 DER ECDSA signature (what KMS returns) to JOSE's fixed `r || s`.
pub fn ecdsa_der_to_jose(der: &[u8]) -> Result<[u8; 64], SignerError> {
    use pkcs1::der::{Reader, SliceReader, asn1::UintRef};
    let parse = || -> pkcs1::der::Result<(UintRef<'_>, UintRef<'_>)> {
        let mut reader = SliceReader::new(der)?;
        let pair = reader.sequence(|seq| Ok((UintRef::decode(seq)?, UintRef::decode(seq)?)))?;
        reader.finish(pair)
    };
    let (r, s) = parse().map_err(invalid)?;
    let mut jose = [0u8; 64];
    for (half, value) in [(0, r.as_bytes()), (32, s.as_bytes())] {
        if value.len() > 32 {
            return Err(invalid("ECDSA component longer than 32 bytes"));
        }
        jose[half + 32 - value.len()..half + 32].copy_from_slice(value);
    }
    Ok(jose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // The example key of RFC 7638 section 3.1 and its published thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(thumbprint(&canonical), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    /// The `kid` the builders give, against values computed elsewhere: RFC 7638's published
    /// thumbprint of its example RSA key, and authlib 1.9.10's `JsonWebKey.thumbprint()` of the
    /// P-256 key of RFC 7515 appendix A.3.
    #[test]
    fn built_keys_carry_independently_computed_rfc7638_kids() {
        let n = URL_SAFE_NO_PAD
            .decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
            .expect("n");
        // PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n (0x00-prefixed, 257 bytes), INTEGER 65537 }.
        let mut der = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00];
        der.extend_from_slice(&n);
        der.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        let rsa = Jwk::from_rsa_pkcs1_der(&der).expect("RSA key");
        assert_eq!(rsa.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

        let x = URL_SAFE_NO_PAD
            .decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
            .expect("x");
        let y = URL_SAFE_NO_PAD
            .decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
            .expect("y");
        let ec = Jwk::from_p256_point(&[&[0x04][..], &x, &y].concat()).expect("EC key");
        assert_eq!(ec.kid, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
    }

    #[test]
    fn garbage_key_material_is_an_error_not_a_panic() {
        assert!(Jwk::from_spki_der(b"not der").is_err());
        assert!(Jwk::from_rsa_pkcs1_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(Jwk::from_p256_point(&[0x04; 10]).is_err());
    }

    #[test]
    fn der_signature_converts_to_fixed_width_with_leading_zeros_restored() {
        // SEQUENCE { INTEGER 0x00ff (r = 255, DER-padded), INTEGER 0x01 (s = 1) }
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x01];
        let jose = ecdsa_der_to_jose(&der).expect("valid DER");
        assert_eq!(jose[31], 0xff);
        assert!(jose[..31].iter().all(|b| *b == 0));
        assert_eq!(jose[63], 0x01);
        assert!(ecdsa_der_to_jose(&[0x30, 0x00]).is_err());
    }

    #[test]
    fn key_type_must_match_algorithm() {
        let mut jwk = Jwk::from_p256_point(&[[0x04].as_slice(), &[1; 64]].concat()).expect("jwk");
        jwk.alg = Algorithm::RS256;
        assert!(!verify_signature(&jwk, b"m", &[0; 64]));
    }
}
