//! The documented query shapes (docs/CONTRACT.md §7.4, issue #5) use indexes on both databases: the
//! database's own plan for each shows no full scan of a record table.

use corral_core::custom::TenantSchema;
use corral_core::filter::Filter;
use corral_core::list::{Dialect, ListQuery};
use corral_core::{Actor, RecordType};
use corral_store::{PgOptions, Store};
use serde_json::{Value as Json, json};

/// Sort keys: field and descending.
type Sort = &'static [(&'static str, bool)];

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
    let other = if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account };
    let (own, other) = (TenantSchema::builtin("t", rt), TenantSchema::builtin("t", other));
    let plan = query.resolve(rt, corral_core::filter::Schemas::new(&own, &other)).unwrap();
    store.explain_list(&actor, rt, &plan, None, 50).await.unwrap()
}

/// A scan of a record table that the filter does not narrow: a full scan (SQLite `SCAN`,
/// PostgreSQL `Seq Scan`), or an index used only for the tenant, which reads every row of
/// the tenant. (Every index leads with `tenant_id`, so the latter is the scan to catch.)
fn full_scan(lines: &[String], table: &str) -> bool {
    lines.iter().any(|l| {
        let l = l.trim();
        let sqlite_scan =
            l == format!("SCAN {table}") || (l.starts_with(&format!("SCAN {table} ")) && !l.contains("COVERING"));
        // Key tables (`k`) are read only for the filter's keys, not for all of the tenant's.
        let sqlite_tenant_only = (l.starts_with(&format!("SEARCH {table} ")) || l.starts_with("SEARCH k "))
            && (l.ends_with("(tenant_id=?)") || l.ends_with("(tenant_id=? AND record_type=?)"));
        // A key table read whole (a substring of a domain or email must not scan them all).
        let sqlite_key_scan = l == "SCAN k";
        let pg_scan = l.contains(&format!("Seq Scan on {table}"));
        // PostgreSQL prints bound values into custom plans (`tenant_id = 't'::text`).
        let pg_tenant_only = (l.starts_with("Index Cond: (tenant_id = ")
            || l.starts_with("Recheck Cond: (tenant_id = "))
            && !l.contains(" AND ");
        sqlite_scan || sqlite_key_scan || sqlite_tenant_only || pg_scan || pg_tenant_only
    })
}

/// A fresh test database (SQLite, or a PostgreSQL schema) and its URL; the directory holds it.
async fn fresh() -> (tempfile::TempDir, corral_store::DatabaseUrl) {
    let dir = tempfile::tempdir().unwrap();
    let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
    (dir, url)
}

/// Opens the store on `url` (again: a reopened store plans with the statistics it finds).
async fn open(url: &corral_store::DatabaseUrl) -> Store {
    Store::open_with(url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap()
}

/// The plan of an account list filtered by `filter` (v2 syntax), in the default order.
fn account_plan(filter: Json) -> corral_core::list::Plan {
    let query =
        ListQuery { dialect: Dialect::V2, filters: vec![Filter::parse(&filter).unwrap()], ..Default::default() };
    let (own, other) =
        (TenantSchema::builtin("t", RecordType::Account), TenantSchema::builtin("t", RecordType::Contact));
    query.resolve(RecordType::Account, corral_core::filter::Schemas::new(&own, &other)).unwrap()
}

/// A migrated test database with `accounts` and `contacts` seeded for tenant `t`, the store
/// on it, and the actor that seeded them.
async fn seeded(accounts: u64, contacts: u64) -> (tempfile::TempDir, corral_store::DatabaseUrl, Store, Actor) {
    let (dir, url) = fresh().await;
    let store = open(&url).await;
    store.migrate().await.unwrap();
    let actor = Actor::new("t", "s", None, corral_core::ActorKind::User);
    corral_store::seed::seed(&store, &actor, accounts, contacts, &mut |_, _| {}).await.unwrap();
    (dir, url, store, actor)
}

/// Accounts (and twice as many contacts) seeded for the plan test: enough that statistics
/// show one large tenant, where a filter that matches a few rows must not walk the sort index.
const ACCOUNTS: u64 = 2_000;

#[tokio::test]
async fn documented_shapes_use_indexes() {
    let (_dir, url, store, _) = seeded(ACCOUNTS, 2 * ACCOUNTS).await;
    let mut failures = Vec::new();
    // A server that bulk-loaded its data has no statistics until it next analyses (SQLite:
    // `PRAGMA optimize` at start): the key lookups must not depend on them.
    if store.dialect() == corral_store::db::Dialect::Sqlite {
        failures.extend(check(&store, "no statistics", true).await);
        failures.extend(duplicate_key_statements(&store, "no statistics").await);
    }
    // Then as a production database would be: analysed, statistics of one large tenant.
    store.analyze().await.unwrap();
    drop(store);
    let store = open(&url).await;
    failures.extend(check(&store, "analysed", false).await);
    failures.extend(keyset_walks(&store, "analysed").await);
    failures.extend(duplicate_key_statements(&store, "analysed").await);
    assert!(failures.is_empty(), "full scans:\n{}", failures.join("\n"));
}

/// The duplicate-key statements of the write path and of a candidates page
/// (crates/corral-store/src/duplicates.rs) read only the rows of the keys they name: a
/// record's keys change with every rename, archive or merge, and a statement reading all of
/// the tenant's keys would make each such write cost as much as the tenant is large. (Their
/// plans must say so: see `key_pairs` on why the keys are not a bare OR.)
async fn duplicate_key_statements(store: &Store, phase: &str) -> Vec<String> {
    use corral_store::duplicates::{Key, KeyKind, members_sql, sync_statements};
    use std::collections::BTreeSet;
    let tenant = corral_core::TenantId::from("t".to_owned());
    let key = |kind, value: &str| (kind, value.to_owned());
    let old: BTreeSet<Key> =
        [key(KeyKind::Name, "acme"), key(KeyKind::NameCore, "acme"), key(KeyKind::Domain, "acme.com")].into();
    let new: BTreeSet<Key> = [key(KeyKind::Name, "acme two"), key(KeyKind::Domain, "acme.com")].into();
    let id = "0193aaaa-0000-7000-8000-000000000000";
    let mut statements = sync_statements(&tenant, RecordType::Account, id, &old, &new);
    assert_eq!(statements.len(), 5, "keys gone and keys added: both halves are checked");
    statements.push(members_sql(
        &tenant,
        RecordType::Account,
        &[key(KeyKind::Name, "acme"), key(KeyKind::Name, "globex"), key(KeyKind::Phone, "5551234567")],
    ));
    let mut failures = Vec::new();
    for q in &statements {
        let lines = store.explain_write(q).await.unwrap();
        if ["duplicate_keys", "duplicate_blocks"].iter().any(|table| full_scan(&lines, table)) {
            failures.push(format!("{phase}: {}\n  {}", q.sql, lines.join("\n  ")));
        }
    }
    failures
}

/// A page deep into a keyset walk in the default order (newest first), in export order (id)
/// and by `updated_at`, unfiltered: the position is a range of the sort index, so the page
/// reads from there on, never the tenant from its start (which made page N cost N pages).
async fn keyset_walks(store: &Store, phase: &str) -> Vec<String> {
    let actor = Actor::new("t", "s", None, corral_core::ActorKind::User);
    let id = "0193aaaa-0000-7000-8000-000000000000";
    let walks: [(Sort, Vec<Json>); 3] = [
        (&[], vec![json!(1_700_000_000_000_i64), json!(id)]),
        (&[("id", false)], vec![json!(id)]),
        (&[("updated_at", false)], vec![json!(1_700_000_000_000_i64), json!(id)]),
    ];
    let mut failures = Vec::new();
    for rt in [RecordType::Account, RecordType::Contact] {
        let table = if rt == RecordType::Account { "accounts" } else { "contacts" };
        let other = if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account };
        let (own, other) = (TenantSchema::builtin("t", rt), TenantSchema::builtin("t", other));
        for (sort, after) in &walks {
            let query = ListQuery {
                dialect: Dialect::V2,
                sort: sort.iter().map(|(f, d)| ((*f).to_owned(), *d)).collect(),
                ..Default::default()
            };
            let plan = query.resolve(rt, corral_core::filter::Schemas::new(&own, &other)).unwrap();
            let lines = store.explain_list(&actor, rt, &plan, Some(after), 50).await.unwrap();
            if full_scan(&lines, table) || lines.is_empty() {
                failures.push(format!("{phase} / keyset walk {rt:?} {sort:?}: {lines:#?}"));
            }
        }
    }
    failures
}

/// `contains` on every field of `fields`, any of them matching: the filter `q` resolves to.
fn search(fields: &[&str]) -> Json {
    json!({"or": fields.iter().map(|f| json!({"field": f, "operator": "contains", "value": "xyzzy"})).collect::<Vec<_>>()})
}

/// The shapes whose plans read the whole tenant, with their plans. `keys_only` checks only
/// the exact domain / email lookups (named "... lookup"), which must not depend on statistics;
/// whether an owner or a tag is selective is what statistics tell.
async fn check(store: &Store, phase: &str, keys_only: bool) -> Vec<String> {
    let seeded_domain = corral_store::seed::account_domain(ACCOUNTS / 2);
    let seeded_email = corral_store::seed::contact_email(ACCOUNTS, ACCOUNTS);
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
            json!({"field": "domains", "operator": "eq", "value": seeded_domain}),
            vec![],
        ),
        (
            "domain lookup + sort",
            RecordType::Account,
            json!({"field": "domains", "operator": "in", "value": [seeded_domain, "acme.com"]}),
            vec![("employee_count", false)],
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
            json!({"field": "contact_emails", "operator": "eq", "value": seeded_email}),
            vec![],
        ),
        (
            "primary email lookup",
            RecordType::Contact,
            json!({"field": "primary_email", "operator": "eq", "value": seeded_email}),
            vec![],
        ),
        (
            "name contains",
            RecordType::Account,
            json!({"field": "display_name", "operator": "contains", "value": "xyzzy"}),
            vec![],
        ),
        (
            "domain contains",
            RecordType::Account,
            json!({"field": "domains", "operator": "contains", "value": "xyzzy"}),
            vec![],
        ),
        // What `q` resolves to (corral_core::list, `search_fields`).
        (
            "q search",
            RecordType::Account,
            search(&["display_name", "legal_name", "domains", "official_website"]),
            vec![],
        ),
        (
            "contact q search",
            RecordType::Contact,
            search(&["display_name", "first_name", "last_name", "contact_emails"]),
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
    let mut failures = related(store, phase, keys_only).await;
    for (name, rt, filter, sort) in shapes {
        if keys_only && !name.contains("lookup") {
            continue;
        }
        let table = if rt == RecordType::Account { "accounts" } else { "contacts" };
        let lines = plan_lines(store, rt, filter, &sort).await;
        if std::env::var("SHOW_PLANS").is_ok() {
            eprintln!("{phase} / {name}: {lines:#?}");
        }
        if full_scan(&lines, table) || lines.is_empty() {
            failures.push(format!("{phase} / {name}: {lines:#?}"));
        }
    }
    failures
}

/// The edge table's indexes: either end (PostgreSQL may drive a semi-join from the related side).
const EDGE_INDEXES: &[&str] =
    &["account_contacts_by_contact", "sqlite_autoindex_account_contacts_1", "account_contacts_pkey"];
/// The related account read by primary key, or (PostgreSQL hashing the matches) by the
/// index of the related condition.
const RELATED_ACCOUNT_INDEXES: &[&str] = &["sqlite_autoindex_accounts_1", "accounts_pkey", "accounts_industry"];

/// Relationship filters (docs/API.md "Filters across relationships"): the EXISTS reads the
/// edge table by one of its indexes and the related record by an index, never scanning
/// either. (The outer record table is walked in the page's order, each
/// row probed: the relation's selectivity is unknown, and the LIMIT stops the walk.)
async fn related(store: &Store, phase: &str, keys_only: bool) -> Vec<String> {
    if keys_only {
        return Vec::new();
    }
    let shapes: Vec<(&str, RecordType, Json, &[&str])> = vec![
        (
            "contacts by accounts.industry",
            RecordType::Contact,
            json!({"field": "accounts.industry", "operator": "eq", "value": "software"}),
            EDGE_INDEXES,
        ),
        (
            "accounts by contacts.title",
            RecordType::Account,
            json!({"field": "contacts.title", "operator": "contains", "value": "cto"}),
            EDGE_INDEXES,
        ),
        (
            "accounts by parent_account.industry",
            RecordType::Account,
            json!({"field": "parent_account.industry", "operator": "eq", "value": "software"}),
            RELATED_ACCOUNT_INDEXES,
        ),
        (
            "contacts by primary_account.industry",
            RecordType::Contact,
            json!({"field": "primary_account.industry", "operator": "eq", "value": "software"}),
            RELATED_ACCOUNT_INDEXES,
        ),
    ];
    let mut failures = Vec::new();
    for (name, rt, filter, indexes) in shapes {
        let lines = plan_lines(store, rt, filter, &[]).await;
        if std::env::var("SHOW_PLANS").is_ok() {
            eprintln!("{phase} / {name}: {lines:#?}");
        }
        let uses_index = lines.iter().any(|l| indexes.iter().any(|i| l.contains(i)));
        let scans = lines.iter().any(|l| {
            let l = l.trim();
            l.starts_with("SCAN edge")
                || l.starts_with("SCAN rel")
                || l.contains("Seq Scan on account_contacts")
                || l.contains(" rel ") && l.contains("Seq Scan")
        });
        if !uses_index || scans {
            failures.push(format!("{phase} / {name}: {lines:#?}"));
        }
    }
    failures
}

/// Filters on custom attributes use the attribute's own index (created with the attribute,
/// shared by tenants with the same name and kind, dropped with the last of them), on both
/// databases, in a tenant of a few thousand records whose statistics say it is large.
#[tokio::test]
async fn custom_attribute_filters_use_their_index() {
    use corral_core::custom::parse_definition;
    use corral_core::v1::{WriteMode, parse_write};
    let (_dir, url) = fresh().await;
    let store = open(&url).await;
    store.migrate().await.unwrap();
    let rt = RecordType::Account;
    let tenant = corral_core::TenantId::from("t");
    let definitions = [
        json!({"api_name": "seats", "display_name": "Seats", "value_type": "number"}),
        json!({"api_name": "region", "display_name": "Region", "value_type": "string"}),
        json!({"api_name": "arr", "display_name": "ARR", "value_type": "currency"}),
        json!({"api_name": "renewal", "display_name": "Renewal", "value_type": "date"}),
        json!({"api_name": "is_partner", "display_name": "Partner", "value_type": "boolean"}),
    ];
    for body in &definitions {
        store.create_attribute(&tenant, rt, &parse_definition(rt, body, &[]).unwrap()).await.unwrap();
    }
    // Another tenant with an attribute of the same name and kind shares the index.
    let other = corral_core::TenantId::from("u");
    store.create_attribute(&other, rt, &parse_definition(rt, &definitions[0], &[]).unwrap()).await.unwrap();
    let schema = store.schema(&tenant, rt).await.unwrap();
    let actor = Actor::new("t", "s", None, corral_core::ActorKind::User);
    let writes: Vec<_> = (0..3_000)
        .map(|i| {
            let custom = json!({"seats": i, "region": format!("Region {}", i % 300), "arr": i * 10,
                "renewal": format!("2027-{:02}-{:02}", 1 + i % 12, 1 + i % 28), "is_partner": i % 97 == 0});
            parse_write(
                rt,
                &json!({"name": format!("Company {i}"), "custom_fields": custom}),
                WriteMode::Create,
                &schema,
            )
            .unwrap()
        })
        .collect();
    store.create_many(&actor, rt, &writes, corral_core::Timestamp::now()).await.unwrap();
    store.analyze().await.unwrap();
    drop(store);
    let store = open(&url).await;
    let schema = store.schema(&tenant, rt).await.unwrap();
    let contacts = TenantSchema::builtin("t", RecordType::Contact);
    let explain = async |filter: Json| {
        let query =
            ListQuery { dialect: Dialect::V2, filters: vec![Filter::parse(&filter).unwrap()], ..Default::default() };
        let plan = query.resolve(rt, corral_core::filter::Schemas::new(&schema, &contacts)).unwrap();
        store.explain_list(&actor, rt, &plan, None, 50).await.unwrap()
    };
    let shapes = [
        ("custom_accounts_i_seats", json!({"field": "seats", "operator": "eq", "value": 1234})),
        ("custom_accounts_i_seats", json!({"field": "seats", "operator": "between", "value": [10, 20]})),
        ("custom_accounts_t_region", json!({"field": "region", "operator": "eq", "value": "region 7"})),
        ("custom_accounts_t_region", json!({"field": "region", "operator": "in", "value": ["Region 7", "REGION 8"]})),
        ("custom_accounts_r_arr", json!({"field": "arr", "operator": "between", "value": [29_000, 29_990]})),
        ("custom_accounts_x_renewal", json!({"field": "renewal", "operator": "eq", "value": "2027-03-03"})),
        ("custom_accounts_b_is_partner", json!({"field": "is_partner", "operator": "eq", "value": true})),
    ];
    let mut failures = Vec::new();
    for (index, filter) in shapes {
        let lines = explain(filter.clone()).await;
        // The attribute's index drives the read (PostgreSQL may recheck a bitmap by tenant only:
        // the index condition names the attribute, so `full_scan`'s tenant-only rule does not apply).
        let scans = lines.iter().any(|l| l.contains("Seq Scan on accounts") || l.trim().starts_with("SCAN accounts"));
        if !lines.iter().any(|l| l.contains(index)) || scans {
            failures.push(format!("{filter}: expected {index}:\n  {}", lines.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Archiving the attribute in one tenant keeps the index the other still uses; archiving
    // the last drops it.
    let indexes = async || index_names(&url).await;
    store.archive_attribute(&tenant, rt, "seats").await.unwrap();
    assert!(indexes().await.contains(&"custom_accounts_i_seats".to_owned()));
    store.archive_attribute(&other, rt, "seats").await.unwrap();
    assert!(!indexes().await.contains(&"custom_accounts_i_seats".to_owned()));
    assert!(indexes().await.contains(&"custom_accounts_t_region".to_owned()));
}

/// The names of the indexes in the test database.
async fn index_names(url: &corral_store::DatabaseUrl) -> Vec<String> {
    match url {
        corral_store::DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'index'").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        }
        corral_store::DatabaseUrl::Postgres(raw) => {
            let (client, connection) = tokio_postgres::connect(raw, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let rows = client
                .query("SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()", &[])
                .await
                .unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

/// `count: estimated` on SQLite samples rowid windows once the table is large: an estimate
/// near the exact count, flagged as one; a filter the sample rarely sees, and a small table,
/// are counted exactly (docs/API.md, Counts).
#[tokio::test]
async fn sqlite_estimates_sample_the_table_and_count_rare_matches() {
    let (_dir, url) = fresh().await;
    let store = open(&url).await;
    if store.dialect() != corral_store::db::Dialect::Sqlite {
        return; // PostgreSQL answers its planner's estimate (covered in the API tests).
    }
    store.migrate().await.unwrap();
    let actor = Actor::new("t", "s", None, corral_core::ActorKind::User);
    let software = account_plan(json!({"field": "industry", "operator": "eq", "value": "software"}));
    // employee_count is (i * 7919) % 5000: 0 for every 5,000th account.
    let rare = account_plan(json!({"field": "employee_count", "operator": "eq", "value": 0}));
    // Small: counted.
    let (_small_dir, small_url) = fresh().await;
    let small = open(&small_url).await;
    small.migrate().await.unwrap();
    corral_store::seed::seed(&small, &actor, 800, 0, &mut |_, _| {}).await.unwrap();
    assert_eq!(small.estimate_records(&actor, RecordType::Account, &software).await.unwrap(), (100, false));
    // Large: sampled for the broad filter, counted for the rare one.
    let n = corral_store::records::SAMPLE_MIN_ROWIDS as u64 + 2_000;
    corral_store::seed::seed(&store, &actor, n, 0, &mut |_, _| {}).await.unwrap();
    let exact = store.count_records(&actor, RecordType::Account, &software).await.unwrap();
    assert_eq!(exact, n as i64 / 8);
    let (estimate, flagged) = store.estimate_records(&actor, RecordType::Account, &software).await.unwrap();
    assert!(flagged, "a sampled count is flagged as an estimate");
    let error = (estimate - exact).abs() as f64 / exact as f64;
    assert!(error < 0.4, "estimate {estimate} against {exact}");
    let expected_rare = n.div_ceil(5000) as i64;
    assert_eq!(store.estimate_records(&actor, RecordType::Account, &rare).await.unwrap(), (expected_rare, false));
    // Another tenant's records never count: its sample finds none of them, so it counts.
    let stranger = Actor::new("other", "s", None, corral_core::ActorKind::User);
    assert_eq!(store.estimate_records(&stranger, RecordType::Account, &software).await.unwrap(), (0, false));
}

/// Every record of `plan`, page by page (100 a page), as (id, name).
async fn walk_all(store: &Store, actor: &Actor, plan: &corral_core::list::Plan) -> Vec<(String, String)> {
    let name_at = corral_core::schema::fields(RecordType::Account).iter().position(|f| f.column == "name").unwrap();
    let (mut out, mut after) = (Vec::new(), None);
    loop {
        let (page, next) = store.list_records(actor, RecordType::Account, plan, after.as_deref(), 100).await.unwrap();
        for r in &page {
            out.push((r.meta.id.canonical(), r.values[name_at].as_text().unwrap_or_default().to_owned()));
        }
        match next {
            Some(position) => after = Some(position),
            None => return out,
        }
    }
}

/// A needle common among the tenant's records (`records::dense_needles`) is matched by
/// walking the page order and testing each row instead of gathering every match from the
/// search index first; a rare one still goes through the index. Either way the pages hold
/// exactly the records whose names contain the needle, in the list's order.
#[tokio::test]
async fn a_common_needle_walks_the_order_and_finds_the_same_records() {
    // Seeded names are two of 16 words and a number: "wonka" is in about one in eight, over
    // the bound of 9,000 rows (max(1,000, √(51 × 9,000))).
    let (_dir, _url, store, actor) = seeded(9_000, 0).await;
    let contains =
        |needle: &str| account_plan(json!({"field": "display_name", "operator": "contains", "value": needle}));
    let everything = walk_all(&store, &actor, &account_plan(json!({"and": []}))).await;
    for needle in ["wonka", "WONKA acme", "ka 1"] {
        let expected: Vec<(String, String)> =
            everything.iter().filter(|(_, name)| name.contains(&needle.to_lowercase())).cloned().collect();
        let found = walk_all(&store, &actor, &contains(needle)).await;
        assert_eq!(found, expected, "`{needle}`");
        if store.dialect() == corral_store::db::Dialect::Sqlite {
            let lines = store.explain_list(&actor, RecordType::Account, &contains(needle), None, 50).await.unwrap();
            let indexed = lines.iter().any(|l| l.contains("search_fts"));
            assert_eq!(indexed, needle != "wonka", "`{needle}` ({} matches):\n{}", expected.len(), lines.join("\n"));
        }
    }
}
