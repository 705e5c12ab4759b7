//! Webhooks end to end (docs/API.md "Webhooks"): a receiver in the test verifies Standard
//! Webhooks signatures, sees retries after 500s and timeouts, and the subscription disables
//! itself after the schedule; https targets (a TLS receiver with a certificate from a CA made
//! on the spot), replay, app scope, the private-target guard, the background dispatcher and
//! two instances on one database. Every wait polls with a deadline: on
//! PostgreSQL other tests' transactions may hold the change feed back for a moment.

use crate::helpers::{TestApp, test_webhook_options};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use corral_http::webhooks;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver does with the n-th request: answer this status, after this delay (ms).
type Script = Vec<(u16, u64)>;

/// How long any wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn seen(&self) -> Vec<(HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A receiver on 127.0.0.1 answering per `script`, then 200; returns its URL path `/hook`.
async fn receiver(script: Script) -> (std::net::SocketAddr, Receiver) {
    let r = Receiver { script: Arc::new(Mutex::new(script)), ..Default::default() };
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let (status, delay) = {
                    let mut script = state.script.lock().unwrap();
                    if script.is_empty() { (200, 0) } else { script.remove(0) }
                };
                state.seen.lock().unwrap().push((headers, body));
                tokio::time::sleep(Duration::from_millis(delay)).await;
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, r)
}

/// A certificate authority and a receiver certificate for `localhost` signed by it.
fn test_pki() -> (rustls::pki_types::CertificateDer<'static>, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let server =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
    (ca.der().clone(), server)
}

/// A TLS receiver on 127.0.0.1 (reached as `localhost`) that answers 200 and records each
/// delivery's headers and body.
async fn tls_receiver(tls: rustls::ServerConfig) -> (u16, Receiver) {
    let r = Receiver::default();
    let state = r.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, state) = (acceptor.clone(), state.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await?.to_bytes();
                        state.seen.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Empty::<hyper::body::Bytes>::new()))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (port, r)
}

/// Verifies a delivery as a Standard Webhooks receiver would; returns the parsed body.
fn verify(secret: &str, headers: &HeaderMap, body: &str) -> Value {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("missing {n}")).to_owned();
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    assert_eq!(h("content-type"), "application/json");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - ts.parse::<i64>().unwrap()).abs() < 300, "timestamp is fresh");
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    assert!(sig.split(' ').any(|s| s == expected), "signature {sig} verifies");
    let doc: Value = serde_json::from_str(body).unwrap();
    assert_eq!(doc["id"], id.as_str(), "webhook-id is the event id");
    doc
}

/// Runs dispatcher passes of `app` with `client` until `done` holds.
async fn tick_until(app: &TestApp, client: &webhooks::DeliveryClient, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        webhooks::tick(&app.state, client).await.unwrap();
        if !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn client(app: &TestApp) -> webhooks::DeliveryClient {
    webhooks::client(app.state.webhook_options()).unwrap()
}

async fn subscribe(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/admin/webhooks").bearer(token).json(body).send().await;
    r.assert_status(201);
    r.body["data"].clone()
}

async fn create_account(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.post("/api/v2/account").bearer(token).json(json!({"attributes": {"display_name": name}})).send().await;
    r.assert_status(201);
    r.body["data"]["id"].as_str().unwrap().to_owned()
}

async fn log(app: &TestApp, sub_id: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/admin/webhooks/{sub_id}/deliveries")).bearer(&app.admin()).send().await;
    r.assert_status(200);
    r.body["data"].as_array().unwrap().clone()
}

/// The tenant's account events as `GET /api/v2/_changes` shows them, once it shows `n`.
async fn feed(app: &TestApp, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let r = app.get("/api/v2/_changes?types=account").bearer(&app.admin()).send().await;
        r.assert_status(200);
        let events = r.body["data"].as_array().unwrap().clone();
        if events.len() >= n {
            return events;
        }
        assert!(start.elapsed() < DEADLINE, "the feed never showed {n} events");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deliveries_are_signed_filtered_and_are_the_feed_events() {
    let app = TestApp::spawn().await;
    let (addr, rx) = receiver(vec![]).await;
    let sub = subscribe(
        &app,
        &app.admin(),
        json!({"url": format!("http://{addr}/hook"), "types": ["account"], "actions": ["created", "updated"], "fields": ["display_name"]}),
    )
    .await;
    let secret = sub["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(sub["fields"], json!(["display_name"]));
    assert_eq!(sub["enabled"], true);
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let id = create_account(&app, &app.admin(), "Acme").await;
    // An update that does not touch `display_name` is filtered out; the next one is sent.
    for attributes in [json!({"industry": "Software"}), json!({"display_name": "Acme Inc"})] {
        app.patch(&format!("/api/v2/account/{id}"))
            .bearer(&app.admin())
            .json(json!({"attributes": attributes}))
            .send()
            .await
            .assert_status(200);
    }
    let client = client(&app);
    tick_until(&app, &client, "two deliveries", || rx.count() >= 2).await;
    // Fan-out reads the feed in order, so the filtered update was passed over by now.
    let seen = rx.seen();
    assert_eq!(seen.len(), 2, "the industry-only update is not sent");
    let bodies: Vec<Value> = seen.iter().map(|(h, b)| verify(&secret, h, b)).collect();
    let events = feed(&app, 3).await;
    assert_eq!(events.len(), 3);
    let mut expected = vec![events[0].clone(), events[2].clone()];
    let mut got = bodies.clone();
    let by_id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    expected.sort_by_key(by_id);
    got.sort_by_key(by_id);
    assert_eq!(got, expected, "each body is the event exactly as the change feed shows it");

    // Listing and reading never show the secret; the log shows both deliveries.
    let list = app.get("/api/admin/webhooks").bearer(&app.admin()).send().await;
    list.assert_status(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(list.body["data"][0].get("secret").is_none());
    let one = app.get(&format!("/api/admin/webhooks/{sub_id}")).bearer(&app.admin()).send().await;
    one.assert_status(200);
    assert!(one.body["data"].get("secret").is_none());
    let entries = log(&app, &sub_id).await;
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(e["status"], "delivered");
        assert_eq!(e["attempts"], 1);
        assert_eq!(e["last_status"], 200);
        assert_eq!(e["next_attempt_at"], Value::Null);
    }

    // Replay from the first event sends it and every later matching one again, same ids.
    let first = events[0]["id"].as_str().unwrap();
    app.post(&format!("/api/admin/webhooks/{sub_id}/replay"))
        .bearer(&app.admin())
        .json(json!({"from_event_id": first}))
        .send()
        .await
        .assert_status(202);
    tick_until(&app, &client, "the replay", || rx.count() >= 4).await;
    let again: Vec<Value> = rx.seen()[2..].iter().map(|(h, b)| verify(&secret, h, b)).collect();
    let mut again_ids: Vec<String> = again.iter().map(by_id).collect();
    again_ids.sort();
    let mut want: Vec<String> = expected.iter().map(by_id).collect();
    want.sort();
    assert_eq!(again_ids, want);
    app.post(&format!("/api/admin/webhooks/{sub_id}/replay"))
        .bearer(&app.admin())
        .json(json!({"from_event_id": "no-such-event"}))
        .send()
        .await
        .assert_error(422, "field_value_invalid");

    // Other tenants see nothing; a user is refused.
    let other = app.token_for("other", "x", &["tenant_admin"], &[], None);
    app.get(&format!("/api/admin/webhooks/{sub_id}")).bearer(&other).send().await.assert_error(404, "record_not_found");
    app.delete(&format!("/api/admin/webhooks/{sub_id}"))
        .bearer(&other)
        .send()
        .await
        .assert_error(404, "record_not_found");
    let r = app.get("/api/admin/webhooks").bearer(&other).send().await;
    assert_eq!(r.body["data"], json!([]));
    app.get("/api/admin/webhooks").bearer(&app.user()).send().await.assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_subscription_sees_only_its_creators_app() {
    let app = TestApp::spawn().await;
    let (addr, rx) = receiver(vec![]).await;
    let admin_one = app.token_for(&app.tenant, "adm-1", &["tenant_admin"], &[], Some("one"));
    let sub = subscribe(&app, &admin_one, json!({"url": format!("http://{addr}/hook")})).await;
    let two = app.token_for(&app.tenant, "svc-2", &["user"], &[], Some("two"));
    // App two's event comes first in the feed: had it been visible, it would be sent first.
    create_account(&app, &two, "Two's").await;
    let mine = create_account(&app, &admin_one, "One's").await;
    let client = client(&app);
    tick_until(&app, &client, "app one's event", || rx.count() >= 1).await;
    let seen = rx.seen();
    assert_eq!(seen.len(), 1);
    let body = verify(sub["secret"].as_str().unwrap(), &seen[0].0, &seen[0].1);
    assert_eq!(body["record_id"], mine.as_str());
    assert_eq!(body["app_id"], "one");
}

#[tokio::test]
async fn failures_are_retried_and_the_subscription_disables_itself() {
    let app = TestApp::spawn().await;
    // A 500, then a timeout (the test timeout is 2 s), then success.
    let (addr, rx) = receiver(vec![(500, 0), (200, 5000)]).await;
    let sub = subscribe(&app, &app.admin(), json!({"url": format!("http://{addr}/hook")})).await;
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    create_account(&app, &app.admin(), "Retry").await;
    let client = client(&app);
    tick_until(&app, &client, "three attempts", || rx.count() >= 3).await;
    let entries = log(&app, &sub_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], "delivered");
    assert_eq!(entries[0]["attempts"], 3, "a 500 and a timeout were retried: {entries:?}");
    let seen = rx.seen();
    assert!(seen.iter().all(|(h, _)| h["webhook-id"] == seen[0].0["webhook-id"]), "retries keep the id");

    // A receiver that always fails: after the whole schedule the subscription is disabled.
    let (bad_addr, bad) = receiver(vec![(500, 0); 20]).await;
    app.patch(&format!("/api/admin/webhooks/{sub_id}"))
        .bearer(&app.admin())
        .json(json!({"url": format!("http://{bad_addr}/hook")}))
        .send()
        .await
        .assert_status(200);
    create_account(&app, &app.admin(), "Doomed").await;
    tick_until(&app, &client, "the whole schedule", || bad.count() >= 8).await;
    // Disabled: more passes send nothing.
    for _ in 0..3 {
        webhooks::tick(&app.state, &client).await.unwrap();
    }
    assert_eq!(bad.count(), 8, "one attempt plus seven retries");
    let got = app.get(&format!("/api/admin/webhooks/{sub_id}")).bearer(&app.admin()).send().await;
    assert_eq!(got.body["data"]["enabled"], false);
    let reason = got.body["data"]["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("failed 8 times") && reason.contains("500"), "{reason}");
    let entries = log(&app, &sub_id).await;
    assert_eq!(entries[0]["status"], "failed");
    assert_eq!(entries[0]["attempts"], 8);
    assert_eq!(entries[0]["last_status"], 500);
    // Re-enabling clears the reason; deleting removes it.
    let on = app
        .patch(&format!("/api/admin/webhooks/{sub_id}"))
        .bearer(&app.admin())
        .json(json!({"enabled": true}))
        .send()
        .await;
    on.assert_status(200);
    assert_eq!(on.body["data"]["enabled"], true);
    assert_eq!(on.body["data"]["disabled_reason"], Value::Null);
    let off = app
        .patch(&format!("/api/admin/webhooks/{sub_id}"))
        .bearer(&app.admin())
        .json(json!({"enabled": false}))
        .send()
        .await;
    assert_eq!(off.body["data"]["disabled_reason"], "disabled by an admin");
    app.delete(&format!("/api/admin/webhooks/{sub_id}")).bearer(&app.admin()).send().await.assert_status(204);
    app.get(&format!("/api/admin/webhooks/{sub_id}"))
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(404, "record_not_found");
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let strict = webhooks::WebhookOptions { allow_private_targets: false, ..test_webhook_options() };
    let app = TestApp::spawn_with_webhooks(strict.clone()).await;
    let (addr, rx) = receiver(vec![]).await;
    for url in [
        format!("http://{addr}/hook"),
        format!("http://localhost:{}/hook", addr.port()),
        "http://[::1]/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/".to_owned(),
    ] {
        let r = app.post("/api/admin/webhooks").bearer(&app.admin()).json(json!({"url": url})).send().await;
        r.assert_error(422, "webhook_target_not_allowed");
        assert_eq!(r.body["error"]["details"]["field"], "url");
    }

    // Rebinding: a name that passed the check (here: allowed when it was made) but resolves
    // to a private address when sent is refused by the delivery client's resolver.
    let lax = TestApp::spawn().await;
    let sub = subscribe(&lax, &lax.admin(), json!({"url": format!("http://localhost:{}/hook", addr.port())})).await;
    create_account(&lax, &lax.admin(), "Guarded").await;
    let strict_client = webhooks::client(&strict).unwrap();
    let sub_id = sub["id"].as_str().unwrap();
    let start = Instant::now();
    let entry = loop {
        webhooks::tick(&lax.state, &strict_client).await.unwrap();
        let entries = log(&lax, sub_id).await;
        if let Some(e) = entries.first().filter(|e| e["attempts"].as_i64().unwrap_or(0) >= 1) {
            break e.clone();
        }
        assert!(start.elapsed() < DEADLINE, "no attempt was recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(entry["last_status"], Value::Null);
    let error = entry["last_error"].as_str().unwrap();
    assert!(error.contains("loopback"), "{error}");
    assert_eq!(rx.count(), 0, "nothing reached the private receiver");
}

#[tokio::test]
async fn bodies_are_validated() {
    let app = TestApp::spawn().await;
    for (body, code) in [
        (json!({}), "field_required_missing"),
        (json!({"url": "ftp://x.example/"}), "field_value_invalid"),
        (json!({"url": "not a url"}), "field_value_invalid"),
        (json!({"url": "http://user:pw@127.0.0.1/"}), "field_value_invalid"),
        (json!({"url": "http://127.0.0.1/", "types": ["widget"]}), "field_value_invalid"),
        (json!({"url": "http://127.0.0.1/", "actions": []}), "field_value_invalid"),
        (json!({"url": "http://127.0.0.1/", "actions": ["exploded"]}), "field_value_invalid"),
        (json!({"url": "http://127.0.0.1/", "fields": "name"}), "field_value_invalid"),
        (json!({"url": "http://127.0.0.1/", "secret": "mine"}), "unknown_field"),
    ] {
        app.post("/api/admin/webhooks").bearer(&app.admin()).json(body).send().await.assert_error(422, code);
    }
    app.patch("/api/admin/webhooks/wh_missing")
        .bearer(&app.admin())
        .json(json!({"enabled": true}))
        .send()
        .await
        .assert_error(404, "record_not_found");
    app.get("/api/admin/webhooks/wh_missing/deliveries")
        .bearer(&app.admin())
        .send()
        .await
        .assert_error(404, "record_not_found");
}

#[tokio::test]
async fn the_background_dispatcher_delivers_and_stops() {
    let app = TestApp::spawn().await;
    let (addr, rx) = receiver(vec![]).await;
    subscribe(&app, &app.admin(), json!({"url": format!("http://{addr}/hook")})).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn(webhooks::run(app.state.clone(), async move {
        let _ = stopped.await;
    }));
    create_account(&app, &app.admin(), "Background").await;
    let start = Instant::now();
    while rx.count() < 1 {
        assert!(start.elapsed() < DEADLINE, "the dispatcher never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, dispatcher).await.expect("the dispatcher stops").unwrap();
}

#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let (a, b) = TestApp::spawn_pair().await;
    let (addr, rx) = receiver(vec![]).await;
    subscribe(&a, &a.admin(), json!({"url": format!("http://{addr}/hook")})).await;
    for i in 0..6 {
        create_account(&a, &a.admin(), &format!("Pair {i}")).await;
    }
    let (ca, cb) = (client(&a), client(&b));
    let start = Instant::now();
    while rx.count() < 6 {
        assert!(start.elapsed() < DEADLINE, "not every event was delivered");
        let (ra, rb) = tokio::join!(webhooks::tick(&a.state, &ca), webhooks::tick(&b.state, &cb));
        ra.unwrap();
        rb.unwrap();
    }
    // More passes on both find nothing left to send.
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(webhooks::tick(&a.state, &ca), webhooks::tick(&b.state, &cb));
        ra.unwrap();
        rb.unwrap();
    }
    let mut ids: Vec<String> = rx.seen().iter().map(|(h, _)| h["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 6, "each event once: {ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
}

#[tokio::test]
async fn https_targets_get_signed_deliveries_over_verified_tls() {
    let (ca, tls) = test_pki();
    let (port, rx) = tls_receiver(tls).await;
    let trusting = webhooks::WebhookOptions { extra_roots: vec![ca], ..test_webhook_options() };
    let app = TestApp::spawn_with_webhooks(trusting.clone()).await;
    let sub =
        subscribe(&app, &app.admin(), json!({"url": format!("https://localhost:{port}/hook"), "types": ["account"]}))
            .await;
    let (sub_id, secret) = (sub["id"].as_str().unwrap().to_owned(), sub["secret"].as_str().unwrap().to_owned());
    create_account(&app, &app.admin(), "Over TLS").await;

    // A client that does not trust the receiver's CA fails the handshake: the attempt is
    // logged as an error with no status, and nothing reaches the receiver.
    let untrusting = webhooks::client(&test_webhook_options()).unwrap();
    let start = Instant::now();
    let entry = loop {
        webhooks::tick(&app.state, &untrusting).await.unwrap();
        if let Some(e) = log(&app, &sub_id).await.into_iter().find(|e| e["attempts"].as_i64().unwrap_or(0) >= 1) {
            break e;
        }
        assert!(start.elapsed() < DEADLINE, "no attempt was recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(entry["last_status"], Value::Null);
    let error = entry["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(rx.count(), 0);

    // The client that trusts it delivers (the retry was scheduled at once: backoff scale 0).
    let trusted = webhooks::client(&trusting).unwrap();
    tick_until(&app, &trusted, "an https delivery", || rx.count() >= 1).await;
    let (headers, body) = rx.seen().remove(0);
    let event = verify(&secret, &headers, &body);
    assert_eq!(event["action"], "created");
    assert_eq!(event["record_type"], "account");
}
