//! What the tests of the real `corral` binary share: the binary, a fresh database per test, a
//! `corral` command that ignores the caller's environment, and a `corral serve` child on an
//! ephemeral loopback port. Each test file includes this module (`mod support;`) and uses
//! what it needs, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_corral");

/// A fresh database for one test: SQLite in `dir`, or a new PostgreSQL schema when
/// `CORRAL_TEST_DATABASE_URL` is set.
pub async fn database(dir: &Path) -> String {
    corral_store::testing::fresh_database(dir).await.expect("test database")
}

/// `corral` with `dir` as data dir (secrets) and `db` as database; settings a developer may
/// have exported are removed so every test starts from the defaults.
pub fn corral(dir: &Path, db: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(dir).arg("--database-url").arg(db);
    for name in [
        "CORRAL_DATABASE_URL",
        "CORRAL_JWT_SECRET",
        "CORRAL_RATE_LIMIT_PER_SECOND",
        "CORRAL_METRICS_LISTEN",
        "CORRAL_METRICS_TOKEN",
        "CORRAL_SERVER",
        "CORRAL_TOKEN",
    ] {
        c.env_remove(name);
    }
    c.env("CORRAL_LOG", "warn");
    c
}

/// Runs a command to completion and returns its stdout (the command must succeed).
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("corral runs");
    assert!(out.status.success(), "corral failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A `corral serve` child; killed on drop if still running.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd serve` on an ephemeral 127.0.0.1 port and waits for the address it prints.
pub fn serve(mut cmd: Command) -> Server {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn corral serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.split_whitespace().find(|w| w.starts_with("http://")).expect("address printed").to_owned();
    Server { child, base }
}
