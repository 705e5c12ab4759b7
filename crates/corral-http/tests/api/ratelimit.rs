//! Rate limits: per credential (the server default) and per tenant (its setting), 429 with
//! Retry-After, the RateLimit headers, and the routes that are never limited.

use crate::helpers::{SECRET, TEST_RATE_LIMIT, TestApp, TestResponse};
use corral_http::AuthConfig;
use serde_json::json;
use std::time::Duration;

/// Sends `send` until it answers 429 (at most 50 times) and returns that answer. A limit of
/// one request a second is reached on the second request unless the machine stalls for a
/// second between two requests; trying a few times keeps the test independent of load.
async fn until_limited<F, Fut>(mut send: F) -> TestResponse
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResponse>,
{
    for _ in 0..50 {
        let r = send().await;
        if r.status.as_u16() == 429 {
            return r;
        }
        r.assert_status(200);
    }
    panic!("never rate limited");
}

fn assert_limited(r: &TestResponse, policy: &str, quota: u32) {
    r.assert_error(429, "rate_limited");
    let retry_after: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let limit = r.header("ratelimit").expect("RateLimit");
    assert!(limit.ends_with(&format!("\"{policy}\";r=0;t={retry_after}")), "{limit}");
    let policies = r.header("ratelimit-policy").expect("RateLimit-Policy");
    assert!(policies.contains(&format!("\"{policy}\";q={quota};w=1")), "{policies}");
}

async fn set_tenant_limit(app: &TestApp, limit: serde_json::Value) {
    app.state
        .store()
        .update_settings(&app.tenant.as_str().into(), &json!({"rate_limit_per_second": limit}))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_tenant_limit_comes_from_its_setting_and_answers_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    // Before: the server default, on every authenticated response, whatever its status.
    let r = app.get("/api/v1/crm/accounts").bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(
        r.header("ratelimit-policy"),
        Some(format!("\"credential\";q={TEST_RATE_LIMIT};w=1, \"tenant\";q={TEST_RATE_LIMIT};w=1").as_str())
    );
    let remaining = TEST_RATE_LIMIT - 1;
    assert_eq!(
        r.header("ratelimit"),
        Some(format!("\"credential\";r={remaining};t=1, \"tenant\";r={remaining};t=1").as_str())
    );
    let missing = app.get("/api/v1/crm/accounts/acc-00000000-0000-0000-0000-000000000000").bearer(&admin).send().await;
    missing.assert_error(404, "record_not_found");
    assert!(missing.header("ratelimit").is_some());
    let reader = app.token_for(&app.tenant, "reader", &[], &["accounts:read"], None);
    let forbidden = app.get("/api/admin/settings").bearer(&reader).send().await;
    forbidden.assert_error(403, "forbidden");
    assert!(forbidden.header("ratelimit-policy").is_some());
    // A failed authentication is not counted and reports nothing.
    let unauthenticated = app.get("/api/v1/crm/accounts").bearer("nope").send().await;
    unauthenticated.assert_error(401, "unauthenticated");
    assert!(unauthenticated.header("ratelimit").is_none());

    // The admin API sets the tenant's limit; through this instance it applies at once.
    let r = app.patch("/api/admin/settings").bearer(&admin).json(json!({"rate_limit_per_second": 1})).send().await;
    r.assert_status(200);
    let r = until_limited(|| app.get("/api/v1/crm/accounts").bearer(&admin).send()).await;
    assert_limited(&r, "tenant", 1);
    // The tenant's limit is shared by all its callers (the reader's own limit is far away)...
    let r = until_limited(|| app.get("/api/v1/crm/accounts").bearer(&reader).send()).await;
    assert_limited(&r, "tenant", 1);
    // ... and other tenants are not affected.
    let stranger = app.token_for("another-tenant", "admin", &["tenant_admin"], &[], None);
    app.get("/api/v1/crm/accounts").bearer(&stranger).send().await.assert_status(200);
    // After Retry-After, requests pass again.
    tokio::time::sleep(Duration::from_secs(r.header("retry-after").unwrap().parse().unwrap())).await;
    app.get("/api/v1/crm/accounts").bearer(&admin).send().await.assert_status(200);

    // A change made behind this instance's back (as through another instance) applies within
    // the settings cache's second.
    set_tenant_limit(&app, json!(null)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..10 {
        app.get("/api/v1/crm/accounts").bearer(&admin).send().await.assert_status(200);
    }
    set_tenant_limit(&app, json!(1)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = until_limited(|| app.get("/api/v1/crm/accounts").bearer(&admin).send()).await;
    assert_limited(&r, "tenant", 1);
}

#[tokio::test]
async fn each_credential_is_limited_to_the_server_default() {
    let app = TestApp::spawn_with_rate_limit(AuthConfig::new(SECRET.to_vec(), None, None), 1).await;
    // The tenant as a whole may do more than one credential.
    set_tenant_limit(&app, json!(1000)).await;
    let alice = app.token_for(&app.tenant, "alice", &["user"], &[], None);
    let bob = app.token_for(&app.tenant, "bob", &["user"], &[], None);
    let r = until_limited(|| app.get("/api/v1/crm/accounts").bearer(&alice).send()).await;
    assert_limited(&r, "credential", 1);
    assert_eq!(r.header("ratelimit-policy"), Some("\"credential\";q=1;w=1"), "the tenant was not counted");
    // Another subject of the same tenant has its own bucket.
    let r = app.get("/api/v1/crm/accounts").bearer(&bob).send().await;
    r.assert_status(200);
    assert_eq!(r.header("ratelimit-policy"), Some("\"credential\";q=1;w=1, \"tenant\";q=1000;w=1"));
    // (The tenant's bucket refills a request every millisecond: what is left depends on timing.)
    assert!(
        r.header("ratelimit").unwrap().starts_with("\"credential\";r=0;t=1, \"tenant\";r=9"),
        "{:?}",
        r.header("ratelimit")
    );
}

#[tokio::test]
async fn an_api_key_and_the_tokens_exchanged_for_it_share_one_limit() {
    let app = TestApp::spawn_with_rate_limit(AuthConfig::new(SECRET.to_vec(), None, None), 1).await;
    set_tenant_limit(&app, json!(1000)).await;
    let new = corral_http::auth::generate_key();
    app.state
        .store()
        .insert_api_key(&corral_store::ApiKey {
            id: new.id.clone(),
            tenant_id: app.tenant.as_str().into(),
            app: None,
            name: None,
            scopes: vec!["accounts:read".into()],
            secret_hash: new.secret_hash,
            created_at: corral_core::Timestamp::now(),
            created_by: "test".into(),
            expires_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();
    // The exchange itself is not limited (the key in its body is the credential).
    let mut token = String::new();
    for _ in 0..3 {
        let r = app
            .post("/api/v1/auth/token")
            .json(json!({"grant_type": "client_credentials", "client_secret": new.key}))
            .send()
            .await;
        r.assert_status(200);
        assert!(r.header("ratelimit").is_none());
        token = r.body["access_token"].as_str().unwrap().to_owned();
    }
    let r = until_limited(|| app.get("/api/v1/crm/accounts").header("x-api-key", &new.key).send()).await;
    assert_limited(&r, "credential", 1);
    assert_eq!(app.state.rate_limits().tracked_keys(), (1, 1));
    // The token's requests count in the key's bucket: no second credential appears.
    let r = until_limited(|| app.get("/api/v1/crm/accounts").bearer(&token).send()).await;
    assert_limited(&r, "credential", 1);
    assert_eq!(app.state.rate_limits().tracked_keys(), (1, 1));
}

#[tokio::test]
async fn unauthenticated_routes_are_never_limited() {
    let app = TestApp::spawn_with_rate_limit(AuthConfig::new(SECRET.to_vec(), None, None), 1).await;
    for _ in 0..5 {
        for path in ["/health", "/ready", "/api/v1/health", "/api/v2/health", "/openapi.json", "/docs"] {
            let r = app.get(path).send().await;
            r.assert_status(200);
            assert!(r.header("ratelimit").is_none() && r.header("ratelimit-policy").is_none(), "{path}");
        }
    }
    // /openapi.json with credentials is an authenticated request, limited like any other.
    let admin = app.admin();
    let r = until_limited(|| app.get("/openapi.json").bearer(&admin).send()).await;
    assert_limited(&r, "credential", 1);
    // Unknown routes answer 404 without counting.
    let r = app.get("/api/v1/nowhere").bearer(&admin).send().await;
    r.assert_error(404, "route_not_found");
    assert!(r.header("ratelimit").is_none());
}
