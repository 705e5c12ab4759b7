//! Schema administration (docs/CONTRACT.md §6): custom attributes of accounts and contacts, and the
//! options of select and stage attributes. Needs `schema:write`.

use crate::auth::{Permission, Principal};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::routes::shared::json_response;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use corral_core::custom;
use corral_core::schema::{Stage, fields};
use corral_core::{CoreError, ErrorCode, RecordType, TenantId, v2};
use serde_json::{Value as Json, json};

/// A record type that takes custom attributes.
fn customisable(rt: &str) -> ApiResult<RecordType> {
    match RecordType::from_api_name(rt) {
        Some(RecordType::User) => {
            Err(CoreError::invalid_value("record_type", "users have no custom attributes").into())
        }
        Some(rt) => Ok(rt),
        None => Err(CoreError::new(ErrorCode::UnknownRecordType, format!("unknown record type `{rt}`"))
            .with("record_type", rt)
            .into()),
    }
}

/// Names a custom attribute may not take: every built-in name in either dialect.
fn reserved(rt: RecordType) -> Vec<&'static str> {
    let mut names = v2::attribute_names(rt);
    names.extend(fields(rt).iter().map(|f| f.v1_name));
    names.extend([
        "domain_name",
        "custom_fields",
        "attributes",
        "domain",
        "email",
        "phone",
        "account_id",
        "accounts",
        "contacts",
    ]);
    names
}

/// The attribute as `_schema` shows it.
async fn attribute_entry(state: &AppState, tenant: &TenantId, rt: RecordType, api_name: &str) -> ApiResult<Json> {
    state.invalidate_schema(tenant, rt);
    let schema = state.schema(tenant, rt).await?;
    let doc = v2::schema_document(rt, &schema);
    let entry = doc["attributes"].as_array().and_then(|a| a.iter().find(|e| e["api_name"] == api_name)).cloned();
    Ok(entry.unwrap_or(Json::Null))
}

fn option_json(o: &Stage) -> Json {
    json!({"id": o.id.canonical(), "api_name": o.api_name, "display_value": o.display_value, "color": o.color})
}

fn option_not_found(api_name: &str) -> CoreError {
    CoreError::new(ErrorCode::RecordNotFound, format!("no option `{api_name}`")).with("option", api_name)
}

/// `POST /api/v2/_schema/{rt}/attributes`: 201 with the attribute.
pub async fn create_attribute(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = customisable(&rt)?;
    principal.require(Permission::SchemaWrite)?;
    let def = custom::parse_definition(rt, &body.value, &reserved(rt))?;
    let tenant = &principal.actor.tenant;
    state.store().create_attribute(tenant, rt, &def).await?;
    let entry = attribute_entry(&state, tenant, rt, &def.api_name).await?;
    Ok(json_response(StatusCode::CREATED, json!({"data": entry}).to_string(), None))
}

/// `PATCH /api/v2/_schema/{rt}/attributes/{api_name}`: display name and description.
pub async fn update_attribute(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, name)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = customisable(&rt)?;
    principal.require(Permission::SchemaWrite)?;
    let tenant = &principal.actor.tenant;
    state.store().update_attribute(tenant, rt, &name, |def| custom::patch_definition(def, &body.value)).await?;
    let entry = attribute_entry(&state, tenant, rt, &name).await?;
    Ok(json_response(StatusCode::OK, json!({"data": entry}).to_string(), None))
}

/// `DELETE /api/v2/_schema/{rt}/attributes/{api_name}`: archives it (values kept, hidden).
pub async fn archive_attribute(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let rt = customisable(&rt)?;
    principal.require(Permission::SchemaWrite)?;
    state.store().archive_attribute(&principal.actor.tenant, rt, &name).await?;
    state.invalidate_schema(&principal.actor.tenant, rt);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST …/attributes/{api_name}/options`: adds an option to a select or stage attribute.
pub async fn add_option(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, name)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = customisable(&rt)?;
    principal.require(Permission::SchemaWrite)?;
    let option = custom::parse_option(&body.value)?;
    let tenant = principal.actor.tenant.clone();
    let added = state
        .store()
        .update_options(&tenant, rt, &name, |list| {
            if list.iter().any(|o| o.api_name == option.api_name) {
                return Err(CoreError::conflict("api_name", &option.api_name, None));
            }
            list.push(option.clone());
            Ok(option)
        })
        .await?;
    state.invalidate_schema(&tenant, rt);
    Ok(json_response(StatusCode::CREATED, json!({"data": option_json(&added)}).to_string(), None))
}

/// `PATCH …/attributes/{api_name}/options/{option}`: display value and color.
pub async fn update_option(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, name, option)): Path<(String, String, String)>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = customisable(&rt)?;
    principal.require(Permission::SchemaWrite)?;
    let tenant = principal.actor.tenant.clone();
    let updated = state
        .store()
        .update_options(&tenant, rt, &name, |list| {
            let o = list.iter_mut().find(|o| o.api_name == option).ok_or_else(|| option_not_found(&option))?;
            custom::patch_option(o, &body.value)?;
            Ok(o.clone())
        })
        .await?;
    state.invalidate_schema(&tenant, rt);
    Ok(json_response(StatusCode::OK, json!({"data": option_json(&updated)}).to_string(), None))
}

/// `DELETE …/attributes/{api_name}/options/{option}`: 204. Stored values keep the api_name.
pub async fn delete_option(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, name, option)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let rt = customisable(&rt)?;
    principal.require(Permission::SchemaWrite)?;
    let tenant = principal.actor.tenant.clone();
    state
        .store()
        .update_options(&tenant, rt, &name, |list| {
            let at = list.iter().position(|o| o.api_name == option).ok_or_else(|| option_not_found(&option))?;
            list.remove(at);
            Ok(())
        })
        .await?;
    state.invalidate_schema(&tenant, rt);
    Ok(StatusCode::NO_CONTENT.into_response())
}
