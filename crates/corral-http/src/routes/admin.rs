//! Admin routes (docs/CONTRACT.md §2), all scoped to the caller's tenant and requiring `admin`:
//! API keys, the user directory and tenant settings.

use crate::auth::{Permission, Principal, generate_key, validate_scopes};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::shared::object;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use corral_core::{CoreError, RecordId, RecordType, Timestamp};
use corral_store::{ApiKey, User, UserChanges};
use serde_json::{Map, Value as Json_, json};

fn key_json(key: &ApiKey) -> Json_ {
    json!({
        "id": key.id,
        "scopes": key.scopes,
        "app": key.app,
        "name": key.name,
        "created_at": key.created_at.to_rfc3339(),
        "expires_at": key.expires_at.map(Timestamp::to_rfc3339),
        "revoked_at": key.revoked_at.map(Timestamp::to_rfc3339),
    })
}

fn opt_string(obj: &Map<String, Json_>, field: &str) -> ApiResult<Option<String>> {
    match obj.get(field) {
        None | Some(Json_::Null) => Ok(None),
        Some(Json_::String(s)) => corral_core::normalize::bounded(s, corral_core::normalize::MAX_STRING_CHARS)
            .map(Some)
            .map_err(|r| CoreError::invalid_value(field, r).into()),
        Some(_) => Err(CoreError::invalid_value(field, "expected a string").into()),
    }
}

/// `is_active`: absent, or a boolean (anything else is refused, on create as on update).
fn is_active_flag(obj: &Map<String, Json_>) -> ApiResult<Option<bool>> {
    match obj.get("is_active") {
        None => Ok(None),
        Some(Json_::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(CoreError::invalid_value("is_active", "expected true or false").into()),
    }
}

/// Creates an API key; the key itself is in this response only.
pub async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    principal.require(Permission::Admin)?;
    let obj = object(&body.value, &["scopes", "app", "name", "expires_at"])?;
    let scopes: Vec<String> = match obj.get("scopes") {
        Some(Json_::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str().map(str::to_owned).ok_or_else(|| CoreError::invalid_value("scopes", "expected strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(CoreError::invalid_value("scopes", "expected an array of scopes").into());
        }
        None => return Err(CoreError::required_missing("scopes").into()),
    };
    validate_scopes(&scopes)?;
    let app = opt_string(obj, "app")?;
    if let Some(a) = &app
        && (a.is_empty() || a.len() > 100 || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(CoreError::invalid_value("app", "an app slug is 1-100 letters, digits, - or _").into());
    }
    let expires_at = match opt_string(obj, "expires_at")? {
        Some(s) => Some(
            Timestamp::parse(&s)
                .ok_or_else(|| CoreError::invalid_value("expires_at", "expected an RFC 3339 timestamp"))?,
        ),
        None => None,
    };
    // A key that could never be used is a mistake, not a key.
    if expires_at.is_some_and(|at| at <= Timestamp::now()) {
        return Err(CoreError::invalid_value("expires_at", "must be in the future").into());
    }
    let new = generate_key();
    let key = ApiKey {
        id: new.id,
        tenant_id: principal.actor.tenant.clone(),
        app,
        name: opt_string(obj, "name")?,
        scopes,
        secret_hash: new.secret_hash,
        created_at: Timestamp::now(),
        created_by: principal.actor.subject.clone(),
        expires_at,
        revoked_at: None,
    };
    state.store().insert_api_key(&key).await?;
    let mut data = key_json(&key);
    data["key"] = json!(new.key);
    Ok((StatusCode::CREATED, Json(json!({"data": data}))))
}

/// Lists the tenant's API keys, without secrets.
pub async fn list_api_keys(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let keys = state.store().list_api_keys(&principal.actor.tenant).await?;
    Ok(Json(json!({"data": keys.iter().map(key_json).collect::<Vec<_>>()})))
}

/// Revokes a key: it stops working at once.
pub async fn revoke_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::Admin)?;
    if crate::auth::is_key_id(&id) && state.store().revoke_api_key(&principal.actor.tenant, &id).await? {
        // Tokens exchanged for it stop here at once (other instances within their cache TTL).
        state.invalidate_key(&id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(CoreError::record_not_found().into())
    }
}

/// A directory user as JSON (v1 id spelling, like record references in v1 documents).
pub fn user_json(u: &User) -> Json_ {
    json!({
        "id": u.id.v1(RecordType::User),
        "email": u.email,
        "display_name": u.display_name,
        "is_active": u.is_active,
        "created_at": u.created_at.to_rfc3339(),
        "updated_at": u.updated_at.to_rfc3339(),
        "version": u.version,
    })
}

pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    principal.require(Permission::Admin)?;
    let obj = object(&body.value, &["email", "display_name", "is_active"])?;
    // A blank email is a missing one (the store would keep the user without an email).
    let email = opt_string(obj, "email")?
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| CoreError::required_missing("email"))?;
    let is_active = is_active_flag(obj)?;
    let tenant = &principal.actor.tenant;
    let mut user = state
        .store()
        .add_user(tenant, &email, opt_string(obj, "display_name")?.as_deref(), &principal.actor.subject)
        .await?;
    if is_active == Some(false) {
        let changes = UserChanges { is_active: Some(false), ..Default::default() };
        user = state.store().update_user(tenant, user.id, &changes, &principal.actor.subject).await?;
    }
    Ok((StatusCode::CREATED, Json(json!({"data": user_json(&user)}))))
}

pub async fn list_users(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let users = state.store().list_users(&principal.actor.tenant).await?;
    Ok(Json(json!({"data": users.iter().map(user_json).collect::<Vec<_>>()})))
}

pub async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let id = RecordId::parse(RecordType::User, &id).ok_or_else(CoreError::record_not_found)?;
    let obj = object(&body.value, &["email", "display_name", "is_active"])?;
    let changes = UserChanges {
        email: obj.contains_key("email").then(|| opt_string(obj, "email")).transpose()?,
        display_name: obj.contains_key("display_name").then(|| opt_string(obj, "display_name")).transpose()?,
        is_active: is_active_flag(obj)?,
    };
    let user = state.store().update_user(&principal.actor.tenant, id, &changes, &principal.actor.subject).await?;
    Ok(Json(json!({"data": user_json(&user)})))
}

pub async fn get_settings(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let settings = state.store().settings(&principal.actor.tenant).await?;
    Ok(Json(json!({"data": settings})))
}

pub async fn update_settings(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody,
) -> ApiResult<Json<Json_>> {
    principal.require(Permission::Admin)?;
    let settings = state.store().update_settings(&principal.actor.tenant, &body.value).await?;
    // A new rate limit applies at once here (other instances within their cache TTL).
    state.invalidate_settings(&principal.actor.tenant);
    Ok(Json(json!({"data": settings})))
}
