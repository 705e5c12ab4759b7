//! The documented query shapes (docs/CONTRACT.md §7.4, issue #5) use indexes on both databases: the
//! database's own plan for each shows no full scan of a record table.

use corral_core::custom::TenantSchema;
use corral_core::filter::Filter;
use corral_core::list::{Dialect, ListQuery};
use corral_core::{Actor, RecordType};
use corral_store::{PgOptions, Store};
use serde_json::{Value as Json, json};

/// A documented shape: its name, record type, filter and sort.
type Shape = (&'static str, RecordType, Json, Vec<(&'static str, bool)>);

async fn plan_lines(store: &Store, rt: RecordType, filter: Json, sort: &[(&str, bool)]) -> Vec<String> {
    let actor = Actor::new("t", "s", None, corral_core::ActorKind::User);
    let query = ListQuery {
        dialect: Dialect::V2,
        filters: vec![Filter::parse(&filter).unwrap()],
        sort: sort.iter().map(|(f, d)| ((*f).to_owned(), *d)).collect(),
        ..Default::default()
    };
    let plan = query.resolve(rt, &TenantSchema::builtin("t", rt)).unwrap();
    store.explain_list(&actor, rt, &plan, 50).await.unwrap()
}

/// A scan of a record table that the filter does not narrow: a full scan (SQLite `SCAN`,
/// PostgreSQL `Seq Scan`), or an index used only for the tenant, which reads every row of
/// the tenant. (Every index leads with `tenant_id`, so the latter is the scan to catch.)
fn full_scan(lines: &[String], table: &str) -> bool {
    lines.iter().any(|l| {
        let l = l.trim();
        let sqlite_scan =
            l == format!("SCAN {table}") || (l.starts_with(&format!("SCAN {table} ")) && !l.contains("COVERING"));
        let sqlite_tenant_only = l.starts_with(&format!("SEARCH {table} ")) && l.ends_with("(tenant_id=?)");
        let pg_scan = l.contains(&format!("Seq Scan on {table}"));
        // PostgreSQL prints bound values into custom plans (`tenant_id = 't'::text`).
        let pg_tenant_only = (l.starts_with("Index Cond: (tenant_id = ")
            || l.starts_with("Recheck Cond: (tenant_id = "))
            && !l.contains(" AND ");
        sqlite_scan || sqlite_tenant_only || pg_scan || pg_tenant_only
    })
}

#[tokio::test]
async fn documented_shapes_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
    let store = Store::open_with(&url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    // Plans depend on statistics: seed a tenant with realistic spreads of values, then let
    // the database analyse it, as a production database would have.
    let actor = Actor::new("t", "s", None, corral_core::ActorKind::User);
    let schema = TenantSchema::builtin("t", RecordType::Account);
    let contact_schema = TenantSchema::builtin("t", RecordType::Contact);
    let stages = ["prospect", "target_account", "engaged", "opportunity", "customer", "churned"];
    // Most contacts sit in the first stages; the filtered one is a minority, as in practice.
    let contact_stages = ["new", "qualified"];
    for i in 0..3000 {
        let body = json!({"name": format!("a{i}"), "industry": format!("industry-{}", i % 40), "lifecycle_stage": stages[i % 6],
                          "domain": format!("a{i}.example"), "tags": [format!("tag{}", i % 50)], "employee_count": i % 500});
        let write =
            corral_core::v1::parse_write(RecordType::Account, &body, corral_core::v1::WriteMode::Create, &schema)
                .unwrap();
        store.create_record(&actor, RecordType::Account, &write, None, |_| String::new()).await.unwrap();
        let body = json!({"first_name": format!("c{i}"), "email": format!("c{i}@a{i}.example"), "stage": if i % 20 == 0 { "working" } else { contact_stages[i % 2] }});
        let write = corral_core::v1::parse_write(
            RecordType::Contact,
            &body,
            corral_core::v1::WriteMode::Create,
            &contact_schema,
        )
        .unwrap();
        store.create_record(&actor, RecordType::Contact, &write, None, |_| String::new()).await.unwrap();
    }
    store.analyze().await.unwrap();
    let owner = "0193aaaa-0000-7000-8000-000000000000";
    let shapes: Vec<Shape> = vec![
        (
            "industry + sort",
            RecordType::Account,
            json!({"field": "industry", "operator": "eq", "value": "software"}),
            vec![("created_at", true)],
        ),
        (
            "industry + sort by employees",
            RecordType::Account,
            json!({"field": "industry", "operator": "eq", "value": "software"}),
            vec![("employee_count", true)],
        ),
        (
            "stage",
            RecordType::Account,
            json!({"field": "current_stage_id", "operator": "eq", "value": "customer"}),
            vec![],
        ),
        ("owner", RecordType::Account, json!({"field": "owner_user_id", "operator": "eq", "value": owner}), vec![]),
        (
            "parent",
            RecordType::Account,
            json!({"field": "parent_account_id", "operator": "eq", "value": owner}),
            vec![],
        ),
        (
            "domain lookup",
            RecordType::Account,
            json!({"field": "domains", "operator": "eq", "value": "acme.com"}),
            vec![],
        ),
        (
            "tags any-match",
            RecordType::Account,
            json!({"field": "tags", "operator": "in", "value": ["vip", "partner"]}),
            vec![],
        ),
        (
            "updated_at range + sort",
            RecordType::Account,
            json!({"field": "updated_at", "operator": "gte", "value": "2026-01-01T00:00:00Z"}),
            vec![("updated_at", false)],
        ),
        (
            "email lookup",
            RecordType::Contact,
            json!({"field": "contact_emails", "operator": "eq", "value": "jane@acme.com"}),
            vec![],
        ),
        ("contact stage", RecordType::Contact, json!({"field": "stage", "operator": "eq", "value": "working"}), vec![]),
        (
            "contact owner",
            RecordType::Contact,
            json!({"field": "owner_user_id", "operator": "eq", "value": owner}),
            vec![],
        ),
    ];
    let mut failures = Vec::new();
    for (name, rt, filter, sort) in shapes {
        let table = if rt == RecordType::Account { "accounts" } else { "contacts" };
        let lines = plan_lines(&store, rt, filter, &sort).await;
        if full_scan(&lines, table) || lines.is_empty() {
            failures.push(format!("{name}: {lines:#?}"));
        }
    }
    if std::env::var("SHOW_PLANS").is_ok() {
        eprintln!("{failures:#?}");
    }
    assert!(failures.is_empty(), "full scans:\n{}", failures.join("\n"));
}
