//! Stored first responses for `Idempotency-Key` (docs/CONTRACT.md §5.2), kept 24 hours per (tenant, key).

use crate::StoreResult;
use crate::db::{Conn, SqlValue};
use corral_core::TenantId;
use corral_core::Timestamp;

/// How long a stored response is replayed.
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// The caller's key and a hash of its request, which must match on replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// A response stored under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// The live stored response for a key, if any.
pub async fn find<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    key: &str,
    now: Timestamp,
) -> StoreResult<Option<StoredResponse>> {
    let row = c
        .query_opt(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND created_at > $3",
            &[SqlValue::text(tenant), SqlValue::text(key), SqlValue::Int(now.millis() - RETENTION_MS)],
        )
        .await?;
    Ok(row.map(|mut r| StoredResponse {
        request_hash: r.text(0).unwrap_or_default(),
        status: r.int(1).unwrap_or(200) as u16,
        body: r.text(2).unwrap_or_default(),
    }))
}

/// Stores a response, replacing an expired one under the same key.
pub async fn remember<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    key: &IdempotencyKey,
    status: u16,
    body: &str,
    now: Timestamp,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status, body = excluded.body, created_at = excluded.created_at",
        &[SqlValue::text(tenant), SqlValue::text(key.key.clone()), SqlValue::text(key.request_hash.clone()), SqlValue::Int(status as i64), SqlValue::text(body), SqlValue::Int(now.millis())],
    )
    .await?;
    Ok(())
}
