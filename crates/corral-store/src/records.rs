//! Record persistence: mapping records to rows, and the record operations (get, list, create,
//! update, archive, restore, purge) written once for every backend.
//!
//! Every function takes the caller's [`Actor`]: its tenant, and its app scope when it has one,
//! are part of every statement's WHERE clause (docs/CONTRACT.md §3).

use crate::db::Dialect;
use crate::db::{Conn, Row, SqlBuilder, SqlValue};
use crate::{StoreError, StoreResult, edges, keys};
use corral_core::TenantId;
use corral_core::change::Action;
use corral_core::filter::{Cond, Kind, Op, Relation, SortKey, Target};
use corral_core::items;
use corral_core::list::Plan;
use corral_core::record::AccountDomain;
use corral_core::schema::{FieldDef, ValueType, fields};
use corral_core::value::Address;
use corral_core::{
    Actor, CoreError, CoreResult, ErrorCode, Record, RecordId, RecordMeta, RecordType, RecordWrite, Timestamp, Value,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value as Json};
use std::str::FromStr;
use std::sync::LazyLock;

/// Server-stamped columns, in row order.
const META: &[&str] = &[
    "tenant_id",
    "id",
    "app_id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "deleted_at",
    "deleted_by",
    "schema_version",
    "version",
];

/// Column lists of one record table, derived from the registry once.
struct Table {
    name: &'static str,
    /// Columns in row order: meta, fields (currency with its `_num` shadow), extras.
    columns: Vec<&'static str>,
}

/// Columns after the fields, per record type: item lists and derived values, then custom.
fn extras(record_type: RecordType) -> &'static [&'static str] {
    match record_type {
        RecordType::Account => &["domains", "custom_fields"],
        RecordType::Contact => {
            &["emails", "phones", "primary_email", "primary_phone", "primary_account_id", "custom_fields"]
        }
        RecordType::User => &[],
    }
}

impl Table {
    fn select_list(&self) -> String {
        self.columns.join(", ")
    }
}

fn build_table(record_type: RecordType) -> Table {
    let mut columns: Vec<&'static str> = META.to_vec();
    for f in fields(record_type) {
        columns.push(f.column);
        if f.value_type == ValueType::Currency {
            columns.push(num_column(f));
        }
    }
    columns.extend(extras(record_type));
    Table { name: table_name(record_type), columns }
}

pub(crate) fn table_name(record_type: RecordType) -> &'static str {
    match record_type {
        RecordType::Account => "accounts",
        RecordType::Contact => "contacts",
        RecordType::User => "users",
    }
}

/// The numeric shadow column of a currency field.
fn num_column(f: &FieldDef) -> &'static str {
    match f.column {
        "annual_revenue" => "annual_revenue_num",
        other => panic!("currency field {other} has no numeric column"),
    }
}

static ACCOUNTS: LazyLock<Table> = LazyLock::new(|| build_table(RecordType::Account));
static CONTACTS: LazyLock<Table> = LazyLock::new(|| build_table(RecordType::Contact));

fn table(record_type: RecordType) -> &'static Table {
    match record_type {
        RecordType::Account => &ACCOUNTS,
        RecordType::Contact => &CONTACTS,
        RecordType::User => panic!("users live in the user directory, not a record table"),
    }
}

fn encode_field(f: &FieldDef, value: &Value, out: &mut Vec<SqlValue>) {
    let v = match value {
        // A missing address is stored as an empty list, like an empty array field.
        Value::Null if f.value_type == ValueType::Address => SqlValue::text("[]"),
        // Matches are resolved before records are saved.
        Value::Null | Value::Match { .. } => SqlValue::Null,
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Int(n) => SqlValue::Int(*n),
        Value::Decimal(d) => {
            out.push(SqlValue::Text(d.to_string()));
            out.push(d.to_f64().map(SqlValue::Real).unwrap_or(SqlValue::Null));
            return;
        }
        Value::Bool(b) => SqlValue::Bool(*b),
        Value::Time(t) => SqlValue::Int(t.millis()),
        Value::Ref(id) => SqlValue::Text(id.canonical()),
        Value::List(items) => SqlValue::Text(serde_json::to_string(items).unwrap_or_else(|_| "[]".into())),
        Value::Addresses(list) => SqlValue::Text(serde_json::to_string(list).unwrap_or_else(|_| "[]".into())),
    };
    out.push(v);
    if f.value_type == ValueType::Currency {
        out.push(SqlValue::Null);
    }
}

fn decode_field(f: &FieldDef, row: &mut Row, i: &mut usize) -> Value {
    let at = *i;
    *i += if f.value_type == ValueType::Currency { 2 } else { 1 };
    if f.is_array {
        let raw = row.text(at).unwrap_or_default();
        return match f.value_type {
            ValueType::Address => Value::Addresses(serde_json::from_str::<Vec<Address>>(&raw).unwrap_or_default()),
            _ => Value::List(serde_json::from_str::<Vec<String>>(&raw).unwrap_or_default()),
        };
    }
    match f.value_type {
        ValueType::Number => row.int(at).map(Value::Int).unwrap_or(Value::Null),
        ValueType::Timestamp => row.int(at).map(|n| Value::Time(Timestamp(n))).unwrap_or(Value::Null),
        ValueType::Boolean => match row.take(at) {
            SqlValue::Null => Value::Null,
            SqlValue::Bool(b) => Value::Bool(b),
            SqlValue::Int(n) => Value::Bool(n != 0),
            _ => Value::Null,
        },
        ValueType::Currency => {
            row.text(at).and_then(|s| Decimal::from_str(&s).ok()).map(Value::Decimal).unwrap_or(Value::Null)
        }
        ValueType::Reference(rt) => {
            row.text(at).and_then(|s| RecordId::parse(rt, &s)).map(Value::Ref).unwrap_or(Value::Null)
        }
        ValueType::Address => {
            Value::Addresses(row.text(at).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
        }
        _ => row.text(at).map(Value::Text).unwrap_or(Value::Null),
    }
}

fn decode(record_type: RecordType, mut row: Row) -> StoreResult<Record> {
    let corrupt = || StoreError::Internal("stored record is malformed".into());
    let tenant_id = row.text(0).ok_or_else(corrupt)?;
    let id = row.text(1).and_then(|s| RecordId::parse(record_type, &s)).ok_or_else(corrupt)?;
    let meta = RecordMeta {
        id,
        tenant_id,
        app_id: row.text(2),
        created_at: Timestamp(row.int(3).ok_or_else(corrupt)?),
        updated_at: Timestamp(row.int(4).ok_or_else(corrupt)?),
        created_by: row.text(5).unwrap_or_default(),
        updated_by: row.text(6).unwrap_or_default(),
        deleted_at: row.int(7).map(Timestamp),
        deleted_by: row.text(8),
        schema_version: row.int(9).unwrap_or(1),
        version: row.int(10).ok_or_else(corrupt)?,
    };
    let mut i = META.len();
    let values = fields(record_type).iter().map(|f| decode_field(f, &mut row, &mut i)).collect();
    let mut record = Record::new(record_type, meta);
    record.values = values;
    for column in extras(record_type) {
        let raw = row.text(i).unwrap_or_default();
        match *column {
            "domains" => record.domains = serde_json::from_str(&raw).unwrap_or_default(),
            "emails" => record.emails = serde_json::from_str(&raw).unwrap_or_default(),
            "phones" => record.phones = serde_json::from_str(&raw).unwrap_or_default(),
            "primary_account_id" => record.primary_account = RecordId::parse(RecordType::Account, &raw),
            "custom_fields" => {
                if let Ok(Json::Object(custom)) = serde_json::from_str(&raw) {
                    record.custom = custom;
                }
            }
            // Derived columns (primary email / phone) exist for filtering and sorting only.
            _ => {}
        }
        i += 1;
    }
    Ok(record)
}

fn encode(record: &Record) -> Vec<SqlValue> {
    let m = &record.meta;
    let mut out = vec![
        SqlValue::text(m.tenant_id.clone()),
        SqlValue::text(m.id.canonical()),
        SqlValue::opt_text(m.app_id.clone()),
        SqlValue::Int(m.created_at.millis()),
        SqlValue::Int(m.updated_at.millis()),
        SqlValue::text(m.created_by.clone()),
        SqlValue::text(m.updated_by.clone()),
        SqlValue::opt_int(m.deleted_at.map(Timestamp::millis)),
        SqlValue::opt_text(m.deleted_by.clone()),
        SqlValue::Int(m.schema_version),
        SqlValue::Int(m.version),
    ];
    for (f, v) in record.fields().iter().zip(&record.values) {
        encode_field(f, v, &mut out);
    }
    let list = |v: Result<String, serde_json::Error>| SqlValue::Text(v.unwrap_or_else(|_| "[]".into()));
    for column in extras(record.record_type) {
        out.push(match *column {
            "domains" => list(serde_json::to_string(&record.domains)),
            "emails" => list(serde_json::to_string(&record.emails)),
            "phones" => list(serde_json::to_string(&record.phones)),
            "primary_email" => SqlValue::opt_text(record.primary_email()),
            "primary_phone" => SqlValue::opt_text(record.primary_phone()),
            "primary_account_id" => SqlValue::opt_text(record.primary_account.map(|a| a.canonical())),
            _ => SqlValue::Text(Json::Object(record.custom.clone()).to_string()),
        });
    }
    out
}

/// `tenant_id = $1` plus the app-scope condition, as the start of a WHERE clause.
fn scope_clause(q: &mut SqlBuilder, actor: &Actor) {
    let t = q.bind(SqlValue::text(actor.tenant.clone()));
    q.push(&format!(" WHERE tenant_id = {t}"));
    if let Some(app) = &actor.app {
        let a = q.bind(SqlValue::text(app.clone()));
        q.push(&format!(" AND app_id = {a}"));
    }
}

/// Reads one record visible to `actor`; archived ones only with `include_deleted`.
/// `lock` takes a row lock for the rest of a write transaction.
pub async fn get<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    include_deleted: bool,
    lock: bool,
) -> StoreResult<Option<Record>> {
    let t = table(rt);
    let mut q = SqlBuilder::new(format!("SELECT {} FROM {}", t.select_list(), t.name));
    scope_clause(&mut q, actor);
    let p = q.bind(SqlValue::text(id.canonical()));
    q.push(&format!(" AND id = {p}"));
    if !include_deleted {
        q.push(" AND deleted_at IS NULL");
    }
    if lock {
        q.push(c.dialect().for_update());
    }
    match c.query_opt(&q.sql, &q.params).await? {
        Some(row) => Ok(Some(decode(rt, row)?)),
        None => Ok(None),
    }
}

/// One page of records matching `plan`, after the cursor position `after` (sort-key values,
/// id last). Returns the records and, when more may follow, the last row's position.
pub async fn list<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    plan: &Plan,
    after: Option<&[Json]>,
    limit: usize,
) -> StoreResult<(Vec<Record>, Option<Vec<Json>>)> {
    let t = table(rt);
    let dense = dense_needles(c, actor, rt, plan, limit).await?;
    let q = list_sql(c.dialect(), actor, rt, plan, after, limit, &dense)?;
    let rows = c.query(&q.sql, &q.params).await?;
    take_page(rows, t.columns.len(), plan.sort.len(), limit, |row| decode(rt, row))
}

/// Fewest index matches that make a search needle dense, whatever the table's size.
pub const DENSE_MIN_MATCHES: i64 = 1_000;

/// The search needles of `plan`'s filter (itself, or one of its top-level `and` parts) that
/// match so many of the tenant's records that a page is found sooner without the search
/// index (SQLite; PostgreSQL's planner weighs its trigram index itself).
///
/// Narrowed by the index, a page gathers every match first, reads each matching record and
/// sorts them: its cost grows with the number of matches, and a common word ("acme" in a
/// million accounts) makes it seconds. Without the narrowing, the database walks the page's
/// order and tests each row until the page is full: about `limit × rows ÷ matches` rows. So,
/// in an order an index walks, a needle is dense when its matches among the tenant's records,
/// counted through the index up to a bound, reach `√(limit × rows)` (where the two costs meet;
/// `rows` is the table's largest rowid, an upper bound of the tenant's size, so the bound
/// leans towards the index), and at least [`DENSE_MIN_MATCHES`]. Only which plan runs depends on this: the
/// filter itself is always evaluated, so results are the same either way.
pub(crate) async fn dense_needles<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    plan: &Plan,
    limit: usize,
) -> StoreResult<Vec<String>> {
    // The walk stops early only in an order an index gives (after the tenant): the default
    // one, `updated_at`, or the id. In any other order every row is read and sorted anyway.
    let walkable = plan
        .sort
        .first()
        .is_none_or(|s| matches!(s.column, corral_core::filter::SortKey::Column("created_at" | "updated_at" | "id")));
    let Some(filter) = plan.filter.as_ref().filter(|_| c.dialect() == Dialect::Sqlite && walkable) else {
        return Ok(Vec::new());
    };
    let name = table(rt).name;
    let parts = match filter {
        Cond::And(parts) => parts.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    let needles: Vec<(&str, Vec<&'static str>)> = parts.into_iter().filter_map(|p| search_needle(name, p)).collect();
    if needles.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        c.query_opt(&format!("SELECT max(rowid) FROM {name}"), &[]).await?.and_then(|mut r| r.int(0)).unwrap_or(0);
    let bound = (((limit as f64 + 1.0) * rows as f64).sqrt() as i64).max(DENSE_MIN_MATCHES);
    if rows < bound {
        return Ok(Vec::new()); // the whole table is fewer rows than the bound: nothing is dense
    }
    let mut dense = Vec::new();
    for (needle, fields) in needles {
        let mut q = SqlBuilder::default();
        let matching = fts_matches(&mut q, &actor.tenant, rt.api_name(), needle, &fields);
        q.sql = format!("SELECT count(*) FROM (SELECT 1 FROM {matching} LIMIT {bound})");
        let matches = c.query_opt(&q.sql, &q.params).await?.and_then(|mut row| row.int(0)).unwrap_or(0);
        if matches >= bound {
            dense.push(needle.to_owned());
        }
    }
    Ok(dense)
}

/// Appends a plan's filter, the keyset position and the order (nulls last) with one row more
/// than the page, to a statement whose WHERE clause has begun.
pub(crate) fn filter_and_keyset(
    q: &mut SqlBuilder,
    dialect: Dialect,
    at: At<'_>,
    plan: &Plan,
    after: Option<&[Json]>,
) -> StoreResult<()> {
    if let Some(filter) = &plan.filter {
        let sql = compile(q, dialect, at, filter);
        q.push(" AND ").push(&sql);
    }
    let keys: Vec<String> = plan.sort.iter().map(|s| dialect.sort_key(&s.column)).collect();
    if let Some(after) = after {
        if after.len() != plan.sort.len() {
            return Err(CoreError::invalid_cursor().into());
        }
        let sql = keyset_sql(q, plan, &keys, after)?;
        q.push(" AND ").push(&sql);
    }
    let order: Vec<String> = plan
        .sort
        .iter()
        .zip(&keys)
        .map(|(s, k)| format!("{k} {} NULLS LAST", if s.descending { "DESC" } else { "ASC" }))
        .collect();
    q.push(&format!(" ORDER BY {}", order.join(", ")));
    Ok(())
}

/// Turns the rows of a page query (columns, then the sort keys) into items and the position
/// of the last one when more follow.
pub(crate) fn take_page<T>(
    rows: Vec<Row>,
    width: usize,
    keys: usize,
    limit: usize,
    decode: impl Fn(Row) -> StoreResult<T>,
) -> StoreResult<(Vec<T>, Option<Vec<Json>>)> {
    let more = rows.len() > limit;
    let mut items = Vec::with_capacity(rows.len().min(limit));
    let mut last_position = None;
    for mut row in rows.into_iter().take(limit) {
        let position: Vec<Json> = (0..keys).map(|i| sql_to_json(row.take(width + i))).collect();
        row.0.truncate(width);
        items.push(decode(row)?);
        last_position = Some(position);
    }
    Ok((items, if more { last_position } else { None }))
}

/// The statement of one page: all record columns plus the sort keys, the plan's conditions,
/// the keyset position, the order with nulls last, and one row more than the page.
fn list_sql(
    dialect: Dialect,
    actor: &Actor,
    rt: RecordType,
    plan: &Plan,
    after: Option<&[Json]>,
    limit: usize,
    dense: &[String],
) -> StoreResult<SqlBuilder> {
    let t = table(rt);
    let keys: Vec<String> = plan.sort.iter().map(|s| dialect.sort_key(&s.column)).collect();
    let from = from_clause(dialect, rt, plan);
    let mut q = SqlBuilder::new(format!("SELECT {}, {} FROM {from}", t.select_list(), keys.join(", ")));
    scope_clause(&mut q, actor);
    if !plan.include_deleted {
        q.push(" AND deleted_at IS NULL");
    }
    filter_and_keyset(&mut q, dialect, At { dense, ..At::outer(t.name, actor) }, plan, after)?;
    q.push(&format!(" LIMIT {}", limit + 1));
    Ok(q)
}

/// Active records visible to `actor` that match `filter` and the extra condition `condition`
/// writes (a lookup in a side index, such as the duplicate keys), oldest first.
pub(crate) async fn select_scoped<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    filter: Option<&Cond>,
    condition: impl FnOnce(&mut SqlBuilder) -> String,
) -> StoreResult<Vec<Record>> {
    let t = table(rt);
    let mut q = SqlBuilder::new(format!("SELECT {} FROM {}", t.select_list(), t.name));
    scope_clause(&mut q, actor);
    q.push(" AND deleted_at IS NULL");
    if let Some(filter) = filter {
        let sql = compile(&mut q, c.dialect(), At::outer(t.name, actor), filter);
        q.push(" AND ").push(&sql);
    }
    let extra = condition(&mut q);
    q.push(" AND ").push(&extra).push(" ORDER BY created_at, id");
    c.query(&q.sql, &q.params).await?.into_iter().map(|row| decode(rt, row)).collect()
}

/// Up to `limit` active records of every tenant after the position (tenant, id), in that
/// order: for startup passes over existing rows (backfills).
pub(crate) async fn scan_active<C: Conn>(
    c: &mut C,
    rt: RecordType,
    after: (&str, &str),
    limit: usize,
) -> StoreResult<Vec<Record>> {
    let t = table(rt);
    let sql = format!(
        "SELECT {} FROM {} WHERE (tenant_id > $1 OR (tenant_id = $1 AND id > $2)) AND deleted_at IS NULL ORDER BY tenant_id, id LIMIT {limit}",
        t.select_list(),
        t.name
    );
    let params = [SqlValue::text(after.0), SqlValue::text(after.1)];
    c.query(&sql, &params).await?.into_iter().map(|row| decode(rt, row)).collect()
}

/// The database's plan for one page of `plan` (for index checks): one line per plan node.
/// PostgreSQL is asked with sequential scans disabled, so a missing index shows as a
/// `Seq Scan` even on small tables.
pub async fn explain<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    plan: &Plan,
    after: Option<&[Json]>,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let dense = dense_needles(c, actor, rt, plan, limit).await?;
    let q = list_sql(c.dialect(), actor, rt, plan, after, limit, &dense)?;
    Ok(crate::db::explain(c, &q).await?)
}

/// The record table of a statement, pinned to the index of a unique-key lookup when the
/// filter requires one (see [`lookup_index`]).
fn from_clause(dialect: Dialect, rt: RecordType, plan: &Plan) -> String {
    let name = table(rt).name;
    match (dialect, plan.filter.as_ref().and_then(|f| lookup_index(rt, f))) {
        (Dialect::Sqlite, Some(index)) => format!("{name} INDEXED BY {index}"),
        _ => name.to_owned(),
    }
}

/// The index that serves a filter requiring an exact domain or email (a conjunct `eq` / `in`
/// on `domains`, `contact_emails` or `primary_email`): such a filter matches a handful of
/// rows, and reading them by key is right whatever else the query asks. SQLite is told so
/// (`INDEXED BY`) because without statistics — a server that loaded its data since it last
/// analysed — it walks the sort index of the whole tenant instead, probing every row
/// (docs/PERFORMANCE.md, "Query plans at scale"). PostgreSQL keeps statistics itself.
fn lookup_index(rt: RecordType, cond: &Cond) -> Option<&'static str> {
    match cond {
        Cond::And(parts) => parts.iter().find_map(|c| lookup_index(rt, c)),
        Cond::Cmp { target, op: Op::Eq | Op::In, .. } => match (rt, target) {
            // The primary key: `id IN (ids holding the key)` reads those rows only.
            (RecordType::Account, Target::Domains) => Some("sqlite_autoindex_accounts_1"),
            (RecordType::Contact, Target::Emails) => Some("sqlite_autoindex_contacts_1"),
            (RecordType::Contact, Target::Column("primary_email")) => Some("contacts_primary_email"),
            _ => None,
        },
        _ => None,
    }
}

/// `WHERE` tenant, app scope, archived state and filter of a plan: shared by lists and counts.
fn where_clause(q: &mut SqlBuilder, dialect: Dialect, actor: &Actor, rt: RecordType, plan: &Plan) {
    scope_clause(q, actor);
    if !plan.include_deleted {
        q.push(" AND deleted_at IS NULL");
    }
    if let Some(filter) = &plan.filter {
        let sql = compile(q, dialect, At::outer(table(rt).name, actor), filter);
        q.push(" AND ").push(&sql);
    }
}

/// Most matches SQLite counts for an estimate before it stops.
pub const ESTIMATE_CAP: i64 = 100_000;
/// Windows of consecutive rowids a SQLite estimate samples, and their width: 2,048 row slots
/// read in 256 short index ranges (about a millisecond at any table size).
pub const SAMPLE_WINDOWS: i64 = 256;
pub const SAMPLE_WIDTH: i64 = 8;
/// Below this many rowids the table is counted instead of sampled (it is small).
pub const SAMPLE_MIN_ROWIDS: i64 = 10_000;
/// Fewest matching rows a sample must see to be used (the estimate's relative error is
/// about one over its square root); rarer matches are counted.
pub const SAMPLE_MIN_MATCHES: i64 = 32;

/// How many records match a plan, estimated cheaply: `(n, is_estimate)`.
///
/// PostgreSQL: the planner's estimate (one `EXPLAIN`, no rows read). SQLite keeps no such
/// statistics, so it samples: it reads [`SAMPLE_WINDOWS`] windows of [`SAMPLE_WIDTH`]
/// consecutive rowids at random across the record table (every row of every tenant has one
/// rowid, so each row is equally likely to be read), counts the rows in them that the plan
/// matches (tenant, scope and filter included), and scales by the table's largest rowid.
/// Holes left by purged rows count as non-matching slots, so the scale stays unbiased. When
/// the table is small or the sample sees fewer than [`SAMPLE_MIN_MATCHES`] matches, it counts
/// at most [`ESTIMATE_CAP`] matches through the plan's indexes instead: exact below the cap
/// (`false`), the cap (a lower bound flagged as an estimate) above it.
pub async fn estimate<C: Conn>(c: &mut C, actor: &Actor, rt: RecordType, plan: &Plan) -> StoreResult<(i64, bool)> {
    if c.dialect() == Dialect::Sqlite {
        let name = table(rt).name;
        let max_rowid =
            c.query_opt(&format!("SELECT max(rowid) FROM {name}"), &[]).await?.and_then(|mut r| r.int(0)).unwrap_or(0);
        if max_rowid >= SAMPLE_MIN_ROWIDS {
            let q = sample_sql(c.dialect(), actor, rt, plan, max_rowid);
            let matches = c.query_opt(&q.sql, &q.params).await?.and_then(|mut r| r.int(0)).unwrap_or(0);
            if matches >= SAMPLE_MIN_MATCHES {
                let slots = SAMPLE_WINDOWS * SAMPLE_WIDTH;
                return Ok(((max_rowid as i128 * matches as i128 / slots as i128) as i64, true));
            }
        }
        let from = from_clause(c.dialect(), rt, plan);
        let mut q = SqlBuilder::new(format!("SELECT COUNT(*) FROM (SELECT 1 FROM {from}"));
        where_clause(&mut q, c.dialect(), actor, rt, plan);
        q.push(&format!(" LIMIT {})", ESTIMATE_CAP + 1));
        let n = c.query_opt(&q.sql, &q.params).await?.and_then(|mut r| r.int(0)).unwrap_or(0);
        return Ok(if n > ESTIMATE_CAP { (ESTIMATE_CAP, true) } else { (n, false) });
    }
    let mut q = SqlBuilder::new(format!("EXPLAIN SELECT 1 FROM {}", table(rt).name));
    where_clause(&mut q, c.dialect(), actor, rt, plan);
    let first = c.query_opt(&q.sql, &q.params).await?.and_then(|mut r| r.text(0)).unwrap_or_default();
    let rows = first
        .split("rows=")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    Ok((rows.unwrap_or(0), true))
}

/// The SQLite sample of [`estimate`]: random window starts from a recursive CTE, each read
/// as one rowid range (`CROSS JOIN` keeps the windows as the outer loop, so no index of the
/// filter can turn it into a scan), and the plan's own conditions on the rows found.
pub(crate) fn sample_sql(dialect: Dialect, actor: &Actor, rt: RecordType, plan: &Plan, max_rowid: i64) -> SqlBuilder {
    let name = table(rt).name;
    let mut q = SqlBuilder::new(format!(
        "WITH RECURSIVE windows(n, start) AS (SELECT 1, abs(random() % {max_rowid}) + 1 \
         UNION ALL SELECT n + 1, abs(random() % {max_rowid}) + 1 FROM windows WHERE n < {SAMPLE_WINDOWS}) \
         SELECT COUNT(*) FROM windows CROSS JOIN {name} ON {name}.rowid >= windows.start AND {name}.rowid < windows.start + {SAMPLE_WIDTH}"
    ));
    where_clause(&mut q, dialect, actor, rt, plan);
    q
}

/// How many records match a plan, counted exactly.
pub async fn count<C: Conn>(c: &mut C, actor: &Actor, rt: RecordType, plan: &Plan) -> StoreResult<i64> {
    let from = from_clause(c.dialect(), rt, plan);
    let mut q = SqlBuilder::new(format!("SELECT COUNT(*) FROM {from}"));
    where_clause(&mut q, c.dialect(), actor, rt, plan);
    Ok(c.query_opt(&q.sql, &q.params).await?.and_then(|mut r| r.int(0)).unwrap_or(0))
}

fn sql_to_json(v: SqlValue) -> Json {
    match v {
        SqlValue::Null => Json::Null,
        SqlValue::Int(n) => Json::from(n),
        SqlValue::Real(f) => serde_json::Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null),
        SqlValue::Text(s) => Json::String(s),
        SqlValue::Bool(b) => Json::Bool(b),
    }
}

fn json_to_sql(v: &Json) -> Option<SqlValue> {
    Some(match v {
        Json::Null => SqlValue::Null,
        Json::Bool(b) => SqlValue::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Int(i),
            None => SqlValue::Real(n.as_f64()?),
        },
        Json::String(s) => SqlValue::Text(s.clone()),
        _ => return None,
    })
}

/// Where a filter is compiled: the record table, the name its columns are qualified by in
/// the statement (the table itself, or the alias of a related record), and the caller's
/// tenant and app scope, which relationship filters apply to the related records too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub table: &'a str,
    pub qual: &'a str,
    pub tenant: &'a TenantId,
    pub app: Option<&'a str>,
    /// Search needles of this table that are not narrowed by the search index ([`dense_needles`]).
    pub dense: &'a [String],
}

impl<'a> At<'a> {
    /// The statement's own record table, for `actor`.
    pub fn outer(table: &'a str, actor: &'a Actor) -> Self {
        At { table, qual: table, tenant: &actor.tenant, app: actor.app.as_deref(), dense: &[] }
    }
}

/// Compiles a resolved filter to SQL with bound values only: the one recursive function
/// every filter of every dialect goes through. Every comparison yields true or false, never
/// NULL, so `NOT` means "does not match" (see `corral_core::filter` for the semantics).
fn compile(q: &mut SqlBuilder, dialect: Dialect, at: At<'_>, cond: &Cond) -> String {
    match cond {
        Cond::And(parts) if parts.is_empty() => "1 = 1".to_owned(),
        Cond::Or(parts) if parts.is_empty() => "1 = 0".to_owned(),
        Cond::And(parts) => {
            format!("({})", parts.iter().map(|c| compile(q, dialect, at, c)).collect::<Vec<_>>().join(" AND "))
        }
        Cond::Or(parts) => {
            let narrow = search_narrowing(q, dialect, at, cond);
            let sql =
                format!("({})", parts.iter().map(|c| compile(q, dialect, at, c)).collect::<Vec<_>>().join(" OR "));
            match narrow {
                Some(n) => format!("({n} AND {sql})"),
                None => sql,
            }
        }
        Cond::Not(inner) => format!("(NOT {})", compile(q, dialect, at, inner)),
        Cond::Related { relation, cond } => compile_related(q, dialect, at, *relation, cond),
        Cond::Cmp { .. } if search_needle(at.table, cond).is_some() => {
            let narrow = search_narrowing(q, dialect, at, cond).unwrap_or_else(|| "1 = 1".to_owned());
            let Cond::Cmp { target, kind, op, values } = cond else { unreachable!("matched above") };
            let sql = compile_cmp(q, dialect, at, target, *kind, *op, values);
            format!("({narrow} AND {sql})")
        }
        Cond::Cmp { target, kind, op, values } => compile_cmp(q, dialect, at, target, *kind, *op, values),
    }
}

/// The alias of a related record in a relationship filter (never a table name, so the
/// outer record stays addressable by its table's name inside the subquery).
const RELATED: &str = "rel";

/// A relationship filter (docs/API.md "Filters across relationships"): some related record
/// satisfies `inner`. The related record must be active, of the same tenant (the edge's
/// tenant and the record's: structural, not left to ids being unique) and within the caller's
/// app scope. To-many relations go through the `account_contacts` edge, read by its index on
/// the outer record's end (primary key for an account's contacts, `account_contacts_by_contact`
/// for a contact's accounts); to-one relations read the related record by primary key.
///
/// The related record is the only table of the innermost `FROM`, so the columns `inner`
/// names unqualified are its own (the edge table shares names such as `created_at` with it).
fn compile_related(q: &mut SqlBuilder, dialect: Dialect, at: At<'_>, relation: Relation, inner: &Cond) -> String {
    let target = table(relation.target()).name;
    let t = q.bind(SqlValue::text(at.tenant));
    let mut related = format!("{RELATED}.tenant_id = {t} AND {RELATED}.deleted_at IS NULL");
    if let Some(app) = at.app {
        let a = q.bind(SqlValue::text(app));
        related.push_str(&format!(" AND {RELATED}.app_id = {a}"));
    }
    let inner_at = At { table: target, qual: RELATED, dense: &[], ..at };
    let pred = compile(q, dialect, inner_at, inner);
    let outer = at.qual;
    match relation {
        Relation::Accounts | Relation::Contacts => {
            let (near, far) = if relation == Relation::Accounts {
                ("contact_id", "account_id")
            } else {
                ("account_id", "contact_id")
            };
            format!(
                "EXISTS (SELECT 1 FROM account_contacts edge WHERE edge.tenant_id = {t} AND edge.{near} = {outer}.id \
                 AND EXISTS (SELECT 1 FROM {target} {RELATED} WHERE {RELATED}.id = edge.{far} AND {related} AND {pred}))"
            )
        }
        Relation::PrimaryAccount | Relation::ParentAccount => {
            let reference =
                if relation == Relation::PrimaryAccount { "primary_account_id" } else { "parent_account_id" };
            format!(
                "EXISTS (SELECT 1 FROM {target} {RELATED} WHERE {RELATED}.id = {outer}.{reference} AND {related} AND {pred})"
            )
        }
    }
}

/// A field search narrows by (docs/API.md, "Queries"): its name in `search_values` (SQLite),
/// or nothing when it is not indexed.
fn search_field(table: &str, target: &Target) -> Option<&'static str> {
    match (table, target) {
        ("accounts", Target::Column(c @ ("name" | "legal_name" | "website"))) => Some(c),
        ("contacts", Target::Column(c @ ("display_name" | "first_name" | "last_name"))) => Some(c),
        ("accounts", Target::Domains) => Some("domain"),
        ("contacts", Target::Emails) => Some("email_key"),
        _ => None,
    }
}

/// Trigrams need three characters: shorter needles are matched by LIKE alone.
const MIN_INDEXED_NEEDLE_CHARS: usize = 3;

/// The needle and searched fields of a substring search the index can narrow: one
/// `contains` / `starts_with` / `ends_with` on an indexed field, or an `or` of them with one
/// needle (what `q` resolves to).
fn search_needle<'a>(table: &str, cond: &'a Cond) -> Option<(&'a str, Vec<&'static str>)> {
    match cond {
        Cond::Cmp { target, op: Op::Contains | Op::StartsWith | Op::EndsWith, values, .. } => {
            let needle = values.first()?.as_text()?;
            let field = search_field(table, target)?;
            (needle.chars().count() >= MIN_INDEXED_NEEDLE_CHARS).then(|| (needle, vec![field]))
        }
        Cond::Or(parts) if !parts.is_empty() => {
            let mut fields = Vec::new();
            let mut needle = None;
            for part in parts {
                let (n, f) = search_needle(table, part)?;
                if needle.is_some_and(|m| m != n) {
                    return None;
                }
                needle = Some(n);
                fields.extend(f);
            }
            Some((needle?, fields))
        }
        _ => None,
    }
}

/// A condition that holds for every row `cond` matches and for few others, served by the
/// search index; the caller still evaluates `cond` itself, so results never depend on it.
fn search_narrowing(q: &mut SqlBuilder, dialect: Dialect, at: At<'_>, cond: &Cond) -> Option<String> {
    let (table, qual, tenant) = (at.table, at.qual, at.tenant);
    let (needle, fields) = search_needle(table, cond)?;
    if at.dense.iter().any(|d| d == needle) {
        return None;
    }
    match dialect {
        // The trigram index folds case (ASCII and beyond) on both sides, so it finds every
        // row the ASCII-case-insensitive LIKE finds.
        Dialect::Sqlite => {
            let record_type = if table == "contacts" { "contact" } else { "account" };
            let matching = fts_matches(q, tenant, record_type, needle, &fields);
            Some(format!("{qual}.id IN (SELECT s.record_id FROM {matching})"))
        }
        // pg_trgm GIN indexes serve each field's LIKE predicate itself; an `or` over fields in
        // different tables (what `q` is) cannot combine them, so it is narrowed by the union of
        // one index-served lookup per field, with the same predicates.
        Dialect::Postgres if fields.len() < 2 && !matches!(fields[0], "domain" | "email_key") => None,
        Dialect::Postgres => {
            let t = q.bind(SqlValue::text(tenant));
            let p = q.bind(SqlValue::Text(format!("%{}%", escape_like(needle))));
            let lookups = fields
                .iter()
                .map(|f| match *f {
                    "domain" => {
                        format!("SELECT account_id FROM account_domains WHERE tenant_id = {t} AND domain LIKE {p}")
                    }
                    "email_key" => {
                        format!("SELECT contact_id FROM contact_emails WHERE tenant_id = {t} AND email_key LIKE {p}")
                    }
                    column => format!("SELECT id FROM {table} WHERE tenant_id = {t} AND lower({column}) LIKE {p}"),
                })
                .collect::<Vec<_>>()
                .join(" UNION ");
            Some(format!("{qual}.id IN ({lookups})"))
        }
    }
}

/// `FROM … WHERE …` of the search-index rows (`s`, a `search_values` row) where `needle`
/// occurs in one of `fields` of the tenant's records of `record_type` (SQLite). The needle is
/// one quoted FTS5 phrase: a substring, with no query syntax.
fn fts_matches(q: &mut SqlBuilder, tenant: &TenantId, record_type: &str, needle: &str, fields: &[&str]) -> String {
    let phrase = q.bind(SqlValue::Text(format!("\"{}\"", needle.replace('"', "\"\""))));
    let t = q.bind(SqlValue::text(tenant));
    let r = q.bind(SqlValue::text(record_type));
    let fields = fields.iter().map(|f| format!("'{f}'")).collect::<Vec<_>>().join(", ");
    format!(
        "search_fts JOIN search_values s ON s.key = search_fts.rowid \
         WHERE search_fts MATCH {phrase} AND s.tenant_id = {t} AND s.record_type = {r} AND s.field IN ({fields})"
    )
}

/// One comparison (see `compile`).
#[allow(clippy::too_many_arguments)]
fn compile_cmp(
    q: &mut SqlBuilder,
    dialect: Dialect,
    at: At<'_>,
    target: &Target,
    kind: Kind,
    op: Op,
    values: &[Value],
) -> String {
    let (table, qual, tenant) = (at.table, at.qual, at.tenant);
    // Negations are the negation of their positive operator, over all elements.
    let (positive, negate) = match op {
        Op::Ne => (Op::Eq, true),
        Op::NotIn => (Op::In, true),
        Op::NotExists => (Op::Exists, true),
        other => (other, false),
    };
    let sql = match target {
        Target::Column(column) => predicate(q, dialect, column, kind, positive, values),
        // Tags live in an indexed side table; other lists (websites) are read from JSON.
        Target::List("tags") => {
            let t = q.bind(SqlValue::text(tenant));
            let rt_param = q.bind(SqlValue::text(if table == "contacts" { "contact" } else { "account" }));
            let pred = if positive == Op::Exists {
                "1 = 1".to_owned()
            } else {
                predicate(q, dialect, "k.tag_key", Kind::Exact, positive, values)
            };
            // Not correlated with the outer row: the index on the side table drives.
            format!(
                "{qual}.id IN (SELECT k.record_id FROM record_tags k WHERE k.tenant_id = {t} AND k.record_type = {rt_param} AND {pred})"
            )
        }
        Target::List(column) => {
            let (from, value) = dialect.json_array_elements(column);
            any_element(q, dialect, &from, &value, kind, positive, values)
        }
        Target::Custom { name, is_array: false } => {
            let expr = dialect.custom_value(name, kind);
            predicate(q, dialect, &expr, kind, positive, values)
        }
        Target::Custom { name, is_array: true } => {
            let (from, value) = dialect.custom_elements(name);
            any_element(q, dialect, &from, &value, kind, positive, values)
        }
        // Driven from the key index, so a lookup by domain or email reads no other rows.
        Target::Domains | Target::Emails => {
            let (index, owner, key) = if *target == Target::Domains {
                ("account_domains", "account_id", "domain")
            } else {
                ("contact_emails", "contact_id", "email_key")
            };
            let t = q.bind(SqlValue::text(tenant));
            let pred = if positive == Op::Exists {
                "1 = 1".to_owned()
            } else {
                predicate(q, dialect, &format!("k.{key}"), kind, positive, values)
            };
            // An exact key reads the key's index entries, not all of the tenant's keys
            // (which SQLite prefers without statistics: that index is covering).
            let pinned = match (dialect, positive) {
                (Dialect::Sqlite, Op::Eq | Op::In) if *target == Target::Domains => {
                    " INDEXED BY account_domains_by_domain"
                }
                (Dialect::Sqlite, Op::Eq | Op::In) => " INDEXED BY contact_emails_by_key",
                _ => "",
            };
            if matches!(positive, Op::Contains | Op::StartsWith | Op::EndsWith) {
                // A fragment cannot seek the key index: checked per row (by its primary key)
                // on the rows the search index narrowed to, not by reading every key.
                format!("EXISTS (SELECT 1 FROM {index} k WHERE k.tenant_id = {t} AND k.{owner} = {qual}.id AND {pred})")
            } else {
                format!("{qual}.id IN (SELECT k.{owner} FROM {index} k{pinned} WHERE k.tenant_id = {t} AND {pred})")
            }
        }
    };
    if negate { format!("(NOT {sql})") } else { sql }
}

/// `EXISTS` over the elements of an array value (`from` yields them as `value`): some element
/// matches, or for `exists` there is any element at all.
fn any_element(
    q: &mut SqlBuilder,
    dialect: Dialect,
    from: &str,
    value: &str,
    kind: Kind,
    positive: Op,
    values: &[Value],
) -> String {
    let pred =
        if positive == Op::Exists { "1 = 1".to_owned() } else { predicate(q, dialect, value, kind, positive, values) };
    format!("EXISTS (SELECT 1 FROM {from} WHERE {pred})")
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A positive comparison of one value expression, false (not NULL) when it is missing.
/// What a filter compares of `expr`: text case-insensitively (lower-cased), other kinds as
/// they are. Custom attribute indexes ([`crate::schemas`]) index exactly this expression.
pub(crate) fn compared(expr: &str, kind: Kind) -> String {
    if kind == Kind::Text { format!("lower({expr})") } else { expr.to_owned() }
}

fn predicate(q: &mut SqlBuilder, dialect: Dialect, expr: &str, kind: Kind, op: Op, values: &[Value]) -> String {
    let lhs = compared(expr, kind);
    let mut bind = |v: &Value| q.bind(filter_value(kind, v));
    let cmp = match op {
        Op::Exists => return format!("({expr} IS NOT NULL)"),
        Op::Eq => format!("{lhs} = {}", bind(&values[0])),
        Op::In => format!("{lhs} IN ({})", values.iter().map(&mut bind).collect::<Vec<_>>().join(", ")),
        Op::Gt => format!("{lhs} > {}", bind(&values[0])),
        Op::Gte => format!("{lhs} >= {}", bind(&values[0])),
        Op::Lt => format!("{lhs} < {}", bind(&values[0])),
        Op::Lte => format!("{lhs} <= {}", bind(&values[0])),
        Op::Between => {
            let (low, high) = (bind(&values[0]), bind(&values[1]));
            format!("{lhs} >= {low} AND {lhs} <= {high}")
        }
        Op::Contains | Op::StartsWith | Op::EndsWith => {
            let text = values[0].as_text().unwrap_or_default();
            let pattern = match op {
                Op::Contains => format!("%{}%", escape_like(text)),
                Op::StartsWith => format!("{}%", escape_like(text)),
                _ => format!("%{}", escape_like(text)),
            };
            let p = q.bind(SqlValue::Text(pattern));
            // Backslash is PostgreSQL's default escape; an explicit ESCAPE clause would turn the
            // pattern into an expression the pg_trgm indexes cannot serve.
            match dialect {
                Dialect::Sqlite => format!("{lhs} LIKE {p} ESCAPE '\\'"),
                Dialect::Postgres => format!("{lhs} LIKE {p}"),
            }
        }
        Op::Ne | Op::NotIn | Op::NotExists => unreachable!("negations compile as NOT of their positive form"),
    };
    format!("({expr} IS NOT NULL AND {cmp})")
}

/// The bound form of a filter value of `kind`.
fn filter_value(kind: Kind, v: &Value) -> SqlValue {
    match (kind, v) {
        (Kind::Real, v) => corral_core::filter::real(v).map(SqlValue::Real).unwrap_or(SqlValue::Null),
        (Kind::Bool, Value::Bool(b)) => SqlValue::Bool(*b),
        (_, Value::Int(n)) => SqlValue::Int(*n),
        (_, Value::Text(s)) => SqlValue::Text(s.clone()),
        _ => SqlValue::Null,
    }
}

/// The keyset condition "sorts after `after`" for keys that sort with nulls last in both
/// directions: for some i, keys before i equal the cursor's and key i comes after it.
/// Sort columns that are never null (NOT NULL in every record table).
const NEVER_NULL_SORT_COLUMNS: &[&str] = &["id", "created_at", "updated_at", "version", "schema_version"];

/// The keyset condition "after `after`" in the plan's order (nulls last). Keys that can be
/// null need `OR key IS NULL` alternatives; keys that never are get plain comparisons, and
/// when every key is one of those and all run one way, a single row-value comparison
/// (`(created_at, id) < ($1, $2)`). Both databases answer that with a range of the sort
/// index, so a page deep into a walk costs what the first one does; the `IS NULL`
/// alternatives made them read the tenant from its start.
fn keyset_sql(q: &mut SqlBuilder, plan: &Plan, keys: &[String], after: &[Json]) -> StoreResult<String> {
    let values: Vec<SqlValue> =
        after.iter().map(json_to_sql).collect::<Option<_>>().ok_or_else(CoreError::invalid_cursor)?;
    let never_null: Vec<bool> = plan
        .sort
        .iter()
        .map(|s| matches!(s.column, SortKey::Column(c) if NEVER_NULL_SORT_COLUMNS.contains(&c)))
        .collect();
    let one_way = plan.sort.iter().all(|s| s.descending == plan.sort[0].descending);
    if one_way && never_null.iter().all(|n| *n) && values.iter().all(|v| *v != SqlValue::Null) {
        let op = if plan.sort[0].descending { "<" } else { ">" };
        let params: Vec<String> = values.iter().map(|v| q.bind(v.clone())).collect();
        return Ok(match keys.len() {
            1 => format!("{} {op} {}", keys[0], params[0]),
            _ => format!("({}) {op} ({})", keys.join(", "), params.join(", ")),
        });
    }
    let mut alternatives = Vec::new();
    for i in 0..keys.len() {
        // Nothing sorts after a null (nulls are last) at this key; ties are decided by later keys.
        if values[i] == SqlValue::Null {
            continue;
        }
        let mut parts = Vec::new();
        for j in 0..i {
            parts.push(match &values[j] {
                SqlValue::Null => format!("{} IS NULL", keys[j]),
                v => {
                    let p = q.bind(v.clone());
                    format!("{} = {p}", keys[j])
                }
            });
        }
        let p = q.bind(values[i].clone());
        let op = if plan.sort[i].descending { "<" } else { ">" };
        parts.push(match never_null[i] {
            true => format!("{} {op} {p}", keys[i]),
            false => format!("({} {op} {p} OR {} IS NULL)", keys[i], keys[i]),
        });
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    if alternatives.is_empty() {
        return Ok("1 = 0".to_owned());
    }
    Ok(format!("({})", alternatives.join(" OR ")))
}

async fn insert<C: Conn>(c: &mut C, record: &Record) -> StoreResult<()> {
    let t = table(record.record_type);
    let params = encode(record);
    let placeholders: Vec<String> = (1..=params.len()).map(|i| format!("${i}")).collect();
    let sql = format!("INSERT INTO {} ({}) VALUES ({})", t.name, t.select_list(), placeholders.join(", "));
    c.execute(&sql, &params).await?;
    Ok(())
}

/// Inserts the rows of new records of one type: a few multi-row statements for all of them
/// (the batch write path, [`crate::batch`]).
pub(crate) async fn insert_many<C: Conn>(c: &mut C, records: &[Record]) -> StoreResult<()> {
    let Some(first) = records.first() else { return Ok(()) };
    let t = table(first.record_type);
    let rows: Vec<Vec<SqlValue>> = records.iter().map(encode).collect();
    crate::db::insert_rows(c, &format!("INSERT INTO {} ({})", t.name, t.select_list()), "", rows).await?;
    Ok(())
}

async fn save<C: Conn>(c: &mut C, record: &Record) -> StoreResult<()> {
    let t = table(record.record_type);
    let params = encode(record);
    // Skip tenant_id and id in SET; they key the WHERE clause.
    let sets: Vec<String> =
        t.columns.iter().enumerate().skip(2).map(|(i, col)| format!("{col} = ${}", i + 1)).collect();
    let sql = format!("UPDATE {} SET {} WHERE tenant_id = $1 AND id = $2", t.name, sets.join(", "));
    c.execute(&sql, &params).await?;
    Ok(())
}

/// Checks that the record's references resolve in the tenant (and, for records, in the
/// caller's app scope), and that parents form no cycle.
async fn check_references<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    before: Option<&Record>,
) -> StoreResult<()> {
    for (i, (f, v)) in record.fields().iter().zip(&record.values).enumerate() {
        let (ValueType::Reference(target), Value::Ref(id)) = (f.value_type, v) else {
            continue;
        };
        if before.is_some_and(|b| &b.values[i] == v) {
            continue;
        }
        let exists = match target {
            RecordType::User => crate::users::exists(c, &actor.tenant, *id).await?,
            rt => get(c, actor, rt, *id, false, false).await?.is_some(),
        };
        if !exists {
            return Err(CoreError::target_not_found(f.v1_name, &id.v1(target)).into());
        }
        if target == record.record_type {
            check_no_cycle(c, actor, record, f, *id).await?;
        }
    }
    Ok(())
}

/// Custom reference values must name records of the tenant (visible to the caller).
async fn check_custom_references<C: Conn>(c: &mut C, actor: &Actor, write: &RecordWrite) -> StoreResult<()> {
    for (name, target, id) in &write.custom_refs {
        let exists = match target {
            RecordType::User => crate::users::exists(c, &actor.tenant, *id).await?,
            rt => get(c, actor, *rt, *id, false, false).await?.is_some(),
        };
        if !exists {
            return Err(CoreError::target_not_found(name, &id.canonical()).into());
        }
    }
    Ok(())
}

/// Walks up the parent chain from `parent`; reaching `record` again would be a cycle.
async fn check_no_cycle<C: Conn>(
    c: &mut C,
    actor: &Actor,
    record: &Record,
    f: &FieldDef,
    parent: RecordId,
) -> StoreResult<()> {
    let cycle = || CoreError::invalid_value(f.v1_name, "a record cannot be its own ancestor");
    let t = table(record.record_type);
    let sql = format!("SELECT {} FROM {} WHERE tenant_id = $1 AND id = $2", f.column, t.name);
    let mut current = parent;
    for _ in 0..10_000 {
        if current == record.meta.id {
            return Err(cycle().into());
        }
        let row =
            c.query_opt(&sql, &[SqlValue::text(actor.tenant.clone()), SqlValue::text(current.canonical())]).await?;
        match row.and_then(|mut r| r.text(0)).and_then(|s| RecordId::parse(record.record_type, &s)) {
            Some(next) => current = next,
            None => return Ok(()),
        }
    }
    Err(cycle().into())
}

/// Resolves `related_record_match` references to ids, inside the write's transaction
/// (docs/CONTRACT.md §7.3): user by `email`, account by `domain_name` (any of its active domains).
async fn resolve_matches<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    write: &mut RecordWrite,
) -> StoreResult<()> {
    for (index, value) in write.values.iter_mut() {
        let Value::Match { key, value: wanted } = value else { continue };
        let f = &fields(rt)[*index];
        let ValueType::Reference(target) = f.value_type else { continue };
        *value = Value::Ref(resolve_key(c, actor, target, key, wanted, f.api_name).await?);
    }
    Ok(())
}

/// The active record of `target` visible to `actor` whose unique `key` is `value`: user by
/// `email`, account by `domain_name` (any of its domains), contact by `primary_email` (any
/// of its emails). Other keys are `422 invalid_matching_field`; no match is
/// `422 target_record_not_found`. `field` names the attribute in errors.
pub(crate) async fn resolve_key<C: Conn>(
    c: &mut C,
    actor: &Actor,
    target: RecordType,
    key: &str,
    value: &str,
    field: &str,
) -> StoreResult<RecordId> {
    use corral_core::normalize;
    let not_found = || CoreError::target_not_found(field, &format!("{key}={value}"));
    let found = match (target, key) {
        (RecordType::User, "email") => {
            let email = normalize::email(value).map_err(|_| not_found())?;
            let params = [SqlValue::text(actor.tenant.clone()), SqlValue::text(normalize::email_key(&email))];
            let row = c.query_opt("SELECT id FROM users WHERE tenant_id = $1 AND email_key = $2", &params).await?;
            row.and_then(|mut r| r.text(0)).and_then(|s| RecordId::parse(target, &s))
        }
        (RecordType::Account, "domain_name") => {
            let domain = normalize::domain(value).map_err(|_| not_found())?;
            keys::holder(c, actor, RecordType::Account, &domain).await?
        }
        (RecordType::Contact, "primary_email") => {
            let email = normalize::email(value).map_err(|_| not_found())?;
            keys::holder(c, actor, RecordType::Contact, &normalize::email_key(&email)).await?
        }
        _ => {
            let allowed = match target {
                RecordType::User => "email",
                RecordType::Account => "domain_name",
                RecordType::Contact => "primary_email",
            };
            return Err(CoreError::new(
                ErrorCode::InvalidMatchingField,
                format!("`{key}` is not a unique field of {target}; match on `{allowed}`"),
            )
            .with("field", field)
            .with("matching_field", key)
            .into());
        }
    };
    found.ok_or_else(|| not_found().into())
}

/// Creates a record from a validated write.
pub async fn create<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    write: &RecordWrite,
    now: Timestamp,
) -> StoreResult<Record> {
    let mut write = write.clone();
    resolve_matches(c, actor, rt, &mut write).await?;
    crate::merge::resolve_write(c, actor, rt, &mut write).await?;
    check_custom_references(c, actor, &write).await?;
    let mut record = Record::new(rt, RecordMeta::new(actor, now));
    record.apply(&write, now)?;
    edges::associate_contact(c, actor, &mut record, None).await?;
    check_references(c, actor, &record, None).await?;
    commit(c, actor, Action::Created, None, Some(&record), Map::new()).await?;
    keys::sync(c, actor, &record, None).await?;
    keys::sync_tags(c, &actor.tenant, &record, None).await?;
    let mut extra = Map::new();
    edges::sync_primary(c, actor, &record, None, edges::PrimaryEdge::Replace, &mut extra).await?;
    note_extra(c, actor, &record, extra);
    edges::associate_account(c, actor, &record, None, now).await?;
    Ok(record)
}

/// The write funnel: every change to a record row — insert, update, delete — is made here,
/// and noted in the transaction's outbox ([`crate::changes`]), which appends one event per
/// changed record before the transaction commits. `before` / `after` are the record's
/// states (`None`: it does not exist); `extra` are relationship changes (key → {old, new}),
/// which live outside the record row.
pub(crate) async fn commit<C: Conn>(
    c: &mut C,
    actor: &Actor,
    action: Action,
    before: Option<&Record>,
    after: Option<&Record>,
    extra: Map<String, Json>,
) -> StoreResult<()> {
    match (before, after) {
        (None, Some(r)) => insert(c, r).await?,
        (Some(b), Some(r)) if b != r => save(c, r).await?,
        (Some(_), Some(_)) | (None, None) => {}
        (Some(b), None) => {
            c.execute(
                &format!("DELETE FROM {} WHERE tenant_id = $1 AND id = $2", table(b.record_type).name),
                &[SqlValue::text(actor.tenant.clone()), SqlValue::text(b.meta.id.canonical())],
            )
            .await?;
        }
    }
    crate::duplicates::sync(c, &actor.tenant, before, after).await?;
    let outbox = c.outbox().ok_or_else(|| StoreError::Internal("a record write outside a write transaction".into()))?;
    outbox.note(actor, action, before, after, extra);
    Ok(())
}

/// Notes relationship changes of a record whose row is unchanged (or already committed).
pub(crate) fn note_extra<C: Conn>(c: &mut C, actor: &Actor, record: &Record, extra: Map<String, Json>) {
    if extra.is_empty() {
        return;
    }
    if let Some(outbox) = c.outbox() {
        outbox.note(actor, Action::Updated, Some(record), Some(record), extra);
    }
}

/// A version the caller requires before writing: `If-Match` (412) or a v1 body `version` (409).
#[derive(Debug, Clone, Copy, Default)]
pub struct Preconditions {
    pub if_match: Option<i64>,
}

fn check_preconditions(record: &Record, pre: Preconditions, body_version: Option<i64>) -> StoreResult<()> {
    let current = record.meta.version;
    if pre.if_match.is_some_and(|v| v != current) {
        return Err(CoreError::precondition_failed(current).into());
    }
    if let Some(v) = body_version.filter(|v| *v != current) {
        return Err(CoreError::version_conflict(v, current).into());
    }
    Ok(())
}

/// How a change made through [`modify_with`] treats the record.
pub(crate) struct ModifyOptions {
    /// Relationship changes to record with the change (key → {old, new}).
    pub extra: Map<String, Json>,
    /// What happens to the previous primary edge when the primary account moves.
    pub primary_edge: edges::PrimaryEdge,
    /// Archived records may be changed too (cascades of a purge).
    pub include_archived: bool,
}

impl Default for ModifyOptions {
    fn default() -> Self {
        ModifyOptions { extra: Map::new(), primary_edge: edges::PrimaryEdge::Replace, include_archived: false }
    }
}

/// The one path every change to an active record takes: lock it, check preconditions, let
/// `change` edit it (returning whether anything changed), then validate references and
/// unique keys and save with new stamps. Nothing changed → nothing written, version kept.
#[allow(clippy::too_many_arguments)]
pub async fn modify<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    pre: Preconditions,
    body_version: Option<i64>,
    now: Timestamp,
    change: impl FnOnce(&mut Record) -> CoreResult<bool> + Send,
) -> StoreResult<Record> {
    modify_with(c, actor, rt, id, pre, body_version, now, ModifyOptions::default(), change).await
}

/// [`modify`] with relationship changes and edge options; see [`ModifyOptions`]. The
/// record's row goes through [`commit`]; a change of relationships only keeps the version.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn modify_with<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    pre: Preconditions,
    body_version: Option<i64>,
    now: Timestamp,
    mut options: ModifyOptions,
    change: impl FnOnce(&mut Record) -> CoreResult<bool> + Send,
) -> StoreResult<Record> {
    let before =
        get(c, actor, rt, id, options.include_archived, true).await?.ok_or_else(CoreError::record_not_found)?;
    check_preconditions(&before, pre, body_version)?;
    let mut record = before.clone();
    let changed = change(&mut record)?;
    if !changed && options.extra.is_empty() {
        return Ok(before);
    }
    if changed {
        edges::associate_contact(c, actor, &mut record, Some(&before)).await?;
        check_references(c, actor, &record, Some(&before)).await?;
        keys::sync(c, actor, &record, Some(&before)).await?;
        keys::sync_tags(c, &actor.tenant, &record, Some(&before)).await?;
        edges::sync_primary(c, actor, &record, Some(&before), options.primary_edge, &mut options.extra).await?;
        record.meta.touch(actor, now);
    }
    commit(c, actor, Action::Updated, Some(&before), Some(&record), options.extra).await?;
    if changed {
        edges::associate_account(c, actor, &record, Some(&before), now).await?;
    }
    Ok(record)
}

/// Applies a write to an active record.
pub async fn update<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    write: &RecordWrite,
    pre: Preconditions,
    now: Timestamp,
) -> StoreResult<Record> {
    let mut write = write.clone();
    resolve_matches(c, actor, rt, &mut write).await?;
    crate::merge::resolve_write(c, actor, rt, &mut write).await?;
    check_custom_references(c, actor, &write).await?;
    modify(c, actor, rt, id, pre, write.expected_version, now, |r| r.apply(&write, now)).await
}

/// A `_assert` match key (docs/CONTRACT.md §7.7), already normalised.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchKey {
    Id(RecordId),
    /// An account domain.
    Domain(String),
    /// A contact email (any of the contact's emails).
    Email(String),
}

/// The name an assert on `key` locks ([`crate::db::lock_name`]): asserts on one key serialise.
pub(crate) fn assert_lock(actor: &Actor, rt: RecordType, key: &MatchKey) -> String {
    format!("assert:{}:{}:{}:{key:?}", actor.tenant.len(), actor.tenant, rt.api_name())
}

/// The write an assert creates with when no key finds a record: each match value (in
/// `sorted` key order) becomes the primary domain / email unless the write sets one.
pub(crate) fn assert_create_write(write: &RecordWrite, sorted: &[MatchKey]) -> RecordWrite {
    let mut write = write.clone();
    for key in sorted {
        match key {
            MatchKey::Domain(d) if write.primary_domain.is_none() => write.primary_domain = Some(Some(d.clone())),
            MatchKey::Email(e) if write.primary_email.is_none() => write.primary_email = Some(Some(e.clone())),
            _ => {}
        }
    }
    write
}

/// Create-or-update by match keys. Each key finds at most one active record the caller can
/// see; keys finding different records are `409 ambiguous_match`; none found creates the
/// record with the match values as its primary domain / email. Concurrent asserts on the
/// same key serialise on that key, so exactly one of them creates.
pub async fn assert<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    keys: &[MatchKey],
    write: &RecordWrite,
    now: Timestamp,
) -> StoreResult<(Record, bool)> {
    let mut sorted = keys.to_vec();
    sorted.sort();
    for key in &sorted {
        crate::db::lock_name(c, &assert_lock(actor, rt, key)).await?;
    }
    let mut found: Vec<RecordId> = Vec::new();
    for key in &sorted {
        let hit = match key {
            MatchKey::Id(id) => get(c, actor, rt, *id, false, false).await?.map(|r| r.meta.id),
            MatchKey::Domain(d) => keys::holder(c, actor, RecordType::Account, d).await?,
            MatchKey::Email(e) => {
                keys::holder(c, actor, RecordType::Contact, &corral_core::normalize::email_key(e)).await?
            }
        };
        if let Some(id) = hit
            && !found.contains(&id)
        {
            found.push(id);
        }
    }
    match found.as_slice() {
        [id] => Ok((update(c, actor, rt, *id, write, Preconditions::default(), now).await?, false)),
        [] if sorted.iter().all(|k| matches!(k, MatchKey::Id(_))) => Err(CoreError::record_not_found().into()),
        [] => {
            let write = assert_create_write(write, &sorted);
            // Creating through _assert obeys the same required-on-create rule as a create.
            let schema = crate::schemas::load(c, &actor.tenant, rt).await?;
            corral_core::custom::check_required(&schema, &write, str::to_owned)?;
            Ok((create(c, actor, rt, &write, now).await?, true))
        }
        many => {
            let ids: Vec<String> = many.iter().map(RecordId::canonical).collect();
            Err(CoreError::new(ErrorCode::AmbiguousMatch, "the match keys find different records")
                .with("candidate_ids", ids)
                .into())
        }
    }
}

/// Which item list of a contact a sub-resource call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactList {
    Emails,
    Phones,
}

/// What a contact email / phone sub-resource call does (docs/CONTRACT.md §7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    Add { value: String, is_primary: bool, labels: Vec<String> },
    Update { item_id: String, value: Option<String>, is_primary: Option<bool>, labels: Option<Vec<String>> },
    Remove { item_id: String },
}

/// Changes one email or phone number of a contact. Returns the contact and the item's id
/// (`None` after a removal), and whether an `Add` created a new item (an email the contact
/// already has is returned as it is). Emails stay unique per tenant (409 `conflict`).
pub async fn change_contact_item<C: Conn>(
    c: &mut C,
    actor: &Actor,
    id: RecordId,
    list: ContactList,
    change: ItemChange,
    pre: Preconditions,
    now: Timestamp,
) -> StoreResult<(Record, Option<String>, bool)> {
    use corral_core::items::ListItem;
    use corral_core::record::ContactItem;
    let mut outcome = (None, false);
    let record = modify(c, actor, RecordType::Contact, id, pre, None, now, |r| {
        let items = match list {
            ContactList::Emails => &mut r.emails,
            ContactList::Phones => &mut r.phones,
        };
        let position = |items: &[ContactItem], item_id: &str| {
            items.iter().position(|i| i.id == item_id).ok_or_else(CoreError::record_not_found)
        };
        match change {
            ItemChange::Add { value, is_primary, labels } => {
                let item = ContactItem::new(&value, labels, now);
                let key = item.key();
                let added = items::add(items, item);
                let promoted = is_primary && items::set_primary(items, &key, true)?;
                outcome = (items.iter().find(|i| i.key() == key).map(|i| i.id.clone()), added);
                Ok(added || promoted)
            }
            ItemChange::Update { item_id, value, is_primary, labels } => {
                let at = position(items, &item_id)?;
                let snapshot = items.clone();
                if let Some(value) = value {
                    let key = value.to_lowercase();
                    if items.iter().any(|i| i.id != item_id && i.key() == key) {
                        return Err(CoreError::conflict(
                            if list == ContactList::Emails { "email" } else { "phone_number" },
                            &value,
                            None,
                        ));
                    }
                    items[at].value = value;
                }
                if let Some(labels) = labels {
                    items[at].labels = labels;
                }
                if let Some(p) = is_primary {
                    let key = items[at].key();
                    items::set_primary(items, &key, p)?;
                }
                outcome = (Some(item_id), false);
                Ok(*items != snapshot)
            }
            ItemChange::Remove { item_id } => {
                let key = items[position(items, &item_id)?].key();
                items::remove(items, &key)?;
                Ok(true)
            }
        }
    })
    .await?;
    Ok((record, outcome.0, outcome.1))
}

/// What a domains sub-resource call does (docs/CONTRACT.md §7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainChange {
    Add,
    SetPrimary(bool),
    Remove,
}

/// Changes one domain of an account. Returns the account and whether the call changed it
/// (an `Add` of a domain the account already has changes nothing). A domain held by another
/// active account is `409 domain_already_linked`.
pub async fn change_domain<C: Conn>(
    c: &mut C,
    actor: &Actor,
    id: RecordId,
    domain: &str,
    change: DomainChange,
    pre: Preconditions,
    now: Timestamp,
) -> StoreResult<(Record, bool)> {
    let mut changed = false;
    let result = modify(c, actor, RecordType::Account, id, pre, None, now, |r| {
        changed = match change {
            DomainChange::Add => items::add(&mut r.domains, AccountDomain::new(domain, now)),
            DomainChange::SetPrimary(p) => items::set_primary(&mut r.domains, domain, p)?,
            DomainChange::Remove => {
                items::remove(&mut r.domains, domain)?;
                true
            }
        };
        Ok(changed)
    })
    .await;
    match result {
        Ok(record) => Ok((record, changed)),
        Err(StoreError::Domain(mut e)) if e.code == ErrorCode::Conflict => {
            e.code = ErrorCode::DomainAlreadyLinked;
            e.message = format!("domain `{domain}` is linked to another account");
            Err(e.into())
        }
        Err(e) => Err(e),
    }
}

/// Archives (soft-deletes) an active record and releases its unique keys.
pub async fn archive<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    pre: Preconditions,
    now: Timestamp,
) -> StoreResult<Record> {
    let before = get(c, actor, rt, id, false, true).await?.ok_or_else(CoreError::record_not_found)?;
    check_preconditions(&before, pre, None)?;
    let mut record = before.clone();
    record.meta.touch(actor, now);
    record.meta.deleted_at = Some(record.meta.updated_at);
    record.meta.deleted_by = Some(actor.subject.clone());
    commit(c, actor, Action::Archived, Some(&before), Some(&record), Map::new()).await?;
    keys::set_released(c, actor, &record, true).await?;
    Ok(record)
}

/// Restores an archived record, unless one of its unique keys was claimed meanwhile (409).
/// Restoring an active record changes nothing and returns it.
pub async fn restore<C: Conn>(
    c: &mut C,
    actor: &Actor,
    rt: RecordType,
    id: RecordId,
    now: Timestamp,
) -> StoreResult<Record> {
    let before = get(c, actor, rt, id, true, true).await?.ok_or_else(CoreError::record_not_found)?;
    if !before.is_deleted() {
        return Ok(before);
    }
    keys::set_released(c, actor, &before, false).await?;
    let mut record = before.clone();
    record.meta.deleted_at = None;
    record.meta.deleted_by = None;
    record.meta.touch(actor, now);
    commit(c, actor, Action::Restored, Some(&before), Some(&record), Map::new()).await?;
    Ok(record)
}

/// Deletes a record for good, with its unique keys and edges; records that referenced it
/// (parent account, reports-to contact, primary account) lose the reference, which is a
/// change made through the funnel like any other (their version moves, they get an event).
/// These cascades reach every record of the tenant, whatever the caller's app scope.
pub async fn purge<C: Conn>(c: &mut C, actor: &Actor, rt: RecordType, id: RecordId, now: Timestamp) -> StoreResult<()> {
    let before = get(c, actor, rt, id, true, true).await?.ok_or_else(CoreError::record_not_found)?;
    keys::remove(c, &actor.tenant, rt, id).await?;
    keys::remove_tags(c, &actor.tenant, rt, id).await?;
    let tenant_wide = Actor { app: None, ..actor.clone() };
    edges::remove_all(c, &tenant_wide, rt, id, now).await?;
    let t = table(rt);
    for (index, f) in fields(rt).iter().enumerate().filter(|(_, f)| f.value_type == ValueType::Reference(rt)) {
        let sql = format!("SELECT id FROM {} WHERE tenant_id = $1 AND {} = $2", t.name, f.column);
        let params = [SqlValue::text(actor.tenant.clone()), SqlValue::text(id.canonical())];
        edit_referrers(c, &tenant_wide, rt, &sql, &params, now, |r| r.values[index] = Value::Null).await?;
    }
    clear_custom_references(c, &tenant_wide, rt, id, now).await?;
    commit(c, actor, Action::Purged, Some(&before), None, Map::new()).await?;
    Ok(())
}

/// Edits, through the funnel, every `owner` record (archived ones included) whose id the
/// query `sql` selects: the referrers a purge takes a reference away from.
async fn edit_referrers<C: Conn>(
    c: &mut C,
    tenant_wide: &Actor,
    owner: RecordType,
    sql: &str,
    params: &[SqlValue],
    now: Timestamp,
    edit: impl Fn(&mut Record) + Send + Sync,
) -> StoreResult<()> {
    let referrers: Vec<RecordId> = c
        .query(sql, params)
        .await?
        .into_iter()
        .filter_map(|mut r| r.text(0))
        .filter_map(|s| RecordId::parse(owner, &s))
        .collect();
    edit_each(c, tenant_wide, owner, referrers, now, edit).await
}

/// Edits each of `referrers` through the funnel, archived ones included.
async fn edit_each<C: Conn>(
    c: &mut C,
    tenant_wide: &Actor,
    owner: RecordType,
    referrers: Vec<RecordId>,
    now: Timestamp,
    edit: impl Fn(&mut Record) + Send + Sync,
) -> StoreResult<()> {
    for referrer in referrers {
        let options = ModifyOptions { include_archived: true, ..Default::default() };
        modify_with(c, tenant_wide, owner, referrer, Preconditions::default(), None, now, options, |r| {
            edit(r);
            Ok(true)
        })
        .await?;
    }
    Ok(())
}

/// Custom `record_reference` attributes (of any record type) that name a purged record lose
/// it: a single value is unset, an array drops the id (docs/API.md, "Custom attributes").
/// The referrers are found with the filter compiler, so arrays and both dialects are covered
/// by the same SQL a `_query` on the attribute runs.
async fn clear_custom_references<C: Conn>(
    c: &mut C,
    tenant_wide: &Actor,
    rt: RecordType,
    id: RecordId,
    now: Timestamp,
) -> StoreResult<()> {
    let gone = id.canonical();
    for owner in [RecordType::Account, RecordType::Contact] {
        let schema = crate::schemas::load(c, &tenant_wide.tenant, owner).await?;
        for attr in schema.custom.iter().filter(|a| a.value_type == ValueType::Reference(rt)) {
            let referrers = referrers(c, tenant_wide, owner, &names_record(attr, &gone)).await?;
            edit_each(c, tenant_wide, owner, referrers, now, |r| {
                let kept = match r.custom.remove(&attr.api_name) {
                    Some(Json::Array(ids)) => ids.into_iter().filter(|v| v.as_str() != Some(&gone)).collect(),
                    _ => Vec::new(),
                };
                if !kept.is_empty() {
                    r.custom.insert(attr.api_name.clone(), Json::Array(kept));
                }
            })
            .await?;
        }
    }
    Ok(())
}

/// The condition "custom reference attribute `attr` names the record `id`" (one of its values,
/// for an array), for [`referrers`].
pub(crate) fn names_record(attr: &corral_core::custom::CustomAttribute, id: &str) -> Cond {
    Cond::Cmp {
        target: Target::Custom { name: attr.api_name.clone(), is_array: attr.is_array },
        kind: Kind::Exact,
        op: Op::Eq,
        values: vec![Value::Text(id.to_owned())],
    }
}

/// The ids of the `owner` records visible to `actor` (archived ones included) that `cond`
/// matches, in id order: the referrers of a record, found with the filter compiler so
/// custom reference arrays and both dialects are covered by the SQL a `_query` runs.
pub(crate) async fn referrers<C: Conn>(
    c: &mut C,
    actor: &Actor,
    owner: RecordType,
    cond: &Cond,
) -> StoreResult<Vec<RecordId>> {
    let t = table(owner);
    let mut q = SqlBuilder::new(format!("SELECT id FROM {}", t.name));
    scope_clause(&mut q, actor);
    let pred = compile(&mut q, c.dialect(), At::outer(t.name, actor), cond);
    q.push(&format!(" AND {pred} ORDER BY id"));
    Ok(c.query(&q.sql, &q.params)
        .await?
        .into_iter()
        .filter_map(|mut r| r.text(0))
        .filter_map(|s| RecordId::parse(owner, &s))
        .collect())
}
