//! argon2id hashing and verification into working memory reused across calls.
//!
//! The argon2 crate allocates its m = 19 MiB afresh on every call. On tokio's blocking pool
//! about one call in ten then page-faults all of it, which put login's p95 a third above the
//! hash itself (docs/performance.md). A small pool of buffers, one per core, keeps that memory
//! resident: a call takes a buffer (or allocates one when all are in use) and gives it back.
//! Each call overwrites every block it uses, so nothing of one password reaches the next hash.

//!
//! Hashing is also admitted through a gate ([`admitted`]): one hash per core runs, a few more
//! wait, and the rest are refused at once. Without it a flood of sign-ups or sign-ins queued
//! without bound on the blocking pool (each holding 19 MiB), pushed every request past the
//! handler timeout and took sign-in down for everyone.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, Salt, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::IdentityError;

/// argon2id with OWASP's recommended minimum: m = 19 MiB, t = 2, p = 1.
pub fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt into a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let argon2 = hasher();
    let salt = SaltString::generate(&mut OsRng);
    let output = compute(&argon2, password, salt.as_salt(), Params::DEFAULT_OUTPUT_LEN)?;
    phc(&argon2, &salt, output)
}

/// A PHC string at [`hasher`]'s parameters whose hash is random bytes, not the hash of any
/// password. Verifying against it costs exactly what verifying a real hash costs and matches
/// no password anyone knows (finding one is a preimage attack on argon2id), yet making it costs
/// no hashing: a real hash of a random password would add about 20 ms to every cold start.
pub fn unmatchable() -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::rand_core::RngCore;
    let mut bytes = [0u8; Params::DEFAULT_OUTPUT_LEN];
    OsRng.fill_bytes(&mut bytes);
    phc(&hasher(), &SaltString::generate(&mut OsRng), Output::new(&bytes)?)
}

fn phc(argon2: &Argon2<'_>, salt: &SaltString, output: Output) -> Result<String, argon2::password_hash::Error> {
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2.params().try_into()?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, computed with the parameters `phc` records
/// (so hashes made under older parameters still verify) and compared in constant time.
pub fn verify(password: &[u8], phc: &str) -> Result<bool, argon2::password_hash::Error> {
    use argon2::password_hash::Error;
    let parsed = PasswordHash::new(phc)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed.version.map(Version::try_from).transpose()?.unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(Error::PhcStringField);
    };
    let params = Params::try_from(&parsed)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = compute(&argon2, password, salt, expected.len())?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    len: usize,
) -> Result<Output, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..len).ok_or(argon2::password_hash::Error::OutputSize {
        provided: std::cmp::Ordering::Greater,
        expected: Output::MAX_LENGTH,
    })?;
    with_memory(argon2.params().block_count(), |memory| {
        argon2.hash_password_into_with_memory(password, salt, out, memory)
    })?;
    Output::new(out)
}

/// Hashes that may wait for a core, per core. At about 20 ms a hash, the last of them starts
/// within a third of a second: far inside the handler timeout.
const WAITING_PER_CORE: usize = 16;

/// The longest a hash waits for a core before it is refused; a backstop for hashes slower than
/// expected, since the queue bound alone keeps waits short.
const MAX_WAIT: Duration = Duration::from_secs(2);

struct Gate {
    /// Hashes running or waiting.
    admitted: Semaphore,
    /// Hashes running: one per core.
    running: Semaphore,
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let cores = cores();
        Gate {
            admitted: Semaphore::new(cores * (1 + WAITING_PER_CORE)),
            running: Semaphore::new(cores),
        }
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Runs `work` (a hash or a verification) on the blocking pool once the gate admits it.
/// [`IdentityError::Overloaded`] at once when every core is busy and the queue is full, or
/// when its turn has not come within [`MAX_WAIT`].
pub(crate) async fn admitted<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, IdentityError> {
    let gate = gate();
    let admitted = gate.admitted.try_acquire().map_err(|_| IdentityError::Overloaded)?;
    let running = tokio::time::timeout(MAX_WAIT, gate.running.acquire())
        .await
        .map_err(|_| IdentityError::Overloaded)?
        .map_err(|_| IdentityError::Overloaded)?;
    // The permits go with the work, not the caller: a hash whose caller stopped waiting
    // still occupies its core until it is done.
    tokio::task::spawn_blocking(move || {
        let value = work();
        drop((admitted, running));
        value
    })
    .await
    .map_err(|error| IdentityError::Unavailable(error.to_string()))
}

/// Buffers kept for reuse: at most one per core, so the pool holds at most cores × m.
struct Pool {
    buffers: Mutex<Vec<Vec<Block>>>,
    capacity: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        buffers: Mutex::new(Vec::new()),
        capacity: cores(),
    })
}

/// Runs `f` on a buffer of `blocks` blocks taken from the pool, then returns the buffer to it.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let pool = pool();
    let taken = pool.buffers.lock().unwrap_or_else(PoisonError::into_inner).pop();
    let mut buffer = taken.unwrap_or_default();
    buffer.resize(blocks, Block::default());
    let result = f(&mut buffer);
    let mut buffers = pool.buffers.lock().unwrap_or_else(PoisonError::into_inner);
    if buffers.len() < pool.capacity {
        buffers.push(buffer);
    }
    result
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    const PASSWORD: &[u8] = b"violet kettle harbour";

    #[test]
    fn pooled_hash_verifies_with_the_argon2_crate_and_the_reverse() {
        let ours = hash(PASSWORD).expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(hasher().verify_password(PASSWORD, &parsed).is_ok());
        assert!(hasher().verify_password(b"violet kettle harbouR", &parsed).is_err());

        let theirs = hasher()
            .hash_password(PASSWORD, &SaltString::generate(&mut OsRng))
            .expect("hash")
            .to_string();
        assert!(verify(PASSWORD, &theirs).expect("verify"));
        assert!(!verify(b"violet kettle harbouR", &theirs).expect("verify"));
    }

    #[test]
    fn hashes_made_under_other_parameters_still_verify() {
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).expect("params"),
        )
        .hash_password(PASSWORD, &SaltString::generate(&mut OsRng))
        .expect("hash")
        .to_string();
        assert!(verify(PASSWORD, &older).expect("verify"));
        assert!(!verify(b"another password", &older).expect("verify"));
        // ... and the pool's buffer, resized for them, still serves the default parameters.
        assert!(verify(PASSWORD, &hash(PASSWORD).expect("hash")).expect("verify"));
    }

    #[test]
    fn the_unmatchable_hash_looks_and_verifies_like_a_real_one_but_matches_nothing() {
        let real = hash(PASSWORD).expect("hash");
        let real = PasswordHash::new(&real).expect("phc");
        let dummy = unmatchable().expect("unmatchable");
        let parsed = PasswordHash::new(&dummy).expect("phc");
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.version, real.version);
        assert_eq!(parsed.params, real.params);
        assert_eq!(parsed.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        for password in [PASSWORD, b"", b"password"] {
            // A full verification that says no, never an error that would return early.
            assert_eq!(verify(password, &dummy), Ok(false));
        }
        assert_ne!(
            unmatchable().expect("unmatchable"),
            dummy,
            "fresh salt and bytes each time"
        );
    }

    #[test]
    fn malformed_phc_strings_are_errors_not_matches() {
        for phc in ["", "$argon2id$v=19$m=19456,t=2,p=1", "$md5$abc", "not a hash"] {
            assert!(verify(PASSWORD, phc).is_err(), "{phc:?}");
        }
    }

    #[test]
    fn concurrent_calls_each_get_their_own_memory() {
        let stored = hash(PASSWORD).expect("hash");
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|i| {
                    let stored = &stored;
                    scope.spawn(move || {
                        if i % 2 == 0 {
                            verify(PASSWORD, stored).expect("verify")
                        } else {
                            !verify(b"wrong password here", stored).expect("verify")
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("join")).collect()
        });
        assert!(results.into_iter().all(|ok| ok));
        assert!(pool().buffers.lock().expect("lock").len() <= pool().capacity);
    }
}
