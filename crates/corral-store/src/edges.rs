//! The account ↔ contact relationship (docs/CONTRACT.md §7.5) as the store keeps it: one junction row per
//! edge with `role` and `is_primary` (at most one primary account per contact, which is also
//! the contact's v1 `account_id`), and auto-association by email domain (docs/CONTRACT.md §4.3).

use crate::db::{Conn, SqlValue};
use crate::{StoreError, StoreResult, keys, records, settings};
use corral_core::TenantId;
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
    tenant: &TenantId,
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
async fn associates<C: Conn>(c: &mut C, tenant: &TenantId, domain: &str) -> StoreResult<bool> {
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

/// One edge as seen from a record: the record on the other side and the edge attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub other: RecordId,
    pub role: Option<String>,
    pub is_primary: bool,
    pub created_at: i64,
}

/// Changes to an edge's attributes; `None` leaves one as it is. `role: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeChange {
    pub role: Option<Option<String>>,
    pub is_primary: Option<bool>,
}

/// The (account, contact) pair of an edge seen from `rt`'s record `id` towards `other`.
fn pair(rt: RecordType, id: RecordId, other: RecordId) -> (RecordId, RecordId) {
    if rt == RecordType::Account { (id, other) } else { (other, id) }
}

fn other_type(rt: RecordType) -> RecordType {
    if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account }
}

async fn edge<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    account: RecordId,
    contact: RecordId,
) -> StoreResult<Option<(Option<String>, bool, i64)>> {
    let row = c
        .query_opt(
            "SELECT role, is_primary, created_at FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
            &[SqlValue::text(tenant), SqlValue::text(account.canonical()), SqlValue::text(contact.canonical())],
        )
        .await?;
    Ok(row.map(|mut r| (r.text(0), r.bool(1), r.int(2).unwrap_or(0))))
}

/// Both ends must be active records visible to `actor`: the parent (else 404) and the
/// target (else 422 `target_record_not_found`).
async fn check_ends<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    other: RecordId,
) -> StoreResult<()> {
    if records::get(c, actor, rt, id, false, false).await?.is_none() {
        return Err(CoreError::record_not_found().into());
    }
    let ot = other_type(rt);
    if records::get(c, actor, ot, other, false, false).await?.is_none() {
        return Err(CoreError::target_not_found("related_record_id", &other.canonical()).into());
    }
    Ok(())
}

/// Moves (or clears) a contact's primary account through the contact's own write path, so
/// its `account_id` and version follow. The previous primary edge is demoted, not removed.
async fn set_contact_primary<C: Conn>(
    c: &mut C,
    actor: &Actor,
    contact: RecordId,
    account: Option<RecordId>,
    now: Timestamp,
) -> StoreResult<()> {
    c.execute(
        "UPDATE account_contacts SET is_primary = $3 WHERE tenant_id = $1 AND contact_id = $2 AND is_primary = $4",
        &[
            SqlValue::text(actor.tenant.clone()),
            SqlValue::text(contact.canonical()),
            SqlValue::Bool(false),
            SqlValue::Bool(true),
        ],
    )
    .await?;
    records::modify(c, actor, RecordType::Contact, contact, Default::default(), None, now, |k| {
        let changed = k.primary_account != account;
        k.primary_account = account;
        Ok(changed)
    })
    .await?;
    Ok(())
}

/// Adds an edge (or, when it exists, applies the given attributes to it). Returns the edge
/// and whether it was created.
pub(crate) async fn add<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    other: RecordId,
    change: &EdgeChange,
    now: Timestamp,
) -> StoreResult<(Edge, bool)> {
    check_ends(c, actor, rt, id, other).await?;
    let (account, contact) = pair(rt, id, other);
    let existed = edge(c, &actor.tenant, account, contact).await?.is_some();
    if !existed {
        link(c, &actor.tenant, account, contact, false, None, now).await?;
    }
    let edge = apply(c, actor, account, contact, other, change, now).await?;
    Ok((edge, !existed))
}

/// A missing end of an existing edge means there is no such edge (404); other errors
/// (the database being unavailable) stay what they are.
fn no_edge(e: StoreError) -> StoreError {
    match e {
        StoreError::Domain(_) => CoreError::record_not_found().into(),
        other => other,
    }
}

/// Changes an existing edge's role and primary flag (404 `record_not_found` without one).
pub(crate) async fn update<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    other: RecordId,
    change: &EdgeChange,
    now: Timestamp,
) -> StoreResult<Edge> {
    check_ends(c, actor, rt, id, other).await.map_err(no_edge)?;
    let (account, contact) = pair(rt, id, other);
    apply(c, actor, account, contact, other, change, now).await
}

/// Applies `change` to the existing edge (account, contact); `other` is the far end as the
/// caller sees it.
async fn apply<C: Conn>(
    c: &mut C,
    actor: &Actor,
    account: RecordId,
    contact: RecordId,
    other: RecordId,
    change: &EdgeChange,
    now: Timestamp,
) -> StoreResult<Edge> {
    let (role, is_primary, created_at) =
        edge(c, &actor.tenant, account, contact).await?.ok_or_else(CoreError::record_not_found)?;
    if let Some(role) = &change.role {
        c.execute(
            "UPDATE account_contacts SET role = $4 WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
            &[
                SqlValue::text(actor.tenant.clone()),
                SqlValue::text(account.canonical()),
                SqlValue::text(contact.canonical()),
                SqlValue::opt_text(role.clone()),
            ],
        )
        .await?;
    }
    match change.is_primary {
        Some(true) if !is_primary => set_contact_primary(c, actor, contact, Some(account), now).await?,
        Some(false) if is_primary => set_contact_primary(c, actor, contact, None, now).await?,
        _ => {}
    }
    let (role, is_primary, _) =
        edge(c, &actor.tenant, account, contact).await?.unwrap_or((role, is_primary, created_at));
    Ok(Edge { other, role, is_primary, created_at })
}

/// Removes an edge; removing the primary one clears the contact's primary account.
pub(crate) async fn remove<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    other: RecordId,
    now: Timestamp,
) -> StoreResult<()> {
    check_ends(c, actor, rt, id, other).await.map_err(no_edge)?;
    let (account, contact) = pair(rt, id, other);
    let (_, is_primary, _) = edge(c, &actor.tenant, account, contact).await?.ok_or_else(CoreError::record_not_found)?;
    if is_primary {
        set_contact_primary(c, actor, contact, None, now).await?;
    }
    c.execute(
        "DELETE FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
        &[
            SqlValue::text(actor.tenant.clone()),
            SqlValue::text(account.canonical()),
            SqlValue::text(contact.canonical()),
        ],
    )
    .await?;
    Ok(())
}

/// One page of a record's edges to active records visible to `actor`, oldest first, after
/// the position `(created_at, other id)`. Returns the edges and the last position when more
/// may follow.
pub(crate) async fn list<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    after: Option<(i64, RecordId)>,
    limit: usize,
) -> StoreResult<(Vec<Edge>, Option<(i64, RecordId)>)> {
    if records::get(c, actor, rt, id, false, false).await?.is_none() {
        return Err(CoreError::record_not_found().into());
    }
    let (own, other, other_table) = if rt == RecordType::Account {
        ("account_id", "contact_id", "contacts")
    } else {
        ("contact_id", "account_id", "accounts")
    };
    let mut q = crate::db::SqlBuilder::new(format!(
        "SELECT e.{other}, e.role, e.is_primary, e.created_at FROM account_contacts e \
         JOIN {other_table} r ON r.tenant_id = e.tenant_id AND r.id = e.{other}"
    ));
    let t = q.bind(SqlValue::text(actor.tenant.clone()));
    let me = q.bind(SqlValue::text(id.canonical()));
    q.push(&format!(" WHERE e.tenant_id = {t} AND e.{own} = {me} AND r.deleted_at IS NULL"));
    if let Some(app) = &actor.app {
        let a = q.bind(SqlValue::text(app.clone()));
        q.push(&format!(" AND r.app_id = {a}"));
    }
    if let Some((at, last)) = after {
        let p1 = q.bind(SqlValue::Int(at));
        let p2 = q.bind(SqlValue::text(last.canonical()));
        q.push(&format!(" AND (e.created_at > {p1} OR (e.created_at = {p1} AND e.{other} > {p2}))"));
    }
    q.push(&format!(" ORDER BY e.created_at, e.{other} LIMIT {}", limit + 1));
    let ot = other_type(rt);
    let rows = c.query(&q.sql, &q.params).await?;
    let more = rows.len() > limit;
    let edges: Vec<Edge> = rows
        .into_iter()
        .take(limit)
        .filter_map(|mut r| {
            let other = RecordId::parse(ot, &r.text(0)?)?;
            Some(Edge { other, role: r.text(1), is_primary: r.bool(2), created_at: r.int(3).unwrap_or(0) })
        })
        .collect();
    let next = if more { edges.last().map(|e| (e.created_at, e.other)) } else { None };
    Ok((edges, next))
}
