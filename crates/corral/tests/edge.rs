//! The real `corral serve` against slow and misbehaving clients over loopback: the header,
//! body and idle timeouts, the shutdown drain limit, and the request-head limits where hyper
//! and the router meet (docs/OPERATIONS.md). Timeouts are configured short (1 s) here.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_corral");

/// A `corral serve` child on an ephemeral port; killed on drop if still running.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `corral serve` with `settings` as `CORRAL_*` environment variables.
async fn serve(dir: &Path, settings: &[(&str, &str)]) -> Server {
    let db = corral_store::testing::fresh_database(dir).await.expect("test database");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--database-url")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("CORRAL_DATABASE_URL")
        .env_remove("CORRAL_JWT_SECRET")
        .env("CORRAL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in settings {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().expect("spawn corral serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.split_whitespace().find_map(|w| w.strip_prefix("http://")).expect("address printed").to_owned();
    Server { child, address }
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent and how long it took.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

/// Sends one request and reads one response (headers and `Content-Length` body).
fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a response: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

/// The JSON body of a raw response.
fn json_body(response: &str) -> serde_json::Value {
    let body = &response[response.find("\r\n\r\n").expect("a head") + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {response}"))
}

#[track_caller]
fn assert_between(elapsed: Duration, low: f64, high: f64, what: &str) {
    let s = elapsed.as_secs_f64();
    assert!(s >= low && s <= high, "{what}: closed after {s:.2} s, expected {low}–{high} s");
}

#[tokio::test]
async fn slow_clients_are_cut_off_by_the_header_body_and_idle_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[("CORRAL_HEADER_READ_TIMEOUT", "1s"), ("CORRAL_BODY_READ_TIMEOUT", "1s"), ("CORRAL_IDLE_TIMEOUT", "2s")],
    )
    .await;

    // Half a request head, then nothing: closed after the header timeout, without an answer.
    let mut half = connect(&server);
    half.write_all(b"GET /health HTTP/1.1\r\nHost: corral\r\nX-Slow: ").unwrap();
    let (answer, elapsed) = read_until_closed(&mut half);
    assert_eq!(answer, "");
    assert_between(elapsed, 0.8, 4.0, "half a head");

    // A connection that never sends a byte counts as a head that never arrives.
    let mut silent = connect(&server);
    let (_, elapsed) = read_until_closed(&mut silent);
    assert_between(elapsed, 0.8, 4.0, "a silent connection");

    // A body that stops arriving: 408 in the error body, then the connection is closed.
    let mut stalled = connect(&server);
    stalled
        .write_all(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: corral\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"grant_type\": ")
        .unwrap();
    let (answer, elapsed) = read_until_closed(&mut stalled);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "request_timeout");
    assert_between(elapsed, 0.8, 4.0, "a stalled body");

    // Keep-alive: a connection in use is kept between requests that come in time ...
    let mut kept = connect(&server);
    for _ in 0..3 {
        let answer = exchange(&mut kept, "GET /health HTTP/1.1\r\nHost: corral\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        std::thread::sleep(Duration::from_millis(1200));
    }
    // ... (1.2 s apart: longer than the header timeout, shorter than the idle timeout) and
    // closed once idle for the idle timeout.
    let (answer, elapsed) = read_until_closed(&mut kept);
    assert_eq!(answer, "");
    assert_between(elapsed, 0.5, 4.0, "an idle keep-alive connection");

    // After an idle spell the next request head gets the header timeout from its first byte.
    let mut slow_second = connect(&server);
    exchange(&mut slow_second, "GET /health HTTP/1.1\r\nHost: corral\r\n\r\n");
    std::thread::sleep(Duration::from_millis(500));
    slow_second.write_all(b"GET /hea").unwrap();
    let (answer, elapsed) = read_until_closed(&mut slow_second);
    assert_eq!(answer, "");
    assert_between(elapsed, 0.8, 2.0, "a slow second head");
}

#[tokio::test]
async fn sigterm_exits_within_the_shutdown_timeout_whatever_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    // Long client timeouts, a short drain: only the drain limit can end these connections.
    let mut server = serve(
        dir.path(),
        &[
            ("CORRAL_HEADER_READ_TIMEOUT", "60s"),
            ("CORRAL_BODY_READ_TIMEOUT", "60s"),
            ("CORRAL_REQUEST_TIMEOUT", "60s"),
            ("CORRAL_IDLE_TIMEOUT", "60s"),
            ("CORRAL_SHUTDOWN_TIMEOUT", "1s"),
        ],
    )
    .await;
    let mut half = connect(&server);
    half.write_all(b"GET /health HTTP/1.1\r\nHost: corral\r\n").unwrap();
    let mut stalled = connect(&server);
    stalled
        .write_all(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: corral\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut idle = connect(&server);
    exchange(&mut idle, "GET /health HTTP/1.1\r\nHost: corral\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // The idle connection closes at once; the others when the drain limit passes.
    let (_, idle_closed) = read_until_closed(&mut idle);
    assert!(idle_closed < Duration::from_millis(900), "idle connections close at once: {idle_closed:?}");
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still running {:?} after SIGTERM", started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert_between(elapsed, 0.9, 3.5, "exit after SIGTERM");
    read_until_closed(&mut half);
    read_until_closed(&mut stalled);
}

#[tokio::test]
async fn long_targets_large_heads_and_unparsable_heads_get_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let mut stream = connect(&server);
    // 414 and 431 from the router, in the error body, on a connection that stays usable.
    let long = format!("GET /health?pad={} HTTP/1.1\r\nHost: corral\r\n\r\n", "a".repeat(10 * 1024));
    let answer = exchange(&mut stream, &long);
    assert!(answer.starts_with("HTTP/1.1 414 "), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "uri_too_long");
    let large = format!("GET /health HTTP/1.1\r\nHost: corral\r\nX-Pad: {}\r\n\r\n", "b".repeat(20 * 1024));
    let answer = exchange(&mut stream, &large);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let body = json_body(&answer);
    assert_eq!(body["error"]["code"], "headers_too_large");
    assert!(body["error"]["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    let mut many = String::from("GET /health HTTP/1.1\r\nHost: corral\r\n");
    for i in 0..110 {
        many.push_str(&format!("X-H{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(&mut stream, &many);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "headers_too_large");
    let answer = exchange(&mut stream, "GET /health HTTP/1.1\r\nHost: corral\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    // Beyond hyper's own limit (a 32 KiB head) hyper rejects the head before any route sees
    // it; the answer still carries the error body, and the connection closes.
    let mut stream = connect(&server);
    let huge = format!("GET /health HTTP/1.1\r\nHost: corral\r\nX-Pad: {}\r\n\r\n", "c".repeat(40 * 1024));
    stream.write_all(huge.as_bytes()).unwrap();
    let (answer, _) = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "headers_too_large");
    let mut stream = connect(&server);
    let huge_target = format!("GET /health?pad={} HTTP/1.1\r\nHost: corral\r\n\r\n", "d".repeat(40 * 1024));
    stream.write_all(huge_target.as_bytes()).unwrap();
    let (answer, _) = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "headers_too_large");
    // A head hyper cannot parse at all: 400 in the error body.
    let mut stream = connect(&server);
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: corral\r\nno colon here\r\n\r\n").unwrap();
    let (answer, _) = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert_eq!(json_body(&answer)["error"]["code"], "invalid_header");
}

#[test]
fn edge_settings_are_validated_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, value: &str| {
        Command::new(BIN)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("CORRAL_DATABASE_URL")
            .env(name, value)
            .arg("migrate")
            .output()
            .unwrap()
    };
    for (name, value, key) in [
        ("CORRAL_HEADER_READ_TIMEOUT", "soon", "header_read_timeout"),
        ("CORRAL_IDLE_TIMEOUT", "0s", "idle_timeout"),
        ("CORRAL_MAX_CONCURRENT_REQUESTS", "0", "max_concurrent_requests"),
        ("CORRAL_CORS_ORIGINS", "https://app.example.com/path", "cors_origins"),
    ] {
        let out = run(name, value);
        assert!(!out.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        assert!(stderr.contains(key), "{name}={value}: {stderr}");
    }
    for (name, value) in [
        ("CORRAL_SHUTDOWN_TIMEOUT", "1m 30s"),
        ("CORRAL_REQUEST_TIMEOUT", "45"),
        ("CORRAL_CORS_ORIGINS", "https://app.example.com,http://localhost:3000"),
    ] {
        let out = run(name, value);
        assert!(out.status.success(), "{name}={value}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
