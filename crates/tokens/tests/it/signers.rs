//! Both Signer adapters, for both algorithms, produce signatures that verify against their
//! published JWK, and only against it: the local key file, and KMS keys on moto.

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use rampart_tokens::kms::provision_keys;
use rampart_tokens::{Algorithm, KmsSigner, LocalKeySigner, Signer, verify_signature};

pub(crate) async fn signs_verifiably(signer: &dyn Signer, algorithm: Algorithm) {
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ";
    let signature = signer.sign(message).await.expect("sign");
    let jwk = signer.public_key();
    assert_eq!(jwk.alg, algorithm);
    assert_eq!(jwk.use_, "sig");
    if algorithm == Algorithm::ES256 {
        assert_eq!(signature.len(), 64, "JOSE r || s, not DER");
    }
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
async fn local_keys_sign_verifiably() {
    let dir = tempfile::tempdir().expect("tempdir");
    for algorithm in [Algorithm::RS256, Algorithm::ES256] {
        let signer = LocalKeySigner::load_or_create(dir.path(), algorithm).expect("key");
        signs_verifiably(&signer, algorithm).await;
    }
}

#[tokio::test]
async fn kms_keys_sign_verifiably_with_a_stable_kid() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_kms::Client::new(&aws.config);
    let keys = provision_keys(&client, &aws.prefix).await.expect("provision");
    let again = provision_keys(&client, &aws.prefix)
        .await
        .expect("re-provision is idempotent");
    assert_eq!(keys, again);
    let alias = format!("alias/{}-token-signing", aws.prefix);
    let signer = KmsSigner::connect(client.clone(), &alias).await.expect("connect");
    signs_verifiably(&signer, Algorithm::RS256).await;
    let reconnected = KmsSigner::connect(client.clone(), &alias).await.expect("connect");
    assert_eq!(signer.public_key().kid, reconnected.public_key().kid);

    let ecc = client
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create ECC key");
    let ecc_id = ecc.key_metadata().map(|m| m.key_id().to_owned()).expect("key id");
    let ecc_signer = KmsSigner::connect(client.clone(), &ecc_id).await.expect("connect ECC");
    signs_verifiably(&ecc_signer, Algorithm::ES256).await;

    // The symmetric data key cannot be used to sign tokens.
    let data_alias = format!("alias/{}-data", aws.prefix);
    assert!(KmsSigner::connect(client, &data_alias).await.is_err());
}
