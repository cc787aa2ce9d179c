//! One-time codes mailed to prove an address: confirming a sign-up, resetting a password.
//!
//! The auth API issues and checks them itself, the same way on every identity backend, because
//! the budget that bounds guessing (`throttle::Policy::CODE`) only meets its target with a large
//! enough code: eight characters of Crockford base32, 40 bits (Cognito's own six digits would
//! give a guesser about 400 times the odds; see `docs/security.md`).
//!
//! A code lives in the auth table as a SHA-256 digest bound to the user and purpose, one
//! pending per user and purpose (a new code replaces the old), and is single-use: the right
//! answer deletes it with a write conditional on its version, so of two requests racing with
//! one code only one succeeds. Five wrong answers burn it. Confirmation codes live as long as
//! an unconfirmed sign-up (24 hours), reset codes 10 minutes (OWASP ASVS 5.0 6.5.5).

use std::sync::Arc;

use aws_lc_rs::{constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_mailer::CodeMail;
pub use rampart_mailer::CodePurpose;
use rampart_store::{Item, ItemStore, Key, StoreError, Table};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use rampart_kernel::now_unix;

/// The characters of a code: Crockford's base32, without the letters that read like digits
/// (I, L, O, U). Codes are matched case-insensitively.
pub const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters per code: 40 random bits.
pub const CODE_LENGTH: usize = 8;
/// Wrong answers after which a code is burnt.
pub const MAX_WRONG_ANSWERS: u32 = 5;
/// How long a reset code is valid.
pub const RESET_CODE_TTL_SECS: i64 = 10 * 60;
/// How long a confirmation code is valid: as long as the sign-up it confirms.
pub const CONFIRMATION_CODE_TTL_SECS: i64 = rampart_identity::UNCONFIRMED_SIGN_UP_TTL_SECS;

/// How many times [`OneTimeCodes::issue`] retries when another request replaced the code first.
const ISSUE_RETRIES: usize = 3;
/// How many times [`OneTimeCodes::redeem`] reads the code again after losing a race to write it.
const REDEEM_ATTEMPTS: usize = 16;

pub fn ttl_secs(purpose: CodePurpose) -> i64 {
    match purpose {
        CodePurpose::ConfirmSignUp => CONFIRMATION_CODE_TTL_SECS,
        CodePurpose::ResetPassword => RESET_CODE_TTL_SECS,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCode {
    /// base64url of [`code_digest`].
    digest: String,
    wrong_answers: u32,
}

fn key(user_id: &str, purpose: CodePurpose) -> Key {
    Key::new(format!("code#{user_id}"), purpose.label())
}

/// SHA-256 over purpose, user and the code as typed (trimmed, upper-cased), so a digest is
/// useless for any other account or purpose.
fn code_digest(purpose: CodePurpose, user_id: &str, code: &str) -> Vec<u8> {
    let input = secrecy::zeroize::Zeroizing::new(format!(
        "rampart-code\0{}\0{user_id}\0{}",
        purpose.label(),
        code.trim().to_ascii_uppercase()
    ));
    digest::digest(&digest::SHA256, input.as_bytes()).as_ref().to_vec()
}

/// A uniformly random code: each character takes five bits of a random byte, so none is
/// likelier than another.
fn random_code() -> Result<SecretString, StoreError> {
    let mut bytes = secrecy::zeroize::Zeroizing::new([0u8; CODE_LENGTH]);
    rand::fill(bytes.as_mut()).map_err(|_| StoreError::Unavailable("the system random generator failed".into()))?;
    Ok(SecretString::from(
        bytes
            .iter()
            .map(|b| char::from(CODE_ALPHABET[usize::from(b & 0x1f)]))
            .collect::<String>(),
    ))
}

/// The codes repository.
#[derive(Debug, Clone)]
pub struct OneTimeCodes {
    store: Arc<dyn ItemStore>,
}

impl OneTimeCodes {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// A new code for the user and purpose, replacing any pending one, ready to mail.
    pub async fn issue(&self, user_id: &str, purpose: CodePurpose) -> Result<CodeMail, StoreError> {
        let code = random_code()?;
        let ttl = ttl_secs(purpose);
        let body = serde_json::to_value(StoredCode {
            digest: URL_SAFE_NO_PAD.encode(code_digest(purpose, user_id, code.expose_secret())),
            wrong_answers: 0,
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key = key(user_id, purpose);
        for _ in 0..ISSUE_RETRIES {
            let mut item = Item::new(key.clone(), body.clone()).expiring_at(now_unix() + ttl);
            item.version = self.store.get(Table::Auth, &key).await?.map_or(0, |old| old.version);
            match self.store.put(Table::Auth, &item).await {
                Ok(_) => {
                    return Ok(CodeMail {
                        purpose,
                        code,
                        valid_for_secs: ttl,
                    });
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::ConditionFailed)
    }

    /// Whether `code` is the user's pending code for `purpose`; if so it is used up. A wrong
    /// answer counts against the code, and the fifth burns it. Every write is conditional on
    /// the version read: a request that loses a race reads again, so concurrent wrong answers
    /// are all counted, and a right answer is not lost to a concurrent wrong one.
    pub async fn redeem(&self, user_id: &str, purpose: CodePurpose, code: &str) -> Result<bool, StoreError> {
        let key = key(user_id, purpose);
        let candidate = code_digest(purpose, user_id, code);
        for _ in 0..REDEEM_ATTEMPTS {
            let Some(mut item) = self.store.get(Table::Auth, &key).await? else {
                return Ok(false);
            };
            let mut stored: StoredCode =
                serde_json::from_value(item.body.clone()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let expected = URL_SAFE_NO_PAD
                .decode(&stored.digest)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let right = constant_time::verify_slices_are_equal(&expected, &candidate).is_ok();
            stored.wrong_answers += u32::from(!right);
            // Whoever deletes this version first used (or burnt) the code.
            let written = if right || stored.wrong_answers >= MAX_WRONG_ANSWERS {
                self.store.delete(Table::Auth, &key, Some(item.version)).await
            } else {
                item.body = serde_json::to_value(&stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                self.store.put(Table::Auth, &item).await.map(|_| ())
            };
            match written {
                Ok(()) => return Ok(right),
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error),
            }
        }
        // Still losing races after this many reads: refuse, and let the client try again.
        Err(StoreError::ConditionFailed)
    }
}

#[cfg(test)]
mod tests {
    use rampart_store::SqliteStore;

    use super::*;

    fn codes() -> (tempfile::TempDir, OneTimeCodes, Arc<dyn ItemStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ItemStore> = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite")).expect("store"));
        (dir, OneTimeCodes::new(Arc::clone(&store)), store)
    }

    fn text(mail: &CodeMail) -> String {
        mail.code.expose_secret().to_owned()
    }

    #[tokio::test]
    async fn a_code_is_stored_only_as_a_digest_and_expires_with_its_purpose() {
        let (_dir, codes, store) = codes();
        for purpose in [CodePurpose::ConfirmSignUp, CodePurpose::ResetPassword] {
            let mail = codes.issue("user-1", purpose).await.expect("issue");
            let code = text(&mail);
            assert!(
                code.len() == CODE_LENGTH && code.bytes().all(|b| CODE_ALPHABET.contains(&b)),
                "{code:?}"
            );
            assert_eq!(mail.valid_for_secs, ttl_secs(purpose));
            let item = store
                .get(Table::Auth, &key("user-1", purpose))
                .await
                .expect("get")
                .expect("stored");
            let body = item.body.to_string();
            assert!(!body.to_ascii_uppercase().contains(&code), "{body}");
            let digest = URL_SAFE_NO_PAD
                .decode(item.body["digest"].as_str().expect("digest"))
                .expect("base64url");
            assert_eq!(digest.len(), 32, "a SHA-256 digest");
            let ttl = item.expires_at.expect("expiry") - now_unix();
            assert!((ttl_secs(purpose) - 5..=ttl_secs(purpose)).contains(&ttl), "{ttl}");
        }
        assert_eq!(CONFIRMATION_CODE_TTL_SECS, 24 * 60 * 60);
        assert_eq!(RESET_CODE_TTL_SECS, 10 * 60);
    }

    #[tokio::test]
    async fn a_code_works_once_whatever_its_case_and_only_for_its_user_and_purpose() {
        let (_dir, codes, _store) = codes();
        let code = text(&codes.issue("user-1", CodePurpose::ResetPassword).await.expect("issue"));
        for (user, purpose) in [
            ("user-2", CodePurpose::ResetPassword),
            ("user-1", CodePurpose::ConfirmSignUp),
        ] {
            assert!(!codes.redeem(user, purpose, &code).await.expect("redeem"));
        }
        let typed = format!(" {} ", code.to_ascii_lowercase());
        assert!(
            codes
                .redeem("user-1", CodePurpose::ResetPassword, &typed)
                .await
                .expect("redeem")
        );
        assert!(
            !codes
                .redeem("user-1", CodePurpose::ResetPassword, &code)
                .await
                .expect("again")
        );
    }

    #[tokio::test]
    async fn a_new_code_replaces_the_old_and_five_wrong_answers_burn_it() {
        let (_dir, codes, _store) = codes();
        let old = text(&codes.issue("user-1", CodePurpose::ConfirmSignUp).await.expect("issue"));
        let new = text(
            &codes
                .issue("user-1", CodePurpose::ConfirmSignUp)
                .await
                .expect("reissue"),
        );
        assert!(
            !codes
                .redeem("user-1", CodePurpose::ConfirmSignUp, &old)
                .await
                .expect("old")
        );
        for _ in 2..MAX_WRONG_ANSWERS {
            assert!(
                !codes
                    .redeem("user-1", CodePurpose::ConfirmSignUp, "WRONG000")
                    .await
                    .expect("wrong")
            );
        }
        // Four wrong answers, the old code among them, leave the new one usable...
        assert!(
            codes
                .redeem("user-1", CodePurpose::ConfirmSignUp, &new)
                .await
                .expect("right")
        );
        // ...the fifth burns it.
        let code = text(&codes.issue("user-2", CodePurpose::ConfirmSignUp).await.expect("issue"));
        for _ in 0..MAX_WRONG_ANSWERS {
            assert!(
                !codes
                    .redeem("user-2", CodePurpose::ConfirmSignUp, "WRONG000")
                    .await
                    .expect("wrong")
            );
        }
        assert!(
            !codes
                .redeem("user-2", CodePurpose::ConfirmSignUp, &code)
                .await
                .expect("burnt")
        );
    }

    #[tokio::test]
    async fn an_expired_code_is_refused() {
        let (_dir, codes, store) = codes();
        let code = text(&codes.issue("user-1", CodePurpose::ResetPassword).await.expect("issue"));
        let mut item = store
            .get(Table::Auth, &key("user-1", CodePurpose::ResetPassword))
            .await
            .expect("get")
            .expect("stored");
        item.expires_at = Some(now_unix() - 1);
        store.put(Table::Auth, &item).await.expect("age it");
        assert!(
            !codes
                .redeem("user-1", CodePurpose::ResetPassword, &code)
                .await
                .expect("redeem")
        );
    }

    #[tokio::test]
    async fn of_many_requests_racing_with_one_code_exactly_one_succeeds() {
        let (_dir, codes, _store) = codes();
        let code = text(&codes.issue("user-1", CodePurpose::ResetPassword).await.expect("issue"));
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let (codes, code) = (codes.clone(), code.clone());
                tokio::spawn(async move { codes.redeem("user-1", CodePurpose::ResetPassword, &code).await })
            })
            .collect();
        let mut successes = 0;
        for attempt in attempts {
            if attempt.await.expect("join").expect("redeem") {
                successes += 1;
            }
        }
        assert_eq!(successes, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_wrong_answers_are_all_counted_and_burn_the_code() {
        let (_dir, codes, _store) = codes();
        let code = text(&codes.issue("user-1", CodePurpose::ResetPassword).await.expect("issue"));
        let guesses: Vec<_> = (0..10)
            .map(|n| {
                let codes = codes.clone();
                tokio::spawn(async move {
                    codes
                        .redeem("user-1", CodePurpose::ResetPassword, &format!("WRONG{n:03}"))
                        .await
                })
            })
            .collect();
        for guess in guesses {
            assert!(
                !guess.await.expect("join").expect("redeem"),
                "a wrong guess never passes"
            );
        }
        // Ten wrong answers at once burnt the code, as five in a row would.
        assert!(
            !codes
                .redeem("user-1", CodePurpose::ResetPassword, &code)
                .await
                .expect("burnt")
        );
    }

    #[test]
    fn random_codes_use_every_character_of_the_alphabet_evenly() {
        let codes: Vec<String> = (0..2000)
            .map(|_| random_code().expect("code").expose_secret().to_owned())
            .collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == CODE_LENGTH && c.bytes().all(|b| CODE_ALPHABET.contains(&b)))
        );
        let distinct: std::collections::HashSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len(), "2000 draws from 2^40 should not collide");
        // 16,000 characters over 32 symbols: 500 each on average; a biased draw (e.g. a modulo
        // over an alphabet that does not divide 256) would push some far off.
        for symbol in CODE_ALPHABET {
            let seen = codes.iter().flat_map(|c| c.bytes()).filter(|b| b == symbol).count();
            assert!((380..=620).contains(&seen), "{} seen {seen} times", char::from(*symbol));
        }
    }
}
