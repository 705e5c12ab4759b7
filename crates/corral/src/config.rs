//! Configuration layering (docs/CONTRACT.md §1): built-in defaults → `corral.toml` (or `--config`) →
//! `CORRAL_*` environment variables → command-line flags, each overriding the one before.

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting, after layering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub listen: String,
    /// Defaults to `sqlite://<data_dir>/corral.db`.
    pub database_url: Option<String>,
    /// PostgreSQL connections per instance.
    pub database_pool_size: usize,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<String>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub log: String,
    pub log_format: String,
    /// Requests per second per credential, and per tenant without a `rate_limit_per_second`
    /// setting of its own (docs/CONTRACT.md §2); 0 = no server default.
    pub rate_limit_per_second: u32,
    /// Time to receive a request head (docs/OPERATIONS.md has every limit below).
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Time to receive a request body, from the end of its head.
    #[serde(with = "duration")]
    pub body_read_timeout: Duration,
    /// Time from the end of a request head to its response.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Keep-alive: how long a connection may wait between requests.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// How long shutdown waits for open connections.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// Requests handled at once; more are answered 503.
    pub max_concurrent_requests: usize,
    /// Comma-separated origins allowed by CORS (`*` for any); unset = CORS off.
    pub cors_origins: Option<String>,
    /// Serve `/metrics` on this address instead of on `listen`.
    pub metrics_listen: Option<String>,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<String>,
    /// How long change events (feed and history) are kept; older ones are deleted.
    #[serde(with = "duration")]
    pub change_retention: Duration,
    /// Let webhooks target private, loopback and link-local addresses (docs/OPERATIONS.md,
    /// "Webhooks"); off, such targets are refused.
    pub webhooks_allow_private_targets: bool,
    /// Connect-plus-answer time of one webhook delivery attempt.
    #[serde(with = "duration")]
    pub webhooks_timeout: Duration,
    /// How often the webhook dispatcher looks for new events and due retries.
    #[serde(with = "duration")]
    pub webhooks_poll_interval: Duration,
    /// Multiplies every webhook retry delay (1 = the ~27 h schedule; tests and staging
    /// shrink it).
    pub webhooks_backoff_scale: f64,
    /// PEM file of certificate authorities trusted for https webhook targets besides the
    /// Mozilla roots (receivers behind a private CA).
    pub webhooks_ca_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let (serve, edge) = (corral_http::ServeOptions::default(), corral_http::EdgeOptions::default());
        let webhooks = corral_http::WebhookOptions::default();
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            database_pool_size: 16,
            data_dir: PathBuf::from("./corral-data"),
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            log: "info".into(),
            log_format: "text".into(),
            rate_limit_per_second: DEFAULT_RATE_LIMIT_PER_SECOND,
            header_read_timeout: serve.header_read_timeout,
            body_read_timeout: edge.body_read_timeout,
            request_timeout: edge.request_timeout,
            idle_timeout: serve.idle_timeout,
            shutdown_timeout: serve.shutdown_timeout,
            max_concurrent_requests: edge.max_concurrent_requests,
            cors_origins: None,
            metrics_listen: None,
            metrics_token: None,
            change_retention: DEFAULT_CHANGE_RETENTION,
            webhooks_allow_private_targets: webhooks.allow_private_targets,
            webhooks_timeout: webhooks.timeout,
            webhooks_poll_interval: webhooks.poll,
            webhooks_backoff_scale: webhooks.backoff_scale,
            webhooks_ca_file: None,
        }
    }
}

/// Values given as command-line flags; only the ones present override.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Layers the sources. `file` is `--config`; without it `./corral.toml` is read if present.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    bail!("config file {} does not exist", path.display());
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("corral.toml")),
        }
        let config: Config = figment
            .merge(Env::prefixed("CORRAL_").only(&ENV_KEYS))
            .merge(Serialized::defaults(flags))
            .extract()
            .context("invalid configuration")?;
        if !(1..=1000).contains(&config.database_pool_size) {
            bail!("database_pool_size must be between 1 and 1000");
        }
        if config.rate_limit_per_second > 1_000_000 {
            bail!("rate_limit_per_second must be between 0 (no server default) and 1000000");
        }
        if !matches!(config.log_format.as_str(), "text" | "json") {
            bail!("log_format must be `text` or `json`, not `{}`", config.log_format);
        }
        for (name, value) in [
            ("header_read_timeout", config.header_read_timeout),
            ("body_read_timeout", config.body_read_timeout),
            ("request_timeout", config.request_timeout),
            ("idle_timeout", config.idle_timeout),
        ] {
            if value.is_zero() {
                bail!("{name} must be longer than zero");
            }
        }
        if config.change_retention < Duration::from_secs(60) {
            bail!("change_retention must be at least one minute");
        }
        if config.webhooks_timeout < Duration::from_millis(100) || config.webhooks_timeout > Duration::from_secs(300) {
            bail!("webhooks_timeout must be between 100ms and 5m");
        }
        if config.webhooks_poll_interval < Duration::from_millis(10) {
            bail!("webhooks_poll_interval must be at least 10ms");
        }
        if !(0.0..=1000.0).contains(&config.webhooks_backoff_scale) {
            bail!("webhooks_backoff_scale must be between 0 and 1000");
        }
        if !(1..=1_000_000).contains(&config.max_concurrent_requests) {
            bail!("max_concurrent_requests must be between 1 and 1000000");
        }
        config.edge_options()?;
        if let Some(token) = &config.metrics_token
            && (token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            bail!("metrics_token must be at least 16 visible ASCII characters");
        }
        Ok(config)
    }

    /// The server default rate limit, if any.
    pub fn rate_limit(&self) -> Option<std::num::NonZeroU32> {
        std::num::NonZeroU32::new(self.rate_limit_per_second)
    }

    /// The router's limits.
    pub fn edge_options(&self) -> Result<corral_http::EdgeOptions> {
        let cors_origins = match &self.cors_origins {
            Some(list) => corral_http::edge::parse_cors_origins(list).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        };
        Ok(corral_http::EdgeOptions {
            body_read_timeout: self.body_read_timeout,
            request_timeout: self.request_timeout,
            max_concurrent_requests: self.max_concurrent_requests,
            cors_origins,
            metrics: corral_http::MetricsEndpoint {
                separate_listener: self.metrics_listen.is_some(),
                token: self.metrics_token.clone(),
            },
        })
    }

    /// The webhook dispatcher's settings; fails if the CA file cannot be read or holds a
    /// certificate the delivery client cannot trust.
    pub fn webhook_options(&self) -> Result<corral_http::WebhookOptions> {
        let extra_roots = match &self.webhooks_ca_file {
            Some(path) => corral_http::webhooks::read_ca_file(path).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        };
        let options = corral_http::WebhookOptions {
            allow_private_targets: self.webhooks_allow_private_targets,
            timeout: self.webhooks_timeout,
            backoff_scale: self.webhooks_backoff_scale,
            poll: self.webhooks_poll_interval,
            extra_roots,
        };
        corral_http::webhooks::client(&options).map_err(|e| anyhow::anyhow!("webhooks_ca_file: {e}"))?;
        Ok(options)
    }

    /// The connection limits.
    pub fn serve_options(&self) -> corral_http::ServeOptions {
        corral_http::ServeOptions {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
            shutdown_timeout: self.shutdown_timeout,
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("corral.db").display()))
    }

    /// The HS256 secret: configured, or generated once into `<data dir>/jwt.secret` (0600).
    pub fn jwt_secret(&self) -> Result<Vec<u8>> {
        if let Some(s) = &self.jwt_secret {
            if s.len() < 16 {
                bail!("CORRAL_JWT_SECRET must be at least 16 characters");
            }
            return Ok(s.as_bytes().to_vec());
        }
        let path = self.data_dir.join("jwt.secret");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().as_bytes().to_vec());
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).context("no OS randomness")?;
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut f) => f.write_all(secret.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
        Ok(secret.into_bytes())
    }

    /// The token verifier and signer.
    pub fn auth(&self) -> Result<corral_http::AuthConfig> {
        let auth = corral_http::AuthConfig::new(self.jwt_secret()?, self.jwt_issuer.clone(), self.jwt_audience.clone());
        match &self.jwt_public_key_file {
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                auth.with_public_key_pem(&pem).map_err(anyhow::Error::msg)
            }
            None => Ok(auth),
        }
    }
}

/// The built-in `rate_limit_per_second`.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 100;

/// The built-in `change_retention`: 30 days.
pub const DEFAULT_CHANGE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Environment variables read (as `CORRAL_<KEY>`).
const ENV_KEYS: [&str; 26] = [
    "listen",
    "database_url",
    "database_pool_size",
    "data_dir",
    "jwt_secret",
    "jwt_public_key_file",
    "jwt_issuer",
    "jwt_audience",
    "log",
    "log_format",
    "rate_limit_per_second",
    "header_read_timeout",
    "body_read_timeout",
    "request_timeout",
    "idle_timeout",
    "shutdown_timeout",
    "max_concurrent_requests",
    "cors_origins",
    "metrics_listen",
    "metrics_token",
    "change_retention",
    "webhooks_allow_private_targets",
    "webhooks_timeout",
    "webhooks_poll_interval",
    "webhooks_backoff_scale",
    "webhooks_ca_file",
];

/// Durations as `10s`, `500ms`, `1m 30s` (humantime), or a whole number of seconds.
mod duration {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(n) => Ok(Duration::from_secs(n)),
            Raw::Text(text) => humantime::parse_duration(text.trim())
                .map_err(|e| D::Error::custom(format!("`{text}` is not a duration such as 10s, 500ms or 1m ({e})"))),
        }
    }
}
