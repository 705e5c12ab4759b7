//! Request extractors that fail with the docs/CONTRACT.md §9 error body: JSON bodies (415, 413, 400),
//! raw query parameters, and the `If-Match` precondition.

use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::BytesMut;
use corral_core::ErrorCode;
use corral_store::Preconditions;
use http_body_util::BodyExt;
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

    async fn from_request(request: Request, _: &S) -> ApiResult<Self> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
        }
        parse_json(read_body(request).await?)
    }
}

fn too_large() -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than 1 MiB")
}

/// Reads the body into one buffer of at most [`MAX_BODY_BYTES`], sized from `Content-Length`
/// up front (so a 1 MiB body costs 1 MiB, not its chunks plus a copy). A declared length over
/// the limit is refused before anything is read.
async fn read_body(request: Request) -> ApiResult<Bytes> {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = request.into_body();
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the request body could not be read"))?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// Most JSON values (scalars, arrays and objects, at any depth) in one body.
pub const MAX_JSON_VALUES: usize = 20_000;
/// Most JSON arrays and objects in one body.
pub const MAX_JSON_CONTAINERS: usize = 2_000;
/// Deepest nesting of arrays and objects in one body.
pub const MAX_JSON_DEPTH: usize = 64;

/// What [`shape`] found: the number of values and containers and the deepest nesting.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    values: usize,
    containers: usize,
    depth: usize,
}

/// Counts a JSON text's values, containers and depth without allocating, so a body too costly
/// to parse is refused before it is parsed: parsed, each value costs tens of bytes and each
/// object a B-tree node of ~600 bytes, so 1 MiB of `[{"a":0},…]` would take ~90 MB. The count
/// stops early once a limit is passed. Malformed text gives some count; the parser then says
/// what is wrong with it.
fn shape(raw: &[u8]) -> Shape {
    let mut shape = Shape::default();
    let (mut depth, mut commas, mut nonempty) = (0usize, 0usize, 0usize);
    let (mut in_string, mut escaped, mut opened) = (false, false, false);
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if opened {
            opened = false;
            if b != b']' && b != b'}' {
                nonempty += 1;
            }
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                shape.containers += 1;
                depth += 1;
                shape.depth = shape.depth.max(depth);
                opened = true;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => commas += 1,
            _ => {}
        }
        // Every value but the root is an element of a container: a non-empty container of
        // n elements holds n - 1 commas.
        shape.values = 1 + commas + nonempty;
        if shape.values > MAX_JSON_VALUES || shape.containers > MAX_JSON_CONTAINERS || shape.depth > MAX_JSON_DEPTH {
            break;
        }
    }
    shape
}

/// Parses bytes as JSON; an empty or malformed body is 400 `invalid_json` saying where, one
/// nested deeper than [`MAX_JSON_DEPTH`] 400 `invalid_json`, and one with more than
/// [`MAX_JSON_VALUES`] values or [`MAX_JSON_CONTAINERS`] containers 413 `payload_too_large`.
pub fn parse_json(raw: Bytes) -> ApiResult<JsonBody> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidJson, "the request body is empty; send a JSON object"));
    }
    let shape = shape(&raw);
    if shape.depth > MAX_JSON_DEPTH {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("the JSON nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    if shape.values > MAX_JSON_VALUES || shape.containers > MAX_JSON_CONTAINERS {
        let mut e = ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the request body holds more than {MAX_JSON_VALUES} JSON values or {MAX_JSON_CONTAINERS} arrays and objects"
            ),
        );
        e.details.insert("max_values".into(), MAX_JSON_VALUES.into());
        e.details.insert("max_containers".into(), MAX_JSON_CONTAINERS.into());
        return Err(e);
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
        // A malformed precondition is a bad request, not a failed precondition: 1-18 digits
        // only, as the document's pattern says (`+0` or `-1` would parse as numbers).
        let digits = (1..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        let version = s.parse::<i64>().ok().filter(|_| digits).ok_or(()).map_err(|_| {
            let mut e = ApiError::new(ErrorCode::InvalidHeader, "If-Match must be a record version such as \"3\"");
            e.details.insert("header".into(), "If-Match".into());
            e
        })?;
        Ok(IfMatch(Preconditions { if_match: Some(version) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(text: &str) -> (usize, usize, usize) {
        let s = shape(text.as_bytes());
        (s.values, s.containers, s.depth)
    }

    #[test]
    fn shape_counts_values_containers_and_depth() {
        assert_eq!(counted("{}"), (1, 1, 1));
        assert_eq!(counted("[]"), (1, 1, 1));
        assert_eq!(counted("7"), (1, 0, 0));
        assert_eq!(counted(r#"{"a": 1, "b": [1, 2, {"c": "x,]}"}]}"#), (7, 3, 3));
        assert_eq!(counted(r#"[[], {}, [[]], "\\", "\"[{"]"#), (7, 5, 3));
        assert_eq!(counted(" [ 1 , 2 ] "), (3, 1, 1));
    }

    #[test]
    fn costly_bodies_are_refused_before_parsing() {
        let objects = format!("[{}{{}}]", "{},".repeat(MAX_JSON_CONTAINERS));
        assert_eq!(parse_json(Bytes::from(objects)).err().expect("refused").code, ErrorCode::PayloadTooLarge);
        let values = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        assert_eq!(parse_json(Bytes::from(values)).err().expect("refused").code, ErrorCode::PayloadTooLarge);
        let deep = format!("{}{}", "[".repeat(MAX_JSON_DEPTH + 1), "]".repeat(MAX_JSON_DEPTH + 1));
        assert_eq!(parse_json(Bytes::from(deep)).err().expect("refused").code, ErrorCode::InvalidJson);
        // At the limits, bodies parse.
        let values = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES - 2));
        assert!(parse_json(Bytes::from(values)).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_JSON_DEPTH), "]".repeat(MAX_JSON_DEPTH));
        assert!(parse_json(Bytes::from(deep)).is_ok());
        assert_eq!(parse_json(Bytes::from("{\"a\": }")).err().expect("refused").code, ErrorCode::InvalidJson);
    }
}
