//! Time-based one-time passwords as authenticator apps compute them: RFC 6238 TOTP over RFC 4226
//! HOTP with HMAC-SHA-1, six digits and 30-second steps, and the RFC 4648 base32 encoding the
//! secrets are shared in.
//!
//! SHA-1 is what every authenticator app and Cognito use for TOTP; HMAC-SHA-1 remains sound as a
//! PRF, which is all HOTP needs.

use aws_lc_rs::{constant_time, hmac};

/// Seconds per time step (RFC 6238 `X`).
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Secret length: 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226 section 4.
pub const SECRET_BYTES: usize = 20;
/// Steps either side of the current one that are still accepted, for clock drift and typing time.
pub const WINDOW_STEPS: u64 = 1;
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Rampart";

/// RFC 4226 HOTP: dynamic truncation of HMAC-SHA-1(key, counter), reduced to `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref(); // always 20 bytes for SHA-1
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    binary % 10u32.pow(digits.min(9))
}

/// The time step containing `unix_secs`.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The six-digit code for one time step, zero-padded.
pub fn code_for_step(key: &[u8], step: u64) -> String {
    format!("{:06}", hotp(key, step, DIGITS))
}

/// The six-digit code an authenticator app shows at `unix_secs`.
pub fn code_at(key: &[u8], unix_secs: u64) -> String {
    code_for_step(key, step_at(unix_secs))
}

/// Checks `code` against the steps within [`WINDOW_STEPS`] of `now`, accepting only steps after
/// `last_used_step` so a code can never be used twice. Returns the matched step, which the caller
/// must record as the new `last_used_step`.
pub fn verify(key: &[u8], code: &str, now_unix_secs: u64, last_used_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now_unix_secs);
    let mut accepted = None;
    // Every candidate is computed and compared, so the time taken does not depend on which matched.
    for step in now.saturating_sub(WINDOW_STEPS)..=now.saturating_add(WINDOW_STEPS) {
        let expected = code_for_step(key, step);
        let matches = constant_time::verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok();
        let fresh = last_used_step.is_none_or(|last| step > last);
        if matches && fresh && accepted.is_none() {
            accepted = Some(step);
        }
    }
    accepted
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect secrets.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 the way authenticator apps accept it: any case, padding, spaces and hyphens
/// ignored, leftover bits dropped. `None` for any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars() {
        let value = match c.to_ascii_uppercase() {
            '=' | ' ' | '-' => continue,
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The Key Uri Format authenticator apps read from a QR code:
/// `otpauth://totp/Rampart:<account>?secret=…&issuer=Rampart&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(account: &str, secret_base32: &str) -> String {
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        issuer = percent_encode(ISSUER),
        account = percent_encode(account),
        secret = percent_encode(secret_base32),
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the 20-byte ASCII seed, eight-digit codes.
    #[test]
    fn rfc6238_sha1_test_vectors() {
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(key, step_at(time), 8), expected, "T = {time}");
            // Six digits are the same truncation reduced further.
            assert_eq!(code_at(key, time), format!("{:06}", expected % 1_000_000), "T = {time}");
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0 to 9.
    #[test]
    fn rfc4226_hotp_test_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *value);
        }
    }

    #[test]
    fn base32_matches_rfc4648_vectors_and_round_trips() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(base32_decode("mzxw 6ytb-oi======").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base32_decode("MZXW1"), None, "1 is not in the alphabet");
        let secret: Vec<u8> = (0u8..20).collect();
        let encoded = base32_encode(&secret);
        assert_eq!(encoded.len(), 32, "160 bits are 32 characters");
        assert_eq!(base32_decode(&encoded), Some(secret));
    }

    #[test]
    fn verify_accepts_one_step_either_side_once() {
        let key = b"12345678901234567890";
        let now = 1_700_000_000;
        let step = step_at(now);
        assert_eq!(verify(key, &code_at(key, now), now, None), Some(step));
        assert_eq!(verify(key, &code_at(key, now - 30), now, None), Some(step - 1));
        assert_eq!(verify(key, &code_at(key, now + 30), now, None), Some(step + 1));
        assert_eq!(verify(key, &code_at(key, now - 60), now, None), None, "two steps old");
        assert_eq!(verify(key, &code_at(key, now + 60), now, None), None, "two steps ahead");
        // Replay guard: nothing at or before the last used step.
        assert_eq!(verify(key, &code_at(key, now), now, Some(step)), None);
        assert_eq!(verify(key, &code_at(key, now - 30), now, Some(step - 1)), None);
        assert_eq!(verify(key, &code_at(key, now + 30), now, Some(step)), Some(step + 1));
        for malformed in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(verify(key, malformed, now, None), None, "{malformed:?}");
        }
    }

    #[test]
    fn otpauth_uri_is_percent_encoded() {
        assert_eq!(
            otpauth_uri("ada+mfa@example.com", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/Rampart:ada%2Bmfa%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Rampart\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
