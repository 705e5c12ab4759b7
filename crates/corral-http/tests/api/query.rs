//! v2 `_query`: filter trees, sorting, cursors, counts, and the query error codes.

use crate::helpers::TestApp;
use serde_json::{Value, json};

async fn seed(app: &TestApp) {
    for (name, industry, employees, tags, domain) in [
        ("Alpha", "software", Some(10), vec!["vip"], "alpha.com"),
        ("Bravo", "Software", Some(500), vec!["partner", "VIP"], "bravo.io"),
        ("Charlie", "hardware", None, vec![], "charlie.com"),
        ("Delta", "software", Some(50), vec!["partner"], "delta.org"),
        ("Echo", "retail", Some(50), vec![], "echo.com"),
    ] {
        app.create_account(
            json!({"name": name, "industry": industry, "employee_count": employees, "tags": tags, "domain": domain}),
        )
        .await;
    }
}

fn names(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributes"]["display_name"]["value"].as_str().unwrap().to_owned())
        .collect()
}

async fn query(app: &TestApp, body: Value) -> crate::helpers::TestResponse {
    app.post("/api/v2/account/_query").bearer(&app.admin()).json(body).send().await
}

#[tokio::test]
async fn filter_trees_select_and_sort() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let by_name = json!([{"field": "display_name", "direction": "asc"}]);
    let q = |filters: Value| json!({"filters": filters, "sort": by_name});
    let cases = [
        (json!([{"field": "industry", "operator": "eq", "value": "SOFTWARE"}]), vec!["Alpha", "Bravo", "Delta"]),
        (
            json!([{"field": "industry", "operator": "eq", "value": "software"}, {"or": [{"field": "employee_count", "operator": "gte", "value": 500}, {"not": {"field": "tags", "operator": "in", "value": ["partner"]}}]}]),
            vec!["Alpha", "Bravo"],
        ),
        (json!([{"field": "domains", "operator": "ends_with", "value": ".com"}]), vec!["Alpha", "Charlie", "Echo"]),
        (json!([{"field": "domains", "operator": "eq", "value": "https://www.Bravo.io/"}]), vec!["Bravo"]),
        (
            json!([{"field": "employee_count", "operator": "between", "value": [10, 50]}]),
            vec!["Alpha", "Delta", "Echo"],
        ),
        (json!([{"field": "employee_count", "operator": "not_exists"}]), vec!["Charlie"]),
        (json!([{"field": "tags", "operator": "exists"}]), vec!["Alpha", "Bravo", "Delta"]),
        (json!([{"field": "tags", "operator": "ne", "value": "vip"}]), vec!["Charlie", "Delta", "Echo"]),
        (
            json!([{"not": [{"field": "industry", "operator": "contains", "value": "ware"}, {"field": "employee_count", "operator": "lt", "value": 100}]}]),
            vec!["Bravo", "Charlie", "Echo"],
        ),
        (json!([{"or": []}]), vec![]),
        (json!([{"and": []}]), vec!["Alpha", "Bravo", "Charlie", "Delta", "Echo"]),
    ];
    for (filters, want) in cases {
        let r = query(&app, q(filters.clone())).await;
        r.assert_status(200);
        assert_eq!(names(&r.body), want, "{filters}");
    }
    let r = query(&app, json!({"sort": [{"field": "employee_count", "direction": "desc"}, {"field": "display_name", "direction": "desc"}]})).await;
    assert_eq!(names(&r.body), ["Bravo", "Echo", "Delta", "Alpha", "Charlie"]);
    let r = query(&app, json!({"filters": [{"field": "industry", "operator": "eq", "value": "software"}], "count": "exact", "limit": 1, "fields": ["display_name"]})).await;
    assert_eq!(r.body["meta"], json!({"total": 3, "total_is_estimate": false}));
    assert_eq!(r.body["data"][0]["attributes"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn cursors_continue_with_or_without_the_body() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let body = json!({"filters": [{"field": "employee_count", "operator": "exists"}], "sort": [{"field": "employee_count", "direction": "asc"}], "limit": 2});
    let first = query(&app, body.clone()).await;
    assert_eq!(names(&first.body), ["Alpha", "Delta"]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let alone = query(&app, json!({"cursor": cursor, "limit": 2})).await;
    assert_eq!(names(&alone.body), ["Echo", "Bravo"]);
    let mut with_body = body.clone();
    with_body["cursor"] = json!(cursor);
    let again = query(&app, with_body).await;
    assert_eq!(names(&again.body), ["Echo", "Bravo"]);
    assert_eq!(again.body["next_cursor"], json!(null));
    // Another filter, another record type, another tenant, or altered bytes: invalid_cursor.
    query(&app, json!({"cursor": cursor, "filters": []})).await.assert_error(400, "invalid_cursor");
    app.post("/api/v2/contact/_query")
        .bearer(&app.admin())
        .json(json!({"cursor": cursor}))
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    let other = app.token_for("elsewhere", "x", &["tenant_admin"], &[], None);
    app.post("/api/v2/account/_query")
        .bearer(&other)
        .json(json!({"cursor": cursor}))
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    query(&app, json!({"cursor": format!("{cursor}x")})).await.assert_error(400, "invalid_cursor");
    // A v1 cursor is not a v2 one.
    let v1 = app.get("/api/v1/crm/accounts?limit=1").bearer(&app.admin()).send().await;
    query(&app, json!({"cursor": v1.body["next_cursor"]})).await.assert_status(200);
}

#[tokio::test]
async fn query_errors_have_stable_codes() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let code = |body: Value| {
        let app = &app;
        async move { query(app, body).await }
    };
    code(json!({"filters": [{"field": "nope", "operator": "eq", "value": 1}]}))
        .await
        .assert_error(422, "invalid_filter_field");
    code(json!({"filters": [{"field": "address", "operator": "eq", "value": "x"}]}))
        .await
        .assert_error(422, "invalid_filter_field");
    code(json!({"filters": [{"field": "industry", "operator": "gt", "value": "x"}]}))
        .await
        .assert_error(422, "invalid_filter_operator");
    code(json!({"filters": [{"field": "employee_count", "operator": "eq", "value": "many"}]}))
        .await
        .assert_error(422, "field_value_invalid");
    code(json!({"filters": [{"field": "employee_count", "operator": "in", "value": []}]}))
        .await
        .assert_error(422, "field_value_invalid");
    code(json!({"filters": {"field": "industry"}})).await.assert_error(422, "field_value_invalid");
    code(json!({"sort": [{"field": "tags"}]})).await.assert_error(422, "invalid_filter_field");
    code(json!({"sort": [{"field": "a"}, {"field": "b"}, {"field": "c"}, {"field": "d"}]}))
        .await
        .assert_error(422, "field_value_invalid");
    code(json!({"limit": 201})).await.assert_error(422, "field_value_invalid");
    code(json!({"limit": 1.5})).await.assert_error(422, "field_value_invalid");
    code(json!({"filters": [{"field": "employee_count", "operator": "gte", "value": 2.5}]}))
        .await
        .assert_error(422, "field_value_invalid");
    // Whole numbers written with a fraction are whole numbers (JSON Schema's `integer` takes
    // `2.0`; found by schemathesis), as they already were in record values.
    code(json!({"limit": 2.0, "filters": [{"field": "employee_count", "operator": "gte", "value": 10.0}]}))
        .await
        .assert_status(200);
    code(json!({"count": "roughly"})).await.assert_error(400, "invalid_query_parameter");
    code(json!({"fields": ["nope"]})).await.assert_error(422, "field_value_invalid");
    code(json!({"page": 2})).await.assert_error(422, "unknown_field");
    let mut deep = json!({"field": "industry", "operator": "eq", "value": "x"});
    for _ in 0..8 {
        deep = json!({"and": [deep]});
    }
    code(json!({"filters": [deep]})).await.assert_error(422, "field_value_invalid");
    code(json!({"filters": [{"field": "industry", "operator": "in", "value": vec!["x"; 1001]}]}))
        .await
        .assert_error(422, "field_value_invalid");
    app.post("/api/v2/widget/_query")
        .bearer(&app.admin())
        .json(json!({}))
        .send()
        .await
        .assert_error(404, "unknown_record_type");
    // App scope applies to queries too.
    let sync = app.token_for(&app.tenant, "svc", &["app_service_account"], &["accounts:read"], Some("sync"));
    let r = app.post("/api/v2/account/_query").bearer(&sync).json(json!({})).send().await;
    assert_eq!(r.body["data"], json!([]));
}

#[tokio::test]
async fn the_sync_recipe_sees_every_change_once() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let since = "2000-01-01T00:00:00Z";
    let recipe = |cursor: Option<String>| match cursor {
        Some(c) => json!({"cursor": c, "limit": 2}),
        None => {
            json!({"filters": [{"field": "updated_at", "operator": "gte", "value": since}], "sort": [{"field": "updated_at", "direction": "asc"}], "limit": 2})
        }
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let r = query(&app, recipe(cursor)).await;
        r.assert_status(200);
        seen.extend(names(&r.body));
        // A record updated during the walk moves to the end and is seen again, later.
        if seen.len() == 2 {
            let doc = app.get("/api/v1/crm/accounts?name=Alpha").bearer(&app.admin()).send().await;
            let id = doc.body["data"][0]["id"].as_str().unwrap().to_owned();
            app.patch(&format!("/api/v1/crm/accounts/{id}"))
                .bearer(&app.admin())
                .json(json!({"industry": "changed"}))
                .send()
                .await
                .assert_status(200);
        }
        cursor = r.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Alpha"]);
}

#[tokio::test]
async fn counts_are_exact_or_estimated() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let exact = query(
        &app,
        json!({"filters": [{"field": "industry", "operator": "eq", "value": "software"}], "count": "exact"}),
    )
    .await;
    assert_eq!(exact.body["meta"], json!({"total": 3, "total_is_estimate": false}));
    let estimated = query(
        &app,
        json!({"filters": [{"field": "industry", "operator": "eq", "value": "software"}], "count": "estimated"}),
    )
    .await;
    estimated.assert_status(200);
    let is_estimate = estimated.body["meta"]["total_is_estimate"].as_bool().unwrap();
    let total = estimated.body["meta"]["total"].as_i64().unwrap();
    // SQLite counts exactly; PostgreSQL reports its planner's estimate.
    if is_estimate {
        assert!(total >= 1)
    } else {
        assert_eq!(total, 3)
    }
    let v1 = app.get("/api/v1/crm/accounts?industry=software&count=exact&limit=1").bearer(&app.admin()).send().await;
    assert_eq!(v1.body["total"], 3);
    assert_eq!(v1.body["data"].as_array().unwrap().len(), 1);
    app.get("/api/v1/crm/accounts?count=roughly")
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
}

#[tokio::test]
async fn users_are_queried_like_records() {
    let app = TestApp::spawn().await;
    for (email, name) in
        [("ann@acme.com", "Ann"), ("bob@acme.com", "Bob"), ("cy@other.org", "Cy"), ("dee@acme.com", "Dee")]
    {
        app.post("/api/admin/users")
            .bearer(&app.admin())
            .json(json!({"email": email, "display_name": name}))
            .send()
            .await
            .assert_status(201);
    }
    let users = app.get("/api/admin/users").bearer(&app.admin()).send().await;
    let bob = users.body["data"].as_array().unwrap().iter().find(|u| u["display_name"] == "Bob").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(&format!("/api/admin/users/{bob}"))
        .bearer(&app.admin())
        .json(json!({"is_active": false}))
        .send()
        .await
        .assert_status(200);
    let q = |body: serde_json::Value| app.post("/api/v2/user/_query").bearer(&app.user()).json(body).send();
    let names = |b: &Value| -> Vec<String> {
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["attributes"]["display_name"]["value"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_name = json!([{"field": "display_name", "direction": "asc"}]);
    let r = q(json!({"filters": [{"field": "email", "operator": "ends_with", "value": "@ACME.com"}], "sort": by_name}))
        .await;
    r.assert_status(200);
    assert_eq!(names(&r.body), ["Ann", "Bob", "Dee"]);
    let r = q(json!({"filters": [{"field": "is_active", "operator": "eq", "value": true}, {"field": "email", "operator": "contains", "value": "acme"}], "sort": by_name})).await;
    assert_eq!(names(&r.body), ["Ann", "Dee"]);
    // Paging with the cursor alone.
    // (The test's own human tokens add directory users without an email; leave them out.)
    let first = q(json!({"filters": [{"field": "email", "operator": "exists"}], "sort": by_name, "limit": 3})).await;
    assert_eq!(names(&first.body), ["Ann", "Bob", "Cy"]);
    let rest = q(json!({"cursor": first.body["next_cursor"], "limit": 3})).await;
    assert_eq!(names(&rest.body), ["Dee"]);
    assert_eq!(rest.body["next_cursor"], json!(null));
    q(json!({"filters": [{"field": "tags", "operator": "eq", "value": "x"}]}))
        .await
        .assert_error(422, "invalid_filter_field");
    q(json!({"fields": ["nope"]})).await.assert_error(422, "field_value_invalid");
    // Users of other tenants never appear.
    let other = app.token_for("elsewhere", "x", &["tenant_admin"], &[], None);
    let r = app.post("/api/v2/user/_query").bearer(&other).json(json!({})).send().await;
    let emails: Vec<&Value> =
        r.body["data"].as_array().unwrap().iter().map(|u| &u["attributes"]["email"]["value"]).collect();
    assert!(emails.iter().all(|e| e.is_null()), "{emails:?}");
}
