//! The real `corral` binary: demo server over loopback, CLI-minted tokens and keys, config
//! layering, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_corral");

fn corral(data_dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data_dir)
        .env_remove("CORRAL_DATABASE_URL")
        .env_remove("CORRAL_JWT_SECRET")
        .env("CORRAL_LOG", "warn");
    c
}

/// Runs a CLI command to completion and returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("corral runs");
    assert!(out.status.success(), "corral failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

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

fn serve(data_dir: &Path, demo: bool) -> Server {
    let mut cmd = corral(data_dir);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null());
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd.spawn().expect("spawn corral serve");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let expected = if demo { 8 } else { 1 };
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
    let mut server = serve(dir.path(), true);
    let token = server.stdout[3].clone();
    let curl = server.stdout.iter().find(|l| l.contains("curl")).expect("a curl line").clone();
    assert!(curl.contains(&token) && curl.contains(&server.base));
    let client = reqwest::Client::new();
    let r =
        client.get(format!("{}/api/v1/crm/accounts?limit=50", server.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 7);
    assert!(body["data"].as_array().unwrap().iter().all(|d| d["tenant_id"] == "demo"));
    // The secret was generated once into the data dir, private to the owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt.secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // `corral token` reads the same secret.
    let cli_token =
        run(corral(dir.path()).args(["token", "--tenant", "demo", "--scope", "accounts:read"])).trim().to_owned();
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
    let server = serve(dir.path(), true);
    let r = client
        .get(format!("{}/api/v1/crm/accounts?limit=50", server.base))
        .bearer_auth(&server.stdout[3])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn cli_api_keys_and_users_work_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    run(corral(dir.path()).arg("migrate"));
    let user = run(corral(dir.path()).args([
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
    let key = run(corral(dir.path()).args([
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
    let server = serve(dir.path(), false);
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
    let listing = run(corral(dir.path()).args(["api-key", "list", "--tenant", "acme"]));
    let id = listing.split_whitespace().next().unwrap().to_owned();
    assert!(listing.contains("active") && !listing.contains(&key));
    run(corral(dir.path()).args(["api-key", "revoke", &id, "--tenant", "acme"]));
    let r = client.get(format!("{}/api/v1/crm/accounts", server.base)).header("x-api-key", &key).send().await.unwrap();
    assert_eq!(r.status(), 401);
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
    let out = Command::new(BIN).arg("--config").arg(dir.path().join("missing.toml")).arg("migrate").output().unwrap();
    assert!(!out.status.success());
}
