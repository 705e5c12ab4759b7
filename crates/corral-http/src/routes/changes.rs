//! The change feed (`GET /api/v2/_changes`, `GET /api/v1/crm/changes`) and field history
//! (`GET /api/v2/{rt}/{id}/_history`, `GET /api/v1/crm/{collection}/{id}/history`), both
//! read from the change outbox (docs/API.md "Change feed", "Field history").

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryPairs;
use crate::routes::shared::json_response;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use corral_core::change::v1_name;
use corral_core::{CoreError, RecordId, RecordType};
use corral_store::changes::{ChangeEvent, Position};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

/// Default and largest page of the feed and of a history.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// Which dialect renders an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V1,
    V2,
}

/// What a feed or history cursor carries: what it continues and the position.
#[derive(Debug, Serialize, Deserialize)]
struct CursorState {
    /// `changes`, or `history:<record type>:<id>`.
    k: String,
    x: i64,
    s: i64,
}

fn seal(state: &AppState, principal: &Principal, kind: &str, at: Position) -> String {
    state.cursor_key().seal(&principal.actor.tenant, &CursorState { k: kind.to_owned(), x: at.0, s: at.1 })
}

fn open(state: &AppState, principal: &Principal, kind: &str, token: &str) -> ApiResult<Position> {
    let cursor: CursorState = state.cursor_key().open(&principal.actor.tenant, token)?;
    if cursor.k != kind {
        return Err(CoreError::invalid_cursor().into());
    }
    Ok((cursor.x, cursor.s))
}

fn param<'a>(query: &'a QueryPairs, name: &str) -> Option<&'a str> {
    query.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn limit(query: &QueryPairs) -> ApiResult<usize> {
    match param(query, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| CoreError::invalid_query_parameter("limit", format!("expected 1 to {MAX_LIMIT}")).into()),
    }
}

/// `types=account,contact` (v1 also takes the collection names); without it, every type the
/// caller may read. Each named type needs its read permission.
fn types(principal: &Principal, raw: Option<&str>) -> ApiResult<Vec<RecordType>> {
    let Some(raw) = raw else {
        let readable: Vec<RecordType> = [RecordType::Account, RecordType::Contact]
            .into_iter()
            .filter(|rt| principal.permissions.has(Permission::read(*rt)))
            .collect();
        if readable.is_empty() {
            principal.require(Permission::AccountsRead)?;
        }
        return Ok(readable);
    };
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rt = match name {
            "account" | "accounts" => RecordType::Account,
            "contact" | "contacts" => RecordType::Contact,
            other => {
                return Err(
                    CoreError::invalid_query_parameter("types", format!("unknown record type `{other}`")).into()
                );
            }
        };
        principal.require(Permission::read(rt))?;
        if !out.contains(&rt) {
            out.push(rt);
        }
    }
    if out.is_empty() {
        return Err(CoreError::invalid_query_parameter("types", "name at least one record type").into());
    }
    Ok(out)
}

/// An event as the dialect shows it.
fn render(e: &ChangeEvent, dialect: Dialect) -> Json {
    let changed: Map<String, Json> = match dialect {
        Dialect::V2 => e.changes.clone(),
        Dialect::V1 => e.changes.iter().map(|(k, v)| (v1_name(e.record_type, k), v.clone())).collect(),
    };
    let common = |record_type: &str, record_id: String| {
        let mut doc = json!({
            "id": e.id,
            "record_type": record_type,
            "record_id": record_id,
            "app_id": e.app_id,
            "action": e.action.as_str(),
            "version": e.version,
            "changed_fields": changed.clone(),
            "request_id": e.request_id,
            "occurred_at": e.occurred_at.to_rfc3339(),
        });
        match dialect {
            Dialect::V2 => doc["actor"] = json!({"type": e.actor_kind.as_str(), "id": e.actor_id}),
            Dialect::V1 => {
                doc["actor_type"] = json!(e.actor_kind.as_str());
                doc["actor_id"] = json!(e.actor_id);
            }
        }
        doc
    };
    match dialect {
        Dialect::V2 => common(e.record_type.api_name(), e.record_id.canonical()),
        Dialect::V1 => common(e.record_type.api_name(), e.record_id.v1(e.record_type)),
    }
}

async fn feed(state: AppState, principal: Principal, query: QueryPairs, dialect: Dialect) -> ApiResult<Response> {
    query.only(&["after", "types", "limit"])?;
    let types = types(&principal, param(&query, "types"))?;
    let limit = limit(&query)?;
    let after = param(&query, "after").map(|t| open(&state, &principal, "changes", t)).transpose()?;
    let page = state.store().changes(&principal.actor, &types, after, limit).await?;
    let data: Vec<Json> = page.events.iter().map(|e| render(e, dialect)).collect();
    let body = json!({"data": data, "next_cursor": seal(&state, &principal, "changes", page.next)});
    Ok(json_response(StatusCode::OK, body.to_string(), None))
}

/// An event exactly as `GET /api/v2/_changes` shows it (also the body of a webhook delivery).
pub fn render_v2(e: &ChangeEvent) -> Json {
    render(e, Dialect::V2)
}

/// `GET /api/v2/_changes?after=&types=&limit=`: the tenant's change events, oldest first.
pub async fn v2_feed(State(state): State<AppState>, principal: Principal, query: QueryPairs) -> ApiResult<Response> {
    feed(state, principal, query, Dialect::V2).await
}

/// `GET /api/v1/crm/changes?after=&types=&limit=`: the same events as flat v1 documents.
pub async fn v1_feed(State(state): State<AppState>, principal: Principal, query: QueryPairs) -> ApiResult<Response> {
    feed(state, principal, query, Dialect::V1).await
}

async fn history(
    state: AppState,
    principal: Principal,
    rt: RecordType,
    raw_id: &str,
    query: QueryPairs,
    dialect: Dialect,
) -> ApiResult<Response> {
    principal.require(Permission::read(rt))?;
    // The flag reading the record takes in this dialect: an archived record is 404 without it.
    let archived_flag = match dialect {
        Dialect::V1 => "include_deleted",
        Dialect::V2 => "include_archived",
    };
    query.only(&["cursor", "limit", archived_flag])?;
    let include_archived = query.flag(archived_flag)?;
    let id = RecordId::parse(rt, raw_id).ok_or_else(CoreError::record_not_found)?;
    let kind = format!("history:{}:{}", rt.api_name(), id.canonical());
    let limit = limit(&query)?;
    let before = param(&query, "cursor").map(|t| open(&state, &principal, &kind, t)).transpose()?;
    let (events, next) = state.store().history(&principal.actor, rt, id, include_archived, before, limit).await?;
    let data: Vec<Json> = events.iter().map(|e| render(e, dialect)).collect();
    let next = next.map(|at| seal(&state, &principal, &kind, at));
    let body = json!({"data": data, "next_cursor": next});
    Ok(json_response(StatusCode::OK, body.to_string(), None))
}

/// `GET /api/v2/{rt}/{id}/_history?cursor=&limit=&include_archived=`: the record's change events, newest first.
pub async fn v2_history(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let rt = match RecordType::from_api_name(&rt) {
        Some(rt @ (RecordType::Account | RecordType::Contact)) => rt,
        Some(RecordType::User) => return Err(CoreError::record_not_found().into()),
        None => {
            return Err(ApiError::new(
                corral_core::ErrorCode::UnknownRecordType,
                format!("unknown record type `{rt}`"),
            ));
        }
    };
    history(state, principal, rt, &id, query, Dialect::V2).await
}

/// `GET /api/v1/crm/{collection}/{id}/history?cursor=&limit=&include_deleted=`: the same, v1 names.
pub async fn v1_history(
    State(state): State<AppState>,
    principal: Principal,
    Path((collection, id)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let rt = match collection.as_str() {
        "accounts" => RecordType::Account,
        "contacts" => RecordType::Contact,
        _ => return Err(ApiError::new(corral_core::ErrorCode::RouteNotFound, "no route matches this path")),
    };
    history(state, principal, rt, &id, query, Dialect::V1).await
}
