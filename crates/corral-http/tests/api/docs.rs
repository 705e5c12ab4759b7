//! `GET /docs`: the page and every file it refers to are served from the binary, with the
//! right content types, cache headers and CSP, without authentication.

use crate::helpers::TestApp;

/// The `/docs/assets/…` URLs in the page's `src` and `href` attributes.
fn asset_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (start, _) in html.match_indices(attribute) {
            let rest = &html[start + attribute.len()..];
            let url = &rest[..rest.find('"').expect("closing quote")];
            if url.starts_with("/docs/assets/") {
                urls.push(url.to_owned());
            }
        }
    }
    urls
}

#[tokio::test]
async fn docs_page_and_its_assets_are_served_with_their_content_types() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs").send().await;
    page.assert_status(200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").expect("the page has a CSP");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("http"), "the page may load nothing from another origin: {csp}");
    let html = page.body.as_str().expect("an HTML body");
    assert!(html.contains("id=\"swagger-ui\"") && html.contains("id=\"token\""));

    let urls = asset_urls(html);
    let expected = [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("docs.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("docs.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
    ];
    assert_eq!(urls.len(), expected.len(), "{urls:?}");
    for (name, content_type) in expected {
        let url = urls.iter().find(|u| u.starts_with(&format!("/docs/assets/{name}?v="))).expect(name);
        let r = app.get(url).send().await;
        r.assert_status(200);
        assert_eq!(r.header("content-type"), Some(content_type), "{url}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"), "{url}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{url}");
        assert!(r.header("content-length").is_some_and(|n| n != "0"), "{url}");
        // Without the current hash the file is still served, but revalidated.
        let plain = app.get(&format!("/docs/assets/{name}")).send().await;
        plain.assert_status(200);
        assert_eq!(plain.header("cache-control"), Some("no-cache"));
        assert_eq!(plain.header("etag"), r.header("etag"));
    }
}

#[tokio::test]
async fn docs_answers_304_to_a_matching_etag() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs").send().await;
    let etag = page.header("etag").expect("an ETag").to_owned();
    let again = app.get("/docs").header("if-none-match", &etag).send().await;
    again.assert_status(304);
    assert_eq!(again.body, serde_json::Value::Null);
    let changed = app.get("/docs").header("if-none-match", "\"something-else\"").send().await;
    changed.assert_status(200);
}

#[tokio::test]
async fn unknown_docs_assets_are_the_usual_404() {
    let app = TestApp::spawn().await;
    app.get("/docs/assets/swagger-ui.js.map").send().await.assert_error(404, "route_not_found");
    app.get("/docs/assets/../openapi.json").send().await.assert_status(404);
    app.post("/docs").send().await.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn docs_routes_are_declared_public_in_the_openapi_document() {
    let doc = corral_http::openapi();
    for path in ["/docs", "/docs/assets/{file}"] {
        assert_eq!(doc["paths"][path]["get"]["security"], serde_json::json!([]), "{path}");
    }
}
