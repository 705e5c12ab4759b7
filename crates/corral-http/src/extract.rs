//! Request extractors that fail with the docs/CONTRACT.md §9 error body: JSON bodies (415, 413, 400),
//! raw query parameters, and the `If-Match` precondition.

use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use corral_core::ErrorCode;
use corral_store::Preconditions;
use serde_json::Value as Json;

/// Largest accepted request body (docs/CONTRACT.md §9).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body: requires a JSON content type, at most 1 MiB, well-formed. Keeps the raw bytes
/// (for idempotency request hashes).
pub struct JsonBody {
    pub value: Json,
    pub raw: Bytes,
}

fn is_json_content_type(parts: &axum::http::HeaderMap) -> bool {
    parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> ApiResult<Self> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
        }
        let raw = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than 1 MiB")
            } else {
                ApiError::new(ErrorCode::InvalidJson, "the request body could not be read")
            }
        })?;
        parse_json(raw)
    }
}

/// Parses bytes as JSON; an empty or malformed body is 400 `invalid_json` saying where.
pub fn parse_json(raw: Bytes) -> ApiResult<JsonBody> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidJson, "the request body is empty; send a JSON object"));
    }
    let value = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON at line {} column {}", e.line(), e.column()))
    })?;
    Ok(JsonBody { value, raw })
}

/// The query string as ordered `(name, value)` pairs.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(QueryPairs)
            .map_err(|_| ApiError::new(ErrorCode::InvalidQueryParameter, "the query string is malformed"))
    }
}

impl QueryPairs {
    /// Refuses every parameter not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> ApiResult<()> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(corral_core::CoreError::invalid_query_parameter(k, "unknown parameter").into()),
            None => Ok(()),
        }
    }

    /// A boolean parameter, false when absent; parsed by the one flag parser
    /// ([`corral_core::list::parse_bool`]), so `?purge=` is a 400, never a yes.
    pub fn flag(&self, name: &str) -> ApiResult<bool> {
        match self.0.iter().rev().find(|(k, _)| k == name) {
            None => Ok(false),
            Some((_, value)) => Ok(corral_core::list::parse_bool(name, value)?),
        }
    }
}

/// `If-Match: "<n>"`, `W/"<n>"` or a bare `n` (docs/CONTRACT.md §5.2).
pub struct IfMatch(pub Preconditions);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(Preconditions::default()));
        };
        let s = raw.to_str().unwrap_or("").trim();
        if s == "*" {
            return Ok(IfMatch(Preconditions::default()));
        }
        let s = s.strip_prefix("W/").unwrap_or(s);
        let s = s.trim_matches('"');
        // A malformed precondition is a bad request, not a failed precondition.
        let version = s.parse::<i64>().map_err(|_| {
            let mut e = ApiError::new(ErrorCode::InvalidHeader, "If-Match must be a record version such as \"3\"");
            e.details.insert("header".into(), "If-Match".into());
            e
        })?;
        Ok(IfMatch(Preconditions { if_match: Some(version) }))
    }
}
