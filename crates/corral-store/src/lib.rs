//! Corral's record store: one [`Store`] in front of one backend per database.
//!
//! Operations are written once (in [`records`], [`users`], …) against the [`db::Conn`]
//! trait; the `Store` methods pick the backend, open a read connection or a write
//! transaction, and run them. Every method takes the tenant (usually inside an
//! [`Actor`]), so no query can forget it.

pub mod api_keys;
mod batch;
pub mod bulk;
pub mod changes;
pub mod db;
pub mod duplicates;
pub mod edges;
pub mod idempotency;
mod keys;
pub mod merge;
mod migrate;
pub mod postgres;
pub mod records;
pub mod schemas;
pub mod seed;
pub mod settings;
pub mod sqlite;
pub mod testing;
pub mod users;
pub mod webhooks;

use corral_core::TenantId;
use corral_core::list::Plan;
use corral_core::{Actor, CoreError, ErrorCode, Record, RecordId, RecordType, RecordWrite, Timestamp};
use db::{Conn, DbError};
use serde_json::Value as Json;
use std::path::PathBuf;

pub use api_keys::ApiKey;
pub use bulk::{BulkOp, BulkOutcome};
pub use idempotency::{IdempotencyKey, StoredResponse};
pub use postgres::PgOptions;
pub use records::{ContactList, DomainChange, ItemChange, MatchKey, Preconditions};
pub use settings::TenantSettings;
pub use sqlite::SqliteSnapshot;
pub use users::{User, UserChanges};

/// What a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule of the domain refused the operation; the client can act on it.
    #[error(transparent)]
    Domain(#[from] CoreError),
    /// The database cannot be reached, or is too busy: try again later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: logged, never shown to clients.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => StoreError::Unavailable(m),
            DbError::UniqueViolation(m) => StoreError::Internal(format!("unexpected unique violation: {m}")),
            DbError::Other(m) => StoreError::Internal(m),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where the data lives, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://path`, `sqlite:path` or `postgres://…` / `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| "database URL must start with sqlite:// or postgres://".to_owned())?;
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err("sqlite URL needs a file path".into());
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }
}

#[expect(clippy::large_enum_variant, reason = "one per store, which lives as long as the process")]
enum Backend {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PgDb),
}

/// The record store.
pub struct Store {
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Sqlite(db) => f.debug_tuple("Store").field(db).finish(),
            Backend::Postgres(db) => f.debug_tuple("Store").field(db).finish(),
        }
    }
}

/// Runs `$body` (an expression over `$c: &mut impl Conn`) in a write transaction: committed
/// when it returns `Ok`, rolled back otherwise. The one place that knows each backend's
/// transaction type.
macro_rules! in_write {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(db) => in_write!(@run db.begin().await?, $c, $body),
            Backend::Postgres(db) => in_write!(@run db.begin().await?, $c, $body),
        }
    };
    (@run $begin:expr, $c:ident, $body:expr) => {{
        let mut tx = $begin;
        let result = {
            let $c = &mut tx;
            $body.await
        };
        // The transaction's change events go into the outbox with it (crate::changes).
        let result = match result {
            Ok(v) => match changes::flush(&mut tx).await {
                Ok(()) => Ok(v),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                // The operation's error matters more than a failed rollback.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }};
}

/// Runs `$body` in a write transaction that is always rolled back: a dry run sees every
/// change the operation makes, and none of them stays.
macro_rules! in_rollback {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(db) => in_rollback!(@run db.begin().await?, $c, $body),
            Backend::Postgres(db) => in_rollback!(@run db.begin().await?, $c, $body),
        }
    };
    (@run $begin:expr, $c:ident, $body:expr) => {{
        let mut tx = $begin;
        let result = {
            let $c = &mut tx;
            $body.await
        };
        tx.rollback().await?;
        result
    }};
}

/// Runs `$body` on a read connection.
macro_rules! in_read {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(db) => {
                let mut reader = db.reader()?;
                let $c = &mut reader;
                $body.await
            }
            Backend::Postgres(db) => {
                let mut reader = db.reader().await?;
                let $c = &mut reader;
                $body.await
            }
        }
    };
}

/// The database connections of a store at one moment (for `/metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    pub dialect: db::Dialect,
    /// Connections open: PostgreSQL pool connections; SQLite read connections plus the writer.
    pub connections: u64,
    /// Open connections idle in the pool (SQLite: idle read connections).
    pub idle: u64,
    /// The most connections the pool opens (PostgreSQL); SQLite opens readers on demand.
    pub max: Option<u64>,
    /// Callers waiting: for a pooled connection (PostgreSQL), for the writer (SQLite).
    pub waiting: u64,
    /// SQLite's writer counters.
    pub sqlite: Option<SqliteSnapshot>,
}

/// Reads a store's [`PoolStats`]; cheap to clone, and independent of the `Store`'s lifetime.
#[derive(Clone)]
pub struct PoolProbe(Probe);

#[derive(Clone)]
enum Probe {
    Sqlite(std::sync::Arc<sqlite::SqliteStats>),
    Postgres(deadpool_postgres::Pool),
}

impl std::fmt::Debug for PoolProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PoolProbe").field(&self.stats()).finish()
    }
}

impl PoolProbe {
    /// The figures now.
    pub fn stats(&self) -> PoolStats {
        match &self.0 {
            Probe::Sqlite(stats) => {
                let s = stats.snapshot();
                PoolStats {
                    dialect: db::Dialect::Sqlite,
                    connections: s.readers_open + 1,
                    idle: s.readers_idle,
                    max: None,
                    waiting: s.writer_waiting,
                    sqlite: Some(s),
                }
            }
            Probe::Postgres(pool) => {
                let s = pool.status();
                PoolStats {
                    dialect: db::Dialect::Postgres,
                    connections: s.size as u64,
                    idle: s.available as u64,
                    max: Some(s.max_size as u64),
                    waiting: s.waiting as u64,
                    sqlite: None,
                }
            }
        }
    }
}

/// The record a new edge points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeTarget {
    Id(RecordId),
    /// `related_record_match`: a unique key of the target and its value.
    Match(String, String),
}

/// The outcome of a create that may carry an `Idempotency-Key`.
#[derive(Debug)]
pub enum Created {
    /// Created now; `body` is the rendered response (also stored under the key, if any).
    New(Box<Record>, String),
    /// The key was seen before with the same request: its stored response.
    Replayed(StoredResponse),
}

impl Store {
    /// Opens the database named by `url` with default PostgreSQL pool settings.
    pub async fn open(url: &DatabaseUrl) -> StoreResult<Store> {
        Self::open_with(url, &PgOptions::default()).await
    }

    /// Opens the database named by `url`; `pg` sizes the PostgreSQL pool.
    pub async fn open_with(url: &DatabaseUrl, pg: &PgOptions) -> StoreResult<Store> {
        let backend = match url {
            DatabaseUrl::Sqlite(path) => Backend::Sqlite(sqlite::SqliteDb::open(path)?),
            DatabaseUrl::Postgres(url) => Backend::Postgres(postgres::PgDb::open(url, pg)?),
        };
        Ok(Store { backend })
    }

    /// A handle that reads this store's connection figures (for metrics).
    pub fn pool_probe(&self) -> PoolProbe {
        PoolProbe(match &self.backend {
            Backend::Sqlite(db) => Probe::Sqlite(db.stats()),
            Backend::Postgres(db) => Probe::Postgres(db.pool()),
        })
    }

    /// Which database this store runs on.
    pub fn dialect(&self) -> db::Dialect {
        match &self.backend {
            Backend::Sqlite(_) => db::Dialect::Sqlite,
            Backend::Postgres(_) => db::Dialect::Postgres,
        }
    }

    /// Applies pending migrations, then (SQLite) lets the planner refresh stale statistics.
    pub async fn migrate(&self) -> StoreResult<()> {
        in_write!(self, |c| migrate::run(c))?;
        in_write!(self, |c| schemas::index_all(c))?;
        // Keys of records written before duplicate detection existed; batch by batch, each
        // in a transaction of its own, so a large table does not hold the writer long.
        while in_write!(self, |c| duplicates::backfill_batch(c))? {}
        if self.dialect() == db::Dialect::Sqlite {
            in_write!(self, |c| async { c.execute_batch("PRAGMA optimize").await.map_err(StoreError::from) })?;
        }
        Ok(())
    }

    /// Refreshes the planner's statistics now (`ANALYZE`, on either database). In service,
    /// SQLite gets `PRAGMA optimize` after every migrate (at start), and PostgreSQL's
    /// autovacuum keeps its statistics fresh.
    pub async fn analyze(&self) -> StoreResult<()> {
        // Table by table: a bare ANALYZE on PostgreSQL would take every table of every schema.
        const TABLES: &[&str] =
            &["accounts", "contacts", "account_domains", "contact_emails", "account_contacts", "record_tags", "users"];
        in_write!(self, |c| async {
            for table in TABLES {
                c.execute_batch(&format!("ANALYZE {table}")).await?;
            }
            Ok::<(), StoreError>(())
        })
    }

    /// Checks the database answers (for `/ready`).
    pub async fn ping(&self) -> StoreResult<()> {
        in_read!(self, |c| async { c.query("SELECT 1", &[]).await.map(|_| ()).map_err(StoreError::from) })
    }

    // ----- records -----

    /// Creates many records in one transaction (for [`seed`]): runs of plain creates through
    /// the batch write path, the others through the ordinary create path, as bulk imports
    /// write them. Record `i` is stamped `start + i` ms. All or none are created.
    pub async fn create_many(
        &self,
        actor: &Actor,
        rt: RecordType,
        writes: &[RecordWrite],
        start: Timestamp,
    ) -> StoreResult<()> {
        let ops: Vec<BulkOp> = writes.iter().cloned().map(BulkOp::Create).collect();
        let stamp = |i: usize| Timestamp(start.millis() + i as i64);
        in_write!(self, |c| async {
            let mut done = 0;
            while done < ops.len() {
                let window = &ops[done..ops.len().min(done + bulk::PLAN_LINES)];
                let plan = batch::plan(c, actor, rt, window, |i| stamp(done + i)).await?;
                batch::write(c, actor, &plan.batch).await?;
                done += plan.batch.len();
                for _ in 0..plan.single {
                    records::create(c, actor, rt, &writes[done], stamp(done)).await?;
                    done += 1;
                }
            }
            Ok::<(), StoreError>(())
        })
    }

    /// A record visible to `actor`; 404 `record_not_found` otherwise.
    pub async fn get_record(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        include_deleted: bool,
    ) -> StoreResult<Record> {
        in_read!(self, |c| async {
            match records::get(c, actor, rt, id, include_deleted, false).await? {
                Some(record) => Ok(Some(record)),
                // A merged-away id reads as the record it was merged into (whose id differs).
                None if rt != RecordType::User => match merge::alias_target(c, &actor.tenant, rt, id).await? {
                    Some(winner) => records::get(c, actor, rt, winner, false, false).await,
                    None => Ok(None),
                },
                None => Ok(None),
            }
        })?
        .ok_or_else(|| CoreError::record_not_found().into())
    }

    /// Undoes a merge; see [`merge::unmerge`].
    pub async fn unmerge_records(
        &self,
        actor: &Actor,
        rt: RecordType,
        merge_id: &str,
    ) -> StoreResult<merge::UnmergeOutcome> {
        in_write!(self, |c| merge::unmerge(c, actor, rt, merge_id, Timestamp::now()))
    }

    /// Merges records (docs/API.md "Merging records"); a dry run reports the same outcome and
    /// writes nothing. See [`merge::run`].
    pub async fn merge_records(
        &self,
        actor: &Actor,
        rt: RecordType,
        spec: &merge::MergeSpec,
        dry_run: bool,
    ) -> StoreResult<merge::MergeOutcome> {
        let now = Timestamp::now();
        if dry_run {
            in_rollback!(self, |c| merge::run(c, actor, rt, spec, true, now))
        } else {
            in_write!(self, |c| merge::run(c, actor, rt, spec, false, now))
        }
    }

    /// One page of records; see [`records::list`].
    pub async fn list_records(
        &self,
        actor: &Actor,
        rt: RecordType,
        plan: &Plan,
        after: Option<&[Json]>,
        limit: usize,
    ) -> StoreResult<(Vec<Record>, Option<Vec<Json>>)> {
        in_read!(self, |c| records::list(c, actor, rt, plan, after, limit))
    }

    /// One page of duplicate candidates; see [`duplicates::candidates`].
    pub async fn duplicate_candidates(
        &self,
        actor: &Actor,
        rt: RecordType,
        filter: Option<&corral_core::filter::Cond>,
        min_score: f64,
        after: Option<duplicates::Position>,
        limit: usize,
    ) -> StoreResult<(Vec<duplicates::Group>, Option<duplicates::Position>)> {
        in_read!(self, |c| duplicates::candidates(c, actor, rt, filter, min_score, after, limit))
    }

    /// The database's query plan for one page of `plan` after the position `after` (index
    /// checks; see [`records::explain`]).
    pub async fn explain_list(
        &self,
        actor: &Actor,
        rt: RecordType,
        plan: &Plan,
        after: Option<&[Json]>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        match &self.backend {
            // On a reader, as lists run: the SQLite writer plans without bound values (QPSG,
            // sqlite.rs).
            Backend::Sqlite(db) => records::explain(&mut db.reader()?, actor, rt, plan, after, limit).await,
            Backend::Postgres(_) => in_write!(self, |c| records::explain(c, actor, rt, plan, after, limit)),
        }
    }

    /// The database's query plan for a statement of the write path (index checks; see
    /// [`db::explain`]). On SQLite it is the writer's plan, made without bound values as the
    /// writer's statements are (QPSG, sqlite.rs).
    pub async fn explain_write(&self, q: &db::SqlBuilder) -> StoreResult<Vec<String>> {
        in_write!(self, |c| async { Ok(db::explain(c, q).await?) })
    }

    /// An estimate of how many records match `plan`, and whether it is one; see
    /// [`records::estimate`].
    pub async fn estimate_records(&self, actor: &Actor, rt: RecordType, plan: &Plan) -> StoreResult<(i64, bool)> {
        in_read!(self, |c| records::estimate(c, actor, rt, plan))
    }

    /// How many records match `plan` (exactly).
    pub async fn count_records(&self, actor: &Actor, rt: RecordType, plan: &Plan) -> StoreResult<i64> {
        in_read!(self, |c| records::count(c, actor, rt, plan))
    }

    /// Creates a record; with an idempotency key, replays the first response instead of
    /// creating twice. `render` produces the response body stored under the key.
    pub async fn create_record(
        &self,
        actor: &Actor,
        rt: RecordType,
        write: &RecordWrite,
        key: Option<&IdempotencyKey>,
        render: impl Fn(&Record) -> String + Send + Sync,
    ) -> StoreResult<Created> {
        let now = Timestamp::now();
        in_write!(self, |c| async {
            if let Some(key) = key {
                // Two requests with one key must not both miss the stored response.
                db::lock_name(c, &format!("idempotency:{}:{}:{}", actor.tenant.len(), actor.tenant, key.key)).await?;
            }
            if let Some(key) = key
                && let Some(stored) = idempotency::find(c, &actor.tenant, &key.key, now).await?
            {
                if stored.request_hash != key.request_hash {
                    return Err(CoreError::new(
                        ErrorCode::IdempotencyKeyReused,
                        "this Idempotency-Key was used with a different request",
                    )
                    .into());
                }
                return Ok(Created::Replayed(stored));
            }
            let record = records::create(c, actor, rt, write, now).await?;
            let body = render(&record);
            if let Some(key) = key {
                idempotency::remember(c, &actor.tenant, key, 201, &body, now).await?;
            }
            Ok(Created::New(Box::new(record), body))
        })
    }

    /// Create-or-update by match keys; returns the record and whether it was created.
    pub async fn assert_record(
        &self,
        actor: &Actor,
        rt: RecordType,
        keys: &[MatchKey],
        write: &RecordWrite,
    ) -> StoreResult<(Record, bool)> {
        in_write!(self, |c| records::assert(c, actor, rt, keys, write, Timestamp::now()))
    }

    /// Runs bulk lines in one write transaction, each in its own savepoint, for at most
    /// `budget` (at least one line); see [`bulk::run`]. `Ok` means the lines it returns
    /// outcomes for (a prefix of `ops`) committed, each with its own outcome.
    pub async fn bulk_write(
        &self,
        actor: &Actor,
        rt: RecordType,
        ops: &[BulkOp],
        budget: std::time::Duration,
    ) -> StoreResult<Vec<BulkOutcome>> {
        in_write!(self, |c| bulk::run(c, actor, rt, ops, budget))
    }

    /// [`Store::bulk_write`] with at most `max_group` lines per savepoint (1: a savepoint per
    /// line). For tests that hold the grouped runs to the line-by-line ones.
    #[doc(hidden)]
    pub async fn bulk_write_grouped(
        &self,
        actor: &Actor,
        rt: RecordType,
        ops: &[BulkOp],
        max_group: usize,
    ) -> StoreResult<Vec<BulkOutcome>> {
        in_write!(self, |c| bulk::run_grouped(c, actor, rt, ops, std::time::Duration::MAX, max_group))
    }

    pub async fn update_record(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        write: &RecordWrite,
        pre: Preconditions,
    ) -> StoreResult<Record> {
        in_write!(self, |c| async {
            let id = merge::resolve(c, actor, rt, id).await?;
            records::update(c, actor, rt, id, write, pre, Timestamp::now()).await
        })
    }

    /// Changes one domain of an account; see [`records::change_domain`].
    pub async fn change_domain(
        &self,
        actor: &Actor,
        id: RecordId,
        domain: &str,
        change: records::DomainChange,
        pre: Preconditions,
    ) -> StoreResult<(Record, bool)> {
        in_write!(self, |c| records::change_domain(c, actor, id, domain, change, pre, Timestamp::now()))
    }

    /// Changes one email or phone number of a contact; see [`records::change_contact_item`].
    pub async fn change_contact_item(
        &self,
        actor: &Actor,
        id: RecordId,
        list: ContactList,
        change: ItemChange,
        pre: Preconditions,
    ) -> StoreResult<(Record, Option<String>, bool)> {
        in_write!(self, |c| records::change_contact_item(c, actor, id, list, change, pre, Timestamp::now()))
    }

    // ----- relationships (account contacts <-> contact accounts) -----

    /// A page of `rt` record `id`'s edges; see [`edges::list`].
    pub async fn list_edges(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        after: Option<(i64, RecordId)>,
        limit: usize,
    ) -> StoreResult<(Vec<edges::Edge>, Option<(i64, RecordId)>)> {
        in_read!(self, |c| edges::list(c, actor, rt, id, after, limit))
    }

    /// Adds an edge to `other` (a record id, or a `(key, value)` match); see [`edges::add`].
    pub async fn add_edge(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        other: EdgeTarget,
        change: &edges::EdgeChange,
    ) -> StoreResult<(edges::Edge, bool)> {
        let now = Timestamp::now();
        in_write!(self, |c| async {
            let id = merge::resolve(c, actor, rt, id).await?;
            let other = match other {
                EdgeTarget::Id(other) => {
                    let target = if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account };
                    merge::resolve(c, actor, target, other).await?
                }
                EdgeTarget::Match(key, value) => {
                    let target = if rt == RecordType::Account { RecordType::Contact } else { RecordType::Account };
                    records::resolve_key(c, actor, target, &key, &value, "related_record_match").await?
                }
            };
            edges::add(c, actor, rt, id, other, change, now).await
        })
    }

    pub async fn update_edge(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        other: RecordId,
        change: &edges::EdgeChange,
    ) -> StoreResult<edges::Edge> {
        in_write!(self, |c| edges::update(c, actor, rt, id, other, change, Timestamp::now()))
    }

    pub async fn remove_edge(&self, actor: &Actor, rt: RecordType, id: RecordId, other: RecordId) -> StoreResult<()> {
        in_write!(self, |c| edges::remove(c, actor, rt, id, other, Timestamp::now()))
    }

    pub async fn archive_record(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        pre: Preconditions,
    ) -> StoreResult<Record> {
        in_write!(self, |c| records::archive(c, actor, rt, id, pre, Timestamp::now()))
    }

    pub async fn restore_record(&self, actor: &Actor, rt: RecordType, id: RecordId) -> StoreResult<Record> {
        in_write!(self, |c| async {
            // A merged loser comes back through _unmerge, which also takes its keys and edges
            // back from the winner.
            if let Some(into) = merge::alias_target(c, &actor.tenant, rt, id).await? {
                return Err(CoreError::new(
                    ErrorCode::AlreadyMerged,
                    "this record was merged into another; undo the merge with _unmerge",
                )
                .with("record_id", id.canonical())
                .with("merged_into", into.canonical())
                .into());
            }
            records::restore(c, actor, rt, id, Timestamp::now()).await
        })
    }

    pub async fn purge_record(&self, actor: &Actor, rt: RecordType, id: RecordId) -> StoreResult<()> {
        in_write!(self, |c| records::purge(c, actor, rt, id, Timestamp::now()))
    }

    // ----- change feed -----

    /// A page of the change feed; see [`changes::feed`].
    pub async fn changes(
        &self,
        actor: &Actor,
        types: &[RecordType],
        after: Option<changes::Position>,
        limit: usize,
    ) -> StoreResult<changes::FeedPage> {
        in_read!(self, |c| changes::feed(c, actor, types, after, limit))
    }

    /// A page of a record's history, newest first; see [`changes::history`].
    pub async fn history(
        &self,
        actor: &Actor,
        rt: RecordType,
        id: RecordId,
        include_archived: bool,
        before: Option<changes::Position>,
        limit: usize,
    ) -> StoreResult<(Vec<changes::ChangeEvent>, Option<changes::Position>)> {
        in_read!(self, |c| changes::history(c, actor, rt, id, include_archived, before, limit))
    }

    /// Deletes change events that occurred before `cutoff` (retention); returns how many.
    pub async fn prune_changes(&self, cutoff: Timestamp) -> StoreResult<u64> {
        in_write!(self, |c| async {
            // Merges can be undone while the events they made are kept.
            merge::prune(c, cutoff).await?;
            changes::prune(c, cutoff).await
        })
    }

    // ----- schema registry -----

    /// A record type as `tenant` sees it (stage options, active custom attributes).
    pub async fn schema(&self, tenant: &TenantId, rt: RecordType) -> StoreResult<corral_core::custom::TenantSchema> {
        in_read!(self, |c| schemas::load(c, tenant, rt))
    }

    pub async fn create_attribute(
        &self,
        tenant: &TenantId,
        rt: RecordType,
        def: &corral_core::custom::CustomAttribute,
    ) -> StoreResult<()> {
        in_write!(self, |c| schemas::create(c, tenant, rt, def, Timestamp::now()))
    }

    /// Applies `change` to an active custom attribute's definition and saves it.
    pub async fn update_attribute(
        &self,
        tenant: &TenantId,
        rt: RecordType,
        api_name: &str,
        change: impl FnOnce(&mut corral_core::custom::CustomAttribute) -> Result<(), CoreError> + Send,
    ) -> StoreResult<corral_core::custom::CustomAttribute> {
        in_write!(self, |c| async {
            let mut def = schemas::get(c, tenant, rt, api_name).await?;
            change(&mut def)?;
            schemas::update(c, tenant, rt, &def).await?;
            Ok(def)
        })
    }

    pub async fn archive_attribute(&self, tenant: &TenantId, rt: RecordType, api_name: &str) -> StoreResult<()> {
        in_write!(self, |c| schemas::archive(c, tenant, rt, api_name, Timestamp::now()))
    }

    /// Applies `change` to the option list of a select or stage attribute and saves it.
    pub async fn update_options<R: Send>(
        &self,
        tenant: &TenantId,
        rt: RecordType,
        api_name: &str,
        change: impl FnOnce(&mut Vec<corral_core::schema::Stage>) -> Result<R, CoreError> + Send,
    ) -> StoreResult<R> {
        in_write!(self, |c| async {
            let mut list = schemas::option_list(c, tenant, rt, api_name).await?;
            let out = change(&mut list)?;
            schemas::save_options(c, tenant, rt, api_name, &list).await?;
            Ok(out)
        })
    }

    // ----- users -----

    /// A user of the tenant; 404 `record_not_found` otherwise.
    pub async fn get_user(&self, tenant: &TenantId, id: RecordId) -> StoreResult<User> {
        in_read!(self, |c| users::get(c, tenant, id))?.ok_or_else(|| CoreError::record_not_found().into())
    }

    /// One page of a tenant's users matching `plan`; see [`users::page`].
    pub async fn list_users_page(
        &self,
        tenant: &TenantId,
        plan: &Plan,
        after: Option<&[Json]>,
        limit: usize,
    ) -> StoreResult<(Vec<User>, Option<Vec<Json>>)> {
        in_read!(self, |c| users::page(c, tenant, plan, after, limit))
    }

    pub async fn user_exists(&self, tenant: &TenantId, id: RecordId) -> StoreResult<bool> {
        in_read!(self, |c| users::exists(c, tenant, id))
    }

    pub async fn provision_user(
        &self,
        tenant: &TenantId,
        id: RecordId,
        email: Option<&str>,
        name: Option<&str>,
        subject: &str,
    ) -> StoreResult<()> {
        in_write!(self, |c| users::provision(c, tenant, id, email, name, subject, Timestamp::now()))
    }

    pub async fn add_user(
        &self,
        tenant: &TenantId,
        email: &str,
        display_name: Option<&str>,
        actor: &str,
    ) -> StoreResult<User> {
        in_write!(self, |c| users::add(
            c,
            tenant,
            RecordId::generate(),
            Some(email),
            display_name,
            actor,
            Timestamp::now()
        ))
    }

    pub async fn list_users(&self, tenant: &TenantId) -> StoreResult<Vec<User>> {
        in_read!(self, |c| users::list(c, tenant))
    }

    pub async fn update_user(
        &self,
        tenant: &TenantId,
        id: RecordId,
        changes: &UserChanges,
        actor: &str,
    ) -> StoreResult<User> {
        in_write!(self, |c| users::update(c, tenant, id, changes, actor, Timestamp::now()))
    }

    // ----- api keys -----

    pub async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        in_write!(self, |c| api_keys::insert(c, key))
    }

    pub async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        in_read!(self, |c| api_keys::find(c, id))
    }

    pub async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKey>> {
        in_read!(self, |c| api_keys::list(c, tenant))
    }

    pub async fn revoke_api_key(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        in_write!(self, |c| api_keys::revoke(c, tenant, id, Timestamp::now()))
    }

    // ----- settings -----

    pub async fn settings(&self, tenant: &TenantId) -> StoreResult<TenantSettings> {
        in_read!(self, |c| settings::get(c, tenant))
    }

    /// Applies a partial settings object and returns the result.
    pub async fn update_settings(&self, tenant: &TenantId, patch: &Json) -> StoreResult<TenantSettings> {
        in_write!(self, |c| async {
            let mut s = settings::get(c, tenant).await?;
            s.patch(patch)?;
            settings::put(c, tenant, &s, Timestamp::now()).await?;
            Ok(s)
        })
    }

    // ----- webhooks -----

    /// Creates a webhook subscription; see [`webhooks`].
    pub async fn insert_webhook(&self, sub: &webhooks::Subscription) -> StoreResult<()> {
        in_write!(self, |c| webhooks::insert(c, sub))
    }

    pub async fn get_webhook(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<webhooks::Subscription>> {
        in_read!(self, |c| webhooks::get(c, tenant, id))
    }

    pub async fn list_webhooks(&self, tenant: &TenantId) -> StoreResult<Vec<webhooks::Subscription>> {
        in_read!(self, |c| webhooks::list(c, tenant))
    }

    pub async fn update_webhook(
        &self,
        tenant: &TenantId,
        id: &str,
        patch: &webhooks::SubscriptionPatch,
    ) -> StoreResult<Option<webhooks::Subscription>> {
        in_write!(self, |c| webhooks::update(c, tenant, id, patch))
    }

    pub async fn delete_webhook(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        in_write!(self, |c| webhooks::delete(c, tenant, id))
    }

    pub async fn replay_webhook(&self, tenant: &TenantId, id: &str, event_id: &str) -> StoreResult<bool> {
        in_write!(self, |c| webhooks::replay(c, tenant, id, event_id))
    }

    pub async fn webhook_deliveries(
        &self,
        tenant: &TenantId,
        id: &str,
        limit: usize,
    ) -> StoreResult<Vec<webhooks::Delivery>> {
        in_read!(self, |c| webhooks::deliveries(c, tenant, id, limit))
    }

    /// Whether any webhook subscription is enabled (all tenants; background work).
    pub async fn any_webhook_enabled(&self) -> StoreResult<bool> {
        in_read!(self, |c| webhooks::any_enabled(c))
    }

    /// Fans new change events out into webhook deliveries (all tenants; background work).
    pub async fn webhook_fan_out(&self, render: &(dyn Fn(&changes::ChangeEvent) -> String + Sync)) -> StoreResult<u64> {
        in_write!(self, |c| webhooks::fan_out(c, render))
    }

    /// Claims due webhook deliveries (all tenants; background work).
    pub async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<webhooks::Claimed>> {
        in_write!(self, |c| webhooks::claim(c, now, lease_ms, limit))
    }

    pub async fn settle_webhook_delivery(
        &self,
        claimed: &webhooks::Claimed,
        attempt: &webhooks::Attempt,
    ) -> StoreResult<()> {
        in_write!(self, |c| webhooks::settle(c, claimed, attempt))
    }
}
