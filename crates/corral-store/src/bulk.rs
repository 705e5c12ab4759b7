//! Batched writes for the streaming bulk route (docs/API.md, Bulk import): many creates and
//! asserts in one write transaction, a refused line undone alone so it never fails its
//! neighbours.
//!
//! Every line goes through [`records::create`] / [`records::assert`], the same operations the
//! single-record calls run, so a bulk line behaves (and is recorded) exactly like one call.
//!
//! Lines run in groups under one SAVEPOINT (up to [`MAX_GROUP`] / [`MAX_GROUP_SQLITE`]
//! lines), not one savepoint per line: on SQLite every SAVEPOINT and RELEASE flushes FTS5's
//! pending search-index rows into a new segment (which the index then keeps merging); on
//! PostgreSQL a savepoint is a round trip. When a line
//! fails, its group is rolled back and replayed: the lines before it as a group again, then
//! the failing line alone in its own savepoint, where its error is final. So a line's outcome
//! is always decided in the same database state as with one savepoint per line, and the rows
//! and events written are those of the lines that succeed, exactly as line by line.

use crate::db::{Conn, Dialect};
use crate::records::{self, MatchKey};
use crate::{StoreResult, batch};
use corral_core::{Actor, Record, RecordType, RecordWrite, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One line of a bulk request, parsed and validated.
#[derive(Debug, Clone)]
pub enum BulkOp {
    /// `POST /api/v2/{type}`.
    Create(RecordWrite),
    /// `POST /api/v2/{type}/_assert`: match keys and the attributes (validated as a patch).
    Assert(Vec<MatchKey>, RecordWrite),
}

/// What one line did: the record and whether it was created (`false`: an assert updated it).
pub type BulkOutcome = StoreResult<(Record, bool)>;

/// Most lines under one savepoint on PostgreSQL (where each savepoint is a round trip). A
/// failed line costs re-running the lines of its group before it; the group size halves
/// after a failure and doubles back after a clean group.
pub const MAX_GROUP: usize = 64;
/// Most lines under one savepoint on SQLite. Smaller: while a savepoint is open, every page
/// its lines change is copied to the in-memory statement journal, and SQLite walks that
/// journal from its start each time a statement inside it ends (measured: 64 lines per
/// savepoint made imports slower than one).
pub const MAX_GROUP_SQLITE: usize = 8;

/// Lines planned together by the batch write path ([`batch::plan`]): one transaction's
/// worth, and few enough that their key lookups stay a handful of statements.
pub const PLAN_LINES: usize = 512;

/// Runs `ops` in order on `c` (an open write transaction), stopping early once `budget` has
/// passed (after at least one line): the outcomes are for a prefix of `ops`, and the caller
/// writes the rest in its next transaction. The time bound keeps each transaction short on a
/// slow or loaded database, so results (and with them, progress on the connection) keep
/// flowing. The outer error is the batch failing as a whole (the connection broke, a savepoint
/// could not be taken): the caller's transaction then rolls back and no line of it is written.
///
/// Runs of plain creates are written together ([`crate::batch`]); the other lines go one by
/// one, grouped under savepoints ([`run_grouped`]). A batch that fails (a key a concurrent
/// transaction claimed) is rolled back and its lines go one by one too.
pub async fn run<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    ops: &[BulkOp],
    budget: Duration,
) -> StoreResult<Vec<BulkOutcome>> {
    let max_group = match c.dialect() {
        Dialect::Sqlite => MAX_GROUP_SQLITE,
        Dialect::Postgres => MAX_GROUP,
    };
    let started = Instant::now();
    let mut out: Vec<BulkOutcome> = Vec::with_capacity(ops.len());
    while out.len() < ops.len() && (out.is_empty() || started.elapsed() < budget) {
        let rest = &ops[out.len()..];
        let now = Timestamp::now();
        let plan = batch::plan(c, actor, rt, &rest[..rest.len().min(PLAN_LINES)], |_| now).await?;
        let (mut done, mut single) = (0, plan.single);
        if !plan.batch.is_empty() && c.dialect() == Dialect::Sqlite {
            // No savepoint on SQLite: the plan read the keys in this same write transaction,
            // and SQLite has one writer, so nothing can claim them before the batch writes.
            // The batch fails only with the database (I/O, a full disk), which fails the whole
            // transaction anyway. A savepoint here made SQLite copy every page the batch
            // changed to its statement journal (measured: 9 % of an import's CPU).
            batch::write(c, actor, &plan.batch).await?;
            BATCHED_LINES.fetch_add(plan.batch.len() as u64, Ordering::Relaxed);
            done = plan.batch.len();
            out.extend(plan.batch.into_iter().map(|record| Ok((record, true))));
        } else if !plan.batch.is_empty() {
            c.execute_batch("SAVEPOINT bulk_batch").await?;
            if let Some(outbox) = c.outbox() {
                outbox.savepoint();
            }
            match batch::write(c, actor, &plan.batch).await {
                Ok(()) => {
                    c.execute_batch("RELEASE SAVEPOINT bulk_batch").await?;
                    BATCHED_LINES.fetch_add(plan.batch.len() as u64, Ordering::Relaxed);
                    done = plan.batch.len();
                    out.extend(plan.batch.into_iter().map(|record| Ok((record, true))));
                }
                Err(e) => {
                    tracing::debug!(error = %e, lines = plan.batch.len(), "bulk batch refused; writing its lines one by one");
                    c.execute_batch("ROLLBACK TO SAVEPOINT bulk_batch; RELEASE SAVEPOINT bulk_batch").await?;
                    if let Some(outbox) = c.outbox() {
                        outbox.rollback_to_savepoint();
                    }
                    single += plan.batch.len();
                }
            }
        }
        // The plan's one-by-one lines follow at once: that path decides each line in the
        // state the lines before it left, whatever the plan read.
        if single == 0 || (!out.is_empty() && started.elapsed() >= budget) {
            continue;
        }
        let left = budget.saturating_sub(started.elapsed());
        out.extend(run_grouped(c, actor, rt, &rest[done..done + single], left, max_group).await?);
    }
    Ok(out)
}

/// Lines written by the batch write path since the process started (tests check that it
/// really ran).
static BATCHED_LINES: AtomicU64 = AtomicU64::new(0);

/// How many lines the batch write path has written in this process.
pub fn batched_lines() -> u64 {
    BATCHED_LINES.load(Ordering::Relaxed)
}

/// [`run`] with at most `max_group` lines per savepoint (1: one savepoint per line, the
/// reference behaviour the grouped runs are tested against).
pub async fn run_grouped<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    ops: &[BulkOp],
    budget: Duration,
    max_group: usize,
) -> StoreResult<Vec<BulkOutcome>> {
    let max_group = max_group.max(1);
    let started = Instant::now();
    let mut out: Vec<BulkOutcome> = Vec::with_capacity(ops.len());
    let mut open = false;
    let mut size = max_group.min(8);
    // Group sizes owed by a replay (front first), before `size` applies again.
    let mut replay: Vec<usize> = Vec::new();
    'groups: while out.len() < ops.len() {
        if !out.is_empty() && started.elapsed() >= budget {
            break;
        }
        let start = out.len();
        let want = replay.pop().unwrap_or(size);
        let end = (start + want).min(ops.len());
        // One savepoint name, released before the next is taken (never nested: PostgreSQL
        // slows down past 64 open subtransactions). Release and take in one round trip.
        let begin = if open { "RELEASE SAVEPOINT bulk_line; SAVEPOINT bulk_line" } else { "SAVEPOINT bulk_line" };
        c.execute_batch(begin).await?;
        if let Some(outbox) = c.outbox() {
            outbox.savepoint();
        }
        open = true;
        for (k, op) in ops[start..end].iter().enumerate() {
            if (!out.is_empty() || k > 0) && started.elapsed() >= budget {
                break 'groups;
            }
            let outcome = line(c, actor, rt, op).await;
            if outcome.is_err() {
                // Undo the group's writes (on PostgreSQL this also clears the aborted state),
                // and its change events with them. The savepoint stays, to be released with
                // the next group's. A broken connection fails here or at the next SAVEPOINT:
                // the whole batch, then.
                c.execute_batch("ROLLBACK TO SAVEPOINT bulk_line").await?;
                if let Some(outbox) = c.outbox() {
                    outbox.rollback_to_savepoint();
                }
                if k == 0 {
                    // It ran first in its savepoint: failed alone, its error stands.
                    out.push(outcome);
                } else {
                    // Replay: the k lines before it as a group, then it alone.
                    out.truncate(start);
                    replay.push(1);
                    replay.push(k);
                }
                size = (size / 2).max(1);
                continue 'groups;
            }
            out.push(outcome);
        }
        if replay.is_empty() {
            size = (size * 2).min(max_group);
        }
    }
    if open {
        c.execute_batch("RELEASE SAVEPOINT bulk_line").await?;
    }
    Ok(out)
}

/// One line, stamped when it runs, as its single call would be.
async fn line<C: Conn>(c: &mut C, actor: &Actor, rt: RecordType, op: &BulkOp) -> BulkOutcome {
    let now = Timestamp::now();
    match op {
        BulkOp::Create(write) => records::create(c, actor, rt, write, now).await.map(|r| (r, true)),
        BulkOp::Assert(keys, write) => records::assert(c, actor, rt, keys, write, now).await,
    }
}
