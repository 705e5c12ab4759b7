//! The client's one error type.
//!
//! A response the server rejected becomes [`Error::Api`] with the server's stable code as a
//! [`ErrorCode`] (the same table the server answers from, `corral_core::ErrorCode`, so the
//! two cannot drift), the HTTP status, message, structured `details` and the request id to
//! quote in a bug report. Everything else (connection refused, a body that does not decode, a
//! bad base URL) has its own variant.

use corral_core::ErrorCode;
use serde_json::{Map, Value};
use std::time::Duration;

/// The result of every client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Anything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with its error body (`{"error": {"code", ...}}`).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A non-success response without Corral's error body (a proxy's page, say).
    #[error("unexpected HTTP {status} response: {body}")]
    Http { status: u16, body: String },
    /// The request did not complete: connection refused, timeout, reset, …
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// A success response whose body is not what this client expects.
    #[error("cannot decode the HTTP {status} response: {source}")]
    Decode {
        status: u16,
        #[source]
        source: serde_json::Error,
        /// The start of the body, for diagnosis.
        body: String,
    },
    /// A request body that could not be serialised to JSON.
    #[error("cannot encode the request body: {0}")]
    Encode(#[source] serde_json::Error),
    /// The client was set up wrongly (an unusable base URL, a header value with newlines).
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The server's error, if the server answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The server's error code, if the server answered with a code this client knows.
    pub fn code(&self) -> Option<ErrorCode> {
        self.api().and_then(|e| e.code)
    }

    /// The HTTP status of a response the server answered with.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Http { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `true` for `404 record_not_found`.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(ErrorCode::RecordNotFound)
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

/// An error body from the server: `{"error": {"code", "message", "details", "request_id"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status the error came with.
    pub status: u16,
    /// The stable code, or `None` when the server sent a code newer than this client (see
    /// [`raw_code`](Self::raw_code)).
    pub code: Option<ErrorCode>,
    /// The code exactly as sent.
    pub raw_code: String,
    pub message: String,
    /// Structured details: `field`, `reason`, `current_version`, `candidate_ids`, …
    pub details: Map<String, Value>,
    /// The request id (from the body, else the `x-request-id` header).
    pub request_id: Option<String>,
    /// `Retry-After` of a `503 unavailable` or `429 rate_limited`.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Whether this is the error `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == Some(code)
    }

    /// `details.field`, when the error is about one field.
    pub fn field(&self) -> Option<&str> {
        self.details.get("field").and_then(Value::as_str)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.raw_code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The [`ErrorCode`] spelled `raw`, if this client knows it.
pub fn parse_code(raw: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.iter().copied().find(|c| c.as_str() == raw)
}

/// Builds the error of a non-success response from its parts.
pub(crate) fn from_response(
    status: u16,
    header_request_id: Option<String>,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Error {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Body,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        details: Option<Map<String, Value>>,
        #[serde(default)]
        request_id: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => ApiError {
            status,
            code: parse_code(&error.code),
            raw_code: error.code,
            message: error.message,
            details: error.details.unwrap_or_default(),
            request_id: error.request_id.filter(|r| !r.is_empty()).or(header_request_id),
            retry_after,
        }
        .into(),
        Err(_) => Error::Http { status, body: snippet(body) },
    }
}

/// The first 512 bytes of a body, as text.
pub(crate) fn snippet(body: &[u8]) -> String {
    let end = body.len().min(512);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_code_maps_back_to_its_variant() {
        for code in ErrorCode::ALL {
            assert_eq!(parse_code(code.as_str()), Some(*code));
        }
        assert_eq!(parse_code("something_new"), None);
    }

    #[test]
    fn error_bodies_become_api_errors() {
        let body = br#"{"error": {"code": "precondition_failed", "message": "m", "details": {"current_version": 2}, "request_id": "r1"}}"#;
        let e = from_response(412, Some("header-id".into()), None, body);
        let api = e.api().expect("api error");
        assert_eq!(api.code, Some(ErrorCode::PreconditionFailed));
        assert_eq!(api.details["current_version"], 2);
        assert_eq!(api.request_id.as_deref(), Some("r1"));
        assert_eq!(e.status(), Some(412));

        let unknown = from_response(418, Some("h".into()), None, br#"{"error": {"code": "teapot", "message": "m"}}"#);
        assert_eq!(unknown.code(), None);
        assert_eq!(unknown.api().unwrap().raw_code, "teapot");
        assert_eq!(unknown.api().unwrap().request_id.as_deref(), Some("h"));

        assert!(matches!(from_response(502, None, None, b"<html>bad gateway</html>"), Error::Http { status: 502, .. }));
    }
}
