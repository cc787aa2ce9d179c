//! Request extractors whose rejections are problem+json naming the offending field.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::header;
use serde::de::DeserializeOwned;

use crate::problem::{Problem, ProblemType};

/// Like `axum::Json`, but every rejection is a [`Problem`]: 415 for a wrong content type,
/// 400 for malformed JSON, 413 past the body limit, and 422 with a JSON Pointer to the field
/// for a well-formed body of the wrong shape (missing, unknown or mistyped fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Problem::of(ProblemType::UnsupportedMediaType));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::of(ProblemType::PayloadTooLarge)
            } else {
                Problem::of(ProblemType::MalformedRequest)
            }
        })?;
        decode(&bytes).map(Json)
    }
}

/// Decodes a JSON body into `T`, locating any error by JSON Pointer.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let pointer = json_pointer(error.path());
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            Problem::new(ProblemType::MalformedRequest, "The body is not well-formed JSON.")
        } else {
            // serde's message names the expectation ("missing field `email`", "invalid type: …")
            // and never echoes more than the offending token.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            Problem::invalid_field(pointer, message)
        }
    })
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct SignUp {
        email: String,
        profile: Profile,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Profile {
        age: u8,
    }

    #[test]
    fn missing_field_is_named() {
        let problem = decode::<SignUp>(br#"{"profile":{"age":3}}"#).expect_err("invalid");
        assert_eq!(problem.kind, ProblemType::Validation);
        assert!(problem.detail.contains("email"), "{problem}");
    }

    #[test]
    fn mistyped_nested_field_has_a_pointer() {
        let problem = decode::<SignUp>(br#"{"email":"a@b.c","profile":{"age":"x"}}"#).expect_err("invalid");
        assert_eq!(problem.errors[0].pointer, "/profile/age");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let problem = decode::<SignUp>(br#"{"email":"a@b.c","profile":{"age":1},"admin":true}"#).expect_err("invalid");
        assert!(problem.detail.contains("admin"), "{problem}");
    }

    #[test]
    fn malformed_json_is_a_400_without_echo() {
        let problem = decode::<SignUp>(b"{\"email\": \"secret-password").expect_err("invalid");
        assert_eq!(problem.kind, ProblemType::MalformedRequest);
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn content_type_must_be_json() {
        let mut headers = http::HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().expect("header"));
        assert!(!is_json(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("header"),
        );
        assert!(is_json(&headers));
    }
}
