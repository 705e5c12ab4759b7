//! The README quickstart, driven through `corral-client` against the real router served on
//! 127.0.0.1 (an ephemeral port) over a fresh database: a SQLite file, or a PostgreSQL schema
//! when `CORRAL_TEST_DATABASE_URL` is set (the same rule as every other suite).

use corral_client::{
    Account, AssertOutcome, Auth, Client, Contact, Count, EdgeAttributes, Error, ErrorCode, Filter, ItemOptions,
    ItemPatch, ListParams, NewApiKey, NewAttribute, Op, Patch, Query, RecordType, TryStreamExt,
};
use corral_http::{AppState, AuthConfig, Claims};
use corral_store::{PgOptions, Store};
use serde_json::json;

const SECRET: &[u8] = b"test-secret-that-is-long-enough";

/// The real router on a loopback port, over its own database, for one tenant.
struct Server {
    base: String,
    state: AppState,
    tenant: String,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = corral_store::testing::fresh_database_url(dir.path()).await.expect("test database");
        let store = Store::open_with(&url, &PgOptions { pool_size: 4, ..PgOptions::default() }).await.expect("store");
        store.migrate().await.expect("migrate");
        let state = AppState::new(store, AuthConfig::new(SECRET.to_vec(), None, None));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = corral_http::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Server { base, state, tenant: "acme-tenant".into(), _dir: dir }
    }

    fn token(&self, sub: &str, roles: &[&str], email: Option<&str>) -> String {
        self.state.auth().mint(Claims {
            sub: sub.into(),
            tenant_id: self.tenant.clone(),
            exp: corral_http::auth::unix_now() + 600,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            email: email.map(str::to_owned),
            ..Default::default()
        })
    }

    /// A client with a `tenant_admin` token (what `corral token --tenant T` prints).
    fn admin(&self) -> Client {
        Client::new(&self.base, Auth::bearer(self.token("admin-1", &["tenant_admin"], Some("ada@example.com"))))
            .expect("client")
    }

    /// A client with a `user` role token.
    fn user(&self) -> Client {
        Client::new(&self.base, Auth::bearer(self.token("user-1", &["user"], None))).expect("client")
    }
}

fn account(name: &str) -> Account {
    Account { name: Some(name.into()), ..Default::default() }
}

/// The server's error, or a panic naming what came instead.
#[track_caller]
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>, code: ErrorCode, status: u16) -> corral_client::ApiError {
    let err = result.expect_err("expected an error");
    let api = err.api().unwrap_or_else(|| panic!("expected {code:?}, got {err}")).clone();
    assert_eq!(api.code, Some(code), "{api}");
    assert_eq!(api.status, status, "{api}");
    assert!(api.request_id.as_deref().is_some_and(|r| !r.is_empty()), "request id");
    assert!(!api.message.is_empty());
    api
}

/// README: create (domain normalised), filter and sort, update with If-Match (and the 412),
/// archive, restore, purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_account_lifecycle_with_if_match() {
    let server = Server::start().await;
    let client = server.admin();
    let accounts = client.accounts();

    let created = accounts
        .create(&Account {
            name: Some("Initrode".into()),
            domain: Some("https://www.Initrode.com/".into()),
            industry: Some("software".into()),
            tags: vec!["new".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(created.id.starts_with("acc-"));
    assert_eq!(created.domain.as_deref(), Some("initrode.com"));
    assert_eq!(created.domains, vec!["initrode.com"]);
    assert_eq!(created.version, 1);
    assert_eq!(created.tenant_id, server.tenant);
    assert_eq!(created.source.as_deref(), Some("edm"));
    accounts.create(&Account { industry: Some("software".into()), ..account("Aardvark Labs") }).await.unwrap();
    accounts.create(&Account { industry: Some("retail".into()), ..account("Zed Mart") }).await.unwrap();

    // Filter and sort.
    let software = accounts.list(&ListParams::new().filter("industry", "software").sort("name")).await.unwrap();
    let names: Vec<_> = software.items.iter().map(|a| a.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["Aardvark Labs", "Initrode"]);
    assert!(!software.has_more());
    let by_domain = accounts.list(&ListParams::new().filter("domain", "initrode.com")).await.unwrap();
    assert_eq!(by_domain.items.len(), 1);
    let id = by_domain.items[0].id.clone();
    let counted = accounts.list(&ListParams::new().filter("industry", "software").count(Count::Exact).limit(1)).await;
    let counted = counted.unwrap();
    assert_eq!((counted.items.len(), counted.total, counted.total_is_estimate), (1, Some(2), Some(false)));
    assert!(counted.has_more());

    // Get, then update only while nobody else changed it.
    assert_eq!(accounts.get(&id).await.unwrap(), created);
    let engaged = accounts.update(&id, &Patch::new().set("lifecycle_stage", "engaged"), Some(1)).await.unwrap();
    assert_eq!(engaged.lifecycle_stage.as_deref(), Some("engaged"));
    assert_eq!(engaged.version, 2);
    let stale = accounts.update(&id, &Patch::new().set("lifecycle_stage", "customer"), Some(1)).await;
    let api = api_error(stale, ErrorCode::PreconditionFailed, 412);
    assert_eq!(api.details["current_version"], json!(2));
    assert_eq!(accounts.get(&id).await.unwrap().lifecycle_stage.as_deref(), Some("engaged"));

    // A PATCH clears with null; a typed document read back is a PUT body (version = precondition).
    let cleared = accounts.update(&id, &Patch::new().clear("industry"), None).await.unwrap();
    assert_eq!(cleared.industry, None);
    let mut doc = cleared.clone();
    doc.description = Some("Makes TPS reports".into());
    let replaced = accounts.replace(&id, &doc, None).await.unwrap();
    assert_eq!(replaced.description.as_deref(), Some("Makes TPS reports"));
    assert_eq!(replaced.tags, vec!["new"]);
    api_error(accounts.replace(&id, &doc, None).await, ErrorCode::VersionConflict, 409);

    // Archive, then restore.
    let archived = accounts.archive(&id).await.unwrap();
    assert!(archived.is_deleted);
    assert!(archived.deleted_at.is_some());
    api_error(accounts.get(&id).await, ErrorCode::RecordNotFound, 404);
    assert!(accounts.get_including_archived(&id).await.unwrap().is_deleted);
    let listed = accounts.list(&ListParams::new().include_deleted(true).filter("domain", "initrode.com")).await;
    assert_eq!(listed.unwrap().items.len(), 1);
    let restored = accounts.restore(&id).await.unwrap();
    assert!(!restored.is_deleted);
    assert_eq!(accounts.get(&id).await.unwrap().domain.as_deref(), Some("initrode.com"));

    // Idempotent create: the retry gets the first answer back.
    let first = accounts.create_idempotent(&account("Once"), "key-1").await.unwrap();
    let again = accounts.create_idempotent(&account("Once"), "key-1").await.unwrap();
    assert_eq!(first.id, again.id);
    api_error(accounts.create_idempotent(&account("Twice"), "key-1").await, ErrorCode::IdempotencyKeyReused, 422);

    // Purge (admin): gone for good.
    accounts.purge(&id).await.unwrap();
    assert!(accounts.get_including_archived(&id).await.unwrap_err().is_not_found());
}

/// Cursor pagination as a Stream: v1 lists, v2 queries and relationship lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_follow_cursors_to_the_end() {
    let server = Server::start().await;
    let client = server.admin();
    let accounts = client.accounts();
    for i in (0..7).rev() {
        accounts.create(&Account { industry: Some("streamed".into()), ..account(&format!("S{i}")) }).await.unwrap();
    }
    accounts.create(&account("Other")).await.unwrap();

    let v1: Vec<Account> = accounts
        .stream(ListParams::new().filter("industry", "streamed").sort("name").limit(3))
        .try_collect()
        .await
        .unwrap();
    let names: Vec<_> = v1.iter().map(|a| a.name.clone().unwrap()).collect();
    assert_eq!(names, ["S0", "S1", "S2", "S3", "S4", "S5", "S6"]);

    let query = Query::new().filter(Filter::field("industry").eq("streamed")).sort_desc("display_name").limit(2);
    let v2: Vec<_> = accounts.query_stream(query.clone().fields(["display_name"])).try_collect().await.unwrap();
    let names: Vec<_> = v2.iter().map(|r| r.str("display_name").unwrap().to_owned()).collect();
    assert_eq!(names, ["S6", "S5", "S4", "S3", "S2", "S1", "S0"]);
    assert!(v2.iter().all(|r| r.attributes.len() == 1), "fields apply to every page");

    // Manual paging with the cursor gives the same pages.
    let first = accounts.query(&query).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let second = accounts.query(&query.clone().cursor(first.next_cursor.clone().unwrap())).await.unwrap();
    assert_eq!(second.items[0].str("display_name"), Some("S4"));

    // An empty result is an empty stream.
    let none: Vec<_> = accounts.stream(ListParams::new().filter("industry", "none")).try_collect().await.unwrap();
    assert!(none.is_empty());

    // Relationship lists page too.
    let contacts = client.contacts();
    let acme = accounts.create(&account("Acme")).await.unwrap();
    for n in 0..3 {
        let c = contacts.create(&Contact { first_name: Some(format!("C{n}")), ..Default::default() }).await.unwrap();
        accounts.contacts(&acme.id).add(&c.id, &EdgeAttributes::new()).await.unwrap();
    }
    let edges: Vec<_> = accounts.contacts(&acme.id).stream(Some(1)).try_collect().await.unwrap();
    assert_eq!(edges.len(), 3);
}

/// v2 `_query` with the filter builder: and / or / not, sort, count, fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_query_with_the_filter_builder() {
    let server = Server::start().await;
    let client = server.admin();
    let accounts = client.accounts();
    let make = |name: &str, industry: &str, employees: i64, tags: &[&str]| Account {
        industry: Some(industry.into()),
        employee_count: Some(employees),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..account(name)
    };
    accounts.create(&make("Alpha", "software", 10, &["enterprise"])).await.unwrap();
    accounts.create(&make("Bravo", "software", 200, &["smb"])).await.unwrap();
    accounts.create(&make("Charlie", "retail", 50, &[])).await.unwrap();

    let names = |page: corral_client::Page<corral_client::RecordV2>| -> Vec<String> {
        page.items.iter().map(|r| r.str("display_name").unwrap().to_owned()).collect()
    };
    let q = Query::new()
        .filter(Filter::field("industry").eq("software").and(Filter::field("employee_count").gte(100)))
        .count(Count::Exact);
    let page = accounts.query(&q).await.unwrap();
    assert_eq!(page.total, Some(1));
    assert_eq!(page.items[0].get::<i64>("employee_count"), Some(200));
    assert_eq!(names(page), ["Bravo"]);

    let q = Query::new()
        .filter(Filter::field("industry").eq("retail").or(Filter::field("tags").is_in(["enterprise"])))
        .sort_asc("display_name");
    assert_eq!(names(accounts.query(&q).await.unwrap()), ["Alpha", "Charlie"]);

    let q = Query::new().filter(Filter::field("industry").eq("software").not()).sort_asc("display_name");
    assert_eq!(names(accounts.query(&q).await.unwrap()), ["Charlie"]);

    let q = Query::new()
        .filter(Filter::any([
            Filter::field("display_name").starts_with("al"),
            Filter::field("employee_count").between(40, 60),
        ]))
        .sort_desc("employee_count")
        .fields(["display_name", "employee_count"]);
    let page = accounts.query(&q).await.unwrap();
    assert!(page.items.iter().all(|r| r.attributes.len() == 2));
    assert_eq!(names(page), ["Charlie", "Alpha"]);

    let q = Query::new().filter(Filter::field("tags").not_exists());
    assert_eq!(names(accounts.query(&q).await.unwrap()), ["Charlie"]);

    // The v1 list takes the same operators.
    let v1 = accounts.list(&ListParams::new().filter_op("employee_count", Op::Gt, 20).sort("-employee_count")).await;
    let v1: Vec<_> = v1.unwrap().items.into_iter().map(|a| a.name.unwrap()).collect();
    assert_eq!(v1, ["Bravo", "Charlie"]);

    // Filter errors keep their codes.
    let bad_field = accounts.query(&Query::new().filter(Filter::field("no_such_thing").eq(1))).await;
    api_error(bad_field, ErrorCode::InvalidFilterField, 422);
    let bad_op = accounts.query(&Query::new().filter(Filter::field("industry").gt("a"))).await;
    assert_eq!(api_error(bad_op, ErrorCode::InvalidFilterOperator, 422).field(), Some("industry"));
}

/// `_assert` creates, then updates the same record; by domain for accounts, email for contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assert_creates_then_updates() {
    let server = Server::start().await;
    let client = server.admin();

    let first = client
        .accounts()
        .assert_by_domain("https://Globex.com", &Patch::new().set("display_name", "Globex").set("industry", "energy"))
        .await
        .unwrap();
    assert_eq!(first.outcome, AssertOutcome::Created);
    assert!(first.created());
    assert_eq!(first.record.domain_names(), ["globex.com"]);
    assert_eq!(first.record.str("industry"), Some("energy"));

    let second = client.accounts().assert_by_domain("globex.com", &Patch::new().set("industry", "utilities")).await;
    let second = second.unwrap();
    assert_eq!(second.outcome, AssertOutcome::Updated);
    assert_eq!(second.record.id, first.record.id);
    assert_eq!(second.record.str("industry"), Some("utilities"));
    assert_eq!(second.record.str("display_name"), Some("Globex"));
    assert_eq!(second.record.version(), Some(2));
    // The v1 document is the same record.
    let doc = client.accounts().get(&second.record.id).await.unwrap();
    assert_eq!(doc.industry.as_deref(), Some("utilities"));

    let hank = client.contacts().assert_by_email("hank@Globex.COM", &Patch::new().set("first_name", "Hank")).await;
    let hank = hank.unwrap();
    assert!(hank.created());
    assert_eq!(hank.record.str("primary_email"), Some("hank@globex.com"));
    let again = client.contacts().assert_by_email("hank@globex.com", &Patch::new().set("last_name", "Scorpio")).await;
    let again = again.unwrap();
    assert_eq!((again.outcome, again.record.id.clone()), (AssertOutcome::Updated, hank.record.id.clone()));
    assert_eq!(again.record.str("display_name"), Some("Hank Scorpio"));

    let bad_key = client.accounts().assert(&[("industry", "x")], &Patch::new()).await;
    api_error(bad_key, ErrorCode::InvalidMatchingField, 422);
}

/// Account domains: add (201, then 200 when already there), make primary, remove; a domain
/// held by another account is `domain_already_linked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_domains_sub_resource() {
    let server = Server::start().await;
    let client = server.admin();
    let accounts = client.accounts();
    let a = accounts.create(&Account { domain: Some("initech.com".into()), ..account("Initech") }).await.unwrap();
    let domains = accounts.domains(&a.id);

    let added = domains.add("WWW.Initech.io", Some(a.version)).await.unwrap();
    assert!(added.created);
    assert_eq!(added.item.domain_name, "initech.io");
    assert!(!added.item.is_primary);
    assert_eq!(added.record_version, Some(a.version + 1));
    let again = domains.add("initech.io", None).await.unwrap();
    assert!(!again.created);
    api_error(domains.add("initech.net", Some(a.version)).await, ErrorCode::PreconditionFailed, 412);

    let primary = domains.set_primary("initech.io", true, None).await.unwrap();
    assert!(primary.item.is_primary);
    let doc = accounts.get(&a.id).await.unwrap();
    assert_eq!(doc.domain.as_deref(), Some("initech.io"));
    assert_eq!(doc.domains.len(), 2);
    let listed = domains.list().await.unwrap();
    assert_eq!(listed.iter().filter(|d| d.is_primary).count(), 1);

    let other = accounts.create(&account("Other")).await.unwrap();
    api_error(accounts.domains(&other.id).add("initech.com", None).await, ErrorCode::DomainAlreadyLinked, 409);

    domains.remove("initech.io", None).await.unwrap();
    let doc = accounts.get(&a.id).await.unwrap();
    assert_eq!((doc.domain.as_deref(), doc.domains.len()), (Some("initech.com"), 1));
    api_error(domains.remove("initech.io", None).await, ErrorCode::RecordNotFound, 404);
}

/// Custom attributes: defined through the schema admin route, written and read in v1
/// `custom_fields`, read as v2 attributes, filtered in both dialects, cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_fields_write_and_read() {
    let server = Server::start().await;
    let client = server.admin();
    let schema = client.schema(RecordType::Account);
    let seats = schema.create_attribute(&NewAttribute::new("seats", "number")).await.unwrap();
    assert!(seats.is_custom);
    assert_eq!(seats.type_info["value_type"], "number");
    let tier = NewAttribute {
        options: vec![
            corral_client::AttributeOption { api_name: "gold".into(), ..Default::default() },
            corral_client::AttributeOption { api_name: "silver".into(), ..Default::default() },
        ],
        display_name: Some("Tier".into()),
        ..NewAttribute::new("tier", "select")
    };
    schema.create_attribute(&tier).await.unwrap();
    let document = schema.get().await.unwrap();
    assert!(
        document["attributes"].as_array().unwrap().iter().any(|a| a["api_name"] == "tier" && a["is_custom"] == true)
    );
    // Built-in names are refused.
    api_error(
        schema.create_attribute(&NewAttribute::new("industry", "string")).await,
        ErrorCode::FieldValueInvalid,
        422,
    );
    // A user may not change the schema.
    let forbidden = server.user().schema(RecordType::Account).create_attribute(&NewAttribute::new("x", "string")).await;
    api_error(forbidden, ErrorCode::Forbidden, 403);

    let accounts = client.accounts();
    let mut big = account("Big Co");
    big.custom_fields.insert("seats".into(), json!(120));
    big.custom_fields.insert("tier".into(), json!("gold"));
    let big = accounts.create(&big).await.unwrap();
    assert_eq!(big.custom_field("seats"), Some(&json!(120)));
    assert_eq!(big.custom_field("tier"), Some(&json!("gold")));
    let small = accounts.create(&Patch::new().set("name", "Small Co").custom("seats", 3)).await.unwrap();
    assert_eq!(small.custom_field("tier"), None);

    let record = accounts.get_record(&big.id).await.unwrap();
    assert_eq!(record.get::<i64>("seats"), Some(120));
    assert_eq!(record.value("tier").unwrap()["api_name"], "gold");
    assert_eq!(record.attribute("seats").unwrap().envelopes()[0].value_type, "number");

    let v1 = accounts.list(&ListParams::new().filter_op("custom_fields.seats", Op::Gte, 10)).await.unwrap();
    assert_eq!(v1.items.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [big.id.as_str()]);
    let v2 = accounts.query(&Query::new().filter(Filter::field("seats").lt(10))).await.unwrap();
    assert_eq!(v2.items.len(), 1);
    assert_eq!(v2.items[0].str("display_name"), Some("Small Co"));

    // A PATCH changes only the custom keys sent; null clears one.
    let patched = accounts.update(&big.id, &Patch::new().clear_custom("seats"), Some(big.version)).await.unwrap();
    assert_eq!(patched.custom_field("seats"), None);
    assert_eq!(patched.custom_field("tier"), Some(&json!("gold")));
    let bad = accounts.update(&big.id, &Patch::new().custom("tier", "platinum"), None).await;
    assert_eq!(api_error(bad, ErrorCode::FieldValueInvalid, 422).field(), Some("custom_fields.tier"));
    let unknown = accounts.update(&big.id, &Patch::new().custom("nope", 1), None).await;
    api_error(unknown, ErrorCode::UnknownField, 422);
}

/// Contacts linked to accounts: v1 `account_id`, the relationship from both sides, edge
/// attributes, emails and phone numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_with_account_links_and_relationships() {
    let server = Server::start().await;
    let client = server.admin();
    let (accounts, contacts) = (client.accounts(), client.contacts());
    let acme = accounts.create(&Account { domain: Some("acme.test".into()), ..account("Acme") }).await.unwrap();
    let globex = accounts.create(&account("Globex")).await.unwrap();

    let wile = contacts
        .create(&Contact {
            first_name: Some("Wile".into()),
            last_name: Some("Coyote".into()),
            email: Some("wile@Example.ORG".into()),
            account_id: Some(acme.id.clone()),
            tags: vec!["vip".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(wile.id.starts_with("con-"));
    assert_eq!(wile.display_name.as_deref(), Some("Wile Coyote"));
    assert_eq!(wile.email.as_deref(), Some("wile@example.org"));
    assert_eq!(wile.account_id.as_deref(), Some(acme.id.as_str()));
    let found = contacts.list(&ListParams::new().filter("account_id", &acme.id)).await.unwrap();
    assert_eq!(found.items.len(), 1);

    // The account's side of the relationship shows the primary edge.
    let edges = accounts.contacts(&acme.id).list(None, None).await.unwrap();
    assert_eq!(edges.items.len(), 1);
    let edge = &edges.items[0];
    assert_eq!(edge.related_record_id, wile.id.trim_start_matches("con-"));
    assert_eq!(edge.related_record_type, "contact");
    assert!(edge.is_primary);
    assert_eq!(edge.role, None);

    // A second, secondary edge with a role, from the contact's side.
    let linked = contacts.accounts(&wile.id).add(&globex.id, &EdgeAttributes::new().role("champion")).await.unwrap();
    assert!(linked.created);
    assert_eq!((linked.item.role.as_deref(), linked.item.is_primary), (Some("champion"), false));
    let relinked = contacts.accounts(&wile.id).add(&globex.id, &EdgeAttributes::new().role("buyer")).await.unwrap();
    assert!(!relinked.created);
    assert_eq!(relinked.item.role.as_deref(), Some("buyer"));
    let edges = contacts.accounts(&wile.id).list(Some(10), None).await.unwrap();
    assert_eq!(edges.items.len(), 2);

    // Making it primary demotes the other; the v1 account_id follows.
    let updated = contacts.accounts(&wile.id).update(&globex.id, &EdgeAttributes::new().primary(true)).await.unwrap();
    assert!(updated.is_primary);
    assert_eq!(contacts.get(&wile.id).await.unwrap().account_id.as_deref(), Some(globex.id.as_str()));
    let acme_edge = accounts.contacts(&acme.id).list(None, None).await.unwrap();
    assert!(!acme_edge.items[0].is_primary);
    contacts.accounts(&wile.id).update(&globex.id, &EdgeAttributes::new().clear_role()).await.unwrap();

    // Link by match key, then remove.
    let road = contacts.create(&Contact { first_name: Some("Road".into()), ..Default::default() }).await.unwrap();
    let matched = contacts.accounts(&road.id).add_matching("domain_name", "acme.test", &EdgeAttributes::new()).await;
    assert_eq!(matched.unwrap().item.related_record_id, acme.id.trim_start_matches("acc-"));
    accounts.contacts(&acme.id).remove(&road.id).await.unwrap();
    assert!(contacts.accounts(&road.id).list(None, None).await.unwrap().items.is_empty());
    let no_relationship = client.accounts().contacts(&acme.id).remove(&acme.id).await;
    api_error(no_relationship, ErrorCode::RecordNotFound, 404);

    // Emails and phone numbers.
    let emails = contacts.emails(&wile.id);
    let work =
        emails.add("wile@acme.test", &ItemOptions { labels: vec!["work".into()], ..Default::default() }).await.unwrap();
    assert!(work.created);
    assert_eq!(
        (work.item.email.as_str(), work.item.labels.as_slice()),
        ("wile@acme.test", ["WORK".to_owned()].as_slice())
    );
    assert!(!emails.add("WILE@acme.test", &ItemOptions::default()).await.unwrap().created);
    let primary =
        emails.update(&work.item.id, &ItemPatch { is_primary: Some(true), ..Default::default() }, None).await.unwrap();
    assert!(primary.item.is_primary);
    assert_eq!(contacts.get(&wile.id).await.unwrap().email.as_deref(), Some("wile@acme.test"));
    assert_eq!(emails.list().await.unwrap().len(), 2);
    let taken = contacts.emails(&road.id).add("wile@example.org", &ItemOptions::default()).await;
    api_error(taken, ErrorCode::Conflict, 409);
    emails.remove(&work.item.id, None).await.unwrap();
    assert_eq!(contacts.get(&wile.id).await.unwrap().email.as_deref(), Some("wile@example.org"));

    let phones = contacts.phones(&wile.id);
    let phone = phones.add("+1 415 555 0100", &ItemOptions { is_primary: true, ..Default::default() }).await.unwrap();
    assert!(phone.created && phone.item.is_primary);
    assert_eq!(contacts.get(&wile.id).await.unwrap().phone.as_deref(), Some(phone.item.phone_number.as_str()));
    phones.remove(&phone.item.id, None).await.unwrap();
    assert!(phones.list().await.unwrap().is_empty());
}

/// Errors arrive as the server's stable codes with status, message, details and request id;
/// transport failures as transport errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_typed_codes() {
    let server = Server::start().await;
    let client = server.admin();

    let missing = client.accounts().get("acc-0193aaaa-0000-7000-8000-000000000000").await;
    let api = api_error(missing, ErrorCode::RecordNotFound, 404);
    assert_eq!(api.raw_code, "record_not_found");
    api_error(client.contacts().get("not-an-id").await, ErrorCode::RecordNotFound, 404);
    api_error(
        client.contacts().get_record("0193aaaa-0000-7000-8000-000000000000").await,
        ErrorCode::RecordNotFound,
        404,
    );

    let unknown = client.accounts().create(&json!({"name": "X", "colour": "red"})).await;
    assert_eq!(api_error(unknown, ErrorCode::UnknownField, 422).field(), Some("colour"));
    let nameless = client.accounts().create(&Account::default()).await;
    api_error(nameless, ErrorCode::FieldRequiredMissing, 422);
    client.accounts().create(&Account { domain: Some("taken.com".into()), ..account("A") }).await.unwrap();
    let conflict = client.accounts().create(&Account { domain: Some("taken.com".into()), ..account("B") }).await;
    assert_eq!(api_error(conflict, ErrorCode::Conflict, 409).details["value"], "taken.com");

    // Roles and credentials.
    let user = server.user();
    let a = user.accounts().create(&account("Mine")).await.unwrap();
    api_error(user.accounts().purge(&a.id).await, ErrorCode::Forbidden, 403);
    api_error(user.api_keys().list().await, ErrorCode::Forbidden, 403);
    let anonymous = Client::new(&server.base, Auth::None).unwrap();
    api_error(anonymous.accounts().list(&ListParams::new()).await, ErrorCode::Unauthenticated, 401);
    let forged = Client::new(&server.base, Auth::bearer("not.a.jwt")).unwrap();
    let err = forged.accounts().get(&a.id).await.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(ErrorCode::Unauthenticated), Some(401)));
    assert!(err.to_string().contains("unauthenticated"), "{err}");
    anonymous.ready().await.unwrap();

    // Bad list parameters and cursors.
    let bad_limit = client.accounts().list(&ListParams::new().limit(501)).await;
    api_error(bad_limit, ErrorCode::InvalidQueryParameter, 400);
    let bad_cursor = client.accounts().query(&Query::new().cursor("garbage")).await;
    api_error(bad_cursor, ErrorCode::InvalidCursor, 400);

    // Nothing listening: a transport error, not an API error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = Client::new(format!("http://127.0.0.1:{port}"), Auth::None).unwrap();
    let err = nowhere.ready().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(err.code(), None);

    // Misconfiguration is refused up front.
    assert!(matches!(Client::new("not a url", Auth::None), Err(Error::Config(_))));
    assert!(matches!(Client::new("mailto:x@y.z", Auth::None), Err(Error::Config(_))));
}

/// API keys (README's last step): an app-scoped key sees only its app's records; keys work
/// as `X-Api-Key` or bearer, and stop working when revoked. Users are readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_users() {
    let server = Server::start().await;
    let admin = server.admin();
    admin.accounts().create(&account("Visible to admins")).await.unwrap();

    let key = admin
        .api_keys()
        .create(&NewApiKey {
            scopes: vec!["accounts:read".into()],
            app: Some("reporting".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let secret = key.key.clone().expect("the key is shown once");
    assert!(secret.starts_with("crl_"));
    assert!(admin.api_keys().list().await.unwrap().iter().any(|k| k.id == key.id && k.key.is_none()));

    let by_header = Client::new(&server.base, Auth::api_key(&secret)).unwrap();
    assert!(by_header.accounts().list(&ListParams::new()).await.unwrap().items.is_empty());
    let by_bearer = Client::builder(&server.base).bearer(&secret).build().unwrap();
    assert!(by_bearer.accounts().list(&ListParams::new()).await.unwrap().items.is_empty());
    api_error(by_header.accounts().create(&account("No")).await, ErrorCode::Forbidden, 403);

    admin.api_keys().revoke(&key.id).await.unwrap();
    api_error(by_header.accounts().list(&ListParams::new()).await, ErrorCode::Unauthenticated, 401);

    // The admin token's subject was provisioned into the directory on first use.
    let users = admin.users();
    let listed = users.list().await.unwrap();
    let ada = listed.iter().find(|u| u.email.as_deref() == Some("ada@example.com")).expect("provisioned");
    assert!(ada.id.starts_with("usr-"));
    assert!(ada.is_active);
    let fetched = users.get(&ada.id).await.unwrap();
    assert_eq!((fetched.email.as_deref(), fetched.version), (Some("ada@example.com"), ada.version));
    let page = users.query(&Query::new().filter(Filter::field("email").eq("ADA@example.com"))).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, ada.id.trim_start_matches("usr-"));
    let everyone: Vec<_> = server.user().users().query_stream(Query::new().limit(1)).try_collect().await.unwrap();
    assert!(everyone.len() >= 2, "admin and user are both provisioned: {everyone:?}");
    api_error(users.get("usr-0193aaaa-0000-7000-8000-000000000000").await, ErrorCode::RecordNotFound, 404);
}
