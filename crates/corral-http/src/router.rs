//! Every route Corral serves, in one place, and the middleware stack around them. Routes are
//! registered through utoipa-axum, so the OpenAPI document lists exactly what is served.

use crate::error::{ApiError, normalize_error_responses};
use crate::extract::MAX_BODY_BYTES;
use crate::request_id;
use crate::routes::{admin, health, relationships, schema_admin, token, v1_records, v2_records};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use corral_core::ErrorCode;
use std::sync::OnceLock;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every documented route. Handlers sharing a path share one `routes!`.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Operations (no auth).
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::v1_health))
        .routes(routes!(health::v2_health))
        // Token exchange (the API key is the credential).
        .routes(routes!(token::exchange))
        // v1 document dialect.
        .routes(routes!(v1_records::list, v1_records::create))
        .routes(routes!(v1_records::get, v1_records::patch, v1_records::put, v1_records::delete))
        .routes(routes!(v1_records::restore))
        .routes(routes!(v1_records::json_schema))
        .routes(routes!(v1_records::manifest))
        // v2 typed-record dialect.
        .routes(routes!(v2_records::schema))
        .routes(routes!(schema_admin::create_attribute))
        .routes(routes!(schema_admin::update_attribute, schema_admin::archive_attribute))
        .routes(routes!(schema_admin::add_option))
        .routes(routes!(schema_admin::update_option, schema_admin::delete_option))
        .routes(routes!(v2_records::create))
        .routes(routes!(v2_records::query))
        .routes(routes!(v2_records::assert))
        .routes(routes!(v2_records::get, v2_records::patch, v2_records::delete))
        .routes(routes!(v2_records::restore))
        .routes(routes!(v2_records::add_sub_resource))
        .routes(routes!(v2_records::patch_sub_resource, v2_records::delete_sub_resource))
        .routes(routes!(relationships::list, relationships::add))
        .routes(routes!(relationships::update, relationships::remove))
        // Admin.
        .routes(routes!(admin::list_api_keys, admin::create_api_key))
        .routes(routes!(admin::revoke_api_key))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::get_settings, admin::update_settings))
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> serde_json::Value {
    crate::openapi::document(api_routes().split_for_parts().1)
}

/// `GET /openapi.json`.
async fn openapi_json() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| serde_json::to_string_pretty(&openapi()).unwrap_or_default());
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.clone()).into_response()
}

/// Builds the application router over `state`.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    routes
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(crate::routes::docs::docs_page))
        .route("/docs/assets/{file}", get(crate::routes::docs::docs_asset))
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
