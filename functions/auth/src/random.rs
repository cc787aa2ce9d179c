//! Random bytes for identifiers and secrets.

/// `N` bytes from the system CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG only fails if the OS cannot supply entropy, where nothing is safe to do.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator failed");
    bytes
}
