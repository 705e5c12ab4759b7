//! Differential test of the query path: random records and random filter trees, evaluated
//! by the reference evaluator below and by SQL on the database under test (SQLite, and
//! PostgreSQL when `CORRAL_TEST_DATABASE_URL` is set), must give the same ids in the same
//! order, page by page.

use corral_core::custom::TenantSchema;
use corral_core::filter::Filter;
use corral_core::list::{Dialect, ListQuery};
use corral_core::v1::{WriteMode, parse_write, render};
use corral_core::{Actor, Record, RecordType};
use corral_store::{Created, PgOptions, Store};
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use std::cmp::Ordering;

const RT: RecordType = RecordType::Account;

/// Sort keys as the query names them, and as the reference evaluator reads them off v1 documents.
type SortPair = (Vec<(String, bool)>, Vec<(&'static str, bool)>);
const NAMES: &[&str] = &["alpha", "Alpha", "ÉCOLE", "école", "beta_1", "100%", "b%c", "gamma", "x_y", "Zed"];
const INDUSTRIES: &[&str] = &["software", "Software", "hard_ware", "ÉNERGIE", "50%"];
const TAGS: &[&str] = &["vip", "Partner", "x_y", "%", "é"];
const TEXT_VALUES: &[&str] =
    &["alpha", "ALPHA", "é", "É", "_", "%", "a", "b%", "x_y", "soft", "SOFT", "vip", "partner", "ware", "100"];
const STAGES: &[&str] = &["prospect", "customer", "churned"];

#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    industry: Option<&'static str>,
    employees: Option<i64>,
    revenue: Option<f64>,
    tags: Vec<&'static str>,
    stage: Option<&'static str>,
    has_domain: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(NAMES),
        prop::option::of(prop::sample::select(INDUSTRIES)),
        prop::option::of(0i64..4),
        prop::option::of(prop::sample::select(&[0.0, 1.5, 1000.0][..])),
        prop::sample::subsequence(TAGS, 0..=3),
        prop::option::of(prop::sample::select(STAGES)),
        any::<bool>(),
    )
        .prop_map(|(name, industry, employees, revenue, tags, stage, has_domain)| Spec {
            name,
            industry,
            employees,
            revenue,
            tags,
            stage,
            has_domain,
        })
}

fn leaf() -> impl Strategy<Value = Json> {
    let text_field = prop::sample::select(&["display_name", "industry", "tags"][..]);
    let text_op = prop::sample::select(
        &["eq", "ne", "contains", "starts_with", "ends_with", "exists", "not_exists", "in", "not_in"][..],
    );
    let text = (text_field, text_op, prop::sample::subsequence(TEXT_VALUES, 1..3))
        .prop_map(|(f, op, vals)| cond(f, op, vals.into_iter().map(Json::from).collect()));
    let num_op = prop::sample::select(
        &["eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists", "in", "not_in"][..],
    );
    let num = (num_op, 0i64..4, 0i64..4)
        .prop_map(|(op, a, b)| cond("employee_count", op, vec![json!(a.min(b)), json!(a.max(b))]));
    let rev_op = prop::sample::select(&["gt", "lte", "between", "exists", "eq"][..]);
    let rev = (rev_op, prop::sample::select(&[0.0, 1.5, 1000.0, 2.0][..]))
        .prop_map(|(op, v)| cond("estimated_annual_revenue", op, vec![json!(0.0), json!(v)]));
    let stage_op = prop::sample::select(&["eq", "ne", "in", "not_in", "exists", "not_exists"][..]);
    let stage = (stage_op, prop::sample::subsequence(STAGES, 1..3))
        .prop_map(|(op, vals)| cond("current_stage_id", op, vals.into_iter().map(Json::from).collect()));
    let domain_op = prop::sample::select(&["eq", "contains", "ends_with", "exists", "not_exists", "ne"][..]);
    let domain =
        (domain_op, 0usize..6).prop_map(|(op, i)| cond("domains", op, vec![json!(format!("d{i}.example.com"))]));
    prop_oneof![text, num, rev, stage, domain]
}

/// A condition; `values` is trimmed to what the operator takes.
fn cond(field: &str, op: &str, values: Vec<Json>) -> Json {
    match op {
        "exists" | "not_exists" => json!({"field": field, "operator": op}),
        "in" | "not_in" => json!({"field": field, "operator": op, "value": values}),
        "between" => json!({"field": field, "operator": op, "value": [values[0], values[values.len() - 1]]}),
        _ => json!({"field": field, "operator": op, "value": values[0]}),
    }
}

fn tree() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|c| json!({"and": c})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|c| json!({"or": c})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

// ----- the reference evaluator -----

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// The values a field has on a rendered v1 document, as comparable JSON.
fn values_of(doc: &Json, field: &str) -> (Vec<Json>, bool) {
    let one = |v: &Json| if v.is_null() { vec![] } else { vec![v.clone()] };
    match field {
        "display_name" => (one(&doc["name"]), false),
        "industry" => (one(&doc["industry"]), false),
        "tags" => (doc["tags"].as_array().unwrap().clone(), true),
        "employee_count" => (one(&doc["employee_count"]), false),
        "estimated_annual_revenue" => (one(&doc["annual_revenue"]), false),
        "current_stage_id" => (one(&doc["lifecycle_stage"]), false),
        "domains" => (doc["domains"].as_array().unwrap().clone(), true),
        // A contact's title (its v1 `job_title`).
        "title" => (one(&doc["job_title"]), false),
        other => panic!("{other}"),
    }
}

fn cmp(a: &Json, b: &Json) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap(),
        _ => lower(a.as_str().unwrap()).cmp(&lower(b.as_str().unwrap())),
    }
}

fn positive(op: &str, v: &Json, wanted: &[Json]) -> bool {
    let text = || lower(v.as_str().unwrap_or_default());
    let w = |i: usize| lower(wanted[i].as_str().unwrap_or_default());
    match op {
        "eq" => cmp(v, &wanted[0]) == Ordering::Equal,
        "in" => wanted.iter().any(|x| cmp(v, x) == Ordering::Equal),
        "contains" => text().contains(&w(0)),
        "starts_with" => text().starts_with(&w(0)),
        "ends_with" => text().ends_with(&w(0)),
        "gt" => cmp(v, &wanted[0]) == Ordering::Greater,
        "gte" => cmp(v, &wanted[0]) != Ordering::Less,
        "lt" => cmp(v, &wanted[0]) == Ordering::Less,
        "lte" => cmp(v, &wanted[0]) != Ordering::Greater,
        "between" => cmp(v, &wanted[0]) != Ordering::Less && cmp(v, &wanted[1]) != Ordering::Greater,
        other => panic!("{other}"),
    }
}

fn eval(doc: &Json, f: &Json) -> bool {
    eval_in(doc, f, &|_, rel| panic!("no relation {rel} here"))
}

/// The related records (active ones) of `doc` along relation `rel`, as v1 documents.
type Related<'a> = dyn Fn(&Json, &str) -> Vec<Json> + 'a;

/// [`eval`] with relationship fields: `rel.field` holds when any related record satisfies
/// the leaf on `field` (docs/API.md "Filters across relationships").
fn eval_in(doc: &Json, f: &Json, related: &Related<'_>) -> bool {
    if let Some(c) = f.get("and") {
        return c.as_array().unwrap().iter().all(|x| eval_in(doc, x, related));
    }
    if let Some(c) = f.get("or") {
        return c.as_array().unwrap().iter().any(|x| eval_in(doc, x, related));
    }
    if let Some(c) = f.get("not") {
        return !eval_in(doc, c, related);
    }
    if let Some((rel, field)) = f["field"].as_str().unwrap().split_once('.') {
        let mut inner = f.clone();
        inner["field"] = json!(field);
        return related(doc, rel).iter().any(|r| eval(r, &inner));
    }
    let (values, _) = values_of(doc, f["field"].as_str().unwrap());
    let op = f["operator"].as_str().unwrap();
    let wanted: Vec<Json> = match &f["value"] {
        Json::Array(v) => v.clone(),
        Json::Null => vec![],
        v => vec![v.clone()],
    };
    let (pos, negate) = match op {
        "ne" => ("eq", true),
        "not_in" => ("in", true),
        "not_exists" => ("exists", true),
        other => (other, false),
    };
    let hit = if pos == "exists" { !values.is_empty() } else { values.iter().any(|v| positive(pos, v, &wanted)) };
    hit != negate
}

/// The reference order: sort keys with nulls last, then the id in the last key's direction.
fn order(docs: &mut [Json], sort: &[(&str, bool)]) {
    docs.sort_by(|a, b| {
        for (field, desc) in sort {
            let (x, y) = (&a[*field], &b[*field]);
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => return Ordering::Greater,
                (false, true) => return Ordering::Less,
                _ => match (x.as_i64(), y.as_i64()) {
                    (Some(p), Some(q)) => p.cmp(&q),
                    _ => x.as_str().unwrap().as_bytes().cmp(y.as_str().unwrap().as_bytes()),
                },
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let o = a["id"].as_str().cmp(&b["id"].as_str());
        if sort.last().is_some_and(|(_, d)| *d) { o.reverse() } else { o }
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sql_and_the_reference_evaluator_agree(specs in prop::collection::vec(spec(), 0..10), filter in tree(),
                                             sort_pick in 0usize..4, limit in 1usize..5) {
        let rt = runtime();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
            let store = Store::open_with(&url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
            store.migrate().await.unwrap();
            let actor = Actor::new("t", "prop", None, corral_core::ActorKind::User);
            let schema = TenantSchema::builtin("t", RT);
            let mut docs = Vec::new();
            for (i, s) in specs.iter().enumerate() {
                let mut body = json!({"name": s.name, "industry": s.industry, "employee_count": s.employees,
                                      "annual_revenue": s.revenue, "tags": s.tags, "lifecycle_stage": s.stage});
                if s.has_domain {
                    body["domain"] = json!(format!("d{i}.example.com"));
                }
                let write = parse_write(RT, &body, WriteMode::Create, &schema).unwrap();
                if let Created::New(record, _) = store.create_record(&actor, RT, &write, None, |_| String::new()).await.unwrap() {
                    docs.push(render(&record, &schema));
                }
            }
            let (sort, keys): SortPair = match sort_pick {
                0 => (vec![("display_name".into(), false)], vec![("name", false)]),
                1 => (vec![("employee_count".into(), true), ("display_name".into(), false)], vec![("employee_count", true), ("name", false)]),
                2 => (vec![("industry".into(), false)], vec![("industry", false)]),
                _ => (vec![], vec![("created_at", true)]),
            };
            let query = ListQuery { dialect: Dialect::V2, filters: vec![Filter::parse(&filter).unwrap()], sort, ..Default::default() };
            let plan = query.resolve(RT, &schema).unwrap();
            let mut expected: Vec<Json> = docs.iter().filter(|d| eval(d, &filter)).cloned().collect();
            order(&mut expected, &keys);
            let expected: Vec<String> = expected.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();

            let mut got = Vec::new();
            let mut after = None;
            loop {
                let (page, next): (Vec<Record>, _) = store.list_records(&actor, RT, &plan, after.as_deref(), limit).await.unwrap();
                got.extend(page.iter().map(|r| r.meta.id.v1(RT)));
                match next {
                    Some(position) => after = Some(position),
                    None => break,
                }
            }
            prop_assert_eq!(&got, &expected, "filter {}", filter);
            let total = store.count_records(&actor, RT, &plan).await.unwrap();
            prop_assert_eq!(total as usize, expected.len());
            Ok(())
        })?;
    }
}

// ----- substring search served by the search index (docs/API.md, "Queries") -----

/// Characters that stress the search index: LIKE wildcards and escape, FTS5 quoting,
/// spaces, ASCII and non-ASCII case.
const SEARCH_CHARS: &[&str] = &["a", "b", "A", "B", "é", "É", "%", "_", "\\", "\"", " ", ".", "c"];

fn search_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SEARCH_CHARS), 0..max).prop_map(|v| v.concat())
}

/// A needle: a fragment of one of the names (with its ASCII case flipped at random), or
/// arbitrary text; short ones (under three characters) take the unindexed path.
fn needle(names: Vec<String>) -> impl Strategy<Value = String> {
    let fragment = (prop::sample::select(names), 0usize..8, 1usize..7, any::<bool>()).prop_map(|(n, at, len, flip)| {
        let chars: Vec<char> = n.chars().collect();
        let at = at.min(chars.len());
        let s: String = chars[at..(at + len).min(chars.len())].iter().collect();
        if flip { s.to_ascii_uppercase() } else { s }
    });
    // Filter values are trimmed by the server; the reference takes them as sent.
    prop_oneof![fragment, search_text(6)].prop_map(|n| n.trim().to_owned()).prop_filter("a needle", |n| !n.is_empty())
}

fn search_case() -> impl Strategy<Value = (Vec<(String, String)>, String, u8)> {
    prop::collection::vec((search_text(10), search_text(6)), 1..8).prop_flat_map(|records| {
        let names: Vec<String> = records.iter().map(|(n, _)| n.clone()).filter(|n| !n.is_empty()).collect();
        let names = if names.is_empty() { vec!["abc".to_owned()] } else { names };
        (Just(records), needle(names), 0u8..7)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `q` and the substring operators on indexed fields return what LIKE alone returns (the
    /// reference evaluator), whether or not the index narrows the query.
    #[test]
    fn indexed_search_agrees_with_the_reference((records, needle, pick) in search_case()) {
        let rt = runtime();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
            let store = Store::open_with(&url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
            store.migrate().await.unwrap();
            let actor = Actor::new("t", "prop", None, corral_core::ActorKind::User);
            let schema = TenantSchema::builtin("t", RT);
            let mut docs = Vec::new();
            for (i, (name, label)) in records.iter().enumerate() {
                // A name is required: every one starts with a letter.
                let mut body = json!({"name": format!("n{name}")});
                // Domains must be valid: the random part is a label, lower-cased.
                let label: String = label.chars().filter(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_lowercase();
                if !label.is_empty() {
                    body["domain"] = json!(format!("{label}{i}.example.com"));
                }
                let write = parse_write(RT, &body, WriteMode::Create, &schema).unwrap();
                if let Created::New(record, _) = store.create_record(&actor, RT, &write, None, |_| String::new()).await.unwrap() {
                    docs.push(render(&record, &schema));
                }
            }
            let (query, reference): (ListQuery, Json) = match pick {
                0..=5 => {
                    let field = if pick < 3 { "display_name" } else { "domains" };
                    let op = ["contains", "starts_with", "ends_with"][usize::from(pick % 3)];
                    let f = json!({"field": field, "operator": op, "value": needle});
                    (ListQuery { dialect: Dialect::V2, filters: vec![Filter::parse(&f).unwrap()], ..Default::default() }, f)
                }
                _ => {
                    let q = needle.trim().to_owned();
                    let any = json!({"or": [
                        {"field": "display_name", "operator": "contains", "value": q},
                        {"field": "domains", "operator": "contains", "value": q},
                    ]});
                    (ListQuery { dialect: Dialect::V2, q: Some(q), ..Default::default() }, any)
                }
            };
            let plan = query.resolve(RT, &schema).unwrap();
            let mut expected: Vec<Json> = docs.iter().filter(|d| eval(d, &reference)).cloned().collect();
            order(&mut expected, &[("created_at", true)]);
            let expected: Vec<String> = expected.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
            let (page, _): (Vec<Record>, _) = store.list_records(&actor, RT, &plan, None, 100).await.unwrap();
            let got: Vec<String> = page.iter().map(|r| r.meta.id.v1(RT)).collect();
            prop_assert_eq!(&got, &expected, "filter {} on {:?}", reference, records);
            let total = store.count_records(&actor, RT, &plan).await.unwrap();
            prop_assert_eq!(total as usize, expected.len());
            Ok(())
        })?;
    }
}

// ----- filters across relationships (docs/API.md "Filters across relationships") -----

const TITLES: &[&str] = &["CTO", "cto", "VP Sales", "Engineer", "x_y"];

/// A leaf on a contact's own attributes.
fn contact_leaf() -> impl Strategy<Value = Json> {
    let op = prop::sample::select(
        &["eq", "ne", "contains", "starts_with", "ends_with", "exists", "not_exists", "in", "not_in"][..],
    );
    (op, prop::sample::subsequence(&["cto", "VP", "engineer", "sales", "_", "x"][..], 1..3))
        .prop_map(|(op, vals)| cond("title", op, vals.into_iter().map(Json::from).collect()))
}

/// `leaf` with its field behind relation `rel`.
fn behind(rel: &'static str, leaf: impl Strategy<Value = Json>) -> impl Strategy<Value = Json> {
    leaf.prop_map(move |mut j| {
        j["field"] = json!(format!("{rel}.{}", j["field"].as_str().unwrap()));
        j
    })
}

fn tree_of(leaf: BoxedStrategy<Json>) -> impl Strategy<Value = Json> {
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|c| json!({"and": c})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|c| json!({"or": c})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

/// An account of the graph: its values, its parent (an earlier account), archived or not.
type AccountNode = (Spec, Option<usize>, bool);
/// A contact of the graph: title, primary account, other linked accounts, archived or not.
type ContactNode = (Option<&'static str>, Option<usize>, Vec<usize>, bool);

fn graph() -> impl Strategy<Value = (Vec<AccountNode>, Vec<ContactNode>)> {
    let accounts = prop::collection::vec((spec(), prop::option::of(0usize..5), any::<bool>()), 1..6);
    let contacts = prop::collection::vec(
        (
            prop::option::of(prop::sample::select(TITLES)),
            prop::option::of(0usize..5),
            prop::sample::subsequence(&[0usize, 1, 2, 3, 4][..], 0..3),
            any::<bool>(),
        ),
        0..7,
    );
    (accounts, contacts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Relationship filters in both directions (contacts by `accounts.*` / `primary_account.*`,
    /// accounts by `contacts.*` / `parent_account.*`) give what the reference gives: any
    /// active related record satisfies the leaf; archived related records never count.
    #[test]
    fn relationship_filters_agree_with_the_reference(
        (accounts, contacts) in graph(),
        account_filter in tree_of(prop_oneof![leaf(), behind("parent_account", leaf()), behind("contacts", contact_leaf())].boxed()),
        contact_filter in tree_of(prop_oneof![contact_leaf(), behind("accounts", leaf()), behind("primary_account", leaf())].boxed()),
    ) {
        use corral_core::RecordType::{Account, Contact};
        use corral_core::filter::Schemas;
        let rt = runtime();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = corral_store::testing::fresh_database_url(dir.path()).await.unwrap();
            let store = Store::open_with(&url, &PgOptions { pool_size: 2, ..PgOptions::default() }).await.unwrap();
            store.migrate().await.unwrap();
            let actor = Actor::new("t", "prop", None, corral_core::ActorKind::User);
            let (account_schema, contact_schema) = (TenantSchema::builtin("t", Account), TenantSchema::builtin("t", Contact));
            let create = |rt: RecordType, body: Json| {
                let schema = if rt == Account { &account_schema } else { &contact_schema };
                let write = parse_write(rt, &body, WriteMode::Create, schema).unwrap();
                let store = &store;
                let actor = &actor;
                async move {
                    match store.create_record(actor, rt, &write, None, |_| String::new()).await.unwrap() {
                        Created::New(record, _) => *record,
                        _ => unreachable!("no idempotency key"),
                    }
                }
            };
            let mut account_records: Vec<Record> = Vec::new();
            for (i, (s, parent, _)) in accounts.iter().enumerate() {
                let mut body = json!({"name": s.name, "industry": s.industry, "employee_count": s.employees,
                                      "annual_revenue": s.revenue, "tags": s.tags, "lifecycle_stage": s.stage});
                if s.has_domain {
                    body["domain"] = json!(format!("d{i}.example.com"));
                }
                if let Some(p) = parent.filter(|p| *p < i) {
                    body["parent_account_id"] = json!(account_records[p].meta.id.v1(Account));
                }
                account_records.push(create(Account, body).await);
            }
            let n = account_records.len();
            let mut contact_records: Vec<Record> = Vec::new();
            // Per contact: its primary account and every linked account (indices).
            let mut links: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
            for (j, (title, primary, others, _)) in contacts.iter().enumerate() {
                let primary = primary.filter(|p| *p < n);
                let mut body = json!({"first_name": format!("c{j}"), "job_title": title});
                if let Some(p) = primary {
                    body["account_id"] = json!(account_records[p].meta.id.v1(Account));
                }
                let record = create(Contact, body).await;
                let mut linked: Vec<usize> = primary.into_iter().collect();
                for &o in others.iter().filter(|o| **o < n && Some(**o) != primary) {
                    let change = corral_store::edges::EdgeChange { role: None, is_primary: None };
                    let target = corral_store::EdgeTarget::Id(account_records[o].meta.id);
                    store.add_edge(&actor, Contact, record.meta.id, target, &change).await.unwrap();
                    linked.push(o);
                }
                links.push((primary, linked));
                contact_records.push(record);
            }
            for (i, (_, _, archived)) in accounts.iter().enumerate() {
                if *archived {
                    store.archive_record(&actor, Account, account_records[i].meta.id, Default::default()).await.unwrap();
                }
            }
            for (j, (_, _, _, archived)) in contacts.iter().enumerate() {
                if *archived {
                    store.archive_record(&actor, Contact, contact_records[j].meta.id, Default::default()).await.unwrap();
                }
            }
            let account_docs: Vec<Json> = account_records.iter().map(|r| render(r, &account_schema)).collect();
            let contact_docs: Vec<Json> = contact_records.iter().map(|r| render(r, &contact_schema)).collect();
            let account_active = |i: usize| !accounts[i].2;
            let contact_active = |j: usize| !contacts[j].3;
            let index_of = |docs: &[Json], doc: &Json| docs.iter().position(|d| d["id"] == doc["id"]).unwrap();
            let related = |doc: &Json, rel: &str| -> Vec<Json> {
                match rel {
                    "parent_account" => {
                        let i = index_of(&account_docs, doc);
                        accounts[i].1.filter(|p| *p < i && account_active(*p)).map(|p| account_docs[p].clone()).into_iter().collect()
                    }
                    "contacts" => {
                        let i = index_of(&account_docs, doc);
                        (0..contact_docs.len()).filter(|j| contact_active(*j) && links[*j].1.contains(&i)).map(|j| contact_docs[j].clone()).collect()
                    }
                    "accounts" => {
                        let j = index_of(&contact_docs, doc);
                        links[j].1.iter().filter(|i| account_active(**i)).map(|i| account_docs[*i].clone()).collect()
                    }
                    "primary_account" => {
                        let j = index_of(&contact_docs, doc);
                        links[j].0.filter(|i| account_active(*i)).map(|i| account_docs[i].clone()).into_iter().collect()
                    }
                    other => panic!("{other}"),
                }
            };
            for (rt, filter, docs, active) in [
                (Account, &account_filter, &account_docs, (0..account_docs.len()).map(account_active).collect::<Vec<_>>()),
                (Contact, &contact_filter, &contact_docs, (0..contact_docs.len()).map(contact_active).collect::<Vec<_>>()),
            ] {
                let (own, other) = if rt == Account { (&account_schema, &contact_schema) } else { (&contact_schema, &account_schema) };
                let query = ListQuery { dialect: Dialect::V2, filters: vec![Filter::parse(filter).unwrap()], ..Default::default() };
                let plan = query.resolve(rt, Schemas::new(own, other)).unwrap();
                let mut expected: Vec<Json> = docs.iter().zip(&active).filter(|(d, a)| **a && eval_in(d, filter, &related)).map(|(d, _)| d.clone()).collect();
                order(&mut expected, &[("created_at", true)]);
                let expected: Vec<String> = expected.iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
                let (page, _): (Vec<Record>, _) = store.list_records(&actor, rt, &plan, None, 100).await.unwrap();
                let got: Vec<String> = page.iter().map(|r| r.meta.id.v1(rt)).collect();
                prop_assert_eq!(&got, &expected, "{} filter {}", rt, filter);
                let total = store.count_records(&actor, rt, &plan).await.unwrap();
                prop_assert_eq!(total as usize, expected.len());
            }
            Ok(())
        })?;
    }
}
