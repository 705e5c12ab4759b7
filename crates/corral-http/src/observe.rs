//! The outermost middleware: per-request metrics ([`crate::metrics`]) and the access log,
//! one `info` event per request with target [`ACCESS_TARGET`] (docs/OPERATIONS.md, Access log).
//!
//! The access line names the route template (never the raw path), the status, the latency,
//! the request id and, once the caller is authenticated, the tenant, which the
//! authentication middleware leaves in the response's extensions. When the log filter turns
//! the target off, the event costs one cached check.

use crate::metrics::{Route, method_label};
use crate::request_id;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use corral_core::TenantId;
use std::time::Instant;

/// The `tracing` target of access-log lines: `CORRAL_LOG=info,corral::access=off` drops them.
pub const ACCESS_TARGET: &str = "corral::access";

/// Middleware: counts, times and logs each request. Layered outside every other middleware,
/// so the latency covers them and the response already carries its `x-request-id`.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = state.metrics();
    let _in_flight = metrics.start();
    let started = Instant::now();
    // The router has matched the route before layers added with `Router::layer` run.
    let route = Route::new(request.extensions().get::<MatchedPath>());
    // The log names any method; the metrics label folds unusual ones into `OTHER`.
    let method = request.method().clone();
    let method_label = method_label(&method);
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.record(&route, method_label, status, elapsed);
    tracing::info!(
        target: ACCESS_TARGET,
        method = method.as_str(),
        route = route.as_str(),
        status,
        latency_us = elapsed.as_micros() as u64,
        tenant = response.extensions().get::<TenantId>().map(TenantId::as_str),
        request_id = response.headers().get(request_id::HEADER).and_then(|v| v.to_str().ok()),
        "request"
    );
    response
}
