//! Bulk seeding of a large tenant, for benchmarks (`corral seed`, bench/scale.sh) and the
//! query-plan test: synthetic accounts and contacts created through the one create path
//! ([`crate::records::create`]), thousands per transaction, so that every row, key row and
//! edge is exactly what the API would have written — only the per-request overhead is gone.

use crate::{Store, StoreResult};
use corral_core::custom::TenantSchema;
use corral_core::v1::{WriteMode, parse_write};
use corral_core::{Actor, RecordType, Timestamp};
use serde_json::{Value as Json, json};

/// Records created per transaction: large enough that commits cost nothing, small enough that
/// a PostgreSQL transaction stays modest and SQLite readers are not starved for long.
pub const BATCH: u64 = 5_000;

/// Industries of seeded accounts: eight values, so one industry is 1/8 of the tenant (the
/// issue's "industry (125 k matches)" at one million).
pub const INDUSTRIES: [&str; 8] =
    ["software", "manufacturing", "retail", "finance", "healthcare", "education", "energy", "media"];
const STAGES: [&str; 6] = ["prospect", "target_account", "engaged", "opportunity", "customer", "churned"];
const WORDS: [&str; 16] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "hooli",
    "vandelay",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "oscorp",
    "aperture",
    "massive",
    "nakatomi",
];

/// The domain of seeded account `i` (unique in the tenant).
pub fn account_domain(i: u64) -> String {
    format!("a{i}.example")
}

/// The primary email of seeded contact `j` (unique in the tenant); its domain is that of
/// account `j % accounts`, so auto-association links it there.
pub fn contact_email(j: u64, accounts: u64) -> String {
    format!("c{j}@{}", account_domain(j % accounts.max(1)))
}

/// The v1 body of seeded account `i`.
pub fn account_body(i: u64) -> Json {
    let w = |k: u64| WORDS[((i / k) % WORDS.len() as u64) as usize];
    json!({
        "name": format!("{} {} {i}", w(1), w(16)),
        "industry": INDUSTRIES[(i % 8) as usize],
        "lifecycle_stage": STAGES[(i % 6) as usize],
        "domain": account_domain(i),
        "tags": [format!("tag{}", i % 50)],
        "employee_count": (i * 7919) % 5000,
    })
}

/// The v1 body of seeded contact `j`.
pub fn contact_body(j: u64, accounts: u64) -> Json {
    let w = |k: u64| WORDS[((j / k) % WORDS.len() as u64) as usize];
    json!({
        "first_name": format!("{}{}", w(1), j % 1000),
        "last_name": format!("{}{j}", w(16)),
        "email": contact_email(j, accounts),
        "stage": if j.is_multiple_of(20) { "working" } else if j.is_multiple_of(2) { "new" } else { "qualified" },
    })
}

/// What [`seed`] reports after each batch: record type and how many of it exist so far.
pub type Progress<'a> = &'a mut (dyn FnMut(RecordType, u64) + Send);

/// Creates `accounts` accounts, then `contacts` contacts linked to them (by email domain), in
/// the tenant of `actor`, numbered from 0. Creation times are one millisecond apart, so the
/// default newest-first order is the reverse of creation order. The caller analyses afterwards
/// ([`Store::analyze`]) if the data should be queried with fresh statistics.
pub async fn seed(
    store: &Store,
    actor: &Actor,
    accounts: u64,
    contacts: u64,
    progress: Progress<'_>,
) -> StoreResult<()> {
    let start = Timestamp::now().millis() - (accounts + contacts) as i64;
    let mut made = 0;
    for (rt, total) in [(RecordType::Account, accounts), (RecordType::Contact, contacts)] {
        let schema = TenantSchema::builtin(actor.tenant.as_str(), rt);
        let mut n = 0;
        while n < total {
            let end = (n + BATCH).min(total);
            let mut writes = Vec::with_capacity((end - n) as usize);
            for i in n..end {
                let body = if rt == RecordType::Account { account_body(i) } else { contact_body(i, accounts) };
                writes.push(parse_write(rt, &body, WriteMode::Create, &schema)?);
            }
            store.create_many(actor, rt, &writes, Timestamp(start + made as i64)).await?;
            // Statistics after the first batch: planned against empty tables, PostgreSQL's
            // cached plans for the per-record key lookups are sequential scans, which read
            // every key row for each new record (measured: 184 accounts/s, and falling). An
            // ANALYZE replans them as index lookups.
            if n == 0 {
                store.analyze().await?;
            }
            made += end - n;
            n = end;
            progress(rt, n);
        }
    }
    Ok(())
}
