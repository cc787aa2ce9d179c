//! The issuer's published keys, fetched at start, kept for as long as its `Cache-Control`
//! allows, refreshed in the background (or on demand, where nothing runs between requests), and
//! fetched again when a token names a key not seen yet, at most once per interval however many
//! such tokens arrive.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, Uri, header};
use rampart_tokens::Jwk;
use rampart_tokens::jwt::KeySet;

use crate::fetch::{HttpClient, get_json};

/// Refresh bounds whatever `max-age` says: not so often that the issuer is hammered, not so
/// rarely that a rotation goes unnoticed for long.
const MIN_REFRESH: Duration = Duration::from_secs(10);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// Without a usable `max-age`.
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Jwks {
    client: HttpClient,
    url: Uri,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// When a token with an unknown `kid` last caused a fetch. Held across that fetch, so
    /// concurrent callers wait for it instead of fetching again (single flight).
    unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
    unknown_kid_interval: Duration,
    /// When the keys must next be fetched, for [`Jwks::refresh_if_due`]; `None` before the first.
    due: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(serde::Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    pub fn new(client: HttpClient, url: Uri, unknown_kid_interval: Duration) -> Self {
        Self {
            client,
            url,
            keys: RwLock::new(None),
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
            unknown_kid_interval,
            due: tokio::sync::Mutex::new(None),
        }
    }

    /// The keys, once any have been loaded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Fetches the JWKS and installs it; returns how long it may be kept.
    pub async fn refresh(&self) -> Result<Duration, String> {
        let (headers, document): (HeaderMap, Document) = get_json(&self.client, &self.url).await?;
        let mut keys = Vec::with_capacity(document.keys.len());
        for value in document.keys {
            // A key of a kind this proxy does not verify with is skipped, not fatal: the
            // issuer may publish other keys beside the RS256/ES256 ones.
            match serde_json::from_value::<Jwk>(value) {
                Ok(key) if key.use_ != "sig" => {
                    tracing::warn!(kid = %key.kid, "skipped a JWK not meant for signatures")
                }
                Ok(key) if key.parsed_key().is_none() => {
                    tracing::warn!(kid = %key.kid, "skipped a malformed JWK or one whose type does not match its alg");
                }
                Ok(key) => keys.push(key),
                Err(error) => tracing::warn!(%error, "skipped a JWK of an unsupported kind"),
            }
        }
        if keys.is_empty() {
            return Err(format!("{}: no usable signing keys", self.url));
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(KeySet::new(keys)));
        Ok(max_age(&headers)
            .unwrap_or(DEFAULT_REFRESH)
            .clamp(MIN_REFRESH, MAX_REFRESH))
    }

    /// Called when a token names a key not in the current set: fetches again unless that was
    /// done less than the interval ago, and returns the keys to retry with.
    pub async fn refresh_for_unknown_kid(&self) -> Option<Arc<KeySet>> {
        let mut last = self.unknown_kid_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.unknown_kid_interval) {
            return self.current();
        }
        *last = Some(Instant::now());
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "JWKS fetch for an unknown kid failed");
        }
        self.current()
    }

    /// For callers that cannot run background tasks (a Lambda sandbox is frozen between
    /// invocations): fetches the keys if none have been fetched or their `max-age` has run out.
    /// After a failed fetch the next try waits a second, so an outage does not slow every call.
    pub async fn refresh_if_due(&self) {
        let mut due = self.due.lock().await;
        if due.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let keep = self.refresh().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "JWKS fetch failed");
            Duration::from_secs(1)
        });
        *due = Some(Instant::now() + keep);
    }

    /// Keeps the keys fresh for as long as the process runs: at start (retrying quickly until the
    /// issuer answers), then whenever `max-age` runs out.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let jwks = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match jwks.refresh().await {
                    Ok(keep) => {
                        backoff = Duration::from_millis(100);
                        tokio::time::sleep(keep).await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "JWKS fetch failed; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
    }
}

/// `max-age` of `Cache-Control`, unless caching is forbidden outright.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn cache_control(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age(&cache_control("public, max-age=300")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age(&cache_control("Max-Age=\"60\", public")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age(&cache_control("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(&cache_control("public")), None);
        assert_eq!(max_age(&cache_control("max-age=soon")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
