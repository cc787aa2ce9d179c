//! Calling the upstream: through its circuit breaker, once more for a replayable request if
//! the retry budget allows, within the route's timeout, telling the client's faults (a slow or
//! broken-off body) from the upstream's, and cutting off an answer that falls silent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;

use crate::breaker::Admission;
use crate::config::{ProxyConfig, Route};
use crate::error::ProxyError;
use crate::phases::Forwarder;

/// Sends the request through the upstream's breaker; a GET, HEAD or OPTIONS without a body on a
/// route that allows it is tried once more after a failure, if the retry budget allows.
pub(crate) async fn call_upstream(
    forwarder: &Forwarder,
    config: &ProxyConfig,
    route: &Route,
    mut parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Incoming>, ProxyError> {
    let upstream = route.upstream.authority().map_or("", |a| a.as_str());
    let replayable = route.retries
        && matches!(
            parts.method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        )
        && body.size_hint().exact() == Some(0);
    // Whether the client's body has been read to its end; tracked only for requests with one.
    let (body, body_read) = if body.is_end_stream() {
        (body, None)
    } else {
        let read = Arc::new(AtomicBool::new(false));
        let body = Body::new(ClientBody {
            inner: body,
            read: Arc::clone(&read),
        });
        (body, Some(read))
    };
    // The replay, if any, has an empty body: only bodiless requests are replayed.
    let mut body = Some(body);
    let breakers = &forwarder.proxy.0.breakers;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Admission::Rejected { retry_after } = breakers.admit(upstream, &config.breaker, Instant::now()) {
            return Err(ProxyError::CircuitOpen { retry_after });
        }
        let mut request = http::Request::new(body.take().unwrap_or_default());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.version_mut() = parts.version;
        // Only a request that may be sent again needs its headers kept.
        *request.headers_mut() = if replayable && attempt == 1 {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        let (failed, answer) = match tokio::time::timeout(route.timeout, forwarder.client.request(request)).await {
            Ok(Ok(response)) => (upstream_failed(&response), Ok(response)),
            // Failures of the client's own making are not counted against the upstream: clients
            // that break off or dawdle over their bodies must not be able to open its breaker.
            Ok(Err(error)) => {
                if let Some(problem) = client_body_fault(&error) {
                    return Err(problem);
                }
                tracing::warn!(%error, upstream, "upstream request failed");
                (true, Err(ProxyError::BadGateway))
            }
            Err(_) if body_read.as_ref().is_some_and(|read| !read.load(Ordering::Relaxed)) => {
                return Err(ProxyError::SlowBody);
            }
            Err(_) => (true, Err(ProxyError::GatewayTimeout)),
        };
        breakers.record(upstream, &config.breaker, !failed, Instant::now());
        let retry = failed && replayable && attempt == 1 && breakers.take_retry(upstream, Instant::now());
        if !retry {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether an upstream's answer counts against its breaker: a 502 or 504, and a 503 unless it
/// carries `Retry-After`. That one is the upstream shedding load on purpose (the auth API does
/// when password hashing is at capacity): it answered at once and is healthy, and counting it
/// would let a flood of sign-ups open the breaker for every request to that upstream.
fn upstream_failed<B>(response: &http::Response<B>) -> bool {
    match response.status().as_u16() {
        502 | 504 => true,
        503 => !response.headers().contains_key(http::header::RETRY_AFTER),
        _ => false,
    }
}

/// The answer for a call that failed because of the client's body, if it did: the body grew
/// past the edge's limit (413), or the client broke it off (400). Errors from the client's body
/// are the only `axum::Error`s in a failed call's chain.
fn client_body_fault(error: &(dyn std::error::Error + 'static)) -> Option<ProxyError> {
    let mut chain = std::iter::successors(Some(error), |error| error.source());
    if chain
        .clone()
        .any(|error| error.is::<http_body_util::LengthLimitError>())
    {
        return Some(ProxyError::BodyTooLarge);
    }
    chain
        .any(|error| error.is::<axum::Error>())
        .then_some(ProxyError::BodyBrokenOff)
}

/// The client's body on its way upstream, noting when it has been read to its end: a call
/// whose time runs out before then was held up by its client, not by the upstream.
struct ClientBody {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The upstream's answer on its way to the client. If the upstream falls silent mid-answer for
/// longer than the route's timeout, the answer is cut off (the client's connection closes)
/// rather than held open: the route's timeout bounds every wait on the upstream, not only the
/// wait for its first byte.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    silence: Duration,
    /// Armed only once the upstream keeps the proxy waiting, and re-armed after each frame.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    since_frame: bool,
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, silence: Duration) -> Self {
        Self {
            inner,
            silence,
            deadline: None,
            since_frame: false,
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.since_frame = true;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = tokio::time::Instant::now() + this.silence;
        let sleep = match &mut this.deadline {
            Some(sleep) if this.since_frame => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            Some(sleep) => sleep,
            None => this.deadline.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        this.since_frame = false;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::warn!("the upstream fell silent mid-answer; the answer was cut off");
                Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the upstream fell silent mid-answer",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
