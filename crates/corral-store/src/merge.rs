//! Record merge (docs/API.md "Merging records"): folding duplicate records (the losers) into
//! one (the winner) in one write transaction, and keeping each loser's id as an alias of the
//! winner.
//!
//! A merge is a sequence of ordinary changes made through the write funnel
//! ([`records::commit`], [`records::modify_with`]): the losers' edges move to the winner,
//! each loser is archived (action `merged_into`, key `merged_into`), the winner takes the
//! chosen values and the losers' domains / emails / phone numbers (action `merged`, key
//! `merged_from`), and records that referenced a loser are re-pointed to the winner (each an
//! `updated` event). A dry run is the same transaction rolled back, so what it reports is
//! exactly what a merge would do. The merge log (`record_merges`) keeps what moved, which is
//! what [`unmerge`] puts back.

use crate::changes::{PlannedEvent, edge_json};
use crate::db::{Conn, SqlValue};
use crate::edges::{self, PrimaryEdge, edge_change, note_relationship};
use crate::records::{self, ModifyOptions, Preconditions};
use crate::{StoreResult, keys};
use corral_core::change::{self, Action};
use corral_core::items;
use corral_core::record::{AccountDomain, ContactItem};
use corral_core::schema::{ValueType, fields};
use corral_core::{Actor, CoreError, ErrorCode, Record, RecordId, RecordType, RecordWrite, Timestamp, Value};
use serde_json::{Map, Value as Json, json};

/// Most losers one merge takes.
pub const MAX_LOSERS: usize = 20;

/// The change key naming the winner on each loser's `merged_into` event.
pub const MERGED_INTO: &str = "merged_into";
/// The change key listing the losers on the winner's `merged` event.
pub const MERGED_FROM: &str = "merged_from";

/// An attribute a merge can choose a value for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A built-in field, by index in [`fields`].
    Field(usize),
    /// A custom attribute, by api_name.
    Custom(String),
    /// A contact's primary account.
    PrimaryAccount,
}

/// Whose value an attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Winner,
    Loser(RecordId),
}

/// What to merge and how.
#[derive(Debug, Clone, Default)]
pub struct MergeSpec {
    pub winner: Option<RecordId>,
    pub losers: Vec<RecordId>,
    /// Attributes the caller chose a side for.
    pub picks: Vec<(Slot, Pick)>,
    /// Values the caller gave, applied last.
    pub write: RecordWrite,
    /// The attributes `write` sets (they are neither filled nor reported as conflicts).
    pub written: Vec<Slot>,
    /// The winner's version the caller requires (`If-Match`).
    pub pre: Preconditions,
}

/// An edge of a loser that moved to the winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedEdge {
    pub loser: RecordId,
    /// The record at the other end (a contact of a merged account, an account of a merged contact).
    pub other: RecordId,
    pub role: Option<String>,
    /// The winner had an edge to `other` already: the two collapsed into the winner's.
    pub collapsed: bool,
}

/// A domain, email or phone number of a loser that the winner took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedItem {
    pub loser: RecordId,
    /// `domains`, `contact_emails` or `contact_phone_numbers`.
    pub attribute: &'static str,
    pub value: String,
    /// The winner held it already (nothing added).
    pub duplicate: bool,
}

/// A record whose reference to a loser now names the winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repointed {
    pub record_type: RecordType,
    pub record_id: RecordId,
    /// The v2 attribute (custom ones by name); `primary_account` for a contact's primary account.
    pub attribute: String,
    pub loser: RecordId,
}

/// An attribute the winner and a loser both hold, with different values.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub attribute: String,
    pub winner: Json,
    pub losers: Vec<(RecordId, Json)>,
    /// `winner`, `loser:<id>` or `value`.
    pub resolution: String,
}

/// What a merge did (or, dry run, would do).
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// `None` for a dry run.
    pub merge_id: Option<String>,
    pub winner: Record,
    pub losers: Vec<Record>,
    pub edges: Vec<MovedEdge>,
    pub items: Vec<MovedItem>,
    pub references: Vec<Repointed>,
    pub conflicts: Vec<Conflict>,
    /// Every change event the merge appends to the feed.
    pub events: Vec<PlannedEvent>,
}

fn slot_name(rt: RecordType, slot: &Slot) -> String {
    match slot {
        Slot::Field(i) => fields(rt)[*i].api_name.to_owned(),
        Slot::Custom(name) => name.clone(),
        Slot::PrimaryAccount => "primary_account".to_owned(),
    }
}

/// The value of `slot` in `r`, as the feed shows values (`None`: empty).
fn slot_json(r: &Record, slot: &Slot) -> Option<Json> {
    match slot {
        Slot::Field(i) => {
            let name = r.fields()[*i].api_name;
            change::snapshot(r).remove(name)
        }
        Slot::Custom(name) => r.custom.get(name).filter(|v| !v.is_null() && v != &&json!([])).cloned(),
        Slot::PrimaryAccount => r.primary_account.map(|a| json!(a.canonical())),
    }
}

fn copy_slot(to: &mut Record, from: &Record, slot: &Slot) {
    match slot {
        Slot::Field(i) => to.values[*i] = from.values[*i].clone(),
        Slot::Custom(name) => match from.custom.get(name) {
            Some(v) => {
                to.custom.insert(name.clone(), v.clone());
            }
            None => {
                to.custom.remove(name);
            }
        },
        Slot::PrimaryAccount => to.primary_account = from.primary_account,
    }
}

/// Every slot a record type's values live in, custom ones as the records hold them.
fn slots(rt: RecordType, records: &[&Record]) -> Vec<Slot> {
    let mut out: Vec<Slot> = (0..fields(rt).len()).map(Slot::Field).collect();
    if rt == RecordType::Contact {
        out.push(Slot::PrimaryAccount);
    }
    let mut custom: Vec<&String> = records.iter().flat_map(|r| r.custom.keys()).collect();
    custom.sort();
    custom.dedup();
    out.extend(custom.into_iter().map(|n| Slot::Custom(n.clone())));
    out
}

/// The winner as the merge leaves it (before references to losers are re-pointed), the
/// items it takes and the conflicts. Rules (docs/API.md "Merging records"): a chosen side or
/// given value wins; otherwise the winner's value, or when the winner has none the first
/// loser's (request order) that has one. The losers' domains, emails and phone numbers are
/// added to the winner's (never primary when the winner has one); duplicates collapse.
fn combine(
    winner: &Record,
    losers: &[Record],
    spec: &MergeSpec,
    now: Timestamp,
) -> StoreResult<(Record, Vec<MovedItem>, Vec<Conflict>)> {
    let rt = winner.record_type;
    let mut target = winner.clone();
    let mut conflicts = Vec::new();
    let all: Vec<&Record> = std::iter::once(winner).chain(losers).collect();
    for slot in slots(rt, &all) {
        let pick = spec.picks.iter().find(|(s, _)| *s == slot).map(|(_, p)| *p);
        let written = spec.written.contains(&slot);
        let winner_value = slot_json(winner, &slot);
        let loser_values: Vec<(RecordId, Json)> =
            losers.iter().filter_map(|l| slot_json(l, &slot).map(|v| (l.meta.id, v))).collect();
        let resolution = match (pick, written) {
            (_, true) => "value".to_owned(),
            (Some(Pick::Loser(id)), _) => {
                let from = losers.iter().find(|l| l.meta.id == id).expect("picks name losers");
                copy_slot(&mut target, from, &slot);
                format!("loser:{}", id.canonical())
            }
            (Some(Pick::Winner), _) => "winner".to_owned(),
            (None, _) if winner_value.is_none() => {
                if let Some((id, _)) = loser_values.first() {
                    let from = losers.iter().find(|l| l.meta.id == *id).expect("a loser");
                    copy_slot(&mut target, from, &slot);
                }
                continue;
            }
            (None, _) => "winner".to_owned(),
        };
        let differing = loser_values.iter().any(|(_, v)| Some(v) != winner_value.as_ref());
        if winner_value.is_some() && differing {
            conflicts.push(Conflict {
                attribute: slot_name(rt, &slot),
                winner: winner_value.unwrap_or(Json::Null),
                losers: loser_values,
                resolution,
            });
        }
    }
    target.apply(&spec.write, now)?;
    let mut moved = Vec::new();
    for loser in losers {
        let id = loser.meta.id;
        for d in &loser.domains {
            let added = items::add(&mut target.domains, AccountDomain { is_primary: false, ..d.clone() });
            moved.push(MovedItem { loser: id, attribute: "domains", value: d.domain_name.clone(), duplicate: !added });
        }
        let mut take = |list: &mut Vec<ContactItem>, from: &[ContactItem], attribute: &'static str| {
            for item in from {
                let added = items::add(list, ContactItem { is_primary: false, ..item.clone() });
                moved.push(MovedItem { loser: id, attribute, value: item.value.clone(), duplicate: !added });
            }
        };
        take(&mut target.emails, &loser.emails, "contact_emails");
        take(&mut target.phones, &loser.phones, "contact_phone_numbers");
    }
    // References to a loser now name the winner; a winner cannot refer to itself.
    let ids: Vec<RecordId> = losers.iter().map(|l| l.meta.id).collect();
    for (i, f) in fields(rt).iter().enumerate() {
        if let (ValueType::Reference(t), Value::Ref(to)) = (f.value_type, &target.values[i])
            && t == rt
            && (ids.contains(to) || *to == winner.meta.id)
        {
            target.values[i] = Value::Null;
        }
    }
    // Custom references of the winner's own type are re-pointed by value, whatever the attribute.
    for c in target.custom.values_mut() {
        repoint_json(c, &ids, winner.meta.id);
    }
    Ok((target, moved, conflicts))
}

/// Replaces loser ids by the winner's in a stored custom reference value (arrays keep one of
/// each id). Returns whether it changed.
fn repoint_json(v: &mut Json, losers: &[RecordId], winner: RecordId) -> bool {
    let is_loser = |s: &str| losers.iter().any(|l| l.canonical() == s);
    match v {
        Json::String(s) if is_loser(s) => {
            *s = winner.canonical();
            true
        }
        Json::Array(items) if items.iter().any(|i| i.as_str().is_some_and(is_loser)) => {
            let mut out: Vec<Json> = Vec::new();
            for item in items.drain(..) {
                let item = match item.as_str() {
                    Some(s) if is_loser(s) => json!(winner.canonical()),
                    _ => item,
                };
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            *items = out;
            true
        }
        _ => false,
    }
}

/// The record an alias names now, if `id` is a merged-away id of `rt`.
pub(crate) async fn alias_target<C: Conn>(
    c: &mut C,
    tenant: &str,
    rt: RecordType,
    id: RecordId,
) -> StoreResult<Option<RecordId>> {
    let row = c
        .query_opt(
            "SELECT record_id FROM record_aliases WHERE tenant_id = $1 AND record_type = $2 AND alias_id = $3",
            &[SqlValue::text(tenant), SqlValue::text(rt.api_name()), SqlValue::text(id.canonical())],
        )
        .await?;
    Ok(row.and_then(|mut r| r.text(0)).and_then(|s| RecordId::parse(rt, &s)))
}

/// Reads (and locks) a record taking part in a merge: 404 when the caller cannot see it,
/// 409 `already_merged` when it was merged into another record.
async fn participant<C: Conn>(c: &mut C, actor: &Actor, rt: RecordType, id: RecordId) -> StoreResult<Record> {
    let record = records::get(c, actor, rt, id, true, true).await?;
    if let Some(into) = alias_target(c, &actor.tenant, rt, id).await? {
        // Only a caller who sees the record learns it was merged.
        if record.is_some() {
            return Err(CoreError::new(
                ErrorCode::AlreadyMerged,
                format!("record {} was merged already", id.canonical()),
            )
            .with("record_id", id.canonical())
            .with("merged_into", into.canonical())
            .into());
        }
    }
    match record {
        Some(r) if !r.is_deleted() => Ok(r),
        _ => Err(CoreError::record_not_found().with("record_id", id.canonical()).into()),
    }
}

/// The edge columns of `rt`'s end and the other end.
fn edge_columns(rt: RecordType) -> (&'static str, &'static str) {
    if rt == RecordType::Account { ("account_id", "contact_id") } else { ("contact_id", "account_id") }
}

fn other_type(rt: RecordType) -> RecordType {
    if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account }
}

fn edge_key(rt: RecordType, id: RecordId) -> String {
    let name = if rt == RecordType::Account { "accounts" } else { "contacts" };
    format!("{name}.{}", id.canonical())
}

fn pair(rt: RecordType, id: RecordId, other: RecordId) -> (RecordId, RecordId) {
    if rt == RecordType::Account { (id, other) } else { (other, id) }
}

/// Notes an edge change on both of its ends, `x` and `other` (neither row changes): the
/// edge's role before and after, `None` where there is no edge.
async fn note_edge_ends<C: Conn>(
    c: &mut C,
    actor: &Actor,
    (rt, x): (RecordType, RecordId),
    (ot, other): (RecordType, RecordId),
    before: Option<Option<&str>>,
    after: Option<Option<&str>>,
) -> StoreResult<()> {
    let seen = |far: RecordId, role: Option<Option<&str>>| role.map_or(Json::Null, |r| edge_json(far, r));
    let change = edge_change(seen(x, before), seen(x, after));
    note_relationship(c, actor, ot, other, edge_key(rt, x), change, false).await?;
    let change = edge_change(seen(other, before), seen(other, after));
    note_relationship(c, actor, rt, x, edge_key(ot, other), change, false).await
}

/// Moves `loser`'s edges to `winner`: an edge the winner has already collapses into the
/// winner's (which takes the loser's role when it has none). Every end is noted.
async fn move_edges<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    winner: RecordId,
    loser: RecordId,
    now: Timestamp,
) -> StoreResult<Vec<MovedEdge>> {
    let (near, far) = edge_columns(rt);
    let ot = other_type(rt);
    let tenant = SqlValue::text(actor.tenant.clone());
    let rows = c
        .query(
            &format!("SELECT {far}, role FROM account_contacts WHERE tenant_id = $1 AND {near} = $2 ORDER BY {far}"),
            &[tenant.clone(), SqlValue::text(loser.canonical())],
        )
        .await?;
    let edges: Vec<(RecordId, Option<String>)> =
        rows.into_iter().filter_map(|mut r| Some((RecordId::parse(ot, &r.text(0)?)?, r.text(1)))).collect();
    let mut moved = Vec::new();
    for (other, role) in edges {
        let (w_account, w_contact) = pair(rt, winner, other);
        let existing = c
            .query_opt(
                "SELECT role FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
                &[tenant.clone(), SqlValue::text(w_account.canonical()), SqlValue::text(w_contact.canonical())],
            )
            .await?
            .map(|mut r| r.text(0));
        let new_role = match &existing {
            None => {
                edges::link(c, &actor.tenant, w_account, w_contact, role.as_deref(), now).await?;
                role.clone()
            }
            Some(None) if role.is_some() => {
                c.execute(
                    "UPDATE account_contacts SET role = $4 WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
                    &[
                        tenant.clone(),
                        SqlValue::text(w_account.canonical()),
                        SqlValue::text(w_contact.canonical()),
                        SqlValue::opt_text(role.clone()),
                    ],
                )
                .await?;
                role.clone()
            }
            Some(kept) => kept.clone(),
        };
        let (l_account, l_contact) = pair(rt, loser, other);
        c.execute(
            "DELETE FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
            &[tenant.clone(), SqlValue::text(l_account.canonical()), SqlValue::text(l_contact.canonical())],
        )
        .await?;
        // The loser's edge is gone (both ends see it), the winner's is there with its role.
        let existing = existing.as_ref().map(|r| r.as_deref());
        note_edge_ends(c, actor, (rt, loser), (ot, other), Some(role.as_deref()), None).await?;
        note_edge_ends(c, actor, (rt, winner), (ot, other), existing, Some(new_role.as_deref())).await?;
        moved.push(MovedEdge { loser, other, role, collapsed: existing.is_some() });
    }
    Ok(moved)
}

/// Re-points every record of the tenant (archived ones included, whatever the caller's app
/// scope) that references `loser` to `winner`: built-in references, a contact's primary
/// account, custom `record_reference` attributes. The winner and the losers are left out
/// (the winner's own references are settled by [`combine`]; losers keep their snapshot).
#[allow(clippy::too_many_arguments)]
async fn repoint_references<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    winner: RecordId,
    loser: RecordId,
    skip: &[RecordId],
    now: Timestamp,
) -> StoreResult<Vec<Repointed>> {
    let tenant_wide = Actor { app: None, ..actor.clone() };
    let mut out = Vec::new();
    let params = [SqlValue::text(actor.tenant.clone()), SqlValue::text(loser.canonical())];
    let mut targets: Vec<(RecordType, Vec<RecordId>, Slot)> = Vec::new();
    for owner in [RecordType::Account, RecordType::Contact] {
        let table = if owner == RecordType::Account { "accounts" } else { "contacts" };
        for (index, f) in fields(owner).iter().enumerate().filter(|(_, f)| f.value_type == ValueType::Reference(rt)) {
            let sql = format!("SELECT id FROM {table} WHERE tenant_id = $1 AND {} = $2 ORDER BY id", f.column);
            targets.push((owner, ids_of(c, owner, &sql, &params).await?, Slot::Field(index)));
        }
        let schema = crate::schemas::load(c, &actor.tenant, owner).await?;
        for attr in schema.custom.iter().filter(|a| a.value_type == ValueType::Reference(rt)) {
            let ids =
                records::referrers(c, &tenant_wide, owner, &records::names_record(attr, &loser.canonical())).await?;
            targets.push((owner, ids, Slot::Custom(attr.api_name.clone())));
        }
    }
    if rt == RecordType::Account {
        let sql = "SELECT id FROM contacts WHERE tenant_id = $1 AND primary_account_id = $2 ORDER BY id";
        targets.push((RecordType::Contact, ids_of(c, RecordType::Contact, sql, &params).await?, Slot::PrimaryAccount));
    }
    for (owner, ids, slot) in targets {
        for id in ids.into_iter().filter(|id| !skip.contains(id)) {
            let options =
                ModifyOptions { include_archived: true, primary_edge: PrimaryEdge::Keep, ..Default::default() };
            let slot2 = slot.clone();
            records::modify_with(c, &tenant_wide, owner, id, Preconditions::default(), None, now, options, move |r| {
                Ok(match &slot2 {
                    Slot::Field(i) => {
                        r.values[*i] = Value::Ref(winner);
                        true
                    }
                    Slot::PrimaryAccount => {
                        r.primary_account = Some(winner);
                        true
                    }
                    Slot::Custom(name) => r.custom.get_mut(name).is_some_and(|v| repoint_json(v, &[loser], winner)),
                })
            })
            .await?;
            out.push(Repointed { record_type: owner, record_id: id, attribute: slot_name(owner, &slot), loser });
        }
    }
    Ok(out)
}

async fn ids_of<C: Conn>(c: &mut C, rt: RecordType, sql: &str, params: &[SqlValue]) -> StoreResult<Vec<RecordId>> {
    Ok(c.query(sql, params)
        .await?
        .into_iter()
        .filter_map(|mut r| r.text(0))
        .filter_map(|s| RecordId::parse(rt, &s))
        .collect())
}

/// Merges `spec.losers` into `spec.winner` (see the module docs). Runs inside the caller's
/// write transaction; a dry run is this, rolled back.
pub(crate) async fn run<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    spec: &MergeSpec,
    dry_run: bool,
    now: Timestamp,
) -> StoreResult<MergeOutcome> {
    let winner_id = spec.winner.ok_or_else(|| CoreError::required_missing("winner"))?;
    if spec.losers.is_empty() || spec.losers.len() > MAX_LOSERS {
        return Err(CoreError::invalid_value("losers", format!("expected 1 to {MAX_LOSERS} record ids")).into());
    }
    let mut seen = vec![winner_id];
    for l in &spec.losers {
        if seen.contains(l) {
            return Err(
                CoreError::invalid_value("losers", "each record appears once, and the winner is not a loser").into()
            );
        }
        seen.push(*l);
    }
    // Lock every participant in id order, so two merges sharing records cannot deadlock.
    seen.sort();
    let mut locked = Vec::new();
    for id in &seen {
        locked.push(participant(c, actor, rt, *id).await?);
    }
    let winner = locked.iter().find(|r| r.meta.id == winner_id).cloned().expect("locked above");
    let losers: Vec<Record> =
        spec.losers.iter().map(|l| locked.iter().find(|r| r.meta.id == *l).cloned().expect("locked above")).collect();
    if spec.pre.if_match.is_some_and(|v| v != winner.meta.version) {
        return Err(CoreError::precondition_failed(winner.meta.version).into());
    }
    let (target, moved_items, conflicts) = combine(&winner, &losers, spec, now)?;
    let merge_id = uuid::Uuid::now_v7().to_string();
    let mut moved_edges = Vec::new();
    let mut undo_aliases = Vec::new();
    let mut archived = Vec::new();
    for loser in &losers {
        moved_edges.extend(move_edges(c, actor, rt, winner_id, loser.meta.id, now).await?);
        let mut after = loser.clone();
        after.meta.touch(actor, now);
        after.meta.deleted_at = Some(after.meta.updated_at);
        after.meta.deleted_by = Some(actor.subject.clone());
        let mut extra = Map::new();
        extra.insert(MERGED_INTO.to_owned(), json!({"old": null, "new": winner_id.canonical()}));
        records::commit(c, actor, Action::MergedInto, Some(loser), Some(&after), extra).await?;
        keys::set_released(c, actor, &after, true).await?;
        // Aliases of the loser now name the winner (chains stay one hop).
        let tenant = SqlValue::text(actor.tenant.clone());
        let (kind, l) = (SqlValue::text(rt.api_name()), SqlValue::text(loser.meta.id.canonical()));
        let repointed = c
            .query(
                "SELECT alias_id FROM record_aliases WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3",
                &[tenant.clone(), kind.clone(), l.clone()],
            )
            .await?;
        undo_aliases.extend(
            repointed
                .into_iter()
                .filter_map(|mut r| r.text(0))
                .map(|a| json!({"alias": a, "from": loser.meta.id.canonical()})),
        );
        c.execute(
            "UPDATE record_aliases SET record_id = $4 WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3",
            &[tenant.clone(), kind.clone(), l.clone(), SqlValue::text(winner_id.canonical())],
        )
        .await?;
        c.execute(
            "INSERT INTO record_aliases (tenant_id, record_type, alias_id, record_id, merge_id) VALUES ($1, $2, $3, $4, $5)",
            &[tenant, kind, l, SqlValue::text(winner_id.canonical()), SqlValue::text(merge_id.clone())],
        )
        .await?;
        archived.push(after);
    }
    // The winner takes the combined values and the losers' keys (released above).
    let options = ModifyOptions { primary_edge: PrimaryEdge::Keep, ..Default::default() };
    let combined = target.clone();
    let mut merged =
        records::modify_with(c, actor, rt, winner_id, Preconditions::default(), None, now, options, move |r| {
            let changed = r.values != combined.values
                || r.domains != combined.domains
                || r.emails != combined.emails
                || r.phones != combined.phones
                || r.primary_account != combined.primary_account
                || r.custom != combined.custom;
            r.values = combined.values;
            r.domains = combined.domains;
            r.emails = combined.emails;
            r.phones = combined.phones;
            r.primary_account = combined.primary_account;
            r.custom = combined.custom;
            Ok(changed)
        })
        .await?;
    let loser_ids: Vec<RecordId> = spec.losers.clone();
    let mut references = Vec::new();
    for loser in &loser_ids {
        let skip: Vec<RecordId> = std::iter::once(winner_id).chain(loser_ids.iter().copied()).collect();
        references.extend(repoint_references(c, actor, rt, winner_id, *loser, &skip, now).await?);
    }
    // Re-pointing a contact's primary account may have touched the winner (an account) row
    // through associate_*; read it back as it stands.
    if let Some(fresh) = records::get(c, actor, rt, winner_id, false, false).await? {
        merged = fresh;
    }
    let mut extra = Map::new();
    let from: Vec<Json> = loser_ids.iter().map(|l| json!(l.canonical())).collect();
    extra.insert(MERGED_FROM.to_owned(), json!({"old": null, "new": from}));
    if let Some(outbox) = c.outbox() {
        outbox.note(actor, Action::Merged, Some(&merged), Some(&merged), extra);
    }
    let undo = json!({
        "edges": moved_edges.iter().map(|e| json!({
            "loser": e.loser.canonical(), "other": e.other.canonical(), "role": e.role, "collapsed": e.collapsed,
        })).collect::<Vec<_>>(),
        "items": moved_items.iter().filter(|i| !i.duplicate).map(|i| json!({
            "loser": i.loser.canonical(), "attribute": i.attribute, "value": i.value,
        })).collect::<Vec<_>>(),
        "references": references.iter().map(|r| json!({
            "record_type": r.record_type.api_name(), "record_id": r.record_id.canonical(),
            "attribute": r.attribute, "loser": r.loser.canonical(),
        })).collect::<Vec<_>>(),
        "aliases": undo_aliases,
    });
    c.execute(
        "INSERT INTO record_merges (tenant_id, merge_id, record_type, winner_id, loser_ids, undo, merged_at, merged_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            SqlValue::text(actor.tenant.clone()),
            SqlValue::text(merge_id.clone()),
            SqlValue::text(rt.api_name()),
            SqlValue::text(winner_id.canonical()),
            SqlValue::Text(Json::Array(from).to_string()),
            SqlValue::Text(undo.to_string()),
            SqlValue::Int(now.millis()),
            SqlValue::text(actor.subject.clone()),
        ],
    )
    .await?;
    let events = crate::changes::preview(c);
    Ok(MergeOutcome {
        merge_id: (!dry_run).then_some(merge_id),
        winner: merged,
        losers: archived,
        edges: moved_edges,
        items: moved_items,
        references,
        conflicts,
        events,
    })
}

/// The record `id` names for a write: itself when it is an active record the caller sees,
/// else the record it was merged into, if any (the caller's scope is checked where the
/// record is then read). The record is locked: a write racing a merge of it waits for the
/// merge and then reaches the winner, so nothing is written to a half-merged loser.
pub(crate) async fn resolve<C: Conn>(c: &mut C, actor: &Actor, rt: RecordType, id: RecordId) -> StoreResult<RecordId> {
    if rt == RecordType::User || records::get(c, actor, rt, id, false, true).await?.is_some() {
        return Ok(id);
    }
    Ok(alias_target(c, &actor.tenant, rt, id).await?.unwrap_or(id))
}

/// Makes the references of a write that name merged-away records name their winners
/// (built-in references, a contact's primary account, custom references).
pub(crate) async fn resolve_write<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    write: &mut RecordWrite,
) -> StoreResult<()> {
    for (index, value) in write.values.iter_mut() {
        if let (ValueType::Reference(target), Value::Ref(id)) = (fields(rt)[*index].value_type, &*value) {
            *value = Value::Ref(resolve(c, actor, target, *id).await?);
        }
    }
    if let Some(Some(account)) = write.primary_account {
        write.primary_account = Some(Some(resolve(c, actor, RecordType::Account, account).await?));
    }
    for i in 0..write.custom_refs.len() {
        let (name, target, id) = write.custom_refs[i].clone();
        let resolved = resolve(c, actor, target, id).await?;
        if resolved == id {
            continue;
        }
        write.custom_refs[i].2 = resolved;
        if let Some((_, stored)) = write.custom.iter_mut().find(|(n, _)| *n == name) {
            repoint_json(stored, &[id], resolved);
        }
    }
    Ok(())
}

/// What an unmerge did.
#[derive(Debug, Clone)]
pub struct UnmergeOutcome {
    pub winner: Record,
    /// The losers, active again.
    pub restored: Vec<Record>,
    pub events: Vec<PlannedEvent>,
}

fn undo_id(rt: RecordType, v: &Json) -> Option<RecordId> {
    v.as_str().and_then(|s| RecordId::parse(rt, s))
}

/// Undoes a merge (docs/API.md "Merging records"): the losers are restored with their
/// domains / emails / phone numbers, their edges come back (edges the merge gave the winner
/// go), references the merge re-pointed and that still name the winner name the loser
/// again, and the aliases go. The winner keeps the values it took: its later history may
/// build on them, and its `_history` shows what the merge changed. Refused (`409
/// already_merged`) when the winner was merged away since; a merge older than the change
/// retention, or undone already, is `404 record_not_found` (its log is gone or closed).
pub(crate) async fn unmerge<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    merge_id: &str,
    now: Timestamp,
) -> StoreResult<UnmergeOutcome> {
    let row = c
        .query_opt(
            "SELECT winner_id, loser_ids, undo FROM record_merges WHERE tenant_id = $1 AND merge_id = $2 \
             AND record_type = $3 AND undone_at IS NULL",
            &[SqlValue::text(actor.tenant.clone()), SqlValue::text(merge_id), SqlValue::text(rt.api_name())],
        )
        .await?;
    let not_found = || CoreError::record_not_found().with("merge_id", merge_id);
    let Some(mut row) = row else { return Err(not_found().into()) };
    let winner_id = row.text(0).and_then(|s| RecordId::parse(rt, &s)).ok_or_else(not_found)?;
    let loser_ids: Vec<RecordId> = serde_json::from_str::<Vec<String>>(&row.text(1).unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| RecordId::parse(rt, s))
        .collect();
    let undo: Json = serde_json::from_str(&row.text(2).unwrap_or_default()).unwrap_or(Json::Null);
    // Lock in id order, like a merge. The winner must be active and visible; the losers must
    // still be archived by this merge.
    let mut ids: Vec<RecordId> = std::iter::once(winner_id).chain(loser_ids.iter().copied()).collect();
    ids.sort();
    let mut locked = Vec::new();
    for id in &ids {
        let record = records::get(c, actor, rt, *id, true, true).await?.ok_or_else(not_found)?;
        locked.push(record);
    }
    let winner = locked.iter().find(|r| r.meta.id == winner_id).cloned().expect("locked above");
    if winner.is_deleted() {
        let into = alias_target(c, &actor.tenant, rt, winner_id).await?;
        let mut e = CoreError::new(
            ErrorCode::AlreadyMerged,
            "the winner of this merge was merged into another record since; undo that merge first",
        )
        .with("record_id", winner_id.canonical());
        if let Some(into) = into {
            e = e.with("merged_into", into.canonical());
        }
        return Err(e.into());
    }
    let losers: Vec<Record> =
        loser_ids.iter().map(|l| locked.iter().find(|r| r.meta.id == *l).cloned().expect("locked above")).collect();
    let ot = other_type(rt);
    let list = |key: &str| undo[key].as_array().cloned().unwrap_or_default();
    // Edges the merge added to the winner (not collapsed into one it had) go with the loser.
    let edges: Vec<(RecordId, RecordId, Option<String>, bool)> = list("edges")
        .iter()
        .filter_map(|e| {
            Some((
                undo_id(rt, &e["loser"])?,
                undo_id(ot, &e["other"])?,
                e["role"].as_str().map(str::to_owned),
                e["collapsed"].as_bool()?,
            ))
        })
        .collect();
    // 1. The winner gives the losers' items back (and a primary account whose edge goes).
    let items: Vec<(String, String)> = list("items")
        .iter()
        .filter_map(|i| Some((i["attribute"].as_str()?.to_owned(), i["value"].as_str()?.to_owned())))
        .collect();
    let dropped: Vec<RecordId> = edges.iter().filter(|e| !e.3).map(|e| e.1).collect();
    let options = ModifyOptions { primary_edge: PrimaryEdge::Keep, ..Default::default() };
    records::modify_with(c, actor, rt, winner_id, Preconditions::default(), None, now, options, move |r| {
        let before = (r.domains.clone(), r.emails.clone(), r.phones.clone(), r.primary_account);
        for (attribute, value) in &items {
            let key = value.to_lowercase();
            let _ = match attribute.as_str() {
                "domains" if r.domains.iter().any(|d| d.domain_name == *value) => items::remove(&mut r.domains, value),
                "contact_emails" if r.emails.iter().any(|e| e.value.to_lowercase() == key) => {
                    items::remove(&mut r.emails, &key)
                }
                "contact_phone_numbers" if r.phones.iter().any(|e| e.value.to_lowercase() == key) => {
                    items::remove(&mut r.phones, &key)
                }
                _ => Ok(()),
            };
        }
        if rt == RecordType::Contact && r.primary_account.is_some_and(|a| dropped.contains(&a)) {
            r.primary_account = None;
        }
        Ok(before != (r.domains.clone(), r.emails.clone(), r.phones.clone(), r.primary_account))
    })
    .await?;
    // 2. The losers are active again, with their keys.
    let mut restored = Vec::new();
    for loser in &losers {
        keys::set_released(c, actor, loser, false).await?;
        let mut after = loser.clone();
        after.meta.deleted_at = None;
        after.meta.deleted_by = None;
        after.meta.touch(actor, now);
        let mut extra = Map::new();
        extra.insert(MERGED_INTO.to_owned(), json!({"old": winner_id.canonical(), "new": null}));
        records::commit(c, actor, Action::Unmerged, Some(loser), Some(&after), extra).await?;
        restored.push(after);
    }
    // 3. Edges: each loser's come back; the winner loses those the merge gave it.
    let tenant = SqlValue::text(actor.tenant.clone());
    for (loser, other, role, collapsed) in &edges {
        let (la, lc) = pair(rt, *loser, *other);
        edges::link(c, &actor.tenant, la, lc, role.as_deref(), now).await?;
        note_edge_ends(c, actor, (rt, *loser), (ot, *other), None, Some(role.as_deref())).await?;
        if !collapsed {
            let (wa, wc) = pair(rt, winner_id, *other);
            let gone = c
                .execute(
                    "DELETE FROM account_contacts WHERE tenant_id = $1 AND account_id = $2 AND contact_id = $3",
                    &[tenant.clone(), SqlValue::text(wa.canonical()), SqlValue::text(wc.canonical())],
                )
                .await?;
            if gone > 0 {
                note_edge_ends(c, actor, (rt, winner_id), (ot, *other), Some(role.as_deref()), None).await?;
            }
        }
    }
    // 4. References the merge re-pointed name the loser again, where they still name the winner.
    let tenant_wide = Actor { app: None, ..actor.clone() };
    for r in list("references") {
        let (Some(owner), Some(attribute)) =
            (r["record_type"].as_str().and_then(RecordType::from_api_name), r["attribute"].as_str())
        else {
            continue;
        };
        let (Some(id), Some(loser)) = (undo_id(owner, &r["record_id"]), undo_id(rt, &r["loser"])) else { continue };
        let index = fields(owner).iter().position(|f| f.api_name == attribute);
        let attribute = attribute.to_owned();
        let options = ModifyOptions { include_archived: true, primary_edge: PrimaryEdge::Keep, ..Default::default() };
        let result =
            records::modify_with(c, &tenant_wide, owner, id, Preconditions::default(), None, now, options, move |r| {
                Ok(match (index, attribute.as_str()) {
                    (Some(i), _) if r.values[i] == Value::Ref(winner_id) => {
                        r.values[i] = Value::Ref(loser);
                        true
                    }
                    (None, "primary_account") if r.primary_account == Some(winner_id) => {
                        r.primary_account = Some(loser);
                        true
                    }
                    (None, name) => r.custom.get_mut(name).is_some_and(|v| repoint_json(v, &[winner_id], loser)),
                    _ => false,
                })
            })
            .await;
        match result {
            // A referrer purged since has nothing to put back.
            Err(crate::StoreError::Domain(e)) if e.code == ErrorCode::RecordNotFound => {}
            other => {
                other?;
            }
        }
    }
    // 5. The aliases go; aliases the merge re-pointed to the winner name their loser again.
    let kind = SqlValue::text(rt.api_name());
    c.execute(
        "DELETE FROM record_aliases WHERE tenant_id = $1 AND record_type = $2 AND merge_id = $3",
        &[tenant.clone(), kind.clone(), SqlValue::text(merge_id)],
    )
    .await?;
    for a in list("aliases") {
        let (Some(alias), Some(from)) = (a["alias"].as_str(), a["from"].as_str()) else { continue };
        c.execute(
            "UPDATE record_aliases SET record_id = $4 WHERE tenant_id = $1 AND record_type = $2 AND alias_id = $3 AND record_id = $5",
            &[tenant.clone(), kind.clone(), SqlValue::text(alias), SqlValue::text(from), SqlValue::text(winner_id.canonical())],
        )
        .await?;
    }
    c.execute(
        "UPDATE record_merges SET undone_at = $3 WHERE tenant_id = $1 AND merge_id = $2",
        &[tenant, SqlValue::text(merge_id), SqlValue::Int(now.millis())],
    )
    .await?;
    let winner = records::get(c, actor, rt, winner_id, false, false).await?.ok_or_else(not_found)?;
    let mut extra = Map::new();
    let from: Vec<Json> = loser_ids.iter().map(|l| json!(l.canonical())).collect();
    extra.insert(MERGED_FROM.to_owned(), json!({"old": from, "new": null}));
    if let Some(outbox) = c.outbox() {
        outbox.note(actor, Action::Unmerged, Some(&winner), Some(&winner), extra);
    }
    let restored = {
        let mut out = Vec::new();
        for r in &restored {
            out.push(records::get(c, actor, rt, r.meta.id, false, false).await?.unwrap_or_else(|| r.clone()));
        }
        out
    };
    Ok(UnmergeOutcome { winner, restored, events: crate::changes::preview(c) })
}

/// Deletes the logs of merges made before `cutoff` (the change retention): such merges can no
/// longer be undone. Their aliases stay.
pub(crate) async fn prune<C: Conn>(c: &mut C, cutoff: Timestamp) -> StoreResult<u64> {
    Ok(c.execute("DELETE FROM record_merges WHERE merged_at < $1", &[SqlValue::Int(cutoff.millis())]).await?)
}
