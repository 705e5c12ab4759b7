//! The `corral` binary: parses the command line, layers configuration, sets up logging and
//! hands over to the library crates.

mod config;
mod demo;
mod duplicates;
mod merge;
mod transfer;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use config::{Config, FlagOverrides};
use corral_http::{AppState, Claims};
use corral_store::{DatabaseUrl, PgOptions, Store};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "corral", version, about = "A fast, multi-tenant CRM records server")]
struct Cli {
    /// Config file (default: ./corral.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… (env CORRAL_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Data directory for the SQLite file and generated secrets (env CORRAL_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Listen address (env CORRAL_LISTEN), e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Seed a `demo` tenant and print an admin token and a sample curl.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print a signed JWT for local use.
    Token(TokenArgs),
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage the user directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Create synthetic accounts and contacts in one tenant, for benchmarks (bench/scale.sh):
    /// thousands per transaction through the ordinary create path, then ANALYZE.
    Seed {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 10_000)]
        accounts: u64,
        /// Contacts, linked to the accounts by email domain.
        #[arg(long, default_value_t = 0)]
        contacts: u64,
    },
    /// Print the OpenAPI 3.1 document.
    Openapi,
    /// Import accounts or contacts from a CSV or NDJSON file (re-runnable: rows are asserted
    /// by their domain / email, so a second run creates nothing new).
    Import(ImportArgs),
    /// Export every account or contact (or those a filter matches) as CSV or NDJSON.
    Export(ExportArgs),
    /// Merge duplicate accounts or contacts into one (a dry run unless --apply); prints the
    /// winner and every change as JSON.
    Merge(MergeArgs),
    /// Undo a merge by the id `corral merge --apply` printed.
    Unmerge(UnmergeArgs),
    /// Print groups of likely duplicate accounts or contacts, with scores and reasons.
    Duplicates(DuplicatesArgs),
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// account or contact.
    #[arg(long = "type")]
    record_type: String,
    /// The record that stays.
    #[arg(long)]
    winner: String,
    /// A record merged into the winner (repeatable).
    #[arg(long = "loser", required = true)]
    losers: Vec<String>,
    /// NAME=winner, NAME=loser:<id> or NAME=<value> (JSON, or else text); repeatable.
    #[arg(long = "field")]
    fields: Vec<String>,
    /// Merge for real (without it nothing is written).
    #[arg(long)]
    apply: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
struct UnmergeArgs {
    /// account or contact.
    #[arg(long = "type")]
    record_type: String,
    /// The merge's id.
    merge_id: String,
    #[command(flatten)]
    target: Target,
}

/// Where `import` / `export` / `merge` send their calls: the local database (with --tenant) by default,
/// or a running server with --server and --token.
#[derive(Args, Debug)]
struct Target {
    /// The tenant (local database only; with --server the token decides).
    #[arg(long)]
    tenant: Option<String>,
    /// A server's base URL, e.g. http://127.0.0.1:8080 (env CORRAL_SERVER).
    #[arg(long, env = "CORRAL_SERVER")]
    server: Option<String>,
    /// A bearer token for --server (env CORRAL_TOKEN).
    #[arg(long, env = "CORRAL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// No progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// A .csv file (header row of v1 field names and custom attribute api names) or NDJSON.
    file: PathBuf,
    /// account or contact.
    #[arg(long = "type")]
    record_type: String,
    /// The key rows are asserted by: domain_name (accounts, the default) or email (contacts,
    /// the default); `none` creates every row.
    #[arg(long = "match")]
    match_field: Option<String>,
    /// csv or ndjson (default: from the file extension).
    #[arg(long)]
    format: Option<String>,
    /// Where refused rows go (line, status, code, message, details); default FILE.rejects.csv.
    #[arg(long)]
    rejects: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// account or contact.
    #[arg(long = "type")]
    record_type: String,
    /// csv or ndjson.
    #[arg(long, default_value = "ndjson")]
    format: String,
    /// A `_query` filter as JSON (one filter or an array), or @FILE.
    #[arg(long)]
    filter: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
struct DuplicatesArgs {
    /// account or contact.
    #[arg(long = "type")]
    record_type: String,
    /// Only groups scoring at least this (0 to 1).
    #[arg(long)]
    min_score: Option<f64>,
    /// A `_query` filter as JSON (one filter or an array), or @FILE: search only these records.
    #[arg(long)]
    filter: Option<String>,
    /// Print at most this many groups.
    #[arg(long)]
    limit: Option<u64>,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
struct TokenArgs {
    #[arg(long)]
    tenant: String,
    /// The subject (`sub`): a user id or any stable name.
    #[arg(long, default_value = "corral-cli")]
    sub: String,
    /// Roles (repeatable). Without --role and --scope the token is a tenant_admin token.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Scopes (repeatable), e.g. accounts:read.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// App scope: the token sees only records of this app.
    #[arg(long)]
    app: Option<String>,
    /// Lifetime, e.g. 1h, 30m, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// `email` claim (used to provision the user on first sight).
    #[arg(long)]
    email: Option<String>,
    /// `name` claim.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
    /// Create a key; the key is printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        app: Option<String>,
        /// Scopes (repeatable or space-separated).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List a tenant's keys.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key.
    Revoke {
        id: String,
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user to a tenant's directory.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
}

/// Logs to stderr: text (coloured only when stderr is a terminal and `NO_COLOR` is unset) or
/// one JSON object a line with the event's fields at the top level.
fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    if config.log_format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn open_store(config: &Config) -> Result<Store> {
    let url = DatabaseUrl::parse(&config.database_url()).map_err(anyhow::Error::msg)?;
    let pg = PgOptions { pool_size: config.database_pool_size, ..PgOptions::default() };
    let store = Store::open_with(&url, &pg).await.context("cannot open the database")?;
    store.migrate().await.context("cannot migrate the database")?;
    Ok(store)
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(run());
    // Whatever a handler is still doing after the shutdown drain gets a second, not forever.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let flags = FlagOverrides { listen, database_url: cli.database_url.clone(), data_dir: cli.data_dir.clone() };
    if let Command::Openapi = cli.command {
        // Needs no configuration, database or secret.
        println!("{}", serde_json::to_string_pretty(&corral_http::openapi())?);
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref(), &flags)?;
    init_logging(&config);
    match cli.command {
        Command::Serve { demo, .. } => serve(config, demo).await,
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token(args) => {
            println!("{}", mint_token(&config, args)?);
            Ok(())
        }
        Command::ApiKey(cmd) => api_key(&config, cmd).await,
        Command::Openapi => unreachable!("handled before configuration"),
        Command::Seed { tenant, accounts, contacts } => {
            let store = open_store(&config).await?;
            let actor = corral_core::Actor::new(tenant.as_str(), "corral-seed", None, corral_core::ActorKind::System);
            let started = std::time::Instant::now();
            let mut report = |rt: corral_core::RecordType, n: u64| {
                if n.is_multiple_of(100_000) || n == accounts || n == contacts {
                    eprintln!("{n} {}s ({:.0?})", rt.api_name(), started.elapsed());
                }
            };
            corral_store::seed::seed(&store, &actor, accounts, contacts, &mut report).await?;
            store.analyze().await?;
            eprintln!("seeded and analysed in {:.1?}", started.elapsed());
            Ok(())
        }
        Command::Import(args) => import(&config, args).await,
        Command::Export(args) => export(&config, args).await,
        Command::Merge(args) => {
            let api = transfer_api(&config, &args.target).await?;
            let options = merge::MergeOptions {
                record_type: args.record_type,
                winner: args.winner,
                losers: args.losers,
                fields: args.fields,
                apply: args.apply,
            };
            let (answer, summary) = merge::merge(&api, options).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            eprintln!("{summary}");
            Ok(())
        }
        Command::Unmerge(args) => {
            let api = transfer_api(&config, &args.target).await?;
            let answer = merge::unmerge(&api, &args.record_type, &args.merge_id).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Duplicates(args) => find_duplicates(&config, args).await,
        Command::User(UserCommand::Add { tenant, email, name }) => {
            let store = open_store(&config).await?;
            let user = store.add_user(&tenant.into(), &email, name.as_deref(), "corral-cli").await?;
            println!("{}", user.id.v1(corral_core::RecordType::User));
            Ok(())
        }
    }
}

fn mint_token(config: &Config, args: TokenArgs) -> Result<String> {
    let auth = config.auth()?;
    let now = corral_http::auth::unix_now();
    let roles =
        if args.roles.is_empty() && args.scopes.is_empty() { vec!["tenant_admin".to_owned()] } else { args.roles };
    let scope = args.scopes.join(" ");
    Ok(auth.mint(Claims {
        sub: args.sub,
        tenant_id: args.tenant,
        exp: now + args.ttl.as_secs() as i64,
        iat: Some(now),
        roles,
        scope: (!scope.is_empty()).then_some(scope),
        app_id: args.app,
        email: args.email,
        name: args.name,
        ..Default::default()
    }))
}

/// The API `import` / `export` call: a remote server, or the local database in-process.
async fn transfer_api(config: &Config, target: &Target) -> Result<transfer::Api> {
    if let Some(server) = &target.server {
        let token = target.token.clone().context("--server needs --token (or CORRAL_TOKEN)")?;
        let client = reqwest::Client::builder().build()?;
        return Ok(transfer::Api::Remote { client, base: server.clone(), token });
    }
    let tenant = target.tenant.clone().context("--tenant is required against the local database")?;
    let store = open_store(config).await?;
    let auth = config.auth()?;
    let now = corral_http::auth::unix_now();
    let token = auth.mint(Claims {
        sub: "corral-cli".into(),
        tenant_id: tenant,
        exp: now + 7 * 24 * 3600,
        iat: Some(now),
        roles: vec!["tenant_admin".into()],
        ..Default::default()
    });
    // No rate limit of the server's own: this is the operator's own process.
    let router = corral_http::router(AppState::new(store, auth));
    Ok(transfer::Api::Local { router, token })
}

async fn import(config: &Config, args: ImportArgs) -> Result<()> {
    let rt = transfer::record_type(&args.record_type)?;
    let match_field = match (rt, args.match_field.as_deref()) {
        (_, Some("none")) => None,
        (corral_core::RecordType::Account, None | Some("domain_name")) => Some("domain_name".to_owned()),
        (corral_core::RecordType::Contact, None | Some("email")) => Some("email".to_owned()),
        (_, Some(other)) => {
            bail!("--match {other} is not a match key of {rt}: use domain_name (accounts) or email (contacts), or none")
        }
        (_, None) => bail!("{rt}s cannot be imported"),
    };
    let format = transfer::Format::pick(args.format.as_deref(), Some(&args.file))?;
    let rejects = args.rejects.clone().unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".rejects.csv");
        PathBuf::from(name)
    });
    let api = transfer_api(config, &args.target).await?;
    let options = transfer::ImportOptions {
        file: args.file,
        rt,
        match_field,
        format,
        rejects: rejects.clone(),
        progress: !args.target.no_progress,
    };
    let s = transfer::import(&api, options).await?;
    println!("{} rows: {} created, {} updated, {} rejected", s.rows, s.created, s.updated, s.rejected);
    if s.rejected > 0 {
        println!("rejected rows are in {}", rejects.display());
    }
    Ok(())
}

async fn export(config: &Config, args: ExportArgs) -> Result<()> {
    let rt = transfer::record_type(&args.record_type)?;
    let format = transfer::Format::pick(Some(args.format.as_str()), None)?;
    let filter = args.filter.as_deref().map(transfer::read_filter).transpose()?;
    let api = transfer_api(config, &args.target).await?;
    let options = transfer::ExportOptions { rt, format, filter, progress: !args.target.no_progress };
    let count = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
            transfer::export(&api, options, &mut std::io::BufWriter::new(file)).await?
        }
        None => transfer::export(&api, options, &mut std::io::stdout().lock()).await?,
    };
    eprintln!("exported {count} {rt}s");
    Ok(())
}

async fn find_duplicates(config: &Config, args: DuplicatesArgs) -> Result<()> {
    let rt = transfer::record_type(&args.record_type)?;
    let filters = match args.filter.as_deref().map(transfer::read_filter).transpose()? {
        None => None,
        Some(serde_json::Value::Array(list)) => Some(serde_json::Value::Array(list)),
        Some(one) => Some(serde_json::json!([one])),
    };
    let api = transfer_api(config, &args.target).await?;
    let options = duplicates::DuplicatesOptions { rt, min_score: args.min_score, filters, max_groups: args.limit };
    let groups = duplicates::print(&api, options, &mut std::io::stdout().lock()).await?;
    eprintln!("{groups} groups of likely duplicate {rt}s");
    Ok(())
}

async fn api_key(config: &Config, cmd: ApiKeyCommand) -> Result<()> {
    let store = open_store(config).await?;
    match cmd {
        ApiKeyCommand::Create { tenant, app, scopes, name } => {
            let scopes: Vec<String> = scopes.iter().flat_map(|s| s.split_whitespace()).map(str::to_owned).collect();
            corral_http::auth::validate_scopes(&scopes).map_err(|e| anyhow::anyhow!(e.message))?;
            let new = corral_http::auth::generate_key();
            store
                .insert_api_key(&corral_store::ApiKey {
                    id: new.id.clone(),
                    tenant_id: tenant.into(),
                    app,
                    name,
                    scopes,
                    secret_hash: new.secret_hash,
                    created_at: corral_core::Timestamp::now(),
                    created_by: "corral-cli".into(),
                    expires_at: None,
                    revoked_at: None,
                })
                .await?;
            eprintln!("API key {} created; it is shown only now:", new.id);
            println!("{}", new.key);
        }
        ApiKeyCommand::List { tenant } => {
            for k in store.list_api_keys(&tenant.into()).await? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id,
                    state,
                    k.app.as_deref().unwrap_or("-"),
                    k.scopes.join(" "),
                    k.name.as_deref().unwrap_or("")
                );
            }
        }
        ApiKeyCommand::Revoke { id, tenant } => {
            if !store.revoke_api_key(&tenant.clone().into(), &id).await? {
                bail!("no active key {id} in tenant {tenant}");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn serve(config: Config, demo: bool) -> Result<()> {
    let store = open_store(&config).await?;
    let state = AppState::with_rate_limit(store, config.auth()?, config.rate_limit())
        .with_webhook_options(config.webhook_options()?);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics_listener = match &config.metrics_listen {
        Some(listen) => Some(
            tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (metrics_listen)"))?,
        ),
        None => None,
    };
    let address = listener.local_addr()?;
    tracing::info!(%address, database = %redact(&config.database_url()), "corral listening");
    if demo {
        let token = demo::seed(&state).await?;
        demo::print_banner(address, &token);
    } else {
        println!("Corral listening on http://{address}");
    }
    if let Some(metrics_listener) = metrics_listener {
        let metrics_address = metrics_listener.local_addr()?;
        println!("Metrics on http://{metrics_address}/metrics");
        tracing::info!(address = %metrics_address, "metrics listening");
        let app = corral_http::metrics_router(state.clone(), config.metrics_token.clone());
        // Ends with the process: scrapes need no graceful drain, but get the same timeouts.
        let options = config.serve_options();
        tokio::spawn(async move {
            if let Err(e) = corral_http::serve(metrics_listener, app, options, std::future::pending()).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let pruner = tokio::spawn(prune_changes(state.clone(), config.change_retention));
    // Webhook delivery (docs/API.md "Webhooks") runs in every instance; claims keep two
    // instances from sending the same delivery. It stops with the server.
    let (stop_webhooks, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn(corral_http::webhooks::run(state.clone(), async move {
        let _ = stopped.await;
    }));
    let router = corral_http::router_with(state, config.edge_options()?);
    let served = corral_http::serve(listener, router, config.serve_options(), shutdown_signal()).await;
    pruner.abort();
    let _ = stop_webhooks.send(());
    // A pass under way finishes its sends (each bounded by the timeout); what it leaves
    // leased is retried later by any instance, so giving up after that is safe.
    let grace = config.webhooks_timeout + Duration::from_secs(2);
    let dispatcher_abort = dispatcher.abort_handle();
    if tokio::time::timeout(grace, dispatcher).await.is_err() {
        dispatcher_abort.abort();
        tracing::warn!("the webhook dispatcher did not stop in time; its leased deliveries will be retried");
    }
    served?;
    tracing::info!("shut down");
    Ok(())
}

/// How often retention runs: often enough that the feed holds little more than the
/// retention period, rarely enough to cost nothing.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes change events older than `retention`, at start and every [`PRUNE_EVERY`].
/// Several instances may prune at once: each delete is idempotent.
async fn prune_changes(state: AppState, retention: std::time::Duration) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        let cutoff = corral_core::Timestamp(corral_core::Timestamp::now().millis() - retention.as_millis() as i64);
        match state.store().prune_changes(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned change events past retention"),
            Err(e) => tracing::warn!(error = %e, "pruning change events failed"),
        }
    }
}

/// The database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Resolves on SIGINT or SIGTERM; in-flight requests then finish before exit, for at most
/// `shutdown_timeout`.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://corral:s3cret@db:5432/corral"), "postgres://corral:***@db:5432/corral");
        assert_eq!(redact("sqlite://./corral-data/corral.db"), "sqlite://./corral-data/corral.db");
    }
}
