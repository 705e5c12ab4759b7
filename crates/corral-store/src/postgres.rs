//! The PostgreSQL backend on tokio-postgres with a deadpool pool.
//!
//! Acquiring a connection waits at most [`PgOptions::acquire_timeout`]; every statement runs
//! under a server-side `statement_timeout`. When the database cannot be reached, or the pool
//! is exhausted, calls fail fast with [`DbError::Unavailable`] (HTTP 503) and the pool
//! reconnects by itself once the database is back.

use crate::db::{Conn, DbError, DbResult, Dialect, Row, SqlValue};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Timeouts};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Statement};

/// Pool and timeout settings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections per Corral instance.
    pub pool_size: usize,
    /// Longest wait for a free connection (or a new one) before answering 503.
    pub acquire_timeout: Duration,
    /// Server-side limit on any one statement.
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { pool_size: 16, acquire_timeout: Duration::from_secs(3), statement_timeout: Duration::from_secs(15) }
    }
}

/// A PostgreSQL connection pool.
pub struct PgDb {
    pool: Pool,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb").field("max_size", &self.pool.status().max_size).finish()
    }
}

impl PgDb {
    /// Builds the pool; connections are opened lazily, so this succeeds while the database is
    /// down (the server starts and reports 503 until it is up).
    pub fn open(url: &str, options: &PgOptions) -> DbResult<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| DbError::Other(format!("invalid PostgreSQL URL: {e}")))?;
        let timeout = format!("-c statement_timeout={}", options.statement_timeout.as_millis());
        let merged = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {timeout}"),
            _ => timeout,
        };
        config.options(&merged);
        config.connect_timeout(options.acquire_timeout);
        config.application_name("corral");
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let timeouts = Timeouts {
            wait: Some(options.acquire_timeout),
            create: Some(options.acquire_timeout),
            recycle: Some(options.acquire_timeout),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .timeouts(timeouts)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Other(format!("cannot build the pool: {e}")))?;
        Ok(PgDb { pool })
    }

    /// A handle on the pool (it shares the connections), for reading its status.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    async fn client(&self) -> DbResult<Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => map_error(e),
            other => DbError::Unavailable(other.to_string()),
        })
    }

    /// Starts a write transaction on a pooled connection.
    pub async fn begin(&self) -> DbResult<PgConn> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await.map_err(map_error)?;
        Ok(PgConn { client: Some(client), in_transaction: true, outbox: Default::default() })
    }

    /// A pooled connection for reads.
    pub async fn reader(&self) -> DbResult<PgConn> {
        Ok(PgConn { client: Some(self.client().await?), in_transaction: false, outbox: Default::default() })
    }
}

/// A pooled connection, possibly inside a transaction (rolled back if dropped uncommitted).
pub struct PgConn {
    /// Always `Some` until dropped.
    client: Option<Object>,
    in_transaction: bool,
    /// Change events of the open transaction, appended before it commits.
    outbox: crate::changes::Outbox,
}

impl PgConn {
    fn client(&self) -> &Object {
        self.client.as_ref().expect("connection present until drop")
    }

    pub async fn commit(mut self) -> DbResult<()> {
        self.in_transaction = false;
        self.client().batch_execute("COMMIT").await.map_err(map_error)
    }

    pub async fn rollback(mut self) -> DbResult<()> {
        self.in_transaction = false;
        self.client().batch_execute("ROLLBACK").await.map_err(map_error)
    }

    async fn statement(&self, sql: &str) -> DbResult<Statement> {
        self.client().prepare_cached(sql).await.map_err(map_error)
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Dropped mid-transaction (a cancelled request): never hand that connection to the
        // next caller. Detached from the pool, it closes, and the server rolls back.
        if self.in_transaction
            && let Some(object) = self.client.take()
        {
            drop(Object::take(object));
        }
    }
}

fn params(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn outbox(&mut self) -> Option<&mut crate::changes::Outbox> {
        self.in_transaction.then_some(&mut self.outbox)
    }

    async fn query(&mut self, sql: &str, values: &[SqlValue]) -> DbResult<Vec<Row>> {
        let statement = self.statement(sql).await?;
        let rows = self.client().query(&statement, &params(values)).await.map_err(map_error)?;
        rows.iter().map(decode_row).collect()
    }

    async fn execute(&mut self, sql: &str, values: &[SqlValue]) -> DbResult<u64> {
        let statement = self.statement(sql).await?;
        self.client().execute(&statement, &params(values)).await.map_err(map_error)
    }

    async fn execute_batch(&mut self, sql: &str) -> DbResult<()> {
        self.client().batch_execute(sql).await.map_err(map_error)
    }
}

fn decode_row(row: &tokio_postgres::Row) -> DbResult<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let bad = |e: tokio_postgres::Error| DbError::Other(format!("cannot read column {}: {e}", column.name()));
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map_err(bad)?.map(SqlValue::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i).map_err(bad)?.map(|n| SqlValue::Int(n.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i).map_err(bad)?.map(|n| SqlValue::Int(n.into()))
        } else if *ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i).map_err(bad)?.map(SqlValue::Real)
        } else if *ty == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i).map_err(bad)?.map(|f| SqlValue::Real(f.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i).map_err(bad)?.map(SqlValue::Bool)
        } else {
            row.try_get::<_, Option<String>>(i).map_err(bad)?.map(SqlValue::Text)
        };
        out.push(value.unwrap_or(SqlValue::Null));
    }
    Ok(Row(out))
}

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            // Integers adapt to the parameter's inferred width.
            SqlValue::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
            SqlValue::Int(n) if *ty == Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
            SqlValue::Int(n) if *ty == Type::FLOAT8 => (*n as f64).to_sql(ty, out),
            SqlValue::Int(n) if *ty == Type::BOOL => (*n != 0).to_sql(ty, out),
            SqlValue::Int(n) => n.to_sql(ty, out),
            SqlValue::Real(f) => f.to_sql(ty, out),
            SqlValue::Text(s) => s.to_sql(ty, out),
            SqlValue::Bool(b) if *ty == Type::INT8 => (*b as i64).to_sql(ty, out),
            SqlValue::Bool(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn map_error(e: tokio_postgres::Error) -> DbError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return DbError::UniqueViolation(db.constraint().unwrap_or_default().to_owned());
        }
        // Timeouts, shutdowns and too many connections are the database being unavailable.
        if *code == SqlState::QUERY_CANCELED
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || code.code().starts_with("08")
        {
            return DbError::Unavailable(db.message().to_owned());
        }
        return DbError::Other(format!("{}: {}", code.code(), db.message()));
    }
    // No server error: the connection itself failed (refused, reset, closed).
    if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) {
        return DbError::Unavailable(e.to_string());
    }
    DbError::Other(e.to_string())
}
