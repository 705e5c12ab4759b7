//! The v1 document dialect (SPEC §8): `/api/v1/crm/accounts` list, get, create, update
//! (PATCH / PUT), delete (archive or purge) and restore.

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IfMatch, JsonBody, QueryPairs};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corral_core::list::{CursorState, ListRequest};
use corral_core::schema::default_stages;
use corral_core::v1::{self, WriteMode};
use corral_core::{CoreError, ErrorCode, Record, RecordId, RecordType};
use corral_store::{Created, IdempotencyKey};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

const RT: RecordType = RecordType::Account;

/// A JSON response with the record's `ETag`.
fn record_response(status: StatusCode, record: &Record) -> Response {
    let body = v1::render(record).to_string();
    json_response(status, body, Some(record.meta.version))
}

fn json_response(status: StatusCode, body: String, version: Option<i64>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(v) = version {
        headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{v}\"")).expect("digits are a valid header"));
    }
    response
}

fn parse_id(raw: &str) -> ApiResult<RecordId> {
    RecordId::parse(RT, raw).ok_or_else(|| CoreError::record_not_found().into())
}

/// `GET /api/v1/crm/accounts`: one page, newest first unless sorted otherwise.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    QueryPairs(params): QueryPairs,
) -> ApiResult<Response> {
    principal.require(Permission::AccountsRead)?;
    let request = ListRequest::from_v1_params(RT, &params)?;
    let actor = &principal.actor;
    let (query, after) = match &request.cursor {
        Some(token) => {
            let cursor: CursorState = state.cursor_key().open(&actor.tenant, token)?;
            if request.query.as_ref().is_some_and(|q| *q != cursor.query) {
                return Err(CoreError::invalid_cursor().into());
            }
            (cursor.query, Some(cursor.after))
        }
        None => (request.query.unwrap_or_default(), None),
    };
    let stages = default_stages(&actor.tenant, RT);
    let plan = query.resolve(RT, &stages)?;
    let (records, next) = state.store().list_records(actor, RT, &plan, after.as_deref(), request.limit).await?;
    let next_cursor = next.map(|after| state.cursor_key().seal(&actor.tenant, &CursorState { query, after }));
    let body = json!({
        "data": records.iter().map(v1::render).collect::<Vec<_>>(),
        "has_more": next_cursor.is_some(),
        "next_cursor": next_cursor,
    });
    Ok(json_response(StatusCode::OK, body.to_string(), None))
}

/// `GET /api/v1/crm/accounts/{id}` (`?include_deleted=true` also finds archived ones).
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    principal.require(Permission::AccountsRead)?;
    query.only(&["include_deleted"])?;
    let record = state.store().get_record(&principal.actor, RT, parse_id(&id)?, query.flag("include_deleted")?).await?;
    Ok(record_response(StatusCode::OK, &record))
}

fn idempotency_key(headers: &HeaderMap, body: &[u8]) -> ApiResult<Option<IdempotencyKey>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().ok().map(str::trim).filter(|k| !k.is_empty() && k.len() <= 255).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidQueryParameter, "Idempotency-Key must be 1-255 visible characters")
    })?;
    let request_hash = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(IdempotencyKey { key: key.to_owned(), request_hash }))
}

/// `POST /api/v1/crm/accounts`: 201 with the document and `Location`.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    principal.require(Permission::AccountsWrite)?;
    let stages = default_stages(&principal.actor.tenant, RT);
    let write = v1::parse_write(RT, &body.value, WriteMode::Create, &stages)?;
    let key = idempotency_key(&headers, &body.raw)?;
    let created =
        state.store().create_record(&principal.actor, RT, &write, key.as_ref(), |r| v1::render(r).to_string()).await?;
    let (status, body, replayed) = match created {
        Created::New(_, body) => (StatusCode::CREATED, body, false),
        Created::Replayed(stored) => {
            (StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED), stored.body, true)
        }
    };
    // Location and ETag come from the stored document so replays carry them too.
    let doc: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let mut response = json_response(status, body, doc["version"].as_i64());
    if let Some(id) = doc["id"].as_str()
        && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/crm/accounts/{id}"))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn write(
    state: AppState,
    principal: Principal,
    id: String,
    if_match: IfMatch,
    body: JsonBody,
    mode: WriteMode,
) -> ApiResult<Response> {
    principal.require(Permission::AccountsWrite)?;
    let id = parse_id(&id)?;
    let stages = default_stages(&principal.actor.tenant, RT);
    let write = v1::parse_write(RT, &body.value, mode, &stages)?;
    let record = state.store().update_record(&principal.actor, RT, id, &write, if_match.0).await?;
    Ok(record_response(StatusCode::OK, &record))
}

/// `PATCH /api/v1/crm/accounts/{id}`: fields not sent are unchanged.
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: JsonBody,
) -> ApiResult<Response> {
    write(state, principal, id, if_match, body, WriteMode::Patch).await
}

/// `PUT /api/v1/crm/accounts/{id}`: writable fields not sent are cleared.
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    if_match: IfMatch,
    body: JsonBody,
) -> ApiResult<Response> {
    write(state, principal, id, if_match, body, WriteMode::Replace).await
}

/// `DELETE /api/v1/crm/accounts/{id}`: archives (200 with the document), or with
/// `?purge=true` (admin) deletes for good (204).
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    if_match: IfMatch,
    query: QueryPairs,
) -> ApiResult<Response> {
    principal.require(Permission::AccountsWrite)?;
    query.only(&["purge"])?;
    let id = parse_id(&id)?;
    if query.flag("purge")? {
        principal.require(Permission::Admin)?;
        state.store().purge_record(&principal.actor, RT, id).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let record = state.store().archive_record(&principal.actor, RT, id, if_match.0).await?;
    Ok(record_response(StatusCode::OK, &record))
}

/// `POST /api/v1/crm/accounts/{id}/restore`.
pub async fn restore(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    principal.require(Permission::AccountsWrite)?;
    let record = state.store().restore_record(&principal.actor, RT, parse_id(&id)?).await?;
    Ok(record_response(StatusCode::OK, &record))
}
