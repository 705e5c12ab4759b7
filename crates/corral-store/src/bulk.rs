//! Batched writes for the streaming bulk route (docs/API.md, Bulk import): many creates and
//! asserts in one write transaction, each inside its own SAVEPOINT so a refused line is
//! undone alone and never fails its neighbours.
//!
//! Every line goes through [`records::create`] / [`records::assert`], the same operations the
//! single-record calls run, so a bulk line behaves (and is recorded) exactly like one call.

use crate::StoreResult;
use crate::db::Conn;
use crate::records::{self, MatchKey};
use corral_core::{Actor, Record, RecordType, RecordWrite, Timestamp};
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

/// Runs `ops` in order on `c` (an open write transaction), stopping early once `budget` has
/// passed (after at least one line): the outcomes are for a prefix of `ops`, and the caller
/// writes the rest in its next transaction. The time bound keeps each transaction short on a
/// slow or loaded database, so results (and with them, progress on the connection) keep
/// flowing. The outer error is the batch failing as a whole (the connection broke, a savepoint
/// could not be taken): the caller's transaction then rolls back and no line of it is written.
pub async fn run<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    ops: &[BulkOp],
    budget: Duration,
) -> StoreResult<Vec<BulkOutcome>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(ops.len());
    let mut open = false;
    for op in ops {
        if open && started.elapsed() >= budget {
            break;
        }
        // One savepoint name, released before the next is taken (never nested: PostgreSQL
        // slows down past 64 open subtransactions). Release and take in one round trip.
        let begin = if open { "RELEASE SAVEPOINT bulk_line; SAVEPOINT bulk_line" } else { "SAVEPOINT bulk_line" };
        c.execute_batch(begin).await?;
        open = true;
        // Each line is stamped when it runs, as its single call would be.
        let now = Timestamp::now();
        let outcome = match op {
            BulkOp::Create(write) => records::create(c, actor, rt, write, now).await.map(|r| (r, true)),
            BulkOp::Assert(keys, write) => records::assert(c, actor, rt, keys, write, now).await,
        };
        if outcome.is_err() {
            // Undo the line's partial writes; on PostgreSQL this also clears the aborted
            // state. The savepoint stays, to be released with the next line's. A broken
            // connection fails here or at the next SAVEPOINT: the whole batch, then.
            c.execute_batch("ROLLBACK TO SAVEPOINT bulk_line").await?;
        }
        out.push(outcome);
    }
    if open {
        c.execute_batch("RELEASE SAVEPOINT bulk_line").await?;
    }
    Ok(out)
}
