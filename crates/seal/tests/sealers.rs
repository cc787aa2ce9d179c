//! Both sealers, against the same contract: the local one on a real secrets file, the KMS one
//! on moto over loopback HTTP.

use rampart_seal::{KmsSealer, LocalSealer, MAX_PLAINTEXT_BYTES, SealError, Sealer};
use rampart_secrets::LocalSecretsFile;
use secrecy::{ExposeSecret, SecretString};

const CONTEXT: &[(&str, &str)] = &[("purpose", "provider-credential"), ("session", "s1")];

async fn local(dir: &tempfile::TempDir) -> LocalSealer {
    let file = LocalSecretsFile::open(&dir.path().join("secrets.json")).expect("secrets file");
    LocalSealer::open(&file).await.expect("sealer")
}

async fn kms() -> KmsSealer {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_kms::Client::new(&aws.config);
    rampart_tokens::kms::provision_keys(&client, &aws.prefix)
        .await
        .expect("keys");
    KmsSealer::new(client, &aws.prefix)
}

/// What every sealer must do; `other` is a sealer under a different key.
async fn contract(sealer: &dyn Sealer, other: &dyn Sealer) {
    let secret = SecretString::from("eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIn0.refresh-token-value");
    let sealed = sealer.seal(&secret, CONTEXT).await.expect("seal");
    assert!(
        !sealed.windows(13).any(|w| w == b"refresh-token"),
        "the sealed bytes must not contain the plaintext"
    );
    let opened = sealer.open(&sealed, CONTEXT).await.expect("open");
    assert_eq!(opened.expose_secret(), secret.expose_secret());
    // Sealing is randomised: the same value twice gives different bytes.
    assert_ne!(sealer.seal(&secret, CONTEXT).await.expect("seal"), sealed);

    // Bound to its context: another session, another purpose, or a missing entry fails.
    for context in [
        &[("purpose", "provider-credential"), ("session", "s2")][..],
        &[("purpose", "other"), ("session", "s1")][..],
        &[("purpose", "provider-credential")][..],
    ] {
        assert!(
            matches!(sealer.open(&sealed, context).await, Err(SealError::Invalid)),
            "{context:?}"
        );
    }
    // An altered byte fails, as does a truncation. (Not the first bytes: moto's ciphertext
    // starts with the key id, and moto answers an unknown one with AccessDenied, where AWS's
    // opaque blob gives InvalidCiphertext.)
    for index in [sealed.len() / 2, sealed.len() - 1] {
        let mut altered = sealed.clone();
        altered[index] ^= 0x01;
        let result = sealer.open(&altered, CONTEXT).await;
        assert!(matches!(result, Err(SealError::Invalid)), "byte {index}: {result:?}");
    }
    assert!(matches!(
        sealer.open(&sealed[..sealed.len() / 2], CONTEXT).await,
        Err(SealError::Invalid)
    ));
    assert!(matches!(sealer.open(&[], CONTEXT).await, Err(SealError::Invalid)));
    // Another key cannot open it. (AWS says IncorrectKey, which is `Invalid`; moto says
    // AccessDenied, which the sealer cannot tell from a missing IAM grant, so only "refused".)
    let result = other.open(&sealed, CONTEXT).await;
    assert!(result.is_err(), "{result:?}");

    let too_large = SecretString::from("x".repeat(MAX_PLAINTEXT_BYTES + 1));
    assert!(matches!(
        sealer.seal(&too_large, CONTEXT).await,
        Err(SealError::TooLarge)
    ));
    let largest = SecretString::from("x".repeat(MAX_PLAINTEXT_BYTES));
    let sealed = sealer.seal(&largest, CONTEXT).await.expect("seal 4 KiB");
    assert_eq!(
        sealer.open(&sealed, CONTEXT).await.expect("open").expose_secret().len(),
        MAX_PLAINTEXT_BYTES
    );
}

#[tokio::test]
async fn local_sealer_keeps_the_contract() {
    let (mine, theirs) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (sealer, other) = (local(&mine).await, local(&theirs).await);
    contract(&sealer, &other).await;
    let sealed = sealer.seal(&SecretString::from("value"), CONTEXT).await.expect("seal");
    assert!(matches!(other.open(&sealed, CONTEXT).await, Err(SealError::Invalid)));
}

#[tokio::test]
async fn kms_sealer_keeps_the_contract() {
    contract(&kms().await, &kms().await).await;
}

#[tokio::test]
async fn local_key_is_created_once_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = SecretString::from("value");
    let sealed = local(&dir).await.seal(&secret, CONTEXT).await.expect("seal");
    // A restart reads the same key from the file.
    let reopened = local(&dir).await;
    assert_eq!(
        reopened.open(&sealed, CONTEXT).await.expect("open").expose_secret(),
        "value"
    );
    let file = std::fs::read_to_string(dir.path().join("secrets.json")).expect("file");
    assert!(file.contains(rampart_seal::local::KEY_SECRET));
}

#[tokio::test]
async fn contexts_that_could_be_confused_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sealer = local(&dir).await;
    let secret = SecretString::from("value");
    // `a=b\nc=d` as one value would encode like two entries.
    let result = sealer.seal(&secret, &[("a", "b\nc=d")]).await;
    assert!(matches!(result, Err(SealError::Unavailable(_))), "{result:?}");
}
