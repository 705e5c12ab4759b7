//! `corral duplicates` through the real binary: on the local database and against a server
//! (`--server URL --token TOKEN`), with `--min-score`.

mod support;

use support::{corral, database, run};

#[tokio::test]
async fn duplicates_prints_groups_locally_and_from_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let file = dir.path().join("accounts.csv");
    std::fs::write(
        &file,
        "name,domain,phone\nAcme Inc,acme.com,+1 555 010 2030\n\"ACME, Inc.\",acme-corp.com,\nGlobex,globex.com,555.010.2030\nHooli,hooli.com,\n",
    )
    .unwrap();
    let mut c = corral(dir.path(), &db);
    c.arg("import").arg(&file).args(["--tenant", "t1", "--type", "account", "--no-progress"]);
    run(&mut c);

    let mut c = corral(dir.path(), &db);
    c.args(["duplicates", "--tenant", "t1", "--type", "account"]);
    let out = run(&mut c);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(out.contains("0.980  same_name, same_name_without_legal_suffix\n"), "{out}");
    assert!(out.contains("0.600  same_phone\n"), "{out}");
    assert!(lines.iter().filter(|l| l.starts_with("    ")).any(|l| l.ends_with("  Globex")), "{out}");
    assert!(!out.contains("Hooli"), "{out}");

    // The same search on a running server, with a minimum score.
    let server = support::serve(corral(dir.path(), &db));
    let mut c = corral(dir.path(), &db);
    c.args(["token", "--tenant", "t1"]);
    let token = run(&mut c).trim().to_owned();
    let mut c = corral(dir.path(), &db);
    c.args(["duplicates", "--type", "account", "--min-score", "0.9", "--server", &server.base, "--token", &token]);
    let out = run(&mut c);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.starts_with("0.980  same_name"), "{out}");
}
