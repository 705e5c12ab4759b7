//! `GET /metrics`: the Prometheus text format parses (checked by an independent reader below,
//! not by the library that writes it), requests count under their route template, 429s are
//! counted per route, and the token and separate-listener settings hold.

use crate::helpers::TestApp;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use corral_store::db::Dialect;
use http_body_util::BodyExt;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use tower::ServiceExt;

/// One sample: its metric name and labels (sorted).
type Series = (String, BTreeMap<String, String>);

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().unwrap_or_else(|_| panic!("not a sample value: {s:?}")),
    }
}

/// `{a="x",b="y\"z"}` → labels and the rest of the line.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else { return (labels, s) };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let eq = rest.find("=\"").unwrap_or_else(|| panic!("a label needs =\"…\": {s}"));
        let name = &rest[..eq];
        assert!(is_name(name) && !name.starts_with("__"), "bad label name {name:?}");
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let end = loop {
            match chars.next().unwrap_or_else(|| panic!("unterminated label value: {s}")) {
                (i, '"') => break eq + 2 + i + 1,
                (_, '\\') => match chars.next().map(|c| c.1) {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in {s}"),
                },
                (_, '\n') => panic!("newline in a label value"),
                (_, c) => value.push(c),
            }
        };
        assert!(labels.insert(name.to_owned(), value).is_none(), "label {name} twice: {s}");
        rest = &rest[end..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Reads the Prometheus text exposition format 0.0.4 strictly: every sample belongs to a
/// family declared by `# TYPE` before it, no series repeats, histogram buckets are
/// cumulative and end with `+Inf` equal to `_count`.
fn parse_exposition(text: &str) -> HashMap<Series, f64> {
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), _) => assert!(is_name(name), "HELP of a bad name: {line}"),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_name(name), "TYPE of a bad name: {line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "unknown type: {line}"
                    );
                    assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "{name} typed twice");
                    current = Some((name.to_owned(), kind.to_owned()));
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.trim().is_empty(), "blank lines are not expected");
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("a sample needs a value: {line}"));
        let name = &line[..name_end];
        assert!(is_name(name), "bad metric name in {line}");
        let (labels, rest) = parse_labels(&line[name_end..]);
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().unwrap_or_else(|| panic!("no value: {line}")));
        assert!(fields.next().is_none_or(|ts| ts.parse::<i64>().is_ok()), "bad timestamp: {line}");
        let (family, kind) = current.as_ref().unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
        let belongs = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"].iter().any(|s| name == format!("{family}{s}")),
            _ => name == family,
        };
        assert!(belongs, "{name} is not part of the family {family} ({kind}) declared before it");
        if kind == "histogram" && name.ends_with("_bucket") {
            assert!(labels.contains_key("le"), "a bucket without le: {line}");
        }
        assert!(samples.insert((name.to_owned(), labels), value).is_none(), "a series twice: {line}");
    }
    // Histograms: cumulative buckets, +Inf == _count.
    for ((name, labels), count) in samples.iter().filter(|((n, _), _)| n.ends_with("_count")) {
        let family = name.trim_end_matches("_count");
        if types.get(family).map(String::as_str) != Some("histogram") {
            continue;
        }
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|((n, l), _)| {
                *n == format!("{family}_bucket") && l.iter().filter(|(k, _)| *k != "le").eq(labels.iter())
            })
            .map(|((_, l), v)| (parse_value(&l["le"]), *v))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{family} buckets are not cumulative");
        assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY), "{family} needs a +Inf bucket");
        assert_eq!(buckets.last().map(|b| b.1), Some(*count), "{family}: +Inf bucket != _count");
    }
    samples
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    (name.to_owned(), labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

/// Scrapes `/metrics` through the test app (so the contract checks it) and parses it.
async fn scrape(app: &TestApp) -> (String, HashMap<Series, f64>) {
    let r = app.get("/metrics").send().await;
    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = r.body.as_str().expect("a text body").to_owned();
    let samples = parse_exposition(&text);
    (text, samples)
}

#[tokio::test]
async fn requests_count_under_their_route_template_in_a_parseable_exposition() {
    let app = TestApp::spawn().await;
    let account = app.create_account(json!({"name": "Metered"})).await;
    let id = account["id"].as_str().unwrap();
    for _ in 0..2 {
        app.get(&format!("/api/v1/crm/accounts/{id}")).bearer(&app.admin()).send().await.assert_status(200);
    }
    app.get("/no/such/route/for-metrics").send().await.assert_error(404, "route_not_found");
    let (text, samples) = scrape(&app).await;

    let get_one = [("route", "/api/v1/crm/{collection}/{id}"), ("method", "GET")];
    let get_one_200 = [get_one[0], get_one[1], ("status", "200")];
    assert_eq!(samples.get(&series("corral_http_requests_total", &get_one_200)), Some(&2.0));
    assert_eq!(samples.get(&series("corral_http_request_duration_seconds_count", &get_one)), Some(&2.0));
    let create = [("route", "/api/v1/crm/{collection}"), ("method", "POST"), ("status", "201")];
    assert_eq!(samples.get(&series("corral_http_requests_total", &create)), Some(&1.0));
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert_eq!(samples.get(&series("corral_http_requests_total", &unmatched)), Some(&1.0));
    // Labels never carry raw paths or ids.
    assert!(!text.contains(id) && !text.contains(&id[4..]) && !text.contains("for-metrics"));
    // The scrape itself is in flight while it renders.
    assert_eq!(samples.get(&series("corral_http_requests_in_flight", &[])), Some(&1.0));

    // The database pool, read at scrape time.
    let gauge = |name: &str| *samples.get(&series(name, &[])).unwrap_or_else(|| panic!("{name} missing"));
    assert!(gauge("corral_db_pool_connections") >= 1.0);
    assert!(gauge("corral_db_pool_idle_connections") <= gauge("corral_db_pool_connections"));
    assert_eq!(gauge("corral_db_pool_waiting"), 0.0);
    match app.state.store().dialect() {
        Dialect::Sqlite => {
            // The create wrote; the queue counters exist.
            assert!(gauge("corral_sqlite_write_transactions_total") >= 1.0);
            assert!(gauge("corral_sqlite_writer_queued_total") >= 0.0);
            assert!(gauge("corral_sqlite_writer_wait_seconds_total") >= 0.0);
            assert!(gauge("corral_sqlite_wal_frames_behind") >= 0.0);
            assert!(!samples.contains_key(&series("corral_db_pool_max_connections", &[])));
        }
        Dialect::Postgres => {
            assert_eq!(gauge("corral_db_pool_max_connections"), 4.0, "the test pool size");
            assert!(!text.contains("corral_sqlite_"));
        }
    }

    // A second scrape counts the first.
    let (_, again) = scrape(&app).await;
    let metrics = [("route", "/metrics"), ("method", "GET"), ("status", "200")];
    assert_eq!(again.get(&series("corral_http_requests_total", &metrics)), Some(&1.0));
}

#[tokio::test]
async fn unusual_methods_share_one_label() {
    let app = TestApp::spawn().await;
    let r = app.request(axum::http::Method::from_bytes(b"BREW").unwrap(), "/health").send().await;
    r.assert_status(405);
    let (text, samples) = scrape(&app).await;
    let brew = [("route", "/health"), ("method", "OTHER"), ("status", "405")];
    assert_eq!(samples.get(&series("corral_http_requests_total", &brew)), Some(&1.0));
    assert!(!text.contains("BREW"));
}

/// Sends a request straight to `router` (no contract check) and returns status and body.
async fn call(router: &axum::Router, path: &str, bearer: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().uri(path);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn answers_429_are_counted_per_route_as_rate_limited() {
    // Rate limiting answers 429 from inside the router; any 429 counts, so a stand-in route
    // behind the same middleware shows it.
    let app = TestApp::spawn().await;
    let router = axum::Router::new()
        .route("/limited/{id}", axum::routing::get(|| async { StatusCode::TOO_MANY_REQUESTS }))
        .route("/fine", axum::routing::get(|| async { StatusCode::OK }))
        .layer(axum::middleware::from_fn_with_state(app.state.clone(), corral_http::observe::track));
    for path in ["/limited/1", "/limited/2", "/fine"] {
        call(&router, path, None).await;
    }
    let samples = parse_exposition(&app.state.metrics().render());
    assert_eq!(samples.get(&series("corral_rate_limited_total", &[("route", "/limited/{id}")])), Some(&2.0));
    assert!(!samples.contains_key(&series("corral_rate_limited_total", &[("route", "/fine")])));
    let limited = [("route", "/limited/{id}"), ("method", "GET"), ("status", "429")];
    assert_eq!(samples.get(&series("corral_http_requests_total", &limited)), Some(&2.0));
}

#[tokio::test]
async fn a_metrics_token_guards_the_endpoint() {
    let app = TestApp::spawn().await;
    let token = "scrape-token-0123456789";
    let endpoint = corral_http::MetricsEndpoint { separate_listener: false, token: Some(token.into()) };
    let router = corral_http::router_with(
        app.state.clone(),
        corral_http::EdgeOptions { metrics: endpoint, ..Default::default() },
    );
    let (status, body) = call(&router, "/metrics", None).await;
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["code"], "unauthenticated");
    // A tenant admin's token is not the metrics token: metrics span every tenant.
    assert_eq!(call(&router, "/metrics", Some(&app.admin())).await.0, 401);
    assert_eq!(call(&router, "/metrics", Some("scrape-token-012345678")).await.0, 401);
    let (status, body) = call(&router, "/metrics", Some(token)).await;
    assert_eq!(status, 200);
    parse_exposition(&body);
}

#[tokio::test]
async fn a_separate_listener_takes_metrics_off_the_api_router() {
    let app = TestApp::spawn().await;
    let endpoint = corral_http::MetricsEndpoint { separate_listener: true, token: None };
    let api = corral_http::router_with(
        app.state.clone(),
        corral_http::EdgeOptions { metrics: endpoint, ..Default::default() },
    );
    let (status, body) = call(&api, "/metrics", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("route_not_found"));
    assert_eq!(call(&api, "/health", None).await.0, 200);
    let metrics = corral_http::metrics_router(app.state.clone(), None);
    let (status, body) = call(&metrics, "/metrics", None).await;
    assert_eq!(status, 200);
    let samples = parse_exposition(&body);
    // The API's traffic shows there; the metrics listener's own scrapes are not counted.
    let health = [("route", "/health"), ("method", "GET"), ("status", "200")];
    assert_eq!(samples.get(&series("corral_http_requests_total", &health)), Some(&1.0));
    assert!(!body.contains("route=\"/metrics\""));
    assert_eq!(call(&metrics, "/health", None).await.0, 404);
}

#[test]
fn the_reader_rejects_malformed_expositions() {
    let bad = [
        "foo 1\n",                                                                                 // no TYPE
        "# TYPE foo counter\nbar 1\n",                                                             // not of the family
        "# TYPE foo gauge\nfoo{a=\"x} 1\n",                                                        // unterminated label
        "# TYPE foo gauge\nfoo one\n",                                                             // not a number
        "# TYPE foo gauge\nfoo 1\nfoo 2\n",                                                        // a series twice
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n", // not cumulative
    ];
    for text in bad {
        assert!(std::panic::catch_unwind(|| parse_exposition(text)).is_err(), "accepted: {text:?}");
    }
    parse_exposition("# HELP foo a\n# TYPE foo gauge\nfoo{a=\"x\\\"y\"} 1.5\n");
}
