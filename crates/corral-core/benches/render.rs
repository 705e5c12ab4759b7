//! Rendering a page of 50 accounts as each dialect's response body (docs/PERFORMANCE.md):
//! the CPU a list or `_query` spends after the database has answered. The records carry the
//! fields `bench/compare.py` seeds, so the figures explain that benchmark's v1 / v2 gap.
//!
//! `cargo bench -p corral-core --bench render` (add `-- --test` for a quick smoke run).

use corral_core::custom::TenantSchema;
use corral_core::{Actor, ActorKind, Record, RecordMeta, RecordType, Timestamp, v1, v2};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;

const RT: RecordType = RecordType::Account;

fn page() -> Vec<Record> {
    let actor = Actor::new("bench", "bench", None, ActorKind::User);
    let schema = TenantSchema::builtin("bench", RT);
    (0..50)
        .map(|i| {
            let body = json!({
                "name": format!("Account {i}"),
                "legal_name": format!("Account {i} Inc."),
                "domain": format!("a{i}.example.com"),
                "industry": "software",
                "employee_count": 10 * i,
                "annual_revenue": 1_000_000 + i,
                "description": "A company that makes things for other companies.",
                "tags": ["prospect", "emea"],
            });
            let write = v1::parse_write(RT, &body, v1::WriteMode::Create, &schema).expect("a valid account");
            let mut record = Record::new(RT, RecordMeta::new(&actor, Timestamp(1_700_000_000_000)));
            record.apply(&write, Timestamp(1_700_000_000_000)).expect("applies");
            record
        })
        .collect()
}

fn render(c: &mut Criterion) {
    let records = page();
    let schema = TenantSchema::builtin("bench", RT);
    // What the v1 list does: each document serialised straight into the body.
    c.bench_function("v1 list body, 50 accounts", |b| {
        b.iter(|| {
            let data: Vec<_> = records.iter().map(|r| v1::rendered(r, &schema)).collect();
            black_box(serde_json::to_string(&(data, true, "c")).expect("serialises"))
        })
    });
    let ctx = v2::RenderContext { schema: &schema, only: None };
    // What `_query` does: each record serialised straight into the body.
    c.bench_function("v2 _query body, 50 accounts", |b| {
        b.iter(|| {
            let data: Vec<_> = records.iter().map(|r| v2::rendered(r, &ctx)).collect();
            black_box(serde_json::to_string(&(data, "c")).expect("serialises"))
        })
    });
    // The same records as JSON values first (what other callers of `v2::render` get).
    c.bench_function("v2 records as JSON values, 50 accounts", |b| {
        b.iter(|| {
            let data: Vec<_> = records.iter().map(|r| v2::render(r, &ctx)).collect();
            black_box(json!({"data": data, "next_cursor": "c"}).to_string())
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
