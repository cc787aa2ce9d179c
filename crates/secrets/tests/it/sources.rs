//! Both secret adapters store and return values by name, and say NotFound for unknown names.

use rampart_secrets::{
    ExposeSecret, LocalSecretsFile, SecretError, SecretSink, SecretSource, SecretString, SecretsManagerSource,
};

pub(crate) async fn round_trips<S: SecretSource + SecretSink>(store: &S) {
    assert!(matches!(
        store.get("auth/cognito-client-secret").await,
        Err(SecretError::NotFound(_))
    ));
    store
        .put("auth/cognito-client-secret", &SecretString::from("s3cr3t-1"))
        .await
        .expect("create");
    store
        .put("other", &SecretString::from("x"))
        .await
        .expect("create other");
    assert_eq!(
        store
            .get("auth/cognito-client-secret")
            .await
            .expect("get")
            .expose_secret(),
        "s3cr3t-1"
    );
    store
        .put("auth/cognito-client-secret", &SecretString::from("s3cr3t-2"))
        .await
        .expect("update");
    let value = store.get("auth/cognito-client-secret").await.expect("get");
    assert_eq!(value.expose_secret(), "s3cr3t-2");
    assert!(!format!("{value:?}").contains("s3cr3t"), "Debug never shows the value");
}

#[tokio::test]
async fn local_file_round_trips_and_stays_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secrets.json");
    let store = LocalSecretsFile::open(&path).expect("open");
    round_trips(&store).await;
    let mode = std::fs::metadata(&path).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let error = store.get("other").await.expect_err("group-readable file is refused");
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

#[tokio::test]
async fn secrets_manager_round_trips() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws.config);
    round_trips(&SecretsManagerSource::new(client, &aws.prefix)).await;
}

#[tokio::test]
async fn secrets_manager_gives_the_version_a_rotation_replaced_but_never_the_pending_one() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws.config);
    let source = SecretsManagerSource::new(client.clone(), &aws.prefix);
    let name = "core/cursor-key";
    source
        .put(name, &SecretString::from("first-value"))
        .await
        .expect("create");
    let fresh = source.get_with_previous(name).await.expect("read");
    assert_eq!(fresh.current.expose_secret(), "first-value");
    assert!(
        fresh.previous.is_none(),
        "a secret never rotated has no previous version"
    );

    source
        .put(name, &SecretString::from("second-value"))
        .await
        .expect("rotate");
    let rotated = source.get_with_previous(name).await.expect("read");
    assert_eq!(rotated.current.expose_secret(), "second-value");
    assert_eq!(rotated.previous.expect("previous").expose_secret(), "first-value");

    // A rotation under way: its AWSPENDING version is neither current nor previous.
    client
        .put_secret_value()
        .secret_id(format!("{}/{name}", aws.prefix))
        .secret_string("pending-value")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("stage a pending version");
    let during = source.get_with_previous(name).await.expect("read");
    assert_eq!(during.current.expose_secret(), "second-value");
    assert_eq!(during.previous.expect("previous").expose_secret(), "first-value");
}

fn generated() -> Result<SecretString, SecretError> {
    Ok(SecretString::from("generated-key"))
}

/// The local file makes a missing local secret once and keeps it; Secrets Manager, whose
/// secrets Terraform or `rampart bootstrap` provision, never creates one at run time.
#[tokio::test]
async fn only_the_local_file_creates_a_missing_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = LocalSecretsFile::open(&dir.path().join("secrets.json")).expect("open");
    let made = file.get_or_create("seal/local-key", &generated).await.expect("created");
    assert_eq!(made.expose_secret(), "generated-key");
    let other = || Ok(SecretString::from("another key"));
    let kept = file.get_or_create("seal/local-key", &other).await.expect("kept");
    assert_eq!(
        kept.expose_secret(),
        "generated-key",
        "an existing secret is never replaced"
    );
    assert_eq!(
        file.get("seal/local-key").await.expect("stored").expose_secret(),
        "generated-key"
    );

    let aws = rampart_testkit::aws().await;
    let manager = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws.config), &aws.prefix);
    assert!(matches!(
        manager.get_or_create("seal/local-key", &generated).await,
        Err(SecretError::NotFound(_))
    ));
    assert!(matches!(
        manager.get("seal/local-key").await,
        Err(SecretError::NotFound(_))
    ));
}
