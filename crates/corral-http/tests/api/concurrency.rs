//! Concurrent writes: atomic, nothing lost, one version per applied write.

use crate::helpers::TestApp;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_different_fields_lose_nothing() {
    let app = Arc::new(TestApp::spawn().await);
    let doc = app.create_account(json!({"name": "Acme"})).await;
    let path = format!("/api/v1/crm/accounts/{}", doc["id"].as_str().unwrap());
    let fields =
        ["legal_name", "industry", "sub_industry", "phone", "lead_source", "health_score", "description", "source"];
    let mut tasks = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let app = app.clone();
        let path = path.clone();
        let field = field.to_string();
        tasks.push(tokio::spawn(async move {
            let r = app
                .patch(&path)
                .bearer(&app.admin())
                .json(json!({ field.clone(): format!("value-{i}-1") }))
                .send()
                .await;
            r.assert_status(200);
            let r = app.patch(&path).bearer(&app.admin()).json(json!({ field: format!("value-{i}-2") })).send().await;
            r.assert_status(200);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = app.get(&path).bearer(&app.admin()).send().await;
    for (i, field) in fields.iter().enumerate() {
        assert_eq!(r.body[*field], format!("value-{i}-2"), "{field}");
    }
    assert_eq!(r.body["version"], 1 + 2 * fields.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_claiming_one_domain_let_exactly_one_win() {
    let app = Arc::new(TestApp::spawn().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.post("/api/v1/crm/accounts")
                .bearer(&app.admin())
                .json(json!({"name": format!("n{i}"), "domain": "contested.com"}))
                .send()
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
}
