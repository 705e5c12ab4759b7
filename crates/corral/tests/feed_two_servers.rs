//! Change-feed completeness under concurrency across two real `corral serve` processes on one
//! database (one SQLite file, or one PostgreSQL schema when `CORRAL_TEST_DATABASE_URL` is set).
//!
//! 16 writers (8 per server) create and patch v1 accounts for about two seconds, recording
//! every acknowledged write (record id, version). Meanwhile two readers follow
//! `GET /api/v2/_changes` page by page, alternating between the two servers (so each cursor is
//! also resumed on the other process), and after the load read on until caught up. It proves:
//! every acknowledged write appears in the feed exactly once; no event id appears twice; no
//! event appears for a write that was not made; per record the versions arrive in increasing
//! order; and the order is stable: both readers saw the same sequence, and a full read from
//! the start (no `after`) on each server returns that same sequence again. Any refused write
//! (a busy or locked database between the two processes included) fails the test.
//! Loopback only; bounded (the load stops by itself, the readers give up after a deadline).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

use support::{Server, corral};

/// Writers per server.
const WRITERS_PER_SERVER: usize = 8;
const LOAD: Duration = Duration::from_secs(2);
/// How long the readers may take to catch up once every write has been acknowledged.
const CATCH_UP: Duration = Duration::from_secs(30);

fn serve(dir: &Path, db: &str) -> Server {
    let mut cmd = corral(dir, db);
    // 16 writers outpace the default per-credential limit; this test is about the feed.
    cmd.env("CORRAL_RATE_LIMIT_PER_SECOND", "0");
    support::serve(cmd)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// One acknowledged write: the record (bare uuid, as the v2 feed spells it) at this version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Write {
    record_id: String,
    version: i64,
}

/// Creates and patches its own accounts on `base` until `stop`, returning every acknowledged
/// write. Every write must succeed: a refusal (e.g. the database busy or locked because the
/// other process holds the write lock) is a finding, not noise.
async fn writer(n: usize, base: String, token: String, stop: Arc<AtomicBool>) -> Vec<Write> {
    let client = client();
    let mut acked = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut versions: HashMap<String, i64> = HashMap::new();
    let mut step = 0i64;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        // Two patches for each create, round-robin over this writer's accounts.
        let creating = step % 3 == 1 || ids.is_empty();
        let request = if creating {
            let body = serde_json::json!({"name": format!("w{n}-{step}"), "employee_count": step});
            client.post(format!("{base}/api/v1/crm/accounts")).json(&body)
        } else {
            let id = &ids[(step as usize) % ids.len()];
            let body = serde_json::json!({"employee_count": step});
            client.patch(format!("{base}/api/v1/crm/accounts/acc-{id}")).json(&body)
        };
        let response = request
            .bearer_auth(&token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("writer {n} on {base}: request failed: {e}"));
        let status = response.status();
        let doc: Value =
            response.json().await.unwrap_or_else(|e| panic!("writer {n} on {base}: {status}, unreadable body: {e}"));
        assert!(status.is_success(), "writer {n} on {base}: write refused: {status} {doc}");
        let v1_id = doc["id"].as_str().expect("an id");
        let record_id = v1_id.strip_prefix("acc-").unwrap_or_else(|| panic!("an acc- id: {v1_id}")).to_owned();
        let version = doc["version"].as_i64().expect("a version");
        // Only this writer touches its accounts: each write moves the version by one.
        let expected = versions.get(&record_id).map_or(1, |v| v + 1);
        assert_eq!(version, expected, "writer {n}: {record_id} acknowledged at version {version}");
        assert_eq!(doc["employee_count"].as_i64(), Some(step));
        if creating {
            ids.push(record_id.clone());
        }
        versions.insert(record_id.clone(), version);
        acked.push(Write { record_id, version });
    }
    acked
}

/// One page of the feed from `base`: its events and `next_cursor`.
async fn page(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<Value>, String) {
    let mut url = format!("{base}/api/v2/_changes?limit={limit}");
    if let Some(cursor) = after {
        url.push_str(&format!("&after={cursor}"));
    }
    let response =
        client.get(&url).bearer_auth(token).send().await.unwrap_or_else(|e| panic!("GET {url}: request failed: {e}"));
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("GET {url}: {status}, unreadable body: {e}"));
    assert_eq!(status, 200, "GET {url}: {body}");
    let events = body["data"].as_array().unwrap_or_else(|| panic!("GET {url}: no data: {body}")).clone();
    assert!(events.len() <= limit, "GET {url}: {} events over the limit", events.len());
    let next = body["next_cursor"].as_str().unwrap_or_else(|| panic!("GET {url}: no next_cursor: {body}")).to_owned();
    (events, next)
}

/// What one reader saw.
struct Seen {
    events: Vec<Value>,
    /// Events received before the last write was acknowledged.
    during_load: usize,
    pages: usize,
}

/// Follows the feed from the start, alternating between `bases` page by page (starting with
/// `bases[first]`), until every acknowledged write has come and a read on each server then
/// finds nothing more, or until [`CATCH_UP`] after the writers are done. `target` is 0 while
/// the writers run, then the number of acknowledged writes.
async fn reader(bases: [String; 2], first: usize, limit: usize, token: String, target: Arc<AtomicUsize>) -> Seen {
    let client = client();
    let mut cursor: Option<String> = None;
    let mut seen = Seen { events: Vec::new(), during_load: 0, pages: 0 };
    let mut turn = first;
    let mut empty_in_a_row = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        let target = target.load(Ordering::SeqCst);
        let base = &bases[turn % 2];
        turn += 1;
        let (events, next) = page(&client, base, &token, cursor.as_deref(), limit).await;
        seen.pages += 1;
        if events.is_empty() {
            // Caught up, the cursor stays where it was.
            if let Some(previous) = &cursor {
                assert_eq!(&next, previous, "an empty page from {base} moved the cursor");
            }
        }
        cursor = Some(next);
        if target == 0 {
            seen.during_load += events.len();
        }
        if !events.is_empty() {
            empty_in_a_row = 0;
            seen.events.extend(events);
            continue;
        }
        empty_in_a_row += 1;
        if target > 0 {
            // Done when every acknowledged write has come and both servers then answered an
            // empty page (duplicates would make the count come early; they are checked after).
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + CATCH_UP);
            if (seen.events.len() >= target && empty_in_a_row >= 2) || Instant::now() > deadline {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The whole feed from the start (no `after`) on `base`, until a page comes back empty.
async fn full_read(base: &str, token: &str) -> Vec<Value> {
    let client = client();
    let (mut all, mut cursor) = page(&client, base, token, None, 1000).await;
    loop {
        let (events, next) = page(&client, base, token, Some(&cursor), 1000).await;
        if events.is_empty() {
            return all;
        }
        all.extend(events);
        cursor = next;
    }
}

fn event_ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().expect("an event id").to_owned()).collect()
}

/// The first position where two sequences of event ids differ, for the failure message.
fn first_difference(a: &[String], b: &[String]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at {i}: {} vs {} (lengths {} and {})", a[i], b[i], a.len(), b.len()),
        None => format!("one is a prefix of the other (lengths {} and {})", a.len(), b.len()),
    }
}

/// Checks one reader's (or one full read's) events against the acknowledged writes.
fn check_events(who: &str, events: &[Value], acked: &HashSet<Write>) {
    let mut ids = HashSet::new();
    let mut counts: HashMap<Write, usize> = HashMap::new();
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for e in events {
        let id = e["id"].as_str().unwrap_or_else(|| panic!("{who}: an event without id: {e}"));
        assert!(ids.insert(id), "{who}: event id {id} appears twice");
        assert_eq!(e["record_type"], "account", "{who}: {e}");
        let record_id = e["record_id"].as_str().unwrap_or_else(|| panic!("{who}: no record_id: {e}"));
        let version = e["version"].as_i64().unwrap_or_else(|| panic!("{who}: no version: {e}"));
        let write = Write { record_id: record_id.to_owned(), version };
        assert!(acked.contains(&write), "{who}: event for a write that was not made: {e}");
        let action = if version == 1 { "created" } else { "updated" };
        assert_eq!(e["action"], action, "{who}: {e}");
        *counts.entry(write).or_default() += 1;
        if let Some(previous) = last.insert(record_id, version) {
            assert!(previous < version, "{who}: {record_id} version {version} after version {previous}");
        }
    }
    let mut missing: Vec<&Write> = acked.iter().filter(|w| !counts.contains_key(*w)).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{who}: {} of {} acknowledged writes missing from the feed ({} events read), e.g. {:?}",
        missing.len(),
        acked.len(),
        events.len(),
        &missing[..missing.len().min(10)]
    );
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{who}: writes seen more than once: {twice:?}");
    assert_eq!(events.len(), acked.len(), "{who}: events beyond the acknowledged writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_is_complete_and_stable_under_16_writers_on_two_servers() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = support::database(dir.path()).await;
    let out = corral(dir.path(), &db).args(["token", "--tenant", "feed", "--ttl", "1h"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // Both servers share the database and the data dir (so the token's secret, and the
    // cursors' seal, are the same on each). Started one after the other: each migrates first.
    let servers = [serve(dir.path(), &db), serve(dir.path(), &db)];
    let bases = [servers[0].base.clone(), servers[1].base.clone()];
    assert_ne!(bases[0], bases[1]);

    let target = Arc::new(AtomicUsize::new(0));
    // Two readers, each alternating between the servers, starting on different ones, with
    // page sizes that split the load differently.
    let readers: Vec<_> = [(0, 100), (1, 23)]
        .into_iter()
        .map(|(first, limit)| tokio::spawn(reader(bases.clone(), first, limit, token.clone(), target.clone())))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2 * WRITERS_PER_SERVER)
        .map(|n| tokio::spawn(writer(n, bases[n % 2].clone(), token.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(LOAD).await;
    stop.store(true, Ordering::Relaxed);
    let mut per_server = [0usize; 2];
    let mut acked: Vec<Write> = Vec::new();
    for (n, w) in writers.into_iter().enumerate() {
        let writes = w.await.unwrap();
        per_server[n % 2] += writes.len();
        acked.extend(writes);
    }
    let load_done = started.elapsed();
    let records = acked.iter().map(|w| &w.record_id).collect::<HashSet<_>>().len();
    let acked_set: HashSet<Write> = acked.iter().cloned().collect();
    assert_eq!(acked_set.len(), acked.len(), "a write acknowledged twice");
    assert!(
        per_server.iter().all(|n| *n >= 25),
        "too little load to prove anything: {per_server:?} writes acknowledged per server"
    );

    // Every write is acknowledged: the readers read on until they have caught up.
    target.store(acked.len(), Ordering::SeqCst);
    let mut seen = Vec::new();
    for r in readers {
        seen.push(r.await.unwrap());
    }
    for (i, s) in seen.iter().enumerate() {
        check_events(&format!("reader {i}"), &s.events, &acked_set);
    }
    assert!(seen.iter().all(|s| s.during_load > 0), "the readers read nothing while the writers wrote");
    let incremental = event_ids(&seen[0].events);
    let other = event_ids(&seen[1].events);
    assert!(incremental == other, "the two readers saw different orders: {}", first_difference(&incremental, &other));

    // A second full read from the start, on each server, gives the same sequence.
    for base in &bases {
        let all = full_read(base, &token).await;
        check_events(&format!("full read on {base}"), &all, &acked_set);
        let ids = event_ids(&all);
        assert!(ids == incremental, "the feed order on {base} is not stable: {}", first_difference(&ids, &incremental));
        assert_eq!(all, seen[0].events, "full read on {base}: the same events with other contents");
    }

    let backend = if db.starts_with("sqlite://") { "SQLite" } else { "PostgreSQL" };
    eprintln!(
        "feed over two servers ({backend}): {} acknowledged writes ({} + {} per server) on {records} accounts, \
         {} events in the feed, each once and in a stable order; readers: {} + {} pages, {} + {} events during the \
         load; load {:.1}s, total {:.1}s",
        acked.len(),
        per_server[0],
        per_server[1],
        incremental.len(),
        seen[0].pages,
        seen[1].pages,
        seen[0].during_load,
        seen[1].during_load,
        load_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}
