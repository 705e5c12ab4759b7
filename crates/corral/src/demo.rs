//! `corral serve --demo`: seeds a `demo` tenant with users, accounts (with a custom
//! attribute) and contacts linked to them (once), mints an admin token and prints it with a
//! sample `curl`.

use anyhow::Result;
use corral_core::custom::parse_definition;
use corral_core::list::ListQuery;
use corral_core::v1::{WriteMode, parse_write};
use corral_core::{Actor, RecordType, TenantId};
use corral_http::{AppState, Claims};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;

pub const TENANT: &str = "demo";

/// [`TENANT`] as a tenant id.
fn tenant() -> TenantId {
    TenantId::new(TENANT)
}
const ADMIN_SUB: &str = "demo-admin";

/// Whether the demo tenant holds any record of `rt` (archived ones included).
async fn has_records(state: &AppState, actor: &Actor, rt: RecordType) -> Result<bool> {
    let store = state.store();
    let query = ListQuery { include_deleted: true, ..ListQuery::default() };
    let plan = query.resolve(rt, &store.schema(&tenant(), rt).await?)?;
    let (existing, _) = store.list_records(actor, rt, &plan, None, 1).await?;
    Ok(!existing.is_empty())
}

/// Seeds what the demo tenant lacks (accounts, then contacts; each only while the tenant has
/// none of them, so restarts seed nothing twice) and returns a 24-hour admin token.
pub async fn seed(state: &AppState) -> Result<String> {
    let actor = Actor::new(TENANT, ADMIN_SUB, None, corral_core::ActorKind::System);
    // The three owners, added on the first start and found again on the next.
    let users = state.store().list_users(&tenant()).await?;
    let mut owners = Vec::new();
    for (email, name) in [
        ("ada@demo.corral.dev", "Ada Lovelace"),
        ("grace@demo.corral.dev", "Grace Hopper"),
        ("alan@demo.corral.dev", "Alan Turing"),
    ] {
        let id = match users.iter().find(|u| u.email.as_deref() == Some(email)) {
            Some(user) => user.id,
            None => state.store().add_user(&tenant(), email, Some(name), ADMIN_SUB).await?.id,
        };
        owners.push(id.v1(RecordType::User));
    }
    if !has_records(state, &actor, RecordType::Account).await? {
        seed_accounts(state, &actor, &owners).await?;
    }
    if !has_records(state, &actor, RecordType::Contact).await? {
        seed_contacts(state, &actor, &owners).await?;
    }
    let now = corral_http::auth::unix_now();
    Ok(state.auth().mint(Claims {
        sub: ADMIN_SUB.into(),
        tenant_id: TENANT.into(),
        exp: now + 24 * 3600,
        iat: Some(now),
        roles: vec!["tenant_admin".into()],
        email: Some("admin@demo.corral.dev".into()),
        name: Some("Demo Admin".into()),
        ..Default::default()
    }))
}

/// Six accounts and a subsidiary, with a custom `seats` number attribute.
async fn seed_accounts(state: &AppState, actor: &Actor, owners: &[String]) -> Result<()> {
    let store = state.store();
    if store.schema(&tenant(), RecordType::Account).await?.custom("seats").is_none() {
        let seats = json!({"api_name": "seats", "display_name": "Licensed seats", "value_type": "number"});
        // Refused only when an archived `seats` holds the name; the accounts then go without.
        let _ = store
            .create_attribute(&tenant(), RecordType::Account, &parse_definition(RecordType::Account, &seats, &[])?)
            .await;
        state.invalidate_schema(&tenant(), RecordType::Account);
    }
    let schema = store.schema(&tenant(), RecordType::Account).await?;
    let has_seats = schema.custom("seats").is_some();
    let accounts = [
        json!({"name": "Acme Corporation", "domain": "acme.example", "industry": "manufacturing", "employee_count": 1200, "annual_revenue": 250000000, "lifecycle_stage": "customer", "tags": ["enterprise", "key-account"], "website": "https://acme.example", "custom_fields": {"seats": 250}}),
        json!({"name": "Globex", "domain": "globex.example", "industry": "software", "employee_count": 430, "annual_revenue": "48000000.50", "lifecycle_stage": "opportunity", "tags": ["mid-market"], "custom_fields": {"seats": 40}}),
        json!({"name": "Initech", "domain": "initech.example", "industry": "software", "employee_count": 85, "lifecycle_stage": "engaged", "lead_source": "referral", "custom_fields": {"seats": 12}}),
        json!({"name": "Umbrella Health", "domain": "umbrella-health.example", "industry": "healthcare", "employee_count": 5400, "lifecycle_stage": "target_account", "tags": ["enterprise"]}),
        json!({"name": "Hooli", "domain": "hooli.example", "industry": "software", "employee_count": 20000, "lifecycle_stage": "prospect", "lead_source": "event"}),
        json!({"name": "Vandelay Industries", "domain": "vandelay.example", "industry": "import-export", "employee_count": 12, "lifecycle_stage": "churned"}),
    ];
    let mut first = None;
    for (i, doc) in accounts.into_iter().enumerate() {
        let mut doc = doc;
        doc["owner_id"] = json!(owners[i % owners.len()]);
        if !has_seats && let Some(d) = doc.as_object_mut() {
            d.remove("custom_fields");
        }
        let write = parse_write(RecordType::Account, &doc, WriteMode::Create, &schema)?;
        let created = store.create_record(actor, RecordType::Account, &write, None, |_| String::new()).await?;
        if let (None, corral_store::Created::New(record, _)) = (&first, created) {
            first = Some(record.meta.id.v1(RecordType::Account));
        }
    }
    // A subsidiary, to show parent references.
    let mut doc = json!({"name": "Acme Robotics", "domain": "robotics.acme.example", "industry": "manufacturing", "parent_account_id": first, "owner_id": owners[0], "lifecycle_stage": "customer"});
    if has_seats {
        doc["custom_fields"] = json!({"seats": 30});
    }
    let write = parse_write(RecordType::Account, &doc, WriteMode::Create, &schema)?;
    store.create_record(actor, RecordType::Account, &write, None, |_| String::new()).await?;
    Ok(())
}

/// Thirteen contacts, each with an email at an account's domain and that account as its
/// primary account (set explicitly, so it holds with auto-association turned off too).
async fn seed_contacts(state: &AppState, actor: &Actor, owners: &[String]) -> Result<()> {
    let store = state.store();
    // The active demo accounts by domain.
    let account_schema = store.schema(&tenant(), RecordType::Account).await?;
    let plan = ListQuery::default().resolve(RecordType::Account, &account_schema)?;
    let (accounts, _) = store.list_records(actor, RecordType::Account, &plan, None, 200).await?;
    let by_domain: HashMap<&str, String> = accounts
        .iter()
        .flat_map(|a| a.domains.iter().map(move |d| (d.domain_name.as_str(), a.meta.id.v1(RecordType::Account))))
        .collect();
    let schema = store.schema(&tenant(), RecordType::Contact).await?;
    let contacts: [(&str, &str, &str, &str, &str, &str); 13] = [
        ("Maria", "Garcia", "maria.garcia@acme.example", "VP Procurement", "customer", "+1 415 555 0101"),
        ("James", "Chen", "james.chen@acme.example", "CTO", "customer", "+1 415 555 0102"),
        ("Priya", "Patel", "priya.patel@acme.example", "Operations Manager", "qualified", ""),
        ("Lars", "Eriksson", "lars.eriksson@robotics.acme.example", "Head of Engineering", "customer", ""),
        ("Sofia", "Rossi", "sofia.rossi@globex.example", "CFO", "qualified", "+39 02 5550 1234"),
        ("Daniel", "Okafor", "daniel.okafor@globex.example", "IT Director", "working", ""),
        ("Emily", "Nakamura", "emily.nakamura@initech.example", "Product Manager", "working", ""),
        ("Rachel", "Kim", "rachel.kim@initech.example", "Software Engineer", "new", ""),
        ("Aisha", "Rahman", "aisha.rahman@umbrella-health.example", "Chief Medical Officer", "working", ""),
        ("Tom", "Becker", "tom.becker@umbrella-health.example", "Procurement Lead", "new", "+49 30 5550 1987"),
        ("Olivia", "Martin", "olivia.martin@hooli.example", "Head of Partnerships", "new", ""),
        ("Ravi", "Iyer", "ravi.iyer@hooli.example", "Engineering Manager", "new", ""),
        ("Nina", "Petrova", "nina.petrova@vandelay.example", "Import Manager", "unqualified", ""),
    ];
    for (i, (first_name, last_name, email, title, stage, phone)) in contacts.into_iter().enumerate() {
        let domain = email.split_once('@').map(|(_, d)| d).unwrap_or_default();
        let mut doc = json!({
            "first_name": first_name, "last_name": last_name, "email": email, "job_title": title,
            "stage": stage, "owner_id": owners[i % owners.len()],
        });
        if !phone.is_empty() {
            doc["phone"] = json!(phone);
        }
        if let Some(account) = by_domain.get(domain) {
            doc["account_id"] = Value::String(account.clone());
        }
        let write = parse_write(RecordType::Contact, &doc, WriteMode::Create, &schema)?;
        store.create_record(actor, RecordType::Contact, &write, None, |_| String::new()).await?;
    }
    Ok(())
}

/// Prints the admin token and curls that work as printed.
pub fn print_banner(address: SocketAddr, token: &str) {
    println!("Corral listening on http://{address} (demo tenant `{TENANT}` seeded)");
    println!();
    println!("Admin token for tenant `{TENANT}` (valid 24 h):");
    println!("{token}");
    println!();
    println!("Try:");
    println!("  curl -s -H 'Authorization: Bearer {token}' 'http://{address}/api/v1/crm/accounts?limit=3'");
    println!("  curl -s -H 'Authorization: Bearer {token}' 'http://{address}/api/v1/crm/contacts?limit=3'");
    println!();
}
