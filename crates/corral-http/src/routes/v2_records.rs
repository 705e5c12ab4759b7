//! The v2 typed-record dialect (docs/CONTRACT.md §7.1–§7.3, §7.6, §6): records as attribute envelopes,
//! create / read / patch / archive / restore / purge, the domains sub-resource, read-only
//! users and `_schema`.

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{IfMatch, JsonBody, QueryPairs};
use crate::routes::shared::{
    body_cursor, body_fields, body_filters, body_limit, continue_query, count_param, created_response, idempotency_key,
    json_response, next_cursor, object, page, with_alias,
};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corral_core::custom::TenantSchema;
use corral_core::list::{Dialect as ListDialect, ListQuery, MAX_SORT_KEYS, V2_DEFAULT_LIMIT, V2_MAX_LIMIT};
use corral_core::record::ITEM_LABELS;
use corral_core::schema::field_by_v1_name;
use corral_core::v2::{self, RenderContext, WriteMode, envelope};
use corral_core::{CoreError, ErrorCode, Record, RecordId, RecordType, RecordWrite, normalize};
use corral_store::{ContactList, Created, DomainChange, ItemChange, MatchKey, User};
use serde_json::{Map, Value as Json, json};

/// Resolves `{rt}`; anything but a built-in record type is `404 unknown_record_type`.
fn record_type(rt: &str) -> ApiResult<RecordType> {
    RecordType::from_api_name(rt).ok_or_else(|| {
        CoreError::new(ErrorCode::UnknownRecordType, format!("unknown record type `{rt}`"))
            .with("record_type", rt)
            .into()
    })
}

/// A record type that is written through v2 today. Users are read-only (405).
pub(crate) fn writable(rt: &str, allow: &str) -> ApiResult<RecordType> {
    match record_type(rt)? {
        RecordType::User => {
            Err(ApiError::new(ErrorCode::MethodNotAllowed, "users are read-only in the data API; use /api/admin/users")
                .with_header(header::ALLOW, allow))
        }
        rt => Ok(rt),
    }
}

fn parse_id(rt: RecordType, raw: &str) -> ApiResult<RecordId> {
    RecordId::parse(rt, raw).ok_or_else(|| CoreError::record_not_found().into())
}

/// `?fields=a,b`: only those attributes; unknown names are refused.
fn fields_param(rt: RecordType, schema: &TenantSchema, query: &QueryPairs) -> ApiResult<Option<Vec<String>>> {
    let Some((_, raw)) = query.0.iter().rev().find(|(k, _)| k == "fields") else { return Ok(None) };
    let known = v2::attribute_names_in(rt, schema);
    let wanted: Vec<String> = raw.split(',').map(str::trim).map(str::to_owned).collect();
    // `fields=` or `fields=a,,b` name no attribute where they are empty: refused, not read as
    // "every attribute" or "none".
    if wanted.iter().any(String::is_empty) {
        return Err(CoreError::invalid_query_parameter("fields", "an empty attribute name").into());
    }
    if let Some(bad) = wanted.iter().find(|w| !known.contains(w)) {
        return Err(CoreError::invalid_query_parameter("fields", format!("unknown attribute `{bad}`")).into());
    }
    Ok(Some(wanted))
}

/// Errors raised below the dialects name a built-in field the v1 way (an account without a
/// name is `field_required_missing` on `name`); a v2 client knows it as `display_name`.
pub(crate) fn named_for_v2(rt: RecordType, error: ApiError) -> ApiError {
    if error.code != ErrorCode::FieldRequiredMissing {
        return error;
    }
    let v1_name = error.details.get("field").and_then(Json::as_str).unwrap_or_default();
    match field_by_v1_name(rt, v1_name) {
        Some((_, def)) if def.api_name != v1_name => CoreError::required_missing(def.api_name).into(),
        _ => error,
    }
}

fn render(record: &Record, schema: &TenantSchema, only: Option<&[String]>) -> Json {
    v2::render(record, &RenderContext { schema, only })
}

/// `{"data": record}`, written straight to the body.
fn record_body(record: &Record, schema: &TenantSchema, only: Option<&[String]>) -> String {
    #[derive(serde::Serialize)]
    struct One<'a> {
        data: v2::RenderedRecord<'a>,
    }
    let ctx = RenderContext { schema, only };
    serde_json::to_string(&One { data: v2::rendered(record, &ctx) }).expect("a record serialises")
}

fn record_response(status: StatusCode, record: &Record, schema: &TenantSchema) -> Response {
    json_response(status, record_body(record, schema, None), Some(record.meta.version))
}

/// `POST /api/v2/{rt}`: 201 with the record and `Location`.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    headers: HeaderMap,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    let body = body?; // after the 405 for users: a method not allowed is so whatever the body
    principal.require(Permission::write(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let write = v2::parse_write(rt, &body.value, WriteMode::Create, &schema)?;
    let key = idempotency_key(&headers, &body.raw, &format!("v2 {}", rt.api_name()), &principal.actor)?;
    let render_body = |r: &Record| json!({"data": render(r, &schema, None)}).to_string();
    let created = state
        .store()
        .create_record(&principal.actor, rt, &write, key.as_ref(), render_body)
        .await
        .map_err(|e| named_for_v2(rt, e.into()))?;
    let (status, body, replayed) = match created {
        Created::New(_, body) => (StatusCode::CREATED, body, false),
        Created::Replayed(stored) => {
            (StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED), stored.body, true)
        }
    };
    let doc: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let id = doc["data"]["id"].as_str().map(|id| format!("/api/v2/{}/{id}", rt.api_name()));
    let version = doc["data"]["attributes"]["version"]["value"].as_i64();
    Ok(created_response(status, body, version, id, replayed))
}

/// `GET /api/v2/user/{id}`: a route of its own, so that every other method on a user is a
/// `405` whose `Allow` lists only `GET` (users are read-only in the data API, docs/API.md);
/// under `/api/v2/{rt}/{id}` it would list the methods accounts and contacts take.
pub async fn get_user(
    state: State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    get(state, principal, Path((RecordType::User.api_name().to_owned(), id)), query).await
}

/// `GET /api/v2/{rt}/{id}` (`?fields=`, `?include_archived=true`).
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let rt = record_type(&rt)?;
    principal.require(Permission::read(rt))?;
    query.only(&["fields", "include_archived"])?;
    // Checked for every type, users included (who are never archived), so a bad value is 400.
    let include_archived = query.flag("include_archived")?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let only = fields_param(rt, &schema, &query)?;
    let id = parse_id(rt, &id)?;
    if rt == RecordType::User {
        let user = state.store().get_user(&principal.actor.tenant, id).await?;
        let body = json!({"data": render_user(&user, only.as_deref())});
        return Ok(json_response(StatusCode::OK, body.to_string(), Some(user.version)));
    }
    let record = state.store().get_record(&principal.actor, rt, id, include_archived).await?;
    let response =
        json_response(StatusCode::OK, record_body(&record, &schema, only.as_deref()), Some(record.meta.version));
    Ok(with_alias(response, id, &record, &record.meta.id.canonical()))
}

/// `PATCH /api/v2/{rt}/{id}`: omitted = unchanged, null = clear, arrays replace.
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id)): Path<(String, String)>,
    if_match: IfMatch,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let rt = writable(&rt, "GET")?;
    let body = body?; // after the 405 for users (found by schemathesis: no body gave 415)
    principal.require(Permission::write(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let write = v2::parse_write(rt, &body.value, WriteMode::Patch, &schema)?;
    let asked = parse_id(rt, &id)?;
    let record = state
        .store()
        .update_record(&principal.actor, rt, asked, &write, if_match.0)
        .await
        .map_err(|e| named_for_v2(rt, e.into()))?;
    Ok(with_alias(record_response(StatusCode::OK, &record, &schema), asked, &record, &record.meta.id.canonical()))
}

/// `DELETE /api/v2/{rt}/{id}`: archives (204); `?purge=true` (admin) deletes for good.
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id)): Path<(String, String)>,
    if_match: IfMatch,
    query: QueryPairs,
) -> ApiResult<Response> {
    let rt = writable(&rt, "GET")?;
    principal.require(Permission::write(rt))?;
    query.only(&["purge"])?;
    let id = parse_id(rt, &id)?;
    if query.flag("purge")? {
        principal.require(Permission::Admin)?;
        state.store().purge_record(&principal.actor, rt, id).await?;
    } else {
        state.store().archive_record(&principal.actor, rt, id, if_match.0).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v2/{rt}/{id}/_restore`.
pub async fn restore(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    principal.require(Permission::write(rt))?;
    let record = state.store().restore_record(&principal.actor, rt, parse_id(rt, &id)?).await?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    Ok(record_response(StatusCode::OK, &record, &schema))
}

/// `POST /api/v2/user/_query`: routed by name, since `/api/v2/user/{id}` (see [`get_user`])
/// would otherwise take `_query` for an id.
pub async fn query_user(state: State<AppState>, principal: Principal, body: JsonBody) -> ApiResult<Response> {
    query(state, principal, Path(RecordType::User.api_name().to_owned()), body).await
}

/// `POST /api/v2/{rt}/_query` (docs/CONTRACT.md §7.4): filters, sort, limit, cursor, include_archived,
/// count, fields. A cursor continues its query, sent with or without the original body.
pub async fn query(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let rt = record_type(&rt)?;
    principal.require(Permission::read(rt))?;
    let obj = object(&body.value, &["filters", "sort", "limit", "cursor", "include_archived", "count", "fields"])?;
    let mut query = ListQuery { dialect: ListDialect::V2, ..ListQuery::default() };
    let mut given = false;
    if let Some(filters) = body_filters(obj)? {
        given = true;
        query.filters = filters;
    }
    if let Some(sort) = obj.get("sort").filter(|s| !s.is_null()) {
        given = true;
        let keys = sort
            .as_array()
            .ok_or_else(|| CoreError::invalid_value("sort", "expected an array of {field, direction}"))?;
        if keys.len() > MAX_SORT_KEYS {
            return Err(CoreError::invalid_value("sort", format!("at most {MAX_SORT_KEYS} sort keys")).into());
        }
        for key in keys {
            let field =
                key["field"].as_str().ok_or_else(|| CoreError::invalid_value("sort", "each key needs a field"))?;
            let descending = match key.get("direction").and_then(Json::as_str) {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => return Err(CoreError::invalid_value("sort", "direction is asc or desc").into()),
            };
            query.sort.push((field.to_owned(), descending));
        }
    }
    if let Some(flag) = obj.get("include_archived").filter(|f| !f.is_null()) {
        given = true;
        query.include_deleted =
            flag.as_bool().ok_or_else(|| CoreError::invalid_value("include_archived", "expected true or false"))?;
    }
    let limit = body_limit(obj, V2_DEFAULT_LIMIT, V2_MAX_LIMIT)?;
    let cursor = body_cursor(obj)?;
    let count = match obj.get("count") {
        None | Some(Json::Null) => None,
        Some(Json::String(mode)) => count_param(Some(mode), "count")?,
        Some(_) => return Err(CoreError::invalid_value("count", "expected exact or estimated").into()),
    };
    let fields = body_fields(obj)?;
    if rt == RecordType::User {
        if count.is_some() {
            return Err(CoreError::invalid_value("count", "user queries do not count").into());
        }
        if let Some(bad) = fields.iter().flatten().find(|f| !v2::attribute_names(rt).contains(&f.as_str())) {
            return Err(CoreError::invalid_value("fields", format!("unknown attribute `{bad}`")).into());
        }
        let actor = &principal.actor;
        let (query, after) = continue_query(&state, actor, rt, given.then_some(query), cursor)?;
        let plan = query.resolve(rt, &TenantSchema::builtin(&actor.tenant, rt))?;
        let (users, next) = state.store().list_users_page(&actor.tenant, &plan, after.as_deref(), limit).await?;
        let body = json!({
            "data": users.iter().map(|u| render_user(u, fields.as_deref())).collect::<Vec<_>>(),
            "next_cursor": next_cursor(&state, actor, rt, query, next),
        });
        return Ok(json_response(StatusCode::OK, body.to_string(), None));
    }
    // Refuse unknown attributes before reading any records (the schema is cached).
    if let Some(wanted) = &fields {
        let known = v2::attribute_names_in(rt, &*state.schema(&principal.actor.tenant, rt).await?);
        if let Some(bad) = wanted.iter().find(|w| !known.contains(w)) {
            return Err(CoreError::invalid_value("fields", format!("unknown attribute `{bad}`")).into());
        }
    }
    let page = page(&state, &principal.actor, rt, given.then_some(query), cursor, limit, count).await?;
    // Written straight to the body, record by record (no JSON tree of the page).
    let ctx = RenderContext { schema: &page.schema, only: fields.as_deref() };
    let body = QueryPage {
        data: page.records.iter().map(|r| v2::rendered(r, &ctx)).collect(),
        meta: page.total.map(|(total, estimate)| json!({"total": total, "total_is_estimate": estimate})),
        next_cursor: page.next_cursor,
    };
    let body = serde_json::to_string(&body).expect("a page serialises");
    Ok(json_response(StatusCode::OK, body, None))
}

/// The `_query` answer: `{"data", "meta"?, "next_cursor"}` (keys sorted, as every object).
#[derive(serde::Serialize)]
struct QueryPage<'a> {
    data: Vec<v2::RenderedRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Json>,
    next_cursor: Option<String>,
}

/// `POST /api/v2/{rt}/_assert` (docs/CONTRACT.md §7.7): `{"match": {...}, "attributes": {...}}`;
/// 201 `created` or 200 `updated`.
pub async fn assert(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let rt = writable(&rt, "")?;
    let body = body?; // after the 405 for users
    principal.require(Permission::write(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    let (keys, write) = parse_assert(rt, &body.value, &schema)?;
    let (record, created) = state
        .store()
        .assert_record(&principal.actor, rt, &keys, &write)
        .await
        .map_err(|e| named_for_v2(rt, e.into()))?;
    let (status, action) = if created { (StatusCode::CREATED, "created") } else { (StatusCode::OK, "updated") };
    let body = json!({"data": render(&record, &schema, None), "meta": {"action": action}});
    Ok(json_response(status, body.to_string(), Some(record.meta.version)))
}

/// An `_assert` body (`{"match": {...}, "attributes": {...}}`): its normalised match keys and
/// its attributes, validated as a patch (required-on-create is checked only if it creates).
/// Shared with the bulk route, so a bulk `assert` line is refused exactly as the call is.
pub(crate) fn parse_assert(
    rt: RecordType,
    value: &Json,
    schema: &TenantSchema,
) -> ApiResult<(Vec<MatchKey>, RecordWrite)> {
    let obj = object(value, &["match", "attributes"])?;
    let matches = obj
        .get("match")
        .and_then(Json::as_object)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| CoreError::required_missing("match"))?;
    let mut keys = Vec::new();
    for (key, value) in matches {
        let text = value.as_str().ok_or_else(|| CoreError::invalid_value(key, "expected a string"))?;
        keys.push(match (rt, key.as_str()) {
            (_, "id") => {
                MatchKey::Id(RecordId::parse(rt, text).ok_or_else(|| CoreError::invalid_value(key, "not an id"))?)
            }
            (RecordType::Account, "domain_name") => {
                MatchKey::Domain(normalize::domain(text).map_err(|r| CoreError::invalid_value(key, r))?)
            }
            (RecordType::Contact, "primary_email" | "contact_emails") => {
                MatchKey::Email(normalize::email(text).map_err(|r| CoreError::invalid_value(key, r))?)
            }
            _ => {
                let allowed =
                    if rt == RecordType::Account { "id, domain_name" } else { "id, primary_email, contact_emails" };
                return Err(CoreError::new(
                    ErrorCode::InvalidMatchingField,
                    format!("`{key}` is not a match key of {rt}; use {allowed}"),
                )
                .with("field", key.as_str())
                .into());
            }
        });
    }
    let attributes = json!({"attributes": obj.get("attributes").cloned().unwrap_or(Json::Null)});
    // Attributes are validated as a patch: required-on-create is checked only if it creates.
    let write = v2::parse_write(rt, &attributes, WriteMode::Patch, schema)?;
    Ok((keys, write))
}

/// `GET /api/v2/_schema/{rt}` (not wrapped in `data`).
pub async fn schema(
    State(state): State<AppState>,
    principal: Principal,
    Path(rt): Path<String>,
) -> ApiResult<Response> {
    let rt = record_type(&rt)?;
    principal.require(Permission::read(rt))?;
    let schema = state.schema(&principal.actor.tenant, rt).await?;
    Ok(json_response(StatusCode::OK, v2::schema_document(rt, &schema).to_string(), None))
}

/// A directory user as a v2 record.
fn render_user(u: &User, only: Option<&[String]>) -> Json {
    let organization = if uuid::Uuid::try_parse(&u.tenant_id).is_ok() { "uuid" } else { "string" };
    let mut attributes = Map::new();
    attributes.insert("id".into(), envelope("uuid", json!(u.id.canonical())));
    attributes.insert("organization_id".into(), envelope(organization, json!(u.tenant_id)));
    attributes.insert("email".into(), envelope("email", json!(u.email)));
    attributes.insert("display_name".into(), envelope("string", json!(u.display_name)));
    attributes.insert("is_active".into(), envelope("boolean", json!(u.is_active)));
    attributes.insert("created_at".into(), envelope("timestamp", json!(u.created_at.to_rfc3339())));
    attributes.insert("updated_at".into(), envelope("timestamp", json!(u.updated_at.to_rfc3339())));
    attributes.insert("version".into(), envelope("number", json!(u.version)));
    if let Some(only) = only {
        attributes.retain(|k, _| only.iter().any(|o| o == k));
    }
    json!({
        "id": u.id.canonical(), "record_type": "user",
        "created_at": u.created_at.to_rfc3339(), "updated_at": u.updated_at.to_rfc3339(),
        "attributes": attributes,
    })
}

// ----- attribute sub-resources -----

/// The attribute sub-resources (docs/CONTRACT.md §7.6).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SubResource {
    Domains,
    Items(ContactList),
}

/// Which sub-resource a path names. Unknown names: 404 on accounts, 400
/// `sub_resource_not_supported` on contacts; users are read-only (405).
fn sub_resource(rt: &str, name: &str, allow: &str) -> ApiResult<SubResource> {
    match (record_type(rt)?, name) {
        (RecordType::Account, "domains") => Ok(SubResource::Domains),
        (RecordType::Account, _) => {
            Err(ApiError::new(ErrorCode::RouteNotFound, format!("accounts have no `{name}` sub-resource")))
        }
        (RecordType::Contact, "contact_emails") => Ok(SubResource::Items(ContactList::Emails)),
        (RecordType::Contact, "contact_phone_numbers") => Ok(SubResource::Items(ContactList::Phones)),
        (RecordType::Contact, _) => {
            Err(CoreError::new(ErrorCode::SubResourceNotSupported, format!("contacts have no `{name}` sub-resource"))
                .with("sub_resource", name)
                .into())
        }
        (RecordType::User, _) => Err(ApiError::new(ErrorCode::MethodNotAllowed, "users are read-only in the data API")
            .with_header(header::ALLOW, allow)),
    }
}

fn domain_item(record: &Record, domain: &str) -> Json {
    let is_primary = record.domains.iter().any(|d| d.domain_name == domain && d.is_primary);
    json!({"data": {"domain_name": domain, "is_primary": is_primary}})
}

/// `{"data": {"id", "envelope": {"id", "email"|"phone_number", "is_primary", "labels"}}}`.
fn contact_item(record: &Record, list: ContactList, item_id: &str) -> Json {
    let (items, key) = match list {
        ContactList::Emails => (&record.emails, "email"),
        ContactList::Phones => (&record.phones, "phone_number"),
    };
    match items.iter().find(|i| i.id == item_id) {
        Some(i) => {
            json!({"data": {"id": i.id, "envelope": {"id": i.id, key: i.value, "is_primary": i.is_primary, "labels": i.labels}}})
        }
        None => json!({"data": null}),
    }
}

fn value_key(list: ContactList) -> &'static str {
    match list {
        ContactList::Emails => "email",
        ContactList::Phones => "phone_number",
    }
}

/// An email or phone number from a body field, normalised.
fn item_value(list: ContactList, raw: &Json) -> ApiResult<String> {
    let field = value_key(list);
    let s = raw.as_str().ok_or_else(|| CoreError::invalid_value(field, "expected a string"))?;
    let normalised = match list {
        ContactList::Emails => normalize::email(s),
        ContactList::Phones => normalize::phone(s),
    };
    normalised.map_err(|r| CoreError::invalid_value(field, r).into())
}

/// Labels ⊂ WORK, PERSONAL, MOBILE (any case in, upper case stored).
fn labels(raw: &Json) -> ApiResult<Vec<String>> {
    let bad = || CoreError::invalid_value("labels", format!("expected an array of {}", ITEM_LABELS.join(", ")));
    let items = raw.as_array().ok_or_else(bad)?;
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let label =
            item.as_str().map(str::to_uppercase).filter(|l| ITEM_LABELS.contains(&l.as_str())).ok_or_else(bad)?;
        if !out.contains(&label) {
            out.push(label);
        }
    }
    Ok(out)
}

fn flag(obj: &Map<String, Json>, key: &str) -> ApiResult<Option<bool>> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or_else(|| CoreError::invalid_value(key, "expected true or false").into()),
    }
}

/// `POST /api/v2/{rt}/{id}/attribute/{name}`: adds a domain, email or phone number (201, or
/// 200 when the record already has it).
pub async fn add_sub_resource(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name)): Path<(String, String, String)>,
    if_match: IfMatch,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let sub = sub_resource(&rt, &name, "")?;
    let body = body?; // after the 405 for users and the unknown sub-resource errors
    match sub {
        SubResource::Domains => {
            principal.require(Permission::AccountsWrite)?;
            if body.value.get("is_primary").is_some() {
                return Err(CoreError::field_not_creatable("is_primary").into());
            }
            let obj = object(&body.value, &["domain_name"])?;
            let raw = obj.get("domain_name").ok_or_else(|| CoreError::required_missing("domain_name"))?;
            let domain = normalised_domain(
                raw.as_str().ok_or_else(|| CoreError::invalid_value("domain_name", "expected a string"))?,
                "domain_name",
            )?;
            let id = parse_id(RecordType::Account, &id)?;
            let (record, added) =
                state.store().change_domain(&principal.actor, id, &domain, DomainChange::Add, if_match.0).await?;
            let status = if added { StatusCode::CREATED } else { StatusCode::OK };
            Ok(json_response(status, domain_item(&record, &domain).to_string(), Some(record.meta.version)))
        }
        SubResource::Items(list) => {
            principal.require(Permission::ContactsWrite)?;
            let key = value_key(list);
            let obj = object(&body.value, &[key, "is_primary", "labels"])?;
            let value = item_value(list, obj.get(key).ok_or_else(|| CoreError::required_missing(key))?)?;
            let is_primary = flag(obj, "is_primary")?.unwrap_or(false);
            let labels = obj.get("labels").map(labels).transpose()?.unwrap_or_default();
            let id = parse_id(RecordType::Contact, &id)?;
            let change = ItemChange::Add { value, is_primary, labels };
            let (record, item, added) =
                state.store().change_contact_item(&principal.actor, id, list, change, if_match.0).await?;
            let status = if added { StatusCode::CREATED } else { StatusCode::OK };
            let body = contact_item(&record, list, item.as_deref().unwrap_or_default());
            Ok(json_response(status, body.to_string(), Some(record.meta.version)))
        }
    }
}

/// `PATCH …/attribute/domains/{domain_name}` with `{"is_primary": bool}`, or
/// `PATCH …/attribute/contact_emails/{item_id}` (and phones) with a partial item.
pub async fn patch_sub_resource(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name, item)): Path<(String, String, String, String)>,
    if_match: IfMatch,
    body: Result<JsonBody, ApiError>,
) -> ApiResult<Response> {
    let sub = sub_resource(&rt, &name, "")?;
    let body = body?; // after the 405 for users and the unknown sub-resource errors
    match sub {
        SubResource::Domains => {
            principal.require(Permission::AccountsWrite)?;
            let obj = object(&body.value, &["is_primary"])?;
            let primary = flag(obj, "is_primary")?.ok_or_else(|| CoreError::required_missing("is_primary"))?;
            let domain = normalize::domain(&item).map_err(|_| CoreError::record_not_found())?;
            let id = parse_id(RecordType::Account, &id)?;
            let change = DomainChange::SetPrimary(primary);
            let (record, _) = state.store().change_domain(&principal.actor, id, &domain, change, if_match.0).await?;
            Ok(json_response(StatusCode::OK, domain_item(&record, &domain).to_string(), Some(record.meta.version)))
        }
        SubResource::Items(list) => {
            principal.require(Permission::ContactsWrite)?;
            let key = value_key(list);
            let obj = object(&body.value, &[key, "is_primary", "labels"])?;
            let change = ItemChange::Update {
                item_id: item.clone(),
                value: obj.get(key).map(|v| item_value(list, v)).transpose()?,
                is_primary: flag(obj, "is_primary")?,
                labels: obj.get("labels").map(labels).transpose()?,
            };
            let id = parse_id(RecordType::Contact, &id)?;
            let (record, _, _) =
                state.store().change_contact_item(&principal.actor, id, list, change, if_match.0).await?;
            Ok(json_response(StatusCode::OK, contact_item(&record, list, &item).to_string(), Some(record.meta.version)))
        }
    }
}

/// `DELETE …/attribute/{name}/{item}`: 204. Removing the primary promotes the oldest remaining.
pub async fn delete_sub_resource(
    State(state): State<AppState>,
    principal: Principal,
    Path((rt, id, name, item)): Path<(String, String, String, String)>,
    if_match: IfMatch,
) -> ApiResult<Response> {
    match sub_resource(&rt, &name, "")? {
        SubResource::Domains => {
            principal.require(Permission::AccountsWrite)?;
            let domain = normalize::domain(&item).map_err(|_| CoreError::record_not_found())?;
            let id = parse_id(RecordType::Account, &id)?;
            state.store().change_domain(&principal.actor, id, &domain, DomainChange::Remove, if_match.0).await?;
        }
        SubResource::Items(list) => {
            principal.require(Permission::ContactsWrite)?;
            let id = parse_id(RecordType::Contact, &id)?;
            let change = ItemChange::Remove { item_id: item };
            state.store().change_contact_item(&principal.actor, id, list, change, if_match.0).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn normalised_domain(raw: &str, field: &str) -> ApiResult<String> {
    normalize::domain(raw).map_err(|r| CoreError::invalid_value(field, r).into())
}
