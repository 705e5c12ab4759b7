//! Store conformance: the behaviours where SQLite and PostgreSQL differ by default, pinned to
//! one answer. Runs on SQLite always and on PostgreSQL when `CORRAL_TEST_DATABASE_URL` is set.

use corral_core::custom::TenantSchema;
use corral_core::list::ListQuery;
use corral_core::v1::{WriteMode, parse_write, render};
use corral_core::{Actor, ErrorCode, RecordId, RecordType};
use corral_store::{Created, PgOptions, Preconditions, Store, StoreError, UserChanges};
use serde_json::json;

const RT: RecordType = RecordType::Account;

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
    let store = Store::open_with(&url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
    (store, dir)
}

fn actor() -> Actor {
    Actor::new("t1", "tester", None, corral_core::ActorKind::User)
}

async fn create(store: &Store, body: serde_json::Value) -> serde_json::Value {
    let write = parse_write(RT, &body, WriteMode::Create, &TenantSchema::builtin("t1", RT)).unwrap();
    match store
        .create_record(&actor(), RT, &write, None, |r| render(r, &TenantSchema::builtin("t1", RT)).to_string())
        .await
        .unwrap()
    {
        Created::New(record, _) => render(&record, &TenantSchema::builtin("t1", RT)),
        Created::Replayed(_) => unreachable!("no idempotency key was sent"),
    }
}

async fn names(store: &Store, query: ListQuery) -> Vec<String> {
    let plan = query.resolve(RT, &TenantSchema::builtin("t1", RT)).unwrap();
    let (records, _) = store.list_records(&actor(), RT, &plan, None, 100).await.unwrap();
    records.iter().map(|r| render(r, &TenantSchema::builtin("t1", RT))["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn text_sorts_byte_wise_and_matches_case_insensitively() {
    let (store, _dir) = store().await;
    for name in ["beta", "Alpha", "alpha", "Émile", "Zulu", "_under", "10", "9"] {
        create(&store, json!({"name": name, "industry": name})).await;
    }
    let sorted = names(&store, ListQuery { sort: vec![("name".into(), false)], ..Default::default() }).await;
    assert_eq!(sorted, ["10", "9", "Alpha", "Zulu", "_under", "alpha", "beta", "Émile"]);
    let query = ListQuery {
        filters: vec![corral_core::filter::Filter::Leaf {
            field: "industry".into(),
            operator: "eq".into(),
            value: json!("ALPHA"),
        }],
        sort: vec![("name".into(), false)],
        ..Default::default()
    };
    assert_eq!(names(&store, query).await, ["Alpha", "alpha"]);
}

#[tokio::test]
async fn values_round_trip_exactly() {
    let (store, _dir) = store().await;
    let doc = create(
        &store,
        json!({
            "name": "Ünïcødé 名前 🚀", "annual_revenue": "12345678901234.5", "employee_count": 9007199254740991i64,
            "tags": ["ä", "B"], "addresses": [{"city": "Zürich", "zip_code": "8000"}],
            "last_activity_at": "1969-07-20T20:17:40.000Z",
            "description": "line\nbreak \"quoted\" 'single' \\ backslash $1 ?1"
        }),
    )
    .await;
    let id = RecordId::parse(RT, doc["id"].as_str().unwrap()).unwrap();
    let read = render(&store.get_record(&actor(), RT, id, false).await.unwrap(), &TenantSchema::builtin("t1", RT));
    assert_eq!(read, doc);
    assert_eq!(read["name"], "Ünïcødé 名前 🚀");
    assert_eq!(read["employee_count"], 9007199254740991i64);
    assert_eq!(read["last_activity_at"], "1969-07-20T20:17:40.000Z");
    assert_eq!(read["description"], "line\nbreak \"quoted\" 'single' \\ backslash $1 ?1");
}

#[tokio::test]
async fn unique_keys_conflict_and_versions_guard() {
    let (store, _dir) = store().await;
    create(&store, json!({"name": "A", "domain": "a.com"})).await;
    let write =
        parse_write(RT, &json!({"name": "B", "domain": "a.com"}), WriteMode::Create, &TenantSchema::builtin("t1", RT))
            .unwrap();
    match store.create_record(&actor(), RT, &write, None, |_| String::new()).await {
        Err(StoreError::Domain(e)) => assert_eq!(e.code, ErrorCode::Conflict),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let doc = create(&store, json!({"name": "C"})).await;
    let id = RecordId::parse(RT, doc["id"].as_str().unwrap()).unwrap();
    let patch = parse_write(RT, &json!({"industry": "x"}), WriteMode::Patch, &TenantSchema::builtin("t1", RT)).unwrap();
    match store.update_record(&actor(), RT, id, &patch, Preconditions { if_match: Some(5) }).await {
        Err(StoreError::Domain(e)) => assert_eq!(e.code, ErrorCode::PreconditionFailed),
        other => panic!("expected a failed precondition, got {other:?}"),
    }
    // The failed write left no trace, and the connection it used still works.
    let updated = store.update_record(&actor(), RT, id, &patch, Preconditions::default()).await.unwrap();
    assert_eq!(updated.meta.version, 2);
}

#[tokio::test]
async fn users_keep_booleans_and_unique_emails() {
    let (store, _dir) = store().await;
    let u = store.add_user(&"t1".into(), "Ann@Example.com", Some("Ann"), "tester").await.unwrap();
    assert!(u.is_active);
    let changes = UserChanges { is_active: Some(false), ..Default::default() };
    let u = store.update_user(&"t1".into(), u.id, &changes, "tester").await.unwrap();
    assert!(!u.is_active);
    assert!(!store.list_users(&"t1".into()).await.unwrap()[0].is_active);
    match store.add_user(&"t1".into(), "ann@EXAMPLE.com", None, "tester").await {
        Err(StoreError::Domain(e)) => assert_eq!(e.code, ErrorCode::Conflict),
        other => panic!("expected a conflict, got {other:?}"),
    }
    store.add_user(&"t2".into(), "ann@example.com", None, "tester").await.unwrap();
}

/// A bulk transaction stops at its time budget (after at least one line, or one batch of plain
/// creates written together) and commits what it wrote; the caller goes on with the rest.
/// With no budget, each transaction writes one line (or one batch).
#[tokio::test]
async fn bulk_writes_stop_at_their_time_budget_and_commit_the_prefix() {
    let (store, _dir) = store().await;
    let schema = TenantSchema::builtin("t1", RT);
    let parent = create(&store, json!({"name": "Parent"})).await["id"].clone();
    let write = |body: serde_json::Value| {
        corral_store::BulkOp::Create(parse_write(RT, &body, WriteMode::Create, &schema).unwrap())
    };
    // Lines naming another record go one by one.
    let ops: Vec<_> =
        (0..3).map(|i| write(json!({"name": format!("Bulk {i}"), "parent_account_id": parent}))).collect();
    let first = store.bulk_write(&actor(), RT, &ops, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1, "one line, then the budget is spent");
    assert!(first[0].is_ok());
    assert_eq!(names(&store, ListQuery::default()).await, ["Bulk 0", "Parent"], "the prefix committed");
    let rest = store.bulk_write(&actor(), RT, &ops[1..], std::time::Duration::from_secs(3600)).await.unwrap();
    assert_eq!(rest.len(), 2);
    let mut all = names(&store, ListQuery::default()).await;
    all.sort();
    assert_eq!(all, ["Bulk 0", "Bulk 1", "Bulk 2", "Parent"]);
    // Plain creates are one batch: written whole, then the budget stops the transaction.
    let mut ops: Vec<_> = (3..6).map(|i| write(json!({"name": format!("Bulk {i}")}))).collect();
    ops.push(write(json!({"name": "Bulk 6", "parent_account_id": parent})));
    let batch = store.bulk_write(&actor(), RT, &ops, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(names(&store, ListQuery::default()).await.len(), 7);
}

/// Replaces what differs between two runs of the same writes (ids, timestamps, versions of
/// stamps) so the rest can be compared: record ids become the record's name.
fn normalise(v: &serde_json::Value, names: &[(String, String)]) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = names.iter().fold(k.clone(), |k, (id, name)| k.replace(id, name));
                    // Stamps, and ids (the records' own, and contact email / phone item ids).
                    let v = if k.ends_with("_at") && !v.is_null() || k == "tenant_id" || k == "id" {
                        json!("<stamp>")
                    } else {
                        normalise(v, names)
                    };
                    (k, v)
                })
                .collect(),
        ),
        J::Array(a) => J::Array(a.iter().map(|v| normalise(v, names)).collect()),
        J::String(s) => J::String(names.iter().fold(s.clone(), |s, (id, name)| s.replace(id, name))),
        other => other.clone(),
    }
}

/// Runs `setup` one line at a time, then bulk `ops` of type `rt` in tenant `tenant` — with at most `max_group` lines per
/// savepoint, or as the bulk route does (`None`: the batch write path, then groups) — and
/// returns what they did: each line's outcome (created / updated / the error code), the
/// tenant's records of both types, change events, duplicate groups and search results, with
/// ids and stamps replaced ([`normalise`]: a record id becomes the account's name or the
/// contact's email).
async fn bulk_run(
    store: &Store,
    tenant: &str,
    rt: RecordType,
    setup: &[(RecordType, corral_store::BulkOp)],
    ops: &[corral_store::BulkOp],
    max_group: Option<usize>,
) -> serde_json::Value {
    let actor = Actor::new(tenant, "tester", None, corral_core::ActorKind::User);
    let schema = TenantSchema::builtin(tenant, rt);
    for (t, op) in setup {
        let done = store.bulk_write_grouped(&actor, *t, std::slice::from_ref(op), 1).await.unwrap();
        assert!(done[0].is_ok(), "setup: {:?}", done[0]);
    }
    let outcomes = match max_group {
        Some(max_group) => store.bulk_write_grouped(&actor, rt, ops, max_group).await.unwrap(),
        None => store.bulk_write(&actor, rt, ops, std::time::Duration::MAX).await.unwrap(),
    };
    let types = [RecordType::Account, RecordType::Contact];
    let label = |r: &corral_core::Record| {
        let doc = render(r, &TenantSchema::builtin(tenant, r.record_type));
        doc[if r.record_type == RecordType::Account { "name" } else { "email" }].as_str().unwrap_or("").to_owned()
    };
    let mut records = Vec::new();
    for t in types {
        let plan = ListQuery::default().resolve(t, &TenantSchema::builtin(tenant, t)).unwrap();
        records.extend(store.list_records(&actor, t, &plan, None, 1000).await.unwrap().0);
    }
    // (id spelling, label): v1 spellings (`acc-<id>`) first, so they are replaced whole.
    let mut names: Vec<(String, String)> = Vec::new();
    for r in &records {
        names.insert(0, (r.meta.id.v1(r.record_type), label(r)));
        names.push((r.meta.id.canonical(), label(r)));
    }
    let mut docs: Vec<serde_json::Value> =
        records.iter().map(|r| normalise(&render(r, &TenantSchema::builtin(tenant, r.record_type)), &names)).collect();
    docs.sort_by_key(|d| d.to_string());
    // On PostgreSQL the feed holds back events until every older transaction of the cluster
    // has ended (other tests' included): wait until it shows at least the records' histories.
    let mut histories = 0;
    for r in &records {
        histories += store.history(&actor, r.record_type, r.meta.id, true, None, 1000).await.unwrap().0.len();
    }
    let mut events = Vec::new();
    for _ in 0..600 {
        events = store.changes(&actor, &types, None, 1000).await.unwrap().events;
        if events.len() >= histories {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            normalise(
                &json!({"record": e.record_id.canonical(), "action": e.action.as_str(), "version": e.version,
                        "changes": e.changes}),
                &names,
            )
        })
        .collect();
    let outcomes: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| match o {
            Ok((r, created)) => json!([normalise(&json!(r.meta.id.canonical()), &names), created]),
            Err(StoreError::Domain(e)) => json!(format!("{:?}", e.code)),
            Err(e) => json!(e.to_string()),
        })
        .collect();
    let (groups, _) = store.duplicate_candidates(&actor, rt, None, 0.0, None, 100).await.unwrap();
    let mut groups: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            let mut members: Vec<String> = g.records.iter().map(label).collect();
            members.sort();
            json!({"score": g.score, "reasons": g.reasons, "records": members})
        })
        .collect();
    groups.sort_by_key(|g| g.to_string());
    // Reads served by the side tables: search (`q`), tags and domains.
    let filter = |f: serde_json::Value| vec![corral_core::filter::Filter::parse(&f).unwrap()];
    let mut searches = vec![
        ListQuery { q: Some("same".into()), ..Default::default() },
        ListQuery { q: Some("d1".into()), ..Default::default() },
    ];
    if rt == RecordType::Account {
        searches.extend([
            ListQuery {
                dialect: corral_core::list::Dialect::V2,
                filters: filter(json!({"field": "tags", "operator": "in", "value": ["dup", "x"]})),
                ..Default::default()
            },
            ListQuery {
                dialect: corral_core::list::Dialect::V2,
                filters: filter(
                    json!({"field": "domains", "operator": "in", "value": ["d1.example", "late3.example"]}),
                ),
                ..Default::default()
            },
        ]);
    }
    let mut searched = Vec::new();
    for search in searches {
        let plan = search.resolve(rt, &schema).unwrap();
        let (found, _) = store.list_records(&actor, rt, &plan, None, 1000).await.unwrap();
        let mut found: Vec<String> = found.iter().map(label).collect();
        found.sort();
        searched.push(found);
    }
    json!({"outcomes": outcomes, "records": docs, "events": events, "duplicates": groups, "search": searched})
}

/// Lines grouped under one savepoint, and runs of plain creates written together by the batch
/// write path, write exactly what one savepoint per line writes: the same outcomes, records,
/// change events, duplicate groups and search results, including when lines fail in the middle
/// of a group (which is then rolled back and replayed), when a line takes a domain an earlier
/// line of the same batch took, and when a later line updates a record an earlier line of the
/// same transaction created.
#[tokio::test]
async fn batched_bulk_lines_write_exactly_what_line_by_line_writes() {
    use corral_store::{BulkOp, MatchKey};
    let (store, _dir) = store().await;
    let schema = TenantSchema::builtin("t1", RT);
    let create = |body: serde_json::Value| BulkOp::Create(parse_write(RT, &body, WriteMode::Create, &schema).unwrap());
    let assert = |domain: &str, body: serde_json::Value| {
        BulkOp::Assert(
            vec![MatchKey::Domain(domain.into())],
            parse_write(RT, &body, WriteMode::Patch, &schema).unwrap(),
        )
    };
    let mut ops = Vec::new();
    for i in 0..150 {
        ops.push(match i % 10 {
            // The same name as other lines: duplicate blocks with several members.
            2 => create(json!({"name": format!("Same Name {}", i % 3), "tags": ["Dup", "dup", "other"]})),
            // A domain an earlier line took: 409 after the row was inserted and noted.
            3 => create(json!({"name": format!("dup {i}"), "domain": format!("d{}.example", i - 3)})),
            // A parent that does not exist: refused before anything is written.
            5 => create(
                json!({"name": format!("orphan {i}"), "parent_account_id": "00000000-0000-7000-8000-000000000001"}),
            ),
            // Updates a record created earlier in the same transaction.
            7 => assert(&format!("d{}.example", i - 7), json!({"industry": format!("updated {i}")})),
            // Creates through an assert that matches nothing.
            8 => assert(&format!("new{i}.example"), json!({"name": format!("asserted {i}"), "tags": ["x", "Y"]})),
            _ => create(json!({"name": format!("acct {i}"), "domain": format!("d{i}.example"), "employee_count": i})),
        });
    }
    // Every error in the first group of the grouped run, and a run of them in a row.
    ops.extend((0..4).map(|i| create(json!({"name": format!("again {i}"), "domain": "d0.example"}))));
    // A run of plain creates, then asserts on keys of the run: updates of what the batch wrote.
    ops.extend((0..40).map(|i| create(json!({"name": format!("late {i}"), "domain": format!("late{i}.example")}))));
    ops.extend((0..5).map(|i| assert(&format!("late{i}.example"), json!({"employee_count": 7}))));
    // A contact auto-association links to the account of line 11 when it is created.
    let contact = json!({"first_name": "Early", "email": "early@d11.example"});
    let setup = [(RecordType::Contact, contact_op(&contact))];
    let line_by_line = bulk_run(&store, "t-lines", RT, &setup, &ops, Some(1)).await;
    let grouped = bulk_run(&store, "t-groups", RT, &setup, &ops, Some(corral_store::bulk::MAX_GROUP)).await;
    let batched_before = corral_store::bulk::batched_lines();
    let batched = bulk_run(&store, "t-batched", RT, &setup, &ops, None).await;
    // The plain creates and asserts creating went through the batch path (other tests may
    // add to the count, never take from it).
    assert!(corral_store::bulk::batched_lines() - batched_before >= 100);
    let errors = line_by_line["outcomes"].as_array().unwrap().iter().filter(|o| o.is_string()).count();
    assert_eq!(errors, 15 + 15 + 4, "the conflicts and missing parents failed: {}", line_by_line["outcomes"]);
    // One event per record, and the setup contact's link to the account of line 11.
    let (events, records) = (&line_by_line["events"], &line_by_line["records"]);
    assert_eq!(events.as_array().unwrap().len(), records.as_array().unwrap().len() + 1);
    assert!(!line_by_line["duplicates"].as_array().unwrap().is_empty());
    let found: Vec<usize> =
        line_by_line["search"].as_array().unwrap().iter().map(|s| s.as_array().unwrap().len()).collect();
    assert_eq!(found, [15, 31, 30, 2]);
    for other in [&grouped, &batched] {
        for part in ["outcomes", "records", "events", "duplicates", "search"] {
            assert_eq!(other[part], line_by_line[part], "{part}");
        }
    }
}

/// A v1 contact create as a bulk line.
fn contact_op(body: &serde_json::Value) -> corral_store::BulkOp {
    let schema = TenantSchema::builtin("t1", RecordType::Contact);
    corral_store::BulkOp::Create(parse_write(RecordType::Contact, body, WriteMode::Create, &schema).unwrap())
}

/// Contacts too: the batch write path writes what the one-record path writes — emails taken
/// by an earlier line, asserts by email that update and that create, free-mail addresses, and
/// contacts that auto-association links to an account (left to the one-record path).
#[tokio::test]
async fn batched_bulk_contacts_write_exactly_what_line_by_line_writes() {
    use corral_store::{BulkOp, MatchKey};
    let (store, _dir) = store().await;
    let ct = RecordType::Contact;
    let schema = TenantSchema::builtin("t1", ct);
    let assert = |email: &str, body: serde_json::Value| {
        BulkOp::Assert(vec![MatchKey::Email(email.into())], parse_write(ct, &body, WriteMode::Patch, &schema).unwrap())
    };
    let mut ops = Vec::new();
    for i in 0..120 {
        ops.push(match i % 8 {
            // Auto-association links it to Acme: the one-record path.
            0 => contact_op(&json!({"first_name": format!("Acme {i}"), "email": format!("c{i}@acme.com")})),
            1 => contact_op(&json!({"first_name": format!("Free {i}"), "email": format!("c{i}@gmail.com")})),
            // The email of line i - 1: 409.
            2 => contact_op(&json!({"first_name": format!("Taken {i}"), "email": format!("c{}@gmail.com", i - 1)})),
            // Updates the contact of line i - 2.
            3 => assert(&format!("c{}@gmail.com", i - 2), json!({"last_name": format!("Updated {i}")})),
            4 => assert(&format!("new{i}@corp{i}.example"), json!({"first_name": format!("Asserted {i}")})),
            // Same name and phone: duplicate groups.
            5 => contact_op(&json!({"first_name": "Same", "last_name": "Person", "phone": "+1 415 555 0100",
                                    "email": format!("same{i}@corp{i}.example")})),
            _ => contact_op(&json!({"first_name": format!("Plain {i}"), "email": format!("p{i}@corp{i}.example"),
                                    "tags": ["t"]})),
        });
    }
    let account = json!({"name": "Acme", "domain": "acme.com"});
    let setup =
        [(RT, BulkOp::Create(parse_write(RT, &account, WriteMode::Create, &TenantSchema::builtin("t1", RT)).unwrap()))];
    let line_by_line = bulk_run(&store, "c-lines", ct, &setup, &ops, Some(1)).await;
    let batched_before = corral_store::bulk::batched_lines();
    let batched = bulk_run(&store, "c-batched", ct, &setup, &ops, None).await;
    assert!(corral_store::bulk::batched_lines() - batched_before >= 60);
    let errors = line_by_line["outcomes"].as_array().unwrap().iter().filter(|o| o.is_string()).count();
    assert_eq!(errors, 15, "the taken emails failed: {}", line_by_line["outcomes"]);
    let linked = line_by_line["records"].as_array().unwrap().iter().filter(|d| d["account_id"] == "Acme").count();
    assert_eq!(linked, 15, "auto-association linked the acme.com contacts");
    for part in ["outcomes", "records", "events", "duplicates", "search"] {
        assert_eq!(batched[part], line_by_line[part], "{part}");
    }
}

/// `q` search through the index (FTS5 trigram on SQLite, written at commit; pg_trgm on
/// PostgreSQL) follows every write that changes a searched value: renames, domains added and
/// removed, purges, and writes rolled back. On SQLite the FTS5 index also passes its own
/// integrity check afterwards and no queued index change is left behind.
#[tokio::test]
async fn search_follows_renames_domains_purges_and_rollbacks() {
    let dir = tempfile::tempdir().unwrap();
    let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
    let store = Store::open_with(&url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
    store.migrate().await.unwrap();
    let search = |q: &str| ListQuery { q: Some(q.into()), sort: vec![("name".into(), false)], ..Default::default() };
    let id_of = |doc: &serde_json::Value| RecordId::parse(RT, doc["id"].as_str().unwrap()).unwrap();
    let schema = TenantSchema::builtin("t1", RT);

    let acme = id_of(&create(&store, json!({"name": "Acme Rockets", "domain": "acme-rockets.io"})).await);
    let globex = id_of(&create(&store, json!({"name": "Globex Widgets"})).await);
    assert_eq!(names(&store, search("rocket")).await, ["Acme Rockets"]);
    assert_eq!(names(&store, search("widget")).await, ["Globex Widgets"]);

    let rename = parse_write(RT, &json!({"name": "Initech Lasers"}), WriteMode::Patch, &schema).unwrap();
    store.update_record(&actor(), RT, acme, &rename, Preconditions::default()).await.unwrap();
    assert_eq!(names(&store, search("laser")).await, ["Initech Lasers"]);
    // The old name is gone from the index; the domain still finds the record.
    assert_eq!(names(&store, search("acme rock")).await, Vec::<String>::new());
    assert_eq!(names(&store, search("acme-rockets")).await, ["Initech Lasers"]);

    // A write refused after nothing was written, then a write whose precondition fails.
    let stale = parse_write(RT, &json!({"name": "Never Stored"}), WriteMode::Patch, &schema).unwrap();
    assert!(store.update_record(&actor(), RT, acme, &stale, Preconditions { if_match: Some(99) }).await.is_err());
    assert_eq!(names(&store, search("never stored")).await, Vec::<String>::new());

    store
        .change_domain(&actor(), globex, "globex.example", corral_store::DomainChange::Add, Preconditions::default())
        .await
        .unwrap();
    assert_eq!(names(&store, search("globex.exam")).await, ["Globex Widgets"]);
    store
        .change_domain(&actor(), globex, "globex.example", corral_store::DomainChange::Remove, Preconditions::default())
        .await
        .unwrap();
    assert_eq!(names(&store, search("globex.exam")).await, Vec::<String>::new());

    store.purge_record(&actor(), RT, globex).await.unwrap();
    assert_eq!(names(&store, search("widget")).await, Vec::<String>::new());
    assert_eq!(names(&store, search("laser")).await, ["Initech Lasers"]);

    if let corral_store::DatabaseUrl::Sqlite(path) = &url {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)", []).unwrap();
        let queued: i64 = conn.query_row("SELECT COUNT(*) FROM search_fts_queue", [], |r| r.get(0)).unwrap();
        assert_eq!(queued, 0);
    }
}
