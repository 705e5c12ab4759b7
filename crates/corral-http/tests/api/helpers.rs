//! `TestApp`: a real router over a real database, one per test (zero2prod's `spawn_app`).
//!
//! Requests go through the full middleware stack in-process. Each test gets its own database
//! (a SQLite file, or a PostgreSQL schema when `CORRAL_TEST_DATABASE_URL` is set) and its own
//! tenant names, so tests never see each other.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use corral_http::{AppState, AuthConfig, Claims};
use corral_store::{PgOptions, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &[u8] = b"test-secret-that-is-long-enough";

/// The server default rate limit of test apps (requests per second per credential).
pub const TEST_RATE_LIMIT: u32 = 100_000;

pub struct TestApp {
    pub router: Router,
    /// The OpenAPI documents every response is checked against.
    pub contract: std::sync::Arc<crate::contract::ContractCache>,
    pub state: AppState,
    /// A tenant unique to this app.
    pub tenant: String,
    _dir: tempfile::TempDir,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no error code>")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert!(self.body["error"]["message"].is_string());
        assert!(self.body["error"]["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(self.header("content-type"), Some("application/json"));
        self
    }
}

/// A request under construction.
pub struct Req<'a> {
    app: &'a TestApp,
    builder: axum::http::request::Builder,
    body: Body,
}

impl Req<'_> {
    pub fn bearer(mut self, token: &str) -> Self {
        self.builder = self.builder.header("authorization", format!("Bearer {token}"));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.builder = self.builder.header("content-type", "application/json");
        self.body = Body::from(body.to_string());
        self
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = body.into();
        self
    }

    pub async fn send(self) -> TestResponse {
        let request = self.builder.body(self.body).expect("valid request");
        let (method, uri, request_headers) =
            (request.method().clone(), request.uri().clone(), request.headers().clone());
        let response = self.app.router.clone().oneshot(request).await.expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        // A schema change changes the tenant's document.
        if method != Method::GET && uri.path().starts_with("/api/v2/_schema/") {
            self.app.contract.invalidate();
        }
        let exchange = crate::contract::Exchange {
            method: &method,
            path: uri.path(),
            request_headers: &request_headers,
            status,
            response_headers: &headers,
            body: &body,
        };
        crate::contract::check(&self.app.contract, &self.app.router, exchange).await;
        TestResponse { status, headers, body }
    }
}

/// Webhooks of test apps: receivers on 127.0.0.1, short timeouts, retries due at once.
pub fn test_webhook_options() -> corral_http::WebhookOptions {
    corral_http::WebhookOptions {
        allow_private_targets: true,
        timeout: std::time::Duration::from_secs(2),
        backoff_scale: 0.0,
        poll: std::time::Duration::from_millis(50),
        extra_roots: Vec::new(),
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl TestApp {
    /// A fresh app on its own SQLite database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(AuthConfig::new(SECRET.to_vec(), None, None)).await
    }

    pub async fn spawn_with(auth: AuthConfig) -> TestApp {
        Self::spawn_full(auth, TEST_RATE_LIMIT, corral_http::EdgeOptions::default()).await
    }

    /// A fresh app whose server default rate limit is `per_second`.
    pub async fn spawn_with_rate_limit(auth: AuthConfig, per_second: u32) -> TestApp {
        Self::spawn_full(auth, per_second, corral_http::EdgeOptions::default()).await
    }

    /// A fresh app whose router has these edge limits.
    pub async fn spawn_edge(edge: corral_http::EdgeOptions) -> TestApp {
        Self::spawn_full(AuthConfig::new(SECRET.to_vec(), None, None), TEST_RATE_LIMIT, edge).await
    }

    async fn spawn_full(auth: AuthConfig, per_second: u32, edge: corral_http::EdgeOptions) -> TestApp {
        Self::spawn_webhooks_full(auth, per_second, edge, test_webhook_options()).await
    }

    /// A fresh app with these webhook settings.
    pub async fn spawn_with_webhooks(webhooks: corral_http::WebhookOptions) -> TestApp {
        let auth = AuthConfig::new(SECRET.to_vec(), None, None);
        Self::spawn_webhooks_full(auth, TEST_RATE_LIMIT, corral_http::EdgeOptions::default(), webhooks).await
    }

    async fn spawn_webhooks_full(
        auth: AuthConfig,
        per_second: u32,
        edge: corral_http::EdgeOptions,
        webhooks: corral_http::WebhookOptions,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = corral_store::testing::fresh_database_url(dir.path()).await.expect("test database");
        Self::spawn_on(auth, per_second, edge, webhooks, url, dir).await
    }

    /// Two apps (two servers) over one database, for the same tenant.
    pub async fn spawn_pair() -> (TestApp, TestApp) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = corral_store::testing::fresh_database_url(dir.path()).await.expect("test database");
        let auth = || AuthConfig::new(SECRET.to_vec(), None, None);
        let edge = corral_http::EdgeOptions::default;
        let hooks = test_webhook_options;
        let first = Self::spawn_on(auth(), TEST_RATE_LIMIT, edge(), hooks(), url.clone(), dir).await;
        let mut second =
            Self::spawn_on(auth(), TEST_RATE_LIMIT, edge(), hooks(), url, tempfile::tempdir().expect("temp dir")).await;
        second.tenant = first.tenant.clone();
        (first, second)
    }

    async fn spawn_on(
        auth: AuthConfig,
        per_second: u32,
        edge: corral_http::EdgeOptions,
        webhooks: corral_http::WebhookOptions,
        url: corral_store::DatabaseUrl,
        dir: tempfile::TempDir,
    ) -> TestApp {
        // Small pools: many tests run at once against one PostgreSQL.
        let pg = PgOptions { pool_size: 4, ..PgOptions::default() };
        let store = Store::open_with(&url, &pg).await.expect("open store");
        store.migrate().await.expect("migrate");
        // A server default far above what a test sends: every authenticated response carries
        // the rate-limit headers (checked against the document), and no test is limited
        // unless it sets a tenant limit.
        let state = AppState::with_rate_limit(store, auth, std::num::NonZeroU32::new(per_second))
            .with_webhook_options(webhooks);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TestApp {
            router: corral_http::router_with(state.clone(), edge),
            contract: Default::default(),
            state,
            tenant: format!("tenant-{n}"),
            _dir: dir,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req { app: self, builder: Request::builder().method(method).uri(path), body: Body::empty() }
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        self.request(Method::POST, path)
    }
    pub fn patch(&self, path: &str) -> Req<'_> {
        self.request(Method::PATCH, path)
    }
    pub fn put(&self, path: &str) -> Req<'_> {
        self.request(Method::PUT, path)
    }
    pub fn delete(&self, path: &str) -> Req<'_> {
        self.request(Method::DELETE, path)
    }

    /// Signs claims with the test secret.
    pub fn mint(&self, claims: Claims) -> String {
        self.state.auth().mint(claims)
    }

    /// A token for `tenant` with the given roles, scopes and app.
    pub fn token_for(&self, tenant: &str, sub: &str, roles: &[&str], scopes: &[&str], app: Option<&str>) -> String {
        self.mint(Claims {
            sub: sub.into(),
            tenant_id: tenant.into(),
            exp: corral_http::auth::unix_now() + 600,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
            app_id: app.map(str::to_owned),
            ..Default::default()
        })
    }

    /// A tenant_admin token for this app's tenant.
    pub fn admin(&self) -> String {
        self.token_for(&self.tenant, "admin-1", &["tenant_admin"], &[], None)
    }

    /// A `user` role token for this app's tenant.
    pub fn user(&self) -> String {
        self.token_for(&self.tenant, "user-1", &["user"], &[], None)
    }

    /// Creates an account as admin and returns its document.
    pub async fn create_account(&self, body: Value) -> Value {
        let r = self.post("/api/v1/crm/accounts").bearer(&self.admin()).json(body).send().await;
        r.assert_status(201);
        r.body
    }

    /// Adds a directory user and returns its v1 id.
    pub async fn add_user(&self, email: &str) -> String {
        let r =
            self.post("/api/admin/users").bearer(&self.admin()).json(serde_json::json!({"email": email})).send().await;
        r.assert_status(201);
        r.body["data"]["id"].as_str().unwrap().to_owned()
    }
}

/// A request straight to a router, without the contract check (for spawned tasks, which
/// cannot borrow a [`TestApp`]); returns the status and the JSON body.
pub async fn raw_send(router: &Router, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a method"))
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let request = match body {
        Some(b) => builder.header("content-type", "application/json").body(Body::from(b.to_string())),
        None => builder.body(Body::empty()),
    }
    .expect("valid request");
    let response = router.clone().oneshot(request).await.expect("router is infallible");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `GET path` straight to a router; panics unless it answers 200.
pub async fn raw_get(router: &Router, path: &str, token: &str) -> Value {
    let (status, body) = raw_send(router, "GET", path, token, None).await;
    assert_eq!(status, 200, "{body}");
    body
}
