//! Shared application state: the store, token settings, the cursor key, and the small
//! in-memory cache of users already provisioned from human tokens.

use crate::auth::{AuthConfig, Claims, subject_user_id};
use crate::error::ApiResult;
use corral_core::RecordType;
use corral_core::cursor::CursorKey;
use corral_core::custom::TenantSchema;
use corral_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a tenant's schema is reused before it is read again. Changes made through this
/// instance apply at once; changes made through another instance within this delay.
const SCHEMA_TTL: Duration = Duration::from_secs(1);

type SchemaCache = RwLock<HashMap<(String, RecordType), (Arc<TenantSchema>, Instant)>>;

/// A tenant's OpenAPI document and the account and contact schemas it was built from.
type DocumentCache = RwLock<HashMap<String, (Arc<TenantSchema>, Arc<TenantSchema>, Arc<String>)>>;

/// Provisioned-subject cache entries kept before the cache is reset.
const PROVISION_CACHE_LIMIT: usize = 100_000;

/// Cheaply cloneable handle to everything handlers need.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    auth: AuthConfig,
    cursor_key: CursorKey,
    /// `tenant \0 sub` of human subjects whose user exists: skips a write per request.
    provisioned: RwLock<HashSet<String>>,
    /// Tenant schemas, read on first use and reused for [`SCHEMA_TTL`].
    schemas: SchemaCache,
    /// Per-tenant OpenAPI documents, rebuilt when the tenant's schema differs.
    documents: DocumentCache,
}

impl AppState {
    pub fn new(store: Store, auth: AuthConfig) -> Self {
        let cursor_key = CursorKey::derive(auth.secret());
        AppState(Arc::new(Inner {
            store,
            auth,
            cursor_key,
            provisioned: RwLock::new(HashSet::new()),
            schemas: RwLock::new(HashMap::new()),
            documents: RwLock::new(HashMap::new()),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn auth(&self) -> &AuthConfig {
        &self.0.auth
    }

    pub fn cursor_key(&self) -> &CursorKey {
        &self.0.cursor_key
    }

    /// A record type as the tenant sees it (stages, custom attributes).
    pub async fn schema(&self, tenant: &str, rt: RecordType) -> ApiResult<Arc<TenantSchema>> {
        let key = (tenant.to_owned(), rt);
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
        tenant: &str,
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
        cache.insert(tenant.to_owned(), (account, contact, doc.clone()));
        doc
    }

    /// Forgets a cached schema after it changed.
    pub fn invalidate_schema(&self, tenant: &str, rt: RecordType) {
        self.0.schemas.write().unwrap_or_else(|p| p.into_inner()).remove(&(tenant.to_owned(), rt));
    }

    /// Creates the directory user of a human token's subject on first sight (docs/CONTRACT.md §4.4).
    pub async fn provision_user(&self, claims: &Claims) -> ApiResult<()> {
        let cache_key = format!("{}\0{}", claims.tenant_id, claims.sub);
        if self.0.provisioned.read().unwrap_or_else(|p| p.into_inner()).contains(&cache_key) {
            return Ok(());
        }
        let id = subject_user_id(&claims.tenant_id, &claims.sub);
        if !self.0.store.user_exists(&claims.tenant_id, id).await? {
            self.0
                .store
                .provision_user(&claims.tenant_id, id, claims.email.as_deref(), claims.name.as_deref(), &claims.sub)
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
