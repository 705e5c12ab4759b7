//! The account ↔ contact relationship (docs/CONTRACT.md §7.5) as the store keeps it: one junction row per
//! edge with its `role`, and auto-association by email domain (docs/CONTRACT.md §4.3).
//!
//! A contact's primary account has one owner: the contact's `primary_account` (its v1
//! `account_id`, column `contacts.primary_account_id`). An edge's `is_primary` is derived
//! from it when read; every change of it is a change of the contact, made through the write
//! funnel ([`records::commit`]). Edge rows live outside the records, so each edge change is
//! noted as a relationship change of both ends (`accounts.<id>` on the contact,
//! `contacts.<id>` on the account) for the change feed.

use crate::changes::edge_json;
use crate::db::{Conn, SqlValue, texts_in};
use crate::records::{ModifyOptions, Preconditions};
use crate::{StoreError, StoreResult, keys, records, settings};
use corral_core::TenantId;
use corral_core::{Actor, CoreError, Record, RecordId, RecordType, Timestamp, normalize};
use serde_json::{Map, Value as Json, json};
use std::collections::HashSet;

/// What happens to a contact's previous primary edge when its primary account moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrimaryEdge {
    /// Removed (v1 `account_id` semantics, like a replaced primary domain).
    Replace,
    /// Kept as an ordinary edge (the relationship routes demote it).
    Keep,
}

/// The change key of the edge to `other` in a relationship change.
fn edge_key(other_type: RecordType, other: RecordId) -> String {
    let name = if other_type == RecordType::Account { "accounts" } else { "contacts" };
    format!("{name}.{}", other.canonical())
}

pub(crate) fn edge_change(old: Json, new: Json) -> Json {
    json!({"old": old, "new": new})
}

/// Notes a relationship change on `rt` record `id` (whose row does not change): `key` changed
/// as `change` says (`{"old", "new"}`, see [`edge_change`]). Records outside the caller's app
/// scope are noted too. `lock`: read the record `FOR UPDATE` (edge writes; a merge has locked
/// what it must already).
pub(crate) async fn note_relationship<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    key: String,
    change: Json,
    lock: bool,
) -> StoreResult<()> {
    let tenant_wide = Actor { app: None, ..actor.clone() };
    if let Some(record) = records::get(c, &tenant_wide, rt, id, true, lock).await? {
        let mut extra = Map::new();
        extra.insert(key, change);
        records::note_extra(c, actor, &record, extra);
    }
    Ok(())
}

/// Makes the contact's edges follow a change of `record.primary_account`: the new primary
/// account gets an edge if it has none; with [`PrimaryEdge::Replace`] the previous primary
/// edge is removed. The contact's own relationship changes go to `extra`; the accounts'
/// are noted on them.
pub(crate) async fn sync_primary<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    before: Option<&Record>,
    policy: PrimaryEdge,
    extra: &mut Map<String, Json>,
) -> StoreResult<()> {
    if record.record_type != RecordType::Contact || before.map(|b| b.primary_account) == Some(record.primary_account) {
        return Ok(());
    }
    let contact = record.meta.id;
    if policy == PrimaryEdge::Replace
        && let Some(old) = before.and_then(|b| b.primary_account)
        && let Some((role, _, _)) = edge(c, &actor.tenant, old, contact).await?
    {
        c.execute(
            "DELETE FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
            &[
                SqlValue::text(actor.tenant.clone()),
                SqlValue::text(old.canonical()),
                SqlValue::text(contact.canonical()),
            ],
        )
        .await?;
        extra.insert(edge_key(RecordType::Account, old), edge_change(edge_json(old, role.as_deref()), Json::Null));
        note_relationship(
            c,
            actor,
            RecordType::Account,
            old,
            edge_key(RecordType::Contact, contact),
            edge_change(edge_json(contact, role.as_deref()), Json::Null),
            true,
        )
        .await?;
    }
    let Some(account) = record.primary_account else { return Ok(()) };
    if records::get(c, actor, RecordType::Account, account, false, false).await?.is_none() {
        return Err(CoreError::target_not_found("account_id", &account.v1(RecordType::Account)).into());
    }
    if link(c, &actor.tenant, account, contact, None, record.meta.updated_at).await? {
        extra.insert(edge_key(RecordType::Account, account), edge_change(Json::Null, edge_json(account, None)));
        note_relationship(
            c,
            actor,
            RecordType::Account,
            account,
            edge_key(RecordType::Contact, contact),
            edge_change(Json::Null, edge_json(contact, None)),
            true,
        )
        .await?;
    }
    Ok(())
}

/// Inserts an edge unless it exists; returns whether it was inserted.
pub(crate) async fn link<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    account: RecordId,
    contact: RecordId,
    role: Option<&str>,
    now: Timestamp,
) -> StoreResult<bool> {
    let n = c
        .execute(
            "INSERT INTO account_contacts (tenant_id, account_id, contact_id, role, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, account_id, contact_id) DO NOTHING",
            &[
                SqlValue::text(tenant),
                SqlValue::text(account.canonical()),
                SqlValue::text(contact.canonical()),
                SqlValue::opt_text(role),
                SqlValue::Int(now.millis()),
            ],
        )
        .await?;
    Ok(n > 0)
}

/// Whether a domain may auto-associate in this tenant.
async fn associates<C: Conn>(c: &mut C, tenant: &TenantId, domain: &str) -> StoreResult<bool> {
    Ok(!normalize::is_free_mail(domain) && settings::get(c, tenant).await?.auto_associate_contacts)
}

/// Of `domains` (of new records of type `rt`), those auto-association could act on: for an
/// account, the domains of primary emails of active contacts without a primary account (they
/// would be linked to it, [`associate_account`]); for a contact, email domains an account holds
/// ([`associate_contact`]). None when the tenant does not auto-associate. A superset is safe
/// (the app scope is not applied): the batch write path ([`crate::batch`]) leaves such records
/// to the one-record path, which decides exactly.
pub(crate) async fn associating_domains<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    rt: RecordType,
    domains: &[String],
) -> StoreResult<HashSet<String>> {
    let domains: Vec<String> = domains.iter().filter(|d| !normalize::is_free_mail(d)).cloned().collect();
    if domains.is_empty() || !settings::get(c, tenant).await?.auto_associate_contacts {
        return Ok(HashSet::new());
    }
    if rt != RecordType::Account {
        return keys::claimed(c, tenant, RecordType::Account, &domains).await;
    }
    let unreleased = c.dialect().unreleased("e");
    Ok(texts_in(c, &domains, |q, list| {
        let t = q.bind(SqlValue::text(tenant));
        let primary = q.bind(SqlValue::Bool(true));
        format!(
            "SELECT DISTINCT e.email_domain FROM contact_emails e \
             JOIN contacts k ON k.tenant_id = e.tenant_id AND k.id = e.contact_id \
             WHERE e.tenant_id = {t} AND e.email_domain IN {list} AND e.is_primary = {primary} AND {unreleased} \
             AND k.deleted_at IS NULL AND k.primary_account_id IS NULL",
        )
    })
    .await?)
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
        let mut sql = format!(
            "SELECT k.id FROM contact_emails e JOIN contacts k ON k.tenant_id = e.tenant_id AND k.id = e.contact_id \
             WHERE e.tenant_id = $1 AND e.email_domain = $2 AND e.is_primary = $3 AND {} \
             AND k.deleted_at IS NULL AND k.primary_account_id IS NULL",
            c.dialect().unreleased("e"),
        );
        let mut params = vec![SqlValue::text(actor.tenant.clone()), SqlValue::text(domain), SqlValue::Bool(true)];
        if let Some(app) = &actor.app {
            sql.push_str(" AND k.app_id = $4");
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
            // The contact changes through its own write path: version, event, edge.
            let account = record.meta.id;
            // Boxed: modify_with calls back here (for accounts; a contact never recurses).
            Box::pin(records::modify_with(
                c,
                actor,
                RecordType::Contact,
                contact,
                Preconditions::default(),
                None,
                now,
                ModifyOptions::default(),
                |k| {
                    k.primary_account = Some(account);
                    Ok(true)
                },
            ))
            .await?;
        }
    }
    Ok(())
}

/// Removes every edge of a purged record; the records at the other ends change (a contact
/// whose primary account it was loses it), through the write funnel. `actor` is tenant-wide.
pub(crate) async fn remove_all<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    now: Timestamp,
) -> StoreResult<()> {
    let tenant = SqlValue::text(actor.tenant.clone());
    let key = SqlValue::text(id.canonical());
    let (column, other_column) =
        if rt == RecordType::Account { ("account_id", "contact_id") } else { ("contact_id", "account_id") };
    let ot = other_type(rt);
    let edges: Vec<(RecordId, Option<String>)> = c
        .query(
            &format!("SELECT {other_column}, role FROM account_contacts WHERE tenant_id = $1 AND {column} = $2 ORDER BY {other_column}"),
            &[tenant.clone(), key.clone()],
        )
        .await?
        .into_iter()
        .filter_map(|mut r| Some((RecordId::parse(ot, &r.text(0)?)?, r.text(1))))
        .collect();
    c.execute(
        &format!("DELETE FROM account_contacts WHERE tenant_id = $1 AND {column} = $2"),
        &[tenant.clone(), key.clone()],
    )
    .await?;
    let mut others: Vec<(RecordId, Option<Json>)> =
        edges.iter().map(|(other, role)| (*other, Some(edge_json(id, role.as_deref())))).collect();
    if rt == RecordType::Account {
        // Contacts whose primary account it was, edge or not.
        let rows =
            c.query("SELECT id FROM contacts WHERE tenant_id = $1 AND primary_account_id = $2", &[tenant, key]).await?;
        for contact in
            rows.into_iter().filter_map(|mut r| r.text(0)).filter_map(|s| RecordId::parse(RecordType::Contact, &s))
        {
            if !others.iter().any(|(o, _)| *o == contact) {
                others.push((contact, None));
            }
        }
    }
    for (other, old_edge) in others {
        let mut extra = Map::new();
        if let Some(old_edge) = old_edge {
            extra.insert(edge_key(rt, id), edge_change(old_edge, Json::Null));
        }
        let options = ModifyOptions { extra, primary_edge: PrimaryEdge::Keep, include_archived: true };
        records::modify_with(c, actor, ot, other, Preconditions::default(), None, now, options, |r| {
            let was_primary = r.primary_account == Some(id);
            if was_primary {
                r.primary_account = None;
            }
            Ok(was_primary)
        })
        .await?;
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

/// The edge (account, contact): its role, whether it is the contact's primary edge, and when
/// it was made.
async fn edge<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    account: RecordId,
    contact: RecordId,
) -> StoreResult<Option<(Option<String>, bool, i64)>> {
    let row = c
        .query_opt(
            "SELECT e.role, COALESCE(k.primary_account_id = e.account_id, FALSE), e.created_at FROM account_contacts e \
             JOIN contacts k ON k.tenant_id = e.tenant_id AND k.id = e.contact_id \
             WHERE e.tenant_id = $1 AND e.account_id = $2 AND e.contact_id = $3",
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
    let old = edge(c, &actor.tenant, account, contact).await?;
    if old.is_none() {
        link(c, &actor.tenant, account, contact, None, now).await?;
    }
    let edge = apply(c, actor, account, contact, other, old.as_ref().map(|o| o.0.clone()), change, now).await?;
    Ok((edge, old.is_none()))
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
    let (role, _, _) = edge(c, &actor.tenant, account, contact).await?.ok_or_else(CoreError::record_not_found)?;
    apply(c, actor, account, contact, other, Some(role), change, now).await
}

/// Applies `change` to the existing edge (account, contact), which had the role `old`
/// before this call (`None`: it did not exist); `other` is the far end as the caller sees
/// it. The relationship change is noted on both ends; a primary change is the contact's.
#[allow(clippy::too_many_arguments)]
async fn apply<C: Conn>(
    c: &mut C,
    actor: &Actor,
    account: RecordId,
    contact: RecordId,
    other: RecordId,
    old: Option<Option<String>>,
    change: &EdgeChange,
    now: Timestamp,
) -> StoreResult<Edge> {
    let (role, is_primary, created_at) =
        edge(c, &actor.tenant, account, contact).await?.ok_or_else(CoreError::record_not_found)?;
    let role = match &change.role {
        Some(new_role) if *new_role != role => {
            c.execute(
                "UPDATE account_contacts SET role = $4 WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
                &[
                    SqlValue::text(actor.tenant.clone()),
                    SqlValue::text(account.canonical()),
                    SqlValue::text(contact.canonical()),
                    SqlValue::opt_text(new_role.clone()),
                ],
            )
            .await?;
            new_role.clone()
        }
        _ => role,
    };
    let old_json = |other: RecordId| old.as_ref().map_or(Json::Null, |r| edge_json(other, r.as_deref()));
    let relationship_changed = old.as_ref() != Some(&role);
    if relationship_changed {
        let key = edge_key(RecordType::Contact, contact);
        note_relationship(
            c,
            actor,
            RecordType::Account,
            account,
            key,
            edge_change(old_json(contact), edge_json(contact, role.as_deref())),
            true,
        )
        .await?;
    }
    let mut extra = Map::new();
    if relationship_changed {
        extra.insert(
            edge_key(RecordType::Account, account),
            edge_change(old_json(account), edge_json(account, role.as_deref())),
        );
    }
    let target = match change.is_primary {
        Some(true) if !is_primary => Some(Some(account)),
        Some(false) if is_primary => Some(None),
        _ => None,
    };
    let options = ModifyOptions { extra, primary_edge: PrimaryEdge::Keep, include_archived: false };
    records::modify_with(c, actor, RecordType::Contact, contact, Preconditions::default(), None, now, options, |k| {
        let Some(target) = target else { return Ok(false) };
        k.primary_account = target;
        Ok(true)
    })
    .await?;
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
    let (role, is_primary, _) =
        edge(c, &actor.tenant, account, contact).await?.ok_or_else(CoreError::record_not_found)?;
    c.execute(
        "DELETE FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
        &[
            SqlValue::text(actor.tenant.clone()),
            SqlValue::text(account.canonical()),
            SqlValue::text(contact.canonical()),
        ],
    )
    .await?;
    let key = edge_key(RecordType::Contact, contact);
    note_relationship(
        c,
        actor,
        RecordType::Account,
        account,
        key,
        edge_change(edge_json(contact, role.as_deref()), Json::Null),
        true,
    )
    .await?;
    let mut extra = Map::new();
    extra.insert(edge_key(RecordType::Account, account), edge_change(edge_json(account, role.as_deref()), Json::Null));
    let options = ModifyOptions { extra, primary_edge: PrimaryEdge::Keep, include_archived: false };
    records::modify_with(c, actor, RecordType::Contact, contact, Preconditions::default(), None, now, options, |k| {
        if !is_primary {
            return Ok(false);
        }
        k.primary_account = None;
        Ok(true)
    })
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
    // is_primary is the contact's fact (see the module documentation).
    let mut q = crate::db::SqlBuilder::new(format!(
        "SELECT e.{other}, e.role, COALESCE(k.primary_account_id = e.account_id, FALSE), e.created_at FROM account_contacts e \
         JOIN {other_table} r ON r.tenant_id = e.tenant_id AND r.id = e.{other} \
         JOIN contacts k ON k.tenant_id = e.tenant_id AND k.id = e.contact_id"
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
