//! The router's edge (docs/OPERATIONS.md): load shedding, the body deadline, head limits,
//! JSON cost limits, CORS, compression and the headers every response carries.
//! Connection-level limits are tested with the real binary (crates/corral/tests/edge.rs).

use crate::helpers::TestApp;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, Response};
use corral_http::EdgeOptions;
use http_body_util::BodyExt;
use serde_json::json;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::ServiceExt;

/// A request body that sends nothing until its sender is dropped, then ends.
struct Stalled(tokio::sync::oneshot::Receiver<()>);

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.0).poll(cx).map(|_| None)
    }
}

fn stalled() -> (tokio::sync::oneshot::Sender<()>, Body) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    (tx, Body::new(Stalled(rx)))
}

/// Sends a request straight to the router (no contract check: preflights and CORS headers
/// are not part of the OpenAPI document).
async fn raw(app: &TestApp, request: Request<Body>) -> Response<Body> {
    app.router.clone().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_are_shed_with_503_and_retry_after() {
    let app = TestApp::spawn_edge(EdgeOptions { max_concurrent_requests: 1, ..EdgeOptions::default() }).await;
    // One request holds the only permit: its body never arrives.
    let (release, body) = stalled();
    let request = Request::post("/api/v1/auth/token").header("content-type", "application/json").body(body).unwrap();
    let mut held = Box::pin(app.router.clone().oneshot(request));
    poll_fn(|cx| {
        assert!(held.as_mut().poll(cx).is_pending(), "the held request waits for its body");
        Poll::Ready(())
    })
    .await;
    let r = app.get("/api/v1/crm/accounts").bearer(&app.admin()).send().await;
    r.assert_error(503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    // Liveness is never shed.
    app.get("/health").send().await.assert_status(200);
    // Once the held request is answered, its permit is free again.
    drop(release);
    let held = held.await.unwrap();
    assert_eq!(held.status(), 400);
    app.get("/api/v1/crm/accounts").bearer(&app.admin()).send().await.assert_status(200);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_and_closes_the_connection() {
    let app =
        TestApp::spawn_edge(EdgeOptions { body_read_timeout: Duration::from_millis(300), ..EdgeOptions::default() })
            .await;
    let (_release, body) = stalled();
    let request = Request::post("/api/v1/crm/accounts")
        .header("authorization", format!("Bearer {}", app.admin()))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let started = std::time::Instant::now();
    let response = raw(&app, request).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status(), 408);
    assert_eq!(response.headers()["connection"], "close");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
    // A body that does arrive is unaffected.
    app.post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "On time"}))
        .send()
        .await
        .assert_status(201);
}

#[tokio::test]
async fn long_targets_and_large_headers_are_414_and_431_in_the_error_body() {
    let app = TestApp::spawn().await;
    let long = format!("/api/v1/crm/accounts?q={}", "a".repeat(corral_http::edge::MAX_URI_BYTES));
    app.get(&long).bearer(&app.admin()).send().await.assert_error(414, "uri_too_long");
    let big = "b".repeat(corral_http::edge::MAX_HEADER_BYTES);
    app.get("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .header("x-big", &big)
        .send()
        .await
        .assert_error(431, "headers_too_large");
    let mut many = app.get("/health");
    for i in 0..=corral_http::edge::MAX_HEADER_COUNT {
        many = many.header(&format!("x-h{i}"), "1");
    }
    many.send().await.assert_error(431, "headers_too_large");
    // Just under the limit the request reaches its handler (which has its own limit on `q`).
    let fits = format!("/api/v1/crm/accounts?q={}", "a".repeat(corral_http::edge::MAX_URI_BYTES - 100));
    app.get(&fits).bearer(&app.admin()).send().await.assert_error(400, "invalid_query_parameter");
}

#[tokio::test]
async fn json_bodies_too_costly_to_parse_are_refused() {
    let app = TestApp::spawn().await;
    // ~1 MiB of tiny objects: parsed, ~90 MB of B-tree nodes; refused before parsing.
    let objects = format!("{{\"tags\": [{}{{\"a\":0}}]}}", "{\"a\":0},".repeat(120_000));
    assert!(objects.len() < 1024 * 1024);
    let r = app.post("/api/v1/crm/accounts").bearer(&app.admin()).raw("application/json", objects).send().await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(r.body["error"]["details"]["max_containers"], 2000);
    let values = format!("{{\"tags\": [{}0]}}", "0,".repeat(500_000));
    let r = app.post("/api/v2/account/_query").bearer(&app.admin()).raw("application/json", values).send().await;
    r.assert_error(413, "payload_too_large");
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    app.post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .raw("application/json", deep)
        .send()
        .await
        .assert_error(400, "invalid_json");
    // A large legitimate query (1,000 values in one list) is fine.
    let ids: Vec<String> = (0..1000).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let query = json!({"filters": [{"field": "id", "operator": "in", "value": ids}]});
    app.post("/api/v2/account/_query").bearer(&app.admin()).json(query).send().await.assert_status(200);
}

#[tokio::test]
async fn every_response_is_nosniff_and_credentialed_ones_are_no_store() {
    let app = TestApp::spawn().await;
    let health = app.get("/health").send().await;
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(health.header("cache-control"), None);
    let document = app.get("/openapi.json").send().await;
    assert_eq!(document.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(document.header("cache-control"), None);
    let docs = app.get("/docs").send().await;
    assert_eq!(docs.header("cache-control"), Some("no-cache"));
    for path in ["/api/v1/crm/accounts", "/openapi.json", "/api/v2/_schema/account"] {
        let r = app.get(path).bearer(&app.admin()).send().await;
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
    // Refused credentials too, and the token exchange (its credential is in the body).
    let refused = app.get("/api/v1/crm/accounts").bearer("not-a-token").send().await;
    refused.assert_error(401, "unauthenticated");
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    let exchange = app
        .post("/api/v1/auth/token")
        .raw("application/x-www-form-urlencoded", "grant_type=client_credentials&client_secret=x")
        .send()
        .await;
    assert_eq!(exchange.header("cache-control"), Some("no-store"));
    let missing = app.get("/nowhere").send().await;
    missing.assert_error(404, "route_not_found");
    assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/crm/accounts")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_answers_preflights_for_allowed_origins_only() {
    let origins = corral_http::edge::parse_cors_origins("https://app.example.com, http://localhost:3000").unwrap();
    let app = TestApp::spawn_edge(EdgeOptions { cors_origins: origins, ..EdgeOptions::default() }).await;
    let allowed = raw(&app, preflight("https://app.example.com")).await;
    assert_eq!(allowed.status(), 200);
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST") && methods.contains("PATCH"), "{methods}");
    let headers = h["access-control-allow-headers"].to_str().unwrap();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    assert!(h.contains_key("access-control-max-age"));
    assert!(!h.contains_key("access-control-allow-credentials"));
    // Another origin gets no allowance (the browser then refuses the call).
    let refused = raw(&app, preflight("https://evil.example")).await;
    assert!(!refused.headers().contains_key("access-control-allow-origin"));
    // Actual requests carry the allowance and expose the headers clients read.
    let request = Request::get("/api/v1/crm/accounts")
        .header("origin", "http://localhost:3000")
        .header("authorization", format!("Bearer {}", app.admin()))
        .body(Body::empty())
        .unwrap();
    let r = raw(&app, request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://localhost:3000");
    let exposed = r.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("etag") && exposed.contains("retry-after"),
        "{exposed}"
    );
}

#[tokio::test]
async fn cors_is_off_when_no_origin_is_configured() {
    let app = TestApp::spawn().await;
    let r = raw(&app, preflight("https://app.example.com")).await;
    assert_eq!(r.status(), 405);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let request = Request::get("/health").header("origin", "https://app.example.com").body(Body::empty()).unwrap();
    assert!(!raw(&app, request).await.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn responses_are_compressed_with_gzip_brotli_or_zstd_when_asked() {
    let app = TestApp::spawn().await;
    let plain = raw(&app, Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert!(!plain.headers().contains_key("content-encoding"));
    let plain = plain.into_body().collect().await.unwrap().to_bytes();
    for (encoding, decode) in [
        (
            "gzip",
            (|b: &[u8]| {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
                out
            }) as fn(&[u8]) -> Vec<u8>,
        ),
        ("br", |b: &[u8]| {
            let mut out = Vec::new();
            brotli_decompressor::Decompressor::new(b, 4096).read_to_end(&mut out).unwrap();
            out
        }),
        ("zstd", |b: &[u8]| zstd::stream::decode_all(b).unwrap()),
    ] {
        let request = Request::get("/openapi.json").header("accept-encoding", encoding).body(Body::empty()).unwrap();
        let r = raw(&app, request).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-encoding"], encoding);
        assert!(r.headers()["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
        let compressed = r.into_body().collect().await.unwrap().to_bytes();
        assert!(compressed.len() * 4 < plain.len(), "{encoding}: {} of {}", compressed.len(), plain.len());
        assert_eq!(decode(&compressed), plain, "{encoding}");
    }
    // Small answers are sent as they are.
    let request = Request::get("/health").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
    assert!(!raw(&app, request).await.headers().contains_key("content-encoding"));
}
