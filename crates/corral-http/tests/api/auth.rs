//! Authentication: JWT checks, API keys, the token exchange, permissions, user provisioning.

use crate::helpers::{SECRET, TestApp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use corral_http::{AuthConfig, Claims};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn claims(tenant: &str) -> Claims {
    Claims {
        sub: "alice".into(),
        tenant_id: tenant.into(),
        exp: corral_http::auth::unix_now() + 600,
        roles: vec!["tenant_admin".into()],
        ..Default::default()
    }
}

fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn requests_without_valid_credentials_are_401_with_a_challenge() {
    let app = TestApp::spawn().await;
    let now = corral_http::auth::unix_now();
    let good = json!({"sub": "a", "tenant_id": app.tenant, "exp": now + 600, "roles": ["tenant_admin"]});
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &good, &EncodingKey::from_secret(SECRET)).unwrap();
    let mut no_tenant = good.clone();
    no_tenant.as_object_mut().unwrap().remove("tenant_id");
    let mut no_sub = good.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut expired = good.clone();
    expired["exp"] = json!(now - 120);
    let mut empty_tenant = good.clone();
    empty_tenant["tenant_id"] = json!("");
    let cases = [
        ("bad signature", sign(&good, b"another-secret-entirely!!")),
        ("alg none", unsigned),
        ("algorithm switch", hs512),
        ("missing tenant", sign(&no_tenant, SECRET)),
        ("empty tenant", sign(&empty_tenant, SECRET)),
        ("missing sub", sign(&no_sub, SECRET)),
        ("missing exp", sign(&no_exp, SECRET)),
        ("expired", sign(&expired, SECRET)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in cases {
        let r = app.get("/api/v1/crm/accounts").bearer(&token).send().await;
        r.assert_error(401, "unauthenticated");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
    }
    app.get("/api/v1/crm/accounts").send().await.assert_error(401, "unauthenticated");
    app.get("/api/v1/crm/accounts")
        .header("authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .assert_error(401, "unauthenticated");
    // 30 s of leeway on exp.
    let mut just_expired = good.clone();
    just_expired["exp"] = json!(now - 5);
    app.get("/api/v1/crm/accounts").bearer(&sign(&just_expired, SECRET)).send().await.assert_status(200);
    app.get("/api/v1/crm/accounts").bearer(&sign(&good, SECRET)).send().await.assert_status(200);
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app = TestApp::spawn_with(AuthConfig::new(
        SECRET.to_vec(),
        Some("https://idp.example".into()),
        Some("corral".into()),
    ))
    .await;
    let now = corral_http::auth::unix_now();
    let base = json!({"sub": "a", "tenant_id": "t", "exp": now + 600, "roles": ["user"]});
    let with = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut c = base.clone();
        if let Some(i) = iss {
            c["iss"] = json!(i);
        }
        if let Some(a) = aud {
            c["aud"] = a;
        }
        sign(&c, SECRET)
    };
    for bad in [
        with(None, Some(json!("corral"))),
        with(Some("https://evil.example"), Some(json!("corral"))),
        with(Some("https://idp.example"), Some(json!("other"))),
        with(Some("https://idp.example"), None),
    ] {
        app.get("/api/v1/crm/accounts").bearer(&bad).send().await.assert_error(401, "unauthenticated");
    }
    app.get("/api/v1/crm/accounts")
        .bearer(&with(Some("https://idp.example"), Some(json!("corral"))))
        .send()
        .await
        .assert_status(200);
    app.get("/api/v1/crm/accounts")
        .bearer(&with(Some("https://idp.example"), Some(json!(["x", "corral"]))))
        .send()
        .await
        .assert_status(200);
    // Tokens Corral mints carry the configured issuer and audience.
    app.get("/api/v1/crm/accounts").bearer(&app.mint(claims("t"))).send().await.assert_status(200);
}

#[tokio::test]
async fn permissions_come_from_roles_and_scopes() {
    let app = TestApp::spawn().await;
    let t = app.tenant.clone();
    let reader = app.token_for(&t, "r", &[], &["accounts:read"], None);
    let writer = app.token_for(&t, "w", &[], &["accounts:write"], None);
    let service = app.token_for(&t, "svc", &["app_service_account"], &[], None);
    app.get("/api/v1/crm/accounts").bearer(&reader).send().await.assert_status(200);
    let r = app.post("/api/v1/crm/accounts").bearer(&reader).json(json!({"name": "x"})).send().await;
    r.assert_error(403, "forbidden");
    assert_eq!(r.body["error"]["details"]["required_scope"], "accounts:write");
    // write implies read
    app.post("/api/v1/crm/accounts").bearer(&writer).json(json!({"name": "x"})).send().await.assert_status(201);
    app.get("/api/v1/crm/accounts").bearer(&writer).send().await.assert_status(200);
    app.get("/api/v1/crm/accounts").bearer(&service).send().await.assert_error(403, "forbidden");
    app.get("/api/admin/api-keys").bearer(&app.user()).send().await.assert_error(403, "forbidden");
    app.get("/api/admin/api-keys")
        .bearer(&app.token_for(&t, "a", &[], &["admin"], None))
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn api_keys_work_as_bearer_and_header_until_revoked() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["accounts:write"], "app": "crm-sync", "name": "sync job"}))
        .send()
        .await;
    r.assert_status(201);
    let data = &r.body["data"];
    let key = data["key"].as_str().unwrap().to_owned();
    let id = data["id"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("crl_{id}_{}", key.rsplit('_').next().unwrap()));
    assert_eq!(data["app"], "crm-sync");
    assert_eq!(data["scopes"], json!(["accounts:write"]));
    // Used directly, both ways; records it creates carry its app.
    let created = app.post("/api/v1/crm/accounts").bearer(&key).json(json!({"name": "Via key"})).send().await;
    created.assert_status(201);
    assert_eq!(created.body["app_id"], "crm-sync");
    assert_eq!(created.body["created_by"], id.as_str());
    app.get("/api/v1/crm/accounts").header("x-api-key", &key).send().await.assert_status(200);
    // Listing never shows secrets.
    let list = app.get("/api/admin/api-keys").bearer(&app.admin()).send().await;
    assert_eq!(list.body["data"][0]["id"], id.as_str());
    assert!(list.body["data"][0].get("key").is_none());
    assert!(!list.body.to_string().contains(key.rsplit('_').next().unwrap()));
    // A wrong secret fails.
    let wrong = format!("crl_{id}_{}", "0".repeat(64));
    app.get("/api/v1/crm/accounts").bearer(&wrong).send().await.assert_error(401, "unauthenticated");
    // Revoked: stops at once.
    app.delete(&format!("/api/admin/api-keys/{id}")).bearer(&app.admin()).send().await.assert_status(204);
    app.get("/api/v1/crm/accounts").bearer(&key).send().await.assert_error(401, "unauthenticated");
    app.delete(&format!("/api/admin/api-keys/{id}"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(404, "record_not_found");
    // Unknown scopes are refused.
    app.post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["everything"]}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({}))
        .send()
        .await
        .assert_error(422, "field_required_missing");
}

#[tokio::test]
async fn expired_keys_stop_working() {
    let app = TestApp::spawn().await;
    // The admin API refuses a key that is expired at creation...
    let r = app
        .post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["accounts:read"], "expires_at": "2020-01-01T00:00:00Z"}))
        .send()
        .await;
    r.assert_error(422, "field_value_invalid");
    assert_eq!(r.body["error"]["details"]["field"], "expires_at");
    // ... so an expired key is one stored with an expiry that has since passed.
    let new = corral_http::auth::generate_key();
    let past = corral_core::Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
    app.state
        .store()
        .insert_api_key(&corral_store::ApiKey {
            id: new.id.clone(),
            tenant_id: app.tenant.as_str().into(),
            app: None,
            name: None,
            scopes: vec!["accounts:read".into()],
            secret_hash: new.secret_hash,
            created_at: past,
            created_by: "test".into(),
            expires_at: Some(past),
            revoked_at: None,
        })
        .await
        .unwrap();
    app.get("/api/v1/crm/accounts").bearer(&new.key).send().await.assert_error(401, "unauthenticated");
    // A key with a future expiry works, and its exchanged token does not outlive it.
    let soon = corral_core::Timestamp(corral_core::Timestamp::now().millis() + 120_000);
    let r = app
        .post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["accounts:read"], "expires_at": soon.to_rfc3339()}))
        .send()
        .await;
    r.assert_status(201);
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    app.get("/api/v1/crm/accounts").bearer(&key).send().await.assert_status(200);
    let r = app
        .post("/api/v1/auth/token")
        .json(json!({"grant_type": "client_credentials", "client_secret": key}))
        .send()
        .await;
    r.assert_status(200);
    let expires_in = r.body["expires_in"].as_i64().unwrap();
    assert!((100..=120).contains(&expires_in), "{expires_in}");
    let claims = app.state.auth().verify(r.body["access_token"].as_str().unwrap()).unwrap();
    assert!(claims.exp <= soon.millis() / 1000);
}

#[tokio::test]
async fn client_credentials_exchange_returns_an_oauth_token() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["accounts:read"], "app": "reporting"}))
        .send()
        .await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let secret = key.rsplit('_').next().unwrap().to_owned();
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let r = app.post("/api/v1/auth/token").raw("application/x-www-form-urlencoded", form).send().await;
    r.assert_status(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let claims = app.state.auth().verify(&token).unwrap();
    assert_eq!(claims.roles, ["app_service_account"]);
    assert_eq!(claims.app_id.as_deref(), Some("reporting"));
    assert_eq!(claims.scope.as_deref(), Some("accounts:read"));
    assert_eq!(claims.tenant_id, app.tenant);
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_status(200);
    app.post("/api/v1/crm/accounts")
        .bearer(&token)
        .json(json!({"name": "x"}))
        .send()
        .await
        .assert_error(403, "forbidden");
    // JSON body works too.
    let r = app
        .post("/api/v1/auth/token")
        .json(json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}))
        .send()
        .await;
    r.assert_status(200);
    // Wrong secret or id: 401.
    let r = app
        .post("/api/v1/auth/token")
        .json(json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "nope"}))
        .send()
        .await;
    r.assert_error(401, "unauthenticated");
    app.post("/api/v1/auth/token")
        .json(json!({"grant_type": "client_credentials", "client_id": "nope", "client_secret": secret}))
        .send()
        .await
        .assert_error(401, "unauthenticated");
    app.post("/api/v1/auth/token")
        .json(json!({"grant_type": "password", "client_id": id, "client_secret": secret}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");
    app.post("/api/v1/auth/token").raw("text/plain", "hello").send().await.assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn client_credentials_exchange_takes_the_full_key_as_printed() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["accounts:read"], "app": "reporting"}))
        .send()
        .await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let exchange = |body: serde_json::Value| app.post("/api/v1/auth/token").json(body).send();
    let token_of = |r: &crate::helpers::TestResponse| {
        r.assert_status(200);
        let claims = app.state.auth().verify(r.body["access_token"].as_str().unwrap()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.app_id.as_deref()), (id.as_str(), Some("reporting")));
    };
    // The full key with its id as client_id, as a form (what the README's curl sends) and as JSON.
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={key}");
    token_of(&app.post("/api/v1/auth/token").raw("application/x-www-form-urlencoded", form).send().await);
    token_of(&exchange(json!({"grant_type": "client_credentials", "client_id": id, "client_secret": key})).await);
    // The full key names its id: client_id may be left out.
    token_of(&exchange(json!({"grant_type": "client_credentials", "client_secret": key})).await);
    // A client_id other than the key's own, or a full key with a wrong secret, is the OAuth 401.
    let other = json!({"grant_type": "client_credentials", "client_id": "0123456789abcdef", "client_secret": key});
    let r = exchange(other).await;
    r.assert_error(401, "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let forged = format!("crl_{id}_{}", "0".repeat(64));
    exchange(json!({"grant_type": "client_credentials", "client_secret": forged}))
        .await
        .assert_error(401, "unauthenticated");
    // The secret part alone still needs its client_id.
    let secret = key.rsplit('_').next().unwrap();
    exchange(json!({"grant_type": "client_credentials", "client_secret": secret}))
        .await
        .assert_error(422, "field_required_missing");
}

#[tokio::test]
async fn human_tokens_provision_their_user_once() {
    let app = TestApp::spawn().await;
    let token =
        app.mint(Claims { email: Some("Alice@Example.COM".into()), name: Some("Alice".into()), ..claims(&app.tenant) });
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_status(200);
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_status(200);
    let users = app.get("/api/admin/users").bearer(&token).send().await;
    let data = users.body["data"].as_array().unwrap();
    let alice: Vec<_> = data.iter().filter(|u| u["display_name"] == "Alice").collect();
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0]["email"], "Alice@example.com");
    // The user id is a stable UUIDv5 of (tenant, sub), so the human can own records.
    let id = alice[0]["id"].as_str().unwrap();
    assert_eq!(id, corral_core::ids::user_id_for_subject(&app.tenant, "alice").v1(corral_core::RecordType::User));
    app.post("/api/v1/crm/accounts")
        .bearer(&token)
        .json(json!({"name": "Mine", "owner_id": id}))
        .send()
        .await
        .assert_status(201);
    // App tokens are not humans.
    let app_token = app.token_for(&app.tenant, "svc-1", &["app_service_account"], &["accounts:read"], Some("x"));
    app.get("/api/v1/crm/accounts").bearer(&app_token).send().await.assert_status(200);
    let users = app.get("/api/admin/users").bearer(&token).send().await;
    assert_eq!(users.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_with_critical_header_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let now = corral_http::auth::unix_now();
    let good = json!({"sub": "a", "tenant_id": app.tenant, "exp": now + 600, "roles": ["tenant_admin"]});
    // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must refuse
    // the token; Corral understands none, so any `crit` is refused, even naming a known name.
    for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec!["http://example.com/ext".to_owned()]] {
        let header = Header { crit: Some(crit.clone()), ..Header::new(Algorithm::HS256) };
        let token = jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(SECRET)).unwrap();
        let r = app.get("/api/v1/crm/accounts").bearer(&token).send().await;
        r.assert_error(401, "unauthenticated");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{crit:?}");
    }
    // A `crit` that is not even a list is a malformed token, also 401.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","crit":5}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &EncodingKey::from_secret(SECRET), Algorithm::HS256)
            .unwrap();
    let r = app.get("/api/v1/crm/accounts").bearer(&format!("{signing_input}.{signature}")).send().await;
    r.assert_error(401, "unauthenticated");
    // The same claims without `crit` are fine.
    app.get("/api/v1/crm/accounts").bearer(&sign(&good, SECRET)).send().await.assert_status(200);
}

#[tokio::test]
async fn conflicting_credentials_are_refused_never_picked_from() {
    let app = TestApp::spawn().await;
    let r =
        app.post("/api/admin/api-keys").bearer(&app.admin()).json(json!({"scopes": ["accounts:read"]})).send().await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    let other = app.token_for(&app.tenant, "bob", &["user"], &[], None);
    let conflicting = [
        (
            "a token and a different key",
            vec![("authorization", format!("Bearer {}", app.admin())), ("x-api-key", key.clone())],
        ),
        (
            "a key as bearer and another in X-Api-Key",
            vec![("authorization", format!("Bearer {other}")), ("x-api-key", key.clone())],
        ),
        (
            "another scheme and a key",
            vec![("authorization", "Basic dXNlcjpwdw==".to_owned()), ("x-api-key", key.clone())],
        ),
        (
            "two different X-Api-Key headers",
            vec![("x-api-key", key.clone()), ("x-api-key", "crl_0123456789abcdef_00".to_owned())],
        ),
        (
            "two different bearer tokens",
            vec![("authorization", format!("Bearer {}", app.admin())), ("authorization", format!("Bearer {other}"))],
        ),
    ];
    for (what, headers) in conflicting {
        for path in ["/api/v1/crm/accounts", "/openapi.json"] {
            let mut req = app.get(path);
            for (name, value) in &headers {
                req = req.header(name, value);
            }
            let r = req.send().await;
            r.assert_error(400, "conflicting_credentials");
            assert_eq!(r.header("www-authenticate"), Some("Bearer error=\"invalid_request\""), "{what}");
        }
    }
    // The same credential in both headers is one credential.
    app.get("/api/v1/crm/accounts").bearer(&key).header("x-api-key", &key).send().await.assert_status(200);
    // A blank header carries no credential to conflict with; blank headers alone are none.
    app.get("/api/v1/crm/accounts").bearer(&key).header("x-api-key", "").send().await.assert_status(200);
    app.get("/api/v1/crm/accounts").header("x-api-key", " ").send().await.assert_error(401, "unauthenticated");
    // Unauthenticated routes do not look at credentials at all.
    app.get("/health").bearer(&app.admin()).header("x-api-key", &key).send().await.assert_status(200);
}

#[tokio::test]
async fn exchanged_tokens_stop_working_when_their_key_is_revoked() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/admin/api-keys")
        .bearer(&app.admin())
        .json(json!({"scopes": ["accounts:read"], "app": "reporting"}))
        .send()
        .await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let exchange = || {
        app.post("/api/v1/auth/token").json(json!({"grant_type": "client_credentials", "client_secret": key})).send()
    };
    let token = exchange().await.body["access_token"].as_str().unwrap().to_owned();
    let claims = app.state.auth().verify(&token).unwrap();
    assert_eq!(claims.client_id.as_deref(), Some(id.as_str()), "the token names its key");
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_status(200);
    app.delete(&format!("/api/admin/api-keys/{id}")).bearer(&app.admin()).send().await.assert_status(204);
    // Revoked through this instance: refused at once.
    let r = app.get("/api/v1/crm/accounts").bearer(&token).send().await;
    r.assert_error(401, "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    exchange().await.assert_error(401, "unauthenticated");

    // Revoked behind this instance's back (as through another instance): refused within the
    // one-second liveness cache.
    let r =
        app.post("/api/admin/api-keys").bearer(&app.admin()).json(json!({"scopes": ["accounts:read"]})).send().await;
    let key = r.body["data"]["key"].as_str().unwrap().to_owned();
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post("/api/v1/auth/token")
        .json(json!({"grant_type": "client_credentials", "client_secret": key}))
        .send()
        .await;
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_status(200);
    assert!(app.state.store().revoke_api_key(&app.tenant.as_str().into(), &id).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.get("/api/v1/crm/accounts").bearer(&token).send().await.assert_error(401, "unauthenticated");

    // A token naming a key of another tenant is refused too (the key must be the token's tenant's).
    let other = app.mint(Claims {
        sub: id.clone(),
        tenant_id: "another-tenant".into(),
        exp: corral_http::auth::unix_now() + 600,
        roles: vec!["app_service_account".into()],
        scope: Some("accounts:read".into()),
        client_id: Some(id.clone()),
        ..Default::default()
    });
    app.get("/api/v1/crm/accounts").bearer(&other).send().await.assert_error(401, "unauthenticated");
}
