//! Contacts in both dialects: fields, derived name and primary email/phone, email uniqueness,
//! email / phone sub-resources, the primary account, and auto-association by email domain.

use crate::helpers::TestApp;
use serde_json::{Value, json};

fn attr<'a>(body: &'a Value, name: &str) -> &'a Value {
    &body["data"]["attributes"][name]["value"]
}

async fn create_contact(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/crm/contacts").bearer(&app.admin()).json(body).send().await;
    r.assert_status(201);
    r.body
}

fn uuid(v1_id: &Value) -> String {
    v1_id.as_str().unwrap().split_once('-').unwrap().1.to_owned()
}

#[tokio::test]
async fn v1_contacts_have_every_field_and_a_computed_name() {
    let app = TestApp::spawn().await;
    let owner = app.add_user("owner@acme.com").await;
    let doc = create_contact(
        &app,
        json!({"first_name": "Ada", "last_name": "Lovelace", "email": " Ada@ACME.com ", "phone": " +44 20 7946 0000 ",
               "job_title": "CTO", "stage": "Working", "owner_id": owner, "opted_in": true,
               "address": {"city": "London"}, "tags": ["vip"], "created_by": "ignored"}),
    )
    .await;
    assert!(doc["id"].as_str().unwrap().starts_with("con-"));
    assert_eq!(doc["display_name"], "Ada Lovelace");
    assert_eq!(doc["email"], "Ada@acme.com");
    assert_eq!(doc["phone"], "+44 20 7946 0000");
    assert_eq!(doc["job_title"], "CTO");
    assert_eq!(doc["stage"], "working");
    assert_eq!(doc["owner_id"], owner.as_str());
    assert_eq!(doc["opted_in"], true);
    assert_eq!(
        doc["address"],
        json!({"street_one": null, "street_two": null, "city": "London", "state": null, "country": null, "zip_code": null})
    );
    assert_eq!(doc["account_id"], json!(null));
    assert_eq!(doc["created_by"], "admin-1");
    for key in [
        "middle_name",
        "department",
        "seniority",
        "decision_role",
        "linkedin_url",
        "reports_to_contact_id",
        "last_interaction_at",
        "opted_in_at",
        "custom_fields",
        "version",
        "is_deleted",
    ] {
        assert!(doc.get(key).is_some(), "{key}");
    }
    let path = format!("/api/v1/crm/contacts/{}", doc["id"].as_str().unwrap());
    // The name follows first/last name changes until the client sets a different one.
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"first_name": "Augusta"})).send().await;
    assert_eq!(r.body["display_name"], "Augusta Lovelace");
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"display_name": "Countess"})).send().await;
    assert_eq!(r.body["display_name"], "Countess");
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"last_name": "King"})).send().await;
    assert_eq!(r.body["display_name"], "Countess");
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"display_name": null})).send().await;
    assert_eq!(r.body["display_name"], "Augusta King");
    // v1 email writes replace the primary email.
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"email": "ada@newco.com"})).send().await;
    assert_eq!(r.body["email"], "ada@newco.com");
    // Listing contacts.
    let list = app.get("/api/v1/crm/contacts?stage=working").bearer(&app.admin()).send().await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    app.get("/api/v1/crm/widgets").bearer(&app.admin()).send().await.assert_error(404, "route_not_found");
    let reader = app.token_for(&app.tenant, "r", &[], &["accounts:read"], None);
    app.get("/api/v1/crm/contacts").bearer(&reader).send().await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn emails_are_unique_per_tenant_case_insensitively() {
    let app = TestApp::spawn().await;
    let first = create_contact(&app, json!({"first_name": "A", "email": "jane@acme.com"})).await;
    let r = app
        .post("/api/v1/crm/contacts")
        .bearer(&app.admin())
        .json(json!({"first_name": "B", "email": "JANE@acme.COM"}))
        .send()
        .await;
    r.assert_error(409, "conflict");
    assert_eq!(r.body["error"]["details"]["conflicting_record_id"], first["id"]);
    let r = app
        .post("/api/v2/contact")
        .bearer(&app.admin())
        .json(json!({"attributes": {"first_name": "C", "primary_email": "Jane@Acme.com"}}))
        .send()
        .await;
    r.assert_error(409, "conflict");
    // Archiving releases the email; restoring then conflicts.
    let path = format!("/api/v1/crm/contacts/{}", first["id"].as_str().unwrap());
    app.delete(&path).bearer(&app.admin()).send().await.assert_status(200);
    let second = create_contact(&app, json!({"first_name": "B", "email": "jane@acme.com"})).await;
    app.post(&format!("{path}/restore")).bearer(&app.admin()).send().await.assert_error(409, "conflict");
    app.delete(&format!("/api/v1/crm/contacts/{}?purge=true", second["id"].as_str().unwrap()))
        .bearer(&app.admin())
        .send()
        .await
        .assert_status(204);
    app.post(&format!("{path}/restore")).bearer(&app.admin()).send().await.assert_status(200);
    // Another tenant may use it.
    let other = app.token_for("elsewhere", "x", &["tenant_admin"], &[], None);
    app.post("/api/v1/crm/contacts")
        .bearer(&other)
        .json(json!({"first_name": "Z", "email": "jane@acme.com"}))
        .send()
        .await
        .assert_status(201);
}

#[tokio::test]
async fn v2_contacts_and_their_email_and_phone_items() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/v2/contact")
        .bearer(&app.admin())
        .json(json!({"attributes": {"first_name": "Grace", "last_name": "Hopper", "primary_email": "grace@navy.mil", "title": "Rear Admiral"}}))
        .send()
        .await;
    r.assert_status(201);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(attr(&r.body, "display_name"), "Grace Hopper");
    assert_eq!(attr(&r.body, "primary_email"), "grace@navy.mil");
    assert_eq!(attr(&r.body, "title"), "Rear Admiral");
    let emails = r.body["data"]["attributes"]["contact_emails"].as_array().unwrap().clone();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["value_type"], "contact_email");
    assert_eq!(emails[0]["value"]["is_primary"], true);
    assert_eq!(attr(&r.body, "stage"), &json!(null));
    app.post("/api/v2/contact")
        .bearer(&app.admin())
        .json(json!({"attributes": {"contact_emails": []}}))
        .send()
        .await
        .assert_error(422, "field_not_creatable");

    let base = format!("/api/v2/contact/{id}/attribute/contact_emails");
    let r = app
        .post(&base)
        .bearer(&app.admin())
        .json(json!({"email": "Grace@Yale.edu", "is_primary": false, "labels": ["personal"]}))
        .send()
        .await;
    r.assert_status(201);
    let yale = r.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body["data"]["envelope"],
        json!({"id": yale, "email": "Grace@yale.edu", "is_primary": false, "labels": ["PERSONAL"]})
    );
    // Promote it: primary_email follows.
    let r = app.patch(&format!("{base}/{yale}")).bearer(&app.admin()).json(json!({"is_primary": true})).send().await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["envelope"]["is_primary"], true);
    let c = app.get(&format!("/api/v2/contact/{id}")).bearer(&app.admin()).send().await;
    assert_eq!(attr(&c.body, "primary_email"), "Grace@yale.edu");
    let v1 = app.get(&format!("/api/v1/crm/contacts/{id}")).bearer(&app.admin()).send().await;
    assert_eq!(v1.body["email"], "Grace@yale.edu");
    // Removing the primary promotes the oldest remaining.
    app.delete(&format!("{base}/{yale}")).bearer(&app.admin()).send().await.assert_status(204);
    let v1 = app.get(&format!("/api/v1/crm/contacts/{id}")).bearer(&app.admin()).send().await;
    assert_eq!(v1.body["email"], "grace@navy.mil");
    // Errors.
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"email": "nope"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"email": "a@b.com", "labels": ["HOME"]}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"is_primary": true}))
        .send()
        .await
        .assert_error(422, "field_required_missing");
    app.patch(&format!("{base}/0193aaaa-0000-7000-8000-000000000000"))
        .bearer(&app.admin())
        .json(json!({"is_primary": true}))
        .send()
        .await
        .assert_error(404, "record_not_found");

    // Phones.
    let phones = format!("/api/v2/contact/{id}/attribute/contact_phone_numbers");
    let r = app
        .post(&phones)
        .bearer(&app.admin())
        .json(json!({"phone_number": "+1 555 0100", "is_primary": true, "labels": ["MOBILE"]}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.body["data"]["envelope"]["phone_number"], "+1 555 0100");
    let c = app.get(&format!("/api/v2/contact/{id}")).bearer(&app.admin()).send().await;
    assert_eq!(attr(&c.body, "primary_phone_number"), "+1 555 0100");
    // An email held by another contact cannot be added.
    let other = create_contact(&app, json!({"first_name": "X", "email": "x@corp.com"})).await;
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"email": "X@corp.com"}))
        .send()
        .await
        .assert_error(409, "conflict");
    // The contact matches by primary_email in references.
    let r = app.post("/api/v2/contact").bearer(&app.admin()).json(json!({"attributes": {"first_name": "Kid", "reports_to_contact_id": {"related_record_match": {"primary_email": "x@CORP.com"}}}})).send().await;
    r.assert_status(201);
    assert_eq!(attr(&r.body, "reports_to_contact_id")["related_record_id"], uuid(&other["id"]));
    app.post(&format!("/api/v2/contact/{id}/attribute/domains"))
        .bearer(&app.admin())
        .json(json!({}))
        .send()
        .await
        .assert_error(400, "sub_resource_not_supported");
}

#[tokio::test]
async fn account_id_is_the_primary_edge_and_auto_association_links_by_domain() {
    let app = TestApp::spawn().await;
    let acme = app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await;
    let globex = app.create_account(json!({"name": "Globex"})).await;
    // A new contact with an acme.com email joins Acme.
    let jane = create_contact(&app, json!({"first_name": "Jane", "email": "jane@acme.com"})).await;
    assert_eq!(jane["account_id"], acme["id"]);
    // Free-mail never associates.
    let bob = create_contact(&app, json!({"first_name": "Bob", "email": "bob@gmail.com"})).await;
    assert_eq!(bob["account_id"], json!(null));
    // An explicit account_id wins, and can be changed or cleared.
    let path = format!("/api/v1/crm/contacts/{}", jane["id"].as_str().unwrap());
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"account_id": globex["id"]})).send().await;
    assert_eq!(r.body["account_id"], globex["id"]);
    let r = app.patch(&path).bearer(&app.admin()).json(json!({"account_id": null})).send().await;
    assert_eq!(r.body["account_id"], json!(null));
    app.patch(&path)
        .bearer(&app.admin())
        .json(json!({"account_id": "acc-0193aaaa-0000-7000-8000-000000000000"}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");
    app.patch(&path)
        .bearer(&app.admin())
        .json(json!({"account_id": "not-an-id"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    // A domain added to an account links waiting contacts whose primary email has it.
    let kim = create_contact(&app, json!({"first_name": "Kim", "email": "kim@globex.com"})).await;
    assert_eq!(kim["account_id"], json!(null));
    let globex_uuid = uuid(&globex["id"]);
    app.post(&format!("/api/v2/account/{globex_uuid}/attribute/domains"))
        .bearer(&app.admin())
        .json(json!({"domain_name": "globex.com"}))
        .send()
        .await
        .assert_status(201);
    let kim_now =
        app.get(&format!("/api/v1/crm/contacts/{}", kim["id"].as_str().unwrap())).bearer(&app.admin()).send().await;
    assert_eq!(kim_now.body["account_id"], globex["id"]);
    assert_eq!(kim_now.body["version"], 2, "being linked is a change");
    // The tenant setting turns it off.
    app.patch("/api/admin/settings")
        .bearer(&app.admin())
        .json(json!({"auto_associate_contacts": false}))
        .send()
        .await
        .assert_status(200);
    let lee = create_contact(&app, json!({"first_name": "Lee", "email": "lee@acme.com"})).await;
    assert_eq!(lee["account_id"], json!(null));
    // Purging an account clears its contacts' primary account.
    app.delete(&format!("/api/v1/crm/accounts/{}?purge=true", globex["id"].as_str().unwrap()))
        .bearer(&app.admin())
        .send()
        .await
        .assert_status(204);
    let kim_after =
        app.get(&format!("/api/v1/crm/contacts/{}", kim["id"].as_str().unwrap())).bearer(&app.admin()).send().await;
    assert_eq!(kim_after.body["account_id"], json!(null));
    assert_eq!(kim_after.body["version"], 3);
}

#[tokio::test]
async fn contacts_are_isolated_by_tenant_and_app() {
    let app = TestApp::spawn().await;
    let doc = create_contact(&app, json!({"first_name": "Mine", "email": "mine@acme.com"})).await;
    let path = format!("/api/v1/crm/contacts/{}", doc["id"].as_str().unwrap());
    let intruder = app.token_for("other", "eve", &["tenant_admin"], &[], None);
    app.get(&path).bearer(&intruder).send().await.assert_error(404, "record_not_found");
    app.get(&format!("/api/v2/contact/{}", uuid(&doc["id"])))
        .bearer(&intruder)
        .send()
        .await
        .assert_error(404, "record_not_found");
    let sync = app.token_for(&app.tenant, "svc", &["app_service_account"], &["contacts:write"], Some("sync"));
    app.get(&path).bearer(&sync).send().await.assert_error(404, "record_not_found");
    let r = app
        .post("/api/v1/crm/contacts")
        .bearer(&sync)
        .json(json!({"first_name": "Dup", "email": "MINE@acme.com"}))
        .send()
        .await;
    r.assert_error(409, "conflict");
    assert!(r.body["error"]["details"].get("conflicting_record_id").is_none());
}
