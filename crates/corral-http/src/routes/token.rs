//! `POST /api/v1/auth/token`: the OAuth2 client-credentials exchange of an API key for a
//! JWT of at most one hour that lives only as long as its key (docs/CONTRACT.md §2).

use crate::auth::{self, Claims, EXCHANGED_TOKEN_SECONDS, bad_client, unix_now};
use crate::error::{ApiError, ApiResult};
use crate::extract::parse_json;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use corral_core::{CoreError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value as Json_, json};

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Exchanges `client_id` (the key id) and `client_secret` (the key's secret, or the whole key
/// as printed, with `client_id` then optional) for a token carrying the key's tenant, scopes
/// and app. Accepts a form or a JSON body.
pub async fn exchange(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Json_>> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let request: TokenRequest = if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(&body)
            .map_err(|_| ApiError::new(ErrorCode::InvalidJson, "the form body is malformed"))?
    } else if content_type.starts_with("application/json") {
        serde_json::from_value(parse_json(body)?.value)
            .map_err(|_| CoreError::invalid_value("body", "expected string fields"))?
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send a form (application/x-www-form-urlencoded) or JSON body",
        ));
    };
    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(CoreError::invalid_value("grant_type", "only client_credentials is supported").into());
        }
        None => return Err(CoreError::required_missing("grant_type").into()),
    }
    let secret = request.client_secret.ok_or_else(|| CoreError::required_missing("client_secret"))?;
    // The secret is either the key's secret part (with the key id as `client_id`) or the full
    // key as printed, `crl_<id>_<secret>`, which names its own id: `client_id` may then be
    // left out, and when sent it must be that id.
    let (id, secret) = match auth::split_key(&secret) {
        Some((key_id, key_secret)) => match request.client_id.as_deref() {
            None => (key_id.to_owned(), key_secret.to_owned()),
            Some(id) if id == key_id => (key_id.to_owned(), key_secret.to_owned()),
            Some(_) => return Err(bad_client()),
        },
        None => (request.client_id.ok_or_else(|| CoreError::required_missing("client_id"))?, secret),
    };
    // A bad id or secret is the OAuth 401; anything else (the database being down) stays.
    let key = auth::check_key(&state, &id, &secret)
        .await
        .map_err(|e| if e.code == ErrorCode::Unauthenticated { bad_client() } else { e })?;
    let now = unix_now();
    // An hour, or less when the key expires sooner: the token never outlives its key. It
    // names the key (`client_id`, RFC 9068), so revoking the key stops it too (checked on use).
    let expires_in = match key.expires_at {
        Some(at) => (at.millis() / 1000 - now).clamp(1, EXCHANGED_TOKEN_SECONDS),
        None => EXCHANGED_TOKEN_SECONDS,
    };
    let token = state.auth().mint(Claims {
        sub: key.id.clone(),
        tenant_id: key.tenant_id.to_string(),
        exp: now + expires_in,
        iat: Some(now),
        roles: vec!["app_service_account".into()],
        scope: Some(key.scopes.join(" ")),
        app_id: key.app.clone(),
        client_id: Some(key.id.clone()),
        ..Default::default()
    });
    Ok(Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})))
}
