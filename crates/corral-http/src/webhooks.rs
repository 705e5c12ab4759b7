//! Webhook delivery (docs/API.md "Webhooks"): signing as the Standard Webhooks
//! specification describes, the retry schedule, the private-target guard, and the
//! dispatcher `corral serve` runs in the background ([`run`], one pass is [`tick`]).
//! Subscriptions and the delivery log live in the store (`corral_store::webhooks`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use corral_core::{CoreError, ErrorCode, Timestamp};
use corral_store::webhooks::{Attempt, Claimed};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            backoff_scale: 1.0,
            poll: Duration::from_secs(1),
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

/// Checks a target URL: `http://` with a host, resolving only to public
/// addresses unless `allow_private`. Run at create and update, for a clear answer to the
/// admin; at send time the client's resolver ([`GuardedResolver`]) checks again the very
/// addresses it connects to, so a name that later resolves elsewhere (DNS rebinding) is
/// still refused.
pub async fn check_target(url: &str, allow_private: bool) -> Result<reqwest::Url, TargetError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| TargetError::Invalid(format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "http" => {}
        // No TLS client in this build (see crates/corral-http/Cargo.toml).
        "https" => {
            return Err(TargetError::Invalid(
                "https targets are not supported by this build yet; use http (e.g. to a TLS-terminating relay)".into(),
            ));
        }
        other => return Err(TargetError::Invalid(format!("unsupported scheme `{other}`: use http"))),
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

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is replaced by the URL's.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                check_ip(a.ip(), allow_private).map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client deliveries go out with.
pub fn client(options: &WebhookOptions) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(options.timeout)
        .timeout(options.timeout)
        // A redirect could lead to a private target the guard never saw.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { allow_private: options.allow_private_targets }))
        .build()
        .expect("a client without TLS always builds")
}

/// Deliveries claimed per pass; they are sent concurrently.
const CLAIM_BATCH: usize = 32;

/// One dispatcher pass: fans new change events out into deliveries, then sends the due
/// ones (concurrently) and records each attempt. Returns how many attempts were made.
pub async fn tick(state: &crate::AppState, client: &reqwest::Client) -> Result<usize, corral_store::StoreError> {
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
    let client = client(state.webhook_options());
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

async fn send(client: &reqwest::Client, options: &WebhookOptions, c: &Claimed) -> Attempt {
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
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", d.event_id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(&c.secret, &d.event_id, timestamp, &d.body))
        .body(d.body.clone())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => {
            Attempt { status: Some(i64::from(r.status().as_u16())), error: None, retry_at: None }
        }
        Ok(r) => failed(Some(i64::from(r.status().as_u16())), format!("receiver answered {}", r.status())),
        Err(e) if e.is_timeout() => failed(None, format!("no answer within {} ms", options.timeout.as_millis())),
        Err(e) => failed(None, format!("request failed: {}", error_chain(&e))),
    }
}

/// An error and its causes on one line (reqwest's own message is only "error sending request").
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
