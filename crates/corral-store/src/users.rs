//! The tenant user directory (docs/CONTRACT.md §4.4): users are created by the CLI, the admin API, or on
//! first sight of a human token, and are referenced as record owners.

use crate::db::{Conn, DbError, Row, SqlValue};
use crate::{StoreError, StoreResult};
use corral_core::TenantId;
use corral_core::{CoreError, RecordId, RecordType, Timestamp, normalize};

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: RecordId,
    pub tenant_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub updated_by: String,
    pub version: i64,
}

/// Fields of a user that admins set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// `Some(None)` clears the email.
    pub email: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub is_active: Option<bool>,
}

const COLUMNS: &str =
    "id, tenant_id, email, display_name, is_active, created_at, updated_at, created_by, updated_by, version";

fn decode(mut row: Row) -> StoreResult<User> {
    let corrupt = || StoreError::Internal("stored user is malformed".into());
    Ok(User {
        id: row.text(0).and_then(|s| RecordId::parse(RecordType::User, &s)).ok_or_else(corrupt)?,
        tenant_id: row.text(1).ok_or_else(corrupt)?,
        email: row.text(2),
        display_name: row.text(3),
        is_active: row.bool(4),
        created_at: Timestamp(row.int(5).ok_or_else(corrupt)?),
        updated_at: Timestamp(row.int(6).ok_or_else(corrupt)?),
        created_by: row.text(7).unwrap_or_default(),
        updated_by: row.text(8).unwrap_or_default(),
        version: row.int(9).unwrap_or(1),
    })
}

/// One page of a tenant's users matching `plan` (v2 `POST /api/v2/user/_query`), with the
/// same filter compiler and keyset positions as records.
pub async fn page<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    plan: &corral_core::list::Plan,
    after: Option<&[serde_json::Value]>,
    limit: usize,
) -> StoreResult<(Vec<User>, Option<Vec<serde_json::Value>>)> {
    let keys: Vec<String> = plan.sort.iter().map(|s| c.dialect().sort_key(&s.column)).collect();
    let mut q = crate::db::SqlBuilder::new(format!("SELECT {COLUMNS}, {} FROM users", keys.join(", ")));
    let t = q.bind(SqlValue::text(tenant));
    q.push(&format!(" WHERE tenant_id = {t}"));
    let at = crate::records::At { table: "users", qual: "users", tenant, app: None, dense: &[] };
    crate::records::filter_and_keyset(&mut q, c.dialect(), at, plan, after)?;
    let width = COLUMNS.split(", ").count();
    let rows = c.query(&q.sql, &q.params).await?;
    crate::records::take_page(rows, width, plan.sort.len(), limit, decode)
}

/// Whether `id` is a user of `tenant`.
pub async fn exists<C: Conn>(c: &mut C, tenant: &TenantId, id: RecordId) -> StoreResult<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2",
        &[SqlValue::text(tenant), SqlValue::text(id.canonical())],
    )
    .await?
    .is_some())
}

pub async fn get<C: Conn>(c: &mut C, tenant: &TenantId, id: RecordId) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2");
    c.query_opt(&sql, &[SqlValue::text(tenant), SqlValue::text(id.canonical())]).await?.map(decode).transpose()
}

/// Users of a tenant, oldest first.
pub async fn list<C: Conn>(c: &mut C, tenant: &TenantId) -> StoreResult<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY created_at, id");
    c.query(&sql, &[SqlValue::text(tenant)]).await?.into_iter().map(decode).collect()
}

/// A user's email, normalised; blank (or absent) means none. Blank or not, the input is at
/// most 320 characters, an email's own bound.
fn normalise_email(email: Option<&str>) -> StoreResult<Option<String>> {
    if email.is_some_and(|e| e.chars().count() > 320) {
        return Err(CoreError::invalid_value("email", "an email is at most 320 characters").into());
    }
    email
        .filter(|e| !e.trim().is_empty())
        .map(|e| normalize::email(e).map_err(|r| StoreError::from(CoreError::invalid_value("email", r))))
        .transpose()
}

fn email_conflict(email: &str) -> StoreError {
    CoreError::conflict("email", email, None).into()
}

async fn email_taken<C: Conn>(c: &mut C, tenant: &TenantId, email: &str) -> StoreResult<bool> {
    let sql = "SELECT 1 FROM users WHERE tenant_id = $1 AND email_key = $2";
    Ok(c.query_opt(sql, &[SqlValue::text(tenant), SqlValue::text(normalize::email_key(email))]).await?.is_some())
}

/// Adds a user; a taken email (or id) is a 409 `conflict`.
pub async fn add<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    id: RecordId,
    email: Option<&str>,
    display_name: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> StoreResult<User> {
    let email = normalise_email(email)?;
    // Checked first: after a failed statement PostgreSQL accepts no more in the transaction.
    if let Some(e) = &email
        && email_taken(c, tenant, e).await?
    {
        return Err(email_conflict(e));
    }
    let params = [
        SqlValue::text(tenant),
        SqlValue::text(id.canonical()),
        SqlValue::opt_text(email.clone()),
        SqlValue::opt_text(email.as_deref().map(normalize::email_key)),
        SqlValue::opt_text(display_name),
        SqlValue::Int(now.millis()),
        SqlValue::text(actor),
        SqlValue::Bool(true),
    ];
    let inserted = c
        .execute(
            "INSERT INTO users (tenant_id, id, email, email_key, display_name, is_active, created_at, updated_at, created_by, updated_by, version) \
             VALUES ($1, $2, $3, $4, $5, $8, $6, $6, $7, $7, 1)",
            &params,
        )
        .await;
    match inserted {
        // Lost a race: the index name says which key.
        Err(DbError::UniqueViolation(index)) => Err(match &email {
            Some(e) if index.contains("email") => email_conflict(e),
            _ => CoreError::conflict("id", &id.canonical(), None).into(),
        }),
        other => {
            other?;
            get(c, tenant, id).await?.ok_or_else(|| StoreError::Internal("user vanished after insert".into()))
        }
    }
}

/// Creates the user for a human token's subject unless it exists. A claimed email is left
/// off rather than refusing the caller's request.
pub async fn provision<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    id: RecordId,
    email: Option<&str>,
    name: Option<&str>,
    subject: &str,
    now: Timestamp,
) -> StoreResult<()> {
    if exists(c, tenant, id).await? {
        return Ok(());
    }
    let mut email = normalise_email(email).ok().flatten();
    if let Some(e) = &email
        && email_taken(c, tenant, e).await?
    {
        email = None;
    }
    match add(c, tenant, id, email.as_deref(), name, subject, now).await {
        Ok(_) => Ok(()),
        // Lost a race with another request provisioning the same subject.
        Err(StoreError::Domain(e)) if e.code == corral_core::ErrorCode::Conflict => Ok(()),
        Err(e) => Err(e),
    }
}

/// Changes a user's email, name or active flag.
pub async fn update<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    id: RecordId,
    changes: &UserChanges,
    actor: &str,
    now: Timestamp,
) -> StoreResult<User> {
    let mut user = get(c, tenant, id).await?.ok_or_else(CoreError::record_not_found)?;
    let before = user.clone();
    if let Some(email) = &changes.email {
        user.email = normalise_email(email.as_deref())?;
    }
    if let Some(name) = &changes.display_name {
        user.display_name = name.clone();
    }
    if let Some(active) = changes.is_active {
        user.is_active = active;
    }
    if user == before {
        return Ok(user);
    }
    user.version += 1;
    user.updated_at = if now > user.updated_at { now } else { Timestamp(user.updated_at.0 + 1) };
    user.updated_by = actor.to_owned();
    let result = c
        .execute(
            "UPDATE users SET email = $3, email_key = $4, display_name = $5, is_active = $6, updated_at = $7, updated_by = $8, version = $9 WHERE tenant_id = $1 AND id = $2",
            &[
                SqlValue::text(tenant),
                SqlValue::text(id.canonical()),
                SqlValue::opt_text(user.email.clone()),
                SqlValue::opt_text(user.email.as_deref().map(normalize::email_key)),
                SqlValue::opt_text(user.display_name.clone()),
                SqlValue::Bool(user.is_active),
                SqlValue::Int(user.updated_at.millis()),
                SqlValue::text(actor),
                SqlValue::Int(user.version),
            ],
        )
        .await;
    match result {
        Err(DbError::UniqueViolation(_)) => Err(email_conflict(user.email.as_deref().unwrap_or_default())),
        other => {
            other?;
            Ok(user)
        }
    }
}
