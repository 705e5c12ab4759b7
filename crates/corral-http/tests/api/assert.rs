//! `_assert`: create-or-update by match keys, atomically.

use crate::helpers::TestApp;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn assert_creates_then_updates_by_normalised_keys() {
    let app = TestApp::spawn().await;
    let post = |body: serde_json::Value| app.post("/api/v2/account/_assert").bearer(&app.admin()).json(body).send();
    let r = post(json!({"match": {"domain_name": "https://www.Acme.com/"}, "attributes": {"display_name": "Acme", "industry": "software"}})).await;
    r.assert_status(201);
    assert_eq!(r.body["meta"]["action"], "created");
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["data"]["attributes"]["domains"][0]["value"]["domain_name"], "acme.com");
    let r = post(json!({"match": {"domain_name": "ACME.com"}, "attributes": {"industry": "hardware"}})).await;
    r.assert_status(200);
    assert_eq!(r.body["meta"]["action"], "updated");
    assert_eq!(r.body["data"]["id"], id.as_str());
    assert_eq!(r.body["data"]["attributes"]["industry"]["value"], "hardware");
    assert_eq!(r.body["data"]["attributes"]["display_name"]["value"], "Acme");
    // Several keys agreeing: update; disagreeing: ambiguous.
    post(json!({"match": {"domain_name": "acme.com", "id": id}, "attributes": {}})).await.assert_status(200);
    let other = post(json!({"match": {"domain_name": "globex.com"}, "attributes": {}})).await;
    let r = post(json!({"match": {"domain_name": "acme.com", "id": other.body["data"]["id"]}, "attributes": {}})).await;
    r.assert_error(409, "ambiguous_match");
    assert_eq!(r.body["error"]["details"]["candidate_ids"].as_array().unwrap().len(), 2);
    post(json!({"match": {"name": "Acme"}, "attributes": {}})).await.assert_error(422, "invalid_matching_field");
    post(json!({"match": {}, "attributes": {}})).await.assert_error(422, "field_required_missing");
    post(json!({"match": {"domain_name": "localhost"}})).await.assert_error(422, "field_value_invalid");
    post(json!({"match": {"id": "0193aaaa-0000-7000-8000-000000000000"}})).await.assert_error(404, "record_not_found");
    // Archived records are not matched: asserting again creates a new one.
    app.delete(&format!("/api/v2/account/{id}")).bearer(&app.admin()).send().await.assert_status(204);
    let r = post(json!({"match": {"domain_name": "acme.com"}, "attributes": {"display_name": "Acme 2"}})).await;
    r.assert_status(201);
    assert_ne!(r.body["data"]["id"], id.as_str());
    // Contacts match on any of their emails.
    let r = app
        .post("/api/v2/contact/_assert")
        .bearer(&app.admin())
        .json(json!({"match": {"primary_email": "Jane@Acme.com"}, "attributes": {"first_name": "Jane"}}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.body["data"]["attributes"]["primary_email"]["value"], "Jane@acme.com");
    let r = app
        .post("/api/v2/contact/_assert")
        .bearer(&app.admin())
        .json(json!({"match": {"contact_emails": "jane@ACME.com"}, "attributes": {"last_name": "Doe"}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["attributes"]["display_name"]["value"], "Jane Doe");
    app.post("/api/v2/contact/_assert")
        .bearer(&app.admin())
        .json(json!({"match": {"domain_name": "acme.com"}}))
        .send()
        .await
        .assert_error(422, "invalid_matching_field");
    // App scope: an app does not match another app's record, and cannot take its key.
    let sync = app.token_for(&app.tenant, "svc", &["app_service_account"], &["accounts:write"], Some("sync"));
    let r = app
        .post("/api/v2/account/_assert")
        .bearer(&sync)
        .json(json!({"match": {"domain_name": "globex.com"}}))
        .send()
        .await;
    r.assert_error(409, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_asserts_on_a_new_key_create_exactly_one_record() {
    let app = Arc::new(TestApp::spawn().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let r = app
                .post("/api/v2/account/_assert")
                .bearer(&app.admin())
                .json(json!({"match": {"domain_name": "race.example"}, "attributes": {"description": format!("writer {i}")}}))
                .send()
                .await;
            (r.status.as_u16(), r.body["data"]["id"].as_str().map(str::to_owned))
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 15, "{results:?}");
    let ids: std::collections::HashSet<_> = results.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1);
    let r = app
        .post("/api/v2/account/_query")
        .bearer(&app.admin())
        .json(json!({"filters": [{"field": "domains", "operator": "eq", "value": "race.example"}], "count": "exact"}))
        .send()
        .await;
    assert_eq!(r.body["meta"]["total"], 1);
}
