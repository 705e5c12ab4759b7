//! Every route Corral serves, in one place, and the middleware stack around them.
//!
//! Records are served by generic routes (`/api/v2/{rt}/…`, `/api/v1/crm/{collection}/…`) whose
//! handlers resolve the type; the OpenAPI document ([`crate::openapi`]) names one concrete
//! path per type. A test walks the document and checks every operation is routed here.

use crate::auth::Principal;
use crate::edge::{Edge, EdgeOptions, compression_layer, cors_layer};
use crate::error::{ApiError, normalize_error_responses};
use crate::extract::MAX_BODY_BYTES;
use crate::request_id;
use crate::routes::{
    admin, bulk, changes, duplicates, export, health, merge, relationships, schema_admin, token, v1_records,
    v2_records, webhooks,
};
use crate::state::AppState;
use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use corral_core::{ErrorCode, RecordType};
use std::sync::{Arc, OnceLock};
use tower_http::catch_panic::CatchPanicLayer;

/// Routes that take no credentials: never authenticated, never rate limited.
fn public_routes() -> Router<AppState> {
    Router::new()
        // Operations.
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/api/v1/health", get(health::v1_health))
        .route("/api/v2/health", get(health::v2_health))
        // Token exchange (the API key in the body is the credential).
        .route("/api/v1/auth/token", post(token::exchange))
        // The API reference page.
        .route("/docs", get(crate::routes::docs::docs_page))
        .route("/docs/assets/{file}", get(crate::routes::docs::docs_asset))
}

/// Every route that takes credentials (all of them need one except `/openapi.json`).
fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        // v1 document dialect.
        .route("/api/v1/crm/{collection}", get(v1_records::list).post(v1_records::create))
        .route(
            "/api/v1/crm/{collection}/{id}",
            get(v1_records::get).patch(v1_records::patch).put(v1_records::put).delete(v1_records::delete),
        )
        .route("/api/v1/crm/{collection}/{id}/restore", post(v1_records::restore))
        .route("/api/v1/crm/changes", get(changes::v1_feed))
        .route("/api/v1/crm/{collection}/{id}/history", get(changes::v1_history))
        .route("/api/v1/schemas/{record_type}", get(v1_records::json_schema))
        .route("/api/v1/manifest", get(v1_records::manifest))
        // v2 typed-record dialect.
        .route("/api/v2/_schema/{rt}", get(v2_records::schema))
        .route("/api/v2/_schema/{rt}/attributes", post(schema_admin::create_attribute))
        .route(
            "/api/v2/_schema/{rt}/attributes/{name}",
            axum::routing::patch(schema_admin::update_attribute).delete(schema_admin::archive_attribute),
        )
        .route("/api/v2/_schema/{rt}/attributes/{name}/options", post(schema_admin::add_option))
        .route(
            "/api/v2/_schema/{rt}/attributes/{name}/options/{option}",
            axum::routing::patch(schema_admin::update_option).delete(schema_admin::delete_option),
        )
        .route("/api/v2/_changes", get(changes::v2_feed))
        .route("/api/v2/{rt}", post(v2_records::create))
        .route("/api/v2/{rt}/_query", post(v2_records::query))
        .route("/api/v2/{rt}/_assert", post(v2_records::assert))
        .route("/api/v2/{rt}/_merge", post(merge::merge))
        .route("/api/v2/{rt}/_unmerge", post(merge::unmerge))
        .route("/api/v2/{rt}/_duplicates", post(duplicates::duplicates))
        // Bodies of any size stream through (see routes::bulk); no 1 MiB body cap here.
        .route("/api/v2/{rt}/_bulk", post(bulk::bulk).layer(DefaultBodyLimit::disable()))
        .route("/api/v2/{rt}/_export", post(export::export))
        // Users are read-only here: their own routes, so a 405 lists only what they take.
        .route("/api/v2/user/_query", post(v2_records::query_user))
        .route("/api/v2/user/{id}", get(v2_records::get_user))
        .route("/api/v2/{rt}/{id}", get(v2_records::get).patch(v2_records::patch).delete(v2_records::delete))
        .route("/api/v2/{rt}/{id}/_restore", post(v2_records::restore))
        .route("/api/v2/{rt}/{id}/_history", get(changes::v2_history))
        .route("/api/v2/{rt}/{id}/attribute/{name}", post(v2_records::add_sub_resource))
        .route(
            "/api/v2/{rt}/{id}/attribute/{name}/{item}",
            axum::routing::patch(v2_records::patch_sub_resource).delete(v2_records::delete_sub_resource),
        )
        .route("/api/v2/{rt}/{id}/relationship/{name}", get(relationships::list).post(relationships::add))
        .route(
            "/api/v2/{rt}/{id}/relationship/{name}/{target}",
            axum::routing::patch(relationships::update).delete(relationships::remove),
        )
        // Admin.
        .route("/api/admin/api-keys", get(admin::list_api_keys).post(admin::create_api_key))
        .route("/api/admin/api-keys/{id}", axum::routing::delete(admin::revoke_api_key))
        .route("/api/admin/users", get(admin::list_users).post(admin::create_user))
        .route("/api/admin/users/{id}", axum::routing::patch(admin::update_user))
        .route("/api/admin/settings", get(admin::get_settings).patch(admin::update_settings))
        .route("/api/admin/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/api/admin/webhooks/{id}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/api/admin/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/api/admin/webhooks/{id}/replay", axum::routing::post(webhooks::replay))
}

/// The base OpenAPI document (no tenant's custom attributes): what `corral openapi` prints
/// and `openapi.json` holds.
pub fn openapi() -> serde_json::Value {
    crate::openapi::base()
}

fn json_document(body: String) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// `GET /openapi.json`: the base document, or with credentials the caller's tenant's
/// document (its custom attributes and options), cached until that schema changes. Bad
/// credentials never reach here: [`crate::auth::authenticate`] answers them.
async fn openapi_json(State(state): State<AppState>, principal: Option<Extension<Principal>>) -> Response {
    static BASE: OnceLock<String> = OnceLock::new();
    let Some(Extension(principal)) = principal else {
        return json_document(
            BASE.get_or_init(|| serde_json::to_string_pretty(&openapi()).unwrap_or_default()).clone(),
        );
    };
    let tenant_document = async {
        let tenant = &principal.actor.tenant;
        let account = state.schema(tenant, RecordType::Account).await?;
        let contact = state.schema(tenant, RecordType::Contact).await?;
        Ok::<_, ApiError>(state.openapi_document(tenant, account, contact))
    };
    match tenant_document.await {
        Ok(body) => json_document(body.as_ref().clone()),
        Err(e) => e.into_response(),
    }
}

/// Where `GET /metrics` is served and who may read it (docs/OPERATIONS.md, Metrics).
#[derive(Debug, Clone, Default)]
pub struct MetricsEndpoint {
    /// Served by [`metrics_router`] on a listener of its own, not by the API router.
    pub separate_listener: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// `GET /metrics`, guarded by `token` when one is set.
fn metrics_route(token: Option<String>) -> MethodRouter<AppState> {
    let token: Option<Arc<str>> = token.map(Into::into);
    get(move |State(state): State<AppState>, headers: HeaderMap| {
        let token = token.clone();
        async move { crate::metrics::respond(&state, token.as_deref(), &headers) }
    })
}

/// Builds the application router over `state` with the default edge limits.
pub fn router(state: AppState) -> Router {
    router_with(state, EdgeOptions::default())
}

/// Builds the application router over `state` with these edge limits. Layers, outermost
/// first: metrics and the access log, request id, security headers, compression, CORS (when origins are configured), the
/// error-body rewrite, head limits / load shedding / deadlines, conditional GETs, panics.
pub fn router_with(state: AppState, edge: EdgeOptions) -> Router {
    let cors = cors_layer(&edge.cors_origins);
    // Authentication, then rate limits, on matched authenticated routes only: an unknown path
    // or method answers 404 / 405 without looking at credentials, as before.
    let authenticated = api_routes()
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::ratelimit::limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::auth::authenticate));
    let mut public = public_routes();
    if !edge.metrics.separate_listener {
        public = public.route("/metrics", metrics_route(edge.metrics.token.clone()));
    }
    let router = public
        .merge(authenticated)
        .fallback(route_not_found)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!(request_id = %request_id::current(), "handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(middleware::from_fn(crate::conditional::not_modified))
        .layer(middleware::from_fn_with_state(Edge::new(edge), crate::edge::limits))
        .layer(middleware::from_fn(normalize_error_responses));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(compression_layer())
        .layer(middleware::from_fn(crate::edge::security_headers))
        .layer(middleware::from_fn(request_id::assign))
        // Outermost: its latency covers the whole stack, and it sees the final response.
        .layer(middleware::from_fn_with_state(state, crate::observe::track))
}

/// `/metrics` alone, for a listener of its own (`CORRAL_METRICS_LISTEN`). Its scrapes are not
/// counted or access-logged.
pub fn metrics_router(state: AppState, token: Option<String>) -> Router {
    Router::new()
        .route("/metrics", metrics_route(token))
        .fallback(route_not_found)
        .with_state(state)
        .layer(middleware::from_fn(normalize_error_responses))
        .layer(middleware::from_fn(request_id::assign))
}

async fn route_not_found() -> Response {
    ApiError::new(ErrorCode::RouteNotFound, "no route matches this path").into_response()
}
