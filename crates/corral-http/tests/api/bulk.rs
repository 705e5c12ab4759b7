//! `POST /api/v2/{type}/_bulk`: NDJSON lines in, one result per line out, in order; a bad line
//! never fails its neighbours; each line answers as the single call would.

use crate::helpers::TestApp;
use serde_json::{Value, json};

/// The results of a bulk call, one parsed JSON value per line.
fn results(body: &Value) -> Vec<Value> {
    body.as_str()
        .unwrap_or_else(|| panic!("an NDJSON body, got {body}"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("each result line is JSON"))
        .collect()
}

async fn bulk(app: &TestApp, rt: &str, lines: &[String]) -> Vec<Value> {
    let body = lines.join("\n");
    let r =
        app.post(&format!("/api/v2/{rt}/_bulk")).bearer(&app.admin()).raw("application/x-ndjson", body).send().await;
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    results(&r.body)
}

async fn count(app: &TestApp, rt: &str) -> usize {
    let r = app.post(&format!("/api/v2/{rt}/_query")).bearer(&app.admin()).json(json!({"limit": 200})).send().await;
    r.assert_status(200);
    r.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn each_line_answers_as_its_single_call_and_bad_lines_fail_alone() {
    let app = TestApp::spawn().await;
    let lines = vec![
        json!({"op": "create", "attributes": {"display_name": "Acme", "industry": "software"}}).to_string(),
        // Missing name: the single create answers 422 field_required_missing on display_name.
        json!({"op": "create", "attributes": {"industry": "software"}}).to_string(),
        String::new(), // blank lines count but get no result
        json!({"op": "assert", "match": {"domain_name": "globex.com"}, "attributes": {"display_name": "Globex"}})
            .to_string(),
        "{not json".to_owned(),
        json!({"op": "delete"}).to_string(),
        json!({"attributes": {"display_name": "no op"}}).to_string(),
        json!({"op": "assert", "match": {"name": "x"}, "attributes": {}}).to_string(),
        json!({"op": "assert", "match": {"domain_name": "GLOBEX.com"}, "attributes": {"industry": "hardware"}})
            .to_string(),
        "[1, 2]".to_owned(),
        json!({"op": "create", "attributes": {"display_name": "Last"}}).to_string(),
    ];
    let out = bulk(&app, "account", &lines).await;
    let summary: Vec<(u64, u64)> =
        out.iter().map(|r| (r["line"].as_u64().unwrap(), r["status"].as_u64().unwrap())).collect();
    assert_eq!(
        summary,
        [(1, 201), (2, 422), (4, 201), (5, 400), (6, 422), (7, 422), (8, 422), (9, 200), (10, 422), (11, 201)]
    );
    assert_eq!(out[0]["action"], "created");
    assert_eq!(out[1]["error"]["code"], "field_required_missing");
    assert_eq!(out[1]["error"]["details"]["field"], "display_name");
    assert_eq!(out[2]["action"], "created");
    assert_eq!(out[3]["error"]["code"], "invalid_json");
    assert_eq!(out[4]["error"]["code"], "field_value_invalid");
    assert_eq!(out[5]["error"]["code"], "field_required_missing");
    assert_eq!(out[6]["error"]["code"], "invalid_matching_field");
    assert_eq!(out[7]["action"], "updated");
    assert_eq!(out[7]["id"], out[2]["id"]);
    assert!(out[3]["error"]["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    // The same lines through the single calls give the same statuses and codes.
    let single = app
        .post("/api/v2/account")
        .bearer(&app.admin())
        .json(json!({"attributes": {"industry": "software"}}))
        .send()
        .await;
    single.assert_error(422, "field_required_missing");
    assert_eq!(single.body["error"]["details"], out[1]["error"]["details"]);
    // Only the good lines were written.
    assert_eq!(count(&app, "account").await, 3);
    let r = app.get(&format!("/api/v2/account/{}", out[2]["id"].as_str().unwrap())).bearer(&app.admin()).send().await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["attributes"]["industry"]["value"], "hardware");
}

#[tokio::test]
async fn a_line_failing_in_the_database_is_undone_alone() {
    let app = TestApp::spawn().await;
    // Lines 2 and 4 take an email line 1 holds: the store inserts the contact, then finds the
    // email taken (409) in the same transaction. Its savepoint undoes that insert alone.
    let lines: Vec<String> = [
        json!({"op": "create", "attributes": {"first_name": "A", "primary_email": "a@x.com"}}),
        json!({"op": "create", "attributes": {"first_name": "B", "primary_email": "A@x.com"}}),
        json!({"op": "create", "attributes": {"first_name": "C", "primary_email": "c@x.com"}}),
        json!({"op": "create", "attributes": {"first_name": "D", "primary_email": "a@X.com"}}),
        json!({"op": "create", "attributes": {"first_name": "E", "primary_email": "e@x.com"}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    let out = bulk(&app, "contact", &lines).await;
    let single = app
        .post("/api/v2/contact")
        .bearer(&app.admin())
        .json(json!({"attributes": {"first_name": "B", "primary_email": "A@x.com"}}))
        .send()
        .await;
    single.assert_status(409);
    let statuses: Vec<u64> = out.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 409, 201, 409, 201]);
    assert_eq!(out[1]["error"]["code"], single.body["error"]["code"]);
    assert_eq!(count(&app, "contact").await, 3);
    let r = app
        .post("/api/v2/contact/_assert")
        .bearer(&app.admin())
        .json(json!({"match": {"primary_email": "a@x.com"}, "attributes": {}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["id"], out[0]["id"]);
}

#[tokio::test]
async fn many_lines_span_batches_in_order_and_a_rerun_creates_nothing() {
    let app = TestApp::spawn().await;
    let n = 1_234;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            json!({"op": "assert", "match": {"email": format!("p{i}@example.com")}, "attributes": {"first_name": format!("P{i}")}})
                .to_string()
        })
        .collect();
    // `email` is not a contact match key: every line is refused, none written.
    let out = bulk(&app, "contact", &lines[..3]).await;
    assert!(out.iter().all(|r| r["error"]["code"] == "invalid_matching_field"));
    let lines: Vec<String> = lines.iter().map(|l| l.replace("\"email\"", "\"primary_email\"")).collect();
    let out = bulk(&app, "contact", &lines).await;
    assert_eq!(out.len(), n);
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1);
        assert_eq!(r["status"], 201, "{r}");
    }
    let again = bulk(&app, "contact", &lines).await;
    assert!(again.iter().all(|r| r["status"] == 200 && r["action"] == "updated"));
    assert_eq!(again.iter().map(|r| &r["id"]).collect::<Vec<_>>(), out.iter().map(|r| &r["id"]).collect::<Vec<_>>());
}

#[tokio::test]
async fn bulk_refuses_what_the_single_calls_refuse() {
    let app = TestApp::spawn().await;
    let line = json!({"op": "create", "attributes": {"display_name": "A"}}).to_string();
    app.post("/api/v2/account/_bulk")
        .bearer(&app.admin())
        .json(json!({}))
        .send()
        .await
        .assert_error(415, "unsupported_media_type");
    app.post("/api/v2/account/_bulk")
        .raw("application/x-ndjson", line.clone())
        .send()
        .await
        .assert_error(401, "unauthenticated");
    let reader = app.token_for(&app.tenant, "r", &[], &["accounts:read"], None);
    app.post("/api/v2/account/_bulk")
        .bearer(&reader)
        .raw("application/x-ndjson", line.clone())
        .send()
        .await
        .assert_error(403, "forbidden");
    app.post("/api/v2/user/_bulk")
        .bearer(&app.admin())
        .raw("application/x-ndjson", line.clone())
        .send()
        .await
        .assert_error(405, "method_not_allowed");
    app.post("/api/v2/widget/_bulk")
        .bearer(&app.admin())
        .raw("application/x-ndjson", line)
        .send()
        .await
        .assert_error(404, "unknown_record_type");
}

#[tokio::test]
async fn an_over_long_line_is_refused_alone_and_bodies_over_the_request_cap_stream() {
    let app = TestApp::spawn().await;
    let long = json!({"op": "create", "attributes": {"display_name": "x".repeat(2 * 1024 * 1024)}}).to_string();
    let mut lines = vec![long];
    // ~1.5 MiB of ordinary lines after it: the whole body is over the 1 MiB request cap.
    for i in 0..12_000 {
        lines.push(json!({"op": "create", "attributes": {"display_name": format!("Account {i}")}}).to_string());
    }
    let out = bulk(&app, "account", &lines).await;
    assert_eq!(out.len(), lines.len());
    assert_eq!(out[0]["status"], 413);
    assert_eq!(out[0]["error"]["code"], "payload_too_large");
    assert!(out[1..].iter().all(|r| r["status"] == 201));
}
