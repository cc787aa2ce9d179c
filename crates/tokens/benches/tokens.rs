//! Access-token throughput with the local key: issuing (sign) and verifying, RS256 and ES256.
//!
//! Run with `cargo bench -p rampart-tokens --bench tokens`. Each iteration is one token, so
//! criterion reports tokens per second on the single thread it runs on. The `signature` group
//! splits the signature check into parsing the key from the JWK on every call (as
//! `verify_signature` does) and verifying with a key parsed once (as `KeySet` keeps it for
//! `verify`).

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_tokens::jwt::{AccessClaims, KeySet, Validation, issue, verify};
use rampart_tokens::{Algorithm, LocalKeySigner, Signer, verify_signature};

const NOW: i64 = 1_800_000_000;

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.com".into(),
        sub: "0196f1d2-6c1e-7a3b-9f4e-2d8c5b7a1e30".into(),
        aud: "rampart".into(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "0196f1d2-6c1e-7a3b-9f4e-2d8c5b7a1e31".into(),
        sid: "0196f1d2-6c1e-7a3b-9f4e-2d8c5b7a1e32".into(),
        scope: "openid profile".into(),
        amr: vec!["pwd".into()],
        auth_time: NOW,
    }
}

fn validation() -> Validation {
    Validation {
        issuer: "https://auth.example.com".into(),
        audience: "rampart".into(),
        leeway_secs: 30,
        max_token_bytes: 8192,
    }
}

fn tokens(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    // The local signer is synchronous inside its async fn; a current-thread runtime drives it.
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let claims = claims();
    let validation = validation();

    let mut breakdown = Vec::new();
    let mut group = c.benchmark_group("tokens");
    group.throughput(Throughput::Elements(1));
    for algorithm in [Algorithm::RS256, Algorithm::ES256] {
        let signer = LocalKeySigner::load_or_create(dir.path(), algorithm).expect("key");
        let name = algorithm.name();

        group.bench_function(format!("issue/{name}"), |b| {
            b.iter(|| {
                runtime
                    .block_on(issue(black_box(&signer), black_box(&claims)))
                    .expect("issue")
            });
        });

        let token = runtime.block_on(issue(&signer, &claims)).expect("issue");
        let keys = KeySet::new([signer.public_key().clone()]);
        assert_eq!(verify(&token, &keys, &validation, NOW).as_ref(), Ok(&claims));
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| verify(black_box(&token), &keys, &validation, NOW).expect("verify"));
        });

        // What parsing the key once saves: the signature check from the JWK (decoding and
        // building the public key on every call), against a key parsed once.
        let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let jwk = signer.public_key();
        let parsed = jwk.parsed_key().expect("a usable key");
        breakdown.push((name, signing_input.to_owned(), signature, jwk.clone(), parsed));
    }
    group.finish();

    let mut group = c.benchmark_group("signature");
    group.throughput(Throughput::Elements(1));
    for (name, input, signature, jwk, parsed) in &breakdown {
        group.bench_function(format!("{name}/from_jwk"), |b| {
            b.iter(|| assert!(verify_signature(jwk, black_box(input.as_bytes()), black_box(signature))));
        });
        group.bench_function(format!("{name}/parsed_once"), |b| {
            b.iter(|| {
                parsed
                    .verify_sig(black_box(input.as_bytes()), black_box(signature))
                    .expect("valid signature")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
