//! `POST /api/v2/{type}/_export`: every matching record as one flat row, NDJSON or CSV, in id
//! order, across pages, scoped like every read.

use crate::helpers::TestApp;
use serde_json::{Value, json};

async fn export(app: &TestApp, token: &str, rt: &str, body: Value) -> (String, Option<String>) {
    let r = app.post(&format!("/api/v2/{rt}/_export")).bearer(token).json(body).send().await;
    r.assert_status(200);
    let text = match &r.body {
        Value::Null => String::new(), // an empty body
        other => other.as_str().unwrap_or_else(|| panic!("a text body, got {other}")).to_owned(),
    };
    (text, r.header("content-type").map(str::to_owned))
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

async fn bulk_create(app: &TestApp, n: usize, name: impl Fn(usize) -> String) {
    let body: Vec<String> = (0..n)
        .map(|i| json!({"op": "create", "attributes": {"display_name": name(i), "industry": "software"}}).to_string())
        .collect();
    let r = app
        .post("/api/v2/account/_bulk")
        .bearer(&app.admin())
        .raw("application/x-ndjson", body.join("\n"))
        .send()
        .await;
    r.assert_status(200);
    let text = r.body.as_str().unwrap();
    assert!(text.lines().all(|l| l.contains("\"status\":201")), "{text}");
}

#[tokio::test]
async fn ndjson_and_csv_rows_carry_plain_values_and_custom_attributes() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    app.post("/api/v2/_schema/account/attributes")
        .bearer(&admin)
        .json(json!({"api_name": "tier", "value_type": "select", "options": [{"api_name": "gold"}]}))
        .send()
        .await
        .assert_status(201);
    let r = app
        .post("/api/v2/account/_assert")
        .bearer(&admin)
        .json(json!({"match": {"domain_name": "acme.com"}, "attributes": {"display_name": "Acme, \"Inc\"",
            "tags": ["vip", "partner"], "employee_count": 12, "estimated_annual_revenue": "1500.5", "tier": "gold",
            "description": "line one\nline two"}}))
        .send()
        .await;
    r.assert_status(201);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    app.create_account(json!({"name": "Bare"})).await;

    let (text, media) = export(&app, &admin, "account", json!({})).await;
    assert_eq!(media.as_deref(), Some("application/x-ndjson"));
    let rows = lines(&text);
    assert_eq!(rows.len(), 2, "{text}");
    let acme = &rows[0];
    assert_eq!(acme["id"], id.as_str());
    assert_eq!(acme["domain"], "acme.com");
    assert_eq!(acme["name"], "Acme, \"Inc\"");
    assert_eq!(acme["tags"], json!(["vip", "partner"]));
    assert_eq!(acme["employee_count"], 12);
    assert_eq!(acme["annual_revenue"], "1500.5");
    assert_eq!(acme["tier"], "gold");
    assert_eq!(acme["description"], "line one\nline two");
    // Unset values are left out.
    assert_eq!(rows[1]["name"], "Bare");
    assert!(rows[1].get("domain").is_none() && rows[1].get("tags").is_none(), "{}", rows[1]);

    let (csv, media) = export(&app, &admin, "account", json!({"format": "csv"})).await;
    assert_eq!(media.as_deref(), Some("text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..2], ["id", "domain"]);
    assert_eq!(header.last().map(String::as_str), Some("tier"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    let cell = |row: usize, name: &str| records[row][header.iter().position(|h| h == name).unwrap()].to_owned();
    assert_eq!(cell(0, "name"), "Acme, \"Inc\"");
    assert_eq!(cell(0, "tags"), "vip;partner");
    assert_eq!(cell(0, "description"), "line one\nline two");
    assert_eq!(cell(1, "domain"), "");
}

#[tokio::test]
async fn every_record_comes_once_in_id_order_across_pages_and_filters_apply() {
    let app = TestApp::spawn().await;
    let n = corral_http::routes::export::PAGE + 37;
    bulk_create(&app, n, |i| format!("Account {i:05}")).await;
    let admin = app.admin();
    let (text, _) = export(&app, &admin, "account", json!({})).await;
    let rows = lines(&text);
    assert_eq!(rows.len(), n);
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "ids ascending, each once");

    let filters = json!([{"field": "display_name", "operator": "contains", "value": "0001"}]);
    let (text, _) = export(&app, &admin, "account", json!({"filters": filters})).await;
    let names: Vec<String> = lines(&text).iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 11, "{names:?}"); // 00001 and 00010-00019
    assert!(names.iter().all(|n| n.contains("0001")), "{names:?}");

    // Archived records only with include_archived.
    let victim = ids[0];
    app.delete(&format!("/api/v2/account/{victim}")).bearer(&admin).send().await.assert_status(204);
    let (text, _) = export(&app, &admin, "account", json!({})).await;
    assert_eq!(lines(&text).len(), n - 1);
    let (text, _) = export(&app, &admin, "account", json!({"include_archived": true})).await;
    assert_eq!(lines(&text).len(), n);
}

#[tokio::test]
async fn bad_bodies_are_refused_and_reads_are_scoped() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    app.post("/api/v2/account/_export")
        .bearer(&admin)
        .json(json!({"format": "xml"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post("/api/v2/account/_export")
        .bearer(&admin)
        .json(json!({"limit": 5}))
        .send()
        .await
        .assert_error(422, "unknown_field");
    app.post("/api/v2/account/_export")
        .bearer(&admin)
        .json(json!({"filters": [{"field": "nope", "operator": "eq", "value": 1}]}))
        .send()
        .await
        .assert_error(422, "invalid_filter_field");
    app.post("/api/v2/user/_export").bearer(&admin).json(json!({})).send().await.assert_status(405);
    app.post("/api/v2/account/_export").json(json!({})).send().await.assert_status(401);

    // Another tenant and another app see none of these rows.
    app.create_account(json!({"name": "Mine"})).await;
    let other = app.token_for("other-tenant", "x", &["tenant_admin"], &[], None);
    let (text, _) = export(&app, &other, "account", json!({})).await;
    assert_eq!(text, "");
    let scoped = app.token_for(&app.tenant, "x", &["tenant_admin"], &[], Some("app-2"));
    let (text, _) = export(&app, &scoped, "account", json!({"format": "csv"})).await;
    assert_eq!(text.lines().count(), 1, "only the header row: {text}");
}
