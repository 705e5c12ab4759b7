//! v1 accounts: create, read, update, archive, restore, purge, stamps and normalisation.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn create_stamps_the_envelope_and_ignores_client_stamps() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({
            "id": "rec_01HXEXAMPLE", "tenant_id": "someone-else", "created_at": "2001-01-01T00:00:00Z",
            "app_id": "spoofed", "created_by": "mallory", "version": 1,
            "name": "Acme", "domain": "https://WWW.Acme.com/about", "industry": "software",
            "annual_revenue": 1500000, "employee_count": 40, "tags": [" vip ", "VIP", "partner"],
            "addresses": [{"label": "billing", "city": "Oslo", "country": "NO"}],
            "last_activity_at": "2026-11-23T11:15:30.123+01:00"
        }))
        .send()
        .await;
    r.assert_status(201);
    let doc = &r.body;
    let id = doc["id"].as_str().unwrap();
    assert!(id.starts_with("acc-"));
    assert_eq!(r.header("location"), Some(format!("/api/v1/crm/accounts/{id}").as_str()));
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(doc["tenant_id"], app.tenant.as_str());
    assert_eq!(doc["app_id"], json!(null));
    assert_eq!(doc["created_by"], "admin-1");
    assert_eq!(doc["updated_by"], "admin-1");
    assert_ne!(doc["created_at"], "2001-01-01T00:00:00Z");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["is_deleted"], false);
    assert_eq!(doc["source"], "edm");
    assert_eq!(doc["source_type"], "api");
    assert_eq!(doc["domain"], "acme.com");
    assert_eq!(doc["domains"], json!(["acme.com"]));
    assert_eq!(doc["tags"], json!(["vip", "partner"]));
    assert_eq!(doc["annual_revenue"], 1500000);
    assert_eq!(doc["last_activity_at"], "2026-11-23T10:15:30.123Z");
    assert_eq!(doc["custom_fields"], json!({}));
    assert_eq!(doc["owner_id"], json!(null));
    assert!(doc["created_at"].as_str().unwrap().ends_with('Z'));
    // Reading it back gives the same document.
    let got = app.get(&format!("/api/v1/crm/accounts/{id}")).bearer(&app.admin()).send().await;
    got.assert_status(200);
    assert_eq!(&got.body, doc);
    assert_eq!(got.header("etag"), Some("\"1\""));
}

#[tokio::test]
async fn every_id_spelling_reads_the_same_record() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"name": "Acme"})).await;
    let id = doc["id"].as_str().unwrap();
    let uuid = id.strip_prefix("acc-").unwrap();
    for spelling in [id.to_owned(), uuid.to_owned(), uuid.to_uppercase(), uuid.replace('-', "")] {
        app.get(&format!("/api/v1/crm/accounts/{spelling}")).bearer(&app.admin()).send().await.assert_status(200);
    }
    for bad in ["nope", "con-0193aaaa-0000-7000-8000-000000000000", "acc-123"] {
        app.get(&format!("/api/v1/crm/accounts/{bad}"))
            .bearer(&app.admin())
            .send()
            .await
            .assert_error(404, "record_not_found");
    }
}

#[tokio::test]
async fn name_defaults_to_the_domain_and_is_otherwise_required() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"domain": "globex.com"})).await;
    assert_eq!(doc["name"], "globex.com");
    let r = app.post("/api/v1/crm/accounts").bearer(&app.admin()).json(json!({"industry": "x"})).send().await;
    r.assert_error(422, "field_required_missing");
    assert_eq!(r.body["error"]["details"]["field"], "name");
}

#[tokio::test]
async fn invalid_values_name_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"name": "A", "website": "acme.com"}), "website"),
        (json!({"name": "A", "domain": "localhost"}), "domain"),
        (json!({"name": "A", "domain": "10.0.0.1"}), "domain"),
        (json!({"name": "A", "employee_count": -3}), "employee_count"),
        (json!({"name": "A", "annual_revenue": "a lot"}), "annual_revenue"),
        (json!({"name": "A", "lifecycle_stage": "married"}), "lifecycle_stage"),
        (json!({"name": "A", "source_type": "carrier-pigeon"}), "source_type"),
        (json!({"name": "x".repeat(1001)}), "name"),
        (json!({"name": "A", "tags": ["ok", ""]}), "tags"),
        (json!({"name": "A", "last_activity_at": "yesterday"}), "last_activity_at"),
        (json!({"name": "A", "owner_id": "not-an-id"}), "owner_id"),
        (json!({"name": "A", "version": "one"}), "version"),
    ] {
        let r = app.post("/api/v1/crm/accounts").bearer(&app.admin()).json(body.clone()).send().await;
        r.assert_error(422, "field_value_invalid");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    let r =
        app.post("/api/v1/crm/accounts").bearer(&app.admin()).json(json!({"name": "A", "colour": "red"})).send().await;
    r.assert_error(422, "unknown_field");
    assert_eq!(r.body["error"]["details"]["field"], "colour");
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "A", "custom_fields": {"tier": "gold"}}))
        .send()
        .await;
    r.assert_error(422, "unknown_field");
    // An empty custom_fields object is fine.
    app.post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "A", "custom_fields": {}}))
        .send()
        .await
        .assert_status(201);
}

#[tokio::test]
async fn references_must_resolve_and_parents_cannot_cycle() {
    let app = TestApp::spawn().await;
    let owner = app.add_user("owner@acme.com").await;
    let parent = app.create_account(json!({"name": "Parent"})).await;
    let pid = parent["id"].as_str().unwrap();
    let child = app.create_account(json!({"name": "Child", "owner_id": owner, "parent_account_id": pid})).await;
    assert_eq!(child["owner_id"], owner.as_str());
    assert_eq!(child["parent_account_id"], pid);
    let cid = child["id"].as_str().unwrap();

    let ghost_user = "usr-0193aaaa-0000-7000-8000-000000000000";
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "X", "owner_id": ghost_user}))
        .send()
        .await;
    r.assert_error(422, "target_record_not_found");
    assert_eq!(r.body["error"]["details"]["field"], "owner_id");
    let ghost_acc = "acc-0193aaaa-0000-7000-8000-000000000000";
    app.post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "X", "parent_account_id": ghost_acc}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");

    // Parent -> child would close a loop; so would an account being its own parent.
    let r = app
        .patch(&format!("/api/v1/crm/accounts/{pid}"))
        .bearer(&app.admin())
        .json(json!({"parent_account_id": cid}))
        .send()
        .await;
    r.assert_error(422, "field_value_invalid");
    app.patch(&format!("/api/v1/crm/accounts/{pid}"))
        .bearer(&app.admin())
        .json(json!({"parent_account_id": pid}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");

    // An archived parent no longer resolves.
    app.delete(&format!("/api/v1/crm/accounts/{pid}")).bearer(&app.admin()).send().await.assert_status(200);
    app.post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "Y", "parent_account_id": pid}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_no_op_writes_keep_the_version() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"name": "Acme", "industry": "software", "tags": ["a"]})).await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    let r = app.patch(&path).bearer(&app.user()).json(json!({"legal_name": "Acme Inc."})).send().await;
    r.assert_status(200);
    assert_eq!(r.body["legal_name"], "Acme Inc.");
    assert_eq!(r.body["industry"], "software");
    assert_eq!(r.body["tags"], json!(["a"]));
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["updated_by"], "user-1");
    assert_eq!(r.body["created_by"], "admin-1");
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert!(r.body["updated_at"].as_str() > doc["updated_at"].as_str());
    let updated_at = r.body["updated_at"].clone();

    // Same values again: nothing changes, not even updated_at.
    let r = app
        .patch(&path)
        .bearer(&app.user())
        .json(json!({"legal_name": "Acme Inc.", "industry": "software", "id": "ignored"}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["updated_at"], updated_at);

    // null clears; arrays replace.
    let r = app.patch(&path).bearer(&app.user()).json(json!({"industry": null, "tags": ["b", "c"]})).send().await;
    assert_eq!(r.body["industry"], json!(null));
    assert_eq!(r.body["tags"], json!(["b", "c"]));
    assert_eq!(r.body["version"], 3);
}

#[tokio::test]
async fn put_replaces_every_writable_field() {
    let app = TestApp::spawn().await;
    let doc = app
        .create_account(json!({"name": "Acme", "industry": "software", "domain": "acme.com", "source": "hubspot"}))
        .await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    // A round-tripped document with one change is accepted as is.
    let mut round_trip = doc.clone();
    round_trip["industry"] = json!("hardware");
    let r = app.put(&path).bearer(&app.admin()).json(round_trip).send().await;
    r.assert_status(200);
    assert_eq!(r.body["industry"], "hardware");
    assert_eq!(r.body["domain"], "acme.com");
    assert_eq!(r.body["source"], "hubspot");
    assert_eq!(r.body["version"], 2);
    // A sparse PUT resets what it leaves out.
    let r = app.put(&path).bearer(&app.admin()).json(json!({"name": "Acme 2"})).send().await;
    r.assert_status(200);
    assert_eq!(r.body["industry"], json!(null));
    assert_eq!(r.body["domain"], json!(null));
    assert_eq!(r.body["source"], "edm");
    assert_eq!(r.body["version"], 3);
}

#[tokio::test]
async fn domain_writes_replace_the_primary_and_conflict_across_accounts() {
    let app = TestApp::spawn().await;
    let a = app.create_account(json!({"name": "A", "domain": "a.com"})).await;
    let a_path = format!("/api/v1/crm/accounts/{}", a["id"].as_str().unwrap());
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .json(json!({"name": "B", "domain": "WWW.A.COM"}))
        .send()
        .await;
    r.assert_error(409, "conflict");
    assert_eq!(r.body["error"]["details"]["conflicting_record_id"], a["id"]);
    // Changing A's domain releases a.com.
    let r = app.patch(&a_path).bearer(&app.admin()).json(json!({"domain": "a2.com"})).send().await;
    assert_eq!(r.body["domain"], "a2.com");
    assert_eq!(r.body["domains"], json!(["a2.com"]));
    app.create_account(json!({"name": "B", "domain": "a.com"})).await;
    // Clearing the domain.
    let r = app.patch(&a_path).bearer(&app.admin()).json(json!({"domain": null})).send().await;
    assert_eq!(r.body["domain"], json!(null));
    assert_eq!(r.body["domains"], json!([]));
}

#[tokio::test]
async fn if_match_and_body_version_guard_writes() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"name": "Acme"})).await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    let r =
        app.patch(&path).bearer(&app.admin()).header("if-match", "\"7\"").json(json!({"industry": "x"})).send().await;
    r.assert_error(412, "precondition_failed");
    assert_eq!(r.body["error"]["details"]["current_version"], 1);
    let mut version = 1;
    for spelling in ["\"{v}\"", "W/\"{v}\"", "{v}"] {
        let header = spelling.replace("{v}", &version.to_string());
        let r = app
            .patch(&path)
            .bearer(&app.admin())
            .header("if-match", &header)
            .json(json!({"industry": header}))
            .send()
            .await;
        r.assert_status(200);
        version += 1;
        assert_eq!(r.body["version"], version);
    }
    // A stale precondition fails.
    app.patch(&path)
        .bearer(&app.admin())
        .header("if-match", "\"1\"")
        .json(json!({"industry": "again"}))
        .send()
        .await
        .assert_error(412, "precondition_failed");
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"version": 1, "industry": "y"})).send().await;
    r.assert_error(409, "version_conflict");
    assert_eq!(r.body["error"]["details"]["current_version"], 4);
    // `4.0` is the whole number 4 (JSON Schema's `integer` takes it; found by schemathesis).
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"version": 4.0, "industry": "y"})).send().await;
    r.assert_status(200);
    assert_eq!(r.body["version"], 5);
    app.patch(&path)
        .bearer(&app.admin())
        .json(json!({"version": 4.5, "industry": "z"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.put(&path)
        .bearer(&app.admin())
        .header("if-match", "\"4\"")
        .json(json!({"name": "Z"}))
        .send()
        .await
        .assert_error(412, "precondition_failed");
    app.delete(&path)
        .bearer(&app.admin())
        .header("if-match", "\"4\"")
        .send()
        .await
        .assert_error(412, "precondition_failed");
    // A malformed precondition is a bad request, not a failed one.
    let r = app.delete(&path).bearer(&app.admin()).header("if-match", "{}").send().await;
    r.assert_error(400, "invalid_header");
    assert_eq!(r.body["error"]["details"]["header"], "If-Match");
    app.delete(&path).bearer(&app.admin()).header("if-match", "\"5\"").send().await.assert_status(200);
}
#[tokio::test]
async fn archive_hides_releases_keys_and_restore_brings_back() {
    let app = TestApp::spawn().await;
    let doc = app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await;
    let id = doc["id"].as_str().unwrap();
    let path = format!("/api/v1/crm/accounts/{id}");
    let r = app.delete(&path).bearer(&app.user()).send().await;
    r.assert_status(200);
    assert_eq!(r.body["is_deleted"], true);
    assert_eq!(r.body["deleted_by"], "user-1");
    assert!(r.body["deleted_at"].is_string());
    assert_eq!(r.body["version"], 2);
    app.get(&path).bearer(&app.admin()).send().await.assert_error(404, "record_not_found");
    app.delete(&path).bearer(&app.admin()).send().await.assert_error(404, "record_not_found");
    app.patch(&path).bearer(&app.admin()).json(json!({"name": "B"})).send().await.assert_error(404, "record_not_found");
    let r = app.get(&format!("{path}?include_deleted=true")).bearer(&app.admin()).send().await;
    r.assert_status(200);
    assert_eq!(r.body["is_deleted"], true);
    let list = app.get("/api/v1/crm/accounts").bearer(&app.admin()).send().await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
    let list = app.get("/api/v1/crm/accounts?include_deleted=true").bearer(&app.admin()).send().await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // The domain was released: another account takes it, so restoring conflicts.
    let other = app.create_account(json!({"name": "Other", "domain": "acme.com"})).await;
    app.post(&format!("{path}/restore")).bearer(&app.admin()).send().await.assert_error(409, "conflict");
    app.delete(&format!("/api/v1/crm/accounts/{}", other["id"].as_str().unwrap()))
        .bearer(&app.admin())
        .send()
        .await
        .assert_status(200);
    let r = app.post(&format!("{path}/restore")).bearer(&app.admin()).send().await;
    r.assert_status(200);
    assert_eq!(r.body["is_deleted"], false);
    assert_eq!(r.body["deleted_at"], json!(null));
    assert_eq!(r.body["version"], 3);
    assert_eq!(r.body["domain"], "acme.com");
    app.get(&path).bearer(&app.admin()).send().await.assert_status(200);
}

#[tokio::test]
async fn purge_needs_admin_and_removes_for_good() {
    let app = TestApp::spawn().await;
    let parent = app.create_account(json!({"name": "P", "domain": "p.com"})).await;
    let pid = parent["id"].as_str().unwrap();
    let child = app.create_account(json!({"name": "C", "parent_account_id": pid})).await;
    let path = format!("/api/v1/crm/accounts/{pid}");
    // A flag without an explicit true is refused and deletes nothing (it once purged).
    for vague in ["purge=", "purge", "purge=yes", "purge=maybe"] {
        app.delete(&format!("{path}?{vague}"))
            .bearer(&app.admin())
            .send()
            .await
            .assert_error(400, "invalid_query_parameter");
    }
    app.get(&path).bearer(&app.admin()).send().await.assert_status(200);
    app.delete(&format!("{path}?purge=true")).bearer(&app.user()).send().await.assert_error(403, "forbidden");
    let r = app.delete(&format!("{path}?purge=true")).bearer(&app.admin()).send().await;
    r.assert_status(204);
    app.get(&format!("{path}?include_deleted=true"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(404, "record_not_found");
    // The child lost its parent (a change: version moved); the domain is free again.
    let c =
        app.get(&format!("/api/v1/crm/accounts/{}", child["id"].as_str().unwrap())).bearer(&app.admin()).send().await;
    assert_eq!(c.body["parent_account_id"], json!(null));
    assert_eq!(c.body["version"], 2);
    app.create_account(json!({"name": "P2", "domain": "p.com"})).await;
    app.delete(&format!("{path}?purge=true")).bearer(&app.admin()).send().await.assert_error(404, "record_not_found");
    app.delete(&format!("{path}?purge=maybe"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Acme", "domain": "acme.com"});
    let first = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .header("idempotency-key", "k1")
        .json(body.clone())
        .send()
        .await;
    first.assert_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .header("idempotency-key", "k1")
        .json(body.clone())
        .send()
        .await;
    again.assert_status(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    let list = app.get("/api/v1/crm/accounts").bearer(&app.admin()).send().await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let other = app
        .post("/api/v1/crm/accounts")
        .bearer(&app.admin())
        .header("idempotency-key", "k1")
        .json(json!({"name": "Different"}))
        .send()
        .await;
    other.assert_error(422, "idempotency_key_reused");
    // Keys are per tenant.
    let t2 = app.token_for("other-tenant", "x", &["tenant_admin"], &[], None);
    app.post("/api/v1/crm/accounts")
        .bearer(&t2)
        .header("idempotency-key", "k1")
        .json(body.clone())
        .send()
        .await
        .assert_status(201);
}

#[tokio::test]
async fn idempotency_keys_never_replay_across_apps_or_record_types() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Scoped"});
    let one = app.token_for(&app.tenant, "svc-1", &["user"], &[], Some("one"));
    let two = app.token_for(&app.tenant, "svc-2", &["user"], &[], Some("two"));
    let send = |token: String, path: &'static str, body: serde_json::Value| {
        let app = &app;
        async move { app.post(path).bearer(&token).header("idempotency-key", "shared").json(body).send().await }
    };
    let first = send(one.clone(), "/api/v1/crm/accounts", body.clone()).await;
    first.assert_status(201);
    // Another app with the same key and body creates its own record: never app one's.
    let other = send(two, "/api/v1/crm/accounts", body.clone()).await;
    other.assert_status(201);
    assert_eq!(other.body["app_id"], "two");
    assert_ne!(other.body["id"], first.body["id"]);
    assert!(other.header("idempotent-replayed").is_none());
    // Another record type (and dialect) with the same key is another create.
    let contact = send(one.clone(), "/api/v2/contact", json!({"attributes": {"first_name": "Ada"}})).await;
    contact.assert_status(201);
    assert_eq!(contact.body["data"]["record_type"], "contact");
    // The same scope still replays.
    let again = send(one, "/api/v1/crm/accounts", body).await;
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}
