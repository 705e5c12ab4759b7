//! `kill -9` durability: concurrent writers against the real `corral serve`, a SIGKILL in the
//! middle of the load, a restart on the same data, and every write the server acknowledged
//! (a 2xx received) must be there. On SQLite the file must also pass `PRAGMA
//! integrity_check`. The same for merges: killed during a stream of merges, no group is left
//! half merged and every acknowledged merge is whole. Runs on PostgreSQL too when
//! `CORRAL_TEST_DATABASE_URL` is set. Loopback only; a few seconds of load each.

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

/// One merge case: a winner and two losers, each loser with its own domain and a contact.
struct Group {
    winner: String,
    losers: Vec<String>,
    loser_domains: Vec<String>,
    loser_contacts: Vec<String>,
}

fn bare(v1_id: &serde_json::Value) -> String {
    v1_id.as_str().expect("an id").split_once('-').expect("a prefixed id").1.to_owned()
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: serde_json::Value) -> serde_json::Value {
    let r = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

async fn get(client: &reqwest::Client, url: String, token: &str) -> serde_json::Value {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Merges (docs/API.md "Merging records") are one transaction each: killed in the middle of a
/// stream of merges (with writes to the winners going on), every group is afterwards either
/// wholly merged (losers archived, their domains and contacts on the winner) or untouched, and
/// every merge the server acknowledged is wholly there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_are_all_or_nothing_under_kill_9() {
    const GROUPS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let db = corral_store::testing::fresh_database(dir.path()).await.expect("test database");
    let out = corral(dir.path(), &db).args(["token", "--tenant", "merging", "--ttl", "1h"]).output().unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut server = serve(dir.path(), &db);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let base = server.base.clone();

    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let account = |name: String, domain: String| serde_json::json!({"name": name, "domain": domain});
        let winner = post(
            &client,
            format!("{base}/api/v1/crm/accounts"),
            &token,
            account(format!("W{g}"), format!("w{g}.example")),
        )
        .await;
        let mut group =
            Group { winner: bare(&winner["id"]), losers: vec![], loser_domains: vec![], loser_contacts: vec![] };
        for l in 0..2 {
            let domain = format!("l{g}-{l}.example");
            let loser = post(
                &client,
                format!("{base}/api/v1/crm/accounts"),
                &token,
                account(format!("L{g}-{l}"), domain.clone()),
            )
            .await;
            let contact = post(
                &client,
                format!("{base}/api/v1/crm/contacts"),
                &token,
                serde_json::json!({"first_name": format!("C{g}-{l}"), "account_id": loser["id"]}),
            )
            .await;
            group.losers.push(bare(&loser["id"]));
            group.loser_domains.push(domain);
            group.loser_contacts.push(bare(&contact["id"]));
        }
        groups.push(group);
    }
    let groups = Arc::new(groups);

    // Merges one group after another, recording the acknowledged ones; a writer patches the
    // winners meanwhile.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let merger = {
        let (client, base, token, groups, acked) =
            (client.clone(), base.clone(), token.clone(), groups.clone(), acked.clone());
        tokio::spawn(async move {
            for (g, group) in groups.iter().enumerate() {
                let body = serde_json::json!({"winner": group.winner, "losers": group.losers});
                let Ok(r) =
                    client.post(format!("{base}/api/v2/account/_merge")).bearer_auth(&token).json(&body).send().await
                else {
                    break;
                };
                let status = r.status();
                let Ok(doc) = r.json::<serde_json::Value>().await else { break };
                assert!(status.is_success(), "merge {g}: {status} {doc}");
                acked.lock().unwrap().push(g);
            }
        })
    };
    let patcher = {
        let (client, base, token, groups, stop) =
            (client.clone(), base.clone(), token.clone(), groups.clone(), stop.clone());
        tokio::spawn(async move {
            let mut step = 0;
            while !stop.load(Ordering::Relaxed) {
                step += 1;
                let winner = &groups[step % GROUPS].winner;
                let body = serde_json::json!({"employee_count": step});
                if client
                    .patch(format!("{base}/api/v1/crm/accounts/acc-{winner}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    // SIGKILL once a third of the merges are acknowledged: the next one is under way.
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() < GROUPS / 3 {
        assert!(started.elapsed() < Duration::from_secs(120), "merges too slow to test");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    merger.await.unwrap();
    patcher.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    if let Some(path) = db.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    let server = serve(dir.path(), &db);
    let base = server.base.clone();
    let mut merged = 0;
    for (g, group) in groups.iter().enumerate() {
        let winner = get(&client, format!("{base}/api/v2/account/{}", group.winner), &token).await;
        let winner_domains: Vec<String> = winner["data"]["attributes"]["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["value"]["domain_name"].as_str().unwrap().to_owned())
            .collect();
        let mut archived = Vec::new();
        let mut contacts_on_winner = Vec::new();
        for (l, loser) in group.losers.iter().enumerate() {
            let doc = get(&client, format!("{base}/api/v2/account/{loser}?include_archived=true"), &token).await;
            archived.push(!doc["data"]["attributes"]["archived_at"]["value"].is_null());
            let related = get(
                &client,
                format!("{base}/api/v2/contact/{}/relationship/accounts", group.loser_contacts[l]),
                &token,
            )
            .await;
            let ids: Vec<&str> =
                related["items"].as_array().unwrap().iter().map(|i| i["related_record_id"].as_str().unwrap()).collect();
            contacts_on_winner.push(ids == [group.winner.as_str()]);
            if !archived[l] {
                assert_eq!(ids, [loser.as_str()], "group {g}: an unmerged loser's contact stays with it");
            }
        }
        let domains_moved: Vec<bool> = group.loser_domains.iter().map(|d| winner_domains.contains(d)).collect();
        let whole = archived.iter().chain(&contacts_on_winner).chain(&domains_moved).all(|x| *x);
        let none = !archived.iter().chain(&contacts_on_winner).chain(&domains_moved).any(|x| *x);
        assert!(
            whole || none,
            "group {g} is half merged: archived {archived:?}, contacts moved {contacts_on_winner:?}, domains moved {domains_moved:?}"
        );
        if acked.contains(&g) {
            assert!(whole, "group {g}: an acknowledged merge is gone");
        }
        merged += usize::from(whole);
    }
    eprintln!("kill -9 during merges: {} acknowledged, {merged} merged after restart, none half merged", acked.len());
}
