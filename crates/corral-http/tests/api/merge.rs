//! Record merge (`POST /api/v2/{rt}/_merge`, docs/API.md "Merging records"): what moves to the
//! winner, the events the feed and history show, aliases of merged-away ids in both dialects,
//! dry runs that write nothing, refusals, and atomicity under concurrent writes.

use crate::changes::{drain, drain_until};
use crate::helpers::TestApp;
use serde_json::{Value, json};
use std::sync::Arc;

fn uuid(v1_id: &Value) -> String {
    v1_id.as_str().unwrap().split_once('-').unwrap().1.to_owned()
}

async fn contact(app: &TestApp, body: Value) -> String {
    let r = app.post("/api/v1/crm/contacts").bearer(&app.admin()).json(body).send().await;
    r.assert_status(201);
    uuid(&r.body["id"])
}

async fn link(app: &TestApp, contact: &str, account: &str, body: Value) {
    let mut body = body;
    body["related_record_id"] = json!(account);
    let r = app
        .post(&format!("/api/v2/contact/{contact}/relationship/accounts"))
        .bearer(&app.admin())
        .json(body)
        .send()
        .await;
    assert!(r.status == 201 || r.status == 200, "{} {}", r.status, r.body);
}

/// The ids of a record's related records (`accounts` of a contact, `contacts` of an account).
async fn related(app: &TestApp, rt: &str, id: &str, name: &str) -> Vec<(String, Value)> {
    let r = app.get(&format!("/api/v2/{rt}/{id}/relationship/{name}")).bearer(&app.admin()).send().await;
    r.assert_status(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["related_record_id"].as_str().unwrap().to_owned(), i["through"]["attributes"].clone()))
        .collect()
}

fn value<'a>(record: &'a Value, attribute: &str) -> &'a Value {
    &record["data"]["attributes"][attribute]["value"]
}

/// The `key` of each item of an array attribute (a list of envelopes).
fn items(attributes: &Value, attribute: &str, key: &str) -> Vec<String> {
    attributes[attribute].as_array().unwrap().iter().map(|i| i["value"][key].as_str().unwrap().to_owned()).collect()
}

async fn v2(app: &TestApp, rt: &str, id: &str) -> Value {
    let r = app.get(&format!("/api/v2/{rt}/{id}?include_archived=true")).bearer(&app.admin()).send().await;
    r.assert_status(200);
    r.body
}

#[tokio::test]
async fn merging_accounts_moves_edges_domains_and_references_and_aliases_the_loser() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    app.post("/api/v2/_schema/contact/attributes")
        .bearer(&admin)
        .json(json!({"api_name": "referrer", "value_type": "record_reference", "target": "account"}))
        .send()
        .await
        .assert_status(201);
    let winner = uuid(&app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await["id"]);
    let loser =
        uuid(&app.create_account(json!({"name": "Acme Inc", "domain": "acme.io", "industry": "software"})).await["id"]);
    let child =
        uuid(&app.create_account(json!({"name": "Acme EU", "parent_account_id": format!("acc-{loser}")})).await["id"]);
    // Jo works at the loser only (primary), Al at both (the edges collapse), Cy refers to it.
    let jo = contact(&app, json!({"first_name": "Jo", "email": "jo@gmail.com"})).await;
    link(&app, &jo, &loser, json!({"role": "CTO", "is_primary": true})).await;
    let al = contact(&app, json!({"first_name": "Al", "email": "al@gmail.com"})).await;
    link(&app, &al, &winner, json!({})).await;
    link(&app, &al, &loser, json!({"role": "Buyer"})).await;
    let cy = contact(&app, json!({"first_name": "Cy", "email": "cy@gmail.com"})).await;
    app.patch(&format!("/api/v2/contact/{cy}"))
        .bearer(&admin)
        .json(json!({"attributes": {"referrer": loser}}))
        .send()
        .await
        .assert_status(200);
    let mut cursor = None;
    drain_until(&app, &admin, "/api/v2/_changes", &mut cursor, 1).await;
    drain(&app, &admin, "/api/v2/_changes", &mut cursor).await;

    let r = app
        .post("/api/v2/account/_merge")
        .bearer(&admin)
        .json(json!({"winner": winner, "losers": [loser], "fields": {"display_name": format!("loser:{loser}")}}))
        .send()
        .await;
    r.assert_status(200);
    let report = &r.body["merge"];
    assert_eq!(report["dry_run"], false);
    assert!(report["id"].is_string());
    assert_eq!(value(&r.body, "display_name"), "Acme Inc", "the chosen loser's value");
    assert_eq!(value(&r.body, "industry"), "software", "an empty winner value is filled from the loser");
    assert_eq!(items(&r.body["data"]["attributes"], "domains", "domain_name"), ["acme.com", "acme.io"]);
    assert_eq!(r.body["data"]["attributes"]["domains"][0]["value"]["is_primary"], true);
    let conflicts = report["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["attribute"], "display_name");
    assert_eq!(conflicts[0]["resolution"], format!("loser:{loser}"));
    assert_eq!(report["relationships"].as_array().unwrap().len(), 2);
    let collapsed: Vec<bool> =
        report["relationships"].as_array().unwrap().iter().map(|e| e["collapsed"].as_bool().unwrap()).collect();
    assert_eq!(collapsed.iter().filter(|c| **c).count(), 1, "Al's two edges collapse");

    // Edges: both contacts now work at the winner, none at the loser; Jo keeps role and primary.
    let jo_accounts = related(&app, "contact", &jo, "accounts").await;
    assert_eq!(jo_accounts.len(), 1);
    assert_eq!(jo_accounts[0].0, winner);
    assert_eq!(jo_accounts[0].1["role"]["value"], "CTO");
    assert_eq!(jo_accounts[0].1["is_primary"]["value"], true);
    let al_accounts = related(&app, "contact", &al, "accounts").await;
    assert_eq!(al_accounts.len(), 1);
    assert_eq!(al_accounts[0].1["role"]["value"], "Buyer", "a role-less edge takes the loser's role");
    let v1_jo = app.get(&format!("/api/v1/crm/contacts/{jo}")).bearer(&admin).send().await;
    assert_eq!(v1_jo.body["account_id"], format!("acc-{winner}"));
    // References: the child's parent and Cy's custom reference name the winner.
    assert_eq!(value(&v2(&app, "account", &child).await, "parent_account_id")["related_record_id"], winner.as_str());
    assert_eq!(value(&v2(&app, "contact", &cy).await, "referrer")["related_record_id"], winner.as_str());
    let refs: Vec<&str> =
        report["references"].as_array().unwrap().iter().map(|r| r["attribute"].as_str().unwrap()).collect();
    assert_eq!(refs.len(), 3, "{refs:?}");
    for attribute in ["parent_account_id", "primary_account", "referrer"] {
        assert!(refs.contains(&attribute), "{attribute} re-pointed: {refs:?}");
    }
    // The loser is archived, its domain free of it: a new account cannot take acme.io.
    let archived = v2(&app, "account", &loser).await;
    assert!(value(&archived, "archived_at").is_string());
    app.post("/api/v1/crm/accounts")
        .bearer(&admin)
        .json(json!({"name": "Squatter", "domain": "acme.io"}))
        .send()
        .await
        .assert_status(409);

    // Events: merged on the winner, merged_into on the loser, updates on the referrers.
    let events = drain_until(&app, &admin, "/api/v2/_changes", &mut cursor, 5).await;
    let action = |id: &str| -> Vec<String> {
        events.iter().filter(|e| e["record_id"] == id).map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(action(&winner), ["merged"]);
    assert_eq!(action(&loser), ["merged_into"]);
    for referrer in [&jo, &al, &cy, &child] {
        assert_eq!(action(referrer), ["updated"], "{referrer}");
    }
    assert_eq!(events.len(), 6, "{events:#?}");
    let merged = events.iter().find(|e| e["record_id"] == winner.as_str()).unwrap();
    assert_eq!(merged["changed_fields"]["merged_from"]["new"], json!([loser]));
    assert!(merged["changed_fields"]["domains"].is_object());
    assert!(merged["changed_fields"][format!("contacts.{jo}")].is_object());
    let merged_into = events.iter().find(|e| e["record_id"] == loser.as_str()).unwrap();
    assert_eq!(merged_into["changed_fields"]["merged_into"]["new"], winner.as_str());
    assert_eq!(report["changes"].as_array().unwrap().len(), events.len(), "the report lists every event");
    let history = app.get(&format!("/api/v2/account/{winner}/_history")).bearer(&admin).send().await;
    assert_eq!(history.body["data"][0]["action"], "merged");
    let history =
        app.get(&format!("/api/v2/account/{loser}/_history?include_archived=true")).bearer(&admin).send().await;
    assert_eq!(history.body["data"][0]["action"], "merged_into");

    // Aliases: v2 and v1 reads by the loser's id answer with the winner, and say so.
    let r = app.get(&format!("/api/v2/account/{loser}")).bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["id"], winner.as_str());
    assert_eq!(r.header("merged-into"), Some(winner.as_str()));
    let r = app.get(&format!("/api/v1/crm/accounts/acc-{loser}")).bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(r.body["id"], format!("acc-{winner}"));
    assert_eq!(r.header("merged-into"), Some(format!("acc-{winner}").as_str()));
    let r = app.get(&format!("/api/v1/crm/accounts/acc-{winner}")).bearer(&admin).send().await;
    assert_eq!(r.header("merged-into"), None, "the winner's own id is no alias");
    // Writes by the loser's id reach the winner, in both dialects.
    let r = app
        .patch(&format!("/api/v2/account/{loser}"))
        .bearer(&admin)
        .json(json!({"attributes": {"lead_source": "web"}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["id"], winner.as_str());
    let r = app
        .patch(&format!("/api/v1/crm/accounts/acc-{loser}"))
        .bearer(&admin)
        .json(json!({"description": "merged"}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["id"], format!("acc-{winner}"));
    // References by the loser's id are stored as the winner's.
    let r = app
        .post("/api/v1/crm/accounts")
        .bearer(&admin)
        .json(json!({"name": "Acme US", "parent_account_id": format!("acc-{loser}")}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.body["parent_account_id"], format!("acc-{winner}"));
    let dee = contact(&app, json!({"first_name": "Dee"})).await;
    link(&app, &dee, &loser, json!({})).await;
    assert_eq!(related(&app, "contact", &dee, "accounts").await[0].0, winner);

    // A merged loser comes back only through _unmerge.
    app.post(&format!("/api/v2/account/{loser}/_restore"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(409, "already_merged");
    app.post(&format!("/api/v1/crm/accounts/acc-{loser}/restore"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(409, "already_merged");
    // A merged record cannot be merged again, as loser or winner.
    let other = uuid(&app.create_account(json!({"name": "Other"})).await["id"]);
    for body in [json!({"winner": other, "losers": [loser]}), json!({"winner": loser, "losers": [other]})] {
        app.post("/api/v2/account/_merge").bearer(&admin).json(body).send().await.assert_error(409, "already_merged");
    }
}

#[tokio::test]
async fn a_dry_run_reports_the_merge_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let winner =
        uuid(&app.create_account(json!({"name": "Acme", "domain": "acme.com", "industry": "retail"})).await["id"]);
    let loser =
        uuid(&app.create_account(json!({"name": "Acme Inc", "domain": "acme.io", "industry": "software"})).await["id"]);
    let jo = contact(&app, json!({"first_name": "Jo"})).await;
    link(&app, &jo, &loser, json!({"is_primary": true})).await;
    let mut cursor = None;
    drain_until(&app, &admin, "/api/v2/_changes", &mut cursor, 4).await;
    drain(&app, &admin, "/api/v2/_changes", &mut cursor).await;
    let before =
        (v2(&app, "account", &winner).await, v2(&app, "account", &loser).await, v2(&app, "contact", &jo).await);

    let r = app
        .post("/api/v2/account/_merge")
        .bearer(&admin)
        .json(json!({"winner": winner, "losers": [loser], "dry_run": true, "fields": {"description": "one Acme"}}))
        .send()
        .await;
    r.assert_status(200);
    let report = &r.body["merge"];
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["id"], Value::Null);
    assert_eq!(r.header("etag"), None);
    // It reports what a merge would do: the resulting winner, moves, conflicts, events.
    assert_eq!(value(&r.body, "description"), "one Acme");
    assert_eq!(value(&r.body, "industry"), "retail");
    let conflicts = report["conflicts"].as_array().unwrap();
    let names: Vec<&str> = conflicts.iter().map(|c| c["attribute"].as_str().unwrap()).collect();
    assert_eq!(names, ["display_name", "industry"]);
    assert_eq!(conflicts[1]["resolution"], "winner");
    assert_eq!(conflicts[1]["winner_value"], "retail");
    assert_eq!(conflicts[1]["loser_values"][0]["value"], "software");
    assert_eq!(report["relationships"][0]["related_record_id"], jo.as_str());
    assert_eq!(report["items"][0]["value"], "acme.io");
    let actions: Vec<&str> =
        report["changes"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"merged") && actions.contains(&"merged_into"), "{actions:?}");

    // Nothing was written: records, edges, keys and the feed are as they were.
    let after = (v2(&app, "account", &winner).await, v2(&app, "account", &loser).await, v2(&app, "contact", &jo).await);
    assert_eq!(before, after);
    assert_eq!(related(&app, "contact", &jo, "accounts").await[0].0, loser);
    let r = app.get(&format!("/api/v2/account/{loser}")).bearer(&admin).send().await;
    assert_eq!(r.header("merged-into"), None);
    assert_eq!(r.body["data"]["id"], loser.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(drain(&app, &admin, "/api/v2/_changes", &mut cursor).await.is_empty(), "a dry run appends no event");
    // The real merge still works afterwards.
    let r = app
        .post("/api/v2/account/_merge")
        .bearer(&admin)
        .json(json!({"winner": winner, "losers": [loser]}))
        .send()
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn merging_contacts_moves_emails_phones_and_accounts() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let acme = uuid(&app.create_account(json!({"name": "Acme"})).await["id"]);
    let globex = uuid(&app.create_account(json!({"name": "Globex"})).await["id"]);
    let winner = contact(&app, json!({"first_name": "Jo", "email": "jo@acme.com"})).await;
    let loser = contact(
        &app,
        json!({"first_name": "Joanna", "last_name": "Smith", "email": "jo.smith@gmail.com", "phone": "+1 555 0100"}),
    )
    .await;
    link(&app, &winner, &acme, json!({"role": "CTO"})).await;
    link(&app, &loser, &acme, json!({})).await;
    link(&app, &loser, &globex, json!({"is_primary": true})).await;
    let report_to = contact(&app, json!({"first_name": "Al", "reports_to_contact_id": format!("con-{loser}")})).await;

    let r = app
        .post("/api/v2/contact/_merge")
        .bearer(&admin)
        .json(json!({"winner": winner, "losers": [loser], "fields": {"first_name": "winner"}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(value(&r.body, "first_name"), "Jo");
    assert_eq!(value(&r.body, "last_name"), "Smith");
    assert_eq!(value(&r.body, "primary_email"), "jo@acme.com", "the winner keeps its primary email");
    assert_eq!(items(&r.body["data"]["attributes"], "contact_emails", "email"), ["jo@acme.com", "jo.smith@gmail.com"]);
    assert_eq!(value(&r.body, "primary_phone_number"), "+1 555 0100");
    // The winner had no primary account: it takes the loser's, with both edges.
    let accounts = related(&app, "contact", &winner, "accounts").await;
    let ids: Vec<&str> = accounts.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(accounts.len(), 2, "{ids:?}");
    assert!(ids.contains(&acme.as_str()) && ids.contains(&globex.as_str()));
    let primary: Vec<&str> =
        accounts.iter().filter(|(_, a)| a["is_primary"]["value"] == true).map(|(id, _)| id.as_str()).collect();
    assert_eq!(primary, [globex.as_str()]);
    let acme_contacts = related(&app, "account", &acme, "contacts").await;
    assert_eq!(acme_contacts.len(), 1, "the two Acme edges collapse");
    assert_eq!(acme_contacts[0].1["role"]["value"], "CTO");
    assert_eq!(
        value(&v2(&app, "contact", &report_to).await, "reports_to_contact_id")["related_record_id"],
        winner.as_str()
    );
    // The loser's email is the winner's now: an _assert on it finds the winner.
    let r = app
        .post("/api/v2/contact/_assert")
        .bearer(&admin)
        .json(json!({"match": {"primary_email": "jo.smith@gmail.com"}, "attributes": {"title": "CTO"}}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["id"], winner.as_str());
    // v1 alias on contacts.
    let r = app.get(&format!("/api/v1/crm/contacts/con-{loser}")).bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(r.body["id"], format!("con-{winner}"));
    assert_eq!(r.header("merged-into"), Some(format!("con-{winner}").as_str()));
}

#[tokio::test]
async fn merges_are_refused_across_tenants_scopes_and_bad_bodies() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let a = uuid(&app.create_account(json!({"name": "A"})).await["id"]);
    let b = uuid(&app.create_account(json!({"name": "B"})).await["id"]);
    let merge = |body: Value, token: String| {
        let app = &app;
        async move { app.post("/api/v2/account/_merge").bearer(&token).json(body).send().await }
    };
    // Another tenant sees neither record.
    let intruder = app.token_for("other-tenant", "eve", &["tenant_admin"], &[], None);
    merge(json!({"winner": a, "losers": [b]}), intruder).await.assert_error(404, "record_not_found");
    // An app-scoped caller sees only its app's records.
    let t = app.tenant.clone();
    let sync = app.token_for(&t, "sync-svc", &["app_service_account"], &["accounts:write"], Some("sync"));
    let mine =
        app.post("/api/v2/account").bearer(&sync).json(json!({"attributes": {"display_name": "Mine"}})).send().await;
    mine.assert_status(201);
    let mine = mine.body["data"]["id"].as_str().unwrap().to_owned();
    merge(json!({"winner": mine, "losers": [a]}), sync.clone()).await.assert_error(404, "record_not_found");
    // Bodies: the winner among the losers, a loser twice, no losers, a pick of no loser.
    merge(json!({"winner": a, "losers": [a]}), admin.clone()).await.assert_error(422, "field_value_invalid");
    merge(json!({"winner": a, "losers": [b, b]}), admin.clone()).await.assert_error(422, "field_value_invalid");
    merge(json!({"winner": a, "losers": []}), admin.clone()).await.assert_error(422, "field_value_invalid");
    merge(json!({"winner": a}), admin.clone()).await.assert_error(422, "field_required_missing");
    merge(json!({"winner": a, "losers": [b], "fields": {"industry": format!("loser:{a}")}}), admin.clone())
        .await
        .assert_error(422, "field_value_invalid");
    merge(json!({"winner": a, "losers": [b], "fields": {"domains": "winner"}}), admin.clone())
        .await
        .assert_error(422, "field_not_updatable");
    merge(json!({"winner": a, "losers": [b], "fields": {"nope": "winner"}}), admin.clone())
        .await
        .assert_error(422, "unknown_field");
    // If-Match names the winner's version.
    let r = app
        .post("/api/v2/account/_merge")
        .bearer(&admin)
        .header("If-Match", "\"7\"")
        .json(json!({"winner": a, "losers": [b]}))
        .send()
        .await;
    r.assert_error(412, "precondition_failed");
    // Users are not merged; a reader may not merge.
    app.post("/api/v2/user/_merge").bearer(&admin).json(json!({})).send().await.assert_status(405);
    let reader = app.token_for(&t, "reader", &[], &["accounts:read"], None);
    merge(json!({"winner": a, "losers": [b]}), reader).await.assert_error(403, "forbidden");
    // Nothing above merged anything.
    assert_eq!(v2(&app, "account", &b).await["data"]["attributes"]["archived_at"]["value"], Value::Null);
}

/// Writes racing a merge land on the winner or on the loser before it moves: no edge is
/// lost and no write reaches a half-merged loser.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_merge_is_atomic_under_concurrent_writes() {
    let app = Arc::new(TestApp::spawn().await);
    let admin = app.admin();
    let winner = uuid(&app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await["id"]);
    let loser = uuid(&app.create_account(json!({"name": "Acme Inc", "domain": "acme.io"})).await["id"]);
    let mut contacts = Vec::new();
    for i in 0..12 {
        contacts.push(contact(&app, json!({"first_name": format!("C{i}")})).await);
    }
    let mut tasks = Vec::new();
    for (i, c) in contacts.iter().enumerate() {
        let target = if i % 3 == 0 { winner.clone() } else { loser.clone() };
        let (app, admin, c) = (app.clone(), admin.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let r = app
                .post(&format!("/api/v2/contact/{c}/relationship/accounts"))
                .bearer(&admin)
                .json(json!({"related_record_id": target, "role": format!("r{i}")}))
                .send()
                .await;
            (r.status.as_u16(), r.body)
        }));
    }
    for i in 0..6 {
        let id = if i % 2 == 0 { winner.clone() } else { loser.clone() };
        let (app, admin) = (app.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let r = app
                .patch(&format!("/api/v2/account/{id}"))
                .bearer(&admin)
                .json(json!({"attributes": {"description": format!("d{i}")}}))
                .send()
                .await;
            (r.status.as_u16(), r.body)
        }));
    }
    let merge = {
        let (app, admin, body) = (app.clone(), admin.clone(), json!({"winner": winner, "losers": [loser]}));
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let r = app.post("/api/v2/account/_merge").bearer(&admin).json(body).send().await;
            (r.status.as_u16(), r.body)
        })
    };
    let (status, body) = merge.await.unwrap();
    assert_eq!(status, 200, "{body}");
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(status == 200 || status == 201, "a write racing the merge failed: {status} {body}");
    }
    // Every contact ends up at the winner with its own role; the loser has no edge left.
    for (i, c) in contacts.iter().enumerate() {
        let accounts = related(&app, "contact", c, "accounts").await;
        assert_eq!(accounts.len(), 1, "contact {i}: {accounts:?}");
        assert_eq!(accounts[0].0, winner, "contact {i}");
        assert_eq!(accounts[0].1["role"]["value"], format!("r{i}"));
    }
    let archived = v2(&app, "account", &loser).await;
    assert!(value(&archived, "archived_at").is_string());
    let w = v2(&app, "account", &winner).await;
    assert_eq!(items(&w["data"]["attributes"], "domains", "domain_name"), ["acme.com", "acme.io"]);
}

#[tokio::test]
async fn an_unmerge_restores_the_losers_their_keys_edges_and_references() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let winner = uuid(&app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await["id"]);
    let loser = uuid(&app.create_account(json!({"name": "Acme Inc", "domain": "acme.io"})).await["id"]);
    let child =
        uuid(&app.create_account(json!({"name": "Acme EU", "parent_account_id": format!("acc-{loser}")})).await["id"]);
    let jo = contact(&app, json!({"first_name": "Jo"})).await;
    link(&app, &jo, &loser, json!({"role": "CTO", "is_primary": true})).await;
    let al = contact(&app, json!({"first_name": "Al"})).await;
    link(&app, &al, &winner, json!({"role": "Buyer"})).await;
    link(&app, &al, &loser, json!({})).await;
    let r = app
        .post("/api/v2/account/_merge")
        .bearer(&admin)
        .json(json!({"winner": winner, "losers": [loser]}))
        .send()
        .await;
    r.assert_status(200);
    let merge_id = r.body["merge"]["id"].as_str().unwrap().to_owned();
    let mut cursor = None;
    drain_until(&app, &admin, "/api/v2/_changes", &mut cursor, 1).await;
    drain(&app, &admin, "/api/v2/_changes", &mut cursor).await;

    let r = app.post("/api/v2/account/_unmerge").bearer(&admin).json(json!({"merge_id": merge_id})).send().await;
    r.assert_status(200);
    assert_eq!(r.body["restored"][0]["id"], loser.as_str());
    let domains = |record: &Value| items(&record["attributes"], "domains", "domain_name");
    assert_eq!(domains(&r.body["data"]), ["acme.com"]);
    assert_eq!(domains(&r.body["restored"][0]), ["acme.io"]);
    // The loser is itself again: no alias, active, its edges and references back.
    let got = app.get(&format!("/api/v2/account/{loser}")).bearer(&admin).send().await;
    got.assert_status(200);
    assert_eq!(got.body["data"]["id"], loser.as_str());
    assert_eq!(got.header("merged-into"), None);
    let jo_accounts = related(&app, "contact", &jo, "accounts").await;
    assert_eq!(jo_accounts.len(), 1, "{jo_accounts:?}");
    assert_eq!(jo_accounts[0].0, loser);
    assert_eq!(jo_accounts[0].1["role"]["value"], "CTO");
    assert_eq!(jo_accounts[0].1["is_primary"]["value"], true);
    let al_accounts: Vec<String> =
        related(&app, "contact", &al, "accounts").await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(al_accounts.len(), 2, "the collapsed edge is the winner's again and the loser's comes back");
    assert_eq!(value(&v2(&app, "account", &child).await, "parent_account_id")["related_record_id"], loser.as_str());
    let events = drain_until(&app, &admin, "/api/v2/_changes", &mut cursor, 2).await;
    let action = |id: &str| -> Vec<String> {
        events.iter().filter(|e| e["record_id"] == id).map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(action(&winner), ["unmerged"]);
    assert_eq!(action(&loser), ["unmerged"]);
    // Once only; and the two can be merged again.
    app.post("/api/v2/account/_unmerge")
        .bearer(&admin)
        .json(json!({"merge_id": merge_id}))
        .send()
        .await
        .assert_error(404, "record_not_found");
    app.post("/api/v2/account/_merge")
        .bearer(&admin)
        .json(json!({"winner": winner, "losers": [loser]}))
        .send()
        .await
        .assert_status(200);
}
