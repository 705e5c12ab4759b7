//! Webhook admin routes (docs/API.md "Webhooks"): subscriptions, their delivery log and
//! replay, scoped to the caller's tenant and requiring `admin`. Delivery itself is
//! [`crate::webhooks`].

use crate::auth::{Permission, Principal};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::shared::object;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use corral_core::change::Action;
use corral_core::{CoreError, RecordType, Timestamp};
use corral_store::webhooks::{Delivery, Subscription, SubscriptionPatch};
use serde_json::{Map, Value as Json_, json};

/// Deliveries the log shows (the newest).
const LOG_LIMIT: usize = 100;

fn sub_json(s: &Subscription) -> Json_ {
    json!({
        "id": s.id,
        "url": s.url,
        "types": s.types.iter().map(|t| t.api_name()).collect::<Vec<_>>(),
        "actions": s.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "fields": s.fields,
        "enabled": s.enabled,
        "disabled_reason": s.disabled_reason,
        "created_at": s.created_at.to_rfc3339(),
        "updated_at": s.updated_at.to_rfc3339(),
    })
}

fn delivery_json(d: &Delivery) -> Json_ {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": (d.status == "pending").then(|| d.next_attempt_at.to_rfc3339()),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": d.created_at.to_rfc3339(),
        "updated_at": d.updated_at.to_rfc3339(),
    })
}

fn strings<'a>(obj: &'a Map<String, Json_>, field: &str) -> ApiResult<Option<Vec<&'a str>>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Json_::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().ok_or_else(|| CoreError::invalid_value(field, "expected strings").into()))
            .collect::<ApiResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(CoreError::invalid_value(field, "expected a non-empty array of strings").into()),
    }
}

fn types(obj: &Map<String, Json_>) -> ApiResult<Option<Vec<RecordType>>> {
    let Some(names) = strings(obj, "types")? else { return Ok(None) };
    let mut out = Vec::new();
    for n in names {
        let rt = match n {
            "account" => RecordType::Account,
            "contact" => RecordType::Contact,
            other => return Err(CoreError::invalid_value("types", format!("unknown record type `{other}`")).into()),
        };
        if !out.contains(&rt) {
            out.push(rt);
        }
    }
    Ok(Some(out))
}

fn actions(obj: &Map<String, Json_>) -> ApiResult<Option<Vec<Action>>> {
    let Some(names) = strings(obj, "actions")? else { return Ok(None) };
    let mut out = Vec::new();
    for n in names {
        let a = Action::parse(n).ok_or_else(|| CoreError::invalid_value("actions", format!("unknown action `{n}`")))?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(Some(out))
}

/// `fields`: absent, `null` (any change) or a non-empty array of change keys.
fn fields(obj: &Map<String, Json_>) -> ApiResult<Option<Option<Vec<String>>>> {
    match obj.get("fields") {
        None => Ok(None),
        Some(Json_::Null) => Ok(Some(None)),
        Some(_) => Ok(Some(strings(obj, "fields")?.map(|f| f.into_iter().map(str::to_owned).collect()))),
    }
}

async fn url(state: &AppState, obj: &Map<String, Json_>) -> ApiResult<Option<String>> {
    match obj.get("url") {
        None => Ok(None),
        Some(Json_::String(u)) if u.len() <= 2000 => {
            crate::webhooks::check_target(u, state.webhook_options().allow_private_targets)
                .await
                .map_err(CoreError::from)?;
            Ok(Some(u.clone()))
        }
        Some(_) => Err(CoreError::invalid_value("url", "expected a URL of at most 2000 characters").into()),
    }
}

const ALL_ACTIONS: [Action; 8] = Action::ALL;

/// `POST /api/admin/webhooks`: the secret is in this response only.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    principal.require(Permission::Admin)?;
    let obj = object(&body.value, &["url", "types", "actions", "fields"])?;
    let url = url(&state, obj).await?.ok_or_else(|| CoreError::required_missing("url"))?;
    let now = Timestamp::now();
    let sub = Subscription {
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: principal.actor.tenant.clone(),
        app_id: principal.actor.app.clone(),
        url,
        types: types(obj)?.unwrap_or_else(|| vec![RecordType::Account, RecordType::Contact]),
        actions: actions(obj)?.unwrap_or_else(|| ALL_ACTIONS.to_vec()),
        fields: fields(obj)?.flatten(),
        secret: crate::webhooks::generate_secret(),
        enabled: true,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    state.store().insert_webhook(&sub).await?;
    let mut data = sub_json(&sub);
    data["secret"] = json!(sub.secret);
    Ok((StatusCode::CREATED, Json(json!({"data": data}))))
}

pub async fn list(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let subs = state.store().list_webhooks(&principal.actor.tenant).await?;
    Ok(Json(json!({"data": subs.iter().map(sub_json).collect::<Vec<_>>()})))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let sub = state.store().get_webhook(&principal.actor.tenant, &id).await?.ok_or_else(CoreError::record_not_found)?;
    Ok(Json(json!({"data": sub_json(&sub)})))
}

/// `PATCH /api/admin/webhooks/{id}`: `url`, `types`, `actions`, `fields`, `enabled`.
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let obj = object(&body.value, &["url", "types", "actions", "fields", "enabled"])?;
    let enabled = match obj.get("enabled") {
        None => None,
        Some(Json_::Bool(b)) => Some(*b),
        Some(_) => return Err(CoreError::invalid_value("enabled", "expected true or false").into()),
    };
    let patch = SubscriptionPatch {
        url: url(&state, obj).await?,
        types: types(obj)?,
        actions: actions(obj)?,
        fields: fields(obj)?,
        enabled,
    };
    let sub = state
        .store()
        .update_webhook(&principal.actor.tenant, &id, &patch)
        .await?
        .ok_or_else(CoreError::record_not_found)?;
    Ok(Json(json!({"data": sub_json(&sub)})))
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::Admin)?;
    if state.store().delete_webhook(&principal.actor.tenant, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(CoreError::record_not_found().into())
    }
}

/// `GET /api/admin/webhooks/{id}/deliveries`: the newest deliveries, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let tenant = &principal.actor.tenant;
    if state.store().get_webhook(tenant, &id).await?.is_none() {
        return Err(CoreError::record_not_found().into());
    }
    let log = state.store().webhook_deliveries(tenant, &id, LOG_LIMIT).await?;
    Ok(Json(json!({"data": log.iter().map(delivery_json).collect::<Vec<_>>()})))
}

/// `POST /api/admin/webhooks/{id}/replay` `{"from_event_id"}`: that event and every later
/// one are delivered again.
pub async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<StatusCode> {
    principal.require(Permission::Admin)?;
    let obj = object(&body.value, &["from_event_id"])?;
    let event = match obj.get("from_event_id") {
        Some(Json_::String(s)) => s,
        Some(_) => return Err(CoreError::invalid_value("from_event_id", "expected an event id").into()),
        None => return Err(CoreError::required_missing("from_event_id").into()),
    };
    if state.store().replay_webhook(&principal.actor.tenant, &id, event).await? {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(CoreError::record_not_found().into())
    }
}
