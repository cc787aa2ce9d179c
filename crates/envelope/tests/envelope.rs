//! Tenant keys on both backends: SQLite with the local key-encryption key, and DynamoDB with
//! KMS on moto. One contract, then what each backend adds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rampart_envelope::{DataKey, EnvelopeError, KeyWrapper, KmsKeyWrapper, LocalKeyWrapper, TenantKeys};
use rampart_secrets::local::LocalSecretsFile;
use rampart_store::{ItemStore, Table};
use rampart_testkit::unique_suffix;

const LIFETIME: Duration = Duration::from_secs(300);

/// The real adapter, with its calls counted: each call is one call to the key keeper.
#[derive(Debug)]
struct Counted {
    inner: Arc<dyn KeyWrapper>,
    generated: AtomicUsize,
    unwrapped: AtomicUsize,
}

impl Counted {
    fn new(inner: Arc<dyn KeyWrapper>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            generated: AtomicUsize::new(0),
            unwrapped: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl KeyWrapper for Counted {
    async fn generate(&self, tenant: &str) -> Result<(DataKey, Vec<u8>), EnvelopeError> {
        self.generated.fetch_add(1, Ordering::SeqCst);
        self.inner.generate(tenant).await
    }
    async fn unwrap(&self, tenant: &str, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        self.unwrapped.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap(tenant, wrapped).await
    }
}

struct Backend {
    store: Arc<dyn ItemStore>,
    wrapper: Arc<dyn KeyWrapper>,
    _dir: tempfile::TempDir,
}

impl Backend {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(rampart_store::SqliteStore::open(&dir.path().join("store.sqlite")).expect("store"));
        let secrets = LocalSecretsFile::open(&dir.path().join("secrets.json")).expect("secrets");
        let wrapper = Arc::new(LocalKeyWrapper::open(&secrets).await.expect("key-encryption key"));
        Self {
            store,
            wrapper,
            _dir: dir,
        }
    }

    async fn aws() -> Self {
        let aws = rampart_testkit::aws().await;
        rampart_store::provision(&aws.config, &aws.prefix)
            .await
            .expect("tables");
        rampart_tokens::provision(&aws.config, &aws.prefix).await.expect("keys");
        let store = Arc::new(rampart_store::DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&aws.config),
            &aws.prefix,
        ));
        let wrapper = Arc::new(KmsKeyWrapper::new(aws_sdk_kms::Client::new(&aws.config), &aws.prefix));
        Self {
            store,
            wrapper,
            _dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Tenant keys as one process holds them, with the key keeper's calls counted.
    fn process(&self, lifetime: Duration) -> (TenantKeys, Arc<Counted>) {
        let counted = Counted::new(Arc::clone(&self.wrapper));
        let keys = TenantKeys::new(
            Arc::clone(&self.store),
            Arc::clone(&counted) as Arc<dyn KeyWrapper>,
            lifetime,
            100,
        );
        (keys, counted)
    }
}

fn record(document: &str, version: &str) -> [(&'static str, String); 3] {
    [
        ("project", "p1".to_owned()),
        ("document", document.to_owned()),
        ("version", version.to_owned()),
    ]
}

fn context<'a>(fields: &'a [(&'static str, String); 3]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn key_version(sealed: &[u8]) -> u32 {
    u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]])
}

async fn contract(backend: Backend) {
    let (keys, counted) = backend.process(LIFETIME);
    let tenant = format!("org-{}", unique_suffix());
    let other = format!("org-{}", unique_suffix());
    let marker = format!("marker-{}", unique_suffix());
    let d1v1 = record("d1", "1");

    // No key yet: nothing seals.
    assert!(matches!(
        keys.seal(&tenant, &context(&d1v1), b"x").await,
        Err(EnvelopeError::NoKey)
    ));
    assert_eq!(keys.create(&tenant).await.expect("create"), 1);
    assert_eq!(keys.create(&tenant).await.expect("create again keeps the key"), 1);
    keys.create(&other).await.expect("create");

    // A round trip, with nothing of the plaintext in the sealed bytes.
    let sealed = keys
        .seal(&tenant, &context(&d1v1), marker.as_bytes())
        .await
        .expect("seal");
    assert!(!sealed.windows(marker.len()).any(|w| w == marker.as_bytes()));
    let opened = keys.open(&tenant, &context(&d1v1), &sealed).await.expect("open");
    assert_eq!(opened.as_slice(), marker.as_bytes());

    // Moved to another record, record version, tenant, or altered: it does not open.
    for (tenant, fields) in [
        (&tenant, record("d2", "1")),
        (&tenant, record("d1", "2")),
        (&other, record("d1", "1")),
    ] {
        assert!(
            matches!(
                keys.open(tenant, &context(&fields), &sealed).await,
                Err(EnvelopeError::Invalid)
            ),
            "{tenant} {fields:?}"
        );
    }
    for position in [0, 7, sealed.len() - 1] {
        let mut altered = sealed.clone();
        altered[position] ^= 1;
        assert!(
            keys.open(&tenant, &context(&d1v1), &altered).await.is_err(),
            "byte {position}"
        );
    }
    assert!(matches!(
        keys.open(&tenant, &context(&d1v1), &sealed[..10]).await,
        Err(EnvelopeError::Invalid)
    ));

    // Rotation: new seals use the new version, the old ciphertext still opens.
    assert_eq!(keys.rotate(&tenant).await.expect("rotate"), 2);
    let newer = keys.seal(&tenant, &context(&d1v1), b"newer").await.expect("seal");
    assert_eq!((key_version(&sealed), key_version(&newer)), (1, 2));
    assert_eq!(
        keys.open(&tenant, &context(&d1v1), &sealed)
            .await
            .expect("v1")
            .as_slice(),
        marker.as_bytes()
    );
    // Three keys were made (two tenants, one rotation), none unwrapped: all cached.
    assert_eq!(counted.generated.load(Ordering::SeqCst), 3);
    assert_eq!(counted.unwrapped.load(Ordering::SeqCst), 0);

    // Another process opens both versions, one unwrap per version however many ask at once.
    let (second, second_counted) = backend.process(LIFETIME);
    let second = Arc::new(second);
    let mut opens = tokio::task::JoinSet::new();
    for n in 0..50 {
        let (second, tenant, fields) = (Arc::clone(&second), tenant.clone(), d1v1.clone());
        let ciphertext = if n % 2 == 0 { sealed.clone() } else { newer.clone() };
        opens.spawn(async move { second.open(&tenant, &context(&fields), &ciphertext).await.map(|_| ()) });
    }
    while let Some(opened) = opens.join_next().await {
        opened.expect("join").expect("opened by another process");
    }
    assert_eq!(second_counted.unwrapped.load(Ordering::SeqCst), 2);

    // Shredding: every wrapped key is gone, and neither version opens, here or in a process
    // that never held the key; the other tenant is untouched.
    assert_eq!(keys.shred(&tenant).await.expect("shred"), 2);
    let left = backend
        .store
        .query(Table::Core, &format!("tenantkey#{tenant}"), "", 10)
        .await
        .expect("query");
    assert!(left.is_empty(), "{left:?}");
    let (fresh, _) = backend.process(LIFETIME);
    for process in [&keys, &fresh] {
        for ciphertext in [&sealed, &newer] {
            assert!(matches!(
                process.open(&tenant, &context(&d1v1), ciphertext).await,
                Err(EnvelopeError::NoKey)
            ));
        }
        assert!(matches!(
            process.seal(&tenant, &context(&d1v1), b"x").await,
            Err(EnvelopeError::NoKey)
        ));
    }
    let theirs = keys.seal(&other, &context(&d1v1), b"theirs").await.expect("seal");
    assert_eq!(
        fresh
            .open(&other, &context(&d1v1), &theirs)
            .await
            .expect("open")
            .as_slice(),
        b"theirs"
    );
}

/// A process that held a tenant's key before the shred keeps it at most one cache lifetime.
async fn a_shredded_key_lives_at_most_one_lifetime_elsewhere(backend: Backend) {
    let lifetime = Duration::from_secs(1);
    let (writer, _) = backend.process(lifetime);
    let (reader, _) = backend.process(lifetime);
    let tenant = format!("org-{}", unique_suffix());
    let fields = record("d1", "1");
    writer.create(&tenant).await.expect("create");
    let sealed = writer.seal(&tenant, &context(&fields), b"secret").await.expect("seal");
    reader
        .open(&tenant, &context(&fields), &sealed)
        .await
        .expect("cached by the reader");
    writer.shred(&tenant).await.expect("shred");
    assert!(reader.open(&tenant, &context(&fields), &sealed).await.is_ok());
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    assert!(matches!(
        reader.open(&tenant, &context(&fields), &sealed).await,
        Err(EnvelopeError::NoKey)
    ));
}

/// A wrapped key opens only for its own tenant: copied onto another tenant's key item, it is
/// refused by the key keeper (the local key's associated data, KMS's encryption context).
async fn a_wrapped_key_opens_only_for_its_tenant(backend: Backend) {
    let (wrapper, other) = (format!("org-{}", unique_suffix()), format!("org-{}", unique_suffix()));
    let (_, wrapped) = backend.wrapper.generate(&wrapper).await.expect("generate");
    backend.wrapper.unwrap(&wrapper, &wrapped).await.expect("unwrap");
    assert!(matches!(
        backend.wrapper.unwrap(&other, &wrapped).await,
        Err(EnvelopeError::Invalid)
    ));
}

mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_contract() {
        contract(Backend::embedded().await).await;
    }

    #[tokio::test]
    async fn a_shredded_key_lives_at_most_one_lifetime_elsewhere() {
        super::a_shredded_key_lives_at_most_one_lifetime_elsewhere(Backend::embedded().await).await;
    }

    #[tokio::test]
    async fn a_wrapped_key_opens_only_for_its_tenant() {
        super::a_wrapped_key_opens_only_for_its_tenant(Backend::embedded().await).await;
    }
}

mod kms_on_moto {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_contract() {
        contract(Backend::aws().await).await;
    }

    #[tokio::test]
    async fn a_shredded_key_lives_at_most_one_lifetime_elsewhere() {
        super::a_shredded_key_lives_at_most_one_lifetime_elsewhere(Backend::aws().await).await;
    }

    #[tokio::test]
    async fn a_wrapped_key_opens_only_for_its_tenant() {
        super::a_wrapped_key_opens_only_for_its_tenant(Backend::aws().await).await;
    }
}
