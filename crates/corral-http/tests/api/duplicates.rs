//! `POST /api/v2/{account|contact}/_duplicates`: candidate groups with scores and reasons,
//! scoped by `_query` filters and the caller's app, paged by cursor.

use crate::helpers::TestApp;
use serde_json::{Value, json};

async fn duplicates(app: &TestApp, rt: &str, body: Value) -> crate::helpers::TestResponse {
    app.post(&format!("/api/v2/{rt}/_duplicates")).bearer(&app.admin()).json(body).send().await
}

/// Each group as (sorted display names, reasons, score).
fn groups(body: &Value) -> Vec<(Vec<String>, Vec<String>, f64)> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut names: Vec<String> = g["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["attributes"]["display_name"]["value"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            let reasons = g["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
            (names, reasons, g["score"].as_f64().unwrap())
        })
        .collect()
}

async fn seed(app: &TestApp) {
    for body in [
        json!({"name": "Acme Inc", "phone": "+1 (555) 010-2030", "industry": "software"}),
        json!({"name": "ACME, Inc.", "industry": "software"}),
        json!({"name": "Globex GmbH", "domain": "globex.com", "industry": "hardware"}),
        json!({"name": "Globex Corporation", "website": "https://www.globex.com/about", "industry": "hardware"}),
        json!({"name": "Initrode", "phone": "555.010.9999", "industry": "retail"}),
        json!({"name": "Umbrella Health", "phone": "(555) 010-9999", "industry": "retail"}),
        json!({"name": "Hooli", "industry": "software"}),
    ] {
        app.create_account(body).await;
    }
}

#[tokio::test]
async fn duplicates_are_grouped_with_scores_and_reasons() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let r = duplicates(&app, "account", json!({})).await;
    r.assert_status(200);
    assert_eq!(r.body["next_cursor"], Value::Null);
    let mut found = groups(&r.body);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found,
        vec![
            (s(&["ACME, Inc.", "Acme Inc"]), s(&["same_name", "same_name_without_legal_suffix"]), 0.98),
            (s(&["Globex Corporation", "Globex GmbH"]), s(&["same_name_without_legal_suffix", "same_domain"]), 0.94),
            (s(&["Initrode", "Umbrella Health"]), s(&["same_phone"]), 0.6),
        ]
    );
    // Records are rendered as `_query` renders them, oldest first.
    let acme = r.body["data"].as_array().unwrap().iter().find(|g| g["score"] == 0.98).unwrap();
    assert_eq!(acme["records"][0]["record_type"], "account");
    assert_eq!(acme["records"][0]["attributes"]["display_name"]["value"], "Acme Inc");
}

#[tokio::test]
async fn duplicates_are_scoped_by_filters_min_score_and_fields() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let software = json!([{"field": "industry", "operator": "eq", "value": "software"}]);
    let r = duplicates(&app, "account", json!({"filters": software, "fields": ["display_name"]})).await;
    r.assert_status(200);
    let found = groups(&r.body);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, ["ACME, Inc.", "Acme Inc"]);
    assert_eq!(r.body["data"][0]["records"][0]["attributes"].as_object().unwrap().len(), 1);
    // A record outside the filter leaves its block with one record: no group.
    let only_initrode = json!([{"field": "display_name", "operator": "ne", "value": "Umbrella Health"}]);
    let r = duplicates(&app, "account", json!({"filters": only_initrode})).await;
    assert!(groups(&r.body).iter().all(|g| !g.0.contains(&"Initrode".to_owned())));
    let r = duplicates(&app, "account", json!({"min_score": 0.9})).await;
    let scores: Vec<f64> = groups(&r.body).iter().map(|g| g.2).collect();
    assert_eq!(scores.len(), 2);
    assert!(scores.iter().all(|s| *s >= 0.9));
}

#[tokio::test]
async fn duplicates_page_by_cursor() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let mut seen = Vec::new();
    let mut r = duplicates(&app, "account", json!({"limit": 1})).await;
    loop {
        r.assert_status(200);
        let page = groups(&r.body);
        assert!(page.len() <= 1);
        seen.extend(page.into_iter().map(|g| g.0));
        let Some(cursor) = r.body["next_cursor"].as_str().map(str::to_owned) else { break };
        // The cursor alone continues the search; with the same limit it is accepted too.
        r = duplicates(&app, "account", json!({"cursor": cursor, "limit": 1})).await;
    }
    seen.sort();
    assert_eq!(seen.len(), 3);
    seen.dedup();
    assert_eq!(seen.len(), 3, "no group is reported twice");
    // A cursor with another minimum score, or a `_query` cursor, is refused.
    let first = duplicates(&app, "account", json!({"limit": 1, "min_score": 0.5})).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    duplicates(&app, "account", json!({"cursor": cursor, "min_score": 0.7})).await.assert_error(400, "invalid_cursor");
    let query = app.post("/api/v2/account/_query").bearer(&app.admin()).json(json!({"limit": 1})).send().await;
    let query_cursor = query.body["next_cursor"].as_str().unwrap().to_owned();
    duplicates(&app, "account", json!({"cursor": query_cursor})).await.assert_error(400, "invalid_cursor");
}

#[tokio::test]
async fn archived_records_and_other_apps_are_out_of_scope() {
    let app = TestApp::spawn().await;
    let a = app.create_account(json!({"name": "Soylent"})).await;
    app.create_account(json!({"name": "Soylent Ltd"})).await;
    assert_eq!(groups(&duplicates(&app, "account", json!({})).await.body).len(), 1);
    let id = a["id"].as_str().unwrap();
    app.delete(&format!("/api/v1/crm/accounts/{id}")).bearer(&app.admin()).send().await.assert_status(200);
    assert!(groups(&duplicates(&app, "account", json!({})).await.body).is_empty());
    // An app-scoped caller sees only its app's records: one of the pair is not enough.
    let token = app.token_for(&app.tenant, "integration", &["user"], &[], Some("crm-sync"));
    app.post("/api/v2/account")
        .bearer(&token)
        .json(json!({"attributes": {"display_name": "Vandelay"}}))
        .send()
        .await
        .assert_status(201);
    app.create_account(json!({"name": "Vandelay Inc"})).await;
    app.create_account(json!({"name": "Vandelay"})).await;
    let scoped = app.post("/api/v2/account/_duplicates").bearer(&token).json(json!({})).send().await;
    scoped.assert_status(200);
    assert!(groups(&scoped.body).is_empty());
    let all = groups(&duplicates(&app, "account", json!({})).await.body);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0.len(), 3);
}

#[tokio::test]
async fn contacts_duplicate_by_name_at_account_and_phone() {
    let app = TestApp::spawn().await;
    let acme = app.create_account(json!({"name": "Acme"})).await;
    let account = acme["id"].as_str().unwrap();
    for (first, phone) in [("Jane", "+1 555 010 0001"), ("jane", "+1 555 010 0002"), ("Mark", "+1 555 010 0003")] {
        app.post("/api/v1/crm/contacts")
            .bearer(&app.admin())
            .json(json!({"first_name": first, "last_name": "Doe", "account_id": account, "phone": phone}))
            .send()
            .await
            .assert_status(201);
    }
    let r = duplicates(&app, "contact", json!({})).await;
    r.assert_status(200);
    let found = groups(&r.body);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, ["same_name_at_account"]);
}

#[tokio::test]
async fn duplicates_refuse_bad_bodies() {
    let app = TestApp::spawn().await;
    duplicates(&app, "account", json!({"sort": []})).await.assert_error(422, "unknown_field");
    duplicates(&app, "account", json!({"min_score": 2})).await.assert_error(422, "field_value_invalid");
    duplicates(&app, "account", json!({"limit": 0})).await.assert_error(422, "field_value_invalid");
    duplicates(&app, "account", json!({"cursor": "nope"})).await.assert_error(400, "invalid_cursor");
    duplicates(&app, "account", json!({"fields": ["nope"]})).await.assert_error(422, "field_value_invalid");
    duplicates(&app, "widget", json!({})).await.assert_error(404, "unknown_record_type");
}
