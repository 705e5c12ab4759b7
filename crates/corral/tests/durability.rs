//! `kill -9` durability: concurrent writers against the real `corral serve`, a SIGKILL in the
//! middle of the load, a restart on the same data, and every write the server acknowledged
//! (a 2xx received) must be there. On SQLite the file must also pass `PRAGMA
//! integrity_check`. Runs on PostgreSQL too when `CORRAL_TEST_DATABASE_URL` is set.
//! Loopback only; about two seconds of load.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod support;

use support::{Server, corral};

const WRITERS: usize = 8;
const LOAD: Duration = Duration::from_secs(2);

fn serve(dir: &Path, db: &str) -> Server {
    let mut cmd = corral(dir, db);
    // The writers outpace the default per-credential limit; this test is about the disk.
    cmd.env("CORRAL_RATE_LIMIT_PER_SECOND", "0");
    support::serve(cmd)
}

/// What the server acknowledged for one account: it exists, at least at this version, with
/// `employee_count` at least this (each writer only raises its own accounts' counts).
#[derive(Debug, Clone, Copy)]
struct Acked {
    version: i64,
    employee_count: i64,
}

/// Creates and patches accounts until `stop`, recording every acknowledged write. Errors
/// (refused connections once the server is dead) end the loop.
async fn writer(n: usize, base: String, token: String, stop: Arc<AtomicBool>) -> HashMap<String, Acked> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut acked: HashMap<String, Acked> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    let mut step = 0i64;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        // Two patches for each create, round-robin over this writer's accounts.
        let result = if step % 3 == 1 || ids.is_empty() {
            let body = serde_json::json!({"name": format!("w{n}-{step}"), "employee_count": step});
            client.post(format!("{base}/api/v1/crm/accounts")).bearer_auth(&token).json(&body).send().await
        } else {
            let id = &ids[(step as usize) % ids.len()];
            let body = serde_json::json!({"employee_count": step});
            client.patch(format!("{base}/api/v1/crm/accounts/{id}")).bearer_auth(&token).json(&body).send().await
        };
        let Ok(response) = result else { break };
        let status = response.status();
        // Acknowledged means the whole response arrived.
        let Ok(doc) = response.json::<serde_json::Value>().await else { break };
        assert!(status.is_success(), "writer {n}: {status} {doc}");
        let id = doc["id"].as_str().expect("an id").to_owned();
        let ack = Acked {
            version: doc["version"].as_i64().expect("a version"),
            employee_count: doc["employee_count"].as_i64().expect("a count"),
        };
        assert_eq!(ack.employee_count, step);
        if !acked.contains_key(&id) {
            ids.push(id.clone());
        }
        acked.insert(id, ack);
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = corral_store::testing::fresh_database(dir.path()).await.expect("test database");
    let out = corral(dir.path(), &db).args(["token", "--tenant", "durable", "--ttl", "1h"]).output().unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mut server = serve(dir.path(), &db);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..WRITERS).map(|n| tokio::spawn(writer(n, server.base.clone(), token.clone(), stop.clone()))).collect();
    tokio::time::sleep(LOAD).await;
    // SIGKILL while the writers are mid-request: no shutdown, no flush, no checkpoint.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked: HashMap<String, Acked> = HashMap::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let writes: i64 = acked.values().map(|a| a.version).sum();
    assert!(acked.len() >= WRITERS && writes >= 50, "too little load to prove anything: {} accounts", acked.len());

    if let Some(path) = db.strip_prefix("sqlite://") {
        // Opening the file recovers the WAL the way the server will.
        let conn = rusqlite::Connection::open(path).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    let server = serve(dir.path(), &db);
    let client = reqwest::Client::new();
    for (id, ack) in &acked {
        let r =
            client.get(format!("{}/api/v1/crm/accounts/{id}", server.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged account {id} is gone");
        let doc: serde_json::Value = r.json().await.unwrap();
        let (version, count) = (doc["version"].as_i64().unwrap(), doc["employee_count"].as_i64().unwrap());
        assert!(version >= ack.version, "{id}: version {version} < acknowledged {}", ack.version);
        assert!(count >= ack.employee_count, "{id}: employee_count {count} < acknowledged {}", ack.employee_count);
    }
    // And the restarted server takes writes again.
    let r = client
        .post(format!("{}/api/v1/crm/accounts", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "after the crash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    eprintln!("kill -9: {} accounts, {writes} acknowledged writes, all present after restart", acked.len());
}
