//! The v1 document dialect (docs/CONTRACT.md §8): `/api/v1/crm/accounts` and `/api/v1/crm/contacts`
//! list, get, create, update (PATCH / PUT), delete (archive or purge) and restore. One set
//! of handlers serves both collections.

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IfMatch, JsonBody, QueryPairs};
use crate::routes::shared::{count_param, created_response, idempotency_key, json_response, page, with_alias};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use corral_core::custom::TenantSchema;
use corral_core::list::ListRequest;
use corral_core::v1::{self, WriteMode};
use corral_core::{CoreError, ErrorCode, Record, RecordId, RecordType};
use corral_store::Created;
use serde_json::{Value as Json, json};

/// The record type a v1 collection path names; other names are `404 route_not_found`.
fn collection(name: &str) -> ApiResult<RecordType> {
    match name {
        "accounts" => Ok(RecordType::Account),
        "contacts" => Ok(RecordType::Contact),
        _ => Err(ApiError::new(ErrorCode::RouteNotFound, "no route matches this path")),
    }
}

/// A JSON response with the record's `ETag`.
fn record_response(status: StatusCode, record: &Record, schema: &TenantSchema) -> Response {
    let body = serde_json::to_string(&v1::rendered(record, schema)).expect("a document serialises");
    json_response(status, body, Some(record.meta.version))
}

fn parse_id(rt: RecordType, raw: &str) -> ApiResult<RecordId> {
    RecordId::parse(rt, raw).ok_or_else(|| CoreError::record_not_found().into())
}

/// `GET /api/v1/crm/accounts`: one page, newest first unless sorted otherwise.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    QueryPairs(params): QueryPairs,
) -> ApiResult<Response> {
    let rt = collection(&name)?;
    principal.require(Permission::read(rt))?;
    let count = count_param(params.iter().rev().find(|(k, _)| k == "count").map(|(_, v)| v.as_str()), "count")?;
    let params: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "count").collect();
    let request = ListRequest::from_v1_params(&params)?;
    let page =
        page(&state, &principal.actor, rt, request.query, request.cursor.as_deref(), request.limit, count).await?;
    // Written straight to the body, document by document (no JSON tree of the page).
    let body = ListPage {
        data: page.records.iter().map(|r| v1::rendered(r, &page.schema)).collect(),
        has_more: page.next_cursor.is_some(),
        next_cursor: page.next_cursor,
        total: page.total.map(|(total, _)| total),
        total_is_estimate: page.total.map(|(_, estimate)| estimate),
    };
    Ok(json_response(StatusCode::OK, serde_json::to_string(&body).expect("a page serialises"), None))
}

/// The v1 list answer (keys sorted, as every object).
#[derive(serde::Serialize)]
struct ListPage<'a> {
    data: Vec<v1::Document<'a>>,
    has_more: bool,
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_is_estimate: Option<bool>,
}

/// `GET /api/v1/crm/accounts/{id}` (`?include_deleted=true` also finds archived ones).
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, id)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let rt = collection(&name)?;
    principal.require(Permission::read(rt))?;
    query.only(&["include_deleted"])?;
    let asked = parse_id(rt, &id)?;
    let record = state.store().get_record(&principal.actor, rt, asked, query.flag("include_deleted")?).await?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    Ok(with_alias(record_response(StatusCode::OK, &record, &schema), asked, &record, &record.meta.id.v1(rt)))
}

/// `POST /api/v1/crm/accounts`: 201 with the document and `Location`.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = collection(&name)?;
    principal.require(Permission::write(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let write = v1::parse_write(rt, &body.value, WriteMode::Create, &schema)?;
    let key = idempotency_key(&headers, &body.raw, &format!("v1 {}", rt.api_name()), &principal.actor)?;
    let created = state
        .store()
        .create_record(&principal.actor, rt, &write, key.as_ref(), |r| v1::render(r, &schema).to_string())
        .await?;
    let (status, body, replayed) = match created {
        Created::New(_, body) => (StatusCode::CREATED, body, false),
        Created::Replayed(stored) => {
            (StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED), stored.body, true)
        }
    };
    // Location and ETag come from the stored document so replays carry them too.
    let doc: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let (id, version) = (doc["id"].as_str().map(str::to_owned), doc["version"].as_i64());
    Ok(created_response(status, body, version, id.map(|id| format!("/api/v1/crm/{name}/{id}")), replayed))
}

async fn write(
    state: AppState,
    principal: Principal,
    (name, id): (String, String),
    if_match: IfMatch,
    body: JsonBody,
    mode: WriteMode,
) -> ApiResult<Response> {
    let rt = collection(&name)?;
    principal.require(Permission::write(rt))?;
    let id = parse_id(rt, &id)?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let write = v1::parse_write(rt, &body.value, mode, &schema)?;
    let record = state.store().update_record(&principal.actor, rt, id, &write, if_match.0).await?;
    Ok(with_alias(record_response(StatusCode::OK, &record, &schema), id, &record, &record.meta.id.v1(rt)))
}

/// `PATCH /api/v1/crm/accounts/{id}`: fields not sent are unchanged.
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, id)): Path<(String, String)>,
    if_match: IfMatch,
    body: JsonBody,
) -> ApiResult<Response> {
    write(state, principal, (name, id), if_match, body, WriteMode::Patch).await
}

/// `PUT /api/v1/crm/accounts/{id}`: writable fields not sent are cleared.
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, id)): Path<(String, String)>,
    if_match: IfMatch,
    body: JsonBody,
) -> ApiResult<Response> {
    write(state, principal, (name, id), if_match, body, WriteMode::Replace).await
}

/// `DELETE /api/v1/crm/accounts/{id}`: archives (200 with the document), or with
/// `?purge=true` (admin) deletes for good (204).
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, id)): Path<(String, String)>,
    if_match: IfMatch,
    query: QueryPairs,
) -> ApiResult<Response> {
    let rt = collection(&name)?;
    principal.require(Permission::write(rt))?;
    query.only(&["purge"])?;
    let id = parse_id(rt, &id)?;
    if query.flag("purge")? {
        principal.require(Permission::Admin)?;
        state.store().purge_record(&principal.actor, rt, id).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let record = state.store().archive_record(&principal.actor, rt, id, if_match.0).await?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    Ok(record_response(StatusCode::OK, &record, &schema))
}

/// `POST /api/v1/crm/accounts/{id}/restore`.
pub async fn restore(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let rt = collection(&name)?;
    principal.require(Permission::write(rt))?;
    let record = state.store().restore_record(&principal.actor, rt, parse_id(rt, &id)?).await?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    Ok(record_response(StatusCode::OK, &record, &schema))
}

/// `GET /api/v1/schemas/{account|contact}`: the JSON Schema of the v1 document, with the
/// tenant's custom fields.
pub async fn json_schema(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let rt = match RecordType::from_api_name(&name) {
        Some(rt @ (RecordType::Account | RecordType::Contact)) => rt,
        _ => {
            return Err(CoreError::new(ErrorCode::UnknownRecordType, format!("no v1 schema `{name}`"))
                .with("record_type", name)
                .into());
        }
    };
    principal.require(Permission::read(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    Ok(json_response(StatusCode::OK, v1::json_schema(rt, &schema).to_string(), None))
}

/// `GET /api/v1/manifest`: each v1 resource with its path, operations and client namespace.
pub async fn manifest(_principal: Principal) -> ApiResult<Response> {
    let resource = |name: &str, plural: &str, rt: RecordType| {
        json!({
            "name": name, "domain": "customer", "record_type": rt.api_name(),
            "path": format!("/api/v1/crm/{plural}"), "operations": ["list", "get", "create", "update", "delete", "restore"],
            "client_namespace": format!("customer.{plural}"), "schema": format!("/api/v1/schemas/{}", rt.api_name()),
        })
    };
    let body = json!({"resources": [resource("Account", "accounts", RecordType::Account), resource("Contact", "contacts", RecordType::Contact)]});
    Ok(json_response(StatusCode::OK, body.to_string(), None))
}
