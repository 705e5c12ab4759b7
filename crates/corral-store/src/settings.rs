//! Per-tenant settings (docs/CONTRACT.md §2 admin routes), stored as one JSON object per tenant.

use crate::StoreResult;
use crate::db::{Conn, SqlValue};
use corral_core::TenantId;
use corral_core::value::whole_number;
use corral_core::{CoreError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Link contacts to accounts by email domain (docs/CONTRACT.md §4.3).
    pub auto_associate_contacts: bool,
    /// Requests per second per tenant; `null` = the server default.
    pub rate_limit_per_second: Option<u32>,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings { auto_associate_contacts: true, rate_limit_per_second: None }
    }
}

impl TenantSettings {
    /// Applies a partial JSON object; unknown keys and wrong types are refused.
    pub fn patch(&mut self, body: &Json) -> Result<(), CoreError> {
        let obj = body
            .as_object()
            .ok_or_else(|| CoreError::new(corral_core::ErrorCode::InvalidJson, "the body must be a JSON object"))?;
        for (key, value) in obj {
            match key.as_str() {
                "auto_associate_contacts" => {
                    self.auto_associate_contacts =
                        value.as_bool().ok_or_else(|| CoreError::invalid_value(key, "expected true or false"))?;
                }
                "rate_limit_per_second" => {
                    self.rate_limit_per_second = match value {
                        Json::Null => None,
                        v => Some(
                            v.as_number().and_then(whole_number).filter(|n| (1..=1_000_000).contains(n)).ok_or_else(
                                || CoreError::invalid_value(key, "expected a whole number from 1 to 1000000, or null"),
                            )? as u32,
                        ),
                    };
                }
                other => return Err(CoreError::unknown_field(other)),
            }
        }
        Ok(())
    }
}

pub async fn get<C: Conn>(c: &mut C, tenant: &TenantId) -> StoreResult<TenantSettings> {
    let row =
        c.query_opt("SELECT settings FROM tenant_settings WHERE tenant_id = $1", &[SqlValue::text(tenant)]).await?;
    Ok(row.and_then(|mut r| r.text(0)).and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
}

pub async fn put<C: Conn>(c: &mut C, tenant: &TenantId, settings: &TenantSettings, now: Timestamp) -> StoreResult<()> {
    let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
    c.execute(
        "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        &[SqlValue::text(tenant), SqlValue::text(json), SqlValue::Int(now.millis())],
    )
    .await?;
    Ok(())
}
