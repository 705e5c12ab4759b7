//! The filter values `_query` takes are exactly the ones the tenant's OpenAPI document
//! allows: for every condition shape the document names (fields × operators × value schema),
//! a fixed set of probe values is sent and the server's answer (200 or 400) is held to the
//! schema's verdict. Schemathesis found such gaps one seed at a time (`contacts.primary_email
//! in [""]`, a currency below −10^15); this walks all of them on every run.

use crate::helpers::{TestApp, raw_send};
use serde_json::{Value, json};

const UUID: &str = "0b6d3c38-7f0e-4f4b-9a51-6c6f0d1c2e3a";

/// Values of every JSON shape, near every documented edge (lengths, magnitudes, formats).
fn probes() -> Vec<Value> {
    let mut out = vec![
        json!(""),
        json!(" "),
        json!("x"),
        json!("ACME"),
        json!("a@b.co"),
        json!("Jo@Example.COM"),
        json!("not an email@"),
        json!("acme.com"),
        json!("https://www.acme.com/"),
        json!("www.acme"),
        json!("5"),
        json!("+5"),
        json!(" 5"),
        json!("-5"),
        json!("1.5"),
        json!("1e3"),
        json!("12345678901234567890"),
        json!("2024-01-01"),
        json!("2024-13-01"),
        json!("2024-01-01T00:00:00Z"),
        json!("2024-01-01 00:00"),
        json!(UUID),
        json!(format!("acc-{UUID}")),
        json!(format!("con-{UUID}")),
        json!(format!("usr-{UUID}")),
        json!(format!("ACC-{UUID}")),
        json!(format!(" {UUID} ")),
        json!(UUID.replace('-', "")),
        json!(format!("{{{UUID}}}")),
        json!("gold"),
        json!("api"),
        json!("x".repeat(1_000)),
        json!("x".repeat(1_001)),
        json!("a\u{0}b"),
        json!(0),
        json!(5),
        json!(-5),
        json!(1.5),
        json!(1e15),
        json!(-1e15),
        json!(1_000_000_000_000_001.0),
        json!(-1_000_000_000_000_001.0),
        json!(1e300),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(true),
        json!(null),
        json!({"amount": 5}),
        json!({"amount": "5"}),
        json!({}),
        json!([]),
    ];
    out.push(json!(["x"]));
    out
}

/// The values a shape's `value` is sent as, built from one probe.
fn shaped(kind: &str, probe: &Value) -> Vec<Value> {
    match kind {
        "List" => vec![json!([probe])],
        "Range" => vec![json!([probe, probe])],
        _ => vec![probe.clone()],
    }
}

/// The condition components of a record type's filter: (component name, its schema).
fn conditions<'a>(doc: &'a Value, prefix: &str) -> Vec<(String, &'a Value)> {
    let members = doc["components"]["schemas"][format!("{prefix}Filter")]["anyOf"].as_array().expect("a Filter union");
    members
        .iter()
        .filter_map(|m| m["$ref"].as_str()?.strip_prefix("#/components/schemas/"))
        .filter(|name| !name.starts_with(&format!("{prefix}Filter")))
        .map(|name| (name.to_owned(), &doc["components"]["schemas"][name]))
        .collect()
}

#[tokio::test]
async fn query_takes_exactly_the_filter_values_the_document_allows() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    // One custom attribute of every value type, so their shapes are walked too.
    for (rt, vt, extra) in [
        ("account", "email", json!({})),
        ("account", "currency", json!({})),
        ("account", "percent", json!({})),
        ("account", "number", json!({})),
        ("account", "date", json!({})),
        ("account", "timestamp", json!({})),
        ("account", "url", json!({})),
        ("account", "phone_number", json!({})),
        ("account", "boolean", json!({})),
        ("account", "select", json!({"options": [{"api_name": "gold"}, {"api_name": "silver"}]})),
        ("account", "record_reference", json!({"target": "user"})),
        ("contact", "string", json!({"is_array": true})),
    ] {
        let mut body = json!({"api_name": format!("c_{vt}"), "value_type": vt});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        app.post(&format!("/api/v2/_schema/{rt}/attributes")).bearer(&admin).json(body).send().await.assert_status(201);
    }
    let (status, doc) = raw_send(&app.router, "GET", "/openapi.json", &admin, None).await;
    assert_eq!(status, 200);
    let components = json!({"components": doc["components"]});

    let probes = probes();
    let mut mismatches = Vec::new();
    let mut checked = 0usize;
    for (rt, prefix) in [("account", "Account"), ("contact", "Contact"), ("user", "User")] {
        for (name, schema) in conditions(&doc, prefix) {
            let kind = ["Comparison", "Match", "List", "Range", "Presence"]
                .into_iter()
                .find(|k| name.ends_with(k) || name.ends_with(&format!("{k}Condition")))
                .unwrap_or_else(|| panic!("{name}: a condition of no known shape"));
            let mut root = components.clone();
            root["allOf"] = json!([schema]);
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&root)
                .unwrap();
            let fields: Vec<&str> =
                schema["properties"]["field"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            let operators: Vec<&str> =
                schema["properties"]["operator"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            // Every field with the first operator, every operator with the first field.
            let pairs = fields
                .iter()
                .map(|f| (*f, operators[0]))
                .chain(operators.iter().skip(1).map(|o| (fields[0], *o)))
                .collect::<Vec<_>>();
            let values: Vec<Value> = if kind == "Presence" {
                vec![Value::Null, json!("x")]
            } else {
                probes.iter().flat_map(|p| shaped(kind, p)).collect()
            };
            for (field, operator) in pairs {
                for value in &values {
                    let node = json!({"field": field, "operator": operator, "value": value});
                    let documented = validator.is_valid(&node);
                    let body = json!({"filters": [node], "limit": 1});
                    let (status, answer) =
                        raw_send(&app.router, "POST", &format!("/api/v2/{rt}/_query"), &admin, Some(body)).await;
                    checked += 1;
                    let accepted = match status {
                        200 => true,
                        400 | 422 => false,
                        other => panic!("{rt} {node}: answered {other}: {answer}"),
                    };
                    if accepted != documented {
                        let verdict = if documented { "documented, refused" } else { "undocumented, accepted" };
                        mismatches.push(format!("{rt} {name}: {verdict}: {node} -> {}", answer["message"]));
                    }
                }
            }
        }
    }
    assert!(checked > 1_000, "only {checked} conditions were probed");
    assert!(mismatches.is_empty(), "{} of {checked} disagree:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// A probe as query-string text (lists joined by commas, as `style: form` sends them).
fn query_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => items.iter().map(query_text).collect::<Option<Vec<_>>>().map(|t| t.join(",")),
        _ => None,
    }
}

/// What a query-string text stands for under a parameter schema, as a client that typed it
/// sent it: a number for a numeric schema when the text is one, a boolean for a boolean one.
fn as_typed(text: &str, schema: &Value) -> Value {
    let parsed = serde_json::from_str::<Value>(text).ok();
    match schema["type"].as_str() {
        // A client sends an integer as its digits (never `1e3` or `5.0`).
        Some("integer") => parsed.filter(|v| v.is_i64() || v.is_u64()).unwrap_or_else(|| json!(text)),
        Some("number") => parsed.filter(Value::is_number).unwrap_or_else(|| json!(text)),
        Some("boolean") => parsed.filter(Value::is_boolean).unwrap_or_else(|| json!(text)),
        Some("array") => json!(text.split(',').map(|t| as_typed(t, &schema["items"])).collect::<Vec<_>>()),
        _ => json!(text),
    }
}

#[tokio::test]
async fn v1_lists_take_exactly_the_filter_values_the_document_allows() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let (_, doc) = raw_send(&app.router, "GET", "/openapi.json", &admin, None).await;
    const NOT_FILTERS: &[&str] = &["limit", "cursor", "include_deleted", "q", "count", "fields"];
    let mut probes = probes();
    probes.extend([json!(i64::MIN), json!(1e-5), json!(0.333_333_333_333_333_3), json!(["5", "x"])]);
    // Sort keys (`sort` is probed with the filters).
    probes.extend(["name", "-name", "+name", " name", "name,", ",", "name,-industry", "name,name"].map(|s| json!(s)));
    let mut mismatches = Vec::new();
    let mut checked = 0usize;
    for collection in ["accounts", "contacts"] {
        let path = format!("/api/v1/crm/{collection}");
        let parameters = doc["paths"][&path]["get"]["parameters"].as_array().unwrap();
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            let name = parameter["name"].as_str().unwrap();
            if NOT_FILTERS.contains(&name) {
                continue;
            }
            let mut root = json!({"components": doc["components"]});
            root["allOf"] = json!([parameter["schema"]]);
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&root)
                .unwrap();
            for probe in &probes {
                let Some(text) = query_text(probe) else { continue };
                let documented = validator.is_valid(&as_typed(&text, &parameter["schema"]));
                let query: String =
                    url::form_urlencoded::Serializer::new(String::new()).append_pair(name, &text).finish();
                let (status, answer) =
                    raw_send(&app.router, "GET", &format!("{path}?{query}&limit=1"), &admin, None).await;
                checked += 1;
                let accepted = match status {
                    200 => true,
                    400 | 422 | 414 => false,
                    other => panic!("{path}?{query}: answered {other}: {answer}"),
                };
                if accepted != documented {
                    let verdict = if documented { "documented, refused" } else { "undocumented, accepted" };
                    mismatches.push(format!("{verdict}: {path}?{query} -> {}", answer["error"]["message"]));
                }
            }
        }
    }
    assert!(checked > 1_000, "only {checked} parameters were probed");
    assert!(mismatches.is_empty(), "{} of {checked} disagree:\n{}", mismatches.len(), mismatches.join("\n"));
}
