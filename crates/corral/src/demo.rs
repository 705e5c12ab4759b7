//! `corral serve --demo`: seeds a `demo` tenant with users and accounts (once), mints an
//! admin token and prints it with a sample `curl`.

use anyhow::Result;
use corral_core::list::ListQuery;
use corral_core::v1::{WriteMode, parse_write};
use corral_core::{Actor, RecordType};
use corral_http::{AppState, Claims};
use serde_json::json;
use std::net::SocketAddr;

pub const TENANT: &str = "demo";
const ADMIN_SUB: &str = "demo-admin";

/// Seeds the demo tenant if it has no accounts yet; returns a 24-hour admin token.
pub async fn seed(state: &AppState) -> Result<String> {
    let store = state.store();
    let actor = Actor { tenant: TENANT.into(), subject: ADMIN_SUB.into(), app: None };
    let plan = ListQuery::default().resolve(RecordType::Account, &store.schema(TENANT, RecordType::Account).await?)?;
    let (existing, _) = store.list_records(&actor, RecordType::Account, &plan, None, 1).await?;
    if existing.is_empty() {
        let mut owners = Vec::new();
        for (email, name) in [
            ("ada@demo.corral.dev", "Ada Lovelace"),
            ("grace@demo.corral.dev", "Grace Hopper"),
            ("alan@demo.corral.dev", "Alan Turing"),
        ] {
            owners.push(store.add_user(TENANT, email, Some(name), ADMIN_SUB).await?.id.v1(RecordType::User));
        }
        let schema = store.schema(TENANT, RecordType::Account).await?;
        let accounts = [
            json!({"name": "Acme Corporation", "domain": "acme.example", "industry": "manufacturing", "employee_count": 1200, "annual_revenue": 250000000, "lifecycle_stage": "customer", "tags": ["enterprise", "key-account"], "website": "https://acme.example"}),
            json!({"name": "Globex", "domain": "globex.example", "industry": "software", "employee_count": 430, "annual_revenue": "48000000.50", "lifecycle_stage": "opportunity", "tags": ["mid-market"]}),
            json!({"name": "Initech", "domain": "initech.example", "industry": "software", "employee_count": 85, "lifecycle_stage": "engaged", "lead_source": "referral"}),
            json!({"name": "Umbrella Health", "domain": "umbrella-health.example", "industry": "healthcare", "employee_count": 5400, "lifecycle_stage": "target_account", "tags": ["enterprise"]}),
            json!({"name": "Hooli", "domain": "hooli.example", "industry": "software", "employee_count": 20000, "lifecycle_stage": "prospect", "lead_source": "event"}),
            json!({"name": "Vandelay Industries", "domain": "vandelay.example", "industry": "import-export", "employee_count": 12, "lifecycle_stage": "churned"}),
        ];
        let mut first = None;
        for (i, doc) in accounts.into_iter().enumerate() {
            let mut doc = doc;
            doc["owner_id"] = json!(owners[i % owners.len()]);
            let write = parse_write(RecordType::Account, &doc, WriteMode::Create, &schema)?;
            let created = store.create_record(&actor, RecordType::Account, &write, None, |_| String::new()).await?;
            if let (None, corral_store::Created::New(record, _)) = (&first, created) {
                first = Some(record.meta.id.v1(RecordType::Account));
            }
        }
        // A subsidiary, to show parent references.
        let doc = json!({"name": "Acme Robotics", "domain": "robotics.acme.example", "industry": "manufacturing", "parent_account_id": first, "owner_id": owners[0], "lifecycle_stage": "customer"});
        let write = parse_write(RecordType::Account, &doc, WriteMode::Create, &schema)?;
        store.create_record(&actor, RecordType::Account, &write, None, |_| String::new()).await?;
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

/// Prints the admin token and a curl that works as printed.
pub fn print_banner(address: SocketAddr, token: &str) {
    println!("Corral listening on http://{address} (demo tenant `{TENANT}` seeded)");
    println!();
    println!("Admin token for tenant `{TENANT}` (valid 24 h):");
    println!("{token}");
    println!();
    println!("Try:");
    println!("  curl -s -H 'Authorization: Bearer {token}' 'http://{address}/api/v1/crm/accounts?limit=3'");
    println!();
}
