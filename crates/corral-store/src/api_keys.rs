//! API keys (docs/CONTRACT.md §2): tenant-owned, optionally app-scoped, carrying scopes. Only a hash of
//! the secret is stored; the key itself is shown once, at creation.

use crate::db::{Conn, Row, SqlValue};
use crate::{StoreError, StoreResult};
use corral_core::TenantId;
use corral_core::Timestamp;

/// A stored API key (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: TenantId,
    pub app: Option<String>,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub created_by: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    /// Usable now: not revoked, not expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

const COLUMNS: &str = "id, tenant_id, app, name, scopes, secret_hash, created_at, created_by, expires_at, revoked_at";

fn decode(mut row: Row) -> StoreResult<ApiKey> {
    let corrupt = || StoreError::Internal("stored api key is malformed".into());
    Ok(ApiKey {
        id: row.text(0).ok_or_else(corrupt)?,
        tenant_id: TenantId::from(row.text(1).ok_or_else(corrupt)?),
        app: row.text(2),
        name: row.text(3),
        scopes: row.text(4).unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
        secret_hash: row.text(5).ok_or_else(corrupt)?,
        created_at: Timestamp(row.int(6).ok_or_else(corrupt)?),
        created_by: row.text(7).unwrap_or_default(),
        expires_at: row.int(8).map(Timestamp),
        revoked_at: row.int(9).map(Timestamp),
    })
}

pub async fn insert<C: Conn>(c: &mut C, key: &ApiKey) -> StoreResult<()> {
    c.execute(
        &format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            SqlValue::text(key.id.clone()),
            SqlValue::text(&key.tenant_id),
            SqlValue::opt_text(key.app.clone()),
            SqlValue::opt_text(key.name.clone()),
            SqlValue::text(key.scopes.join(" ")),
            SqlValue::text(key.secret_hash.clone()),
            SqlValue::Int(key.created_at.millis()),
            SqlValue::text(key.created_by.clone()),
            SqlValue::opt_int(key.expires_at.map(Timestamp::millis)),
            SqlValue::opt_int(key.revoked_at.map(Timestamp::millis)),
        ],
    )
    .await?;
    Ok(())
}

/// Looks a key up by id alone: the id comes from the presented key, before the tenant is known.
pub async fn find<C: Conn>(c: &mut C, id: &str) -> StoreResult<Option<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
    c.query_opt(&sql, &[SqlValue::text(id)]).await?.map(decode).transpose()
}

/// A tenant's keys, newest first, revoked ones included.
pub async fn list<C: Conn>(c: &mut C, tenant: &TenantId) -> StoreResult<Vec<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC");
    c.query(&sql, &[SqlValue::text(tenant)]).await?.into_iter().map(decode).collect()
}

/// Revokes a tenant's key; false when it does not exist or was already revoked.
pub async fn revoke<C: Conn>(c: &mut C, tenant: &TenantId, id: &str, now: Timestamp) -> StoreResult<bool> {
    let n = c
        .execute(
            "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            &[SqlValue::text(tenant), SqlValue::text(id), SqlValue::Int(now.millis())],
        )
        .await?;
    Ok(n > 0)
}
