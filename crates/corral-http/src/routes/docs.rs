//! `GET /docs`: the interactive API reference, and `GET /docs/assets/{file}`, the files it
//! loads. Everything is compiled into the binary, so the page works with no network.
//!
//! **UI: Swagger UI** (npm `swagger-ui-dist`; the exact version, license and checksums are in
//! `assets/README.md`). Chosen for: "Try it out" that honours the document's `bearer` security
//! scheme and can be authorized from script through a documented API (`preauthorizeApiKey`),
//! plugins that let the page keep its token bar and Swagger UI's "Authorize" dialog in step,
//! full OpenAPI 3.1 rendering, and a bundle that runs with no inline script and no `eval`, so
//! the page keeps a CSP of its own origin only (`scripts/browser-test` fails on any violation).
//! It is also the reference most API users already know.
//!
//! How the token flows (`assets/docs/docs.js`): the bar above the reference takes a JWT or a
//! `crl_…` API key; the page then fetches `/openapi.json` with `Authorization: Bearer <token>`
//! (the caller tenant's document) and authorizes Swagger UI's `bearer` scheme with the same
//! token, so "Try it out" requests carry it. Without a token it shows the anonymous document.
//! The token stays in the tab's `sessionStorage` and is sent to this origin only.
//!
//! These routes are plain axum routes, unauthenticated like `/openapi.json`, and are not part
//! of the OpenAPI document. There are no `/redoc` or `/swagger-ui` aliases: one URL to learn.
//!
//! Caching: asset URLs in the page carry a content hash (`?v=…`); a request with the current
//! hash is cached for a year as immutable. The page itself and unversioned asset requests are
//! revalidated every time (`no-cache`, with an `ETag`).

use crate::error::ApiError;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corral_core::ErrorCode;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The page's policy: its own origin only. Swagger UI styles elements through the DOM (allowed
/// by `style-src 'self'`) and draws some icons as `data:` images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; \
     form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// A hashed asset URL may be cached for good: a new build changes the hash.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page and unversioned asset requests: revalidate each time (cheap with the ETag).
const CACHE_REVALIDATE: &str = "no-cache";

/// `(file name, content type, bytes)` of every file the page may load.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    ("swagger-ui.css", "text/css; charset=utf-8", include_bytes!("../../assets/swagger-ui/swagger-ui.css")),
    ("favicon-32x32.png", "image/png", include_bytes!("../../assets/swagger-ui/favicon-32x32.png")),
    ("docs.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/docs/docs.js")),
    ("docs.css", "text/css; charset=utf-8", include_bytes!("../../assets/docs/docs.css")),
];

/// The files under `/docs/assets/`, by name, with their media types (for the OpenAPI document).
pub fn asset_names() -> Vec<(&'static str, &'static str)> {
    FILES.iter().map(|(name, content_type, _)| (*name, content_type.split(';').next().unwrap_or_default())).collect()
}

/// The page template; `{{file}}` stands for that file's hashed URL.
const PAGE_TEMPLATE: &str = include_str!("../../assets/docs/index.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// First 16 hex digits of the SHA-256 of `bytes`.
    hash: String,
}

struct Page {
    html: String,
    etag: String,
    assets: Vec<Asset>,
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Hashes the assets and renders the page, once per process.
fn page() -> &'static Page {
    static PAGE: OnceLock<Page> = OnceLock::new();
    PAGE.get_or_init(|| {
        let assets: Vec<Asset> = FILES
            .iter()
            .map(|&(name, content_type, bytes)| Asset { name, content_type, bytes, hash: short_hash(bytes) })
            .collect();
        let mut html = PAGE_TEMPLATE.to_owned();
        for asset in &assets {
            html = html
                .replace(&format!("{{{{{}}}}}", asset.name), &format!("/docs/assets/{}?v={}", asset.name, asset.hash));
        }
        debug_assert!(!html.contains("{{"), "the docs page refers to a file that is not embedded");
        let etag = format!("\"{}\"", short_hash(html.as_bytes()));
        Page { html, etag, assets }
    })
}

fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"))
}

/// A static response: `body` (or `304` when the client holds it) with the common headers.
fn respond(
    request: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    cache: &'static str,
    body: Response,
) -> Response {
    let mut response = if not_modified(request, etag) { StatusCode::NOT_MODIFIED.into_response() } else { body };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /docs`: the reference page.
pub async fn docs_page(request: HeaderMap) -> Response {
    let page = page();
    let mut response =
        respond(&request, "text/html; charset=utf-8", &page.etag, CACHE_REVALIDATE, page.html.clone().into_response());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /docs/assets/{file}`: one embedded file.
pub async fn docs_asset(Path(file): Path<String>, RawQuery(query): RawQuery, request: HeaderMap) -> Response {
    let Some(asset) = page().assets.iter().find(|a| a.name == file) else {
        return ApiError::new(ErrorCode::RouteNotFound, "no such file under /docs/assets").into_response();
    };
    let current = query.as_deref().is_some_and(|q| q.split('&').any(|pair| pair == format!("v={}", asset.hash)));
    let cache = if current { CACHE_IMMUTABLE } else { CACHE_REVALIDATE };
    let etag = format!("\"{}\"", asset.hash);
    respond(&request, asset.content_type, &etag, cache, asset.bytes.into_response())
}
