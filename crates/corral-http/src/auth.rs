//! Authentication and permissions (docs/CONTRACT.md §2).
//!
//! A request presents a JWT or an API key (`Authorization: Bearer …` or `X-Api-Key: …`).
//! Either becomes a [`Principal`]: the [`Actor`] (tenant, subject, app scope) that every store
//! call takes, and the permissions the handler checks. JWT algorithms are pinned per key:
//! HS256 with the server secret, or the one algorithm of the configured public key.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_core::ids::user_id_for_subject;
use corral_core::{Actor, ActorKind, CoreError, ErrorCode, TenantId, Timestamp};
use corral_store::ApiKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One permission. Scopes name them; `write` implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    AccountsRead,
    AccountsWrite,
    ContactsRead,
    ContactsWrite,
    UsersRead,
    SchemaWrite,
    Admin,
}

impl Permission {
    const ALL: [Permission; 7] = [
        Permission::AccountsRead,
        Permission::AccountsWrite,
        Permission::ContactsRead,
        Permission::ContactsWrite,
        Permission::UsersRead,
        Permission::SchemaWrite,
        Permission::Admin,
    ];

    /// The scope string that grants it.
    pub fn scope(self) -> &'static str {
        match self {
            Permission::AccountsRead => "accounts:read",
            Permission::AccountsWrite => "accounts:write",
            Permission::ContactsRead => "contacts:read",
            Permission::ContactsWrite => "contacts:write",
            Permission::UsersRead => "users:read",
            Permission::SchemaWrite => "schema:write",
            Permission::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// What holding this permission also grants (write implies read).
    fn implied(self) -> u8 {
        match self {
            Permission::AccountsWrite => self.bit() | Permission::AccountsRead.bit(),
            Permission::ContactsWrite => self.bit() | Permission::ContactsRead.bit(),
            p => p.bit(),
        }
    }

    /// What reading records of `rt` needs.
    pub fn read(rt: corral_core::RecordType) -> Permission {
        match rt {
            corral_core::RecordType::Account => Permission::AccountsRead,
            corral_core::RecordType::Contact => Permission::ContactsRead,
            corral_core::RecordType::User => Permission::UsersRead,
        }
    }

    /// What writing records of `rt` needs (users are written only through admin routes).
    pub fn write(rt: corral_core::RecordType) -> Permission {
        match rt {
            corral_core::RecordType::Contact => Permission::ContactsWrite,
            _ => Permission::AccountsWrite,
        }
    }

    pub fn from_scope(scope: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.scope() == scope)
    }
}

/// Every scope an API key may carry.
pub fn scope_names() -> Vec<&'static str> {
    Permission::ALL.into_iter().map(Permission::scope).collect()
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub fn all() -> Self {
        Permissions(Permission::ALL.iter().fold(0, |acc, p| acc | p.bit()))
    }

    pub fn grant(&mut self, p: Permission) {
        self.0 |= p.implied();
    }

    pub fn has(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Roles grant a baseline (docs/CONTRACT.md §2); scopes add to it.
    pub fn from_roles_and_scopes<'a>(roles: &[String], scopes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Permissions::default();
        for role in roles {
            match role.as_str() {
                "tenant_admin" => set = Permissions::all(),
                "user" => {
                    set.grant(Permission::AccountsWrite);
                    set.grant(Permission::ContactsWrite);
                    set.grant(Permission::UsersRead);
                }
                _ => {}
            }
        }
        for p in scopes.into_iter().filter_map(Permission::from_scope) {
            set.grant(p);
        }
        set
    }

    /// The scope strings held (for token exchange and listings).
    pub fn scopes(self) -> Vec<&'static str> {
        Permission::ALL.into_iter().filter(|p| self.has(*p)).map(Permission::scope).collect()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub permissions: Permissions,
}

impl Principal {
    /// 403 `forbidden` naming the missing scope unless the caller holds `p`.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.permissions.has(p) { Ok(()) } else { Err(CoreError::forbidden(p.scope()).into()) }
    }
}

/// JWT claims Corral reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A string or an array of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The API key a token was obtained by exchanging (RFC 9068 `client_id`): the token is
    /// accepted only while that key, in the token's tenant, is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Claims {
    /// A human token: no app scope and not a service account.
    pub fn is_human(&self) -> bool {
        self.app_id.is_none() && !self.roles.iter().any(|r| r == "app_service_account")
    }
}

/// Token verification and signing settings.
pub struct AuthConfig {
    hs_secret: Vec<u8>,
    public_key: Option<(Algorithm, DecodingKey)>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("public_key", &self.public_key.as_ref().map(|k| k.0))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Lifetime of tokens minted by the client-credentials exchange.
pub const EXCHANGED_TOKEN_SECONDS: i64 = 3600;
/// Clock skew tolerated on `exp` / `nbf`.
const LEEWAY_SECONDS: u64 = 30;

impl AuthConfig {
    pub fn new(hs_secret: Vec<u8>, issuer: Option<String>, audience: Option<String>) -> Self {
        AuthConfig { hs_secret, public_key: None, issuer, audience }
    }

    /// Adds a PEM public key (RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA).
    pub fn with_public_key_pem(mut self, pem: &[u8]) -> Result<Self, String> {
        let key = if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, k)
        } else if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (Algorithm::RS256, k)
        } else {
            return Err("the public key file is not an RSA, EC P-256 or Ed25519 PEM key".into());
        };
        self.public_key = Some(key);
        Ok(self)
    }

    /// The server secret (also the root of the cursor key).
    pub fn secret(&self) -> &[u8] {
        &self.hs_secret
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECONDS;
        v.validate_nbf = true;
        // jsonwebtoken checks iss/aud only when present: a configured one must be required.
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Verifies a JWT. The header's algorithm only selects which pinned key to try; `none`,
    /// and anything but HS256 or the public key's algorithm, is refused.
    pub fn verify(&self, token: &str) -> ApiResult<Claims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::unauthenticated("malformed token"))?;
        // RFC 7515 §4.1.11: critical extensions must be understood, and Corral understands none.
        if header.crit.is_some() {
            return Err(ApiError::unauthenticated("token has critical header parameters Corral does not understand"));
        }
        let (alg, key) = match (&self.public_key, header.alg) {
            (_, Algorithm::HS256) => (Algorithm::HS256, DecodingKey::from_secret(&self.hs_secret)),
            (Some((alg, key)), h) if h == *alg => (*alg, key.clone()),
            _ => return Err(ApiError::unauthenticated("token algorithm not accepted")),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(alg)).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidIssuer => "token issuer not accepted",
                ErrorKind::InvalidAudience => "token audience not accepted",
                ErrorKind::ImmatureSignature => "token not valid yet",
                ErrorKind::InvalidSignature => "token signature invalid",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "token invalid",
            };
            ApiError::unauthenticated(why)
        })?;
        let claims = data.claims;
        if claims.tenant_id.trim().is_empty() || claims.sub.trim().is_empty() {
            return Err(ApiError::unauthenticated("token lacks tenant_id or sub"));
        }
        let storable = |s: &str| corral_core::normalize::storable(s) && s.len() <= 255;
        if ![Some(&claims.tenant_id), Some(&claims.sub), claims.app_id.as_ref()]
            .into_iter()
            .flatten()
            .all(|s| storable(s))
        {
            return Err(ApiError::unauthenticated("token claims hold characters or lengths Corral does not accept"));
        }
        Ok(claims)
    }

    /// Signs claims with HS256 (for `corral token` and the token exchange). Configured
    /// issuer and audience are added when the claims carry none.
    pub fn mint(&self, mut claims: Claims) -> String {
        if claims.iss.is_none() {
            claims.iss = self.issuer.clone();
        }
        if claims.aud.is_none() {
            claims.aud = self.audience.clone().map(serde_json::Value::String);
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&self.hs_secret))
            .expect("HS256 signing cannot fail")
    }
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    Timestamp::now().millis() / 1000
}

// ----- API keys -----

/// The prefix of every API key.
pub const KEY_PREFIX: &str = "crl_";

/// A freshly generated key: its id, the full key string shown once, and the stored hash.
pub struct NewKey {
    pub id: String,
    pub key: String,
    pub secret_hash: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Generates `crl_<id>_<secret>` with a 64-bit id and a 256-bit secret.
pub fn generate_key() -> NewKey {
    let id = random_hex(8);
    let secret = random_hex(32);
    NewKey { key: format!("{KEY_PREFIX}{id}_{secret}"), secret_hash: hash_secret(&secret), id }
}

/// SHA-256 of a key secret. Secrets are 256-bit random, so a fast hash is enough.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Key ids are short alphanumeric strings; anything else names no key.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Splits `crl_<id>_<secret>`.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix(KEY_PREFIX)?.split_once('_').filter(|(id, secret)| is_key_id(id) && !secret.is_empty())
}

/// Checks a presented (id, secret) against the store; the key if it is live and matches.
pub async fn check_key(state: &AppState, id: &str, secret: &str) -> ApiResult<ApiKey> {
    if !is_key_id(id) {
        return Err(ApiError::unauthenticated("unknown API key"));
    }
    let key = state.store().find_api_key(id).await?.ok_or_else(|| ApiError::unauthenticated("unknown API key"))?;
    let matches: bool = hash_secret(secret).as_bytes().ct_eq(key.secret_hash.as_bytes()).into();
    if !matches || !key.is_live(Timestamp::now()) {
        return Err(ApiError::unauthenticated("API key invalid, revoked or expired"));
    }
    Ok(key)
}

/// The scopes a new key may carry; anything else is refused.
pub fn validate_scopes(scopes: &[String]) -> Result<(), CoreError> {
    match scopes.iter().find(|s| Permission::from_scope(s).is_none()) {
        Some(bad) => Err(CoreError::invalid_value("scopes", format!("unknown scope `{bad}`"))),
        None if scopes.is_empty() => Err(CoreError::invalid_value("scopes", "at least one scope is needed")),
        None => Ok(()),
    }
}

/// What a request presents as its credential.
#[derive(Debug, PartialEq, Eq)]
enum Presented<'a> {
    /// Neither `Authorization` nor `X-Api-Key`.
    Nothing,
    /// A bearer token or API key, the same in every header that carries one.
    Credential(&'a str),
    /// A header is there but holds no usable credential (another scheme, empty, not text).
    Unusable,
}

/// Reads the credential of a request (docs/CONTRACT.md §2). `Authorization: Bearer <token>`
/// and `X-Api-Key: <key>` may both be sent only when they carry the same credential; two
/// different ones (in those headers, or repeated headers) are `400 conflicting_credentials`,
/// never silently one of them.
fn presented(headers: &HeaderMap) -> ApiResult<Presented<'_>> {
    // Each header value as the credential it carries: a bearer token, an API key, or, when
    // it is unusable, its raw text (so that it differs from any usable credential).
    let mut values: Vec<(Option<&str>, &[u8])> = Vec::new();
    for v in headers.get_all(header::AUTHORIZATION) {
        let bearer = v.to_str().ok().and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|t| !t.is_empty())
        });
        values.push((bearer, bearer.map_or(v.as_bytes(), str::as_bytes)));
    }
    for v in headers.get_all("x-api-key") {
        let key = v.to_str().ok().map(str::trim).filter(|t| !t.is_empty());
        values.push((key, key.map_or(v.as_bytes(), str::as_bytes)));
    }
    if values.is_empty() {
        return Ok(Presented::Nothing);
    }
    // A blank header carries nothing to conflict with; blank headers alone are no credential.
    values.retain(|(_, raw)| !raw.trim_ascii().is_empty());
    let Some(&(first, first_raw)) = values.first() else { return Ok(Presented::Unusable) };
    if values.iter().any(|(_, raw)| *raw != first_raw) {
        return Err(ApiError::new(
            ErrorCode::ConflictingCredentials,
            "the request carries different credentials (Authorization and X-Api-Key, or a repeated header); send one",
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_request\""));
    }
    Ok(first.map_or(Presented::Unusable, Presented::Credential))
}

impl AppState {
    /// Turns a presented bearer token or API key into the caller.
    async fn authenticate(&self, presented: &str) -> ApiResult<Principal> {
        if let Some((id, secret)) = split_key(presented) {
            let key = check_key(self, id, secret).await?;
            return Ok(Principal {
                actor: Actor {
                    tenant: key.tenant_id,
                    subject: key.id,
                    app: key.app,
                    kind: ActorKind::ApiKey,
                    request_id: Some(crate::request_id::current()).filter(|r| !r.is_empty()),
                },
                permissions: Permissions::from_roles_and_scopes(&[], key.scopes.iter().map(String::as_str)),
            });
        }
        let claims = self.auth().verify(presented)?;
        let tenant = TenantId::new(claims.tenant_id.as_str());
        // A token obtained by exchanging an API key lives only as long as its key.
        if let Some(key_id) = &claims.client_id
            && !self.key_is_live(&tenant, key_id).await?
        {
            return Err(ApiError::unauthenticated("the API key this token was exchanged for is revoked or expired"));
        }
        if claims.is_human() {
            self.provision_user(&claims).await?;
        }
        let permissions =
            Permissions::from_roles_and_scopes(&claims.roles, claims.scope.as_deref().unwrap_or("").split_whitespace());
        // A token exchanged for an API key acts as that key.
        let kind = if claims.client_id.is_some() { ActorKind::ApiKey } else { ActorKind::User };
        let request_id = Some(crate::request_id::current()).filter(|r| !r.is_empty());
        Ok(Principal {
            actor: Actor { tenant, subject: claims.sub, app: claims.app_id, kind, request_id },
            permissions,
        })
    }
}

/// The authentication middleware of every route that takes credentials: reads the
/// credential once, authenticates it, and puts the [`Principal`] in the request's
/// extensions, where the [`Principal`] extractor and later layers (rate limits) find it.
///
/// A request without credentials passes through without a principal: handlers that need one
/// answer 401 through the extractor; `/openapi.json` answers its base document. A request
/// with credentials that do not authenticate is answered here (401, or 400
/// `conflicting_credentials`, or 503 when the database cannot say).
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let principal = match presented(request.headers()) {
        Ok(Presented::Nothing) => None,
        Ok(Presented::Credential(c)) => {
            let c = c.to_owned();
            match state.authenticate(&c).await {
                Ok(p) => Some(p),
                Err(e) => return e.into_response(),
            }
        }
        Ok(Presented::Unusable) => return ApiError::unauthenticated("credentials required").into_response(),
        Err(e) => return e.into_response(),
    };
    let Some(p) = principal else { return next.run(request).await };
    let tenant = p.actor.tenant.clone();
    request.extensions_mut().insert(p);
    let mut response = next.run(request).await;
    // For the outer layers that see only the response (the request log line).
    response.extensions_mut().insert(tenant);
    response
}

/// The caller, as [`authenticate`] found it; 401 when the request carried no credentials.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| ApiError::unauthenticated("credentials required"))
    }
}

/// The user id a human subject maps to.
pub fn subject_user_id(tenant: &TenantId, sub: &str) -> corral_core::RecordId {
    user_id_for_subject(tenant, sub)
}

/// 401 for a failed client-credentials exchange, as docs/CONTRACT.md §2 asks.
pub fn bad_client() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, "invalid client_id or client_secret")
        .with_header(header::WWW_AUTHENTICATE, "Bearer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_and_roles_grant_baselines() {
        let p = Permissions::from_roles_and_scopes(&[], ["accounts:write", "bogus"]);
        assert!(p.has(Permission::AccountsRead) && p.has(Permission::AccountsWrite));
        assert!(!p.has(Permission::ContactsRead));
        let user = Permissions::from_roles_and_scopes(&["user".into()], []);
        assert!(user.has(Permission::ContactsWrite) && user.has(Permission::UsersRead) && !user.has(Permission::Admin));
        assert_eq!(Permissions::from_roles_and_scopes(&["tenant_admin".into()], []), Permissions::all());
        assert_eq!(Permissions::from_roles_and_scopes(&["app_service_account".into()], []), Permissions::default());
    }

    #[test]
    fn keys_split_and_hash() {
        let k = generate_key();
        let (id, secret) = split_key(&k.key).unwrap();
        assert_eq!(id, k.id);
        assert_eq!(hash_secret(secret), k.secret_hash);
        assert_eq!(split_key("crl__x"), None);
        assert_eq!(split_key("eyJhbGciOi"), None);
    }
}
