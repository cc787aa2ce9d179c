//! Sealing and opening a document body with a tenant's cached data key.
//!
//! Builds tenant keys on the embedded backend (SQLite store, local key-encryption key) in a
//! temporary directory, creates one tenant and warms its key, then times `N` seals and `N`
//! opens of a 4 KiB body, interleaved, each including the cached key lookup a request makes, and
//! prints p50, p99 and the mean of each. The target (issue 15): p99 at most 150 µs.
//!
//! Run with `cargo bench -p rampart-envelope --bench seal`. `SEAL_BENCH_N` changes the number
//! of samples of each kind (default 20,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_envelope::{KeyWrapper, LocalKeyWrapper, TenantKeys};
use rampart_secrets::local::LocalSecretsFile;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("SEAL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(rampart_store::SqliteStore::open(&dir.path().join("store.sqlite")).expect("store"));
    let secrets = LocalSecretsFile::open(&dir.path().join("secrets.json")).expect("secrets");
    let wrapper: Arc<dyn KeyWrapper> = Arc::new(LocalKeyWrapper::open(&secrets).await.expect("key-encryption key"));
    let keys = TenantKeys::new(store, wrapper, Duration::from_secs(300), 10_000);
    let tenant = "0b6c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3";
    keys.create(tenant).await.expect("create");
    let body = vec![b'x'; 4096];
    let context = [
        ("project", "p-1"),
        ("document", "d-1"),
        ("version", "7"),
        ("field", "body"),
    ];
    for _ in 0..100 {
        let sealed = keys.seal(tenant, &context, &body).await.expect("seal");
        keys.open(tenant, &context, &sealed).await.expect("open");
    }
    let (mut seals, mut opens) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let started = Instant::now();
        let sealed = keys.seal(tenant, &context, &body).await.expect("seal");
        seals.push(started.elapsed());
        let started = Instant::now();
        let opened = keys.open(tenant, &context, &sealed).await.expect("open");
        opens.push(started.elapsed());
        assert_eq!(opened.len(), body.len());
    }
    println!("| 4 KiB, cached key | p50 µs | p99 µs | mean µs |");
    println!("|---|---:|---:|---:|");
    for (name, mut samples) in [("seal", seals), ("open", opens)] {
        samples.sort_unstable();
        let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap_or(u32::MAX);
        println!(
            "| {name} (n = {n}) | {:.1} | {:.1} | {:.1} |",
            micros(percentile(&samples, 0.50)),
            micros(percentile(&samples, 0.99)),
            micros(mean)
        );
    }
}
