//! Shared application state: the store, token settings, the cursor key, the rate limiter, and
//! small in-memory caches (users already provisioned from human tokens, tenant schemas, tenant
//! rate limits, the liveness of the API keys behind exchanged tokens).

use crate::auth::{AuthConfig, Claims, subject_user_id};
use crate::error::ApiResult;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use corral_core::cursor::CursorKey;
use corral_core::custom::TenantSchema;
use corral_core::{RecordType, TenantId, Timestamp};
use corral_store::Store;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a tenant's schema is reused before it is read again. Changes made through this
/// instance apply at once; changes made through another instance within this delay.
const SCHEMA_TTL: Duration = Duration::from_secs(1);

/// How long a tenant's `rate_limit_per_second` is reused before it is read again (a change
/// through this instance applies at once, through another within this delay).
const SETTINGS_TTL: Duration = Duration::from_secs(1);

/// How long the liveness of the API key behind an exchanged token is reused: a key revoked
/// through another instance stops its exchanged tokens within this delay (at once through
/// this one).
const KEY_LIVENESS_TTL: Duration = Duration::from_secs(1);

type SchemaCache = RwLock<HashMap<(TenantId, RecordType), (Arc<TenantSchema>, Instant)>>;

/// A tenant's OpenAPI document and the account and contact schemas it was built from.
type DocumentCache = RwLock<HashMap<TenantId, (Arc<TenantSchema>, Arc<TenantSchema>, Arc<String>)>>;

/// Per tenant: its own rate limit (`None` = the server default) and when it was read.
type RateSettingCache = RwLock<HashMap<TenantId, (Option<NonZeroU32>, Instant)>>;

/// Per API key id: (tenant, live) and when it was read.
type KeyLivenessCache = RwLock<HashMap<String, (TenantId, bool, Instant)>>;

/// Provisioned-subject cache entries kept before the cache is reset.
const PROVISION_CACHE_LIMIT: usize = 100_000;

/// Cheaply cloneable handle to everything handlers need.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    metrics: Metrics,
    auth: AuthConfig,
    cursor_key: CursorKey,
    /// `tenant \0 sub` of human subjects whose user exists: skips a write per request.
    provisioned: RwLock<HashSet<String>>,
    /// Tenant schemas, read on first use and reused for [`SCHEMA_TTL`].
    schemas: SchemaCache,
    /// Per-tenant OpenAPI documents, rebuilt when the tenant's schema differs.
    documents: DocumentCache,
    /// Tenants' `rate_limit_per_second`, reused for [`SETTINGS_TTL`].
    rate_settings: RateSettingCache,
    /// Whether the keys behind exchanged tokens are live, reused for [`KEY_LIVENESS_TTL`].
    key_liveness: KeyLivenessCache,
    /// The per-credential and per-tenant limiters (docs/CONTRACT.md §2).
    rate_limits: RateLimits,
    /// Webhook delivery settings (docs/OPERATIONS.md).
    webhooks: crate::webhooks::WebhookOptions,
}

impl AppState {
    /// State without a server default rate limit: only tenants that set their own
    /// `rate_limit_per_second` are limited.
    pub fn new(store: Store, auth: AuthConfig) -> Self {
        Self::with_rate_limit(store, auth, None)
    }

    /// State whose credentials (and tenants without a setting of their own) are limited to
    /// `default_per_second` requests per second (`CORRAL_RATE_LIMIT_PER_SECOND`).
    pub fn with_rate_limit(store: Store, auth: AuthConfig, default_per_second: Option<NonZeroU32>) -> Self {
        let cursor_key = CursorKey::derive(auth.secret());
        AppState(Arc::new(Inner {
            metrics: Metrics::new(store.pool_probe()),
            store,
            auth,
            cursor_key,
            provisioned: RwLock::new(HashSet::new()),
            schemas: RwLock::new(HashMap::new()),
            documents: RwLock::new(HashMap::new()),
            rate_settings: RwLock::new(HashMap::new()),
            key_liveness: RwLock::new(HashMap::new()),
            rate_limits: RateLimits::new(default_per_second),
            webhooks: crate::webhooks::WebhookOptions::default(),
        }))
    }

    /// Sets the webhook delivery settings; call before the state is cloned.
    pub fn with_webhook_options(mut self, options: crate::webhooks::WebhookOptions) -> Self {
        Arc::get_mut(&mut self.0).expect("configure the state before sharing it").webhooks = options;
        self
    }

    pub fn webhook_options(&self) -> &crate::webhooks::WebhookOptions {
        &self.0.webhooks
    }

    pub fn rate_limits(&self) -> &RateLimits {
        &self.0.rate_limits
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The process's metrics (`GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn auth(&self) -> &AuthConfig {
        &self.0.auth
    }

    pub fn cursor_key(&self) -> &CursorKey {
        &self.0.cursor_key
    }

    /// A record type as the tenant sees it (stages, custom attributes).
    pub async fn schema(&self, tenant: &TenantId, rt: RecordType) -> ApiResult<Arc<TenantSchema>> {
        let key = (tenant.clone(), rt);
        if let Some((schema, at)) = self.0.schemas.read().unwrap_or_else(|p| p.into_inner()).get(&key)
            && at.elapsed() < SCHEMA_TTL
        {
            return Ok(schema.clone());
        }
        let schema = Arc::new(self.0.store.schema(tenant, rt).await?);
        let mut cache = self.0.schemas.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PROVISION_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, (schema.clone(), Instant::now()));
        Ok(schema)
    }

    /// The tenant's OpenAPI document for these schemas: reused while the schemas are equal
    /// to the ones it was built from, so it changes exactly when `_schema` does.
    pub fn openapi_document(
        &self,
        tenant: &TenantId,
        account: Arc<TenantSchema>,
        contact: Arc<TenantSchema>,
    ) -> Arc<String> {
        if let Some((a, c, doc)) = self.0.documents.read().unwrap_or_else(|p| p.into_inner()).get(tenant)
            && *a == account
            && *c == contact
        {
            return doc.clone();
        }
        let doc =
            Arc::new(serde_json::to_string_pretty(&crate::openapi::document(&account, &contact)).unwrap_or_default());
        let mut cache = self.0.documents.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PROVISION_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(tenant.clone(), (account, contact, doc.clone()));
        doc
    }

    /// Forgets a cached schema after it changed.
    pub fn invalidate_schema(&self, tenant: &TenantId, rt: RecordType) {
        self.0.schemas.write().unwrap_or_else(|p| p.into_inner()).remove(&(tenant.clone(), rt));
    }

    /// The tenant's own `rate_limit_per_second` (`None`: the server default applies), read at
    /// most once per [`SETTINGS_TTL`]. When the settings cannot be read (the database is
    /// down), the last value read is kept, or none: limiting never fails a request by itself.
    pub async fn tenant_rate_limit(&self, tenant: &TenantId) -> Option<NonZeroU32> {
        let cached = self.0.rate_settings.read().unwrap_or_else(|p| p.into_inner()).get(tenant).copied();
        if let Some((limit, at)) = cached
            && at.elapsed() < SETTINGS_TTL
        {
            return limit;
        }
        let limit = match self.0.store.settings(tenant).await {
            Ok(settings) => settings.rate_limit_per_second.and_then(NonZeroU32::new),
            Err(e) => {
                tracing::warn!(request_id = %crate::request_id::current(), %tenant, error = %e, "tenant settings unreadable; rate limit left as it was");
                return cached.and_then(|c| c.0);
            }
        };
        let mut cache = self.0.rate_settings.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PROVISION_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(tenant.clone(), (limit, Instant::now()));
        limit
    }

    /// Forgets a tenant's cached settings after they changed.
    pub fn invalidate_settings(&self, tenant: &TenantId) {
        self.0.rate_settings.write().unwrap_or_else(|p| p.into_inner()).remove(tenant);
    }

    /// Whether API key `id` exists in `tenant` and is neither revoked nor expired, read at most
    /// once per [`KEY_LIVENESS_TTL`] (for tokens obtained by exchanging the key).
    pub async fn key_is_live(&self, tenant: &TenantId, id: &str) -> ApiResult<bool> {
        if let Some((owner, live, at)) = self.0.key_liveness.read().unwrap_or_else(|p| p.into_inner()).get(id)
            && at.elapsed() < KEY_LIVENESS_TTL
        {
            return Ok(*live && owner == tenant);
        }
        let key = if crate::auth::is_key_id(id) { self.0.store.find_api_key(id).await? } else { None };
        let (owner, live) = match key {
            Some(k) => {
                let live = k.is_live(Timestamp::now());
                (k.tenant_id, live)
            }
            None => (tenant.clone(), false),
        };
        let answer = live && owner == *tenant;
        let mut cache = self.0.key_liveness.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PROVISION_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(id.to_owned(), (owner, live, Instant::now()));
        Ok(answer)
    }

    /// Forgets the cached liveness of a key after it was revoked.
    pub fn invalidate_key(&self, id: &str) {
        self.0.key_liveness.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Creates the directory user of a human token's subject on first sight (docs/CONTRACT.md §4.4).
    pub async fn provision_user(&self, claims: &Claims) -> ApiResult<()> {
        let cache_key = format!("{}\0{}", claims.tenant_id, claims.sub);
        if self.0.provisioned.read().unwrap_or_else(|p| p.into_inner()).contains(&cache_key) {
            return Ok(());
        }
        let tenant = TenantId::new(claims.tenant_id.as_str());
        let id = subject_user_id(&tenant, &claims.sub);
        if !self.0.store.user_exists(&tenant, id).await? {
            self.0
                .store
                .provision_user(&tenant, id, claims.email.as_deref(), claims.name.as_deref(), &claims.sub)
                .await?;
        }
        let mut cache = self.0.provisioned.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PROVISION_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(cache_key);
        Ok(())
    }
}
