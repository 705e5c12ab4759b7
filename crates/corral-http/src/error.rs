//! The one HTTP error type and the one error body (docs/CONTRACT.md §9):
//! `{"error": {"code", "message", "details", "request_id"}}`.
//!
//! Handlers return [`ApiError`]; domain and store errors convert into it. Internal errors are
//! logged with their cause and answered with an opaque `internal` message. Responses that
//! the framework produces itself (unknown route, wrong method, body too large) are rewritten
//! into the same body by [`normalize_error_responses`].

use crate::request_id;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_core::{CoreError, ErrorCode};
use corral_store::StoreError;
use serde_json::{Map, Value as Json, json};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Json>,
    /// Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: Map::new(), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// 401 with the `WWW-Authenticate` challenge.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unauthenticated, message).with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    pub fn internal() -> Self {
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError { code: e.code, message: e.message, details: e.details, headers: Vec::new() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(e) => e.into(),
            StoreError::Unavailable(cause) => {
                tracing::warn!(request_id = %request_id::current(), %cause, "database unavailable");
                ApiError::new(ErrorCode::Unavailable, "the database is unavailable; retry shortly")
                    .with_header(header::RETRY_AFTER, "1")
            }
            StoreError::Internal(cause) => {
                tracing::error!(request_id = %request_id::current(), %cause, "internal store error");
                ApiError::internal()
            }
        }
    }
}

/// Builds an error response with the current request's id.
pub fn error_body(code: ErrorCode, message: &str, details: Json) -> Json {
    json!({"error": {"code": code.as_str(), "message": message, "details": details, "request_id": request_id::current()}})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = error_body(self.code, &self.message, Json::Object(self.details));
        let mut response = (status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// Rewrites error responses that did not come from [`ApiError`] (the router's 404 and 405,
/// body-limit 413s, any 408 / 414 / 431 / 429 a layer produces, panics) into the docs/CONTRACT.md §9 error body, keeping their headers (`Allow`).
pub async fn normalize_error_responses(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::RouteNotFound, "no route matches this path"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "this method is not allowed on this path"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "the request body is larger than 1 MiB"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, "send the body as application/json"),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::RequestTimeout, "the request did not arrive in time"),
        StatusCode::URI_TOO_LONG => (ErrorCode::UriTooLong, "the request target is too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            (ErrorCode::HeadersTooLarge, "the request headers are too large")
        }
        StatusCode::TOO_MANY_REQUESTS => (ErrorCode::RateLimited, "too many requests; retry later"),
        StatusCode::UNAUTHORIZED => (ErrorCode::Unauthenticated, "authentication required"),
        StatusCode::SERVICE_UNAVAILABLE => (ErrorCode::Unavailable, "service unavailable"),
        s if s.is_client_error() => (ErrorCode::InvalidJson, "the request could not be read"),
        _ => (ErrorCode::Internal, "internal error"),
    };
    let (mut parts, _) = response.into_parts();
    let body = error_body(code, message, json!({}));
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}
