//! Access tokens: issued through each signer, verified by our verifier and by an independent
//! implementation (PyJWT) from the published JWKS alone, and refused for every known attack.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_tokens::jwt::{AccessClaims, KeySet, Rejection, Validation, issue, verify};
use rampart_tokens::{Algorithm, KmsSigner, LocalKeySigner, Signer};

pub(crate) const NOW: i64 = 1_800_000_000;

pub(crate) fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.com".into(),
        sub: "user-1".into(),
        aud: "rampart".into(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "jti-1".into(),
        sid: "session-1".into(),
        scope: "openid profile".into(),
        amr: vec!["pwd".into()],
        auth_time: NOW,
    }
}

pub(crate) fn validation() -> Validation {
    Validation {
        issuer: "https://auth.example.com".into(),
        audience: "rampart".into(),
        leeway_secs: 30,
        max_token_bytes: 8192,
    }
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).expect("json"))
}

/// Replaces the header of `token` (keeping claims and signature).
fn with_header(token: &str, header: serde_json::Value) -> String {
    let rest = token.split_once('.').expect("dot").1;
    format!("{}.{rest}", b64(&header))
}

async fn signer(algorithm: Algorithm, dir: &std::path::Path) -> LocalKeySigner {
    LocalKeySigner::load_or_create(dir, algorithm).expect("key")
}

#[tokio::test]
async fn issued_tokens_verify_and_carry_rfc9068_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    for algorithm in [Algorithm::RS256, Algorithm::ES256] {
        let signer = signer(algorithm, dir.path()).await;
        let token = issue(&signer, &claims()).await.expect("issue");
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().expect("header"))
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], algorithm.name());
        assert_eq!(header["kid"], signer.public_key().kid.as_str());
        let keys = KeySet::new([signer.public_key().clone()]);
        assert_eq!(verify(&token, &keys, &validation(), NOW), Ok(claims()));
    }
}

#[tokio::test]
async fn every_attack_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsa = signer(Algorithm::RS256, dir.path()).await;
    let ec = signer(Algorithm::ES256, dir.path()).await;
    let keys = KeySet::new([rsa.public_key().clone(), ec.public_key().clone()]);
    let token = issue(&rsa, &claims()).await.expect("issue");
    let kid = rsa.public_key().kid.clone();
    let check = |token: &str| verify(token, &keys, &validation(), NOW);

    // alg: none, with and without a signature.
    let none = with_header(&token, serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid}));
    assert_eq!(check(&none), Err(Rejection::UnsupportedAlgorithm));
    let unsigned = format!("{}.", none.rsplit_once('.').expect("dot").0);
    assert_eq!(check(&unsigned), Err(Rejection::UnsupportedAlgorithm));

    // HS256 "signed" with the RSA public key as the HMAC secret.
    let hs_header = b64(&serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}));
    let claims_b64 = token.split('.').nth(1).expect("claims");
    let input = format!("{hs_header}.{claims_b64}");
    let secret = serde_json::to_vec(rsa.public_key()).expect("jwk");
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
        input.as_bytes(),
    );
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    assert_eq!(check(&hs), Err(Rejection::UnsupportedAlgorithm));

    // Unknown kid, path-traversal kid, and a kid of the other key type (alg confusion).
    let unknown = with_header(
        &token,
        serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "nope"}),
    );
    assert_eq!(check(&unknown), Err(Rejection::UnknownKey));
    let traversal = with_header(
        &token,
        serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": "../../etc/passwd"}),
    );
    assert_eq!(check(&traversal), Err(Rejection::UnknownKey));
    let confused = with_header(
        &token,
        serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": ec.public_key().kid}),
    );
    assert_eq!(check(&confused), Err(Rejection::AlgorithmMismatch));

    // Key references in the header are never followed.
    for member in ["jku", "x5u", "jwk", "x5c", "crit"] {
        let header = serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": kid, member: "https://evil.example/k"});
        assert_eq!(
            check(&with_header(&token, header)),
            Err(Rejection::ForbiddenHeader),
            "{member}"
        );
    }

    // An ID token (typ JWT) cannot pass as an access token.
    let id_token = with_header(&token, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid}));
    assert_eq!(check(&id_token), Err(Rejection::WrongType));

    // Time and audience.
    let late = verify(&token, &keys, &validation(), NOW + 900 + 31);
    assert_eq!(late, Err(Rejection::Expired));
    assert!(
        verify(&token, &keys, &validation(), NOW + 900 + 29).is_ok(),
        "inside the leeway"
    );
    assert_eq!(
        verify(&token, &keys, &validation(), NOW - 31),
        Err(Rejection::NotYetValid)
    );
    let other_iss = Validation {
        issuer: "https://evil.example".into(),
        ..validation()
    };
    assert_eq!(verify(&token, &keys, &other_iss, NOW), Err(Rejection::WrongIssuer));
    let other_aud = Validation {
        audience: "billing".into(),
        ..validation()
    };
    assert_eq!(verify(&token, &keys, &other_aud, NOW), Err(Rejection::WrongAudience));

    // Signature damage.
    let (input, signature) = token.rsplit_once('.').expect("dot");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("b64");
    bytes[0] ^= 0x80;
    assert_eq!(
        check(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes))),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        check(&format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1])
        )),
        Err(Rejection::BadSignature)
    );
    assert_eq!(check(&token[..token.len() / 2]), Err(Rejection::Malformed));

    // Claims swapped under a valid signature.
    let mut forged = claims();
    forged.sub = "admin".into();
    let forged = format!(
        "{}.{}.{signature}",
        input.split('.').next().expect("h"),
        b64(&serde_json::to_value(&forged).expect("json"))
    );
    assert_eq!(check(&forged), Err(Rejection::BadSignature));

    // ECDSA with r = s = 0 ("psychic signatures").
    let ec_token = issue(&ec, &claims()).await.expect("issue");
    let ec_input = ec_token.rsplit_once('.').expect("dot").0;
    let zero = format!("{ec_input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
    assert_eq!(check(&zero), Err(Rejection::BadSignature));

    // Oversized.
    let small = Validation {
        max_token_bytes: 64,
        ..validation()
    };
    assert_eq!(verify(&token, &keys, &small, NOW), Err(Rejection::Oversized));
}

/// Verifies `token` with PyJWT from the JWKS JSON alone; returns the decoded `sub`.
pub(crate) fn pyjwt_verify(jwks: &serde_json::Value, token: &str) -> String {
    let script = r#"
import json, sys, jwt
jwks, token = json.loads(sys.argv[1]), sys.argv[2]
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwt.PyJWKSet.from_dict(jwks).keys if k.key_id == kid)
claims = jwt.decode(token, key, algorithms=[key.algorithm_name], audience="rampart", issuer="https://auth.example.com",
                    options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
print(claims["sub"])
"#;
    let output = Command::new(rampart_testkit::Moto::python())
        .args(["-c", script, &jwks.to_string(), token])
        .output()
        .expect("run PyJWT (installed in .venv by scripts/test)");
    assert!(
        output.status.success(),
        "PyJWT refused the token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn tokens_from_the_local_key_and_from_kms_verify_in_pyjwt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_kms::Client::new(&aws.config);
    rampart_tokens::kms::provision_keys(&client, &aws.prefix)
        .await
        .expect("provision");
    let kms = KmsSigner::connect(client, &format!("alias/{}-token-signing", aws.prefix))
        .await
        .expect("kms");
    let signers: Vec<Box<dyn Signer>> = vec![
        Box::new(signer(Algorithm::RS256, dir.path()).await),
        Box::new(signer(Algorithm::ES256, dir.path()).await),
        Box::new(kms),
    ];
    for signer in &signers {
        let token = issue(signer.as_ref(), &claims()).await.expect("issue");
        let jwks = serde_json::json!({ "keys": [signer.public_key()] });
        assert_eq!(
            pyjwt_verify(&jwks, &token),
            "user-1",
            "{}",
            signer.public_key().alg.name()
        );
    }
}

/// Tokens signed by a real RS256 and a real ES256 key, and the key set that verifies them: the
/// property tests below run against keys that could accept a token, not an empty set.
struct Signed {
    keys: KeySet,
    tokens: Vec<String>,
}

fn signed() -> &'static Signed {
    static SIGNED: std::sync::OnceLock<Signed> = std::sync::OnceLock::new();
    SIGNED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        runtime.block_on(async {
            let mut keys = Vec::new();
            let mut tokens = Vec::new();
            for algorithm in [Algorithm::RS256, Algorithm::ES256] {
                let signer = signer(algorithm, dir.path()).await;
                tokens.push(issue(&signer, &claims()).await.expect("issue"));
                keys.push(signer.public_key().clone());
            }
            let signed = Signed {
                keys: KeySet::new(keys),
                tokens,
            };
            for token in &signed.tokens {
                assert_eq!(verify(token, &signed.keys, &validation(), NOW), Ok(claims()));
            }
            signed
        })
    })
}

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest::proptest! {
    /// Whatever the input, the verifier answers with a rejection and never panics.
    #[test]
    fn arbitrary_input_is_rejected_without_panicking(token in "\\PC{0,300}", dots in 0usize..4) {
        let mut input = token.clone();
        for _ in 0..dots {
            input.push('.');
            input.push_str(&token);
        }
        proptest::prop_assert!(verify(&input, &signed().keys, &validation(), NOW).is_err());
    }

    /// A real header (naming a published key) over arbitrary claims and signature bytes: the
    /// signature check runs against that key, and fails.
    #[test]
    fn arbitrary_claims_and_signatures_under_a_real_header_are_rejected(
        which in 0usize..2,
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        signature in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
    ) {
        let header = signed().tokens[which].split('.').next().expect("header");
        let token = format!("{header}.{}.{}", URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(&signature));
        proptest::prop_assert!(verify(&token, &signed().keys, &validation(), NOW).is_err());
    }

    /// Changing any one character of a valid token, in the header, the claims or the signature,
    /// makes it fail.
    #[test]
    fn any_change_to_a_signed_token_is_rejected(which in 0usize..2, position in 0usize..2000, replacement in 0usize..64) {
        let token = &signed().tokens[which];
        let position = position % token.len();
        let original = token.as_bytes()[position];
        let new = BASE64URL[replacement];
        proptest::prop_assume!(original != b'.' && original != new);
        let mut changed = token.clone().into_bytes();
        changed[position] = new;
        let changed = String::from_utf8(changed).expect("ascii");
        proptest::prop_assert!(verify(&changed, &signed().keys, &validation(), NOW).is_err());
    }
}
