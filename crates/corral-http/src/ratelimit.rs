//! Rate limits (docs/CONTRACT.md §2, docs/API.md "Rate limits").
//!
//! Two GCRA limiters ([`governor`]) run after authentication, on every authenticated request:
//!
//! - **credential**: each API key or token subject of a tenant (an exchanged token counts as
//!   its key) may make `CORRAL_RATE_LIMIT_PER_SECOND` requests per second;
//! - **tenant**: all the credentials of a tenant together may make the tenant's
//!   `rate_limit_per_second` requests per second, or the server default when it has none.
//!
//! A quota of `n` per second lets a burst of `n` through and refills one request every
//! `1/n` s. Over either limit the answer is `429 rate_limited` with `Retry-After`. Every
//! authenticated response carries `RateLimit-Policy` and `RateLimit` in the syntax of
//! draft-ietf-httpapi-ratelimit-headers-10. The counts live in this process: with several
//! instances behind a load balancer, each one counts its own requests.
//!
//! Memory: a key is kept only while its bucket is not full again (at most a second after its
//! last request); idle keys are swept at most every [`SWEEP_INTERVAL`], by the request that
//! notices the interval has passed. Only authenticated callers create keys.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use corral_core::{ErrorCode, TenantId};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{NotUntil, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often idle keys are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The window every quota is expressed over, in seconds (`w` of `RateLimit-Policy`).
const WINDOW_SECONDS: u64 = 1;

pub const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

fn keyed<K: std::hash::Hash + Eq + Clone>(per_second: NonZeroU32) -> Keyed<K> {
    RateLimiter::dashmap(Quota::per_second(per_second)).with_middleware::<StateInformationMiddleware>()
}

/// One quota policy as reported to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `credential` or `tenant`.
    pub name: &'static str,
    /// Requests per [`WINDOW_SECONDS`].
    pub quota: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until more quota is available.
    pub reset: u64,
}

/// The outcome of one request's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No limit applies to this caller.
    Unlimited,
    /// Under every limit; the policies that apply, with what is left of each.
    Allowed(Vec<Policy>),
    /// Over a limit: the policies that apply, and the seconds to wait.
    Limited { policies: Vec<Policy>, retry_after: u64 },
}

/// The limiters of one process.
pub struct RateLimits {
    default: Option<NonZeroU32>,
    clock: DefaultClock,
    /// Per (tenant, subject), all at the server default.
    credentials: Option<Keyed<(TenantId, String)>>,
    /// Per tenant, grouped by the tenant's quota (governor's keyed limiters share one quota).
    tenants: RwLock<HashMap<NonZeroU32, Arc<Keyed<TenantId>>>>,
    last_sweep: Mutex<Instant>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("default", &self.default).finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Limiters with `default` requests per second per credential (and per tenant without a
    /// setting); `None` limits only tenants that set their own limit.
    pub fn new(default: Option<NonZeroU32>) -> Self {
        RateLimits {
            default,
            clock: DefaultClock::default(),
            credentials: default.map(keyed),
            tenants: RwLock::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// The server default (`CORRAL_RATE_LIMIT_PER_SECOND`).
    pub fn default_per_second(&self) -> Option<NonZeroU32> {
        self.default
    }

    fn tenant_limiter(&self, quota: NonZeroU32) -> Arc<Keyed<TenantId>> {
        if let Some(l) = self.tenants.read().unwrap_or_else(|p| p.into_inner()).get(&quota) {
            return l.clone();
        }
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(quota)
            .or_insert_with(|| Arc::new(keyed(quota)))
            .clone()
    }

    fn denied(
        &self,
        name: &'static str,
        quota: NonZeroU32,
        not_until: &NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> (Policy, u64) {
        let wait = not_until.wait_time_from(self.clock.now());
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let retry_after = retry_after.max(1);
        (Policy { name, quota: quota.get(), remaining: 0, reset: retry_after }, retry_after)
    }

    /// Counts one request of `subject` in `tenant`, whose own limit is `tenant_limit`.
    pub fn check(&self, tenant: &TenantId, subject: &str, tenant_limit: Option<NonZeroU32>) -> Decision {
        self.maybe_sweep();
        let mut policies = Vec::with_capacity(2);
        if let (Some(limiter), Some(quota)) = (&self.credentials, self.default) {
            match limiter.check_key(&(tenant.clone(), subject.to_owned())) {
                Ok(snapshot) => policies.push(allowed("credential", quota, &snapshot)),
                Err(not_until) => {
                    let (policy, retry_after) = self.denied("credential", quota, &not_until);
                    policies.push(policy);
                    return Decision::Limited { policies, retry_after };
                }
            }
        }
        if let Some(quota) = tenant_limit.or(self.default) {
            match self.tenant_limiter(quota).check_key(tenant) {
                Ok(snapshot) => policies.push(allowed("tenant", quota, &snapshot)),
                Err(not_until) => {
                    let (policy, retry_after) = self.denied("tenant", quota, &not_until);
                    policies.push(policy);
                    return Decision::Limited { policies, retry_after };
                }
            }
        }
        if policies.is_empty() { Decision::Unlimited } else { Decision::Allowed(policies) }
    }

    /// Drops idle keys when [`SWEEP_INTERVAL`] has passed since the last sweep.
    fn maybe_sweep(&self) {
        let due = match self.last_sweep.try_lock() {
            Ok(mut last) if last.elapsed() >= SWEEP_INTERVAL => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            self.sweep();
        }
    }

    /// Drops every key whose bucket is full again (indistinguishable from a new one), and the
    /// tenant groups left empty.
    pub fn sweep(&self) {
        if let Some(c) = &self.credentials {
            c.retain_recent();
            c.shrink_to_fit();
        }
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        for limiter in tenants.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        tenants.retain(|_, l| !l.is_empty());
    }

    /// How many (credential, tenant) keys are held.
    pub fn tracked_keys(&self) -> (usize, usize) {
        let credentials = self.credentials.as_ref().map_or(0, |c| c.len());
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner()).values().map(|l| l.len()).sum();
        (credentials, tenants)
    }
}

fn allowed(name: &'static str, quota: NonZeroU32, snapshot: &StateSnapshot) -> Policy {
    let remaining = snapshot.remaining_burst_capacity();
    // GCRA refills continuously: one more request is available within 1/quota s, so within
    // the next whole second unless the bucket is already full.
    let reset = if remaining >= quota.get() { 0 } else { WINDOW_SECONDS };
    Policy { name, quota: quota.get(), remaining, reset }
}

/// `RateLimit-Policy`: `"credential";q=100;w=1, "tenant";q=500;w=1`.
pub fn policy_header(policies: &[Policy]) -> String {
    policies.iter().map(|p| format!("\"{}\";q={};w={WINDOW_SECONDS}", p.name, p.quota)).collect::<Vec<_>>().join(", ")
}

/// `RateLimit`: `"credential";r=99;t=1, "tenant";r=499;t=1`.
pub fn limit_header(policies: &[Policy]) -> String {
    policies.iter().map(|p| format!("\"{}\";r={};t={}", p.name, p.remaining, p.reset)).collect::<Vec<_>>().join(", ")
}

fn add_headers(response: &mut Response, policies: &[Policy]) {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&policy_header(policies)) {
        headers.insert(RATE_LIMIT_POLICY, v);
    }
    if let Ok(v) = HeaderValue::from_str(&limit_header(policies)) {
        headers.insert(RATE_LIMIT, v);
    }
}

/// The rate-limit middleware: runs after [`crate::auth::authenticate`] on the same routes and
/// limits requests that carry a principal; anonymous requests pass untouched.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>() else { return next.run(request).await };
    let (tenant, subject) = (principal.actor.tenant.clone(), principal.actor.subject.clone());
    let tenant_limit = state.tenant_rate_limit(&tenant).await;
    match state.rate_limits().check(&tenant, &subject, tenant_limit) {
        Decision::Unlimited => next.run(request).await,
        Decision::Allowed(policies) => {
            let mut response = next.run(request).await;
            add_headers(&mut response, &policies);
            response
        }
        Decision::Limited { policies, retry_after } => {
            let which = policies.last().map_or("", |p| p.name);
            tracing::info!(request_id = %crate::request_id::current(), %tenant, %subject, policy = which, "rate limited");
            let mut response = ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests ({which} limit); retry after {retry_after} s"),
            )
            .with_header(header::RETRY_AFTER, &retry_after.to_string())
            .into_response();
            add_headers(&mut response, &policies);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(v)
    }

    #[test]
    fn the_credential_limit_is_per_subject_and_the_tenant_limit_is_shared() {
        let limits = RateLimits::new(n(2));
        let t = TenantId::new("t");
        // Tenant allows 3 in all; each subject 2.
        assert!(matches!(limits.check(&t, "a", n(3)), Decision::Allowed(_)));
        assert!(matches!(limits.check(&t, "a", n(3)), Decision::Allowed(_)));
        match limits.check(&t, "a", n(3)) {
            Decision::Limited { policies, retry_after } => {
                assert_eq!(policies.last().unwrap().name, "credential");
                assert_eq!(retry_after, 1);
            }
            other => panic!("{other:?}"),
        }
        match limits.check(&t, "b", n(3)) {
            Decision::Allowed(p) => {
                assert_eq!(limit_header(&p), "\"credential\";r=1;t=1, \"tenant\";r=0;t=1");
                assert_eq!(policy_header(&p), "\"credential\";q=2;w=1, \"tenant\";q=3;w=1");
            }
            other => panic!("{other:?}"),
        }
        match limits.check(&t, "c", n(3)) {
            Decision::Limited { policies, .. } => assert_eq!(policies.last().unwrap().name, "tenant"),
            other => panic!("{other:?}"),
        }
        // Another tenant is untouched.
        assert!(matches!(limits.check(&TenantId::new("u"), "a", n(3)), Decision::Allowed(_)));
    }

    #[test]
    fn without_any_limit_nothing_is_counted() {
        let limits = RateLimits::new(None);
        let t = TenantId::new("t");
        assert_eq!(limits.check(&t, "a", None), Decision::Unlimited);
        assert_eq!(limits.tracked_keys(), (0, 0));
        // A tenant's own limit applies without a server default.
        match limits.check(&t, "a", n(1)) {
            Decision::Allowed(p) => assert_eq!(policy_header(&p), "\"tenant\";q=1;w=1"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(limits.check(&t, "a", n(1)), Decision::Limited { .. }));
    }

    #[test]
    fn idle_keys_are_swept() {
        let limits = RateLimits::new(n(50));
        for i in 0..20 {
            limits.check(&TenantId::new(format!("t{i}")), "s", None);
        }
        assert_eq!(limits.tracked_keys(), (20, 20));
        limits.sweep();
        assert_eq!(limits.tracked_keys(), (20, 20), "recently used keys stay");
        std::thread::sleep(Duration::from_millis(1100));
        limits.sweep();
        assert_eq!(limits.tracked_keys(), (0, 0));
        assert!(limits.tenants.read().unwrap().is_empty());
    }
}
