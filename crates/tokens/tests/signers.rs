//! Both Signer adapters produce signatures that verify against their published JWK, and only
//! against it: the local key file, and a KMS key on moto.

use rampart_tokens::kms::provision_keys;
use rampart_tokens::{Jwk, KmsSigner, LocalKeySigner, Signer, verify_signature};

async fn signs_verifiably(signer: &dyn Signer) {
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ";
    let signature = signer.sign(message).await.expect("sign");
    let jwk = signer.public_key();
    assert_eq!(jwk.kty, "RSA");
    assert_eq!(jwk.use_, "sig");
    assert!(verify_signature(jwk, message, &signature), "signature verifies");
    assert!(
        !verify_signature(jwk, b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJldmUifQ", &signature),
        "other message fails"
    );
    let mut flipped = signature.clone();
    flipped[10] ^= 1;
    assert!(!verify_signature(jwk, message, &flipped), "bit-flipped signature fails");
    assert!(
        !verify_signature(jwk, message, &signature[..signature.len() - 1]),
        "truncated signature fails"
    );
}

#[tokio::test]
async fn local_key_signs_verifiably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = LocalKeySigner::load_or_create(dir.path()).expect("key");
    signs_verifiably(&signer).await;
}

#[tokio::test]
async fn kms_key_signs_verifiably_with_a_stable_kid() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_kms::Client::new(&aws.config);
    let keys = provision_keys(&client, &aws.prefix).await.expect("provision");
    let again = provision_keys(&client, &aws.prefix)
        .await
        .expect("re-provision is idempotent");
    assert_eq!(keys, again);
    let alias = format!("alias/{}-token-signing", aws.prefix);
    let signer = KmsSigner::connect(client.clone(), &alias).await.expect("connect");
    signs_verifiably(&signer).await;
    let reconnected = KmsSigner::connect(client.clone(), &alias).await.expect("connect");
    assert_eq!(signer.public_key().kid, reconnected.public_key().kid);

    // The symmetric data key cannot be used to sign tokens.
    let data_alias = format!("alias/{}-data", aws.prefix);
    assert!(KmsSigner::connect(client, &data_alias).await.is_err());
}

#[test]
fn jwk_serialises_with_the_standard_member_names() {
    let jwk = Jwk {
        kty: "RSA".into(),
        kid: "k1".into(),
        alg: rampart_tokens::Algorithm::RS256,
        use_: "sig".into(),
        n: "AQAB".into(),
        e: "AQAB".into(),
    };
    let json = serde_json::to_value(&jwk).expect("json");
    assert_eq!(json["use"], "sig");
    assert_eq!(json["alg"], "RS256");
}
