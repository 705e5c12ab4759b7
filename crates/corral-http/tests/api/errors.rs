//! Client mistakes always get the docs/CONTRACT.md §9 error body with a stable code, never a 500.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn malformed_bodies_are_400_415_and_413() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let r = app.post("/api/v1/crm/accounts").bearer(&admin).raw("application/json", "{\"name\": ").send().await;
    r.assert_error(400, "invalid_json");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("line 1"));
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .raw("application/json", "")
        .send()
        .await
        .assert_error(400, "invalid_json");
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .raw("application/json", "[1,2]")
        .send()
        .await
        .assert_error(400, "invalid_json");
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .raw("text/plain", "{}")
        .send()
        .await
        .assert_error(415, "unsupported_media_type");
    app.post("/api/v1/crm/accounts").bearer(&admin).send().await.assert_error(415, "unsupported_media_type");
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .raw("application/json; charset=utf-8", "{\"name\":\"ok\"}")
        .send()
        .await
        .assert_status(201);
    let big = format!("{{\"name\": \"x\", \"description\": \"{}\"}}", "a".repeat(1024 * 1024 + 10));
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .raw("application/json", big)
        .send()
        .await
        .assert_error(413, "payload_too_large");
    // Exactly at the limit of the field but under 1 MiB: accepted.
    let long = "b".repeat(100_000);
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .json(json!({"name": "long", "description": long}))
        .send()
        .await
        .assert_status(201);
    let too_long = "b".repeat(100_001);
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .json(json!({"name": "long", "description": too_long}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_body() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/crm/nothing").bearer(&app.admin()).send().await.assert_error(404, "route_not_found");
    app.get("/").send().await.assert_error(404, "route_not_found");
    let r = app.delete("/api/v1/crm/accounts").bearer(&app.admin()).send().await;
    r.assert_error(405, "method_not_allowed");
    let allow = r.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let r = app.post("/api/v1/crm/accounts/acc-x").bearer(&app.admin()).json(json!({})).send().await;
    r.assert_error(405, "method_not_allowed");
    assert!(r.header("allow").unwrap().contains("PATCH"));
}

#[tokio::test]
async fn unknown_query_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"name": "A"})).await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    app.get(&format!("{path}?expand=owner"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
    app.delete(&format!("{path}?force=1"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let r = app.get("/health").send().await;
    r.assert_status(200);
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    let r = app.get("/health").header("x-request-id", "trace-me-42").send().await;
    assert_eq!(r.header("x-request-id"), Some("trace-me-42"));
    let r = app.get("/api/v1/crm/accounts").header("x-request-id", "abc-1").send().await;
    assert_eq!(r.header("x-request-id"), Some("abc-1"));
    assert_eq!(r.body["error"]["request_id"], "abc-1");
}

#[tokio::test]
async fn health_routes_answer_without_auth() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health").send().await.body, json!({"status": "ok"}));
    assert_eq!(app.get("/ready").send().await.body, json!({"status": "ready"}));
    assert_eq!(app.get("/api/v1/health").send().await.body, json!({"status": "ok", "database": "connected"}));
    assert_eq!(app.get("/api/v2/health").send().await.body, json!({"data": {"status": "healthy"}}));
}

#[tokio::test]
async fn nul_characters_are_refused_on_every_database() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let r = app.post("/api/v1/crm/accounts").bearer(&admin).json(json!({"name": "a\u{0}b"})).send().await;
    r.assert_error(422, "field_value_invalid");
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .json(json!({"name": "a", "tags": ["x\u{0}"]}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.get("/api/v1/crm/accounts?industry=a%00b")
        .bearer(&admin)
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
    app.post("/api/admin/users")
        .bearer(&admin)
        .json(json!({"email": "a@b.com", "display_name": "x\u{0}"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.delete("/api/admin/api-keys/ab%00cd").bearer(&admin).send().await.assert_error(404, "record_not_found");
    app.get("/api/v1/crm/accounts")
        .header("x-api-key", "crl_ab-cd_secret")
        .send()
        .await
        .assert_error(401, "unauthenticated");
    let r = app
        .post("/api/v1/auth/token")
        .json(json!({"grant_type": "client_credentials", "client_id": "a\u{0}", "client_secret": "x"}))
        .send()
        .await;
    r.assert_error(401, "unauthenticated");
    let token = app.token_for("ten\u{0}ant", "x", &["tenant_admin"], &[], None);
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_error(401, "unauthenticated");
}
