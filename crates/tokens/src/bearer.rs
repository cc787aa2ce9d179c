//! The bearer token of a request (RFC 6750 §2.1), read the same way by every Rampart surface:
//! the auth API, the auth-proxy and the authorizer.

use http::{HeaderMap, header};

use crate::jwt::Rejection;

/// The bytes RFC 6750's `b64token` allows, as a table: every byte of every token is checked.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        byte += 1;
    }
    table
};

/// The token of the one `Authorization: Bearer` header; `None` when none was sent. Several
/// Authorization headers, another scheme, or characters outside `b64token` are
/// [`Rejection::Malformed`]; a token past `max_bytes` is [`Rejection::Oversized`].
pub fn from_headers(headers: &HeaderMap, max_bytes: usize) -> Result<Option<&str>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => from_value(value.to_str().map_err(|_| Rejection::Malformed)?, max_bytes),
        (Some(_), Some(_)) => Err(Rejection::Malformed),
    }
}

/// The token of one `Authorization` value: `Bearer` (any case), then a `b64token` of at most
/// `max_bytes`. An empty value is no token at all.
pub fn from_value(value: &str, max_bytes: usize) -> Result<Option<&str>, Rejection> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > max_bytes + "Bearer ".len() {
        return Err(Rejection::Oversized);
    }
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::Malformed)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.bytes().all(|b| B64TOKEN[usize::from(b)]) {
        return Err(Rejection::Malformed);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        }
        headers
    }

    #[test]
    fn one_well_formed_bearer_header_is_a_token_and_anything_else_is_not() {
        assert_eq!(from_headers(&headers(&["Bearer a.b.c"]), 100), Ok(Some("a.b.c")));
        assert_eq!(from_headers(&headers(&["BEARER  a.b.c"]), 100), Ok(Some("a.b.c")));
        assert_eq!(from_headers(&headers(&[]), 100), Ok(None));
        assert_eq!(from_headers(&headers(&[""]), 100), Ok(None));
        for values in [
            &["Bearer a.b.c", "Bearer d.e.f"][..],
            &["Basic dXNlcjpwYXNz"],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a b"],
            &["Bearer a\"b"],
        ] {
            assert_eq!(
                from_headers(&headers(values), 100),
                Err(Rejection::Malformed),
                "{values:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(101));
        assert_eq!(from_headers(&headers(&[&long]), 100), Err(Rejection::Oversized));
    }
}
