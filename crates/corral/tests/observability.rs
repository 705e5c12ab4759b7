//! The real binary's access log (one line per request, text or JSON, no colour codes when
//! stderr is not a terminal) and its metrics settings (`CORRAL_METRICS_LISTEN`,
//! `CORRAL_METRICS_TOKEN`), over loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use support::database;

/// A `corral serve` child on an ephemeral port, its stderr in a file; killed on drop.
struct Server {
    child: Child,
    base: String,
    /// Further lines the server printed on stdout after the first.
    extra_stdout: Vec<String>,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// The access-log lines written so far (waiting briefly for `n` of them).
    fn access_lines(&self, n: usize, marker: &str) -> Vec<String> {
        for _ in 0..100 {
            let lines: Vec<String> = self.stderr().lines().filter(|l| l.contains(marker)).map(str::to_owned).collect();
            if lines.len() >= n {
                // Any extra line would show up now too.
                std::thread::sleep(Duration::from_millis(100));
                return self.stderr().lines().filter(|l| l.contains(marker)).map(str::to_owned).collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("fewer than {n} access lines:\n{}", self.stderr());
    }
}

/// `corral` with access-log lines on and colour left to the terminal check.
fn corral(dir: &Path, db: &str) -> Command {
    let mut c = support::corral(dir, db);
    c.env_remove("NO_COLOR").env("CORRAL_LOG", "info");
    c
}

fn serve(mut cmd: Command, dir: &Path, stdout_lines: usize) -> Server {
    let stderr = dir.join("stderr.log");
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = cmd.spawn().expect("spawn corral serve");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..stdout_lines {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_owned());
    }
    let base = lines[0].split_whitespace().find(|w| w.starts_with("http://")).expect("address printed").to_owned();
    Server { child, base, extra_stdout: lines.split_off(1), stderr }
}

fn token(dir: &Path, db: &str, tenant: &str) -> String {
    let out = corral(dir, db).args(["token", "--tenant", tenant]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Sends a request and returns its status and `x-request-id`.
async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let r = request.send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    (r.status().as_u16(), id)
}

#[tokio::test]
async fn json_access_log_has_one_parseable_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let token = token(dir.path(), &db, "logged");
    let mut cmd = corral(dir.path(), &db);
    cmd.env("CORRAL_LOG_FORMAT", "json");
    let server = serve(cmd, dir.path(), 1);
    let client = reqwest::Client::new();
    let base = &server.base;
    let sent = [
        (send(client.get(format!("{base}/health"))).await, "GET", "/health", None),
        (
            send(
                client
                    .post(format!("{base}/api/v1/crm/accounts"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"name": "Logged"})),
            )
            .await,
            "POST",
            "/api/v1/crm/{collection}",
            Some("logged"),
        ),
        (
            send(client.get(format!("{base}/api/v2/account/0193aaaa-0000-7000-8000-000000000000")).bearer_auth(&token))
                .await,
            "GET",
            "/api/v2/{rt}/{id}",
            Some("logged"),
        ),
        (send(client.get(format!("{base}/api/v1/crm/accounts"))).await, "GET", "/api/v1/crm/{collection}", None),
        (send(client.get(format!("{base}/no/such/path"))).await, "GET", "unmatched", None),
        (send(client.get(format!("{base}/metrics"))).await, "GET", "/metrics", None),
    ];
    let lines = server.access_lines(sent.len(), "corral::access");
    assert_eq!(lines.len(), sent.len(), "one line per request:\n{}", lines.join("\n"));
    for (line, ((status, id), method, route, tenant)) in lines.iter().zip(&sent) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "INFO", "{line}");
        assert_eq!(v["target"], "corral::access", "{line}");
        assert_eq!(v["method"], *method, "{line}");
        assert_eq!(v["route"], *route, "{line}");
        assert_eq!(v["status"], *status, "{line}");
        assert_eq!(v["request_id"], id.as_str(), "{line}");
        assert!(v["latency_us"].is_u64(), "{line}");
        assert_eq!(v["tenant"].as_str(), *tenant, "{line}");
        assert!(v["timestamp"].is_string(), "{line}");
    }
    assert_eq!(sent[1].0.0, 201);
    assert_eq!(sent[3].0.0, 401, "refused credentials carry no tenant");
    assert!(!server.stderr().contains('\u{1b}'), "no colour codes when stderr is a file");
    // The raw path of the unmatched request is not logged either.
    assert!(!lines.iter().any(|l| l.contains("/no/such/path")));
}

#[tokio::test]
async fn text_access_log_is_plain_and_the_log_filter_can_turn_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let server = serve(corral(dir.path(), &db), dir.path(), 1);
    let client = reqwest::Client::new();
    let (status, id) = send(client.get(format!("{}/health", server.base))).await;
    assert_eq!(status, 200);
    send(client.get(format!("{}/ready", server.base))).await;
    let lines = server.access_lines(2, "corral::access");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains(" INFO corral::access: request "), "{}", lines[0]);
    for field in ["method=\"GET\"", "route=\"/health\"", "status=200", "latency_us=", &format!("request_id=\"{id}\"")] {
        assert!(lines[0].contains(field), "{field} missing: {}", lines[0]);
    }
    assert!(!server.stderr().contains('\u{1b}'), "no colour codes when stderr is a file");
    drop(server);

    let quiet_dir = tempfile::tempdir().unwrap();
    let mut cmd = corral(quiet_dir.path(), &db);
    cmd.env("CORRAL_LOG", "info,corral::access=off");
    let server = serve(cmd, quiet_dir.path(), 1);
    for _ in 0..3 {
        send(client.get(format!("{}/health", server.base))).await;
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = server.stderr();
    assert!(log.contains("corral listening"), "other info lines stay: {log}");
    assert!(!log.contains("corral::access"), "{log}");
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listener_behind_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let secret = "metrics-token-for-the-test";
    let mut cmd = corral(dir.path(), &db);
    cmd.env("CORRAL_METRICS_LISTEN", "127.0.0.1:0").env("CORRAL_METRICS_TOKEN", secret).env("CORRAL_LOG", "warn");
    let server = serve(cmd, dir.path(), 2);
    let metrics_url = server.extra_stdout[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
        .unwrap_or_else(|| panic!("metrics address printed: {:?}", server.extra_stdout))
        .to_owned();
    assert!(!metrics_url.starts_with(&server.base), "a different port");
    let client = reqwest::Client::new();
    let r = client.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(r.status(), 404, "not on the API listener");
    client.get(format!("{}/health", server.base)).send().await.unwrap();
    let r = client.get(&metrics_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = client.get(&metrics_url).bearer_auth(secret).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("corral_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 1"), "{text}");

    // A short token is refused at start.
    let out = corral(dir.path(), &db).env("CORRAL_METRICS_TOKEN", "short").arg("migrate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics_token"));
}
