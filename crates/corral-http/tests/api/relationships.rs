//! Relationships: account `contacts` ↔ contact `accounts` with `role` and `is_primary`.

use crate::helpers::TestApp;
use serde_json::{Value, json};

fn uuid(v1_id: &Value) -> String {
    v1_id.as_str().unwrap().split_once('-').unwrap().1.to_owned()
}

#[tokio::test]
async fn edges_are_added_listed_updated_and_removed_from_either_side() {
    let app = TestApp::spawn().await;
    let acme = app.create_account(json!({"name": "Acme", "domain": "acme.com"})).await;
    let globex = app.create_account(json!({"name": "Globex", "domain": "globex.com"})).await;
    let c = app
        .post("/api/v1/crm/contacts")
        .bearer(&app.admin())
        .json(json!({"first_name": "Jo", "email": "jo@gmail.com"}))
        .send()
        .await;
    let contact = c.body;
    let (acme_id, globex_id, jo) = (uuid(&acme["id"]), uuid(&globex["id"]), uuid(&contact["id"]));
    let base = format!("/api/v2/contact/{jo}/relationship/accounts");

    // Add by id, with edge attributes: 201; again: 200.
    let r = app
        .post(&base)
        .bearer(&app.admin())
        .json(json!({"related_record_id": acme_id, "role": "CTO", "is_primary": true}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.body["parent"], json!({"id": jo, "record_type": "contact"}));
    assert_eq!(r.body["api_name"], "accounts");
    assert_eq!(r.body["item"]["related_record_id"], acme_id);
    assert_eq!(r.body["item"]["related_record_type"], "account");
    assert_eq!(r.body["item"]["through"]["attributes"]["role"], json!({"value_type": "string", "value": "CTO"}));
    assert_eq!(r.body["item"]["through"]["attributes"]["is_primary"]["value"], true);
    app.post(&base).bearer(&app.admin()).json(json!({"related_record_id": acme_id})).send().await.assert_status(200);
    // The primary edge is the v1 account_id.
    let v1 = app.get(&format!("/api/v1/crm/contacts/{jo}")).bearer(&app.admin()).send().await;
    assert_eq!(v1.body["account_id"], acme["id"]);
    // Add by match; making it primary demotes the previous primary edge.
    let r = app
        .post(&base)
        .bearer(&app.admin())
        .json(json!({"related_record_match": {"domain_name": "www.globex.com"}, "is_primary": true}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.body["item"]["related_record_id"], globex_id);
    let list = app.get(&base).bearer(&app.admin()).send().await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let primary: Vec<_> = items.iter().filter(|i| i["through"]["attributes"]["is_primary"]["value"] == true).collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0]["related_record_id"], globex_id);
    let v1 = app.get(&format!("/api/v1/crm/contacts/{jo}")).bearer(&app.admin()).send().await;
    assert_eq!(v1.body["account_id"], globex["id"]);
    // The same junction seen from the account side.
    let from_account =
        app.get(&format!("/api/v2/account/{acme_id}/relationship/contacts")).bearer(&app.admin()).send().await;
    assert_eq!(from_account.body["items"][0]["related_record_id"], jo);
    assert_eq!(from_account.body["items"][0]["through"]["attributes"]["role"]["value"], "CTO");
    // PATCH an edge.
    let r = app
        .patch(&format!("/api/v2/account/{acme_id}/relationship/contacts/{jo}"))
        .bearer(&app.admin())
        .json(json!({"role": "CEO"}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["item"]["through"]["attributes"]["role"]["value"], "CEO");
    // Removing the primary edge clears account_id.
    app.delete(&format!("{base}/{globex_id}")).bearer(&app.admin()).send().await.assert_status(204);
    let v1 = app.get(&format!("/api/v1/crm/contacts/{jo}")).bearer(&app.admin()).send().await;
    assert_eq!(v1.body["account_id"], json!(null));
    app.delete(&format!("{base}/{globex_id}")).bearer(&app.admin()).send().await.assert_error(404, "record_not_found");
    // Errors.
    app.get(&format!("/api/v2/contact/{jo}/relationship/friends"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(404, "unknown_relationship");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"related_record_id": acme_id, "related_record_match": {"domain_name": "acme.com"}}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"role": "x"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"related_record_id": "0193aaaa-0000-7000-8000-000000000000"}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"related_record_match": {"display_name": "Acme"}}))
        .send()
        .await
        .assert_error(422, "invalid_matching_field");
    app.post(&base)
        .bearer(&app.admin())
        .json(json!({"related_record_match": {"domain_name": "nowhere.com"}}))
        .send()
        .await
        .assert_error(422, "target_record_not_found");
    app.get("/api/v2/contact/0193aaaa-0000-7000-8000-000000000000/relationship/accounts")
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(404, "record_not_found");
}

#[tokio::test]
async fn relationship_lists_page_with_cursors_and_hide_archived_targets() {
    let app = TestApp::spawn().await;
    let acme = app.create_account(json!({"name": "Acme"})).await;
    let acme_id = uuid(&acme["id"]);
    let base = format!("/api/v2/account/{acme_id}/relationship/contacts");
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = app
            .post("/api/v1/crm/contacts")
            .bearer(&app.admin())
            .json(json!({"first_name": format!("c{i}")}))
            .send()
            .await;
        let id = uuid(&c.body["id"]);
        app.post(&base).bearer(&app.admin()).json(json!({"related_record_id": id})).send().await.assert_status(201);
        ids.push(id);
    }
    let mut seen = Vec::new();
    let mut url = format!("{base}?limit=2");
    loop {
        let r = app.get(&url).bearer(&app.admin()).send().await;
        r.assert_status(200);
        seen.extend(
            r.body["items"].as_array().unwrap().iter().map(|i| i["related_record_id"].as_str().unwrap().to_owned()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{base}?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // A cursor of one relationship does not work on another.
    let r = app.get(&format!("{base}?limit=2")).bearer(&app.admin()).send().await;
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let other = app.create_account(json!({"name": "Other"})).await;
    app.get(&format!("/api/v2/account/{}/relationship/contacts?cursor={cursor}", uuid(&other["id"])))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(400, "invalid_cursor");
    // Archived contacts drop out of the list.
    app.delete(&format!("/api/v2/contact/{}", ids[0])).bearer(&app.admin()).send().await.assert_status(204);
    let r = app.get(&base).bearer(&app.admin()).send().await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
    app.get(&format!("{base}?limit=0")).bearer(&app.admin()).send().await.assert_error(400, "invalid_query_parameter");
}
