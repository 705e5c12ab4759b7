//! Admin routes: the user directory and tenant settings.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn users_are_added_listed_and_updated_per_tenant() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": " Bob@Example.COM ", "display_name": "Bob"}))
        .send()
        .await;
    r.assert_status(201);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("usr-"));
    assert_eq!(r.body["data"]["email"], "Bob@example.com");
    assert_eq!(r.body["data"]["is_active"], true);
    // Emails are unique per tenant, case-insensitively.
    app.post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": "bob@example.com"}))
        .send()
        .await
        .assert_error(409, "conflict");
    app.post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": "not-an-email"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    // Create validates like PATCH: an empty email or a non-boolean is_active is refused.
    app.post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": ""}))
        .send()
        .await
        .assert_error(422, "field_required_missing");
    app.post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": "d@example.com", "is_active": "banana"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"display_name": "x"}))
        .send()
        .await
        .assert_error(422, "field_required_missing");
    app.post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": "c@example.com", "role": "god"}))
        .send()
        .await
        .assert_error(422, "unknown_field");
    // A blank email is a missing one, and `is_active` must be a boolean (as on PATCH): neither
    // creates a user (found by schemathesis: both used to answer 201).
    for blank in ["", "   "] {
        app.post("/api/admin/users")
            .bearer(&app.admin())
            .json(json!({"email": blank}))
            .send()
            .await
            .assert_error(422, "field_required_missing");
    }
    for bad in [json!({}), json!("false"), json!(0), json!(null)] {
        app.post("/api/admin/users")
            .bearer(&app.admin())
            .json(json!({"email": "d@example.com", "is_active": bad}))
            .send()
            .await
            .assert_error(422, "field_value_invalid");
    }
    let r = app
        .post("/api/admin/users")
        .bearer(&app.admin())
        .json(json!({"email": "d@example.com", "is_active": false}))
        .send()
        .await;
    r.assert_status(201);
    assert_eq!(r.body["data"]["is_active"], false);
    let other = app.token_for("elsewhere", "x", &["tenant_admin"], &[], None);
    app.post("/api/admin/users")
        .bearer(&other)
        .json(json!({"email": "bob@example.com"}))
        .send()
        .await
        .assert_status(201);
    let r = app
        .patch(&format!("/api/admin/users/{id}"))
        .bearer(&app.admin())
        .json(json!({"is_active": false, "display_name": "Robert"}))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body["data"]["is_active"], false);
    assert_eq!(r.body["data"]["display_name"], "Robert");
    assert_eq!(r.body["data"]["version"], 2);
    app.patch(&format!("/api/admin/users/{id}"))
        .bearer(&other)
        .json(json!({"is_active": true}))
        .send()
        .await
        .assert_error(404, "record_not_found");
    // A blank email clears it, within an email's 320 characters; a longer input is refused
    // and changes nothing.
    app.patch(&format!("/api/admin/users/{id}"))
        .bearer(&app.admin())
        .json(json!({"email": " ".repeat(321)}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    let list = app.get("/api/admin/users").bearer(&app.admin()).send().await;
    let emails: Vec<_> = list.body["data"].as_array().unwrap().iter().map(|u| u["email"].clone()).collect();
    assert!(emails.contains(&json!("Bob@example.com")));
}

#[tokio::test]
async fn settings_have_defaults_and_accept_partial_updates() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/admin/settings").bearer(&app.admin()).send().await;
    assert_eq!(r.body["data"], json!({"auto_associate_contacts": true, "rate_limit_per_second": null}));
    let r = app
        .patch("/api/admin/settings")
        .bearer(&app.admin())
        .json(json!({"auto_associate_contacts": false}))
        .send()
        .await;
    assert_eq!(r.body["data"], json!({"auto_associate_contacts": false, "rate_limit_per_second": null}));
    let r =
        app.patch("/api/admin/settings").bearer(&app.admin()).json(json!({"rate_limit_per_second": 50})).send().await;
    assert_eq!(r.body["data"], json!({"auto_associate_contacts": false, "rate_limit_per_second": 50}));
    app.patch("/api/admin/settings")
        .bearer(&app.admin())
        .json(json!({"rate_limit_per_second": -1}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    let r =
        app.patch("/api/admin/settings").bearer(&app.admin()).json(json!({"rate_limit_per_second": 60.0})).send().await;
    assert_eq!(r.body["data"]["rate_limit_per_second"], 60);
    app.patch("/api/admin/settings")
        .bearer(&app.admin())
        .json(json!({"dark_mode": true}))
        .send()
        .await
        .assert_error(422, "unknown_field");
    // Another tenant keeps its defaults.
    let other = app.token_for("elsewhere", "x", &["tenant_admin"], &[], None);
    let r = app.get("/api/admin/settings").bearer(&other).send().await;
    assert_eq!(r.body["data"]["auto_associate_contacts"], true);
}
