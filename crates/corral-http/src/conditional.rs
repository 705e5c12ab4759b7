//! Conditional GETs: `If-None-Match` naming the current `ETag` answers `304 Not Modified`
//! without a body, so a client polling a record pays for a body only when it changed.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Whether an `If-None-Match` value (a list of entity tags, or `*`) names `etag`. Weak and
/// strong tags compare alike (RFC 9110 §13.1.2 uses the weak comparison).
fn matches(if_none_match: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let etag = strip(etag);
    if_none_match.split(',').any(|candidate| candidate.trim() == "*" || strip(candidate) == etag)
}

/// Middleware: turns a `200` GET whose `ETag` the client already holds into a `304`.
pub async fn not_modified(request: Request, next: Next) -> Response {
    let condition = (request.method() == Method::GET)
        .then(|| request.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .flatten();
    let response = next.run(request).await;
    let Some(condition) = condition else { return response };
    let etag = response.headers().get(header::ETAG).and_then(|v| v.to_str().ok());
    if response.status() != StatusCode::OK || !etag.is_some_and(|e| matches(&condition, e)) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.status = StatusCode::NOT_MODIFIED;
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn entity_tags_compare_weakly_and_in_lists() {
        assert!(matches("\"3\"", "\"3\""));
        assert!(matches("W/\"3\"", "\"3\""));
        assert!(matches("\"1\", \"3\"", "\"3\""));
        assert!(matches("*", "\"3\""));
        assert!(!matches("\"4\"", "\"3\""));
        assert!(!matches("3", "\"3\""));
    }
}
