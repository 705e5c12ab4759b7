//! v1 list: limits, sorting, equality filters, keyset cursors.

use crate::helpers::TestApp;
use serde_json::{Value, json};
use std::collections::HashSet;

fn names(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect()
}

async fn seed(app: &TestApp) {
    for (name, industry, employees, stage, tags) in [
        ("Alpha", "software", Some(10), "customer", vec!["vip"]),
        ("Bravo", "Software", Some(500), "prospect", vec!["partner", "VIP"]),
        ("Charlie", "hardware", None, "customer", vec![]),
        ("Delta", "software", Some(50), "churned", vec!["partner"]),
        ("Echo", "retail", Some(50), "engaged", vec![]),
    ] {
        app.create_account(json!({"name": name, "industry": industry, "employee_count": employees, "lifecycle_stage": stage, "tags": tags, "domain": format!("{}.com", name.to_lowercase())})).await;
    }
}

#[tokio::test]
async fn default_order_is_newest_first_and_limit_pages() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let r = app.get("/api/v1/crm/accounts").bearer(&app.admin()).send().await;
    r.assert_status(200);
    assert_eq!(names(&r.body), ["Echo", "Delta", "Charlie", "Bravo", "Alpha"]);
    assert_eq!(r.body["has_more"], false);
    assert_eq!(r.body["next_cursor"], json!(null));

    let mut seen = Vec::new();
    let mut url = "/api/v1/crm/accounts?limit=2".to_owned();
    loop {
        let r = app.get(&url).bearer(&app.admin()).send().await;
        r.assert_status(200);
        seen.extend(names(&r.body));
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(r.body["has_more"], true);
                // The cursor alone continues the query.
                url = format!("/api/v1/crm/accounts?limit=2&cursor={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen, ["Echo", "Delta", "Charlie", "Bravo", "Alpha"]);
}

#[tokio::test]
async fn sorting_by_fields_puts_nulls_last_both_ways() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let asc = app.get("/api/v1/crm/accounts?sort=employee_count,name").bearer(&app.admin()).send().await;
    assert_eq!(names(&asc.body), ["Alpha", "Delta", "Echo", "Bravo", "Charlie"]);
    let desc = app.get("/api/v1/crm/accounts?sort=-employee_count,name").bearer(&app.admin()).send().await;
    assert_eq!(names(&desc.body), ["Bravo", "Delta", "Echo", "Alpha", "Charlie"]);
    // Paging one by one through a mixed-direction sort with nulls gives the same order.
    for sort in ["employee_count,name", "-employee_count,name", "-employee_count,-name", "industry,-employee_count"] {
        let full = app.get(&format!("/api/v1/crm/accounts?sort={sort}")).bearer(&app.admin()).send().await;
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("/api/v1/crm/accounts?limit=1&sort={sort}&cursor={c}"),
                None => format!("/api/v1/crm/accounts?limit=1&sort={sort}"),
            };
            let r = app.get(&url).bearer(&app.admin()).send().await;
            r.assert_status(200);
            paged.extend(names(&r.body));
            cursor = r.body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(paged, names(&full.body), "sort {sort}");
    }
    app.get("/api/v1/crm/accounts?sort=tags")
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
    app.get("/api/v1/crm/accounts?sort=a,b,c,d")
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
}

#[tokio::test]
async fn v1_value_lists_take_at_most_1000_values_like_v2() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    // Short values: a thousand of them fit in the 8 KiB request target.
    let values = |n: usize| (0..n).map(|i| format!("{i:x}")).collect::<Vec<_>>().join(",");
    for op in ["in", "not_in"] {
        let at_limit = format!("/api/v1/crm/accounts?industry[{op}]={}", values(1000));
        app.get(&at_limit).bearer(&app.admin()).send().await.assert_status(200);
        let over = format!("/api/v1/crm/accounts?industry[{op}]={}", values(1001));
        let r = app.get(&over).bearer(&app.admin()).send().await;
        r.assert_error(400, "invalid_query_parameter");
        assert_eq!(r.body["error"]["details"]["parameter"], format!("industry[{op}]"));
    }
}

#[tokio::test]
async fn equality_filters_match_case_insensitively_and_by_normalised_value() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let get = |q: &str| {
        let url = format!("/api/v1/crm/accounts?sort=name&{q}");
        let app = &app;
        async move {
            let r = app.get(&url).bearer(&app.admin()).send().await;
            r.assert_status(200);
            names(&r.body)
        }
    };
    assert_eq!(get("industry=SOFTWARE").await, ["Alpha", "Bravo", "Delta"]);
    assert_eq!(get("industry=software&employee_count=50").await, ["Delta"]);
    assert_eq!(get("lifecycle_stage=Customer").await, ["Alpha", "Charlie"]);
    assert_eq!(get("tags=vip").await, ["Alpha", "Bravo"]);
    assert_eq!(get("domain=https://www.ECHO.com/x").await, ["Echo"]);
    assert_eq!(get("created_by=admin-1").await.len(), 5);
    assert!(get("created_by=someone").await.is_empty());
    // Operator filters and q.
    assert_eq!(get("industry[contains]=SOFT").await, ["Alpha", "Bravo", "Delta"]);
    assert_eq!(get("name[starts_with]=e").await, ["Echo"]);
    assert_eq!(get("employee_count[gte]=50").await, ["Bravo", "Delta", "Echo"]);
    assert_eq!(get("employee_count[between]=10,50").await, ["Alpha", "Delta", "Echo"]);
    assert_eq!(get("employee_count[exists]=false").await, ["Charlie"]);
    assert_eq!(get("employee_count[ne]=50").await, ["Alpha", "Bravo", "Charlie"]);
    assert_eq!(get("tags[not_in]=vip,partner").await, ["Charlie", "Echo"]);
    assert_eq!(get("lifecycle_stage[in]=customer,churned").await, ["Alpha", "Charlie", "Delta"]);
    assert_eq!(get("q=ECH").await, ["Echo"]);
    assert_eq!(get("q=bravo.com").await, ["Bravo"]);
    let bad_parameters = [
        "employee_count=many",
        "lifecycle_stage=married",
        "nosuch=1",
        "limit=0",
        "limit=501",
        "include_deleted=perhaps",
        "include_deleted=",
        "employee_count[exists]=",
        "domain=localhost",
        "employee_count[between]=1",
    ];
    for bad in bad_parameters {
        app.get(&format!("/api/v1/crm/accounts?{bad}"))
            .bearer(&app.admin())
            .send()
            .await
            .assert_error(400, "invalid_query_parameter");
    }
    for bad in ["industry[gt]=x", "industry[like]=x", "tags[between]=a,b"] {
        app.get(&format!("/api/v1/crm/accounts?{bad}"))
            .bearer(&app.admin())
            .send()
            .await
            .assert_error(422, "invalid_filter_operator");
    }
}

#[tokio::test]
async fn cursors_are_tamper_evident_and_bound_to_their_query() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let r = app.get("/api/v1/crm/accounts?limit=2&industry=software").bearer(&app.admin()).send().await;
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    // Same query: fine. Another filter: refused.
    app.get(&format!("/api/v1/crm/accounts?limit=2&industry=software&cursor={cursor}"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_status(200);
    app.get(&format!("/api/v1/crm/accounts?industry=retail&cursor={cursor}"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    app.get(&format!("/api/v1/crm/accounts?sort=name&cursor={cursor}"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    // Another tenant cannot use it.
    let other = app.token_for("elsewhere", "x", &["tenant_admin"], &[], None);
    app.get(&format!("/api/v1/crm/accounts?cursor={cursor}"))
        .bearer(&other)
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    // Altered bytes are refused.
    let mut bytes = cursor.clone().into_bytes();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    app.get(&format!("/api/v1/crm/accounts?cursor={tampered}"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    app.get("/api/v1/crm/accounts?cursor=not-a-cursor")
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_cursor");
}

#[tokio::test]
async fn a_walk_under_concurrent_writes_never_repeats_or_skips_unchanged_records() {
    let app = TestApp::spawn().await;
    let mut original = HashSet::new();
    for i in 0..30 {
        let d = app.create_account(json!({"name": format!("acc-{i:02}")})).await;
        original.insert(d["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/crm/accounts?limit=4&sort=name&cursor={c}"),
            None => "/api/v1/crm/accounts?limit=4&sort=name".to_owned(),
        };
        let r = app.get(&url).bearer(&app.admin()).send().await;
        for d in r.body["data"].as_array().unwrap() {
            seen.push(d["id"].as_str().unwrap().to_owned());
        }
        // Between pages, insert records on both sides of the walk.
        app.create_account(json!({"name": format!("acc-{round:02}-new")})).await;
        app.create_account(json!({"name": format!("zzz-{round}")})).await;
        round += 1;
        cursor = r.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no record twice");
    assert!(original.is_subset(&unique), "every original record seen");
}
