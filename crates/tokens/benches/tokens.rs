//! Access-token throughput with the local key: issuing (sign) and verifying, RS256 and ES256.
//!
//! Run with `cargo bench -p rampart-tokens --bench tokens`. Each iteration is one token, so
//! criterion reports tokens per second on the single thread it runs on. The `signature` group
//! splits verification's signature check into building the key from the JWK (as `verify` does
//! on every call) and verifying with a key aws-lc-rs parsed once.

use std::hint::black_box;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_tokens::jwt::{AccessClaims, KeySet, Validation, issue, verify};
use rampart_tokens::{Algorithm, Jwk, LocalKeySigner, Signer, verify_signature};

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

        // Where verify's time goes: the signature check from the JWK as `verify` does it
        // (decoding and building the public key on every call), against a key parsed once.
        let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let jwk = signer.public_key();
        let parsed = parsed_key(jwk);
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

/// The JWK's public key parsed once by aws-lc-rs.
fn parsed_key(jwk: &Jwk) -> ParsedPublicKey {
    let member = |value: &Option<String>| {
        URL_SAFE_NO_PAD
            .decode(value.as_deref().expect("member"))
            .expect("base64url")
    };
    match jwk.alg {
        Algorithm::RS256 => {
            let (n, e) = (member(&jwk.n), member(&jwk.e));
            RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                .expect("RSA key")
        }
        Algorithm::ES256 => {
            let point = [vec![0x04], member(&jwk.x), member(&jwk.y)].concat();
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).expect("P-256 key")
        }
    }
}

criterion_group!(benches, tokens);
criterion_main!(benches);
