//! The real `corral` binary: demo server over loopback, CLI-minted tokens and keys, config
//! layering, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

use support::{BIN, corral, database, run};

/// A `corral serve` child on an ephemeral port; killed on drop if still running.
struct Server {
    child: Child,
    base: String,
    stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn serve(dir: &Path, db: &str, demo: bool) -> Server {
    let mut cmd = corral(dir, db);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null());
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd.spawn().expect("spawn corral serve");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let expected = if demo { 9 } else { 1 };
    for _ in 0..expected {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_owned());
    }
    let base = lines[0].split_whitespace().find(|w| w.starts_with("http://")).expect("address printed").to_owned();
    Server { child, base, stdout: lines }
}

fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("corral did not stop on SIGTERM");
}

#[tokio::test]
async fn demo_prints_a_token_and_curl_that_work_then_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let mut server = serve(dir.path(), &db, true);
    let token = server.stdout[3].clone();
    let curl = server.stdout.iter().find(|l| l.contains("curl")).expect("a curl line").clone();
    assert!(curl.contains(&token) && curl.contains(&server.base));
    let client = reqwest::Client::new();
    let r =
        client.get(format!("{}/api/v1/crm/accounts?limit=50", server.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The built-in rate limit, per credential and per tenant, is reported on every call.
    assert_eq!(r.headers()["ratelimit-policy"], "\"credential\";q=100;w=1, \"tenant\";q=100;w=1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 7);
    assert!(body["data"].as_array().unwrap().iter().all(|d| d["tenant_id"] == "demo"));
    let seats = body["data"].as_array().unwrap().iter().filter(|d| d["custom_fields"]["seats"].is_number()).count();
    assert_eq!(seats, 4, "the custom `seats` attribute is seeded with values");
    // Contacts too, each with an email at its primary account's domain.
    let contact_curl = server.stdout.iter().find(|l| l.contains("/api/v1/crm/contacts")).expect("a contacts curl");
    assert!(contact_curl.contains(&token));
    let contacts = demo_contacts(&client, &server).await;
    assert_eq!(contacts.len(), 13);
    let accounts = body["data"].as_array().unwrap();
    for c in &contacts {
        let account = accounts.iter().find(|a| a["id"] == c["account_id"]).expect("a primary account");
        let domain = c["email"].as_str().unwrap().split_once('@').unwrap().1;
        assert_eq!(account["domain"], domain, "{c}");
    }
    // The secret was generated once into the data dir, private to the owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt.secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // `corral token` reads the same secret.
    let cli_token =
        run(corral(dir.path(), &db).args(["token", "--tenant", "demo", "--scope", "accounts:read"])).trim().to_owned();
    let r = client.get(format!("{}/api/v1/crm/accounts", server.base)).bearer_auth(&cli_token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{}/api/v1/crm/accounts", server.base))
        .bearer_auth(&cli_token)
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // SIGTERM: clean exit 0.
    let status = terminate(&mut server);
    assert!(status.success(), "{status:?}");
    // A second demo start does not seed twice.
    let server = serve(dir.path(), &db, true);
    let r = client
        .get(format!("{}/api/v1/crm/accounts?limit=50", server.base))
        .bearer_auth(&server.stdout[3])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 7);
    assert_eq!(demo_contacts(&client, &server).await.len(), 13);
}

/// The demo tenant's contacts, read with the token the server printed.
async fn demo_contacts(client: &reqwest::Client, server: &Server) -> Vec<serde_json::Value> {
    let r = client
        .get(format!("{}/api/v1/crm/contacts?limit=50", server.base))
        .bearer_auth(&server.stdout[3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn cli_api_keys_and_users_work_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    run(corral(dir.path(), &db).arg("migrate"));
    let user = run(corral(dir.path(), &db).args([
        "user",
        "add",
        "--tenant",
        "acme",
        "--email",
        "owner@acme.com",
        "--name",
        "Owner",
    ]))
    .trim()
    .to_owned();
    assert!(user.starts_with("usr-"));
    let key = run(corral(dir.path(), &db).args([
        "api-key",
        "create",
        "--tenant",
        "acme",
        "--app",
        "sync",
        "--scope",
        "accounts:write",
    ]))
    .trim()
    .to_owned();
    assert!(key.starts_with("crl_"));
    let server = serve(dir.path(), &db, false);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/crm/accounts", server.base))
        .header("x-api-key", &key)
        .json(&serde_json::json!({"name": "Acme", "owner_id": user}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["app_id"], "sync");
    let listing = run(corral(dir.path(), &db).args(["api-key", "list", "--tenant", "acme"]));
    let id = listing.split_whitespace().next().unwrap().to_owned();
    assert!(listing.contains("active") && !listing.contains(&key));
    run(corral(dir.path(), &db).args(["api-key", "revoke", &id, "--tenant", "acme"]));
    let r = client.get(format!("{}/api/v1/crm/accounts", server.base)).header("x-api-key", &key).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

/// `CORRAL_RATE_LIMIT_PER_SECOND` sets the server's default limit: at 1 a second, a second
/// quick request of one token is refused with 429 and Retry-After; 0 turns the default off.
#[tokio::test]
async fn serve_limits_requests_at_the_configured_rate() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    run(corral(dir.path(), &db).arg("migrate"));
    let token = run(corral(dir.path(), &db).args(["token", "--tenant", "acme"])).trim().to_owned();
    let client = reqwest::Client::new();
    let start = |rate: &str| {
        let mut cmd = corral(dir.path(), &db);
        cmd.env("CORRAL_RATE_LIMIT_PER_SECOND", rate)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn corral serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.split_whitespace().find(|w| w.starts_with("http://")).expect("address printed").to_owned();
        Server { child, base, stdout: vec![line] }
    };
    let server = start("1");
    let mut limited = None;
    for _ in 0..50 {
        let r = client.get(format!("{}/api/v1/crm/accounts", server.base)).bearer_auth(&token).send().await.unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-policy"], "\"credential\";q=1;w=1, \"tenant\";q=1;w=1");
    }
    let r = limited.expect("rate limited");
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Health is never limited.
    for _ in 0..5 {
        assert_eq!(client.get(format!("{}/health", server.base)).send().await.unwrap().status(), 200);
    }
    drop(server);
    let server = start("0");
    for _ in 0..5 {
        let r = client.get(format!("{}/api/v1/crm/accounts", server.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
}

#[test]
fn config_layers_defaults_file_env_flags_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let (file_dir, env_dir, flag_dir) =
        (dir.path().join("from-file"), dir.path().join("from-env"), dir.path().join("from-flag"));
    let toml = dir.path().join("corral.toml");
    std::fs::write(&toml, format!("data_dir = {:?}\nlog = \"warn\"\n", file_dir.to_str().unwrap())).unwrap();
    let base = || {
        let mut c = Command::new(BIN);
        c.env_remove("CORRAL_DATABASE_URL").env_remove("CORRAL_DATA_DIR").arg("--config").arg(&toml);
        c
    };
    run(base().arg("migrate"));
    assert!(file_dir.join("corral.db").exists(), "file beats defaults");
    run(base().env("CORRAL_DATA_DIR", &env_dir).arg("migrate"));
    assert!(env_dir.join("corral.db").exists(), "env beats file");
    run(base().env("CORRAL_DATA_DIR", &env_dir).arg("--data-dir").arg(&flag_dir).arg("migrate"));
    assert!(flag_dir.join("corral.db").exists(), "flag beats env");
    // A bad value names itself.
    let out = base().env("CORRAL_LOG_FORMAT", "xml").arg("migrate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_format"));
    let out = base().env("CORRAL_RATE_LIMIT_PER_SECOND", "2000000").arg("migrate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate_limit_per_second"));
    let out = Command::new(BIN).arg("--config").arg(dir.path().join("missing.toml")).arg("migrate").output().unwrap();
    assert!(!out.status.success());
}

/// Two `corral serve` processes on one database (one PostgreSQL, or one SQLite file) receive
/// interleaved writes: nothing is lost, versions count every write, one domain has one owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_agree() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    run(corral(dir.path(), &db).arg("migrate"));
    let a = serve(dir.path(), &db, false);
    let b = serve(dir.path(), &db, false);
    let token = run(corral(dir.path(), &db).args(["token", "--tenant", "acme"])).trim().to_owned();
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/crm/accounts", a.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Shared"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let fields =
        ["legal_name", "industry", "sub_industry", "phone", "lead_source", "health_score", "description", "source"];
    let mut tasks = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
        let (client, token, id, field) = (client.clone(), token.clone(), id.clone(), field.to_string());
        tasks.push(tokio::spawn(async move {
            for round in 0..3 {
                let r = client
                    .patch(format!("{base}/api/v1/crm/accounts/{id}"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ field.clone(): format!("{field}-{round}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let doc: serde_json::Value = client
        .get(format!("{}/api/v1/crm/accounts/{id}", b.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in fields {
        assert_eq!(doc[field], format!("{field}-2"), "{field}");
    }
    assert_eq!(doc["version"], 1 + 3 * fields.len() as i64);

    let mut claims = Vec::new();
    for i in 0..16 {
        let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
        let (client, token) = (client.clone(), token.clone());
        claims.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/crm/accounts"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"name": format!("c{i}"), "domain": "contested.example"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for c in claims {
        statuses.push(c.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");

    // _assert on one new key through both servers: one creates, the others update it.
    let mut asserts = Vec::new();
    for i in 0..16 {
        let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
        let (client, token) = (client.clone(), token.clone());
        asserts.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v2/account/_assert"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"match": {"domain_name": "asserted.example"}, "attributes": {"description": format!("w{i}")}}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["data"]["id"].as_str().map(str::to_owned))
        }));
    }
    let mut results = Vec::new();
    for t in asserts {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 15, "{results:?}");
    assert_eq!(results.iter().map(|(_, id)| id.clone()).collect::<std::collections::HashSet<_>>().len(), 1);
}

/// A private PostgreSQL cluster for the outage test, so stopping it disturbs no other test.
struct Cluster {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn pg(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.parent().unwrap().display()
        );
        let log = self.data.parent().unwrap().join("server.log");
        let status = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(log)
            .args(["-w", "-o", &opts, "start"])
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start");
    }

    fn stop(&self) {
        let status = self.pg("pg_ctl").arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]).status().unwrap();
        assert!(status.success(), "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://corral@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg("pg_ctl").arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).output();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn new_cluster(bin: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap().success());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cluster = Cluster { bin: bin.into(), data, port, _dir: dir };
    let out = cluster.pg("initdb").arg("-D").arg(&cluster.data).args(["-A", "trust", "-U", "corral"]).output().unwrap();
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    cluster.start();
    cluster
}

async fn status_of(client: &reqwest::Client, url: &str, token: &str) -> (u16, serde_json::Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// PostgreSQL stops mid-test: `/ready` and API calls answer 503 `unavailable` promptly (no
/// 500, no hang); when it comes back, Corral serves again without a restart. Needs the
/// PostgreSQL server binaries (`PG_BIN`, set by `scripts/pg`); runs whenever the suite runs
/// on PostgreSQL.
#[tokio::test]
async fn database_outage_answers_503_and_recovers_by_itself() {
    if corral_store::testing::postgres_url().is_none() {
        eprintln!("skipped: the suite is running on SQLite (no CORRAL_TEST_DATABASE_URL)");
        return;
    }
    // scripts/pg exports PG_BIN; otherwise take Debian's newest server binaries.
    let bin = std::env::var("PG_BIN").ok().or_else(|| {
        let mut dirs: Vec<_> =
            std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
        dirs.sort();
        dirs.pop().filter(|d| d.join("initdb").exists()).map(|d| d.display().to_string())
    });
    let Some(bin) = bin else {
        panic!("testing on PostgreSQL needs its server binaries for this test: set PG_BIN or install postgresql");
    };
    let cluster = new_cluster(&bin);
    let dir = tempfile::tempdir().unwrap();
    let db = cluster.url();
    let server = serve(dir.path(), &db, false);
    let token = run(corral(dir.path(), &db).args(["token", "--tenant", "acme"])).trim().to_owned();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/crm/accounts", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Survivor"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = format!("{}/api/v1/crm/accounts/{}", server.base, created["id"].as_str().unwrap());

    cluster.stop();
    for url in [format!("{}/ready", server.base), account.clone(), format!("{}/api/v1/crm/accounts", server.base)] {
        let started = std::time::Instant::now();
        let (status, body) = status_of(&client, &url, &token).await;
        assert_eq!(status, 503, "{url}: {body}");
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(started.elapsed() < Duration::from_secs(10), "503 must come promptly");
    }
    let r = client
        .post(format!("{}/api/v1/crm/accounts", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    cluster.start();
    let mut ready = false;
    for _ in 0..60 {
        if status_of(&client, &format!("{}/ready", server.base), &token).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "Corral did not recover after PostgreSQL came back");
    let (status, body) = status_of(&client, &account, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Survivor");
}
