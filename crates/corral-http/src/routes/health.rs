//! Operational routes, no auth: liveness, readiness and the two dialects' health documents.

use crate::error::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value as Json_, json};

/// Liveness: the process answers.
pub async fn health() -> Json<Json_> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers (503 `unavailable` otherwise).
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Json_>> {
    state.store().ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

pub async fn v1_health(State(state): State<AppState>) -> ApiResult<Json<Json_>> {
    state.store().ping().await?;
    Ok(Json(json!({"status": "ok", "database": "connected"})))
}

pub async fn v2_health(State(state): State<AppState>) -> ApiResult<Json<Json_>> {
    state.store().ping().await?;
    Ok(Json(json!({"data": {"status": "healthy"}})))
}
