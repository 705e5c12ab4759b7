//! The change feed's ordering guarantee on PostgreSQL, made deterministic: a transaction that
//! took its id first but commits last must be served, not skipped by a reader that already
//! served a later transaction. (SQLite has one writer: commit order is outbox order, and the
//! HTTP suite's concurrency test covers it.)

use corral_core::custom::TenantSchema;
use corral_core::v1::{WriteMode, parse_write, render};
use corral_core::{Actor, ActorKind, RecordType};
use corral_store::{DatabaseUrl, PgOptions, Store};
use serde_json::json;

#[tokio::test]
async fn a_transaction_that_commits_late_is_served_after_it_commits_never_skipped() {
    if corral_store::testing::postgres_url().is_none() {
        return; // PostgreSQL only (see the module documentation).
    }
    let dir = tempfile::tempdir().unwrap();
    let url = corral_store::testing::fresh_database(dir.path()).await.unwrap();
    let parsed = DatabaseUrl::parse(&url).unwrap();
    let store = Store::open_with(&parsed, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    let actor = Actor::new("t1", "tester", None, ActorKind::User);

    // T1 takes its transaction id (and outbox sequence) first, and stays open.
    let (early, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    early.batch_execute("BEGIN").await.unwrap();
    let early_record = uuid::Uuid::now_v7().to_string();
    early
        .execute(
            "INSERT INTO record_changes (event_id, tenant_id, record_type, record_id, action, actor_type, actor_id, \
             version, changes, occurred_at) VALUES ('early-event', 't1', 'account', $1, 'updated', 'user', 'tester', 2, '{}', 1)",
            &[&early_record],
        )
        .await
        .unwrap();

    // T2 — a real write through the store — starts later and commits first.
    let schema = TenantSchema::builtin("t1", RecordType::Account);
    let write = parse_write(RecordType::Account, &json!({"name": "Late"}), WriteMode::Create, &schema).unwrap();
    store.create_record(&actor, RecordType::Account, &write, None, |r| render(r, &schema).to_string()).await.unwrap();

    // A reader now must not serve T2: had it served T2 and moved its cursor past it, T1's
    // event (ordered before T2) would be skipped when T1 commits.
    let page = store.changes(&actor, &[RecordType::Account], None, 100).await.unwrap();
    assert!(page.events.is_empty(), "served past a running transaction: {:?}", page.events);
    let resume = page.next;

    early.batch_execute("COMMIT").await.unwrap();
    // Served once every transaction older than them has ended; other tests' transactions on
    // the same server can hold the feed back for a moment (docs/API.md, "Change feed").
    let mut page = store.changes(&actor, &[RecordType::Account], Some(resume), 100).await.unwrap();
    for _ in 0..200 {
        if page.events.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = store.changes(&actor, &[RecordType::Account], Some(resume), 100).await.unwrap();
    }
    let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], "early-event", "the transaction that took its id first comes first");
    assert_eq!(page.events[1].changes["display_name"], json!({"old": null, "new": "Late"}));
}
