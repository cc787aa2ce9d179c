//! Request paths that servers read differently are refused before routing.
//!
//! A path that one hop routes as `/v1/version/…` and the next resolves or decodes into another
//! resource would let a public route's check stand for a protected path. So every Rampart port
//! answers 400 for the forms behind such confusions: a `.` or `..` segment in any spelling,
//! percent-encoded once or more (`%2e`, `%252e`); an encoded slash (`%2f`); a backslash, raw or
//! encoded (some servers take it for a slash); a `;` (Tomcat and Spring read path parameters
//! after it); and an encoded control character. Nothing Rampart serves has such a path.

/// Why `path` is refused, or `None` for a path every hop reads alike.
pub fn ambiguity(path: &str) -> Option<&'static str> {
    // A clean path (the usual case) is vetted in one pass over its bytes.
    if !path.bytes().any(|b| matches!(b, b'.' | b'%' | b';' | b'\\')) {
        return None;
    }
    path.split('/').find_map(segment_ambiguity)
}

/// Percent-decodings tried per segment: enough for any layering of proxies in front.
const MAX_DECODINGS: usize = 4;

fn segment_ambiguity(segment: &str) -> Option<&'static str> {
    let mut current = segment.as_bytes().to_vec();
    for _ in 0..=MAX_DECODINGS {
        if current == b"." || current == b".." {
            return Some("The path has a '.' or '..' segment; send it resolved.");
        }
        if current.contains(&b'\\') {
            return Some("The path has a backslash.");
        }
        if current.contains(&b';') {
            return Some("The path has a ';' parameter.");
        }
        if current.iter().any(|b| b.is_ascii_control()) {
            return Some("The path has an encoded control character.");
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return None;
        }
        if decoded.contains(&b'/') {
            return Some("The path has an encoded '/'.");
        }
        current = decoded;
    }
    Some("The path is percent-encoded too many times.")
}

/// One round of percent-decoding; a `%` not followed by two hex digits stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_confusing_path_is_refused() {
        for path in [
            "/v1/auth/../echo",
            "/v1/auth/./x",
            "/v1/auth/%2e%2e/echo",
            "/v1/auth/.%2E/echo",
            "/v1/auth/%2E",
            "/v1/auth/%252e%252e/echo",
            "/v1/auth/%25252e/echo",
            "/v1/auth%2fecho",
            "/v1/auth/%2F",
            "/v1/auth/%252f",
            "/v1/auth\\echo",
            "/v1/auth/%5c..",
            "/v1/auth/%5Cecho",
            "/v1/auth;x=1/echo",
            "/v1/auth/login;jsessionid=1",
            "/v1/auth/%3b",
            "/v1/auth/%00",
            "/v1/auth/%0a",
        ] {
            assert!(ambiguity(path).is_some(), "{path}");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for path in [
            "/",
            "/v1/auth/login",
            "/.well-known/jwks.json",
            "/v1/orgs/0193a6f2-7c1e/documents",
            "/v1/docs/a.b",
            "/v1/docs/...",
            "/v1/docs/%2e%2e%2e",
            "/v1/docs/caf%C3%A9",
            "/v1/docs/50%",
            "/v1/docs/%zz",
        ] {
            assert_eq!(ambiguity(path), None, "{path}");
        }
    }

    #[test]
    fn decoding_terminates_on_deep_encodings() {
        // `.` encoded 41 times over: `%2525…252e`.
        let deep = format!("/x/%{}2e", "25".repeat(40));
        assert_eq!(ambiguity(&deep), Some("The path is percent-encoded too many times."));
        // Encoded four times over it is still recognised for what it is.
        assert_eq!(
            ambiguity("/x/%2525252e"),
            Some("The path has a '.' or '..' segment; send it resolved.")
        );
    }
}
