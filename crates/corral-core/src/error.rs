//! The table of stable error codes (docs/CONTRACT.md §9) and the domain error type.
//!
//! Every error any layer returns ends up as one [`ErrorCode`]: its machine-readable string and
//! its HTTP status live in one table here, so the code a client branches on can never drift
//! from the status it arrives with.

use serde_json::{Map, Value as Json, json};

/// Generates the [`ErrorCode`] enum with its string and status from one table.
macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal),)*) => {
        /// A stable, machine-readable error code (docs/CONTRACT.md §9).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The string clients branch on.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status this code is always sent with.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }
        }
    };
}

error_codes! {
    InvalidJson => ("invalid_json", 400),
    InvalidQueryParameter => ("invalid_query_parameter", 400),
    InvalidCursor => ("invalid_cursor", 400),
    InvalidHeader => ("invalid_header", 400),
    SubResourceNotSupported => ("sub_resource_not_supported", 400),
    ConflictingCredentials => ("conflicting_credentials", 400),
    Unauthenticated => ("unauthenticated", 401),
    Forbidden => ("forbidden", 403),
    RecordNotFound => ("record_not_found", 404),
    UnknownRecordType => ("unknown_record_type", 404),
    UnknownRelationship => ("unknown_relationship", 404),
    RouteNotFound => ("route_not_found", 404),
    MethodNotAllowed => ("method_not_allowed", 405),
    CursorExpired => ("cursor_expired", 410),
    AmbiguousMatch => ("ambiguous_match", 409),
    Conflict => ("conflict", 409),
    DomainAlreadyLinked => ("domain_already_linked", 409),
    AlreadyMerged => ("already_merged", 409),
    VersionConflict => ("version_conflict", 409),
    RequestTimeout => ("request_timeout", 408),
    PreconditionFailed => ("precondition_failed", 412),
    PayloadTooLarge => ("payload_too_large", 413),
    UriTooLong => ("uri_too_long", 414),
    UnsupportedMediaType => ("unsupported_media_type", 415),
    UnknownField => ("unknown_field", 422),
    FieldNotCreatable => ("field_not_creatable", 422),
    FieldNotUpdatable => ("field_not_updatable", 422),
    FieldRequiredMissing => ("field_required_missing", 422),
    FieldValueInvalid => ("field_value_invalid", 422),
    TargetRecordNotFound => ("target_record_not_found", 422),
    InvalidMatchingField => ("invalid_matching_field", 422),
    InvalidFilterField => ("invalid_filter_field", 422),
    InvalidFilterOperator => ("invalid_filter_operator", 422),
    IdempotencyKeyReused => ("idempotency_key_reused", 422),
    WebhookTargetNotAllowed => ("webhook_target_not_allowed", 422),
    RateLimited => ("rate_limited", 429),
    HeadersTooLarge => ("headers_too_large", 431),
    Internal => ("internal", 500),
    Unavailable => ("unavailable", 503),
}

/// A domain error: what went wrong, in terms a client can act on.
///
/// Carries a stable code, a human message (never SQL or internals) and structured details.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Json>,
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for CoreError {}

/// Result alias for domain operations.
pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// An error with a code and message and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CoreError { code, message: message.into(), details: Map::new() }
    }

    /// Adds one detail entry.
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn record_not_found() -> Self {
        Self::new(ErrorCode::RecordNotFound, "record not found")
    }

    pub fn unknown_field(field: &str) -> Self {
        Self::new(ErrorCode::UnknownField, format!("unknown field `{field}`")).with("field", field)
    }

    pub fn field_not_creatable(field: &str) -> Self {
        Self::new(ErrorCode::FieldNotCreatable, format!("field `{field}` is set by the server")).with("field", field)
    }

    pub fn field_not_updatable(field: &str) -> Self {
        Self::new(ErrorCode::FieldNotUpdatable, format!("field `{field}` cannot be updated")).with("field", field)
    }

    pub fn required_missing(field: &str) -> Self {
        Self::new(ErrorCode::FieldRequiredMissing, format!("field `{field}` is required")).with("field", field)
    }

    /// A value that does not fit its field; `reason` says why in plain words.
    pub fn invalid_value(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(ErrorCode::FieldValueInvalid, format!("invalid value for `{field}`: {reason}"))
            .with("field", field)
            .with("reason", reason)
    }

    pub fn target_not_found(field: &str, id: &str) -> Self {
        Self::new(ErrorCode::TargetRecordNotFound, format!("`{field}` refers to a record that does not exist: {id}"))
            .with("field", field)
            .with("target_id", id)
    }

    /// A unique key (domain, email) already held by another active record. `holder` is the
    /// other record's id, only when the caller may see it (docs/CONTRACT.md §3).
    pub fn conflict(field: &str, value: &str, holder: Option<String>) -> Self {
        let mut e =
            Self::new(ErrorCode::Conflict, format!("`{field}` value `{value}` is already used by another record"))
                .with("field", field)
                .with("value", value);
        if let Some(id) = holder {
            e = e.with("conflicting_record_id", id);
        }
        e
    }

    pub fn version_conflict(expected: i64, current: i64) -> Self {
        Self::new(ErrorCode::VersionConflict, format!("record is at version {current}, not {expected}"))
            .with("expected_version", expected)
            .with("current_version", current)
    }

    pub fn precondition_failed(current: i64) -> Self {
        Self::new(ErrorCode::PreconditionFailed, format!("If-Match does not match the current version {current}"))
            .with("current_version", current)
    }

    pub fn invalid_query_parameter(name: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(ErrorCode::InvalidQueryParameter, format!("invalid query parameter `{name}`: {reason}"))
            .with("parameter", name)
            .with("reason", reason)
    }

    pub fn invalid_cursor() -> Self {
        Self::new(ErrorCode::InvalidCursor, "cursor is malformed, was altered, or belongs to a different query")
    }

    pub fn forbidden(missing: &str) -> Self {
        Self::new(ErrorCode::Forbidden, format!("missing permission `{missing}`")).with("required_scope", missing)
    }

    /// Details as a JSON value (for error bodies).
    pub fn details_json(&self) -> Json {
        if self.details.is_empty() { json!({}) } else { Json::Object(self.details.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_have_error_statuses() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {}", code.as_str());
            assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!((400..600).contains(&code.status()));
        }
        assert_eq!(ErrorCode::ALL.len(), 39);
    }
}
