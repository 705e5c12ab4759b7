//! Tenancy and app scope (docs/CONTRACT.md §3): other tenants' and other apps' records are 404.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn other_tenants_records_are_invisible() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"name": "Mine", "domain": "mine.com"})).await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    let intruder = app.token_for("other-tenant", "eve", &["tenant_admin"], &[], None);
    app.get(&path).bearer(&intruder).send().await.assert_error(404, "record_not_found");
    app.patch(&path)
        .bearer(&intruder)
        .json(json!({"name": "pwned"}))
        .send()
        .await
        .assert_error(404, "record_not_found");
    app.put(&path).bearer(&intruder).json(json!({"name": "pwned"})).send().await.assert_error(404, "record_not_found");
    app.delete(&path).bearer(&intruder).send().await.assert_error(404, "record_not_found");
    app.delete(&format!("{path}?purge=true")).bearer(&intruder).send().await.assert_error(404, "record_not_found");
    app.post(&format!("{path}/restore")).bearer(&intruder).send().await.assert_error(404, "record_not_found");
    let list = app.get("/api/v1/crm/accounts").bearer(&intruder).send().await;
    assert_eq!(list.body["data"], json!([]));
    // Domains are unique per tenant only.
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&intruder)
        .json(json!({"name": "Theirs", "domain": "mine.com"}))
        .send()
        .await;
    r.assert_status(201);
    // Nothing of ours changed.
    let r = app.get(&path).bearer(&app.admin()).send().await;
    assert_eq!(r.body["name"], "Mine");
    assert_eq!(r.body["version"], 1);
    // Owners must be users of the caller's tenant.
    let our_user = app.add_user("u@mine.com").await;
    app.post("/api/v1/crm/accounts")
        .bearer(&intruder)
        .json(json!({"name": "X", "owner_id": our_user}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");
}

#[tokio::test]
async fn app_scoped_callers_see_only_their_apps_records() {
    let app = TestApp::spawn().await;
    let t = app.tenant.clone();
    let sync = app.token_for(&t, "sync-svc", &["app_service_account"], &["accounts:write"], Some("sync"));
    let other = app.token_for(&t, "other-svc", &["app_service_account"], &["accounts:write"], Some("other"));
    let human = app.admin();
    let theirs = app
        .post("/api/v1/crm/accounts")
        .bearer(&sync)
        .json(json!({"name": "From sync", "domain": "sync.com"}))
        .send()
        .await;
    theirs.assert_status(201);
    assert_eq!(theirs.body["app_id"], "sync");
    let human_made = app.create_account(json!({"name": "From a human"})).await;
    assert_eq!(human_made["app_id"], json!(null));
    let sync_path = format!("/api/v1/crm/accounts/{}", theirs.body["id"].as_str().unwrap());
    let human_path = format!("/api/v1/crm/accounts/{}", human_made["id"].as_str().unwrap());

    // The other app sees nothing of sync's, and neither app sees the human's record.
    for (token, path) in [(&other, &sync_path), (&sync, &human_path), (&other, &human_path)] {
        app.get(path).bearer(token).send().await.assert_error(404, "record_not_found");
        app.patch(path).bearer(token).json(json!({"name": "x"})).send().await.assert_error(404, "record_not_found");
        app.delete(path).bearer(token).send().await.assert_error(404, "record_not_found");
    }
    let list = app.get("/api/v1/crm/accounts").bearer(&sync).send().await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0]["name"], "From sync");
    // Humans see everything in the tenant.
    let list = app.get("/api/v1/crm/accounts").bearer(&human).send().await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    app.get(&sync_path).bearer(&human).send().await.assert_status(200);
    // Claiming a domain held by an invisible record: 409 without the holder's id.
    let r =
        app.post("/api/v1/crm/accounts").bearer(&other).json(json!({"name": "Dup", "domain": "sync.com"})).send().await;
    r.assert_error(409, "conflict");
    assert!(r.body["error"]["details"].get("conflicting_record_id").is_none());
    // A human sees the holder.
    let r =
        app.post("/api/v1/crm/accounts").bearer(&human).json(json!({"name": "Dup", "domain": "sync.com"})).send().await;
    assert_eq!(r.body["error"]["details"]["conflicting_record_id"], theirs.body["id"]);
    // Parents must be visible to the app too.
    let human_id = human_made["id"].as_str().unwrap();
    app.post("/api/v1/crm/accounts")
        .bearer(&sync)
        .json(json!({"name": "Kid", "parent_account_id": human_id}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");
}
