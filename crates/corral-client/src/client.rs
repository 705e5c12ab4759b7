//! [`Client`]: the base URL, the credentials, the HTTP connection pool, and the one place
//! requests are built, sent and their responses turned into values or [`Error`]s.

use crate::admin::{ApiKeys, Schema};
use crate::error::{self, Error, Result};
use crate::model::{Account, Contact};
use crate::records::Records;
use crate::users::Users;
use corral_core::RecordType;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// How the client authenticates.
#[derive(Clone, Default)]
pub enum Auth {
    /// `Authorization: Bearer <token>`: a JWT, or an API key used as a bearer token.
    Bearer(String),
    /// `X-Api-Key: <key>` (`crl_<id>_<secret>`).
    ApiKey(String),
    /// No credentials (health routes, or a proxy that adds them).
    #[default]
    None,
}

impl Auth {
    pub fn bearer(token: impl Into<String>) -> Auth {
        Auth::Bearer(token.into())
    }

    pub fn api_key(key: impl Into<String>) -> Auth {
        Auth::ApiKey(key.into())
    }
}

impl std::fmt::Debug for Auth {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Bearer(<redacted>)",
            Auth::ApiKey(_) => "ApiKey(<redacted>)",
            Auth::None => "None",
        })
    }
}

struct Inner {
    base: Url,
    http: reqwest::Client,
    headers: HeaderMap,
}

/// A Corral API client. Cheap to clone (the connection pool is shared); every resource handle
/// ([`accounts`](Self::accounts), [`contacts`](Self::contacts), …) holds a clone, so handles
/// and the streams they return are `'static` and `Send`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.inner.base.as_str()).finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with more than a base URL and credentials.
#[derive(Debug)]
pub struct ClientBuilder {
    base: String,
    auth: Auth,
    timeout: Option<Duration>,
    user_agent: Option<String>,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn bearer(self, token: impl Into<String>) -> Self {
        self.auth(Auth::bearer(token))
    }

    pub fn api_key(self, key: impl Into<String>) -> Self {
        self.auth(Auth::api_key(key))
    }

    /// A timeout for each whole request (none by default). Ignored with [`http_client`](Self::http_client).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The `User-Agent` (default `corral-client/<version>`). Ignored with [`http_client`](Self::http_client).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// Uses a `reqwest::Client` you built: your proxy, TLS or connection settings.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    pub fn build(self) -> Result<Client> {
        let mut base = Url::parse(&self.base).map_err(|e| Error::Config(format!("base URL `{}`: {e}", self.base)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("base URL `{}` must be an http:// or https:// URL", self.base)));
        }
        base.set_query(None);
        base.set_fragment(None);
        let mut headers = HeaderMap::new();
        let secret = |v: &str| {
            let mut value =
                HeaderValue::from_str(v).map_err(|_| Error::Config("credentials must be visible ASCII".into()))?;
            value.set_sensitive(true);
            Ok::<_, Error>(value)
        };
        match &self.auth {
            Auth::Bearer(token) => {
                headers.insert(reqwest::header::AUTHORIZATION, secret(&format!("Bearer {token}"))?);
            }
            Auth::ApiKey(key) => {
                headers.insert(HeaderName::from_static("x-api-key"), secret(key)?);
            }
            Auth::None => {}
        }
        let http = match self.http {
            Some(http) => http,
            None => {
                let agent = self.user_agent.unwrap_or_else(|| format!("corral-client/{}", env!("CARGO_PKG_VERSION")));
                let mut builder = reqwest::Client::builder().user_agent(agent);
                if let Some(timeout) = self.timeout {
                    builder = builder.timeout(timeout);
                }
                builder.build()?
            }
        };
        Ok(Client { inner: Arc::new(Inner { base, http, headers }) })
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`; a path prefix
    /// such as `https://crm.example.com/corral` is kept).
    pub fn new(base_url: impl Into<String>, auth: Auth) -> Result<Client> {
        Client::builder(base_url).auth(auth).build()
    }

    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder { base: base_url.into(), auth: Auth::None, timeout: None, user_agent: None, http: None }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// Accounts: v1 documents, v2 queries and asserts, domains, the `contacts` relationship.
    pub fn accounts(&self) -> Records<Account> {
        Records::new(self.clone())
    }

    /// Contacts: v1 documents, v2 queries and asserts, emails, phones, the `accounts` relationship.
    pub fn contacts(&self) -> Records<Contact> {
        Records::new(self.clone())
    }

    /// The user directory (read-only).
    pub fn users(&self) -> Users {
        Users::new(self.clone())
    }

    /// The schema of a record type and its custom attributes (`schema:write` to change them).
    pub fn schema(&self, record_type: RecordType) -> Schema {
        Schema::new(self.clone(), record_type)
    }

    /// API keys of the tenant (admin).
    pub fn api_keys(&self) -> ApiKeys {
        ApiKeys::new(self.clone())
    }

    /// `GET /ready`: `Ok(())` when the server and its database answer.
    pub async fn ready(&self) -> Result<()> {
        self.send(Request::new(Method::GET, &["ready"])).await.map(drop)
    }

    /// The URL of `segments` (each percent-encoded) under the base, with `query`.
    pub(crate) fn url(&self, segments: &[&str], query: &[(String, String)]) -> Url {
        let mut url = self.inner.base.clone();
        url.path_segments_mut().expect("checked in build").pop_if_empty().extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request; non-success responses become [`Error`]s.
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Reply> {
        let url = self.url(request.segments, &request.query);
        let mut builder = self.inner.http.request(request.method, url).headers(self.inner.headers.clone());
        if let Some(version) = request.if_match {
            builder = builder.header(reqwest::header::IF_MATCH, format!("\"{version}\""));
        }
        for (name, value) in request.headers {
            let value =
                HeaderValue::from_str(&value).map_err(|_| Error::Config(format!("bad `{name}` header value")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let version = header("etag").and_then(|t| t.trim_start_matches("W/").trim_matches('"').parse::<i64>().ok());
        let request_id = header("x-request-id");
        let retry_after = header("retry-after").and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let body = response.bytes().await?.to_vec();
        if !(200..300).contains(&status) {
            return Err(error::from_response(status, request_id, retry_after, &body));
        }
        Ok(Reply { status, version, body })
    }

    /// [`send`](Self::send), decoding the body as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(&self, request: Request<'_>) -> Result<T> {
        self.send(request).await?.json()
    }
}

/// One request to send.
pub(crate) struct Request<'a> {
    method: Method,
    segments: &'a [&'a str],
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    if_match: Option<i64>,
    headers: Vec<(&'static str, String)>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: Method, segments: &'a [&'a str]) -> Self {
        Request { method, segments, query: Vec::new(), body: None, if_match: None, headers: Vec::new() }
    }

    pub(crate) fn get(segments: &'a [&'a str]) -> Self {
        Self::new(Method::GET, segments)
    }

    pub(crate) fn post(segments: &'a [&'a str]) -> Self {
        Self::new(Method::POST, segments)
    }

    pub(crate) fn patch(segments: &'a [&'a str]) -> Self {
        Self::new(Method::PATCH, segments)
    }

    pub(crate) fn delete(segments: &'a [&'a str]) -> Self {
        Self::new(Method::DELETE, segments)
    }

    pub(crate) fn query(mut self, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        self.query.extend(pairs);
        self
    }

    pub(crate) fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    pub(crate) fn json(mut self, body: &impl Serialize) -> Result<Self> {
        self.body = Some(serde_json::to_vec(body).map_err(Error::Encode)?);
        Ok(self)
    }

    pub(crate) fn if_match(mut self, version: Option<i64>) -> Self {
        self.if_match = version;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A success response.
pub(crate) struct Reply {
    pub status: u16,
    /// The record version from `ETag`, when the response shows one record.
    pub version: Option<i64>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|source| Error::Decode {
            status: self.status,
            source,
            body: error::snippet(&self.body),
        })
    }
}
