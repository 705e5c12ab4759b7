//! Operational routes, no auth: liveness, readiness and the two dialects' health documents.

use crate::error::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value as Json_, json};

/// Liveness: the process answers.
#[utoipa::path(get, operation_id = "health_health", path = "/health", tag = "operations", summary = "Liveness", responses((status = 200, description = "The process answers", body = ref("#/components/schemas/Health")), (status = "4XX", description = "Client error (docs/CONTRACT.md §9)", body = ref("#/components/schemas/Error")), (status = "5XX", description = "Server error", body = ref("#/components/schemas/Error"))))]
pub async fn health() -> Json<Json_> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers (503 `unavailable` otherwise).
#[utoipa::path(get, operation_id = "health_ready", path = "/ready", tag = "operations", summary = "Readiness: the database answers", responses((status = 200, description = "Ready", body = ref("#/components/schemas/Health")), (status = "4XX", description = "Client error (docs/CONTRACT.md §9)", body = ref("#/components/schemas/Error")), (status = "5XX", description = "Server error", body = ref("#/components/schemas/Error"))))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Json_>> {
    state.store().ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

#[utoipa::path(get, operation_id = "health_v1_health", path = "/api/v1/health", tag = "operations", summary = "v1 health", responses((status = 200, description = "Healthy", body = ref("#/components/schemas/Health")), (status = "4XX", description = "Client error (docs/CONTRACT.md §9)", body = ref("#/components/schemas/Error")), (status = "5XX", description = "Server error", body = ref("#/components/schemas/Error"))))]
pub async fn v1_health(State(state): State<AppState>) -> ApiResult<Json<Json_>> {
    state.store().ping().await?;
    Ok(Json(json!({"status": "ok", "database": "connected"})))
}

#[utoipa::path(get, operation_id = "health_v2_health", path = "/api/v2/health", tag = "operations", summary = "v2 health", responses((status = 200, description = "Healthy", body = ref("#/components/schemas/Health")), (status = "4XX", description = "Client error (docs/CONTRACT.md §9)", body = ref("#/components/schemas/Error")), (status = "5XX", description = "Server error", body = ref("#/components/schemas/Error"))))]
pub async fn v2_health(State(state): State<AppState>) -> ApiResult<Json<Json_>> {
    state.store().ping().await?;
    Ok(Json(json!({"data": {"status": "healthy"}})))
}
