//! Webhook subscriptions and deliveries (docs/API.md "Webhooks"): the subscription rows an
//! admin manages, the fan-out of change events into deliveries, and claiming and settling
//! deliveries for the dispatcher (which lives in corral-http: it renders and sends them).
//!
//! Each subscription reads the change feed ([`crate::changes::feed`], the same ordered,
//! gap-free reader `GET /api/v2/_changes` uses) from its own stored cursor. Fan-out locks the
//! subscription row (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer), so with
//! several instances each event becomes one delivery. A claimed delivery is leased (its
//! `next_attempt_at` pushed past the send timeout) rather than locked while it is sent: an
//! instance that dies mid-send leaves it to be retried, so delivery is at least once.

use crate::changes::{self, ChangeEvent, Position};
use crate::db::{Conn, Dialect, Row, SqlValue};
use crate::{StoreError, StoreResult};
use corral_core::change::Action;
use corral_core::{Actor, ActorKind, CoreError, ErrorCode, RecordType, TenantId, Timestamp};
use serde_json::Value as Json;

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: TenantId,
    /// The creator's app scope: like a feed read with its credential, the subscription is
    /// sent only that app's events (docs/API.md "Webhooks").
    pub app_id: Option<String>,
    pub url: String,
    pub types: Vec<RecordType>,
    pub actions: Vec<Action>,
    /// Change keys whose change triggers a delivery; `None`: any change.
    pub fields: Option<Vec<String>>,
    /// `whsec_` + base64 of the signing key.
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Subscription {
    /// Whether `e` is one this subscription is sent.
    pub fn matches(&self, e: &ChangeEvent) -> bool {
        self.types.contains(&e.record_type)
            && self.actions.contains(&e.action)
            && self.fields.as_ref().is_none_or(|fields| {
                // Lifecycle events carry no field changes of interest: only updates filter.
                e.action != Action::Updated || fields.iter().any(|f| e.changes.contains_key(f))
            })
    }
}

/// What an admin may change on a subscription.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    pub types: Option<Vec<RecordType>>,
    pub actions: Option<Vec<Action>>,
    pub fields: Option<Option<Vec<String>>>,
    pub enabled: Option<bool>,
}

const SUB_COLUMNS: &str =
    "id, tenant_id, url, types, actions, fields, secret, enabled, disabled_reason, created_at, updated_at, app_id";
/// How many columns [`SUB_COLUMNS`] names.
const SUB_WIDTH: usize = 12;

fn strings(raw: Option<String>) -> Option<Vec<String>> {
    raw.and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok())
}

fn decode_sub(mut r: Row) -> StoreResult<Subscription> {
    let corrupt = || StoreError::Internal("stored webhook subscription is malformed".into());
    Ok(Subscription {
        id: r.text(0).ok_or_else(corrupt)?,
        tenant_id: TenantId::from(r.text(1).ok_or_else(corrupt)?),
        url: r.text(2).ok_or_else(corrupt)?,
        types: strings(r.text(3))
            .ok_or_else(corrupt)?
            .iter()
            .map(|s| RecordType::from_api_name(s).ok_or_else(corrupt))
            .collect::<StoreResult<_>>()?,
        actions: strings(r.text(4))
            .ok_or_else(corrupt)?
            .iter()
            .map(|s| Action::parse(s).ok_or_else(corrupt))
            .collect::<StoreResult<_>>()?,
        fields: match r.text(5) {
            None => None,
            raw => Some(strings(raw).ok_or_else(corrupt)?),
        },
        secret: r.text(6).ok_or_else(corrupt)?,
        enabled: r.bool(7),
        disabled_reason: r.text(8),
        created_at: Timestamp(r.int(9).ok_or_else(corrupt)?),
        updated_at: Timestamp(r.int(10).ok_or_else(corrupt)?),
        app_id: r.text(11),
    })
}

fn json_list<T>(items: &[T], name: impl Fn(&T) -> &str) -> SqlValue {
    SqlValue::Text(Json::from(items.iter().map(|i| name(i).to_owned()).collect::<Vec<_>>()).to_string())
}

fn fields_value(fields: &Option<Vec<String>>) -> SqlValue {
    match fields {
        Some(f) => SqlValue::Text(Json::from(f.clone()).to_string()),
        None => SqlValue::Null,
    }
}

fn bool_value(c: &impl Conn, b: bool) -> SqlValue {
    match c.dialect() {
        Dialect::Postgres => SqlValue::Bool(b),
        Dialect::Sqlite => SqlValue::Int(b as i64),
    }
}

/// Where a new subscription of `tenant` starts reading the feed: after every event that can
/// already be served, so it is sent what is written from now on. On PostgreSQL a transaction
/// still running may commit events *before* the newest position (its xid is older), so the
/// start is just before the oldest running transaction instead: nothing written after the
/// subscription is missed, at the cost of perhaps a few events from just before it.
async fn head<C: Conn>(c: &mut C, tenant: &TenantId) -> StoreResult<Position> {
    let sql = match c.dialect() {
        Dialect::Sqlite => {
            "SELECT xid, seq FROM record_changes WHERE tenant_id = $1 ORDER BY xid DESC, seq DESC LIMIT 1"
        }
        Dialect::Postgres => {
            "SELECT xid, seq FROM record_changes WHERE tenant_id = $1 \
             AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY xid DESC, seq DESC LIMIT 1"
        }
    };
    let row = c.query_opt(sql, &[SqlValue::text(tenant)]).await?;
    Ok(row.map(|mut r| (r.int(0).unwrap_or(0), r.int(1).unwrap_or(0))).unwrap_or((0, 0)))
}

/// Creates a subscription; it is sent events written after it.
pub async fn insert<C: Conn>(c: &mut C, sub: &Subscription) -> StoreResult<()> {
    let (x, s) = head(c, &sub.tenant_id).await?;
    let enabled = bool_value(c, sub.enabled);
    c.execute(
        &format!(
            "INSERT INTO webhook_subscriptions ({SUB_COLUMNS}, cursor_xid, cursor_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        &[
            SqlValue::text(sub.id.clone()),
            SqlValue::text(&sub.tenant_id),
            SqlValue::text(sub.url.clone()),
            json_list(&sub.types, |t| t.api_name()),
            json_list(&sub.actions, |a| a.as_str()),
            fields_value(&sub.fields),
            SqlValue::text(sub.secret.clone()),
            enabled,
            SqlValue::opt_text(sub.disabled_reason.clone()),
            SqlValue::Int(sub.created_at.millis()),
            SqlValue::Int(sub.updated_at.millis()),
            SqlValue::opt_text(sub.app_id.clone()),
            SqlValue::Int(x),
            SqlValue::Int(s),
        ],
    )
    .await?;
    Ok(())
}

pub async fn get<C: Conn>(c: &mut C, tenant: &TenantId, id: &str) -> StoreResult<Option<Subscription>> {
    let sql = format!("SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2");
    c.query_opt(&sql, &[SqlValue::text(tenant), SqlValue::text(id)]).await?.map(decode_sub).transpose()
}

/// A tenant's subscriptions, oldest first.
pub async fn list<C: Conn>(c: &mut C, tenant: &TenantId) -> StoreResult<Vec<Subscription>> {
    let sql = format!("SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE tenant_id = $1 ORDER BY created_at, id");
    c.query(&sql, &[SqlValue::text(tenant)]).await?.into_iter().map(decode_sub).collect()
}

/// Applies `patch`; enabling clears the disabled reason. `None` when there is no such subscription.
pub async fn update<C: Conn>(
    c: &mut C,
    tenant: &TenantId,
    id: &str,
    patch: &SubscriptionPatch,
) -> StoreResult<Option<Subscription>> {
    let Some(mut sub) = get(c, tenant, id).await? else { return Ok(None) };
    if let Some(url) = &patch.url {
        sub.url = url.clone();
    }
    if let Some(types) = &patch.types {
        sub.types = types.clone();
    }
    if let Some(actions) = &patch.actions {
        sub.actions = actions.clone();
    }
    if let Some(fields) = &patch.fields {
        sub.fields = fields.clone();
    }
    match patch.enabled {
        Some(true) => {
            sub.enabled = true;
            sub.disabled_reason = None;
        }
        Some(false) if sub.enabled => {
            sub.enabled = false;
            sub.disabled_reason = Some("disabled by an admin".into());
        }
        _ => {}
    }
    sub.updated_at = Timestamp::now();
    let enabled = bool_value(c, sub.enabled);
    c.execute(
        "UPDATE webhook_subscriptions SET url = $3, types = $4, actions = $5, fields = $6, enabled = $7, \
         disabled_reason = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2",
        &[
            SqlValue::text(tenant),
            SqlValue::text(id),
            SqlValue::text(sub.url.clone()),
            json_list(&sub.types, |t| t.api_name()),
            json_list(&sub.actions, |a| a.as_str()),
            fields_value(&sub.fields),
            enabled,
            SqlValue::opt_text(sub.disabled_reason.clone()),
            SqlValue::Int(sub.updated_at.millis()),
        ],
    )
    .await?;
    Ok(Some(sub))
}

/// Deletes a subscription and its delivery log; false when there is none.
pub async fn delete<C: Conn>(c: &mut C, tenant: &TenantId, id: &str) -> StoreResult<bool> {
    let args = [SqlValue::text(tenant), SqlValue::text(id)];
    c.execute("DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND subscription_id = $2", &args).await?;
    Ok(c.execute("DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2", &args).await? > 0)
}

/// Moves a subscription's cursor to just before the event `event_id`, so that event and
/// every later one are delivered again (already delivered ones too). `Ok(false)`: no such
/// subscription; an unknown event is `422 field_value_invalid` on `from_event_id`.
pub async fn replay<C: Conn>(c: &mut C, tenant: &TenantId, id: &str, event_id: &str) -> StoreResult<bool> {
    if get(c, tenant, id).await?.is_none() {
        return Ok(false);
    }
    let Some(mut row) = c
        .query_opt(
            "SELECT xid, seq FROM record_changes WHERE tenant_id = $1 AND event_id = $2",
            &[SqlValue::text(tenant), SqlValue::text(event_id)],
        )
        .await?
    else {
        return Err(CoreError::invalid_value(
            "from_event_id",
            "no change event with this id (it may be past retention)",
        )
        .into());
    };
    let (x, s) = (row.int(0).unwrap_or(0), row.int(1).unwrap_or(0));
    // (x, s - 1) sorts just before (x, s) and after everything before it: seq is unique.
    c.execute(
        "UPDATE webhook_subscriptions SET cursor_xid = $3, cursor_seq = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
        &[SqlValue::text(tenant), SqlValue::text(id), SqlValue::Int(x), SqlValue::Int(s - 1), SqlValue::Int(Timestamp::now().millis())],
    )
    .await?;
    Ok(true)
}

/// Whether any subscription (of any tenant) is enabled: without one, a dispatcher pass has
/// nothing to do and takes no write lock.
pub async fn any_enabled<C: Conn>(c: &mut C) -> StoreResult<bool> {
    let t = bool_value(c, true);
    Ok(c.query_opt("SELECT 1 FROM webhook_subscriptions WHERE enabled = $1 LIMIT 1", &[t]).await?.is_some())
}

/// Events read per subscription per fan-out pass.
const FAN_OUT_BATCH: usize = 500;

/// Turns new feed events of every enabled subscription into pending deliveries, advancing
/// each cursor in the same transaction. `render` makes the delivered body (the event as the
/// feed shows it). Returns how many deliveries were created.
pub async fn fan_out<C: Conn>(c: &mut C, render: &(dyn Fn(&ChangeEvent) -> String + Sync)) -> StoreResult<u64> {
    let skip_locked = match c.dialect() {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let bool_true = bool_value(c, true);
    let rows = c
        .query(
            &format!(
                "SELECT {SUB_COLUMNS}, cursor_xid, cursor_seq FROM webhook_subscriptions WHERE enabled = $1 ORDER BY id{skip_locked}"
            ),
            &[bool_true],
        )
        .await?;
    let now = Timestamp::now().millis();
    let mut created = 0;
    for mut row in rows {
        let cursor = (row.int(SUB_WIDTH).unwrap_or(0), row.int(SUB_WIDTH + 1).unwrap_or(0));
        row.0.truncate(SUB_WIDTH);
        let sub = decode_sub(row)?;
        // The creator's app scope applies, as to its own feed reads.
        let actor = Actor::new(sub.tenant_id.clone(), "webhooks", sub.app_id.clone(), ActorKind::System);
        let page = match changes::feed(c, &actor, &sub.types, Some(cursor), FAN_OUT_BATCH).await {
            Ok(page) => page,
            // Events past retention are gone: carry on from the oldest retained one.
            Err(StoreError::Domain(e)) if e.code == ErrorCode::CursorExpired => {
                tracing::warn!(subscription = %sub.id, "webhook cursor past retention; skipping to the oldest event");
                changes::feed(c, &actor, &sub.types, None, FAN_OUT_BATCH).await?
            }
            Err(e) => return Err(e),
        };
        for e in page.events.iter().filter(|e| sub.matches(e)) {
            // A replayed event is sent again: its delivery starts over.
            c.execute(
                "INSERT INTO webhook_deliveries (id, tenant_id, subscription_id, event_id, body, status, attempts, \
                 next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6) \
                 ON CONFLICT (subscription_id, event_id) DO UPDATE SET status = 'pending', attempts = 0, \
                 next_attempt_at = excluded.next_attempt_at, body = excluded.body, last_status = NULL, \
                 last_error = NULL, updated_at = excluded.updated_at",
                &[
                    SqlValue::text(uuid::Uuid::now_v7().to_string()),
                    SqlValue::text(&sub.tenant_id),
                    SqlValue::text(sub.id.clone()),
                    SqlValue::text(e.id.clone()),
                    SqlValue::Text(render(e)),
                    SqlValue::Int(now),
                ],
            )
            .await?;
            created += 1;
        }
        if page.next != cursor {
            c.execute(
                "UPDATE webhook_subscriptions SET cursor_xid = $2, cursor_seq = $3 WHERE id = $1",
                &[SqlValue::text(sub.id.clone()), SqlValue::Int(page.next.0), SqlValue::Int(page.next.1)],
            )
            .await?;
        }
    }
    Ok(created)
}

/// One delivery, as the log shows it and the dispatcher sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const DELIVERY_COLUMNS: &str = "d.id, d.subscription_id, d.event_id, d.body, d.status, d.attempts, \
    d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at";

fn decode_delivery(mut r: Row) -> StoreResult<Delivery> {
    let corrupt = || StoreError::Internal("stored webhook delivery is malformed".into());
    Ok(Delivery {
        id: r.text(0).ok_or_else(corrupt)?,
        subscription_id: r.text(1).ok_or_else(corrupt)?,
        event_id: r.text(2).ok_or_else(corrupt)?,
        body: r.text(3).ok_or_else(corrupt)?,
        status: r.text(4).ok_or_else(corrupt)?,
        attempts: r.int(5).ok_or_else(corrupt)?,
        next_attempt_at: Timestamp(r.int(6).ok_or_else(corrupt)?),
        last_status: r.int(7),
        last_error: r.text(8),
        created_at: Timestamp(r.int(9).ok_or_else(corrupt)?),
        updated_at: Timestamp(r.int(10).ok_or_else(corrupt)?),
    })
}

/// A subscription's deliveries, newest first (at most `limit`).
pub async fn deliveries<C: Conn>(c: &mut C, tenant: &TenantId, id: &str, limit: usize) -> StoreResult<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.tenant_id = $1 AND d.subscription_id = $2 \
         ORDER BY d.created_at DESC, d.id DESC LIMIT {limit}"
    );
    c.query(&sql, &[SqlValue::text(tenant), SqlValue::text(id)]).await?.into_iter().map(decode_delivery).collect()
}

/// A claimed delivery and where to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
}

/// Claims up to `limit` due deliveries of enabled subscriptions, leasing each until
/// `now + lease_ms` so no other instance sends it meanwhile.
pub async fn claim<C: Conn>(c: &mut C, now: Timestamp, lease_ms: i64, limit: usize) -> StoreResult<Vec<Claimed>> {
    let skip_locked = match c.dialect() {
        Dialect::Postgres => " FOR UPDATE OF d SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let bool_true = bool_value(c, true);
    let rows = c
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS}, s.url, s.secret FROM webhook_deliveries d \
                 JOIN webhook_subscriptions s ON s.id = d.subscription_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND s.enabled = $2 \
                 ORDER BY d.next_attempt_at, d.id LIMIT {limit}{skip_locked}"
            ),
            &[SqlValue::Int(now.millis()), bool_true],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for mut row in rows {
        let url = row.text(11).unwrap_or_default();
        let secret = row.text(12).unwrap_or_default();
        row.0.truncate(11);
        let delivery = decode_delivery(row)?;
        c.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id = $1",
            &[SqlValue::text(delivery.id.clone()), SqlValue::Int(now.millis() + lease_ms)],
        )
        .await?;
        out.push(Claimed { delivery, url, secret });
    }
    Ok(out)
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    /// Why it failed; `None` for a 2xx.
    pub error: Option<String>,
    /// When to try again after a failure; `None`: give up (the delivery fails and the
    /// subscription is disabled, with the reason recorded).
    pub retry_at: Option<Timestamp>,
}

/// Records an attempt of a claimed delivery.
pub async fn settle<C: Conn>(c: &mut C, claimed: &Claimed, attempt: &Attempt) -> StoreResult<()> {
    let now = Timestamp::now().millis();
    let d = &claimed.delivery;
    let (status, next) = match (&attempt.error, attempt.retry_at) {
        (None, _) => ("delivered", now),
        (Some(_), Some(at)) => ("pending", at.millis()),
        (Some(_), None) => ("failed", now),
    };
    c.execute(
        "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_attempt_at = $3, last_status = $4, \
         last_error = $5, updated_at = $6 WHERE id = $1",
        &[
            SqlValue::text(d.id.clone()),
            SqlValue::text(status),
            SqlValue::Int(next),
            SqlValue::opt_int(attempt.status),
            SqlValue::opt_text(attempt.error.clone()),
            SqlValue::Int(now),
        ],
    )
    .await?;
    if status == "failed" {
        let reason = format!(
            "delivery of event {} failed {} times; last error: {}",
            d.event_id,
            d.attempts + 1,
            attempt.error.as_deref().unwrap_or_default()
        );
        let disabled = bool_value(c, false);
        c.execute(
            "UPDATE webhook_subscriptions SET enabled = $2, disabled_reason = $3, updated_at = $4 WHERE id = $1",
            &[SqlValue::text(d.subscription_id.clone()), disabled, SqlValue::text(reason), SqlValue::Int(now)],
        )
        .await?;
    }
    Ok(())
}
