//! The seam between store logic and a database driver.
//!
//! Store operations are written once, generic over [`Conn`]; each backend implements it for
//! its connection type. SQL is written with `$1`-style placeholders (what PostgreSQL wants);
//! the SQLite backend rewrites them to SQLite's equivalent `?1`. Every difference between the
//! databases' SQL lives in [`Dialect`], nowhere else.

use std::future::Future;

/// A value bound to, or read from, SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl SqlValue {
    pub fn text(s: impl Into<String>) -> Self {
        SqlValue::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Self {
        s.map(|s| SqlValue::Text(s.into())).unwrap_or(SqlValue::Null)
    }

    pub fn opt_int(n: Option<i64>) -> Self {
        n.map(SqlValue::Int).unwrap_or(SqlValue::Null)
    }
}

/// One result row; columns are read by position, in select-list order.
#[derive(Debug, Default)]
pub struct Row(pub Vec<SqlValue>);

impl Row {
    /// Takes column `i` out of the row.
    pub fn take(&mut self, i: usize) -> SqlValue {
        self.0.get_mut(i).map(|v| std::mem::replace(v, SqlValue::Null)).unwrap_or(SqlValue::Null)
    }

    pub fn text(&mut self, i: usize) -> Option<String> {
        match self.take(i) {
            SqlValue::Text(s) => Some(s),
            SqlValue::Int(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn int(&mut self, i: usize) -> Option<i64> {
        match self.take(i) {
            SqlValue::Int(n) => Some(n),
            SqlValue::Bool(b) => Some(b as i64),
            SqlValue::Real(f) => Some(f as i64),
            _ => None,
        }
    }

    pub fn bool(&mut self, i: usize) -> bool {
        match self.take(i) {
            SqlValue::Bool(b) => b,
            SqlValue::Int(n) => n != 0,
            _ => false,
        }
    }
}

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique index refused a row; carries the index name when the driver reports it.
    #[error("unique violation on {0}")]
    UniqueViolation(String),
    /// The database cannot be reached or the pool is exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type DbResult<T> = Result<T, DbError>;

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Suffix that locks rows read inside a write transaction. SQLite needs none: its write
    /// transactions (`BEGIN IMMEDIATE`) already exclude other writers.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// `{alias}.released` is false, written as the partial unique indexes on key tables write
    /// it, so the planner can match them. A literal, not a bound value: SQLite re-prepares a
    /// statement each time a parameter it compared with a partial index's WHERE is re-bound.
    pub fn unreleased(self, alias: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{alias}.released = 0"),
            Dialect::Postgres => format!("NOT {alias}.released"),
        }
    }

    /// A custom attribute's value in `custom_fields`, typed for comparing and sorting as
    /// `kind`. `name` is a validated api_name (`^[a-z][a-z0-9_]{0,62}$`), safe to inline.
    pub fn custom_value(self, name: &str, kind: corral_core::filter::Kind) -> String {
        use corral_core::filter::Kind;
        if !safe_name(name) {
            // Never reached with names from the registry; never inline anything else.
            return "NULL".to_owned();
        }
        match (self, kind) {
            (Dialect::Sqlite, Kind::Real) => format!("CAST(json_extract(custom_fields, '$.{name}') AS REAL)"),
            (Dialect::Sqlite, _) => format!("json_extract(custom_fields, '$.{name}')"),
            (Dialect::Postgres, Kind::Int) => format!("((custom_fields::jsonb ->> '{name}')::bigint)"),
            (Dialect::Postgres, Kind::Real) => format!("((custom_fields::jsonb ->> '{name}')::double precision)"),
            (Dialect::Postgres, Kind::Bool) => format!("((custom_fields::jsonb ->> '{name}')::boolean)"),
            // Byte-wise text order, as everywhere else.
            (Dialect::Postgres, _) => format!("((custom_fields::jsonb ->> '{name}') COLLATE \"C\")"),
        }
    }

    /// The elements of a custom array attribute, as a FROM clause and one element's text.
    pub fn custom_elements(self, name: &str) -> (String, String) {
        if !safe_name(name) {
            return ("(SELECT NULL AS v WHERE 1 = 0) AS e".to_owned(), "e.v".to_owned());
        }
        match self {
            Dialect::Sqlite => (format!("json_each(custom_fields, '$.{name}')"), "json_each.value".to_owned()),
            Dialect::Postgres => (
                format!("jsonb_array_elements_text(custom_fields::jsonb -> '{name}') AS e(v)"),
                "(e.v COLLATE \"C\")".to_owned(),
            ),
        }
    }

    /// The SQL of a sort key.
    pub fn sort_key(self, key: &corral_core::filter::SortKey) -> String {
        match key {
            corral_core::filter::SortKey::Column(c) => (*c).to_owned(),
            corral_core::filter::SortKey::Custom { name, kind } => self.custom_value(name, *kind),
        }
    }

    /// The elements of the JSON string array in `column`, as a FROM clause and the
    /// expression of one element's text.
    pub fn json_array_elements(self, column: &str) -> (String, String) {
        match self {
            Dialect::Sqlite => (format!("json_each({column})"), "json_each.value".to_owned()),
            Dialect::Postgres => (format!("jsonb_array_elements_text({column}::jsonb) AS e(v)"), "e.v".to_owned()),
        }
    }
}

/// Whether an attribute api_name may be inlined into SQL (`^[a-z][a-z0-9_]{0,62}$`).
fn safe_name(name: &str) -> bool {
    name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A database connection (or open transaction) that store operations run on.
pub trait Conn: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a statement and returns its rows.
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> impl Future<Output = DbResult<Vec<Row>>> + Send;

    /// Runs a statement and returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> impl Future<Output = DbResult<u64>> + Send;

    /// Runs several `;`-separated statements without parameters (migrations).
    fn execute_batch(&mut self, sql: &str) -> impl Future<Output = DbResult<()>> + Send;

    /// The change events of the open write transaction (`None` outside one): the write funnel
    /// ([`crate::records::commit`]) gathers them here, and they are appended to the outbox
    /// just before the transaction commits.
    fn outbox(&mut self) -> Option<&mut crate::changes::Outbox> {
        None
    }

    /// Runs a statement expected to return at most one row.
    fn query_opt(&mut self, sql: &str, params: &[SqlValue]) -> impl Future<Output = DbResult<Option<Row>>> + Send {
        async move { Ok(self.query(sql, params).await?.into_iter().next()) }
    }
}

/// The database's plan for a statement, one line per row: SQLite's `EXPLAIN QUERY PLAN`
/// details, PostgreSQL's `EXPLAIN` with sequential scans discouraged (a small test table is
/// scanned whatever its indexes, which would hide which index a large one gets).
pub async fn explain<C: Conn>(c: &mut C, q: &SqlBuilder) -> DbResult<Vec<String>> {
    let (sql, column) = match c.dialect() {
        Dialect::Sqlite => (format!("EXPLAIN QUERY PLAN {}", q.sql), 3),
        Dialect::Postgres => {
            c.execute_batch("SET LOCAL enable_seqscan = off").await?;
            (format!("EXPLAIN {}", q.sql), 0)
        }
    };
    Ok(c.query(&sql, &q.params).await?.into_iter().filter_map(|mut r| r.text(column)).collect())
}

/// Serialises write transactions that take the same `name`, until they end. SQLite's write
/// transactions are serial already; PostgreSQL takes a transaction-scoped advisory lock.
pub async fn lock_name<C: Conn>(c: &mut C, name: &str) -> DbResult<()> {
    if c.dialect() == Dialect::Postgres {
        // execute, not query: the function returns void, which has no row decoding.
        c.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[SqlValue::text(name)]).await?;
    }
    Ok(())
}

/// Takes the [`lock_name`] locks of `names` in one statement (one round trip on PostgreSQL), in
/// sorted order, as concurrent writers taking overlapping sets must.
pub async fn lock_names<C: Conn>(c: &mut C, names: &[String]) -> DbResult<()> {
    if c.dialect() != Dialect::Postgres || names.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    sorted.dedup();
    for run in row_runs(sorted.len()) {
        let mut q = SqlBuilder::new("SELECT pg_advisory_xact_lock(hashtextextended(n, 0)) FROM (VALUES ");
        let rows: Vec<String> =
            sorted[run].iter().map(|n| format!("({})", q.bind(SqlValue::text(n.as_str())))).collect();
        q.push(&rows.join(", ")).push(") AS names (n)");
        c.execute(&q.sql, &q.params).await?;
    }
    Ok(())
}

/// On PostgreSQL, makes the statements that follow in this transaction be planned for their
/// values at each call (`true`) or as usual (`false`: a prepared statement's plan is reused
/// for all values after a few calls). For lookups whose best plan depends on how big the
/// tables have grown since the statement was first planned; a no-op on SQLite.
pub async fn plan_per_call<C: Conn>(c: &mut C, on: bool) -> DbResult<()> {
    if c.dialect() == Dialect::Postgres {
        let mode = if on { "force_custom_plan" } else { "DEFAULT" };
        c.execute_batch(&format!("SET LOCAL plan_cache_mode = {mode}")).await?;
    }
    Ok(())
}

/// Most rows one multi-row statement writes, and most values one `IN` list holds.
pub const MAX_ROWS_PER_STATEMENT: usize = 64;

/// Splits `n` rows into statement-sized runs: full runs of [`MAX_ROWS_PER_STATEMENT`], then
/// the rest in descending powers of two. A handful of statement shapes then serve every
/// count, and each stays in the prepared-statement cache.
pub fn row_runs(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let left = n - start;
        if left == 0 {
            return None;
        }
        let size = if left >= MAX_ROWS_PER_STATEMENT { MAX_ROWS_PER_STATEMENT } else { 1 << left.ilog2() };
        start += size;
        Some(start - size..start)
    })
}

/// `{head} VALUES (…), (…) {tail}` for every row of `rows` (all of one width), in a few
/// statements ([`row_runs`]).
pub async fn insert_rows<C: Conn>(c: &mut C, head: &str, tail: &str, rows: Vec<Vec<SqlValue>>) -> DbResult<()> {
    let runs = row_runs(rows.len());
    let mut rows = rows.into_iter();
    for run in runs {
        let mut q = SqlBuilder::new(head);
        q.push(" VALUES ");
        for (i, row) in rows.by_ref().take(run.len()).enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    q.push(", ");
                }
                q.push_bind(value);
            }
            q.push(")");
        }
        q.push(tail);
        c.execute(&q.sql, &q.params).await?;
    }
    Ok(())
}

/// The text in the first column of every row a lookup by `values` finds, in a few statements
/// ([`row_runs`]): `statement` writes one of them, given its builder (to bind other values)
/// and the run's values bound as an `IN` list, `($1, $2, …)`.
pub async fn texts_in<C: Conn>(
    c: &mut C,
    values: &[String],
    statement: impl Fn(&mut SqlBuilder, &str) -> String,
) -> DbResult<std::collections::HashSet<String>> {
    let mut found = std::collections::HashSet::new();
    for run in row_runs(values.len()) {
        let mut q = SqlBuilder::default();
        let placeholders: Vec<String> = values[run].iter().map(|v| q.bind(SqlValue::text(v.as_str()))).collect();
        q.sql = statement(&mut q, &format!("({})", placeholders.join(", ")));
        found.extend(c.query(&q.sql, &q.params).await?.into_iter().filter_map(|mut r| r.text(0)));
    }
    Ok(found)
}

/// Builds SQL with numbered placeholders, collecting the bound values alongside.
#[derive(Debug, Default)]
pub struct SqlBuilder {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> Self {
        SqlBuilder { sql: sql.into(), params: Vec::new() }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, value: SqlValue) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Binds a value and writes its placeholder into the SQL: no string per value (bulk
    /// inserts bind thousands).
    pub fn push_bind(&mut self, value: SqlValue) -> &mut Self {
        use std::fmt::Write;
        self.params.push(value);
        write!(self.sql, "${}", self.params.len()).expect("writing to a String");
        self
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::filter::Kind;

    #[test]
    fn row_runs_cover_every_row_in_a_few_shapes() {
        for n in 0..300 {
            let runs: Vec<_> = row_runs(n).collect();
            assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), n);
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start && w[0].len() >= w[1].len()));
            assert!(runs.iter().all(|r| r.len().is_power_of_two() && r.len() <= MAX_ROWS_PER_STATEMENT));
        }
    }

    #[test]
    fn only_registry_names_are_inlined() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            assert!(d.custom_value("seats", Kind::Int).contains("seats"));
            assert_eq!(d.custom_value("x') OR 1=1 --", Kind::Text), "NULL");
            assert!(!d.custom_elements("a'b").0.contains("a'b"));
        }
    }
}
