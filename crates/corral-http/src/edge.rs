//! The router's edge (docs/OPERATIONS.md): request-head limits answered in the one error body,
//! the global concurrency limit with load shedding, the body-read and whole-request
//! deadlines, CORS, response compression and the headers every response carries.
//!
//! Connection-level limits (header-read and idle timeouts, graceful shutdown) live in
//! [`crate::serve`], which hands each request to the router built here.

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_core::ErrorCode;
use http_body::Body as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Longest request target (path and query) answered normally; longer is `414 uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest header section (names, values and their separators) answered normally; larger is
/// `431 headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields answered normally; more is `431 headers_too_large`.
pub const MAX_HEADER_COUNT: usize = 100;
/// Responses smaller than this are sent uncompressed (compressing them saves nothing).
pub const COMPRESS_MIN_BYTES: u64 = 1024;

/// The router-level limits, from the configuration (defaults: docs/OPERATIONS.md).
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// From the end of the request head to the end of its body; later is `408 request_timeout`.
    pub body_read_timeout: Duration,
    /// From the end of the request head to the response: `408` while the body is still
    /// arriving, else `503 unavailable`.
    pub request_timeout: Duration,
    /// Requests handled at once; more are shed with `503 unavailable` and `Retry-After`.
    /// `GET /health` is never shed.
    pub max_concurrent_requests: usize,
    /// Origins allowed to call the API from a browser; empty = CORS off.
    pub cors_origins: Vec<HeaderValue>,
    /// Where `GET /metrics` is served and who may read it.
    pub metrics: crate::router::MetricsEndpoint,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            body_read_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 256,
            cors_origins: Vec::new(),
            metrics: crate::router::MetricsEndpoint::default(),
        }
    }
}

/// Parses `CORRAL_CORS_ORIGINS`: a comma-separated list of origins (`https://app.example.com`,
/// `http://localhost:3000`) or `*` for any origin. Blank entries are ignored; a trailing `/`
/// is dropped (browsers send origins without one).
pub fn parse_cors_origins(list: &str) -> Result<Vec<HeaderValue>, String> {
    let mut origins = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let entry = entry.strip_suffix('/').unwrap_or(entry);
        let valid = entry == "*"
            || entry.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', ' ', '*'])
            });
        match HeaderValue::from_str(entry) {
            Ok(value) if valid => origins.push(value),
            _ => {
                return Err(format!(
                    "cors_origins: `{entry}` is not an origin such as https://app.example.com (or `*`)"
                ));
            }
        }
    }
    Ok(origins)
}

/// The CORS layer for `origins`, or none when the list is empty. Bearer tokens and API keys
/// travel in headers, so credentials (cookies) are not allowed.
pub fn cors_layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow =
        if origins.iter().any(|o| o == "*") { AllowOrigin::any() } else { AllowOrigin::list(origins.iter().cloned()) };
    let name = HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                name("x-api-key"),
                name("idempotency-key"),
                name("x-request-id"),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                name("x-request-id"),
                name("idempotent-replayed"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// gzip, brotli (quality 4) and zstd (level 3) for responses of
/// at least [`COMPRESS_MIN_BYTES`], when the client sends `Accept-Encoding`.
/// Streamed bulk results are not compressed: an encoder holds output back, and a bulk client
/// waits for each result as its acknowledgement.
pub fn compression_layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().gzip(true).br(true).zstd(true).compress_when(
        SizeAbove::new(COMPRESS_MIN_BYTES)
            .and(NotForContentType::GRPC)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::SSE)
            .and(NotForContentType::const_new("application/x-ndjson")),
    )
}

/// Whether a request carries a credential: a bearer token, an API key, or (the token
/// exchange) a key in its body.
fn carries_credentials(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("x-api-key")
        || request.uri().path() == "/api/v1/auth/token"
}

/// Middleware: `X-Content-Type-Options: nosniff` on every response, and
/// `Cache-Control: no-store` on every response to a request that carried credentials.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let credentials = carries_credentials(&request);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if credentials {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The shared state of [`limits`]: the options and the concurrency permits.
pub struct Edge {
    options: EdgeOptions,
    permits: Arc<Semaphore>,
}

impl Edge {
    pub fn new(options: EdgeOptions) -> Arc<Edge> {
        let permits = Arc::new(Semaphore::new(options.max_concurrent_requests.max(1)));
        Arc::new(Edge { options, permits })
    }
}

/// The request head within [`MAX_URI_BYTES`], [`MAX_HEADER_COUNT`] and [`MAX_HEADER_BYTES`].
fn check_head(request: &Request) -> Result<(), ApiError> {
    let target = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::new(
            ErrorCode::UriTooLong,
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = request.headers();
    let size: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers.len() > MAX_HEADER_COUNT || size > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!("send at most {MAX_HEADER_COUNT} header fields and {MAX_HEADER_BYTES} bytes of headers"),
        ));
    }
    Ok(())
}

/// Middleware: head limits, then a concurrency permit (or `503` at once: shedding beats
/// queueing when every queued request would wait behind the database anyway), then the
/// body-read and whole-request deadlines.
pub async fn limits(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    if let Err(e) = check_head(&request) {
        return e.into_response();
    }
    let _permit = if request.uri().path() == "/health" {
        None
    } else {
        match edge.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                tracing::warn!(
                    request_id = %crate::request_id::current(),
                    limit = edge.options.max_concurrent_requests,
                    "concurrency limit reached; request shed"
                );
                return ApiError::new(ErrorCode::Unavailable, "the server is at its concurrency limit; retry shortly")
                    .with_header(header::RETRY_AFTER, "1")
                    .into_response();
            }
        }
    };
    with_deadlines(&edge.options, request, next).await
}

/// Runs the request under its deadlines. The body counts as received once its last frame
/// was read; a request without a body has received it from the start.
async fn with_deadlines(options: &EdgeOptions, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (request, received) = if request.body().is_end_stream() {
        (request, None)
    } else {
        let received = Arc::new(AtomicBool::new(false));
        let tracked = request.map(|inner| Body::new(TrackedBody { inner, received: received.clone() }));
        (tracked, Some(received))
    };
    let body_received = || received.as_ref().is_none_or(|r| r.load(Ordering::Acquire));
    let deadline = started + options.request_timeout;
    let first = if received.is_some() { deadline.min(started + options.body_read_timeout) } else { deadline };
    let handler = next.run(request);
    tokio::pin!(handler);
    let sleep = tokio::time::sleep_until(first);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            response = &mut handler => return response,
            () = &mut sleep => {
                if !body_received() {
                    return request_timeout(options);
                }
                if Instant::now() >= deadline {
                    tracing::warn!(request_id = %crate::request_id::current(), "request deadline reached");
                    return ApiError::new(
                        ErrorCode::Unavailable,
                        format!("the request took longer than {} s; retry shortly", options.request_timeout.as_secs_f64()),
                    )
                    .with_header(header::RETRY_AFTER, "1")
                    .into_response();
                }
                sleep.as_mut().reset(deadline);
            }
        }
    }
}

/// `408 request_timeout`, closing the connection (the rest of the body is still on its way).
fn request_timeout(options: &EdgeOptions) -> Response {
    ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "the request body did not arrive in time (body within {} s, whole request within {} s)",
            options.body_read_timeout.as_secs_f64(),
            options.request_timeout.as_secs_f64()
        ),
    )
    .with_header(header::CONNECTION, "close")
    .into_response()
}

/// A request body that records when its last frame has been read.
struct TrackedBody {
    inner: Body,
    received: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_handler_past_the_deadline_is_503_with_retry_after() {
        let options = EdgeOptions { request_timeout: Duration::from_millis(200), ..EdgeOptions::default() };
        let router = Router::new()
            .route("/slow", get(|| tokio::time::sleep(Duration::from_secs(30))))
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(Edge::new(options), limits));
        let started = Instant::now();
        let response = router.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(started.elapsed() >= Duration::from_millis(200) && started.elapsed() < Duration::from_secs(5));
        let response = router.oneshot(Request::get("/fast").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    #[test]
    fn cors_origins_are_origins() {
        let parsed = parse_cors_origins(" https://app.example.com/, http://localhost:3000 ,,").unwrap();
        assert_eq!(parsed, ["https://app.example.com", "http://localhost:3000"]);
        assert_eq!(parse_cors_origins("*").unwrap(), ["*"]);
        assert!(parse_cors_origins("").unwrap().is_empty());
        for bad in ["app.example.com", "https://app.example.com/path", "ftp://x", "https://", "https://a b"] {
            assert!(parse_cors_origins(bad).is_err(), "{bad}");
        }
    }
}
