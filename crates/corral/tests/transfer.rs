//! `corral import` / `corral export` and the streaming `_bulk` route, through the real binary:
//! CSV edge cases against the local database, and a `kill -9` of the server mid-import that
//! loses no acknowledged line and resumes by running the import again.

use serde_json::{Value, json};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

mod support;

use support::{Server, corral, database, run};

fn serve(dir: &Path, db: &str) -> Server {
    support::serve(corral(dir, db))
}

fn read_rejects(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
}

#[tokio::test]
async fn csv_import_handles_quotes_newlines_bom_and_empty_cells_and_reruns_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let file = dir.path().join("accounts.csv");
    let csv = "\u{feff}name,domain,industry,employee_count,tags,description\r\n\
               \"Acme, Inc.\",acme.com,software,12,vip;partner,\"Line one\nline \"\"two\"\"\"\r\n\
               \"Globex \"\"Big\"\" Co\",GLOBEX.com,,,,\r\n\
               Initech,initech.com,hardware,twelve,,\r\n\
               Bad Row,bad.com\r\n\
               Hooli,hooli.com,,7,,\r\n";
    std::fs::write(&file, csv).unwrap();
    let import = || {
        let mut c = corral(dir.path(), &db);
        c.arg("import").arg(&file).args(["--tenant", "t1", "--type", "account"]);
        run(&mut c)
    };
    let out = import();
    assert!(out.contains("5 rows: 3 created, 0 updated, 2 rejected"), "{out}");
    let rejects = read_rejects(&dir.path().join("accounts.csv.rejects.csv"));
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    // The quoted newline makes Acme lines 2-3: Initech starts on line 5.
    assert_eq!(rejects[0][..3], ["5", "422", "field_value_invalid"]);
    assert!(rejects[0][4].contains("employee_count"), "{rejects:?}");
    assert_eq!(rejects[1][0], "6");
    assert_eq!(rejects[1][2], "invalid_csv");
    let out = import();
    assert!(out.contains("5 rows: 0 created, 3 updated, 2 rejected"), "{out}");

    let export = |format: &str| {
        let mut c = corral(dir.path(), &db);
        c.args(["export", "--tenant", "t1", "--type", "account", "--format", format]);
        run(&mut c)
    };
    let docs: Vec<Value> = export("ndjson").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(docs.len(), 3);
    let by_name = |n: &str| docs.iter().find(|d| d["name"] == n).unwrap_or_else(|| panic!("{n} in {docs:?}")).clone();
    let acme = by_name("Acme, Inc.");
    assert_eq!(acme["domain"], "acme.com");
    assert_eq!(acme["employee_count"], 12);
    assert_eq!(acme["tags"], json!(["vip", "partner"]));
    assert_eq!(acme["description"], "Line one\nline \"two\"");
    let globex = by_name("Globex \"Big\" Co");
    assert_eq!(globex["domain"], "globex.com");
    // Empty cells are unset, not empty strings.
    assert!(globex.get("industry").is_none() && globex.get("employee_count").is_none(), "{globex}");
    // A filtered export.
    let mut c = corral(dir.path(), &db);
    c.args(["export", "--tenant", "t1", "--type", "account", "--filter"])
        .arg(json!({"field": "employee_count", "operator": "gt", "value": 10}).to_string());
    let filtered = run(&mut c);
    assert_eq!(filtered.lines().count(), 1, "{filtered}");
    // CSV out, CSV back in: the same records, updated.
    let exported = dir.path().join("export.csv");
    std::fs::write(&exported, export("csv")).unwrap();
    let mut c = corral(dir.path(), &db);
    c.arg("import").arg(&exported).args(["--tenant", "t1", "--type", "account"]);
    let out = run(&mut c);
    assert!(out.contains("3 rows: 0 created, 3 updated, 0 rejected"), "{out}");
}

/// A streaming request body fed through a channel.
struct ChannelBody(tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn kill_9_mid_import_loses_no_acknowledged_line_and_the_import_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let n = 8_000;
    let rows: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("Account {i}"), "domain": format!("a{i}.example.com"), "employee_count": i}))
        .collect();
    let file = dir.path().join("accounts.ndjson");
    std::fs::write(&file, rows.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
    let token = run(corral(dir.path(), &db).args(["token", "--tenant", "t1"])).trim().to_owned();

    let mut server = serve(dir.path(), &db);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let sender = tokio::spawn(async move {
        for chunk in rows.chunks(100) {
            let lines: String = chunk
                .iter()
                .map(|r| {
                    format!(
                        "{}\n",
                        json!({"op": "assert", "match": {"domain_name": r["domain"]}, "attributes": {"display_name": r["name"], "employee_count": r["employee_count"]}})
                    )
                })
                .collect();
            if tx.send(bytes::Bytes::from(lines)).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    });
    let mut response = reqwest::Client::new()
        .post(format!("{}/api/v2/account/_bulk", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap(ChannelBody(rx)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    let mut partial = Vec::new();
    let mut killed = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let result: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(result["status"], 201, "{result}");
            acknowledged.push((result["line"].as_u64().unwrap(), result["id"].as_str().unwrap().to_owned()));
        }
        if !killed && acknowledged.len() >= 1_500 {
            // SIGKILL: no shutdown, no drain, no flush.
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            killed = true;
        }
    }
    assert!(killed, "the import finished before the kill ({} lines)", acknowledged.len());
    assert!(acknowledged.len() < n, "the kill came too late to test anything");
    sender.abort();
    // Every acknowledged line is in the database, in order.
    for (i, (line, _)) in acknowledged.iter().enumerate() {
        assert_eq!(*line, i as u64 + 1);
    }
    let url = corral_store::DatabaseUrl::parse(&db).unwrap();
    let store = corral_store::Store::open(&url).await.unwrap();
    let actor = corral_core::Actor::new("t1", "check", None, corral_core::ActorKind::System);
    for (line, id) in &acknowledged {
        let id = corral_core::RecordId::parse(corral_core::RecordType::Account, id).unwrap();
        let record = store
            .get_record(&actor, corral_core::RecordType::Account, id, false)
            .await
            .unwrap_or_else(|e| panic!("acknowledged line {line} ({id:?}) is missing: {e}"));
        assert_eq!(record.primary_domain(), Some(format!("a{}.example.com", line - 1).as_str()));
    }
    drop(store);

    // Restart and run the whole import again through the CLI: it resumes, creating the rest.
    let server = serve(dir.path(), &db);
    let out = run(corral(dir.path(), &db).arg("import").arg(&file).args([
        "--type",
        "account",
        "--server",
        &server.base,
        "--token",
        &token,
        "--no-progress",
    ]));
    let summary: Vec<u64> = out
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    let [rows, created, updated, rejected] = summary[..] else { panic!("{out}") };
    assert_eq!((rows, rejected), (n as u64, 0), "{out}");
    assert!(updated >= acknowledged.len() as u64, "{out}");
    assert_eq!(created + updated, n as u64, "{out}");
    // Exactly one record per line: nothing was created twice.
    let exported = run(corral(dir.path(), &db).args([
        "export",
        "--type",
        "account",
        "--server",
        &server.base,
        "--token",
        &token,
        "--no-progress",
    ]));
    assert_eq!(exported.lines().count(), n);
}

/// `corral merge` previews by default and merges with `--apply`, against the local database
/// and a running server alike; `corral unmerge` undoes it.
#[tokio::test]
async fn cli_merge_previews_then_applies_and_unmerge_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, "name,domain,industry\nAcme,acme.com,\nAcme Inc,acme.io,software\n").unwrap();
    run(corral(dir.path(), &db).arg("import").arg(&file).args(["--tenant", "t1", "--type", "account"]));
    let export = || -> Vec<Value> {
        let out = run(corral(dir.path(), &db).args(["export", "--tenant", "t1", "--type", "account"]));
        out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let docs = export();
    let id = |name: &str| docs.iter().find(|d| d["name"] == name).unwrap()["id"].as_str().unwrap().to_owned();
    let (winner, loser) = (id("Acme"), id("Acme Inc"));
    let merge = |extra: &[&str]| {
        let mut c = corral(dir.path(), &db);
        c.args(["merge", "--tenant", "t1", "--type", "account", "--winner", &winner, "--loser", &loser]);
        c.args(["--field", &format!("display_name=loser:{loser}")]);
        c.args(extra);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (serde_json::from_slice::<Value>(&out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    // A dry run by default: it reports the merge and writes nothing.
    let (preview, summary) = merge(&[]);
    assert_eq!(preview["merge"]["dry_run"], true);
    assert_eq!(preview["data"]["attributes"]["display_name"]["value"], "Acme Inc");
    assert_eq!(preview["data"]["attributes"]["industry"]["value"], "software");
    assert!(summary.contains("dry run"), "{summary}");
    assert_eq!(export().len(), 2);
    // Against a running server too (still a dry run).
    let token = run(corral(dir.path(), &db).args(["token", "--tenant", "t1"])).trim().to_owned();
    {
        let server = serve(dir.path(), &db);
        let mut c = corral(dir.path(), &db);
        c.args(["merge", "--server", &server.base, "--token", &token, "--type", "account"]);
        c.args(["--winner", &winner, "--loser", &loser]);
        let remote: Value = serde_json::from_str(&run(&mut c)).unwrap();
        assert_eq!(remote["merge"]["dry_run"], true);
        assert_eq!(remote["merge"]["items"][0]["value"], "acme.io");
    }
    assert_eq!(export().len(), 2);

    // --apply merges: one account left, holding both domains.
    let (applied, summary) = merge(&["--apply"]);
    let merge_id = applied["merge"]["id"].as_str().unwrap().to_owned();
    assert!(summary.contains(&format!("corral unmerge --type account {merge_id}")), "{summary}");
    let docs = export();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["id"], winner.as_str());
    assert_eq!(docs[0]["name"], "Acme Inc", "the chosen loser's name");
    // The winner holds the loser's domain: an import row asserted by it updates the winner.
    let again = dir.path().join("again.csv");
    std::fs::write(&again, "name,domain\nAcme Group,acme.io\n").unwrap();
    let out = run(corral(dir.path(), &db).arg("import").arg(&again).args(["--tenant", "t1", "--type", "account"]));
    assert!(out.contains("0 created, 1 updated"), "{out}");
    let docs = export();
    assert_eq!((docs.len(), docs[0]["name"].as_str()), (1, Some("Acme Group")));

    // corral unmerge brings the loser back with its domain.
    let out = run(corral(dir.path(), &db).args(["unmerge", "--tenant", "t1", "--type", "account", &merge_id]));
    let undone: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(undone["restored"][0]["attributes"]["domains"][0]["value"]["domain_name"], "acme.io");
    assert_eq!(export().len(), 2);
}
