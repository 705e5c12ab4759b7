//! The benchmark's ceiling server: one `accounts` table in SQLite behind axum, with none of
//! Corral's domain logic (no tenants, auth, schema registry, versions, domains table, audit).
//! It shows what the same stack (axum + rusqlite, WAL, `synchronous = NORMAL` like Corral)
//! costs at the least, so `bench/compare.py` can report Corral ÷ ceiling next to Corral ÷
//! Directus. Routes (bodies and rows use Corral's v1 field names):
//!
//! - `GET /accounts/{id}`, `POST /accounts`, `PATCH /accounts/{id}`
//! - `GET /accounts?industry=&sort=-employee_count&q=&limit=` (filter + sort, or search)
//! - `POST /accounts/_assert` (upsert on `domain`), `POST /accounts/_bulk` (JSON array, one
//!   transaction)
//!
//! Usage: `corral-bench-ceiling --db PATH --listen 127.0.0.1:PORT`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use rusqlite::{Connection, OptionalExtension, params_from_iter, types::Value as SqlValue};
use serde_json::{Map, Value, json};

/// Writable columns, in table order; `tags` is stored as JSON text.
const FIELDS: [&str; 11] = [
    "name",
    "legal_name",
    "industry",
    "website",
    "domain",
    "phone",
    "employee_count",
    "annual_revenue",
    "lifecycle_stage",
    "description",
    "tags",
];
const COLUMNS: &str = "id, name, legal_name, industry, website, domain, phone, employee_count, \
                       annual_revenue, lifecycle_stage, description, tags, created_at, updated_at";
const READERS: usize = 4;

struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

type Shared = Arc<Db>;
type Failure = (StatusCode, Json<Value>);
type Reply = Result<(StatusCode, Json<Value>), Failure>;
/// (column, value) pairs of a request body.
type Fields = Vec<(&'static str, SqlValue)>;

fn open(path: &str) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
         PRAGMA temp_store = MEMORY;",
    )?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

fn fail(status: StatusCode, message: impl ToString) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": {"message": message.to_string()}})))
}

fn internal(e: impl ToString) -> (StatusCode, Json<Value>) {
    fail(StatusCode::INTERNAL_SERVER_ERROR, e)
}

fn row_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(r.get::<_, i64>(0)?));
    for (i, f) in FIELDS.iter().enumerate() {
        let v = match r.get::<_, SqlValue>(i + 1)? {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(n) => json!(n),
            SqlValue::Real(x) => json!(x),
            SqlValue::Text(t) if *f == "tags" => serde_json::from_str(&t).unwrap_or(Value::Null),
            SqlValue::Text(t) => Value::String(t),
            SqlValue::Blob(_) => Value::Null,
        };
        m.insert((*f).into(), v);
    }
    m.insert("created_at".into(), json!(r.get::<_, String>(12)?));
    m.insert("updated_at".into(), json!(r.get::<_, String>(13)?));
    Ok(Value::Object(m))
}

/// The SQL value of a body field (objects and arrays as JSON text).
fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => {
            n.as_i64().map(SqlValue::Integer).unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0)))
        }
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// The body's known fields as (column, value); unknown keys are a 422 like Corral's.
fn fields_of(body: &Value) -> Result<Fields, Failure> {
    let obj = body.as_object().ok_or_else(|| fail(StatusCode::BAD_REQUEST, "body must be an object"))?;
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        let col = FIELDS
            .iter()
            .find(|f| **f == k.as_str())
            .ok_or_else(|| fail(StatusCode::UNPROCESSABLE_ENTITY, format!("unknown field {k}")))?;
        out.push((*col, sql_value(v)));
    }
    Ok(out)
}

fn insert(c: &Connection, fields: &[(&str, SqlValue)]) -> rusqlite::Result<Value> {
    let cols: Vec<&str> = fields.iter().map(|(c, _)| *c).collect();
    let marks = vec!["?"; cols.len()].join(", ");
    let sql = format!(
        "INSERT INTO accounts ({}{}created_at, updated_at) VALUES ({}{}strftime('%Y-%m-%dT%H:%M:%fZ'), \
         strftime('%Y-%m-%dT%H:%M:%fZ')) RETURNING {COLUMNS}",
        cols.join(", "),
        if cols.is_empty() { "" } else { ", " },
        marks,
        if cols.is_empty() { "" } else { ", " },
    );
    c.prepare_cached(&sql)?.query_row(params_from_iter(fields.iter().map(|(_, v)| v)), row_json)
}

impl Db {
    /// Runs `f` on a reader connection off the async threads.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, (StatusCode, Json<Value>)> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let i = db.next.fetch_add(1, Ordering::Relaxed) % db.readers.len();
            let c = db.readers[i].lock().map_err(internal)?;
            f(&c).map_err(internal)
        })
        .await
        .map_err(internal)?
    }

    /// Runs `f` in a write transaction on the single writer connection.
    async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, (StatusCode, Json<Value>)> + Send + 'static,
    ) -> Result<T, (StatusCode, Json<Value>)> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = db.writer.lock().map_err(internal)?;
            let tx = c.transaction().map_err(internal)?;
            let out = f(&tx)?;
            tx.commit().map_err(internal)?;
            Ok(out)
        })
        .await
        .map_err(internal)?
    }
}

fn found(v: Option<Value>) -> Reply {
    match v {
        Some(v) => Ok((StatusCode::OK, Json(v))),
        None => Err(fail(StatusCode::NOT_FOUND, "not found")),
    }
}

async fn get_one(State(db): State<Shared>, Path(id): Path<i64>) -> Reply {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = ?1");
    found(db.read(move |c| c.prepare_cached(&sql)?.query_row([id], row_json).optional()).await?)
}

async fn create(State(db): State<Shared>, Json(body): Json<Value>) -> Reply {
    let fields = fields_of(&body)?;
    let row = db.write(move |c| insert(c, &fields).map_err(conflict_or_internal)).await?;
    Ok((StatusCode::CREATED, Json(row)))
}

fn conflict_or_internal(e: rusqlite::Error) -> (StatusCode, Json<Value>) {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => fail(StatusCode::CONFLICT, e),
        _ => internal(e),
    }
}

async fn patch(State(db): State<Shared>, Path(id): Path<i64>, Json(body): Json<Value>) -> Reply {
    let fields = fields_of(&body)?;
    let row = db
        .write(move |c| {
            let sets: Vec<String> = fields.iter().map(|(col, _)| format!("{col} = ?")).collect();
            let sql = format!(
                "UPDATE accounts SET {}{}updated_at = strftime('%Y-%m-%dT%H:%M:%fZ') WHERE id = ? \
                 RETURNING {COLUMNS}",
                sets.join(", "),
                if sets.is_empty() { "" } else { ", " },
            );
            let mut values: Vec<SqlValue> = fields.into_iter().map(|(_, v)| v).collect();
            values.push(SqlValue::Integer(id));
            c.prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params_from_iter(values), row_json).optional())
                .map_err(conflict_or_internal)
        })
        .await?;
    found(row)
}

/// `industry` (exact), `q` (substring of name, legal name, domain, website), `sort`
/// (`employee_count` or `-employee_count`, else newest first), `limit` (1–500, default 50).
async fn list(State(db): State<Shared>, Query(params): Query<std::collections::HashMap<String, String>>) -> Reply {
    // Numbered placeholders: the search term is bound once and used four times.
    let mut wh = Vec::new();
    let mut vals: Vec<SqlValue> = Vec::new();
    if let Some(ind) = params.get("industry") {
        vals.push(SqlValue::Text(ind.clone()));
        wh.push(format!("industry = ?{}", vals.len()));
    }
    if let Some(q) = params.get("q") {
        vals.push(SqlValue::Text(format!("%{q}%")));
        let n = vals.len();
        wh.push(format!("(name LIKE ?{n} OR legal_name LIKE ?{n} OR domain LIKE ?{n} OR website LIKE ?{n})"));
    }
    let order = match params.get("sort").map(String::as_str) {
        Some("-employee_count") => "employee_count DESC, id DESC",
        Some("employee_count") => "employee_count ASC, id ASC",
        _ => "id DESC",
    };
    let limit: i64 = params.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50).clamp(1, 500);
    let sql = format!(
        "SELECT {COLUMNS} FROM accounts {}{} ORDER BY {order} LIMIT {limit}",
        if wh.is_empty() { "" } else { "WHERE " },
        wh.join(" AND ")
    );
    let data = db
        .read(move |c| {
            let mut s = c.prepare_cached(&sql)?;
            let rows = s.query_map(params_from_iter(vals), row_json)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    Ok((StatusCode::OK, Json(json!({"data": data}))))
}

/// Upsert on `domain`: the other fields sent replace the stored ones. A new record without a
/// name takes its domain as its name (as Corral does).
async fn assert(State(db): State<Shared>, Json(body): Json<Value>) -> Reply {
    let mut fields = fields_of(&body)?;
    let Some(domain) = fields.iter().find(|(c, _)| *c == "domain").map(|(_, v)| v.clone()) else {
        return Err(fail(StatusCode::UNPROCESSABLE_ENTITY, "domain is required"));
    };
    // Only the fields sent are updated on conflict; the default name is for inserts.
    let sent: Vec<&'static str> = fields.iter().map(|(c, _)| *c).filter(|c| *c != "domain").collect();
    if !fields.iter().any(|(c, _)| *c == "name") {
        fields.push(("name", domain));
    }
    let row = db
        .write(move |c| {
            let cols: Vec<&str> = fields.iter().map(|(c, _)| *c).collect();
            let updates: Vec<String> = sent
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .chain(std::iter::once("updated_at = excluded.updated_at".to_owned()))
                .collect();
            let sql = format!(
                "INSERT INTO accounts ({}, created_at, updated_at) VALUES ({}, strftime('%Y-%m-%dT%H:%M:%fZ'), \
                 strftime('%Y-%m-%dT%H:%M:%fZ')) ON CONFLICT (domain) DO UPDATE SET {} RETURNING {COLUMNS}",
                cols.join(", "),
                vec!["?"; cols.len()].join(", "),
                updates.join(", ")
            );
            c.prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params_from_iter(fields.iter().map(|(_, v)| v)), row_json))
                .map_err(internal)
        })
        .await?;
    Ok((StatusCode::OK, Json(row)))
}

/// A JSON array of create bodies in one transaction; answers the created ids.
async fn bulk(State(db): State<Shared>, Json(body): Json<Value>) -> Reply {
    let items = body.as_array().ok_or_else(|| fail(StatusCode::BAD_REQUEST, "body must be an array"))?;
    let rows = items.iter().map(fields_of).collect::<Result<Vec<_>, _>>()?;
    let ids = db
        .write(move |c| {
            rows.iter()
                .map(|f| insert(c, f).map(|r| r["id"].clone()))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(conflict_or_internal)
        })
        .await?;
    Ok((StatusCode::OK, Json(json!({"data": ids}))))
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, legal_name TEXT, industry TEXT, website TEXT,
    domain TEXT UNIQUE, phone TEXT, employee_count INTEGER, annual_revenue REAL,
    lifecycle_stage TEXT, description TEXT, tags TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS accounts_industry ON accounts (industry, employee_count, id);";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(listen)) = (arg(&args, "--db"), arg(&args, "--listen")) else {
        eprintln!("usage: corral-bench-ceiling --db PATH --listen 127.0.0.1:PORT");
        std::process::exit(2);
    };
    let writer = open(&path)?;
    writer.execute_batch(SCHEMA)?;
    let readers: Vec<Mutex<Connection>> =
        (0..READERS).map(|_| open(&path).map(Mutex::new)).collect::<Result<_, _>>()?;
    let db: Shared = Arc::new(Db { writer: Mutex::new(writer), readers, next: AtomicUsize::new(0) });
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/accounts", get(list).post(create))
        .route("/accounts/_assert", post(assert))
        .route("/accounts/_bulk", post(bulk))
        .route("/accounts/{id}", get(get_one).patch(patch))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
