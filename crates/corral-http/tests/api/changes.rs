//! The write funnel's outbox as the change feed and field history show it: every mutating
//! route emits exactly one event per changed record with the right diff; the feed's cursor,
//! scopes, app scope and retention; history paging; and feed completeness under concurrent
//! writers on two servers sharing one database.

use crate::helpers::TestApp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Reads the feed after `cursor` to its end; returns the events and the cursor to resume at.
pub(crate) async fn drain(app: &TestApp, token: &str, path: &str, cursor: &mut Option<String>) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match cursor {
            Some(c) => format!("{path}{sep}after={c}&limit=7"),
            None => format!("{path}{sep}limit=7"),
        };
        let r = app.get(&url).bearer(token).send().await;
        r.assert_status(200);
        let next = r.body["next_cursor"].as_str().expect("next_cursor is always present").to_owned();
        let page = r.body["data"].as_array().unwrap().clone();
        *cursor = Some(next);
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// [`drain`] until at least `n` events have come. On PostgreSQL the feed serves a write once
/// every transaction older than it has ended, and tests running alongside on the same
/// server hold transactions open for a moment: a write shows up shortly after it commits.
pub(crate) async fn drain_until(
    app: &TestApp,
    token: &str,
    path: &str,
    cursor: &mut Option<String>,
    n: usize,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut out = Vec::new();
    loop {
        out.extend(drain(app, token, path, cursor).await);
        if out.len() >= n || std::time::Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The new events since the last call, as (record id, action, sorted changed keys).
struct Watcher<'a> {
    app: &'a TestApp,
    token: String,
    cursor: Option<String>,
}

impl Watcher<'_> {
    /// The events of the next write (one transaction: they become visible together).
    async fn take(&mut self) -> Vec<Value> {
        drain_until(self.app, &self.token, "/api/v2/_changes", &mut self.cursor, 1).await
    }

    /// Whatever is visible now (after a write that should emit nothing: any event it did
    /// emit would also show in the next [`Watcher::take`], whose check is exact).
    async fn take_now(&mut self) -> Vec<Value> {
        drain(self.app, &self.token, "/api/v2/_changes", &mut self.cursor).await
    }

    /// Asserts the new events are exactly `expected`: (record id, action, changed keys).
    #[track_caller]
    fn check(events: &[Value], expected: &[(&str, &str, &[&str])]) {
        let mut got: Vec<(String, String, Vec<String>)> = events
            .iter()
            .map(|e| {
                let mut keys: Vec<String> = e["changed_fields"].as_object().unwrap().keys().cloned().collect();
                keys.sort();
                (e["record_id"].as_str().unwrap().to_owned(), e["action"].as_str().unwrap().to_owned(), keys)
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String, Vec<String>)> = expected
            .iter()
            .map(|(id, action, keys)| {
                let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
                keys.sort();
                ((*id).to_owned(), (*action).to_owned(), keys)
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "events: {}", serde_json::to_string_pretty(events).unwrap());
    }
}

fn change<'a>(events: &'a [Value], id: &str, key: &str) -> &'a Value {
    let e = events.iter().find(|e| e["record_id"] == id).unwrap_or_else(|| panic!("no event for {id}"));
    &e["changed_fields"][key]
}

#[tokio::test]
async fn every_mutating_route_emits_one_event_per_changed_record() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let mut w = Watcher { app: &app, token: admin.clone(), cursor: None };

    // v1 create.
    let acme = app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await;
    let acme_v1 = acme["id"].as_str().unwrap();
    let acme_id = acme_v1.split_once('-').unwrap().1.to_owned();
    let acme_id = acme_id.as_str();
    let events = w.take().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "created");
    assert_eq!(events[0]["version"], 1);
    assert_eq!(events[0]["record_type"], "account");
    assert_eq!(events[0]["actor"], json!({"type": "user", "id": "admin-1"}));
    assert!(events[0]["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(change(&events, acme_id, "display_name"), &json!({"old": null, "new": "Acme"}));
    assert_eq!(change(&events, acme_id, "domains")["new"][0]["domain_name"], "acme.com");

    // v2 create of a contact whose email auto-associates it with acme: the contact is
    // created with its primary account, and acme gains the edge (one event each).
    let r = app
        .post("/api/v2/contact")
        .bearer(&admin)
        .header("x-request-id", "req-create-jo")
        .json(json!({"attributes": {"first_name": "Jo", "primary_email": "jo@acme.com"}}))
        .send()
        .await;
    r.assert_status(201);
    let jo = r.body["data"]["id"].as_str().unwrap().to_owned();
    let events = w.take().await;
    let edge_to_acme = format!("accounts.{acme_id}");
    let edge_to_jo = format!("contacts.{jo}");
    assert_eq!(events.len(), 2, "{events:?}");
    let jo_created = events.iter().find(|e| e["record_id"] == jo.as_str()).unwrap();
    assert_eq!(jo_created["action"], "created");
    for key in ["first_name", "contact_emails", "primary_account_id", edge_to_acme.as_str()] {
        assert!(jo_created["changed_fields"].get(key).is_some(), "{key} missing: {jo_created}");
    }
    let acme_updated: Vec<Value> = events.iter().filter(|e| e["record_id"] == acme_id).cloned().collect();
    Watcher::check(&acme_updated, &[(acme_id, "updated", &[&edge_to_jo])]);
    let jo_event = events.iter().find(|e| e["record_id"] == jo.as_str()).unwrap();
    assert_eq!(jo_event["request_id"], "req-create-jo");
    assert_eq!(change(&events, &jo, "primary_account_id"), &json!({"old": null, "new": acme_id}));
    assert_eq!(change(&events, acme_id, &edge_to_jo)["new"]["related_record_id"], jo.as_str());
    let acme_event = events.iter().find(|e| e["record_id"] == acme_id).unwrap();
    assert_eq!(acme_event["version"], 1, "a relationship change keeps the record's version");

    // v2 update; the same update again changes nothing and emits nothing.
    for round in 0..2 {
        app.patch(&format!("/api/v2/account/{acme_id}"))
            .bearer(&admin)
            .json(json!({"attributes": {"display_name": "Acme Inc", "industry": "Software"}}))
            .send()
            .await
            .assert_status(200);
        let events = if round == 0 { w.take().await } else { w.take_now().await };
        if round == 0 {
            Watcher::check(&events, &[(acme_id, "updated", &["display_name", "industry"])]);
            assert_eq!(change(&events, acme_id, "display_name"), &json!({"old": "Acme", "new": "Acme Inc"}));
            assert_eq!(events[0]["version"], 2);
        } else {
            assert!(events.is_empty(), "a write that changes nothing emits nothing: {events:?}");
        }
    }

    // v1 patch and replace.
    app.patch(&format!("/api/v1/crm/accounts/{acme_v1}"))
        .bearer(&admin)
        .json(json!({"description": "Makes things"}))
        .send()
        .await
        .assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "updated", &["description"])]);
    app.put(&format!("/api/v1/crm/accounts/{acme_v1}"))
        .bearer(&admin)
        .json(json!({"name": "Acme Inc", "domain": "acme.com", "industry": "Software"}))
        .send()
        .await
        .assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "updated", &["description"])]);

    // Sub-resources: a domain, an email.
    app.post(&format!("/api/v2/account/{acme_id}/attribute/domains"))
        .bearer(&admin)
        .json(json!({"domain_name": "acme.io"}))
        .send()
        .await
        .assert_status(201);
    Watcher::check(&w.take().await, &[(acme_id, "updated", &["domains"])]);
    app.post(&format!("/api/v2/contact/{jo}/attribute/contact_emails"))
        .bearer(&admin)
        .json(json!({"email": "jo@home.example"}))
        .send()
        .await
        .assert_status(201);
    Watcher::check(&w.take().await, &[(&jo, "updated", &["contact_emails"])]);

    // Relationships: add an edge (both ends change), make it primary (the contact's fact:
    // only the contact changes), remove it (both ends; the contact loses its primary).
    let beta = app.create_account(json!({"name": "Beta", "domain": "beta.com"})).await;
    let beta_id = beta["id"].as_str().unwrap().split_once('-').unwrap().1.to_owned();
    let beta_id = beta_id.as_str();
    w.take().await;
    let edge_to_beta = format!("accounts.{beta_id}");
    app.post(&format!("/api/v2/contact/{jo}/relationship/accounts"))
        .bearer(&admin)
        .json(json!({"related_record_id": beta_id, "role": "CTO"}))
        .send()
        .await
        .assert_status(201);
    let events = w.take().await;
    Watcher::check(&events, &[(&jo, "updated", &[&edge_to_beta]), (beta_id, "updated", &[&edge_to_jo])]);
    assert_eq!(
        change(&events, &jo, &edge_to_beta),
        &json!({"old": null, "new": {"related_record_id": beta_id, "role": "CTO"}})
    );
    app.patch(&format!("/api/v2/contact/{jo}/relationship/accounts/{beta_id}"))
        .bearer(&admin)
        .json(json!({"is_primary": true}))
        .send()
        .await
        .assert_status(200);
    let events = w.take().await;
    Watcher::check(&events, &[(&jo, "updated", &["primary_account_id"])]);
    assert_eq!(change(&events, &jo, "primary_account_id"), &json!({"old": acme_id, "new": beta_id}));
    app.delete(&format!("/api/v2/contact/{jo}/relationship/accounts/{beta_id}"))
        .bearer(&admin)
        .send()
        .await
        .assert_status(204);
    Watcher::check(
        &w.take().await,
        &[(&jo, "updated", &["primary_account_id", &edge_to_beta]), (beta_id, "updated", &[&edge_to_jo])],
    );

    // v1 account_id replaces the primary edge: the old account loses it, the new one gains it.
    app.patch(&format!("/api/v1/crm/contacts/con-{jo}"))
        .bearer(&admin)
        .json(json!({"account_id": format!("acc-{beta_id}")}))
        .send()
        .await
        .assert_status(200);
    Watcher::check(
        &w.take().await,
        &[(&jo, "updated", &["primary_account_id", &edge_to_beta]), (beta_id, "updated", &[&edge_to_jo])],
    );

    // Archive, restore.
    app.delete(&format!("/api/v2/account/{acme_id}")).bearer(&admin).send().await.assert_status(204);
    let events = w.take().await;
    Watcher::check(&events, &[(acme_id, "archived", &["archived_at"])]);
    app.post(&format!("/api/v2/account/{acme_id}/_restore")).bearer(&admin).send().await.assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "restored", &["archived_at"])]);

    // Assert: an update of an existing record, then a create.
    app.post("/api/v2/account/_assert")
        .bearer(&admin)
        .json(json!({"match": {"domain_name": "acme.com"}, "attributes": {"industry": "Hardware"}}))
        .send()
        .await
        .assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "updated", &["industry"])]);
    let r = app
        .post("/api/v2/account/_assert")
        .bearer(&admin)
        .json(json!({"match": {"domain_name": "gamma.com"}, "attributes": {"display_name": "Gamma"}}))
        .send()
        .await;
    r.assert_status(201);
    let gamma = r.body["data"]["id"].as_str().unwrap().to_owned();
    let events = w.take().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0]["record_id"].as_str(), events[0]["action"].as_str()),
        (Some(gamma.as_str()), Some("created"))
    );

    // Purge: acme's edge to jo goes (jo changes), a child account loses its parent (the child
    // changes), and acme's earlier events are erased with it.
    let child = app.create_account(json!({"name": "Child", "parent_account_id": acme_v1})).await;
    let child_id = child["id"].as_str().unwrap().split_once('-').unwrap().1.to_owned();
    w.take().await;
    app.delete(&format!("/api/v2/account/{acme_id}?purge=true")).bearer(&admin).send().await.assert_status(204);
    let events = w.take().await;
    Watcher::check(
        &events,
        &[(acme_id, "purged", &[]), (&jo, "updated", &[&edge_to_acme]), (&child_id, "updated", &["parent_account_id"])],
    );
    let mut all = None;
    let everything = drain_until(&app, &admin, "/api/v2/_changes", &mut all, 1).await;
    let acme_events: Vec<&Value> = everything.iter().filter(|e| e["record_id"] == acme_id).collect();
    assert_eq!(acme_events.len(), 1, "a purge erases the record's history: {acme_events:?}");
    assert_eq!(acme_events[0]["action"], "purged");
}

/// The mutation paths the walk above does not take: v1 archive and restore, sub-resource
/// update and removal (domains, emails, phones), a role-only relationship update, an
/// idempotent replay (emits nothing), and a purge clearing custom references to the record.
#[tokio::test]
async fn the_other_mutation_paths_emit_one_event_per_changed_record() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let mut w = Watcher { app: &app, token: admin.clone(), cursor: None };
    let r = app
        .post("/api/v2/_schema/contact/attributes")
        .bearer(&admin)
        .json(json!({"api_name": "referrer", "value_type": "record_reference", "target": "account"}))
        .send()
        .await;
    r.assert_status(201);

    let acme = app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await;
    let acme_v1 = acme["id"].as_str().unwrap().to_owned();
    let acme_id = acme_v1.strip_prefix("acc-").unwrap().to_owned();
    let acme_id = acme_id.as_str();
    w.take().await;

    // v1 archive and restore.
    app.delete(&format!("/api/v1/crm/accounts/{acme_v1}")).bearer(&admin).send().await.assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "archived", &["archived_at"])]);
    app.post(&format!("/api/v1/crm/accounts/{acme_v1}/restore")).bearer(&admin).send().await.assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "restored", &["archived_at"])]);

    // Domains: add one, make it primary, remove the old one.
    app.post(&format!("/api/v2/account/{acme_id}/attribute/domains"))
        .bearer(&admin)
        .json(json!({"domain_name": "acme.io"}))
        .send()
        .await
        .assert_status(201);
    Watcher::check(&w.take().await, &[(acme_id, "updated", &["domains"])]);
    app.patch(&format!("/api/v2/account/{acme_id}/attribute/domains/acme.io"))
        .bearer(&admin)
        .json(json!({"is_primary": true}))
        .send()
        .await
        .assert_status(200);
    Watcher::check(&w.take().await, &[(acme_id, "updated", &["domains"])]);
    app.delete(&format!("/api/v2/account/{acme_id}/attribute/domains/acme.com"))
        .bearer(&admin)
        .send()
        .await
        .assert_status(204);
    let events = w.take().await;
    Watcher::check(&events, &[(acme_id, "updated", &["domains"])]);
    let names = |v: &Value| -> Vec<String> {
        v.as_array().into_iter().flatten().map(|d| d["domain_name"].as_str().unwrap_or_default().to_owned()).collect()
    };
    let mut old = names(&change(&events, acme_id, "domains")["old"]);
    old.sort();
    assert_eq!(old, ["acme.com", "acme.io"]);
    assert_eq!(names(&change(&events, acme_id, "domains")["new"]), vec!["acme.io".to_owned()]);

    // A contact with a custom reference to acme; its phones and emails.
    let r = app
        .post("/api/v2/contact")
        .bearer(&admin)
        .json(json!({"attributes": {"first_name": "Jo", "primary_email": "jo@example.org", "referrer": acme_id}}))
        .send()
        .await;
    r.assert_status(201);
    let jo = r.body["data"]["id"].as_str().unwrap().to_owned();
    w.take().await;
    let r = app
        .post(&format!("/api/v2/contact/{jo}/attribute/contact_phone_numbers"))
        .bearer(&admin)
        .json(json!({"phone_number": "+1 555 0100"}))
        .send()
        .await;
    r.assert_status(201);
    Watcher::check(&w.take().await, &[(&jo, "updated", &["contact_phone_numbers"])]);
    let phone_item = r.body["data"]["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v2/contact/{jo}/attribute/contact_phone_numbers/{phone_item}"))
        .bearer(&admin)
        .send()
        .await
        .assert_status(204);
    Watcher::check(&w.take().await, &[(&jo, "updated", &["contact_phone_numbers"])]);
    let r = app
        .post(&format!("/api/v2/contact/{jo}/attribute/contact_emails"))
        .bearer(&admin)
        .json(json!({"email": "jo@home.example"}))
        .send()
        .await;
    r.assert_status(201);
    let email_item = r.body["data"]["id"].as_str().unwrap().to_owned();
    w.take().await;
    app.patch(&format!("/api/v2/contact/{jo}/attribute/contact_emails/{email_item}"))
        .bearer(&admin)
        .json(json!({"is_primary": true}))
        .send()
        .await
        .assert_status(200);
    Watcher::check(&w.take().await, &[(&jo, "updated", &["contact_emails"])]);
    app.delete(&format!("/api/v2/contact/{jo}/attribute/contact_emails/{email_item}"))
        .bearer(&admin)
        .send()
        .await
        .assert_status(204);
    Watcher::check(&w.take().await, &[(&jo, "updated", &["contact_emails"])]);

    // A role-only relationship update changes the edge at both ends.
    let edge_to_acme = format!("accounts.{acme_id}");
    let edge_to_jo = format!("contacts.{jo}");
    app.post(&format!("/api/v2/contact/{jo}/relationship/accounts"))
        .bearer(&admin)
        .json(json!({"related_record_id": acme_id, "role": "CTO"}))
        .send()
        .await
        .assert_status(201);
    w.take().await;
    app.patch(&format!("/api/v2/contact/{jo}/relationship/accounts/{acme_id}"))
        .bearer(&admin)
        .json(json!({"role": "CEO"}))
        .send()
        .await
        .assert_status(200);
    let events = w.take().await;
    Watcher::check(&events, &[(&jo, "updated", &[&edge_to_acme]), (acme_id, "updated", &[&edge_to_jo])]);
    assert_eq!(change(&events, &jo, &edge_to_acme)["old"]["role"], "CTO");
    assert_eq!(change(&events, &jo, &edge_to_acme)["new"]["role"], "CEO");

    // An idempotent replay answers the first response again and writes nothing.
    for round in 0..2 {
        app.post("/api/v2/account")
            .bearer(&admin)
            .header("idempotency-key", "once")
            .json(json!({"attributes": {"display_name": "Once"}}))
            .send()
            .await
            .assert_status(201);
        let events = if round == 0 { w.take().await } else { w.take_now().await };
        assert_eq!(events.len(), 1 - round, "round {round}: {events:?}");
    }

    // Purging acme clears jo's custom reference to it (and the edge), in one event for jo.
    app.delete(&format!("/api/v2/account/{acme_id}?purge=true")).bearer(&admin).send().await.assert_status(204);
    let events = w.take().await;
    Watcher::check(&events, &[(acme_id, "purged", &[]), (&jo, "updated", &[&edge_to_acme, "referrer"])]);
    assert_eq!(change(&events, &jo, "referrer"), &json!({"old": acme_id, "new": null}));
    let r = app.get(&format!("/api/v2/contact/{jo}")).bearer(&admin).send().await;
    assert_eq!(r.body["data"]["attributes"]["referrer"]["value"], Value::Null);
}

#[tokio::test]
async fn the_feed_resumes_filters_scopes_and_expires() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    app.create_account(json!({"name": "A", "domain": "a.com"})).await;
    app.post("/api/v1/crm/contacts").bearer(&admin).json(json!({"first_name": "C"})).send().await.assert_status(201);

    // Caught up: no events, and a cursor to resume from later.
    let mut cursor = None;
    let all = drain_until(&app, &admin, "/api/v2/_changes", &mut cursor, 2).await;
    assert_eq!(all.len(), 2);
    let resume = cursor.clone().unwrap();
    let r = app.get(&format!("/api/v2/_changes?after={resume}")).bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["next_cursor"], resume.as_str(), "a caught-up reader keeps its position");
    app.create_account(json!({"name": "B"})).await;
    let mut from_resume = Some(resume.clone());
    let new = drain_until(&app, &admin, "/api/v2/_changes", &mut from_resume, 1).await;
    assert_eq!(new.len(), 1, "resuming yields only the new event");
    assert_eq!(new[0]["changed_fields"]["display_name"]["new"], "B");

    // Types, and the scopes they need.
    let r = app.get("/api/v2/_changes?types=contact").bearer(&admin).send().await;
    assert!(r.body["data"].as_array().unwrap().iter().all(|e| e["record_type"] == "contact"));
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let accounts_only = app.token_for(&app.tenant, "reader", &[], &["accounts:read"], None);
    app.get("/api/v2/_changes?types=contact").bearer(&accounts_only).send().await.assert_error(403, "forbidden");
    let r = app.get("/api/v2/_changes").bearer(&accounts_only).send().await;
    assert!(r.body["data"].as_array().unwrap().iter().all(|e| e["record_type"] == "account"));
    app.get("/api/v2/_changes?types=user").bearer(&admin).send().await.assert_error(400, "invalid_query_parameter");
    app.get("/api/v2/_changes?after=garbage").bearer(&admin).send().await.assert_error(400, "invalid_cursor");
    let other_tenant = app.token_for("someone-else", "x", &["tenant_admin"], &[], None);
    app.get(&format!("/api/v2/_changes?after={resume}"))
        .bearer(&other_tenant)
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    let r = app.get("/api/v2/_changes").bearer(&other_tenant).send().await;
    assert_eq!(r.body["data"], json!([]), "another tenant sees none of these events");

    // App scope: an app's caller sees only its app's records' events.
    let app_token = app.token_for(&app.tenant, "svc", &["app_service_account"], &["accounts:write"], Some("billing"));
    app.post("/api/v1/crm/accounts")
        .bearer(&app_token)
        .json(json!({"name": "Billing Co"}))
        .send()
        .await
        .assert_status(201);
    let data = drain_until(&app, &app_token, "/api/v2/_changes", &mut None, 1).await;
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["app_id"], "billing");

    // v1 view: flat documents, v1 names and ids.
    let r = app.get("/api/v1/crm/changes?types=accounts").bearer(&admin).send().await;
    r.assert_status(200);
    let first = &r.body["data"][0];
    assert!(first["record_id"].as_str().unwrap().starts_with("acc-"));
    assert_eq!(first["changed_fields"]["name"]["new"], "A");
    assert_eq!(first["actor_type"], "user");
    assert!(first["changed_fields"].get("display_name").is_none());

    // Retention: once events after a cursor are pruned, the cursor is expired (410); a
    // reader starting over gets the retained events.
    let cutoff = corral_core::Timestamp(corral_core::Timestamp::now().millis() + 1);
    assert!(app.state.store().prune_changes(cutoff).await.unwrap() >= 4);
    app.get(&format!("/api/v2/_changes?after={resume}"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(410, "cursor_expired");
    // Starting over with nothing retained gives a cursor at the horizon, not an expired one.
    let r = app.get("/api/v2/_changes").bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(r.body["data"], json!([]));
    let horizon = r.body["next_cursor"].as_str().unwrap().to_owned();
    app.get(&format!("/api/v2/_changes?after={horizon}")).bearer(&admin).send().await.assert_status(200);
    app.create_account(json!({"name": "After"})).await;
    let mut fresh = None;
    assert_eq!(drain_until(&app, &admin, "/api/v2/_changes", &mut fresh, 1).await.len(), 1);
}

#[tokio::test]
async fn history_is_newest_first_paged_in_both_dialects() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let acme = app.create_account(json!({"name": "Acme"})).await;
    let v1 = acme["id"].as_str().unwrap();
    let id = v1.split_once('-').unwrap().1;
    for n in 1..=4 {
        app.patch(&format!("/api/v2/account/{id}"))
            .bearer(&admin)
            .json(json!({"attributes": {"employee_count": n}}))
            .send()
            .await
            .assert_status(200);
    }
    app.delete(&format!("/api/v2/account/{id}")).bearer(&admin).send().await.assert_status(204);
    let mut versions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v2/account/{id}/_history?include_archived=true&limit=2&cursor={c}"),
            None => format!("/api/v2/account/{id}/_history?include_archived=true&limit=2"),
        };
        let r = app.get(&url).bearer(&admin).send().await;
        r.assert_status(200);
        versions.extend(r.body["data"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(versions, vec![6, 5, 4, 3, 2, 1], "newest first, archived record included");
    let r =
        app.get(&format!("/api/v2/account/{id}/_history?limit=1&include_archived=true")).bearer(&admin).send().await;
    assert_eq!(r.body["data"][0]["action"], "archived");
    // Like reading the record, an archived record's history is 404 without the flag.
    app.get(&format!("/api/v2/account/{id}/_history"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(404, "record_not_found");
    app.get(&format!("/api/v1/crm/accounts/{v1}/history"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(404, "record_not_found");
    app.get(&format!("/api/v1/crm/accounts/{v1}/history?include_archived=true"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(400, "invalid_query_parameter");
    let r =
        app.get(&format!("/api/v1/crm/accounts/{v1}/history?limit=2&include_deleted=true")).bearer(&admin).send().await;
    r.assert_status(200);
    assert_eq!(r.body["data"][1]["changed_fields"]["employee_count"], json!({"old": 3, "new": 4}));
    assert!(r.body["data"][0]["changed_fields"].get("deleted_at").is_some(), "v1 names: {}", r.body);
    // A history cursor belongs to its record.
    let other = app.create_account(json!({"name": "Other"})).await;
    let other_id = other["id"].as_str().unwrap().split_once('-').unwrap().1;
    let c = app
        .get(&format!("/api/v2/account/{id}/_history?limit=1&include_archived=true"))
        .bearer(&admin)
        .send()
        .await
        .body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/api/v2/account/{other_id}/_history?cursor={c}"))
        .bearer(&admin)
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    let contacts_only = app.token_for(&app.tenant, "reader", &[], &["contacts:read"], None);
    app.get(&format!("/api/v2/account/{other_id}/_history"))
        .bearer(&contacts_only)
        .send()
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v2/account/0193aaaa-0000-7000-8000-000000000000/_history")
        .bearer(&admin)
        .send()
        .await
        .assert_error(404, "record_not_found");
}

/// 16 writers over two servers sharing one database, with a reader following the feed while
/// they write: every committed change appears exactly once, and reading the whole feed again
/// gives the same order. On PostgreSQL transactions commit out of xid order all the time
/// here; the reader's snapshot horizon is what keeps it from skipping them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_is_complete_and_stable_under_concurrent_writers() {
    let (first, second) = TestApp::spawn_pair().await;
    let admin = first.admin();
    const WRITERS: usize = 16;
    const WRITES: usize = 6;
    // The number of committed changes once every writer is done (0 before).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let (router, token, done) = (first.router.clone(), admin.clone(), done.clone());
        tokio::spawn(async move {
            let mut cursor: Option<String> = None;
            let mut seen = Vec::new();
            let mut deadline: Option<std::time::Instant> = None;
            loop {
                let target = done.load(std::sync::atomic::Ordering::SeqCst);
                loop {
                    let url = match &cursor {
                        Some(c) => format!("/api/v2/_changes?limit=50&after={c}"),
                        None => "/api/v2/_changes?limit=50".to_owned(),
                    };
                    let body = crate::helpers::raw_get(&router, &url, &token).await;
                    cursor = Some(body["next_cursor"].as_str().unwrap().to_owned());
                    let page = body["data"].as_array().unwrap().clone();
                    if page.is_empty() {
                        break;
                    }
                    seen.extend(page);
                }
                // Done when every committed change has come (or, failing, after a deadline;
                // duplicates would make it come early, and are checked below).
                if target > 0 && (seen.len() >= target || deadline.is_some_and(|d| std::time::Instant::now() > d)) {
                    return seen;
                }
                if target > 0 && deadline.is_none() {
                    deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(30));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = if w % 2 == 0 { first.router.clone() } else { second.router.clone() };
        let token = admin.clone();
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let body = json!({"name": format!("w{w}")});
            let (status, doc) =
                crate::helpers::raw_send(&app, "POST", "/api/v1/crm/accounts", &token, Some(body)).await;
            assert_eq!(status, 201, "{doc}");
            let id = doc["id"].as_str().unwrap().split_once('-').unwrap().1.to_owned();
            committed.push((id.clone(), 1));
            for n in 1..WRITES {
                let path = format!("/api/v2/account/{id}");
                let body = json!({"attributes": {"employee_count": n}});
                let (status, doc) = crate::helpers::raw_send(&app, "PATCH", &path, &token, Some(body)).await;
                assert_eq!(status, 200, "{doc}");
                committed.push((id.clone(), n as i64 + 1));
            }
            committed
        }));
    }
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    // Every writer has committed: the reader reads on until it has them all.
    done.store(committed.len(), std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let mut counts: HashMap<(String, i64), usize> = HashMap::new();
    for e in &seen {
        *counts.entry((e["record_id"].as_str().unwrap().to_owned(), e["version"].as_i64().unwrap())).or_default() += 1;
    }
    assert_eq!(committed.len(), WRITERS * WRITES);
    for key in &committed {
        assert_eq!(counts.get(key), Some(&1), "change {key:?} seen {:?} times", counts.get(key));
    }
    assert_eq!(seen.len(), committed.len(), "no event beyond the committed changes");
    // Per record, versions arrive in order.
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for e in &seen {
        let id = e["record_id"].as_str().unwrap().to_owned();
        let v = e["version"].as_i64().unwrap();
        assert!(last.insert(id, v).is_none_or(|prev| prev < v), "versions out of order");
    }
    // A second reader, from the start, sees the same order.
    let mut again = None;
    let replay = drain_until(&second, &admin, "/api/v2/_changes", &mut again, seen.len()).await;
    let ids = |events: &[Value]| events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(&replay), ids(&seen), "the feed order is stable");
}
