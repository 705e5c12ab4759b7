//! The embedded SQLite backend on rusqlite (bundled SQLite).
//!
//! WAL mode; one writer connection behind an async mutex, its transactions opened with
//! `BEGIN IMMEDIATE` so they never fail half-way on a lock upgrade, and shared by concurrent
//! writes, each under its own savepoint (group commit, [`Group`]); a pool of read
//! connections, one checked out per read; WAL checkpoints on a thread of their own
//! ([`Checkpointer`]). SQLite calls are microseconds for point reads and
//! run on the calling task: there is no thread hop on the hot path.
//!
//! [`SqliteStats`] counts connections and the queue in front of the writer for `/metrics`:
//! a few relaxed atomic operations per call, and a clock read only when a write has to wait.

use crate::db::{Conn, DbError, DbResult, Dialect, Row, SqlValue};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 16;

/// An open SQLite database.
pub struct SqliteDb {
    path: PathBuf,
    writer: tokio::sync::Mutex<Writer>,
    /// Wakes the checkpointer after commits (see [`Checkpointer`]).
    checkpointer: Checkpointer,
    readers: Mutex<Vec<Connection>>,
    stats: Arc<SqliteStats>,
    /// Whether migration 0011's search-index queue exists (it never goes away once it does).
    search_queue: std::sync::atomic::AtomicBool,
}

/// Connection and writer-queue counters, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct SqliteStats {
    /// Read connections open (idle or checked out).
    readers_open: AtomicU64,
    /// Read connections idle in the pool.
    readers_idle: AtomicU64,
    /// Tasks waiting for the writer connection now.
    writer_waiting: AtomicU64,
    /// Write transactions begun.
    writes: AtomicU64,
    /// Write transactions that found the writer busy and queued.
    writes_queued: AtomicU64,
    /// Total time spent queued for the writer, in nanoseconds.
    writer_wait_nanos: AtomicU64,
    /// WAL frames the checkpoint thread's last checkpoint left uncopied (see [`Checkpointer`]).
    wal_frames_behind: AtomicU64,
}

/// A snapshot of [`SqliteStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SqliteSnapshot {
    pub readers_open: u64,
    pub readers_idle: u64,
    pub writer_waiting: u64,
    pub writes: u64,
    pub writes_queued: u64,
    pub writer_wait_seconds: f64,
    pub wal_frames_behind: u64,
}

impl SqliteStats {
    pub fn snapshot(&self) -> SqliteSnapshot {
        SqliteSnapshot {
            readers_open: self.readers_open.load(Relaxed),
            readers_idle: self.readers_idle.load(Relaxed),
            writer_waiting: self.writer_waiting.load(Relaxed),
            writes: self.writes.load(Relaxed),
            writes_queued: self.writes_queued.load(Relaxed),
            writer_wait_seconds: self.writer_wait_nanos.load(Relaxed) as f64 / 1e9,
            wal_frames_behind: self.wal_frames_behind.load(Relaxed),
        }
    }
}

/// Counts a task queued for the writer until it gets it or gives up (a cancelled request).
struct Queued<'a>(&'a SqliteStats);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.writer_waiting.fetch_sub(1, Relaxed);
    }
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb").field("path", &self.path).finish()
    }
}

fn open_connection(path: &Path, reader: bool) -> DbResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(map_error)?;
    conn.set_prepared_statement_cache_capacity(128);
    // synchronous=NORMAL in WAL is durable across process crashes (not power loss) and is
    // what makes single-row commits cheap.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
    .map_err(map_error)?;
    if reader {
        conn.execute_batch("PRAGMA query_only = ON;").map_err(map_error)?;
    } else {
        // The writer's statements are few and fixed, and each runs once per record in bulk
        // work. Without the query-planner stability guarantee SQLite marks a statement to
        // be re-prepared whenever a parameter its plan looked at is re-bound (a bound value
        // compared with a partial index's WHERE, or with sqlite_stat4 samples) and rusqlite
        // re-binds on every call: the key lookups of each bulk line were parsed and planned
        // again every time (a quarter of an import's CPU). Readers keep value-specific plans.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(map_error)?;
    }
    Ok(conn)
}

impl SqliteDb {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> DbResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let writer = open_connection(path, false)?;
        // Checkpoints happen on the checkpointer's thread, not inside a writer's COMMIT.
        let stats = Arc::<SqliteStats>::default();
        let checkpointer = Checkpointer::start(open_connection(path, false)?, stats.clone())?;
        // After a rewind the WAL file is cut back to 64 MiB (it is reused, not shrunk, otherwise).
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")
            .map_err(map_error)?;
        Ok(SqliteDb {
            path: path.to_owned(),
            writer: tokio::sync::Mutex::new(Writer { conn: writer, group: Group::default() }),
            checkpointer,
            readers: Mutex::new(Vec::new()),
            stats,
            search_queue: Default::default(),
        })
    }

    /// The counters of this database's connections and writer queue.
    pub fn stats(&self) -> Arc<SqliteStats> {
        self.stats.clone()
    }

    /// Starts a write: waits for the writer connection (in arrival order), then begins a group
    /// transaction, or joins the open one under a savepoint of its own (see [`Group`]).
    pub async fn begin(&self) -> DbResult<SqliteTx<'_>> {
        let stats = &*self.stats;
        stats.writes.fetch_add(1, Relaxed);
        let mut guard = match self.writer.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                stats.writes_queued.fetch_add(1, Relaxed);
                stats.writer_waiting.fetch_add(1, Relaxed);
                let queued = Queued(stats);
                let since = Instant::now();
                let guard = self.writer.lock().await;
                drop(queued);
                stats.writer_wait_nanos.fetch_add(since.elapsed().as_nanos() as u64, Relaxed);
                guard
            }
        };
        let writer = &mut *guard;
        // The first request of a group needs no savepoint: the transaction holds only its
        // writes until it hands the connection on. And it must not take one: while a savepoint
        // is open, SQLite keeps a copy of every page changed since in the statement journal,
        // and walks that journal at the end of each statement (a bulk import in one savepoint
        // slowed down as its transaction grew: 70 % of its time went there).
        let savepoint = writer.group.open;
        if savepoint {
            if let Err(e) = writer.conn.execute_batch("SAVEPOINT request") {
                // Nothing of this request is in the transaction; whoever holds it next commits it.
                return Err(map_error(e));
            }
        } else {
            writer.conn.execute_batch("BEGIN IMMEDIATE").map_err(map_error)?;
            writer.group.begin();
        }
        let epoch = writer.group.epoch;
        Ok(SqliteTx {
            writer: Some(guard),
            db: self,
            epoch,
            open: true,
            savepoint,
            joined: false,
            outbox: Default::default(),
        })
    }

    /// Whether writes are waiting for the writer connection (a group transaction is then
    /// left open for them to join).
    fn writers_queued(&self) -> bool {
        self.stats.writer_waiting.load(Relaxed) > 0
    }

    /// Checks out a read connection.
    pub fn reader(&self) -> DbResult<SqliteReader<'_>> {
        let pooled = {
            let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            let conn = pool.pop();
            self.stats.readers_idle.store(pool.len() as u64, Relaxed);
            conn
        };
        let conn = match pooled {
            Some(c) => c,
            None => {
                let conn = open_connection(&self.path, true)?;
                self.stats.readers_open.fetch_add(1, Relaxed);
                conn
            }
        };
        Ok(SqliteReader { conn: Some(conn), db: self })
    }
}

/// The writer connection and the transaction it holds open for a group of requests.
struct Writer {
    conn: Connection,
    group: Group,
}

/// Group commit: concurrent writes share one transaction, each under its own savepoint.
///
/// A COMMIT writes every page the transaction changed to the WAL, and a create changes ~37
/// (the record, its keys, search values, duplicate keys and change event, with their indexes):
/// one commit per request made that the largest cost of a write (docs/PERFORMANCE.md). So a
/// request that finishes (its savepoint released) while other writes queue for the connection
/// does not commit: it hands the connection on and waits, and the last request of the group,
/// the one nobody queues behind, or the one that finds the group full ([`MAX_GROUP`],
/// [`MAX_GROUP_AGE`]), commits for all. Every request is answered only after the COMMIT that
/// made its write durable, with that COMMIT's outcome; a request that fails rolls back to its
/// own savepoint and nothing else. With one writer at a time this is one transaction per
/// request, as before.
#[derive(Default)]
struct Group {
    /// A transaction is open on the connection.
    open: bool,
    /// Counts transactions; a request remembers the one its write is in.
    epoch: u64,
    /// Requests whose writes wait in the open transaction.
    members: usize,
    started: Option<Instant>,
    /// How recent transactions ended: (epoch, the COMMIT's error).
    outcomes: std::collections::VecDeque<(u64, Option<String>)>,
}

/// Most requests committed together.
const MAX_GROUP: usize = 64;
/// Longest a group stays open for more requests: bounds what the first one waits.
const MAX_GROUP_AGE: std::time::Duration = std::time::Duration::from_millis(20);
/// Outcomes kept for requests still to read theirs (far more than can wait at once).
const KEPT_OUTCOMES: usize = 1_024;

impl Group {
    fn begin(&mut self) {
        self.open = true;
        self.epoch += 1;
        self.members = 0;
        self.started = Some(Instant::now());
    }

    fn full(&self) -> bool {
        self.members >= MAX_GROUP || self.started.is_some_and(|t| t.elapsed() >= MAX_GROUP_AGE)
    }

    fn end(&mut self, error: Option<String>) {
        self.open = false;
        if self.outcomes.len() == KEPT_OUTCOMES {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back((self.epoch, error));
    }

    /// How transaction `epoch` ended, once it has.
    fn outcome(&self, epoch: u64) -> Option<DbResult<()>> {
        if self.open && self.epoch == epoch {
            return None;
        }
        Some(match self.outcomes.iter().find(|(e, _)| *e == epoch) {
            Some((_, None)) => Ok(()),
            Some((_, Some(error))) => Err(DbError::Unavailable(format!("the group commit failed: {error}"))),
            None => Err(DbError::Unavailable("the outcome of the group commit is unknown".into())),
        })
    }
}

impl Writer {
    /// Commits the open transaction for every request in it (or rolls it back if it cannot).
    fn commit_group(&mut self, db: &SqliteDb) -> DbResult<()> {
        let result = index_queued_search_values(&self.conn, &db.search_queue)
            .and_then(|()| self.conn.execute_batch("COMMIT"))
            .map_err(map_error);
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.group.end(result.as_ref().err().map(ToString::to_string));
        if result.is_ok() {
            db.checkpointer.after_commit(&self.conn);
        }
        result
    }

    /// Undoes the current request's writes: back to its savepoint, or (the group's first
    /// request, alone in the transaction until it hands the connection on) the transaction.
    fn undo_request(&mut self, savepoint: bool) {
        if savepoint {
            let _ = self.conn.execute_batch("ROLLBACK TO request; RELEASE request");
        } else {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.group.end(Some("rolled back".into()));
        }
    }
}

/// One request's write in the writer's group transaction ([`Group`]): the transaction's
/// first, or a savepoint in it. Undone if dropped unfinished.
pub struct SqliteTx<'a> {
    /// The writer, while this request holds it.
    writer: Option<tokio::sync::MutexGuard<'a, Writer>>,
    db: &'a SqliteDb,
    /// The group transaction this request's write is in.
    epoch: u64,
    /// The request's writes are open (neither kept nor undone yet).
    open: bool,
    /// They are under `SAVEPOINT request` (it joined a group that another request began).
    savepoint: bool,
    /// Counted in the group's members.
    joined: bool,
    /// Change events of the open transaction, appended before it commits.
    outbox: crate::changes::Outbox,
}

impl SqliteTx<'_> {
    fn conn(&self) -> &Connection {
        &self.writer.as_ref().expect("a request's connection is held while it runs").conn
    }

    /// Keeps the write (releases the savepoint) and returns once the group transaction holding
    /// it has committed, with that commit's outcome.
    pub async fn commit(mut self) -> DbResult<()> {
        if self.savepoint
            && let Err(e) = self.conn().execute_batch("RELEASE request")
        {
            self.open = false;
            if let Some(writer) = self.writer.as_mut() {
                writer.undo_request(true);
            }
            let _ = self.finish().await;
            return Err(map_error(e));
        }
        self.open = false;
        self.finish().await
    }

    /// Undoes the write; the group's other writes are kept.
    pub async fn rollback(mut self) -> DbResult<()> {
        self.open = false;
        if let Some(writer) = self.writer.as_mut() {
            writer.undo_request(self.savepoint);
        }
        // Others may wait on this transaction: it still has to end.
        let _ = self.finish().await;
        Ok(())
    }

    /// Waits for the group transaction to end, committing it when this request is the last.
    async fn finish(&mut self) -> DbResult<()> {
        loop {
            let writer = match self.writer.as_mut() {
                Some(writer) => writer,
                None => self.writer.insert(self.db.writer.lock().await),
            };
            if let Some(outcome) = writer.group.outcome(self.epoch) {
                return outcome;
            }
            if self.db.writers_queued() && !writer.group.full() {
                if !self.joined {
                    writer.group.members += 1;
                    self.joined = true;
                }
                // Hand the connection on; the tokio mutex queues in arrival order, so the
                // writes queued now run before this request gets it back.
                self.writer = None;
                continue;
            }
            return writer.commit_group(self.db);
        }
    }
}

impl Drop for SqliteTx<'_> {
    /// A request dropped mid-way (cancelled): its savepoint is undone, and a group nobody
    /// else will end is committed here, so the others' writes do not wait for the next write.
    fn drop(&mut self) {
        let guard = match self.writer.take() {
            Some(guard) => Some(guard),
            None => self.db.writer.try_lock().ok(),
        };
        let Some(mut writer) = guard else { return };
        if self.open {
            writer.undo_request(self.savepoint);
        }
        if writer.group.open && writer.group.epoch == self.epoch && !self.db.writers_queued() {
            let _ = writer.commit_group(self.db);
        }
    }
}

/// Copies committed WAL pages back into the database file on a thread of its own.
///
/// SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages: that
/// writer then copies the pages and fsyncs the database file while every other writer waits
/// for it (measured: ~12 % of a create's CPU, and the fsync's wait on top). Here the writer
/// only nudges this thread after a commit; it runs a PASSIVE checkpoint (which never blocks
/// readers or the writer) at most every [`CHECKPOINT_EVERY`] while writes go on, and sleeps
/// while there are none. Durability is unchanged: a commit is in the WAL either way.
///
/// A checkpoint that could not copy the whole WAL (a reader still reading an older snapshot
/// was in the way) is tried again every [`CHECKPOINT_RETRY`] without waiting for another
/// commit: until the WAL is all copied, every read looks each page it needs up in the WAL's
/// index first (at 1,000,000 accounts, with a 1.2 GB WAL left by a big import, a quarter of a
/// search's time went to `walFindFrame`); once it is, new readers read the database file alone.
///
/// A checkpoint running beside the writer never catches up with it, and the WAL is only
/// rewound from its start once a checkpoint has copied all of it: so when the WAL passes
/// [`WAL_REWIND_FRAMES`], the writer itself runs one PASSIVE checkpoint right after its next
/// commit, as the automatic checkpoint did, but with only the frames since this thread's last
/// one left to copy (without it the WAL grew by gigabytes under a write load).
struct Checkpointer {
    wake: std::sync::mpsc::SyncSender<()>,
    /// Set by the thread when the WAL has grown past [`WAL_REWIND_FRAMES`].
    wal_long: Arc<std::sync::atomic::AtomicBool>,
    /// When the writer last checkpointed (at most one try per [`CHECKPOINT_EVERY`], so a long
    /// reader that keeps the WAL from being copied does not cost every commit a checkpoint).
    writer_tried: Mutex<Instant>,
}

/// Shortest pause between two background checkpoints while writes go on.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How soon the thread tries again after a checkpoint that could not copy the whole WAL.
const CHECKPOINT_RETRY: std::time::Duration = std::time::Duration::from_millis(250);
/// WAL frames (pages) after which the writer checkpoints so the WAL can be rewound: ~32 MiB
/// with 4 KiB pages, eight times SQLite's default automatic checkpoint.
const WAL_REWIND_FRAMES: i64 = 8_000;

/// `PRAGMA wal_checkpoint(PASSIVE)`: whether it was blocked, WAL frames, frames copied.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?)))
}

impl Checkpointer {
    fn start(conn: Connection, stats: Arc<SqliteStats>) -> DbResult<Self> {
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let wal_long = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = wal_long.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                // Ends when the database (the sender) is dropped.
                loop {
                    let go = if stats.wal_frames_behind.load(Relaxed) > 0 {
                        !matches!(woken.recv_timeout(CHECKPOINT_RETRY), Err(RecvTimeoutError::Disconnected))
                    } else {
                        woken.recv().is_ok()
                    };
                    if !go {
                        break;
                    }
                    match passive_checkpoint(&conn) {
                        Ok((_, frames, copied)) => {
                            if frames >= WAL_REWIND_FRAMES {
                                flag.store(true, Relaxed);
                            }
                            stats.wal_frames_behind.store((frames - copied).max(0) as u64, Relaxed);
                        }
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries it"),
                    }
                    std::thread::sleep(CHECKPOINT_EVERY);
                }
            })
            .map_err(|e| DbError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { wake, wal_long, writer_tried: Mutex::new(Instant::now()) })
    }

    /// After a commit on the writer connection `writer`: a checkpoint there when the WAL is
    /// long (see above), and a nudge to the thread; never blocks on the thread.
    fn after_commit(&self, writer: &Connection) {
        if self.wal_long.load(Relaxed) {
            let mut tried = self.writer_tried.lock().unwrap_or_else(|p| p.into_inner());
            if tried.elapsed() >= CHECKPOINT_EVERY {
                *tried = Instant::now();
                // Done when it copied every frame; else (a reader or the thread's own
                // checkpoint in the way) a later commit tries again.
                if let Ok((false, frames, copied)) = passive_checkpoint(writer)
                    && copied == frames
                {
                    self.wal_long.store(false, Relaxed);
                }
            }
        }
        let _ = self.wake.try_send(());
    }
}

/// Writes the transaction's search-value changes, queued by triggers in write order, into the
/// FTS5 index in one statement, and empties the queue (migration 0011: one index segment per
/// transaction instead of one per written row).
fn index_queued_search_values(conn: &Connection, queue_exists: &std::sync::atomic::AtomicBool) -> rusqlite::Result<()> {
    // Before migration 0011 (a database being migrated, a bare test database) there is no
    // queue: the older triggers write the index themselves.
    if !queue_exists.load(Relaxed) {
        let exists = conn
            .prepare_cached("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'search_fts_queue'")?
            .exists([])?;
        if !exists {
            return Ok(());
        }
        queue_exists.store(true, Relaxed);
    }
    let indexed = conn
        .prepare_cached(
            "INSERT INTO search_fts (search_fts, rowid, value) SELECT op, key, value FROM search_fts_queue ORDER BY seq",
        )?
        .execute([])?;
    if indexed > 0 {
        conn.prepare_cached("DELETE FROM search_fts_queue")?.execute([])?;
    }
    Ok(())
}

/// A pooled read connection; returned to the pool on drop.
pub struct SqliteReader<'a> {
    conn: Option<Connection>,
    db: &'a SqliteDb,
}

impl Drop for SqliteReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut pool = self.db.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
                self.db.stats.readers_idle.store(pool.len() as u64, Relaxed);
            } else {
                drop(pool);
                self.db.stats.readers_open.fetch_sub(1, Relaxed);
            }
        }
    }
}

impl Conn for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn outbox(&mut self) -> Option<&mut crate::changes::Outbox> {
        Some(&mut self.outbox)
    }
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> DbResult<Vec<Row>> {
        query(self.conn(), sql, params)
    }
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> DbResult<u64> {
        execute(self.conn(), sql, params)
    }
    async fn execute_batch(&mut self, sql: &str) -> DbResult<()> {
        self.conn().execute_batch(sql).map_err(map_error)
    }
}

impl Conn for SqliteReader<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    async fn query(&mut self, sql: &str, params: &[SqlValue]) -> DbResult<Vec<Row>> {
        query(self.conn.as_ref().expect("reader holds a connection"), sql, params)
    }
    async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> DbResult<u64> {
        execute(self.conn.as_ref().expect("reader holds a connection"), sql, params)
    }
    async fn execute_batch(&mut self, sql: &str) -> DbResult<()> {
        self.conn.as_ref().expect("reader holds a connection").execute_batch(sql).map_err(map_error)
    }
}

/// Rewrites `$n` placeholders to SQLite's `?n` (same meaning: the n-th bound value). Only a
/// `$` followed by a digit is a placeholder; others (JSON paths such as `'$.name'`) stay.
fn placeholders(sql: &str) -> Cow<'_, str> {
    let bytes = sql.as_bytes();
    let is_placeholder = |i: usize| bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
    if !(0..bytes.len()).any(is_placeholder) {
        return Cow::Borrowed(sql);
    }
    // Byte-wise: `$` and `?` are both ASCII, so swapping one for the other keeps the text
    // valid UTF-8 (a copy and one pass, not a char-by-char rebuild: this runs per statement).
    let mut out = bytes.to_vec();
    for (i, b) in out.iter_mut().enumerate() {
        if is_placeholder(i) {
            *b = b'?';
        }
    }
    Cow::Owned(String::from_utf8(out).expect("an ASCII byte replaced by an ASCII byte"))
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            SqlValue::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(*b as i64)),
        })
    }
}

fn query(conn: &Connection, sql: &str, params: &[SqlValue]) -> DbResult<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&placeholders(sql)).map_err(map_error)?;
    let width = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(map_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_error)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i).map_err(map_error)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(n) => SqlValue::Int(n),
                ValueRef::Real(f) => SqlValue::Real(f),
                ValueRef::Text(t) | ValueRef::Blob(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

fn execute(conn: &Connection, sql: &str, params: &[SqlValue]) -> DbResult<u64> {
    let mut stmt = conn.prepare_cached(&placeholders(sql)).map_err(map_error)?;
    stmt.execute(rusqlite::params_from_iter(params)).map(|n| n as u64).map_err(map_error)
}

fn map_error(e: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(code, msg) = &e {
        // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
        if code.extended_code == 2067 || code.extended_code == 1555 {
            return DbError::UniqueViolation(msg.clone().unwrap_or_default());
        }
        if matches!(
            code.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
        ) {
            return DbError::Unavailable(e.to_string());
        }
    }
    DbError::Other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten() {
        assert_eq!(placeholders("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
        assert_eq!(placeholders("json_extract(c, '$.seats') = $3"), "json_extract(c, '$.seats') = ?3");
        assert!(matches!(placeholders("SELECT 1"), Cow::Borrowed(_)));
    }

    #[tokio::test]
    async fn stats_count_readers_and_the_writer_queue() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(SqliteDb::open(&dir.path().join("t.db")).unwrap());
        let stats = db.stats();
        {
            let (_a, _b) = (db.reader().unwrap(), db.reader().unwrap());
            let s = stats.snapshot();
            assert_eq!((s.readers_open, s.readers_idle), (2, 0));
        }
        assert_eq!(stats.snapshot().readers_idle, 2, "returned to the pool");
        let held = db.begin().await.unwrap();
        let waiter = tokio::spawn({
            let db = db.clone();
            async move { db.begin().await.map(drop).is_ok() }
        });
        while stats.snapshot().writer_waiting == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        held.commit().await.unwrap();
        assert!(waiter.await.unwrap());
        let s = stats.snapshot();
        assert_eq!((s.writes, s.writes_queued, s.writer_waiting), (2, 1, 0));
        assert!(s.writer_wait_seconds >= 0.015, "{s:?}");
        // A waiter that gives up (a cancelled request) leaves the queue.
        let held = db.begin().await.unwrap();
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), db.begin()).await;
        assert!(gave_up.is_err());
        assert_eq!(stats.snapshot().writer_waiting, 0);
        drop(held);
    }

    /// Concurrent writes commit together, each acknowledged after the COMMIT that holds it;
    /// a failing or cancelled one is undone alone.
    #[tokio::test]
    async fn concurrent_writes_commit_in_groups_and_a_failure_stays_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(SqliteDb::open(&dir.path().join("t.db")).unwrap());
        let tx = db.begin().await.unwrap();
        tx.conn().execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)").unwrap();
        tx.commit().await.unwrap();
        let count = |db: &SqliteDb| -> i64 {
            db.reader().unwrap().conn.as_ref().unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
        };
        let epoch_before = db.writer.lock().await.group.epoch;
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let tx = db.begin().await.unwrap();
                    // Every 10th write fails (a duplicate key) and is rolled back.
                    let id = if i % 10 == 3 { 1 } else { i };
                    match tx.conn().execute("INSERT INTO t (id) VALUES (?1)", [id]) {
                        Ok(_) => {
                            tokio::task::yield_now().await;
                            tx.commit().await.map(|()| true)
                        }
                        Err(_) => tx.rollback().await.map(|()| false),
                    }
                })
            })
            .collect();
        let mut committed = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                committed += 1;
                // Acknowledged only once durable: a reader sees it now.
                assert!(count(&db) >= 1);
            }
        }
        assert_eq!(committed, 36);
        assert_eq!(count(&db), 36, "the failed writes alone were undone");
        let transactions = db.writer.lock().await.group.epoch - epoch_before;
        assert!(transactions < 36, "{transactions} transactions for 36 writes: nothing was grouped");
        // A request dropped mid-way (cancelled) leaves nothing, and the group still ends.
        let tx = db.begin().await.unwrap();
        tx.conn().execute("INSERT INTO t (id) VALUES (1000)", []).unwrap();
        drop(tx);
        assert!(!db.writer.lock().await.group.open);
        assert_eq!(count(&db), 36);
        // The first request of a group runs without a savepoint (the transaction holds only its
        // writes); undoing it ends the transaction, and the next request begins a new one.
        let first = db.begin().await.unwrap();
        assert!(!first.savepoint);
        first.conn().execute("INSERT INTO t (id) VALUES (2000)", []).unwrap();
        first.rollback().await.unwrap();
        assert!(!db.writer.lock().await.group.open);
        let next = db.begin().await.unwrap();
        next.conn().execute("INSERT INTO t (id) VALUES (2001)", []).unwrap();
        next.commit().await.unwrap();
        assert_eq!(count(&db), 37);
    }

    /// A database at `path` with one table, `t (id, v)`.
    async fn table_t(path: &Path) -> SqliteDb {
        let db = SqliteDb::open(path).unwrap();
        let tx = db.begin().await.unwrap();
        tx.conn().execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").unwrap();
        tx.commit().await.unwrap();
        db
    }

    /// `n` commits of about one page each into `t` (ids 0..n).
    async fn write_pages(db: &SqliteDb, n: i64) {
        for i in 0..n {
            let tx = db.begin().await.unwrap();
            tx.conn()
                .execute("INSERT INTO t (id, v) VALUES (?1, ?2)", rusqlite::params![i, "x".repeat(4_000)])
                .unwrap();
            tx.commit().await.unwrap();
        }
    }

    /// Commits are copied into the database file by the checkpoint thread (the writer has
    /// automatic checkpoints off), and a long WAL is checkpointed by the writer so it can be
    /// rewound.
    #[tokio::test]
    async fn the_checkpoint_thread_copies_commits_and_a_long_wal_is_rewound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = table_t(&path).await;
        let file_size = || std::fs::metadata(&path).unwrap().len();
        let before = file_size();
        write_pages(&db, 50).await;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while file_size() <= before + 50 * 4_000 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(file_size() > before + 50 * 4_000, "the checkpoint thread copied nothing into the file");
        // A long WAL: the writer checkpoints after a commit, and the next write rewinds it.
        // (The thread's own checkpoint can be in the way of one try: a later commit retries.)
        db.checkpointer.wal_long.store(true, Relaxed);
        for i in 0..20 {
            *db.checkpointer.writer_tried.lock().unwrap() = Instant::now() - CHECKPOINT_EVERY;
            let tx = db.begin().await.unwrap();
            tx.conn().execute("INSERT INTO t (id, v) VALUES (?1, 'y')", [1_000 + i]).unwrap();
            tx.commit().await.unwrap();
            if !db.checkpointer.wal_long.load(Relaxed) {
                break;
            }
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
        assert!(!db.checkpointer.wal_long.load(Relaxed), "the writer's checkpoint did not copy the whole WAL");
        let tx = db.begin().await.unwrap();
        tx.conn().execute("INSERT INTO t (id, v) VALUES (2000, 'z')", []).unwrap();
        tx.commit().await.unwrap();
        let frames: i64 = db
            .reader()
            .unwrap()
            .conn
            .as_ref()
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap();
        assert!(frames < 10, "the WAL was not rewound: {frames} frames");
    }

    #[tokio::test]
    async fn a_checkpoint_a_reader_held_back_is_finished_without_another_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = table_t(&dir.path().join("t.db")).await;
        // A reader on the snapshot before the writes: no checkpoint can copy past it.
        let reader = db.reader().unwrap();
        let held = reader.conn.as_ref().unwrap();
        held.execute_batch("BEGIN").unwrap();
        let _: i64 = held.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        write_pages(&db, 20).await;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while db.stats.snapshot().wal_frames_behind == 0 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(db.stats.snapshot().wal_frames_behind > 0, "the reader did not hold the checkpoint back");
        held.execute_batch("COMMIT").unwrap();
        drop(reader);
        // No commit follows: the thread finishes the checkpoint by itself.
        while db.stats.snapshot().wal_frames_behind > 0 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(db.stats.snapshot().wal_frames_behind == 0, "the WAL was left partly copied");
    }
}
