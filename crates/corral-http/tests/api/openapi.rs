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
                .replace("{collection}", "accounts")
                .replace("{rt}", "account")
                .replace("{record_type}", "account")
                .replace("{name}", "domains")
                .replace("{id}", "0193aaaa-0000-7000-8000-000000000000")
                .replace("{item}", "acme.com")
                .replace("{target}", "0193aaaa-0000-7000-8000-000000000001")
                .replace("{option}", "gold");
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
