//! The account ↔ contact relationship (SPEC §7.5) as the store keeps it: one junction row per
//! edge with `role` and `is_primary` (at most one primary account per contact, which is also
//! the contact's v1 `account_id`), and auto-association by email domain (SPEC §4.3).

use crate::db::{Conn, SqlValue};
use crate::{StoreResult, keys, records, settings};
use corral_core::{Actor, CoreError, Record, RecordId, RecordType, Timestamp, normalize};

/// Makes the contact's primary edge point at `record.primary_account` (v1 `account_id`
/// semantics: the previous primary edge is removed, like a replaced primary domain).
pub(crate) async fn sync_primary<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    before: Option<&Record>,
) -> StoreResult<()> {
    if record.record_type != RecordType::Contact || before.map(|b| b.primary_account) == Some(record.primary_account) {
        return Ok(());
    }
    if before.is_none() && record.primary_account.is_none() {
        return Ok(());
    }
    let tenant = SqlValue::text(actor.tenant.clone());
    let contact = SqlValue::text(record.meta.id.canonical());
    c.execute(
        "DELETE FROM account_contacts WHERE tenant_id = $1 AND contact_id = $2 AND is_primary = $3",
        &[tenant.clone(), contact.clone(), SqlValue::Bool(true)],
    )
    .await?;
    let Some(account) = record.primary_account else { return Ok(()) };
    if records::get(c, actor, RecordType::Account, account, false, false).await?.is_none() {
        return Err(CoreError::target_not_found("account_id", &account.v1(RecordType::Account)).into());
    }
    link(c, &actor.tenant, account, record.meta.id, true, None, record.meta.updated_at).await
}

/// Inserts or updates an edge.
pub(crate) async fn link<C: Conn>(
    c: &mut C,
    tenant: &str,
    account: RecordId,
    contact: RecordId,
    primary: bool,
    role: Option<&str>,
    now: Timestamp,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO account_contacts (tenant_id, account_id, contact_id, role, is_primary, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, account_id, contact_id) DO UPDATE SET is_primary = excluded.is_primary",
        &[
            SqlValue::text(tenant),
            SqlValue::text(account.canonical()),
            SqlValue::text(contact.canonical()),
            SqlValue::opt_text(role),
            SqlValue::Bool(primary),
            SqlValue::Int(now.millis()),
        ],
    )
    .await?;
    Ok(())
}

/// Whether a domain may auto-associate in this tenant.
async fn associates<C: Conn>(c: &mut C, tenant: &str, domain: &str) -> StoreResult<bool> {
    Ok(!normalize::is_free_mail(domain) && settings::get(c, tenant).await?.auto_associate_contacts)
}

/// A contact without a primary account that gained an email: link it to the active account
/// holding that email's domain, if any (before the contact is saved, as part of its write).
pub(crate) async fn associate_contact<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &mut Record,
    before: Option<&Record>,
) -> StoreResult<()> {
    if record.record_type != RecordType::Contact || record.primary_account.is_some() {
        return Ok(());
    }
    let gained: Vec<String> = record
        .emails
        .iter()
        .filter(|e| before.is_none_or(|b| !b.emails.iter().any(|o| o.value.eq_ignore_ascii_case(&e.value))))
        .map(|e| normalize::email_domain(&e.value).to_owned())
        .collect();
    for domain in gained {
        if associates(c, &actor.tenant, &domain).await?
            && let Some(account) = keys::holder(c, actor, RecordType::Account, &domain).await?
        {
            record.primary_account = Some(account);
            return Ok(());
        }
    }
    Ok(())
}

/// An account gained `domains`: link active contacts without a primary account whose primary
/// email has one of them (each such contact changes: new version).
pub(crate) async fn associate_account<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    before: Option<&Record>,
    now: Timestamp,
) -> StoreResult<()> {
    if record.record_type != RecordType::Account || record.is_deleted() {
        return Ok(());
    }
    let gained = record
        .domains
        .iter()
        .filter(|d| before.is_none_or(|b| !b.domains.iter().any(|o| o.domain_name == d.domain_name)));
    for domain in gained.map(|d| d.domain_name.clone()).collect::<Vec<_>>() {
        if !associates(c, &actor.tenant, &domain).await? {
            continue;
        }
        let mut sql =
            "SELECT k.id FROM contact_emails e JOIN contacts k ON k.tenant_id = e.tenant_id AND k.id = e.contact_id \
                       WHERE e.tenant_id = $1 AND e.email_domain = $2 AND e.is_primary = $3 AND e.released = $4 \
                       AND k.deleted_at IS NULL AND k.primary_account_id IS NULL"
                .to_owned();
        let mut params = vec![
            SqlValue::text(actor.tenant.clone()),
            SqlValue::text(domain),
            SqlValue::Bool(true),
            SqlValue::Bool(false),
        ];
        if let Some(app) = &actor.app {
            sql.push_str(" AND k.app_id = $5");
            params.push(SqlValue::text(app.clone()));
        }
        let contacts: Vec<RecordId> = c
            .query(&sql, &params)
            .await?
            .into_iter()
            .filter_map(|mut r| r.text(0))
            .filter_map(|s| RecordId::parse(RecordType::Contact, &s))
            .collect();
        for contact in contacts {
            link(c, &actor.tenant, record.meta.id, contact, true, None, now).await?;
            c.execute(
                &format!(
                    "UPDATE contacts SET primary_account_id = $3, {} WHERE tenant_id = $1 AND id = $2",
                    records::touch_sql(4, 5)
                ),
                &[
                    SqlValue::text(actor.tenant.clone()),
                    SqlValue::text(contact.canonical()),
                    SqlValue::text(record.meta.id.canonical()),
                    SqlValue::Int(now.millis()),
                    SqlValue::text(actor.subject.clone()),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Removes every edge of a purged record, clearing contacts' primary account when it was the
/// purged account (a change: their version moves).
pub(crate) async fn remove_all<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    now: Timestamp,
) -> StoreResult<()> {
    let tenant = SqlValue::text(actor.tenant.clone());
    let key = SqlValue::text(id.canonical());
    let column = if rt == RecordType::Account { "account_id" } else { "contact_id" };
    c.execute(
        &format!("DELETE FROM account_contacts WHERE tenant_id = $1 AND {column} = $2"),
        &[tenant.clone(), key.clone()],
    )
    .await?;
    if rt == RecordType::Account {
        let sql = format!(
            "UPDATE contacts SET primary_account_id = NULL, {} WHERE tenant_id = $1 AND primary_account_id = $2",
            records::touch_sql(3, 4)
        );
        c.execute(&sql, &[tenant, key, SqlValue::Int(now.millis()), SqlValue::text(actor.subject.clone())]).await?;
    }
    Ok(())
}
