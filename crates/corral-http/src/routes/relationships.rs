//! v2 relationships (docs/CONTRACT.md §7.5): account `contacts` ↔ contact `accounts`, one junction with
//! edge attributes `role` and `is_primary`.

use crate::auth::{Permission, Principal};
use crate::error::ApiResult;
use crate::extract::{JsonBody, QueryPairs};
use crate::routes::shared::{json_response, object};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use corral_core::v2::envelope;
use corral_core::{CoreError, ErrorCode, RecordId, RecordType, normalize};
use corral_store::EdgeTarget;
use corral_store::edges::{Edge, EdgeChange};
use serde_json::{Map, Value as Json, json};

/// Default and largest page of a relationship list.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// The record type at `rt`, and the type on the other side of its relationship `name`.
fn relationship(rt: &str, name: &str) -> ApiResult<(RecordType, RecordType)> {
    let rt = RecordType::from_api_name(rt).ok_or_else(|| {
        CoreError::new(ErrorCode::UnknownRecordType, format!("unknown record type `{rt}`")).with("record_type", rt)
    })?;
    match (rt, name) {
        (RecordType::Account, "contacts") => Ok((rt, RecordType::Contact)),
        (RecordType::Contact, "accounts") => Ok((rt, RecordType::Account)),
        _ => Err(CoreError::new(ErrorCode::UnknownRelationship, format!("{rt} has no relationship `{name}`"))
            .with("relationship", name)
            .into()),
    }
}

/// Reading a relationship needs read access to both sides; changing it, write access to both.
fn require(principal: &Principal, write: bool) -> ApiResult<()> {
    if write {
        principal.require(Permission::AccountsWrite)?;
        principal.require(Permission::ContactsWrite)
    } else {
        principal.require(Permission::AccountsRead)?;
        principal.require(Permission::ContactsRead)
    }
}

fn parse(rt: RecordType, raw: &str) -> ApiResult<RecordId> {
    RecordId::parse(rt, raw).ok_or_else(|| CoreError::record_not_found().into())
}

fn item(edge: &Edge, target: RecordType) -> Json {
    json!({
        "related_record_id": edge.other.canonical(),
        "related_record_type": target.api_name(),
        "through": {"attributes": {
            "role": envelope("string", json!(edge.role)),
            "is_primary": envelope("boolean", json!(edge.is_primary)),
        }},
    })
}

fn parent(rt: RecordType, id: RecordId) -> Json {
    json!({"id": id.canonical(), "record_type": rt.api_name()})
}

fn edge_body(rt: RecordType, id: RecordId, name: &str, target: RecordType, edge: &Edge) -> String {
    json!({"parent": parent(rt, id), "api_name": name, "item": item(edge, target)}).to_string()
}

/// `role` and `is_primary` from a body (raw or enveloped values).
fn edge_change(obj: &Map<String, Json>) -> ApiResult<EdgeChange> {
    let unwrap = |v: &Json| {
        v.get("value_type").map(|_| v.get("value").cloned().unwrap_or(Json::Null)).unwrap_or_else(|| v.clone())
    };
    let role = match obj.get("role").map(unwrap) {
        None => None,
        Some(Json::Null) => Some(None),
        Some(Json::String(s)) => Some(Some(
            normalize::bounded(&s, normalize::MAX_STRING_CHARS).map_err(|r| CoreError::invalid_value("role", r))?,
        )),
        Some(_) => return Err(CoreError::invalid_value("role", "expected a string or null").into()),
    };
    let is_primary = match obj.get("is_primary").map(unwrap) {
        None | Some(Json::Null) => None,
        Some(Json::Bool(b)) => Some(b),
        Some(_) => return Err(CoreError::invalid_value("is_primary", "expected true or false").into()),
    };
    Ok(EdgeChange { role, is_primary })
}

/// `GET /api/v2/{rt}/{id}/relationship/{name}?limit=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name)): Path<(String, String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let (rt, target) = relationship(&rt, &name)?;
    require(&principal, false)?;
    query.only(&["limit", "cursor"])?;
    let id = parse(rt, &id)?;
    let limit = match query.0.iter().rev().find(|(k, _)| k == "limit") {
        None => DEFAULT_LIMIT,
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| CoreError::invalid_query_parameter("limit", format!("expected 1 to {MAX_LIMIT}")))?,
    };
    let tenant = &principal.actor.tenant;
    // A relationship cursor is bound to its parent and relationship, like query cursors.
    let binding = json!([rt.api_name(), id.canonical(), name]);
    let after =
        match query.0.iter().rev().find(|(k, _)| k == "cursor").map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()) {
            None => None,
            Some(token) => {
                let state_json: Json = state.cursor_key().open(tenant, token)?;
                let at = state_json["a"].as_i64();
                let last = state_json["i"].as_str().and_then(|s| RecordId::parse(target, s));
                match (state_json["q"] == binding, at, last) {
                    (true, Some(at), Some(last)) => Some((at, last)),
                    _ => return Err(CoreError::invalid_cursor().into()),
                }
            }
        };
    let (edges, next) = state.store().list_edges(&principal.actor, rt, id, after, limit).await?;
    let next_cursor =
        next.map(|(at, last)| state.cursor_key().seal(tenant, &json!({"q": binding, "a": at, "i": last.canonical()})));
    let body = json!({
        "parent": parent(rt, id), "api_name": name,
        "items": edges.iter().map(|e| item(e, target)).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    });
    Ok(json_response(StatusCode::OK, body.to_string(), None))
}

/// `POST /api/v2/{rt}/{id}/relationship/{name}`: exactly one of `related_record_id` /
/// `related_record_match`, plus optional `role` and `is_primary`. 201, or 200 when the edge
/// existed (its attributes are then updated with what was sent).
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name)): Path<(String, String, String)>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (rt, target) = relationship(&rt, &name)?;
    require(&principal, true)?;
    let obj = object(&body.value, &["related_record_id", "related_record_match", "role", "is_primary"])?;
    let other = match (obj.get("related_record_id"), obj.get("related_record_match")) {
        (Some(Json::String(s)), None) => EdgeTarget::Id(
            RecordId::parse(target, s).ok_or_else(|| CoreError::target_not_found("related_record_id", s))?,
        ),
        (None, Some(Json::Object(m))) if m.len() == 1 => {
            let (key, value) = m.iter().next().expect("one entry");
            let value = value
                .as_str()
                .ok_or_else(|| CoreError::invalid_value("related_record_match", "expected a string value"))?;
            EdgeTarget::Match(key.clone(), value.to_owned())
        }
        _ => {
            return Err(CoreError::invalid_value(
                "related_record_id",
                "send exactly one of related_record_id (an id) or related_record_match ({\"field\": \"value\"})",
            )
            .into());
        }
    };
    let id = parse(rt, &id)?;
    let (edge, created) = state.store().add_edge(&principal.actor, rt, id, other, &edge_change(obj)?).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json_response(status, edge_body(rt, id, &name, target, &edge), None))
}

/// `PATCH /api/v2/{rt}/{id}/relationship/{name}/{target_id}` with `role` / `is_primary`.
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name, other)): Path<(String, String, String, String)>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (rt, target) = relationship(&rt, &name)?;
    require(&principal, true)?;
    let change = edge_change(object(&body.value, &["role", "is_primary"])?)?;
    let (id, other) = (parse(rt, &id)?, parse(target, &other)?);
    let edge = state.store().update_edge(&principal.actor, rt, id, other, &change).await?;
    Ok(json_response(StatusCode::OK, edge_body(rt, id, &name, target, &edge), None))
}

/// `DELETE /api/v2/{rt}/{id}/relationship/{name}/{target_id}`: 204.
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name, other)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let (rt, target) = relationship(&rt, &name)?;
    require(&principal, true)?;
    let (id, other) = (parse(rt, &id)?, parse(target, &other)?);
    state.store().remove_edge(&principal.actor, rt, id, other).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
