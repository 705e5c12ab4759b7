//! `x-request-id`: echoed when the caller sends a sane one, generated otherwise, set on every
//! response and available to error bodies and logs for the duration of the request.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled ("" outside a request).
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

fn acceptable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_owned())
}

/// Middleware: assigns the request id and stamps it on the response.
pub async fn assign(request: Request, next: Next) -> Response {
    let id =
        request.headers().get(HEADER).and_then(acceptable).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let header = HeaderValue::from_str(&id).expect("checked to be visible ASCII");
    // The access-log line (crate::observe) reads the id back from the response header.
    let mut response = REQUEST_ID.scope(id, next.run(request)).await;
    response.headers_mut().insert(HEADER, header);
    response
}

/// Runs `f` (a task spawned for the request, such as a bulk import's writer) under request `id`.
pub async fn within<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}
