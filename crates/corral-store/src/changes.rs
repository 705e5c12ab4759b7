//! The change outbox (docs/API.md "Change feed", "Field history"): gathering one event per
//! changed record per write transaction, appending the events in that transaction, and
//! reading them back as an ordered feed and as a record's history; retention pruning.
//!
//! The write funnel ([`crate::records::commit`]) notes every state a record passes through
//! in the transaction's [`Outbox`]; just before commit, [`flush`] turns each record's first
//! and last state into one event (so a write that also touches the record again through
//! auto-association or a relationship still makes one event).
//!
//! Feed order is (xid, seq). On PostgreSQL `xid` is the writing transaction's id and a
//! reader only serves events of transactions older than the oldest one still running
//! (`pg_snapshot_xmin` of its statement's snapshot): every such transaction has committed
//! or aborted, so nothing can later appear before a position already served, however
//! transactions interleave their commits. SQLite has one writer: `seq` is commit order.

use crate::db::{Conn, Dialect, SqlValue};
use crate::{StoreError, StoreResult};
use corral_core::change::{self, Action};
use corral_core::{Actor, ActorKind, CoreError, ErrorCode, Record, RecordId, RecordType, Timestamp};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;

/// A feed position: (transaction id, sequence).
pub type Position = (i64, i64);

/// What one record went through in the open transaction.
#[derive(Debug, Clone)]
struct Pending {
    actor: Actor,
    record_type: RecordType,
    id: RecordId,
    /// Its state before the transaction (`None`: created in it).
    before: Option<Record>,
    /// Its latest state (`None`: purged).
    after: Option<Record>,
    actions: Vec<Action>,
    /// Relationship changes (they are not part of the record row): key → {old, new}.
    extra: Map<String, Json>,
}

/// The change events of one write transaction, one entry per record, in first-touch order.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: Vec<Pending>,
    /// Position of each record's entry in `pending`: a bulk transaction touches thousands of
    /// records, and a scan per note would make it quadratic.
    index: HashMap<(RecordType, RecordId), usize>,
    /// The state at the open savepoint, if one is taken (see [`Outbox::savepoint`]).
    savepoint: Option<Savepoint>,
}

/// What rolling back to a savepoint restores: the entries it had, as they were.
#[derive(Debug)]
struct Savepoint {
    len: usize,
    /// Entries that existed at the savepoint and changed since: their state then.
    saved: Vec<(usize, Pending)>,
}

impl Outbox {
    /// Marks the outbox's state, for [`Outbox::rollback_to_savepoint`] to restore: the
    /// database rolls a failed bulk line back to its SAVEPOINT, and the line's notes must go
    /// with its rows (no event for a write that was undone). Replaces an earlier mark.
    pub(crate) fn savepoint(&mut self) {
        self.savepoint = Some(Savepoint { len: self.pending.len(), saved: Vec::new() });
    }

    /// Forgets what was noted since the last [`Outbox::savepoint`]; the mark stays.
    pub(crate) fn rollback_to_savepoint(&mut self) {
        let Some(sp) = self.savepoint.as_mut() else { return };
        for p in self.pending.drain(sp.len..) {
            self.index.remove(&(p.record_type, p.id));
        }
        for (i, p) in sp.saved.drain(..) {
            self.pending[i] = p;
        }
    }

    /// Notes that `before` became `after` (either is `None` for a create or a purge) with
    /// relationship changes `extra`.
    pub(crate) fn note(
        &mut self,
        actor: &Actor,
        action: Action,
        before: Option<&Record>,
        after: Option<&Record>,
        extra: Map<String, Json>,
    ) {
        let Some(any) = after.or(before) else { return };
        let (rt, id) = (any.record_type, any.meta.id);
        let entry = match self.index.get(&(rt, id)) {
            Some(&i) => {
                if let Some(sp) = self.savepoint.as_mut()
                    && i < sp.len
                    && !sp.saved.iter().any(|(j, _)| *j == i)
                {
                    sp.saved.push((i, self.pending[i].clone()));
                }
                &mut self.pending[i]
            }
            None => {
                self.index.insert((rt, id), self.pending.len());
                self.pending.push(Pending {
                    actor: actor.clone(),
                    record_type: rt,
                    id,
                    before: before.cloned(),
                    after: None,
                    actions: Vec::new(),
                    extra: Map::new(),
                });
                self.pending.last_mut().expect("just pushed")
            }
        };
        entry.after = after.cloned();
        entry.actions.push(action);
        for (key, change) in extra {
            match entry.extra.get_mut(&key) {
                // Touched twice: the first old value and the last new one.
                Some(existing) => existing["new"] = change["new"].clone(),
                None => {
                    entry.extra.insert(key, change);
                }
            }
        }
    }
}

/// The action of an event from the actions of one transaction: a create stays a create,
/// otherwise the last lifecycle action wins over updates.
fn summarise(actions: &[Action]) -> Action {
    if actions.first() == Some(&Action::Created) {
        return Action::Created;
    }
    actions.iter().rev().find(|a| **a != Action::Updated).copied().unwrap_or(Action::Updated)
}

/// One event the open transaction will append: what [`flush`] writes, and what a dry run
/// (a merge previewed in a transaction that is rolled back) reports instead.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    pub record_type: RecordType,
    pub record_id: RecordId,
    pub action: Action,
    /// `{key: {"old", "new"}}`, as the feed shows it.
    pub changes: Map<String, Json>,
}

/// The event of one pending record, if it makes one.
fn plan(p: &Pending) -> Option<(Action, Map<String, Json>)> {
    let action = summarise(&p.actions);
    // Created and purged in one transaction: nothing a reader could have seen.
    if p.before.is_none() && p.after.is_none() {
        return None;
    }
    let mut changes = match action {
        // A purge erases the record's values; its event carries none of them.
        Action::Purged => Map::new(),
        _ => change::diff(p.before.as_ref(), p.after.as_ref()),
    };
    if action != Action::Purged {
        for (key, c) in &p.extra {
            if c["old"] != c["new"] {
                changes.insert(key.clone(), c.clone());
            }
        }
    }
    if action == Action::Updated && changes.is_empty() {
        return None;
    }
    Some((action, changes))
}

/// The events the open transaction would append if it committed now.
pub(crate) fn preview<C: Conn>(c: &mut C) -> Vec<PlannedEvent> {
    let Some(outbox) = c.outbox() else { return Vec::new() };
    outbox
        .pending
        .iter()
        .filter_map(|p| {
            plan(p).map(|(action, changes)| PlannedEvent {
                record_type: p.record_type,
                record_id: p.id,
                action,
                changes,
            })
        })
        .collect()
}

/// Event rows per INSERT statement: one statement per chunk instead of one per event (a bulk
/// transaction has thousands), well under both databases' bound-parameter limits.
const ROWS_PER_INSERT: usize = 100;
/// Columns of an event row as [`flush`] inserts it.
const INSERT_COLUMNS: usize = 12;

/// Appends the events of the open transaction; called by the store just before it commits.
pub(crate) async fn flush<C: Conn>(c: &mut C) -> StoreResult<()> {
    let Some(outbox) = c.outbox() else { return Ok(()) };
    let pending = std::mem::take(outbox);
    let now = Timestamp::now();
    let mut rows: Vec<SqlValue> = Vec::new();
    for p in pending.pending {
        let Some((action, changes)) = plan(&p) else { continue };
        let last = p.after.as_ref().or(p.before.as_ref()).expect("one state is present");
        if action == Action::Purged {
            // A purge erases the record's history too: its values must not outlive it. (The
            // rows still queued in `rows` are other records': one event per record.)
            c.execute(
                "DELETE FROM record_changes WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3",
                &[
                    SqlValue::text(p.actor.tenant.clone()),
                    SqlValue::text(p.record_type.api_name()),
                    SqlValue::text(p.id.canonical()),
                ],
            )
            .await?;
        }
        rows.extend([
            SqlValue::text(uuid::Uuid::now_v7().to_string()),
            SqlValue::text(p.actor.tenant.clone()),
            SqlValue::opt_text(last.meta.app_id.clone()),
            SqlValue::text(p.record_type.api_name()),
            SqlValue::text(p.id.canonical()),
            SqlValue::text(action.as_str()),
            SqlValue::text(p.actor.kind.as_str()),
            SqlValue::text(p.actor.subject.clone()),
            SqlValue::opt_text(p.actor.request_id.clone()),
            SqlValue::Int(last.meta.version),
            SqlValue::Text(compact(changes).to_string()),
            SqlValue::Int(now.millis()),
        ]);
        if rows.len() == ROWS_PER_INSERT * INSERT_COLUMNS {
            insert_events(c, &std::mem::take(&mut rows)).await?;
        }
    }
    if !rows.is_empty() {
        insert_events(c, &rows).await?;
    }
    Ok(())
}

/// How an event's changes are stored: each `{"old", "new"}` as `[new]` when `old` is null
/// (every field of a created record) and as `[old, new]` otherwise. A created account's
/// event is about half the size of the `{"old": null, "new": …}` objects, which were most of
/// the outbox's bytes. Rows written before this format hold those objects; [`expand`] reads
/// both, so nothing is migrated.
fn compact(changes: Map<String, Json>) -> Json {
    let stored = changes
        .into_iter()
        .map(|(key, change)| {
            let value = match change {
                Json::Object(mut pair) => {
                    let (old, new) =
                        (pair.remove("old").unwrap_or(Json::Null), pair.remove("new").unwrap_or(Json::Null));
                    if old.is_null() { Json::Array(vec![new]) } else { Json::Array(vec![old, new]) }
                }
                other => other,
            };
            (key, value)
        })
        .collect();
    Json::Object(stored)
}

/// The `{"old", "new"}` changes of a stored event, in either stored form (see [`compact`]).
fn expand(stored: Map<String, Json>) -> Map<String, Json> {
    stored
        .into_iter()
        .map(|(key, value)| {
            let change = match value {
                Json::Array(pair) => {
                    let mut pair = pair.into_iter();
                    match (pair.next(), pair.next()) {
                        (Some(new), None) => json!({"old": null, "new": new}),
                        (Some(old), Some(new)) => json!({"old": old, "new": new}),
                        (None, _) => json!({"old": null, "new": null}),
                    }
                }
                legacy => legacy,
            };
            (key, change)
        })
        .collect()
}

/// Inserts event rows (`INSERT_COLUMNS` values each) in one statement. Rows take their `seq`
/// in the order given, so feed order is the order the records were first touched.
async fn insert_events<C: Conn>(c: &mut C, values: &[SqlValue]) -> StoreResult<()> {
    let n = values.len() / INSERT_COLUMNS;
    // The statement text depends only on the row count: a full chunk's is built once.
    static FULL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| insert_sql(ROWS_PER_INSERT));
    let sql = if n == ROWS_PER_INSERT { std::borrow::Cow::Borrowed(FULL.as_str()) } else { insert_sql(n).into() };
    c.execute(&sql, values).await?;
    Ok(())
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO record_changes (event_id, tenant_id, app_id, record_type, record_id, action, actor_type, \
         actor_id, request_id, version, changes, occurred_at) VALUES ",
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for col in 0..INSERT_COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * INSERT_COLUMNS + col + 1));
        }
        sql.push(')');
    }
    sql
}

/// One change event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub position: Position,
    pub id: String,
    pub app_id: Option<String>,
    pub record_type: RecordType,
    pub record_id: RecordId,
    pub action: Action,
    pub version: i64,
    /// Change key → `{"old", "new"}` (see [`corral_core::change`]).
    pub changes: Map<String, Json>,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub request_id: Option<String>,
    pub occurred_at: Timestamp,
}

const COLUMNS: &str = "xid, seq, event_id, app_id, record_type, record_id, action, version, changes, actor_type, actor_id, request_id, occurred_at";

fn decode(mut r: crate::db::Row) -> StoreResult<ChangeEvent> {
    let corrupt = || StoreError::Internal("stored change event is malformed".into());
    let record_type = r.text(4).and_then(|s| RecordType::from_api_name(&s)).ok_or_else(corrupt)?;
    Ok(ChangeEvent {
        position: (r.int(0).ok_or_else(corrupt)?, r.int(1).ok_or_else(corrupt)?),
        id: r.text(2).ok_or_else(corrupt)?,
        app_id: r.text(3),
        record_type,
        record_id: r.text(5).and_then(|s| RecordId::parse(record_type, &s)).ok_or_else(corrupt)?,
        action: r.text(6).and_then(|s| Action::parse(&s)).ok_or_else(corrupt)?,
        version: r.int(7).ok_or_else(corrupt)?,
        changes: match r.text(8).map(|s| serde_json::from_str(&s)) {
            Some(Ok(Json::Object(m))) => expand(m),
            _ => return Err(corrupt()),
        },
        actor_kind: ActorKind::parse(&r.text(9).unwrap_or_default()),
        actor_id: r.text(10).unwrap_or_default(),
        request_id: r.text(11),
        occurred_at: Timestamp(r.int(12).ok_or_else(corrupt)?),
    })
}

/// One page of the feed.
#[derive(Debug)]
pub struct FeedPage {
    pub events: Vec<ChangeEvent>,
    /// Where the next read starts: after the last event, or `after` when none was found.
    pub next: Position,
}

/// Events of `types` visible to `actor` after `after` (from the oldest retained one without
/// it), oldest first. A position older than what retention has deleted is `410
/// cursor_expired`: events after it are gone.
pub async fn feed<C: Conn>(
    c: &mut C,
    actor: &Actor,
    types: &[RecordType],
    after: Option<Position>,
    limit: usize,
) -> StoreResult<FeedPage> {
    let mut q = crate::db::SqlBuilder::new(format!("SELECT {COLUMNS} FROM record_changes"));
    let t = q.bind(SqlValue::text(actor.tenant.clone()));
    q.push(&format!(" WHERE tenant_id = {t}"));
    if let Some(app) = &actor.app {
        let a = q.bind(SqlValue::text(app.clone()));
        q.push(&format!(" AND app_id = {a}"));
    }
    let names: Vec<String> = types.iter().map(|rt| q.bind(SqlValue::text(rt.api_name()))).collect();
    q.push(&format!(" AND record_type IN ({})", names.join(", ")));
    let (x, s) = after.unwrap_or((0, 0));
    let (px, ps) = (q.bind(SqlValue::Int(x)), q.bind(SqlValue::Int(s)));
    q.push(&format!(" AND (xid > {px} OR (xid = {px} AND seq > {ps}))"));
    if c.dialect() == Dialect::Postgres {
        // Only transactions that can no longer commit: see the module documentation.
        q.push(" AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint");
    }
    q.push(&format!(" ORDER BY xid, seq LIMIT {limit}"));
    let events = c.query(&q.sql, &q.params).await?.into_iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
    // Read after the events: a prune that raced with them shows here.
    let pruned = c
        .query_opt("SELECT xid, seq FROM record_changes_pruned WHERE id = 1", &[])
        .await?
        .map(|mut r| (r.int(0).unwrap_or(0), r.int(1).unwrap_or(0)))
        .unwrap_or((0, 0));
    if after.is_some_and(|after| after < pruned) {
        return Err(CoreError::new(
            ErrorCode::CursorExpired,
            "events after this cursor are past the retention period; start again without `after`",
        )
        .into());
    }
    // With nothing to show, a reader that started without `after` resumes at the retention
    // horizon: resuming at the very start would be a position retention already passed.
    let next = events.last().map(|e| e.position).unwrap_or_else(|| (x, s).max(pruned));
    Ok(FeedPage { events, next })
}

/// One page of a record's history, newest first, before the position `before`. The record
/// must be visible to `actor` as reading it would find it (archived ones only with
/// `include_archived`): 404 otherwise.
pub async fn history<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    include_archived: bool,
    before: Option<Position>,
    limit: usize,
) -> StoreResult<(Vec<ChangeEvent>, Option<Position>)> {
    if crate::records::get(c, actor, rt, id, include_archived, false).await?.is_none() {
        return Err(CoreError::record_not_found().into());
    }
    let mut q = crate::db::SqlBuilder::new(format!("SELECT {COLUMNS} FROM record_changes"));
    let t = q.bind(SqlValue::text(actor.tenant.clone()));
    let r = q.bind(SqlValue::text(rt.api_name()));
    let i = q.bind(SqlValue::text(id.canonical()));
    q.push(&format!(" WHERE tenant_id = {t} AND record_type = {r} AND record_id = {i}"));
    if let Some((x, s)) = before {
        let (px, ps) = (q.bind(SqlValue::Int(x)), q.bind(SqlValue::Int(s)));
        q.push(&format!(" AND (xid < {px} OR (xid = {px} AND seq < {ps}))"));
    }
    q.push(&format!(" ORDER BY xid DESC, seq DESC LIMIT {}", limit + 1));
    let rows = c.query(&q.sql, &q.params).await?;
    let more = rows.len() > limit;
    let events = rows.into_iter().take(limit).map(decode).collect::<StoreResult<Vec<_>>>()?;
    let next = if more { events.last().map(|e| e.position) } else { None };
    Ok((events, next))
}

/// Deletes events older than `cutoff` and remembers the newest position deleted, so that
/// cursors before it answer `410 cursor_expired`. Returns how many were deleted.
pub async fn prune<C: Conn>(c: &mut C, cutoff: Timestamp) -> StoreResult<u64> {
    let rows = c
        .query(
            "DELETE FROM record_changes WHERE occurred_at < $1 RETURNING xid, seq",
            &[SqlValue::Int(cutoff.millis())],
        )
        .await?;
    let deleted = rows.len() as u64;
    let Some(newest) = rows.into_iter().filter_map(|mut r| Some((r.int(0)?, r.int(1)?))).max() else {
        return Ok(0);
    };
    c.execute(
        "UPDATE record_changes_pruned SET xid = $1, seq = $2 WHERE id = 1 AND (xid < $1 OR (xid = $1 AND seq < $2))",
        &[SqlValue::Int(newest.0), SqlValue::Int(newest.1)],
    )
    .await?;
    Ok(deleted)
}

/// The JSON of an edge in a relationship change: the record at the other end and the role.
pub(crate) fn edge_json(other: RecordId, role: Option<&str>) -> Json {
    json!({"related_record_id": other.canonical(), "role": role})
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value a field, a custom attribute or a relationship change can hold.
    fn json_value() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            "[a-z\"\\[\\]{} ]{0,8}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::btree_map("(old|new|[a-z]{1,4})", inner, 0..3)
                    .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Stored compactly and read back, every change is the `{"old", "new"}` it was,
        /// whatever the values (nulls, arrays, objects that look like changes).
        #[test]
        fn changes_read_back_as_they_were_noted(
            pairs in prop::collection::btree_map("[a-z_.]{1,12}", (json_value(), json_value()), 0..8)
        ) {
            let changes: Map<String, Json> =
                pairs.into_iter().map(|(k, (old, new))| (k, json!({"old": old, "new": new}))).collect();
            let stored = compact(changes.clone()).to_string();
            let Json::Object(read) = serde_json::from_str(&stored).unwrap() else { panic!("{stored}") };
            prop_assert_eq!(expand(read), changes);
        }
    }

    #[test]
    fn a_created_field_is_stored_without_its_null_old_value_and_legacy_rows_still_read() {
        let changes: Map<String, Json> = [
            ("display_name".to_owned(), json!({"old": null, "new": "Acme"})),
            ("employee_count".to_owned(), json!({"old": 3, "new": null})),
        ]
        .into_iter()
        .collect();
        assert_eq!(compact(changes.clone()).to_string(), r#"{"display_name":["Acme"],"employee_count":[3,null]}"#);
        // Written before the compact form: the objects themselves.
        let Json::Object(legacy) =
            json!({"display_name": {"old": null, "new": "Acme"}, "employee_count": {"old": 3, "new": null}})
        else {
            unreachable!()
        };
        assert_eq!(expand(legacy), changes);
    }
}
