//! Prometheus metrics (docs/OPERATIONS.md, Metrics): requests by route template, method and
//! status; latency histograms; requests in flight; `429` answers; the database pool, read at
//! scrape time. Served by `GET /metrics` in the Prometheus text format 0.0.4.
//!
//! Per request: two family look-ups (a hash of the route template's `Arc<str>`, a static
//! method name and the status) and a few atomic operations. Labels never hold the raw path,
//! so series stay bounded by the route table.

use axum::extract::MatchedPath;
use axum::http::Method;
use corral_store::PoolProbe;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of requests no route matched (404 `route_not_found`).
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets, in seconds: point reads take a fraction of a millisecond, so the low end
/// is fine-grained.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A route label: the matched route template (`/api/v2/{rt}/{id}`), or [`UNMATCHED`].
/// Cloning shares axum's `Arc<str>` of the template.
#[derive(Clone, Debug)]
pub struct Route(Option<MatchedPath>);

impl Route {
    pub fn new(matched: Option<&MatchedPath>) -> Self {
        Route(matched.cloned())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// The method label: the standard methods by name, anything else as `OTHER` (a client can
/// send any token as a method; it must not create series).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: Route,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The process's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    rate_limited: Family<RouteLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("in_flight", &self.in_flight.get()).finish()
    }
}

/// Counts a request in flight until dropped (also when the client goes away mid-request).
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Metrics of a server whose database `pool` reports its connections.
    pub fn new(pool: PoolProbe) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "corral_http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "corral_http_request_duration_seconds",
            "Time from receiving a request to its response head, by route template and method",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("corral_http_requests_in_flight", "HTTP requests being handled now", in_flight.clone());
        let rate_limited = Family::<RouteLabels, Counter>::default();
        registry.register(
            "corral_rate_limited",
            "Requests refused with 429 rate_limited, by route template",
            rate_limited.clone(),
        );
        registry.register_collector(Box::new(PoolCollector(pool)));
        Metrics { registry, requests, latency, in_flight, rate_limited }
    }

    /// Counts a request as in flight until the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records one answered request.
    pub fn record(&self, route: &Route, method: &'static str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route: route.clone(), method, status }).inc();
        self.latency.get_or_create(&LatencyLabels { route: route.clone(), method }).observe(elapsed.as_secs_f64());
        if status == 429 {
            self.rate_limited.get_or_create(&RouteLabels { route: route.clone() }).inc();
        }
    }

    /// Every metric in the Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The database pool's figures, read on every scrape.
#[derive(Debug)]
struct PoolCollector(PoolProbe);

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter<N: prometheus_client::encoding::EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let e = &mut encoder;
        gauge(
            e,
            "corral_db_pool_connections",
            "Database connections open (SQLite: read connections plus the writer).",
            s.connections,
        )?;
        gauge(
            e,
            "corral_db_pool_idle_connections",
            "Open database connections idle in the pool (SQLite: idle read connections).",
            s.idle,
        )?;
        if let Some(max) = s.max {
            gauge(e, "corral_db_pool_max_connections", "The most connections the pool opens (PostgreSQL).", max)?;
        }
        gauge(
            e,
            "corral_db_pool_waiting",
            "Callers waiting for a pooled connection (PostgreSQL) or for the writer connection (SQLite).",
            s.waiting,
        )?;
        if let Some(w) = s.sqlite {
            counter(e, "corral_sqlite_write_transactions", "SQLite write transactions begun.", w.writes)?;
            counter(
                e,
                "corral_sqlite_writer_queued",
                "SQLite write transactions that found the writer busy and queued for it.",
                w.writes_queued,
            )?;
            counter(
                e,
                "corral_sqlite_writer_wait_seconds",
                "Total time SQLite write transactions spent queued for the writer.",
                w.writer_wait_seconds,
            )?;
            gauge(
                e,
                "corral_sqlite_wal_frames_behind",
                "WAL pages the last background checkpoint could not copy into the database file yet.",
                w.wal_frames_behind,
            )?;
        }
        Ok(())
    }
}

/// `GET /metrics`: the rendered metrics, or 401 when `token` is set and not presented as
/// `Authorization: Bearer <token>`.
pub fn respond(
    state: &crate::AppState,
    token: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    use subtle::ConstantTimeEq;
    if let Some(token) = token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().as_bytes())
            .unwrap_or_default();
        if !bool::from(presented.ct_eq(token.as_bytes())) {
            return crate::error::ApiError::unauthenticated("the metrics token is required")
                .with_header(header::WWW_AUTHENTICATE, "Bearer")
                .into_response();
        }
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics().render()).into_response()
}
