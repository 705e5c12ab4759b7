//! The OpenAPI document: committed copy in sync, every operation routed, ids unique.

use crate::helpers::TestApp;
use axum::http::Method;
use std::collections::HashSet;

#[test]
fn committed_openapi_json_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi.json is committed at the repository root");
    let generated = serde_json::to_string_pretty(&corral_http::openapi()).unwrap() + "\n";
    assert!(
        committed == generated,
        "openapi.json is stale: regenerate it with `cargo run -p corral -- openapi > openapi.json`"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_uniquely_named() {
    let app = TestApp::spawn().await;
    let doc = corral_http::openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = HashSet::new();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "duplicate operationId at {method} {path}"
            );
            assert!(
                op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
            );
            // Fill path parameters with plausible values; the route must exist (no 404
            // route_not_found, no 405), whatever else the request gets wrong.
            let concrete = path
                .replace("{name}", "seats")
                .replace("{id}", "0193aaaa-0000-7000-8000-000000000000")
                .replace("{domain_name}", "acme.com")
                .replace("{item_id}", "0193aaaa-0000-7000-8000-000000000002")
                .replace("{target}", "0193aaaa-0000-7000-8000-000000000001")
                .replace("{option}", "gold")
                .replace("{file}", "docs.css");
            assert!(!concrete.contains('{'), "{path}: a path parameter this test does not fill");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app.request(m, &concrete).bearer(&app.admin()).json(serde_json::json!({})).send().await;
            assert!(
                r.code() != "route_not_found" && r.status != 405,
                "{method} {path} is documented but not routed: {}",
                r.body
            );
        }
    }
    assert!(operations >= 40, "{operations} operations");
    // And the document is served.
    let r = app.get("/openapi.json").send().await;
    r.assert_status(200);
    assert_eq!(r.body, doc);
}

#[tokio::test]
async fn an_authenticated_caller_gets_its_tenants_document() {
    let app = TestApp::spawn().await;
    let base = app.get("/openapi.json").send().await.body;
    let r = app
        .post("/api/v2/_schema/account/attributes")
        .bearer(&app.admin())
        .json(serde_json::json!({"api_name": "seats", "value_type": "number", "is_required_on_create": true}))
        .send()
        .await;
    r.assert_status(201);
    let r = app
        .post("/api/v2/_schema/contact/attributes")
        .bearer(&app.admin())
        .json(serde_json::json!({"api_name": "tier", "value_type": "select", "options": [{"api_name": "gold"}, {"api_name": "silver"}]}))
        .send()
        .await;
    r.assert_status(201);
    let tenant = app.get("/openapi.json").bearer(&app.admin()).send().await.body;
    let schemas = &tenant["components"]["schemas"];
    // v2: typed envelope, write value, filter field, sort key; v1: custom_fields.
    assert_eq!(schemas["AccountAttributes"]["properties"]["seats"]["$ref"], "#/components/schemas/NumberEnvelope");
    assert_eq!(schemas["NumberEnvelope"]["properties"]["value_type"]["enum"], serde_json::json!(["number"]));
    assert!(
        schemas["AccountCreate"]["properties"]["attributes"]["allOf"][1]["required"]
            .as_array()
            .unwrap()
            .contains(&"seats".into())
    );
    assert!(schemas["AccountV1"]["properties"]["custom_fields"]["properties"]["seats"].is_object());
    assert!(
        schemas["AccountQuery"]["properties"]["sort"]["items"]["properties"]["field"]["enum"]
            .as_array()
            .unwrap()
            .contains(&"seats".into())
    );
    let tier = &schemas["ContactAttributes"]["properties"]["tier"]["properties"]["value"];
    assert!(tier.to_string().contains("display_value"), "{tier}");
    assert!(schemas["ContactWriteAttributes"].to_string().contains("\"silver\""));
    let v1_list = &tenant["paths"]["/api/v1/crm/accounts"]["get"]["parameters"];
    assert!(v1_list.as_array().unwrap().iter().any(|p| p["name"] == "custom_fields.seats[gte]"));
    // Anonymous callers still get the base document, which is the committed one.
    assert_eq!(app.get("/openapi.json").send().await.body, base);
    assert!(!base.to_string().contains("seats"));
    // A bad credential is refused rather than silently answered with the base document.
    app.get("/openapi.json").bearer("nope").send().await.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_not_modified() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(serde_json::json!({"name": "Acme"})).await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    let r = app.get(&path).bearer(&app.admin()).header("if-none-match", "\"1\"").send().await;
    r.assert_status(304);
    assert_eq!(r.body, serde_json::Value::Null);
    assert_eq!(r.header("etag"), Some("\"1\""));
    app.get(&path).bearer(&app.admin()).header("if-none-match", "\"0\"").send().await.assert_status(200);
    app.patch(&path).bearer(&app.admin()).json(serde_json::json!({"industry": "x"})).send().await.assert_status(200);
    let r = app.get(&path).bearer(&app.admin()).header("if-none-match", "\"1\"").send().await;
    r.assert_status(200);
    assert_eq!(r.body["industry"], "x");
    let v2 = format!("/api/v2/account/{}", doc["id"].as_str().unwrap().trim_start_matches("acc-"));
    app.get(&v2).bearer(&app.admin()).header("if-none-match", "W/\"2\"").send().await.assert_status(304);
}
