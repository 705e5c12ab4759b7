//! Response and request helpers shared by both dialects' record handlers.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use corral_core::custom::TenantSchema;
use corral_core::filter::Filter;
use corral_core::filter::Schemas;
use corral_core::list::{CursorState, ListQuery, Plan};
use corral_core::{Actor, CoreError, ErrorCode, Record, RecordId, RecordType};
use corral_store::IdempotencyKey;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A JSON response, with `ETag: "<version>"` when it shows one record.
pub fn json_response(status: StatusCode, body: String, version: Option<i64>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(v) = version {
        headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{v}\"")).expect("digits are a valid header"));
    }
    response
}

/// The response header naming the record a merged-away id resolved to (docs/API.md "Merging
/// records"): a read or write by a loser's id answers with the winner, whose id differs.
pub const MERGED_INTO: &str = "merged-into";

/// Adds `Merged-Into: <shown>` when `asked` was not the record's own id (an alias).
pub fn with_alias(mut response: Response, asked: RecordId, record: &Record, shown: &str) -> Response {
    if asked != record.meta.id
        && let Ok(v) = HeaderValue::from_str(shown)
    {
        response.headers_mut().insert(MERGED_INTO, v);
    }
    response
}

/// The response to a create: `Location`, `ETag`, and `Idempotent-Replayed` on replays.
pub fn created_response(
    status: StatusCode,
    body: String,
    version: Option<i64>,
    location: Option<String>,
    replayed: bool,
) -> Response {
    let mut response = json_response(status, body, version);
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The `Idempotency-Key` of a create, with a hash of its body (docs/CONTRACT.md §5.2).
///
/// Keys are namespaced by `route` (dialect and record type) and by the caller's app scope, so
/// a key replays only the response of the same kind of create made in the same scope: a
/// caller in another app, or a create of another record type, never receives a stored
/// response it could not have read.
pub fn idempotency_key(
    headers: &HeaderMap,
    body: &[u8],
    route: &str,
    actor: &Actor,
) -> ApiResult<Option<IdempotencyKey>> {
    let Some(raw) = headers.get("idempotency-key") else { return Ok(None) };
    // Exactly the document's pattern: 1-255 printable ASCII characters (spaces only inside).
    // `to_str` alone would also pass a tab (found by schemathesis).
    let printable = |k: &&str| {
        (1..=255).contains(&k.len())
            && k.bytes().all(|b| (0x20..=0x7e).contains(&b))
            && !k.starts_with(' ')
            && !k.ends_with(' ')
    };
    let key = raw.to_str().ok().filter(printable).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidQueryParameter, "Idempotency-Key must be 1-255 visible characters")
    })?;
    let request_hash = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    let app = actor.app.as_deref().unwrap_or("");
    Ok(Some(IdempotencyKey { key: format!("{route}\n{}:{app}\n{key}", app.len()), request_hash }))
}

/// A body that must be a JSON object with only the `allowed` keys (`unknown_field`
/// otherwise).
pub fn object<'a>(body: &'a Json, allowed: &[&str]) -> ApiResult<&'a Map<String, Json>> {
    let obj =
        body.as_object().ok_or_else(|| ApiError::new(ErrorCode::InvalidJson, "the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(CoreError::unknown_field(k).into());
    }
    Ok(obj)
}

/// One page of a list or query, and the cursor that continues it.
pub struct Page {
    pub records: Vec<Record>,
    pub next_cursor: Option<String>,
    pub schema: Arc<TenantSchema>,
    /// The number of matching records and whether it is an estimate, when asked for.
    pub total: Option<(i64, bool)>,
}

/// What count a list or query asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact,
    Estimated,
}

/// A page body's `limit` (`_query`, `_duplicates`): absent or null is `default`, else a whole
/// number from 1 to `max`.
pub fn body_limit(obj: &Map<String, Json>, default: usize, max: usize) -> ApiResult<usize> {
    match obj.get("limit").filter(|l| !l.is_null()) {
        None => Ok(default),
        Some(l) => l
            .as_number()
            .and_then(corral_core::value::whole_number)
            .filter(|n| (1..=max as i64).contains(n))
            .map(|n| n as usize)
            .ok_or_else(|| CoreError::invalid_value("limit", format!("expected 1 to {max}")).into()),
    }
}

/// A page body's `cursor`: absent, null or a string; anything else is `400 invalid_cursor`.
pub fn body_cursor(obj: &Map<String, Json>) -> ApiResult<Option<&str>> {
    match obj.get("cursor") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(c)) => Ok(Some(c.as_str())),
        Some(_) => Err(CoreError::invalid_cursor().into()),
    }
}

/// A body's `fields`: absent or null, or an array of attribute names (checked against the
/// record type by the caller).
pub fn body_fields(obj: &Map<String, Json>) -> ApiResult<Option<Vec<String>>> {
    match obj.get("fields") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(items)) => Ok(Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| CoreError::invalid_value("fields", "expected attribute names"))
                })
                .collect::<Result<_, _>>()?,
        )),
        Some(_) => Err(CoreError::invalid_value("fields", "expected an array of attribute names").into()),
    }
}

/// A query body's `filters` (`_query`, `_duplicates`, `_export`): absent or null, or an
/// array of filter objects within the filter language's limits.
pub fn body_filters(obj: &Map<String, Json>) -> ApiResult<Option<Vec<Filter>>> {
    let Some(filters) = obj.get("filters").filter(|f| !f.is_null()) else { return Ok(None) };
    let items =
        filters.as_array().ok_or_else(|| CoreError::invalid_value("filters", "expected an array of filters"))?;
    let filters = items.iter().map(Filter::parse).collect::<Result<Vec<_>, _>>()?;
    Filter::check_limits(&filters)?;
    Ok(Some(filters))
}

/// `count=exact|estimated`.
pub fn count_param(raw: Option<&str>, name: &str) -> ApiResult<Option<Count>> {
    match raw {
        None => Ok(None),
        Some("exact") => Ok(Some(Count::Exact)),
        Some("estimated") => Ok(Some(Count::Estimated)),
        Some(_) => Err(CoreError::invalid_query_parameter(name, "expected exact or estimated").into()),
    }
}

/// The query to run and where to start: the given query, or the one a cursor carries. A
/// cursor sent with a query must carry that same query, and must belong to this tenant and
/// record type (`invalid_cursor` otherwise); sent alone it continues its own query.
pub fn continue_query(
    state: &AppState,
    actor: &Actor,
    rt: RecordType,
    given: Option<ListQuery>,
    cursor: Option<&str>,
) -> ApiResult<(ListQuery, Option<Vec<Json>>)> {
    match cursor {
        Some(token) => {
            let cursor: CursorState = state.cursor_key().open(&actor.tenant, token)?;
            let other_query = given.as_ref().is_some_and(|q| *q != cursor.query);
            if cursor.record_type != rt.api_name() || other_query {
                return Err(CoreError::invalid_cursor().into());
            }
            Ok((cursor.query, Some(cursor.after)))
        }
        None => Ok((given.unwrap_or_default(), None)),
    }
}

/// The cursor that continues `query` after the position `after`.
pub fn next_cursor(
    state: &AppState,
    actor: &Actor,
    rt: RecordType,
    query: ListQuery,
    after: Option<Vec<Json>>,
) -> Option<String> {
    after.map(|after| {
        state.cursor_key().seal(&actor.tenant, &CursorState { record_type: rt.api_name().to_owned(), query, after })
    })
}

/// Runs a list query of records, or continues the one a cursor carries.
pub async fn page(
    state: &AppState,
    actor: &Actor,
    rt: RecordType,
    given: Option<ListQuery>,
    cursor: Option<&str>,
    limit: usize,
    count: Option<Count>,
) -> ApiResult<Page> {
    let (query, after) = continue_query(state, actor, rt, given, cursor)?;
    let (plan, schema) = resolve_plan(state, actor, rt, &query).await?;
    let (records, next) = state.store().list_records(actor, rt, &plan, after.as_deref(), limit).await?;
    let total = match count {
        None => None,
        Some(Count::Exact) => Some((state.store().count_records(actor, rt, &plan).await?, false)),
        Some(Count::Estimated) => Some(state.store().estimate_records(actor, rt, &plan).await?),
    };
    Ok(Page { records, next_cursor: next_cursor(state, actor, rt, query, next), schema, total })
}

/// A query checked against the tenant's schemas, and the record type's schema.
pub async fn resolve_plan(
    state: &AppState,
    actor: &Actor,
    rt: RecordType,
    query: &ListQuery,
) -> ApiResult<(Plan, Arc<TenantSchema>)> {
    let schema = state.schema(&actor.tenant, rt).await?;
    // Relationship filters name the other record type's attributes, custom ones included.
    let other = match rt {
        RecordType::Account => Some(state.schema(&actor.tenant, RecordType::Contact).await?),
        RecordType::Contact => Some(state.schema(&actor.tenant, RecordType::Account).await?),
        RecordType::User => None,
    };
    let plan = query.resolve(rt, Schemas { own: &schema, other: other.as_deref() })?;
    Ok((plan, schema))
}

/// Why a streamed response body ended before its end: the client sees the transfer cut
/// short (never a body that looks complete).
#[derive(Debug, thiserror::Error)]
#[error("the response stream was cut short: {0}")]
pub struct StreamCut(pub String);

/// A streamed response body: chunks as a producer sends them; the producer closing its end
/// ends the body, and sending an `Err` aborts it.
pub struct ChannelBody(pub mpsc::Receiver<Result<Bytes, StreamCut>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = StreamCut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(http_body::Frame::data)))
    }
}
