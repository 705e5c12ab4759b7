//! Filters across relationships (docs/API.md "Filters across relationships"): contacts by
//! their accounts and primary account, accounts by their contacts and parent account, in v2
//! `_query` and v1 list parameters; any-semantics, archived related records, tenant
//! isolation, and the errors of unknown related fields and two hops.

use crate::helpers::TestApp;
use serde_json::{Value, json};

fn uuid(v1_id: &Value) -> String {
    v1_id.as_str().unwrap().split_once('-').unwrap().1.to_owned()
}

/// The records of the scenario, by name: v1 ids.
struct World {
    acme: Value,
    globex: Value,
    archived_co: Value,
    jo: Value,
    ann: Value,
}

async fn contact(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/v1/crm/contacts").bearer(token).json(body).send().await;
    r.assert_status(201);
    r.body
}

async fn link(app: &TestApp, contact: &Value, account: &Value) {
    let path = format!("/api/v2/contact/{}/relationship/accounts", uuid(&contact["id"]));
    let r = app.post(&path).bearer(&app.admin()).json(json!({"related_record_id": uuid(&account["id"])})).send().await;
    r.assert_status(201);
}

/// Accounts: Acme (software, seats 40), Globex (retail), Initech (software, child of Acme),
/// Umbrella (hardware, child of Globex), Archived Co (software, archived), Orphan (child of
/// Archived Co). Contacts: Jo (CTO, primary Acme), Ann (VP Sales, primary Globex, also
/// linked to Initech), Bob (CTO, primary Archived Co), Cy (no account), Dee (CTO, linked to
/// Globex, archived). Emails are at free-mail domains, so nothing is auto-associated.
async fn seed(app: &TestApp) -> World {
    let r = app
        .post("/api/v2/_schema/account/attributes")
        .bearer(&app.admin())
        .json(json!({"api_name": "seats", "value_type": "number"}))
        .send()
        .await;
    r.assert_status(201);
    let acme =
        app.create_account(json!({"name": "Acme", "industry": "software", "custom_fields": {"seats": 40}})).await;
    let globex = app.create_account(json!({"name": "Globex", "industry": "retail"})).await;
    app.create_account(json!({"name": "Initech", "industry": "Software", "parent_account_id": acme["id"]})).await;
    app.create_account(json!({"name": "Umbrella", "industry": "hardware", "parent_account_id": globex["id"]})).await;
    let archived_co = app.create_account(json!({"name": "Archived Co", "industry": "software"})).await;
    app.create_account(json!({"name": "Orphan", "parent_account_id": archived_co["id"]})).await;
    let admin = app.admin();
    let jo = contact(
        app,
        &admin,
        json!({"first_name": "Jo", "job_title": "CTO", "email": "jo@gmail.com", "account_id": acme["id"]}),
    )
    .await;
    let ann = contact(
        app,
        &admin,
        json!({"first_name": "Ann", "job_title": "VP Sales", "email": "ann@yahoo.com", "account_id": globex["id"]}),
    )
    .await;
    let initech = accounts_named(app, "Initech").await;
    link(app, &ann, &initech).await;
    contact(
        app,
        &admin,
        json!({"first_name": "Bob", "job_title": "CTO", "email": "bob@hotmail.com", "account_id": archived_co["id"]}),
    )
    .await;
    contact(app, &admin, json!({"first_name": "Cy", "email": "cy@gmail.com"})).await;
    let dee = contact(app, &admin, json!({"first_name": "Dee", "job_title": "CTO", "email": "dee@gmail.com"})).await;
    link(app, &dee, &globex).await;
    for path in [
        format!("/api/v1/crm/contacts/{}", dee["id"].as_str().unwrap()),
        format!("/api/v1/crm/accounts/{}", archived_co["id"].as_str().unwrap()),
    ] {
        app.delete(&path).bearer(&admin).send().await.assert_status(200);
    }
    World { acme, globex, archived_co, jo, ann }
}

async fn accounts_named(app: &TestApp, name: &str) -> Value {
    let r = app.get(&format!("/api/v1/crm/accounts?name={name}")).bearer(&app.admin()).send().await;
    r.assert_status(200);
    r.body["data"][0].clone()
}

fn names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["attributes"]["display_name"]["value"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn v1_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[if d.get("display_name").is_some() { "display_name" } else { "name" }].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn query(app: &TestApp, token: &str, rt: &str, body: Value) -> crate::helpers::TestResponse {
    app.post(&format!("/api/v2/{rt}/_query")).bearer(token).json(body).send().await
}

fn leaf(field: &str, operator: &str, value: Value) -> Value {
    if value.is_null() {
        json!({"field": field, "operator": operator})
    } else {
        json!({"field": field, "operator": operator, "value": value})
    }
}

#[tokio::test]
async fn contacts_filter_by_their_accounts_and_primary_account() {
    let app = TestApp::spawn().await;
    let w = seed(&app).await;
    let admin = app.admin();
    let cases = [
        // Any linked account: Ann through her secondary edge to Initech; Bob's only account
        // is archived, so it never matches.
        (json!([leaf("accounts.industry", "eq", json!("software"))]), vec!["Ann", "Jo"]),
        (json!([leaf("primary_account.industry", "eq", json!("SOFTWARE"))]), vec!["Jo"]),
        (json!([leaf("accounts.display_name", "in", json!(["Globex", "Umbrella"]))]), vec!["Ann"]),
        // The other type's custom attributes, with their operators.
        (json!([leaf("accounts.seats", "gte", json!(10))]), vec!["Jo"]),
        (json!([leaf("accounts.id", "eq", w.acme["id"].clone())]), vec!["Jo"]),
        // `not` of any: no active linked account is software.
        (json!([{"not": leaf("accounts.industry", "eq", json!("software"))}]), vec!["Bob", "Cy"]),
        // "No active linked account" is `not` of any; `not_exists` is per related record.
        (json!([{"not": leaf("accounts.id", "exists", Value::Null)}]), vec!["Bob", "Cy"]),
        (json!([leaf("accounts.id", "not_exists", Value::Null)]), vec![]),
        (json!([leaf("primary_account.id", "exists", Value::Null)]), vec!["Ann", "Jo"]),
        // Combined with the contact's own attributes.
        (json!([leaf("accounts.industry", "eq", json!("software")), leaf("title", "eq", json!("cto"))]), vec!["Jo"]),
    ];
    for (filters, want) in cases {
        let r = query(&app, &admin, "contact", json!({"filters": filters, "count": "exact"})).await;
        r.assert_status(200);
        assert_eq!(names(&r.body), want, "{filters}");
        assert_eq!(r.body["meta"]["total"], want.len(), "{filters}");
    }
    // v1: `accounts.<v1 field>` any linked account, `account.<v1 field>` the primary one
    // (v1 `account_id`), custom attributes as `custom_fields.<api_name>`.
    for (params, want) in [
        ("accounts.industry=software", vec!["Ann", "Jo"]),
        ("account.industry=software", vec!["Jo"]),
        ("accounts.name[starts_with]=glob", vec!["Ann"]),
        ("accounts.custom_fields.seats[gte]=10", vec!["Jo"]),
        ("accounts.industry[ne]=software", vec!["Ann"]),
    ] {
        let r = app.get(&format!("/api/v1/crm/contacts?{params}")).bearer(&admin).send().await;
        r.assert_status(200);
        assert_eq!(v1_names(&r.body), want, "{params}");
    }
    let _ = (&w.jo, &w.ann);
}

#[tokio::test]
async fn accounts_filter_by_their_contacts_and_parent_account() {
    let app = TestApp::spawn().await;
    let w = seed(&app).await;
    let admin = app.admin();
    let cases = [
        // Any linked contact; Dee (a CTO linked to Globex) is archived and never matches.
        (json!([leaf("contacts.title", "contains", json!("cto"))]), vec!["Acme"], false),
        // Archived Co is itself archived: shown only with include_archived, and then it
        // matches through its active contact Bob.
        (json!([leaf("contacts.title", "contains", json!("cto"))]), vec!["Acme", "Archived Co"], true),
        (json!([leaf("contacts.primary_email", "ends_with", json!("@YAHOO.com"))]), vec!["Globex", "Initech"], false),
        (json!([leaf("contacts.contact_emails", "eq", json!("Jo@Gmail.com"))]), vec!["Acme"], false),
        (json!([{"not": leaf("contacts.id", "exists", Value::Null)}]), vec!["Orphan", "Umbrella"], true),
        // The parent account; Orphan's parent is archived, so it never matches.
        (json!([leaf("parent_account.industry", "eq", json!("software"))]), vec!["Initech"], false),
        (json!([leaf("parent_account.display_name", "eq", json!("globex"))]), vec!["Umbrella"], false),
        (json!([leaf("parent_account.seats", "between", json!([40, 50]))]), vec!["Initech"], false),
        (
            json!([{"or": [leaf("parent_account.industry", "eq", json!("retail")), leaf("contacts.title", "eq", json!("cto"))]}]),
            vec!["Acme", "Umbrella"],
            false,
        ),
    ];
    for (filters, want, archived) in cases {
        let r = query(&app, &admin, "account", json!({"filters": filters, "include_archived": archived})).await;
        r.assert_status(200);
        assert_eq!(names(&r.body), want, "{filters}");
    }
    for (params, want) in [
        ("contacts.job_title[contains]=cto", vec!["Acme"]),
        ("contacts.email[ends_with]=@yahoo.com", vec!["Globex", "Initech"]),
        ("parent_account.industry=software", vec!["Initech"]),
        ("parent_account.name=Globex&industry=hardware", vec!["Umbrella"]),
    ] {
        let r = app.get(&format!("/api/v1/crm/accounts?{params}")).bearer(&admin).send().await;
        r.assert_status(200);
        assert_eq!(v1_names(&r.body), want, "{params}");
    }
    // Restoring the archived parent makes Orphan match again: archived state is read live.
    let path = format!("/api/v1/crm/accounts/{}/restore", w.archived_co["id"].as_str().unwrap());
    app.post(&path).bearer(&admin).send().await.assert_status(200);
    let r =
        query(&app, &admin, "account", json!({"filters": [leaf("parent_account.industry", "eq", json!("software"))]}))
            .await;
    assert_eq!(names(&r.body), ["Initech", "Orphan"]);
    let _ = &w.globex;
}

#[tokio::test]
async fn related_records_of_other_tenants_and_apps_never_match() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let admin = app.admin();
    // Another tenant with a software account and a CTO linked to it.
    let other = app.token_for("other-tenant", "eve", &["tenant_admin"], &[], None);
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&other)
        .json(json!({"name": "Hooli", "industry": "software"}))
        .send()
        .await;
    r.assert_status(201);
    let hooli = r.body;
    contact(
        &app,
        &other,
        json!({"first_name": "Gavin", "job_title": "CTO", "email": "gavin@gmail.com", "account_id": hooli["id"]}),
    )
    .await;
    let r =
        query(&app, &admin, "contact", json!({"filters": [leaf("accounts.industry", "eq", json!("software"))]})).await;
    assert_eq!(names(&r.body), ["Ann", "Jo"]);
    let r =
        query(&app, &other, "contact", json!({"filters": [leaf("accounts.industry", "eq", json!("software"))]})).await;
    assert_eq!(names(&r.body), ["Gavin"]);
    let r = query(&app, &other, "account", json!({"filters": [leaf("contacts.title", "eq", json!("cto"))]})).await;
    assert_eq!(names(&r.body), ["Hooli"]);
    // An app-scoped caller: related records outside its app do not match either.
    let t = app.tenant.clone();
    let sync =
        app.token_for(&t, "sync-svc", &["app_service_account"], &["accounts:write", "contacts:write"], Some("sync"));
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&sync)
        .json(json!({"name": "SyncCo", "industry": "software"}))
        .send()
        .await;
    r.assert_status(201);
    let sync_co = r.body;
    // A contact of the app, linked to SyncCo and (by an admin) to Acme, an account outside the app.
    let kim =
        contact(&app, &sync, json!({"first_name": "Kim", "email": "kim@gmail.com", "account_id": sync_co["id"]})).await;
    let acme = accounts_named(&app, "Acme").await;
    link(&app, &kim, &acme).await;
    let r =
        query(&app, &sync, "contact", json!({"filters": [leaf("accounts.display_name", "eq", json!("acme"))]})).await;
    r.assert_status(200);
    assert_eq!(names(&r.body), Vec::<String>::new());
    let r =
        query(&app, &sync, "contact", json!({"filters": [leaf("accounts.display_name", "eq", json!("syncco"))]})).await;
    assert_eq!(names(&r.body), ["Kim"]);
    let r =
        query(&app, &admin, "contact", json!({"filters": [leaf("accounts.display_name", "eq", json!("acme"))]})).await;
    assert_eq!(names(&r.body), ["Jo", "Kim"]);
}

#[tokio::test]
async fn unknown_related_fields_and_two_hops_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    for (rt, filter, status, code) in [
        ("contact", leaf("accounts.nope", "eq", json!("x")), 422, "invalid_filter_field"),
        ("contact", leaf("accounts.contacts.title", "eq", json!("x")), 422, "invalid_filter_field"),
        ("account", leaf("contacts.accounts.industry", "eq", json!("x")), 422, "invalid_filter_field"),
        ("account", leaf("parent_account.parent_account.industry", "eq", json!("x")), 422, "invalid_filter_field"),
        // Relations of the other record type, and v1 names in v2, are unknown fields.
        ("contact", leaf("contacts.title", "eq", json!("x")), 422, "invalid_filter_field"),
        ("account", leaf("accounts.industry", "eq", json!("x")), 422, "invalid_filter_field"),
        ("account", leaf("contacts.job_title", "eq", json!("x")), 422, "invalid_filter_field"),
        ("account", leaf("contacts.address", "eq", json!("x")), 422, "invalid_filter_field"),
        // The related attribute's operators and values.
        ("contact", leaf("accounts.industry", "gt", json!("x")), 422, "invalid_filter_operator"),
        ("contact", leaf("accounts.employee_count", "eq", json!("many")), 422, "field_value_invalid"),
    ] {
        let r = query(&app, &admin, rt, json!({"filters": [filter]})).await;
        r.assert_error(status, code);
        assert_eq!(r.body["error"]["details"]["field"], filter["field"], "{filter}");
    }
    for (path, code) in [
        ("/api/v1/crm/contacts?accounts.nope=x", "invalid_query_parameter"),
        ("/api/v1/crm/contacts?accounts.contacts.email=x", "invalid_query_parameter"),
        ("/api/v1/crm/accounts?contacts.title=x", "invalid_query_parameter"),
        ("/api/v1/crm/contacts?primary_account.industry=x", "invalid_query_parameter"),
    ] {
        app.get(path).bearer(&admin).send().await.assert_error(400, code);
    }
    app.get("/api/v1/crm/contacts?accounts.industry[gt]=x")
        .bearer(&admin)
        .send()
        .await
        .assert_error(422, "invalid_filter_operator");
}
