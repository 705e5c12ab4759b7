//! Every route Corral serves, in one place, and the middleware stack around them.

use crate::error::{ApiError, normalize_error_responses};
use crate::extract::MAX_BODY_BYTES;
use crate::request_id;
use crate::routes::{admin, health, relationships, schema_admin, token, v1_records, v2_records};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use corral_core::ErrorCode;
use tower_http::catch_panic::CatchPanicLayer;

/// Builds the application router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        // Operations (no auth).
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/api/v1/health", get(health::v1_health))
        .route("/api/v2/health", get(health::v2_health))
        // Token exchange (the API key is the credential).
        .route("/api/v1/auth/token", post(token::exchange))
        // v1 document dialect.
        .route("/api/v1/crm/{collection}", get(v1_records::list).post(v1_records::create))
        .route(
            "/api/v1/crm/{collection}/{id}",
            get(v1_records::get).patch(v1_records::patch).put(v1_records::put).delete(v1_records::delete),
        )
        .route("/api/v1/crm/{collection}/{id}/restore", post(v1_records::restore))
        .route("/api/v1/schemas/{record_type}", get(v1_records::json_schema))
        .route("/api/v1/manifest", get(v1_records::manifest))
        // v2 typed-record dialect.
        .route("/api/v2/_schema/{rt}", get(v2_records::schema))
        .route("/api/v2/_schema/{rt}/attributes", post(schema_admin::create_attribute))
        .route(
            "/api/v2/_schema/{rt}/attributes/{name}",
            patch(schema_admin::update_attribute).delete(schema_admin::archive_attribute),
        )
        .route("/api/v2/_schema/{rt}/attributes/{name}/options", post(schema_admin::add_option))
        .route(
            "/api/v2/_schema/{rt}/attributes/{name}/options/{option}",
            patch(schema_admin::update_option).delete(schema_admin::delete_option),
        )
        .route("/api/v2/{rt}", post(v2_records::create))
        .route("/api/v2/{rt}/{id}", get(v2_records::get).patch(v2_records::patch).delete(v2_records::delete))
        .route("/api/v2/{rt}/{id}/_restore", post(v2_records::restore))
        .route("/api/v2/{rt}/{id}/attribute/{name}", post(v2_records::add_sub_resource))
        .route(
            "/api/v2/{rt}/{id}/attribute/{name}/{item}",
            patch(v2_records::patch_sub_resource).delete(v2_records::delete_sub_resource),
        )
        .route("/api/v2/{rt}/{id}/relationship/{name}", get(relationships::list).post(relationships::add))
        .route(
            "/api/v2/{rt}/{id}/relationship/{name}/{target}",
            patch(relationships::update).delete(relationships::remove),
        )
        // Admin.
        .route("/api/admin/api-keys", get(admin::list_api_keys).post(admin::create_api_key))
        .route("/api/admin/api-keys/{id}", delete(admin::revoke_api_key))
        .route("/api/admin/users", get(admin::list_users).post(admin::create_user))
        .route("/api/admin/users/{id}", patch(admin::update_user))
        .route("/api/admin/settings", get(admin::get_settings).patch(admin::update_settings))
        .fallback(route_not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!(request_id = %request_id::current(), "handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(middleware::from_fn(normalize_error_responses))
        .layer(middleware::from_fn(request_id::assign))
}

async fn route_not_found() -> Response {
    ApiError::new(ErrorCode::RouteNotFound, "no route matches this path").into_response()
}
