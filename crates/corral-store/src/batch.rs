//! The batch write path of bulk imports: consecutive lines that are plain creates are written
//! together, a few multi-row statements per table for the whole run, instead of about ten
//! statements per line.
//!
//! A line is taken only when the one-record path ([`records::create`], or
//! [`records::assert`] finding nothing) would do no more than write the record: no match
//! value, reference or custom reference to resolve or check, no domain or email that a record
//! of the tenant (or an earlier line of the run) holds, nothing auto-association would link.
//! For those lines this path writes exactly what that one would — the record row, its key
//! rows, tag rows, duplicate keys, and its `created` change event — and every other line goes
//! through the one-record path ([`crate::bulk`]), which stays the reference:
//! `batched_bulk_lines_write_exactly_what_line_by_line_writes` (conformance suite, both
//! databases) holds the two to the same outcomes, records and events.

use crate::bulk::BulkOp;
use crate::db::{self, Conn};
use crate::records::{self, MatchKey};
use crate::{StoreError, StoreResult, duplicates, edges, keys, schemas};
use corral_core::change::Action;
use corral_core::custom::{TenantSchema, check_required};
use corral_core::{Actor, Record, RecordMeta, RecordType, RecordWrite, Timestamp, Value, normalize};
use serde_json::Map;
use std::borrow::Cow;
use std::collections::HashSet;

/// How the next lines of a bulk request are written.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The records of the first lines, to be written together ([`write`]).
    pub batch: Vec<Record>,
    /// How many lines after them take the one-record path before the next plan.
    pub single: usize,
}

/// A line that may be written in a batch: its record, the keys it needs free (the record's
/// unique keys and an assert's match keys) and the domains auto-association would look at.
struct Candidate {
    record: Record,
    keys: Vec<String>,
    domains: Vec<String>,
}

/// Plans `ops` (the next lines of one transaction), reading what decides which of them can be
/// written together: the keys they need (one statement per 64 keys) and what auto-association
/// would link. On PostgreSQL the lock of each assert key is taken first, as
/// [`records::assert`] takes it, so a concurrent assert on the same key waits for this
/// transaction and then finds the record it created. Line `i`'s record is stamped `stamp(i)`.
pub(crate) async fn plan<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    ops: &[BulkOp],
    stamp: impl Fn(usize) -> Timestamp,
) -> StoreResult<Plan> {
    let schema = match ops.iter().any(|op| matches!(op, BulkOp::Assert(..))) {
        true => Some(schemas::load(c, &actor.tenant, rt).await?),
        false => None,
    };
    let matches: Vec<Option<Vec<String>>> = ops.iter().map(|op| match_keys(rt, op)).collect();
    let locks: Vec<String> = ops
        .iter()
        .zip(&matches)
        .filter_map(|(op, keys)| match (op, keys) {
            (BulkOp::Assert(keys, _), Some(_)) => Some(keys.iter().map(|k| records::assert_lock(actor, rt, k))),
            _ => None,
        })
        .flatten()
        .collect();
    db::lock_names(c, &locks).await?;
    // Planned per call on PostgreSQL: a plan made once while the tenant's tables were small
    // (an import into a new tenant) read every key row of the tenant for each lookup
    // (measured: 50-80 ms per lookup of 64 keys at 20,000 accounts).
    db::plan_per_call(c, true).await?;
    // Match keys first: an assert whose key finds a record (each line of an import run again)
    // is an update, and its record is not built here.
    let looked_up: Vec<String> = matches.iter().flatten().flatten().cloned().collect();
    let mut held = keys::claimed(c, &actor.tenant, rt, &looked_up).await?;
    let candidates: Vec<Option<Candidate>> = ops
        .iter()
        .zip(matches)
        .enumerate()
        .map(|(i, (op, keys))| {
            let keys = keys.filter(|keys| !keys.iter().any(|k| held.contains(k)))?;
            candidate(actor, rt, op, keys, schema.as_ref(), stamp(i))
        })
        .collect();
    let looked_up: HashSet<&String> = looked_up.iter().collect();
    let wanted: Vec<String> =
        candidates.iter().flatten().flat_map(|cand| &cand.keys).filter(|k| !looked_up.contains(k)).cloned().collect();
    held.extend(keys::claimed(c, &actor.tenant, rt, &wanted).await?);
    let domains: Vec<String> = candidates.iter().flatten().flat_map(|cand| cand.domains.iter().cloned()).collect();
    let linking = edges::associating_domains(c, &actor.tenant, rt, &domains).await?;
    db::plan_per_call(c, false).await?;
    let mut writable = candidates.into_iter().map(|cand| {
        cand.filter(|cand| {
            !cand.keys.iter().any(|k| held.contains(k)) && !cand.domains.iter().any(|d| linking.contains(d))
        })
    });
    // The longest run of writable lines whose keys no earlier line of the run takes.
    let mut plan = Plan::default();
    let mut taken: HashSet<String> = HashSet::new();
    let mut next = None;
    for cand in writable.by_ref() {
        match cand {
            Some(cand) if cand.keys.iter().all(|k| !taken.contains(k)) => {
                taken.extend(cand.keys);
                plan.batch.push(cand.record);
            }
            other => {
                next = Some(other);
                break;
            }
        }
    }
    // Then the lines for the one-record path, up to the next writable one (at least one: a
    // line whose key an earlier line takes is decided there, after that line is written).
    if next.is_some() {
        plan.single = 1 + writable.take_while(Option::is_none).count();
    }
    Ok(plan)
}

/// The keys a line's match needs free, as the key index holds them (domains, email keys):
/// none for a create; `None` for an assert this path does not take (no key, or a key of
/// another kind than the record type's).
fn match_keys(rt: RecordType, op: &BulkOp) -> Option<Vec<String>> {
    let BulkOp::Assert(matches, _) = op else { return Some(Vec::new()) };
    let keys = matches.iter().map(|key| match (rt, key) {
        (RecordType::Account, MatchKey::Domain(d)) => Some(d.clone()),
        (RecordType::Contact, MatchKey::Email(e)) => Some(normalize::email_key(e)),
        _ => None,
    });
    keys.collect::<Option<Vec<String>>>().filter(|keys| !keys.is_empty())
}

/// The line as a [`Candidate`] needing `keys` free (its [`match_keys`]), if the one-record
/// path would only write its record.
fn candidate(
    actor: &Actor,
    rt: RecordType,
    op: &BulkOp,
    mut keys: Vec<String>,
    schema: Option<&TenantSchema>,
    now: Timestamp,
) -> Option<Candidate> {
    let write = match op {
        BulkOp::Create(write) => Cow::Borrowed(write),
        BulkOp::Assert(matches, write) => {
            // As records::assert creates when no key finds a record (the required rule holds).
            // Only keys of the record type's kind come here ([`match_keys`]).
            let mut sorted = matches.clone();
            sorted.sort();
            let write = records::assert_create_write(write, &sorted);
            check_required(schema?, &write, str::to_owned).ok()?;
            Cow::Owned(write)
        }
    };
    if resolves_anything(&write) {
        return None;
    }
    let mut record = Record::new(rt, RecordMeta::new(actor, now));
    record.apply(&write, now).ok()?;
    if record.primary_account.is_some() || record.values.iter().any(|v| matches!(v, Value::Ref(_))) {
        return None;
    }
    keys.extend(keys::unique_keys(&record));
    keys.sort();
    keys.dedup();
    let domains = association_domains(&record);
    Some(Candidate { record, keys, domains })
}

/// Whether the write names other records (resolved and checked one by one on the
/// one-record path).
fn resolves_anything(write: &RecordWrite) -> bool {
    !write.custom_refs.is_empty()
        || matches!(write.primary_account, Some(Some(_)))
        || write.values.iter().any(|(_, v)| matches!(v, Value::Match { .. } | Value::Ref(_)))
}

/// The domains auto-association looks at for a new record: an account's domains, a contact's
/// email domains.
fn association_domains(record: &Record) -> Vec<String> {
    match record.record_type {
        RecordType::Account => record.domains.iter().map(|d| d.domain_name.clone()).collect(),
        _ => record.emails.iter().map(|e| normalize::email_domain(&e.value).to_owned()).collect(),
    }
}

/// Writes the records of a [`Plan`] (new records of one type, planned in this transaction):
/// each table's rows for all of them in a few multi-row statements, and a `created` event
/// each. A key claimed meanwhile by a concurrent transaction (PostgreSQL) fails it; the caller
/// then rolls it back and writes the lines one by one.
pub(crate) async fn write<C: Conn>(c: &mut C, actor: &Actor, records: &[Record]) -> StoreResult<()> {
    records::insert_many(c, records).await?;
    keys::insert_many(c, &actor.tenant, records).await?;
    keys::insert_tags_many(c, &actor.tenant, records).await?;
    duplicates::add_many(c, &actor.tenant, records).await?;
    let outbox = c.outbox().ok_or_else(|| StoreError::Internal("a record write outside a write transaction".into()))?;
    for record in records {
        outbox.note(actor, Action::Created, None, Some(record), Map::new());
    }
    Ok(())
}
