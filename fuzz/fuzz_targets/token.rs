//! Any text as an access token: `jwt::verify` answers without panicking, and never accepts,
//! since nothing here can carry a signature made with the keys' private halves.
//!
//! The keys are published under the short `kid`s `r` and `e` (and `fuzz/token.dict` spells the
//! header fields), so inputs get past the key lookup into the signature and claims checks.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rampart_tokens::jwt::{self, KeySet, Validation};
use rampart_tokens::{Algorithm, Jwk, LocalKeySigner, Signer};

const NOW: i64 = 1_800_000_000;

static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let key = |algorithm, kid: &str| -> Jwk {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = LocalKeySigner::load_or_create(dir.path(), algorithm).expect("key");
        Jwk {
            kid: kid.into(),
            ..signer.public_key().clone()
        }
    };
    KeySet::new([key(Algorithm::RS256, "r"), key(Algorithm::ES256, "e")])
});

static VALIDATION: LazyLock<Validation> = LazyLock::new(|| Validation {
    issuer: "https://issuer.example".into(),
    audience: "rampart".into(),
    leeway_secs: 30,
    max_token_bytes: 8 * 1024,
});

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(
            jwt::verify(token, &KEYS, &VALIDATION, NOW).is_err(),
            "accepted {token:?}"
        );
    }
});
