//! Every response the suite receives is checked against the OpenAPI document the server
//! serves to the same caller (the tenant's own document when the request carries
//! credentials): the path and method must be documented, the status declared, the body valid
//! against the declared schema, declared headers well-formed and required ones present. A response the document
//! does not describe fails the test that caused it.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// Documents fetched per credential, and compiled validators per document and schema.
#[derive(Default)]
pub struct ContractCache {
    documents: Mutex<HashMap<String, Arc<Value>>>,
    validators: Mutex<HashMap<(usize, String), Arc<jsonschema::Validator>>>,
}

/// The credential headers of a request, as a cache key ("" when anonymous).
fn credential_key(headers: &HeaderMap) -> String {
    ["authorization", "x-api-key"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(|v| format!("{h}:{v}")))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ContractCache {
    /// Forgets every document (after a schema change).
    pub fn invalidate(&self) {
        self.documents.lock().unwrap().clear();
    }

    async fn document(&self, router: &Router, headers: &HeaderMap) -> Arc<Value> {
        let key = credential_key(headers);
        if let Some(doc) = self.documents.lock().unwrap().get(&key) {
            return doc.clone();
        }
        let mut request = Request::builder().method(Method::GET).uri("/openapi.json");
        for h in ["authorization", "x-api-key"] {
            if let Some(v) = headers.get(h) {
                request = request.header(h, v);
            }
        }
        let response = router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let ok = response.status() == StatusCode::OK;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        // Credentials the server refuses see the anonymous (base) document's error shapes.
        let doc = if ok { serde_json::from_slice(&bytes).unwrap() } else { corral_http::openapi() };
        let doc = Arc::new(doc);
        self.documents.lock().unwrap().insert(key, doc.clone());
        doc
    }

    fn validator(&self, doc: &Arc<Value>, schema: &Value) -> Arc<jsonschema::Validator> {
        let key = (Arc::as_ptr(doc) as usize, schema.to_string());
        if let Some(v) = self.validators.lock().unwrap().get(&key) {
            return v.clone();
        }
        // Refs point into the document's components: validate with them at the root.
        let root = json!({"allOf": [schema], "components": doc["components"]});
        let validator = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&root)
                .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}\n{schema}")),
        );
        self.validators.lock().unwrap().insert(key, validator.clone());
        validator
    }
}

/// The documented path template that `path` matches, preferring literal segments.
fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut best: Option<(&str, usize)> = None;
    for candidate in doc["paths"].as_object()?.keys() {
        let parts: Vec<&str> = candidate.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') {
                !s.is_empty()
            } else {
                literal += 1;
                p == s
            }
        });
        if fits && best.is_none_or(|(_, l)| literal > l) {
            best = Some((candidate, literal));
        }
    }
    best.map(|(p, _)| p)
}

/// One request and what came back.
pub struct Exchange<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub request_headers: &'a HeaderMap,
    pub status: StatusCode,
    pub response_headers: &'a HeaderMap,
    pub body: &'a Value,
}

/// Checks one exchange against the document; panics with what does not match.
pub async fn check(cache: &ContractCache, router: &Router, exchange: Exchange<'_>) {
    let Exchange { method, path, request_headers, status, response_headers, body } = exchange;
    let doc = cache.document(router, request_headers).await;
    let path = path.split('?').next().unwrap_or(path);
    let operation = template(&doc, path).and_then(|t| doc["paths"][t].get(method.as_str().to_lowercase()));
    let code = status.as_u16();
    let response = match operation {
        Some(op) => {
            let responses = &op["responses"];
            let range = format!("{}XX", code / 100);
            responses.get(code.to_string()).or_else(|| responses.get(&range)).unwrap_or_else(|| {
                panic!("{method} {path} answered {code}, which the document does not declare; body: {body}")
            })
        }
        // Unknown paths and methods are errors, always in the one error body.
        None => {
            assert!(code >= 400, "{method} {path} answered {code} but is not in the document; body: {body}");
            &json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
        }
    };
    let media_type = response_headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
    if let Some(content) = response["content"].as_object().filter(|c| !c.contains_key("application/json")) {
        // Pages and files: the media type must be one the document names.
        let media_type = media_type.unwrap_or_default();
        assert!(
            content.contains_key(&media_type),
            "{method} {path} {code}: {media_type} is not a documented media type"
        );
        return;
    }
    match response["content"]["application/json"].get("schema") {
        Some(schema) => {
            let validator = cache.validator(&doc, schema);
            let errors: Vec<String> =
                validator.iter_errors(body).take(5).map(|e| format!("{} at {}", e, e.instance_path)).collect();
            assert!(
                errors.is_empty(),
                "{method} {path} {code}: the body does not match the document: {errors:#?}\nbody: {body}"
            );
            assert_eq!(
                response_headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{method} {path} {code}: JSON bodies are application/json"
            );
        }
        None => assert!(body.is_null(), "{method} {path} {code}: the document declares no body, got {body}"),
    }
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        let header = match header.get("$ref").and_then(Value::as_str) {
            Some(r) => &doc["components"]["headers"][r.rsplit('/').next().unwrap_or_default()],
            None => header,
        };
        if header["required"] == json!(true) {
            assert!(
                response_headers.contains_key(name.as_str()),
                "{method} {path} {code}: required header {name} is missing"
            );
        }
        if let Some(value) = response_headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            let validator = cache.validator(&doc, &header["schema"]);
            assert!(
                validator.is_valid(&json!(value)),
                "{method} {path} {code}: header {name}: {value:?} does not match the document"
            );
        }
    }
    assert!(response_headers.contains_key("x-request-id"), "{method} {path}: every response carries x-request-id");
}
