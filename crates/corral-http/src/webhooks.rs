//! Webhook delivery (docs/API.md "Webhooks"): signing as the Standard Webhooks
//! specification describes, the retry schedule, the private-target guard, the delivery
//! client (http and https, [`DeliveryClient`]), and the dispatcher `corral serve` runs in the
//! background ([`run`], one pass is [`tick`]). Subscriptions and the delivery log live in the
//! store (`corral_store::webhooks`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use corral_core::{CoreError, ErrorCode, Timestamp};
use corral_store::webhooks::{Attempt, Claimed};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use sha2::Sha256;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Delivery settings (docs/OPERATIONS.md, `CORRAL_WEBHOOKS_*`).
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Allow private, loopback and link-local targets (tests, private networks).
    pub allow_private_targets: bool,
    /// Connect plus total time of one attempt.
    pub timeout: Duration,
    /// Multiplies every retry delay (tests make the ~24 h schedule take milliseconds).
    pub backoff_scale: f64,
    /// How often the dispatcher runs.
    pub poll: Duration,
    /// Certificate authorities trusted for https targets besides the Mozilla roots
    /// (`CORRAL_WEBHOOKS_CA_FILE`: receivers behind a private CA, tests).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            backoff_scale: 1.0,
            poll: Duration::from_secs(1),
            extra_roots: Vec::new(),
        }
    }
}

/// Delays before the 2nd, 3rd, … attempt (Standard Webhooks' schedule, ~27 h in all);
/// after the last one fails the delivery fails and its subscription is disabled.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// When to retry after the `attempts`-th failed attempt, with ±20 % jitter so that a
/// receiver coming back up is not hit by every retry at once; `None`: give up.
pub fn retry_at(now: Timestamp, attempts: i64, scale: f64) -> Option<Timestamp> {
    let delay = SCHEDULE.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    let jitter = 0.8 + 0.4 * f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    Some(Timestamp(now.millis() + (delay.as_millis() as f64 * scale * jitter) as i64))
}

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn generate_secret() -> String {
    let mut key = [0u8; 24];
    getrandom::getrandom(&mut key).expect("the OS random source works");
    format!("whsec_{}", B64.encode(key))
}

/// The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// keyed with the secret's decoded bytes.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> String {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Whether `ip` is a target only an opted-in deployment may send to.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Why a target URL is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetError {
    /// Not an `http://` URL with a host, or the host does not resolve.
    Invalid(String),
    /// A private, loopback or link-local address while those are not allowed.
    NotAllowed(String),
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::Invalid(m) | TargetError::NotAllowed(m) => f.write_str(m),
        }
    }
}

impl From<TargetError> for CoreError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::Invalid(reason) => CoreError::invalid_value("url", reason),
            TargetError::NotAllowed(reason) => CoreError::new(
                ErrorCode::WebhookTargetNotAllowed,
                format!("the webhook target is not allowed: {reason}"),
            )
            .with("field", "url")
            .with("reason", reason),
        }
    }
}

fn refuse(ip: IpAddr) -> TargetError {
    TargetError::NotAllowed(format!(
        "{ip} is a private, loopback or link-local address (see CORRAL_WEBHOOKS_ALLOW_PRIVATE_TARGETS)"
    ))
}

/// Checks a target URL: `http://` or `https://` with a host, resolving only to public
/// addresses unless `allow_private`. Run at create and update, for a clear answer to the
/// admin; at send time the client's resolver ([`GuardedResolver`]) checks again the very
/// addresses it connects to, so a name that later resolves elsewhere (DNS rebinding) is
/// still refused.
pub async fn check_target(url: &str, allow_private: bool) -> Result<url::Url, TargetError> {
    let parsed = url::Url::parse(url).map_err(|e| TargetError::Invalid(format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(TargetError::Invalid(format!("unsupported scheme `{other}`: use http or https"))),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // They would be sent as Basic credentials and shown in every listing.
        return Err(TargetError::Invalid("credentials in the URL are not accepted".into()));
    }
    let host = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => return check_ip(IpAddr::V4(ip), allow_private).map(|()| parsed),
        Some(url::Host::Ipv6(ip)) => return check_ip(IpAddr::V6(ip), allow_private).map(|()| parsed),
        Some(url::Host::Domain(host)) => host.to_owned(),
        None => return Err(TargetError::Invalid("the URL has no host".into())),
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| TargetError::Invalid(format!("cannot resolve `{host}`: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Invalid(format!("`{host}` resolves to no address")));
    }
    for a in &addrs {
        check_ip(a.ip(), allow_private)?;
    }
    Ok(parsed)
}

fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    if !allow_private && is_private(ip) { Err(refuse(ip)) } else { Ok(()) }
}

/// The delivery client's DNS resolver: the system's, refusing private addresses unless
/// allowed. Connections go to exactly the addresses checked here, which is what defeats DNS
/// rebinding (a check before the send followed by a second lookup would not). IP-literal
/// URLs do not pass through a resolver; [`send`] checks them.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

type Resolving = Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            // The port is replaced by the URL's.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            for a in &addrs {
                check_ip(a.ip(), allow_private).map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            Ok(addrs.into_iter())
        })
    }
}

/// The HTTP client deliveries go out with: hyper's, over TCP through [`GuardedResolver`],
/// with rustls (ring, the Mozilla roots plus [`WebhookOptions::extra_roots`]) for https. It
/// follows no redirect: one could lead to a private target the guard never saw.
#[derive(Clone)]
pub struct DeliveryClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    timeout: Duration,
}

/// Builds the delivery client. Fails only if a configured extra root is not a usable CA
/// certificate.
pub fn client(options: &WebhookOptions) -> Result<DeliveryClient, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for cert in &options.extra_roots {
        roots.add(cert.clone()).map_err(|e| format!("a webhook CA certificate is not usable: {e}"))?;
    }
    // The provider goes to this client only: installing it process-wide would change every
    // other TLS user in the process.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new_with_resolver(GuardedResolver { allow_private: options.allow_private_targets });
    tcp.enforce_http(false); // https URLs pass through to the TLS layer
    tcp.set_connect_timeout(Some(options.timeout));
    tcp.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    Ok(DeliveryClient { client, timeout: options.timeout })
}

/// Reads PEM certificates (`CORRAL_WEBHOOKS_CA_FILE`) for [`WebhookOptions::extra_roots`].
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// Deliveries claimed per pass; they are sent concurrently.
const CLAIM_BATCH: usize = 32;

/// One dispatcher pass: fans new change events out into deliveries, then sends the due
/// ones (concurrently) and records each attempt. Returns how many attempts were made.
pub async fn tick(state: &crate::AppState, client: &DeliveryClient) -> Result<usize, corral_store::StoreError> {
    let options = state.webhook_options().clone();
    let store = state.store();
    if !store.any_webhook_enabled().await? {
        return Ok(0);
    }
    store.webhook_fan_out(&|e| crate::routes::changes::render_v2(e).to_string()).await?;
    // The lease outlasts one attempt (all of a batch run at once), so no other instance
    // sends it meanwhile; a crash mid-send leaves it to be retried when the lease ends.
    let lease_ms = options.timeout.as_millis() as i64 * 2 + 5_000;
    let claimed = store.claim_webhook_deliveries(Timestamp::now(), lease_ms, CLAIM_BATCH).await?;
    let n = claimed.len();
    let mut sends = tokio::task::JoinSet::new();
    for c in claimed {
        let (client, options) = (client.clone(), options.clone());
        sends.spawn(async move {
            let attempt = send(&client, &options, &c).await;
            (c, attempt)
        });
    }
    let mut first_error = None;
    while let Some(done) = sends.join_next().await {
        let Ok((c, attempt)) = done else { continue };
        if let Err(e) = store.settle_webhook_delivery(&c, &attempt).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// The background dispatcher: a [`tick`] every `poll` until `stop` resolves. A pass under
/// way when `stop` resolves finishes first (its sends are bounded by the timeout).
pub async fn run(state: crate::AppState, stop: impl Future<Output = ()>) {
    // The options were checked when the server started (a bad CA file stops it there).
    let client = match client(state.webhook_options()) {
        Ok(client) => client,
        Err(e) => return tracing::error!(error = %e, "webhook deliveries are off"),
    };
    let poll = state.webhook_options().poll;
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(poll) => {}
        }
        match tick(&state, &client).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook dispatch pass failed; retrying at the next poll"),
        }
    }
}

async fn send(client: &DeliveryClient, options: &WebhookOptions, c: &Claimed) -> Attempt {
    let d = &c.delivery;
    let failed = |status: Option<i64>, error: String| Attempt {
        status,
        error: Some(error),
        retry_at: retry_at(Timestamp::now(), d.attempts + 1, options.backoff_scale),
    };
    // Names are checked again by the client's resolver; this catches IP literals (and a
    // setting turned off since the subscription was made).
    let url = match check_target(&c.url, options.allow_private_targets).await {
        Ok(url) => url,
        Err(e) => return failed(None, e.to_string()),
    };
    let timestamp = Timestamp::now().millis() / 1000;
    let request = hyper::Request::post(url.as_str())
        .header("content-type", "application/json")
        .header("user-agent", concat!("corral-webhooks/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", d.event_id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(&c.secret, &d.event_id, timestamp, &d.body))
        .body(Full::new(Bytes::from(d.body.clone())));
    let request = match request {
        Ok(request) => request,
        Err(e) => return failed(None, format!("request not sent: {e}")),
    };
    // The whole attempt (connect, TLS, answer head) within the timeout; the answer's body is
    // not read, only its status counts.
    match tokio::time::timeout(client.timeout, client.client.request(request)).await {
        Ok(Ok(r)) if r.status().is_success() => {
            Attempt { status: Some(i64::from(r.status().as_u16())), error: None, retry_at: None }
        }
        Ok(Ok(r)) => failed(Some(i64::from(r.status().as_u16())), format!("receiver answered {}", r.status())),
        Ok(Err(e)) => failed(None, format!("request failed: {}", error_chain(&e))),
        Err(_) => failed(None, format!("no answer within {} ms", client.timeout.as_millis())),
    }
}

/// An error and its causes on one line (the client's own message is only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_ca_file_must_hold_a_usable_certificate() {
        let dir = std::env::temp_dir().join(format!("corral-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read_ca_file(&dir.join("missing.pem")).is_err());
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        assert!(read_ca_file(&junk).unwrap_err().contains("no PEM certificate"));
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let certs = read_ca_file(&bad).unwrap();
        let options = WebhookOptions { extra_roots: certs, ..WebhookOptions::default() };
        assert!(client(&options).is_err(), "a certificate that does not parse is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_targets_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_schedule_ends_and_jitters_within_bounds() {
        let now = Timestamp(0);
        let first = retry_at(now, 1, 1.0).unwrap().millis();
        assert!((4_000..=6_000).contains(&first), "{first}");
        assert!(retry_at(now, 7, 1.0).is_some());
        assert!(retry_at(now, 8, 1.0).is_none());
    }
}
