//! The operations of the OpenAPI document, one concrete path per record type and
//! collection (`/api/v2/account/_query`, `/api/v1/crm/contacts/{id}`, …). The router serves
//! them through generic routes ([`crate::router`]); the document names each type's own
//! request and response schemas.

use super::components::{reference, stem};
use super::values::{self, Attribute};
use corral_core::custom::TenantSchema;
use corral_core::filter::{MAX_IN_VALUES, Relation};
use corral_core::list::{V1_MAX_LIMIT, V2_MAX_LIMIT};
use corral_core::{RecordType, v2};
use serde_json::{Map, Value as Json, json};

/// One operation under construction.
struct Op {
    method: &'static str,
    path: String,
    body: Json,
    public: bool,
}

const ID_PATTERN: &str =
    "^\\s*([A-Za-z]{3}-)?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\\s*$";

fn op(
    method: &'static str,
    path: impl Into<String>,
    id: impl Into<String>,
    tag: &str,
    summary: impl Into<String>,
) -> Op {
    Op {
        method,
        path: path.into(),
        body: json!({"operationId": id.into(), "tags": [tag], "summary": summary.into(), "parameters": [], "responses": {}}),
        public: false,
    }
}

impl Op {
    fn describe(mut self, text: &str) -> Self {
        self.body["description"] = json!(text);
        self
    }
    fn param(mut self, name: &str, location: &str, schema: Json, description: &str) -> Self {
        let mut p = json!({"name": name, "in": location, "schema": schema});
        if location == "path" {
            p["required"] = json!(true);
        }
        if !description.is_empty() {
            p["description"] = json!(description);
        }
        self.body["parameters"].as_array_mut().expect("an array").push(p);
        self
    }
    fn shared(mut self, name: &str) -> Self {
        self.body["parameters"]
            .as_array_mut()
            .expect("an array")
            .push(json!({"$ref": format!("#/components/parameters/{name}")}));
        self
    }
    fn id(self, what: &str) -> Self {
        self.param(
            "id",
            "path",
            json!({"type": "string", "pattern": ID_PATTERN}),
            &format!("{what} id (a uuid, or the v1 spelling with its prefix)"),
        )
    }
    fn query(self, name: &str, schema: Json, description: &str) -> Self {
        self.param(name, "query", schema, description)
    }
    fn body(mut self, schema: &str) -> Self {
        self.body["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}});
        self
    }
    fn reply(mut self, status: u16, description: &str, schema: Option<&str>, headers: &[&str]) -> Self {
        let mut response = json!({"description": description, "headers": {}});
        if let Some(schema) = schema {
            response["content"] = json!({"application/json": {"schema": reference(schema)}});
        }
        for h in headers.iter().chain(&["RequestId"]) {
            response["headers"][header_name(h)] = json!({"$ref": format!("#/components/headers/{h}")});
        }
        self.body["responses"][status.to_string()] = response;
        self
    }
    fn public(mut self) -> Self {
        self.public = true;
        self
    }
    fn finish(mut self) -> Op {
        let errors = [
            ("4XX", "Client error: the stable code says which (docs/CONTRACT.md §9)"),
            ("5XX", "Server or database error"),
        ];
        for (status, description) in errors {
            self.body["responses"][status] = json!({"description": description,
                "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
                "content": {"application/json": {"schema": reference("Error")}}});
        }
        self.body["responses"]["5XX"]["headers"]["Retry-After"] =
            json!({"$ref": "#/components/headers/RetryAfterUnavailable"});
        if self.public {
            self.body["security"] = json!([]);
        } else {
            // Authenticated callers are rate limited (docs/CONTRACT.md §2): every response but
            // a failed authentication reports the limits, and 429 says when to retry.
            self.body["responses"]["429"] = json!({"description": "Rate limited: over the credential's or the tenant's requests per second",
                "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"},
                            "Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                "content": {"application/json": {"schema": reference("Error")}}});
            for response in self.body["responses"].as_object_mut().expect("an object").values_mut() {
                for h in RATE_LIMIT_HEADERS {
                    response["headers"][header_name(h)] = json!({"$ref": format!("#/components/headers/{h}")});
                }
            }
        }
        // Lists in query strings are comma lists.
        for p in self.body["parameters"].as_array_mut().into_iter().flatten() {
            if p["in"] == "query" && p["schema"]["type"] == "array" {
                p["style"] = json!("form");
                p["explode"] = json!(false);
            }
        }
        if self.body["parameters"].as_array().is_some_and(Vec::is_empty) {
            self.body.as_object_mut().expect("an object").remove("parameters");
        }
        self
    }
}

/// `POST /api/v2/{type}/_bulk`: NDJSON in and out (docs/API.md, Bulk import).
fn bulk_op(base: &str, t: &str, p: &str) -> Op {
    let line = json!({"type": "object", "required": ["op"], "properties": {"op": {"type": "string", "enum": ["create", "assert"]}},
        "description": format!("One line: `op` plus the body of `POST /api/v2/{t}` (create) or of `_assert` (assert); see {p}Create and {p}Assert.")});
    let result = json!({"type": "object", "required": ["line", "status"], "properties": {
        "line": {"type": "integer", "minimum": 1, "description": "the input line (from 1; blank lines get no result)"},
        "status": {"type": "integer", "description": "the status the single call would have answered"},
        "id": {"type": "string", "format": "uuid"},
        "action": {"type": "string", "enum": ["created", "updated"]},
        "error": {"description": "the `error` object of the single call's error body"}}});
    let mut operation = op("post", format!("{base}/_bulk"), format!("v2_bulk_{t}"), "v2", format!("Create or assert many {t}s (NDJSON)"))
        .describe("One operation per line; one result per line, in order, streamed back as each batch commits. A bad line never fails its neighbours. See docs/API.md, Bulk import.")
        .reply(200, "One NDJSON result per input line", None, &[]);
    operation.body["requestBody"] = json!({"required": true, "content": {"application/x-ndjson": ndjson_media(line)}});
    operation.body["responses"]["200"]["content"] = json!({"application/x-ndjson": ndjson_media(result)});
    operation
}

/// `POST /api/v2/{type}/_export`: rows out as NDJSON or CSV (docs/API.md, Export).
fn export_op(base: &str, t: &str, p: &str) -> Op {
    let row = json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "format": "uuid"}},
        "description": "One record: `id`, the primary domain (accounts) or email and phone (contacts), the built-in fields by v1 name and custom attributes by api name, plain values; unset ones left out."});
    let mut operation = op("post", format!("{base}/_export"), format!("v2_export_{t}"), "v2", format!("Export {t}s (NDJSON or CSV)"))
        .describe("Every record the filters select, in id order, streamed as one row per record: NDJSON lines or CSV with a header row (`format`). The rows are what `corral export` writes and `corral import` reads back. A failure after the first rows cuts the response short. See docs/API.md, Export.")
        .body(&format!("{p}Export"))
        .reply(200, "One row per record, streamed", None, &[]);
    operation.body["responses"]["200"]["content"] = json!({
        "application/x-ndjson": ndjson_media(row),
        "text/csv": {"schema": {"type": "string", "format": "binary", "description": "RFC 4180 CSV: a header row of column names, then one row per record"}},
    });
    operation
}

/// An NDJSON media type. OpenAPI 3.1 has no way to give the schema of one line (3.2 adds
/// `itemSchema`), and a `schema` describes the whole body, so the body is a byte stream and the
/// line's shape sits in `x-item-schema`. Generated clients then see a byte body they can
/// stream (openapi-python-client with `content_type_overrides: {application/x-ndjson:
/// application/octet-stream}`) instead of leaving the operation out.
fn ndjson_media(item: Json) -> Json {
    json!({"schema": {"type": "string", "format": "binary",
                      "description": "NDJSON: one JSON object per line, each as `x-item-schema` describes"},
           "x-item-schema": item})
}

/// The headers every response to an authenticated caller may carry.
const RATE_LIMIT_HEADERS: [&str; 2] = ["RateLimitPolicy", "RateLimit"];

/// The header name a header component describes.
fn header_name(component: &str) -> &'static str {
    match component {
        "RequestId" => "x-request-id",
        "ETag" => "ETag",
        "Location" => "Location",
        "IdempotentReplayed" => "Idempotent-Replayed",
        "RateLimitPolicy" => "RateLimit-Policy",
        "RateLimit" => "RateLimit",
        "RetryAfter" => "Retry-After",
        "MergedInto" => "Merged-Into",
        _ => "x-unknown",
    }
}

/// Reusable headers and parameters.
pub fn headers_and_parameters() -> (Json, Json) {
    let headers = json!({
        "RequestId": {"description": "the request's id (echoed when the client sent a valid one)", "schema": {"type": "string"}},
        "ETag": {"description": "the record's version, quoted: send it back in If-Match", "schema": {"type": "string", "pattern": "^\"[0-9]+\"$"}},
        "Location": {"description": "the new record's URL", "schema": {"type": "string"}},
        "IdempotentReplayed": {"description": "`true` when this is the stored response of an earlier request with the same Idempotency-Key", "schema": {"type": "string", "enum": ["true"]}},
        "RateLimitPolicy": {"description": "the rate limits that apply to the caller (draft-ietf-httpapi-ratelimit-headers-10): `\"credential\"` per API key or token subject, `\"tenant\"` for all the tenant's callers; `q` requests per `w` seconds. Sent to authenticated callers whenever a limit applies",
                            "schema": {"type": "string", "pattern": "^\"(credential|tenant)\";q=[0-9]+;w=[0-9]+(, \"(credential|tenant)\";q=[0-9]+;w=[0-9]+)*$"}},
        "RateLimit": {"description": "what is left of each policy of RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-10): `r` requests remaining, more available in `t` seconds",
                      "schema": {"type": "string", "pattern": "^\"(credential|tenant)\";r=[0-9]+;t=[0-9]+(, \"(credential|tenant)\";r=[0-9]+;t=[0-9]+)*$"}},
        "MergedInto": {"description": "the id of the record answered for, when the id asked for was merged into it (docs/API.md, Merging records)", "schema": {"type": "string"}},
        "RetryAfter": {"description": "seconds to wait before retrying", "required": true, "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}},
        "RetryAfterUnavailable": {"description": "seconds to wait before retrying (on 503 unavailable: database unreachable, concurrency limit reached, request deadline passed)", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    });
    let parameters = json!({
        "IfMatch": {"name": "If-Match", "in": "header", "description": "write only if the record is at this version (`\"3\"`, `W/\"3\"`, `3` or `*`); else 412 precondition_failed",
                    "schema": {"type": "string", "pattern": "^\\s*(\\*|(W/)?\"?[0-9]{1,18}\"?)\\s*$"}},
        "IfNoneMatch": {"name": "If-None-Match", "in": "header", "description": "the ETag the client holds: 304 without a body when the record is still at that version",
                        "schema": {"type": "string"}},
        "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "description": "retry-safe create: the first successful response is stored for 24 h and replayed",
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"}},
        "RequestId": {"name": "x-request-id", "in": "header", "description": "a request id to echo (1-200 visible ASCII characters); generated otherwise",
                      "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"}},
    });
    (headers, parameters)
}

fn count_param() -> Json {
    json!({"type": "string", "enum": ["exact", "estimated"]})
}

/// The value schema of a v1 filter parameter on `attr` with operator group `op`.
fn v1_filter_schema(rt: RecordType, attr: &Attribute<'_>, op: &str) -> Json {
    let scalar = match attr.value_type() {
        "number" => json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
        "currency" | "percent" => json!({"type": "number", "minimum": -1e15, "maximum": 1e15}),
        "boolean" => json!({"type": "boolean"}),
        "timestamp" => json!({"type": "string", "format": "date-time", "pattern": values::TIMESTAMP}),
        "date" => json!({"type": "string", "format": "date", "pattern": "^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}$"}),
        "uuid" => json!({"type": "string", "pattern": values::filter_id_pattern(rt)}),
        "record_reference" => {
            let target = RecordType::from_api_name(attr.target()).unwrap_or(RecordType::Account);
            json!({"type": "string", "pattern": values::filter_id_pattern(target)})
        }
        "account_domain" if matches!(op, "eq" | "ne" | "in" | "not_in") => {
            values::text(values::DOMAIN, corral_core::normalize::MAX_DOMAIN_INPUT_CHARS)
        }
        // A substring operator takes any fragment, whatever the attribute's type.
        _ if matches!(op, "contains" | "starts_with" | "ends_with") => values::fragment(),
        "enum" | "account_stage" | "contact_stage" | "select" => {
            json!({"type": "string", "enum": attr.0["type_info"]["options"].as_array().map(|o| o.iter().filter_map(|o| o.as_str().or_else(|| o["api_name"].as_str())).collect::<Vec<_>>()).unwrap_or_default()})
        }
        // Any text (the empty string too); list items cannot hold the comma that separates them.
        _ if matches!(op, "in" | "not_in" | "between") => {
            json!({"type": "string", "maxLength": 1000, "pattern": "^[^,\\u0000]*$"})
        }
        _ => values::fragment(),
    };
    match op {
        "exists" | "not_exists" => json!({"type": "boolean"}),
        "in" | "not_in" => json!({"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": scalar}),
        "between" => json!({"type": "array", "minItems": 2, "maxItems": 2, "items": scalar}),
        _ => scalar,
    }
}

/// The v1 name of a v2 attribute, when v1 can filter on it.
fn v1_filter_name(rt: RecordType, attribute: &str, custom: bool) -> Option<String> {
    if custom {
        return Some(format!("custom_fields.{attribute}"));
    }
    let name = match (rt, attribute) {
        (RecordType::Account, "domains") => "domain",
        (RecordType::Contact, "primary_email") => "email",
        (RecordType::Contact, "primary_phone_number") => "phone",
        (RecordType::Contact, "contact_emails" | "contact_phone_numbers") => return None,
        (_, "archived_at") => "deleted_at",
        (_, "id" | "created_at" | "updated_at" | "version" | "app_id") => attribute,
        _ => corral_core::schema::field_by_api_name(rt, attribute)?.1.v1_name,
    };
    Some(name.to_owned())
}

/// The v1 sort keys of a collection: each sortable field, ascending or `-` descending.
fn v1_sort_keys(rt: RecordType, schema: &TenantSchema) -> Vec<String> {
    let doc = v2::schema_document(rt, schema);
    let custom: Vec<&str> = schema.custom.iter().map(|c| c.api_name.as_str()).collect();
    let mut keys = Vec::new();
    for entry in doc["attributes"].as_array().into_iter().flatten() {
        let attr = Attribute(entry);
        if !attr.sortable() {
            continue;
        }
        if let Some(name) = v1_filter_name(rt, attr.name(), custom.contains(&attr.name())) {
            keys.push(format!("-{name}"));
            keys.push(name);
        }
    }
    keys
}

/// `GET /api/v1/crm/{collection}`: paging, sort, search, count and one parameter per
/// filterable field and operator (`industry=…`, `employee_count[gte]=…`).
fn v1_list(rt: RecordType, collection: &str, schema: &TenantSchema) -> Op {
    let p = stem(rt);
    let mut o = op("get", format!("/api/v1/crm/{collection}"), format!("v1_list_{collection}"), "v1", format!("List {collection}"))
        .describe("One page, newest first unless sorted. Filters: `field=value` or `field[op]=value` (v2 operator names; `in`, `not_in` and `between` take comma lists). Unknown parameters are 400 invalid_query_parameter.")
        .query("limit", json!({"type": "integer", "minimum": 1, "maximum": V1_MAX_LIMIT, "default": 50}), "page size")
        .query("cursor", json!({"type": "string"}), "next_cursor of the previous page; continues its own query (empty: the first page)")
        .query("sort", json!({"type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": true, "items": {"type": "string", "enum": v1_sort_keys(rt, schema)}}), "up to 3 fields (a comma list), `-` for descending; each field once")
        .query("include_deleted", json!({"type": "boolean"}), "also archived documents")
        .query("q", json!({"type": "string", "maxLength": 1000}), "search text")
        .query("count", count_param(), "add `total` (and `total_is_estimate`)");
    let params = o.body["parameters"].as_array_mut().expect("an array");
    v1_filter_params(rt, schema, "", params);
    // Filters across a relationship (`accounts.industry=…`, docs/API.md "Lists (v1)") are
    // described, not listed: one parameter per related field and operator would nearly triple
    // the operation's ~300 parameters, and an interactive reference (/docs) cannot render a
    // form that large. v2 `_query` lists every relationship field in its typed filter schema.
    let relations: Vec<String> = Relation::of(rt).map(|r| format!("`{}.<field>`", r.v1_name())).collect();
    o.body["description"] = json!(format!(
        "{} Across relationships (one hop): {} with the related collection's v1 field names and the same operators (docs/API.md, Lists (v1)); these parameters are accepted but not listed here.",
        o.body["description"].as_str().unwrap_or_default(),
        relations.join(", ")
    ));
    o.reply(200, "One page", Some(&format!("{p}V1List")), &[])
}

/// The filter parameters of the v1 fields of `rt`, each name prefixed by `prefix`.
fn v1_filter_params(rt: RecordType, schema: &TenantSchema, prefix: &str, out: &mut Vec<Json>) {
    let doc = v2::schema_document(rt, schema);
    let custom: Vec<&str> = schema.custom.iter().map(|c| c.api_name.as_str()).collect();
    for entry in doc["attributes"].as_array().into_iter().flatten() {
        let attr = Attribute(entry);
        let Some(name) = v1_filter_name(rt, attr.name(), custom.contains(&attr.name())) else { continue };
        let name = format!("{prefix}{name}");
        for operator in attr.operators() {
            let param = if operator == "eq" { name.clone() } else { format!("{name}[{operator}]") };
            let mut schema = v1_filter_schema(rt, &attr, operator);
            let mut p = json!({"name": param, "in": "query", "schema": schema.take()});
            if matches!(operator, "in" | "not_in" | "between") {
                p["style"] = json!("form");
                p["explode"] = json!(false);
            }
            out.push(p);
        }
    }
    let mut v1_only = vec![("created_by", "text"), ("updated_by", "text")];
    if rt == RecordType::Contact {
        v1_only.push(("account_id", "id"));
    }
    for (name, kind) in v1_only {
        let scalar = if kind == "id" {
            json!({"type": "string", "pattern": values::filter_id_pattern(RecordType::Account)})
        } else {
            json!({"type": "string", "minLength": 1, "maxLength": 1000, "pattern": "^[^,\\u0000]*[^,\\u0000\\s][^,\\u0000]*$"})
        };
        let params = [
            (format!("{prefix}{name}"), scalar.clone(), false),
            (format!("{prefix}{name}[ne]"), scalar.clone(), false),
            (
                format!("{prefix}{name}[in]"),
                json!({"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": scalar.clone()}),
                true,
            ),
            (
                format!("{prefix}{name}[not_in]"),
                json!({"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": scalar}),
                true,
            ),
            (format!("{prefix}{name}[exists]"), json!({"type": "boolean"}), false),
            (format!("{prefix}{name}[not_exists]"), json!({"type": "boolean"}), false),
        ];
        for (param, schema, list) in params {
            let mut p = json!({"name": param, "in": "query", "schema": schema});
            if list {
                p["style"] = json!("form");
                p["explode"] = json!(false);
            }
            out.push(p);
        }
    }
}

/// Every operation on one v1 collection.
fn v1_collection(rt: RecordType, collection: &str, schema: &TenantSchema, out: &mut Vec<Op>) {
    let p = stem(rt);
    let doc = format!("{p}V1");
    let one = format!("/api/v1/crm/{collection}/{{id}}");
    let what = &collection[..collection.len() - 1];
    out.push(v1_list(rt, collection, schema));
    out.push(
        op(
            "post",
            format!("/api/v1/crm/{collection}"),
            format!("v1_create_{what}"),
            "v1",
            format!("Create a{} {what}", if rt == RecordType::Account { "n" } else { "" }),
        )
        .shared("IdempotencyKey")
        .body(&format!("{p}V1Create"))
        .reply(201, "Created", Some(&doc), &["ETag", "Location"])
        .reply(
            200,
            "Replayed: the stored response of an earlier request with this Idempotency-Key",
            Some(&doc),
            &["ETag", "Location", "IdempotentReplayed"],
        ),
    );
    out.push(
        op("get", one.clone(), format!("v1_get_{what}"), "v1", format!("Get a {what}"))
            .id(what)
            .query("include_deleted", json!({"type": "boolean"}), "also when archived")
            .shared("IfNoneMatch")
            .reply(200, "The document", Some(&doc), &["ETag", "MergedInto"])
            .reply(304, "Not modified: still at the version If-None-Match named", None, &["ETag"]),
    );
    out.push(
        op("patch", one.clone(), format!("v1_update_{what}"), "v1", format!("Update the fields sent of a {what}"))
            .id(what)
            .shared("IfMatch")
            .body(&format!("{p}V1Patch"))
            .reply(200, "The updated document", Some(&doc), &["ETag", "MergedInto"]),
    );
    out.push(
        op("put", one.clone(), format!("v1_replace_{what}"), "v1", format!("Replace every writable field of a {what}"))
            .id(what)
            .shared("IfMatch")
            .body(&format!("{p}V1Replace"))
            .reply(200, "The replaced document", Some(&doc), &["ETag", "MergedInto"]),
    );
    out.push(
        op(
            "delete",
            one.clone(),
            format!("v1_delete_{what}"),
            "v1",
            format!("Archive a {what} (or purge with ?purge=true)"),
        )
        .id(what)
        .shared("IfMatch")
        .query("purge", json!({"type": "boolean"}), "delete for good (admin); only an explicit true purges")
        .reply(200, "Archived", Some(&doc), &["ETag"])
        .reply(204, "Purged", None, &[]),
    );
    out.push(history_op(format!("{one}/history"), format!("v1_history_{what}"), "v1", what, "ChangeHistoryV1"));
    out.push(
        op("post", format!("{one}/restore"), format!("v1_restore_{what}"), "v1", format!("Restore an archived {what}"))
            .id(what)
            .reply(200, "The restored document", Some(&doc), &["ETag"]),
    );
    out.push(
        op(
            "get",
            format!("/api/v1/schemas/{}", rt.api_name()),
            format!("v1_json_schema_{what}"),
            "v1",
            format!("JSON Schema of a v1 {what}, custom fields included"),
        )
        .reply(200, "A JSON Schema 2020-12 document", Some("JsonSchema"), &[]),
    );
}

/// Every v2 operation on one record type.
fn v2_record_type(rt: RecordType, schema: &TenantSchema, out: &mut Vec<Op>) {
    let p = stem(rt);
    let attribute_names = v2::attribute_names_in(rt, schema);
    let t = rt.api_name();
    let base = format!("/api/v2/{t}");
    let one = format!("{base}/{{id}}");
    let response = format!("{p}Response");
    let writable = rt != RecordType::User;
    if writable {
        out.push(
            op(
                "post",
                base.clone(),
                format!("v2_create_{t}"),
                "v2",
                format!("Create a{} {t}", if rt == RecordType::Account { "n" } else { "" }),
            )
            .shared("IdempotencyKey")
            .body(&format!("{p}Create"))
            .reply(201, "Created", Some(&response), &["ETag", "Location"])
            .reply(
                200,
                "Replayed: the stored response of an earlier request with this Idempotency-Key",
                Some(&response),
                &["ETag", "Location", "IdempotentReplayed"],
            ),
        );
    }
    out.push(
        op("get", one.clone(), format!("v2_get_{t}"), "v2", format!("Get a {t}"))
            .id(t)
            .query(
                "fields",
                json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": attribute_names}}),
                "attributes to return (a comma list; a name given twice is returned once)",
            )
            .query("include_archived", json!({"type": "boolean"}), "also when archived")
            .shared("IfNoneMatch")
            .reply(200, "The record", Some(&response), &["ETag", "MergedInto"])
            .reply(304, "Not modified: still at the version If-None-Match named", None, &["ETag"]),
    );
    out.push(
        op("post", format!("{base}/_query"), format!("v2_query_{t}"), "v2", format!("Query {t}s"))
            .describe("Filter trees, up to 3 sort keys, keyset cursors (send `cursor` alone or with the same body), counts and fields. See docs/API.md, Filter language.")
            .body(&format!("{p}Query"))
            .reply(200, "One page", Some(&format!("{p}QueryResult")), &[]),
    );
    out.push(
        op("get", format!("/api/v2/_schema/{t}"), format!("v2_schema_{t}"), "schema", format!("The schema of {t}s"))
            .reply(200, "Attributes and relationships", Some(&format!("{p}Schema")), &[]),
    );
    if !writable {
        return;
    }
    out.push(
        op("patch", one.clone(), format!("v2_update_{t}"), "v2", format!("Update attributes of a {t}"))
            .id(t)
            .shared("IfMatch")
            .body(&format!("{p}Patch"))
            .reply(200, "The updated record", Some(&response), &["ETag", "MergedInto"]),
    );
    out.push(
        op("delete", one.clone(), format!("v2_delete_{t}"), "v2", format!("Archive a {t} (or purge with ?purge=true)"))
            .id(t)
            .shared("IfMatch")
            .query("purge", json!({"type": "boolean"}), "delete for good (admin); only an explicit true purges")
            .reply(204, "Archived or purged", None, &[]),
    );
    out.push(
        op("post", format!("{one}/_restore"), format!("v2_restore_{t}"), "v2", format!("Restore an archived {t}"))
            .id(t)
            .reply(200, "The restored record", Some(&response), &["ETag"]),
    );
    out.push(history_op(format!("{one}/_history"), format!("v2_history_{t}"), "v2", t, "ChangeHistory"));
    out.push(
        op(
            "post",
            format!("{base}/_assert"),
            format!("v2_assert_{t}"),
            "v2",
            format!("Create or update a {t} by match keys"),
        )
        .describe(if rt == RecordType::Account {
            "Match keys: `id`, `domain_name`."
        } else {
            "Match keys: `id`, `primary_email`, `contact_emails`."
        })
        .body(&format!("{p}Assert"))
        .reply(201, "Created", Some(&format!("{p}AssertResult")), &["ETag"])
        .reply(200, "Updated", Some(&format!("{p}AssertResult")), &["ETag"]),
    );
    out.push(
        op("post", format!("{base}/_merge"), format!("v2_merge_{t}"), "v2", format!("Merge duplicate {t}s into one"))
            .describe(
                "The losers' relationships, domains / emails / phone numbers and the references other records hold \
                 to them move to the winner; each loser is archived and its id kept as an alias of the winner. \
                 `dry_run: true` reports the same changes and writes nothing. See docs/API.md, Merging records.",
            )
            .shared("IfMatch")
            .body(&format!("{p}Merge"))
            .reply(
                200,
                "The winner and what the merge changed (or would change)",
                Some(&format!("{p}MergeResult")),
                &["ETag"],
            ),
    );
    out.push(
        op("post", format!("{base}/_unmerge"), format!("v2_unmerge_{t}"), "v2", format!("Undo a merge of {t}s"))
            .describe(
                "Restores the losers of the merge `merge_id` names, with their domains / emails / phone numbers, \
                 edges and the references the merge re-pointed; the winner keeps the values it took. Possible \
                 while the merge's events are retained. See docs/API.md, Merging records.",
            )
            .body("Unmerge")
            .reply(
                200,
                "The winner, the restored records and the changes made",
                Some(&format!("{p}UnmergeResult")),
                &["ETag"],
            ),
    );
    out.push(bulk_op(&base, t, p));
    out.push(export_op(&base, t, p));
    // Attribute sub-resources.
    let subs: &[(&str, &str, &str)] = match rt {
        RecordType::Account => &[("domains", "Domain", "domain_name")],
        _ => {
            &[("contact_emails", "ContactEmail", "item_id"), ("contact_phone_numbers", "ContactPhoneNumber", "item_id")]
        }
    };
    for (name, schema, key) in subs {
        let list = format!("{one}/attribute/{name}");
        let item = format!("{list}/{{{key}}}");
        let label = name.replace('_', " ");
        let key_description = if *key == "domain_name" { "the domain" } else { "the item's id" };
        out.push(
            op("post", list.clone(), format!("v2_add_{t}_{name}"), "v2", format!("Add to {label}"))
                .id(t)
                .shared("IfMatch")
                .body(&format!("{schema}Add"))
                .reply(201, "Added", Some(&format!("{schema}Item")), &["ETag"])
                .reply(200, "Already there", Some(&format!("{schema}Item")), &["ETag"]),
        );
        out.push(
            op("patch", item.clone(), format!("v2_update_{t}_{name}"), "v2", format!("Change one of {label}"))
                .id(t)
                .param(key, "path", json!({"type": "string", "minLength": 1}), key_description)
                .shared("IfMatch")
                .body(&format!("{schema}Patch"))
                .reply(200, "Changed", Some(&format!("{schema}Item")), &["ETag"]),
        );
        out.push(
            op("delete", item, format!("v2_remove_{t}_{name}"), "v2", format!("Remove one of {label}"))
                .id(t)
                .param(key, "path", json!({"type": "string", "minLength": 1}), key_description)
                .shared("IfMatch")
                .reply(204, "Removed", None, &[]),
        );
    }
    // Relationships.
    let (rel, edge, other) = match rt {
        RecordType::Account => ("contacts", "AccountContacts", "contact"),
        _ => ("accounts", "ContactAccounts", "account"),
    };
    let list = format!("{one}/relationship/{rel}");
    let item = format!("{list}/{{target}}");
    let target_param = |o: Op| {
        o.param("target", "path", json!({"type": "string", "pattern": ID_PATTERN}), &format!("the {other}'s id"))
    };
    out.push(
        op("get", list.clone(), format!("v2_list_{t}_{rel}"), "v2", format!("List the {rel} of a {t}"))
            .id(t)
            .query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": V2_MAX_LIMIT, "default": 50}),
                "page size",
            )
            .query("cursor", json!({"type": "string"}), "next_cursor of the previous page (empty: the first page)")
            .reply(200, "One page of edges", Some(&format!("{edge}EdgeList")), &[]),
    );
    out.push(
        op("post", list, format!("v2_add_{t}_{rel}"), "v2", format!("Link a {other} to a {t}"))
            .id(t)
            .body("EdgeAdd")
            .reply(201, "Linked", Some(&format!("{edge}Edge")), &[])
            .reply(200, "Already linked: role / is_primary applied", Some(&format!("{edge}Edge")), &[]),
    );
    out.push(
        target_param(
            op("patch", item.clone(), format!("v2_update_{t}_{rel}"), "v2", format!("Change the edge to a {other}"))
                .id(t),
        )
        .body("EdgePatch")
        .reply(200, "Changed", Some(&format!("{edge}Edge")), &[]),
    );
    out.push(
        target_param(op("delete", item, format!("v2_remove_{t}_{rel}"), "v2", format!("Unlink a {other}")).id(t))
            .reply(204, "Unlinked", None, &[]),
    );
    // Custom attributes and options.
    let attributes = format!("/api/v2/_schema/{t}/attributes");
    let attribute = format!("{attributes}/{{name}}");
    let name_param = |o: Op| {
        o.param(
            "name",
            "path",
            json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}),
            "the attribute's api_name",
        )
    };
    let option_param =
        |o: Op| o.param("option", "path", json!({"type": "string", "minLength": 1}), "the option's api_name or id");
    out.push(
        op(
            "post",
            attributes,
            format!("schema_create_{t}_attribute"),
            "schema",
            format!("Add a custom attribute to {t}s"),
        )
        .body("CustomAttributeCreate")
        .reply(201, "Added", Some("CustomAttribute"), &[]),
    );
    out.push(
        name_param(op(
            "patch",
            attribute.clone(),
            format!("schema_update_{t}_attribute"),
            "schema",
            "Rename or describe a custom attribute",
        ))
        .body("CustomAttributePatch")
        .reply(200, "Changed", Some("CustomAttribute"), &[]),
    );
    out.push(
        name_param(op(
            "delete",
            attribute.clone(),
            format!("schema_archive_{t}_attribute"),
            "schema",
            "Archive a custom attribute (values are kept)",
        ))
        .reply(204, "Archived", None, &[]),
    );
    out.push(
        name_param(op(
            "post",
            format!("{attribute}/options"),
            format!("schema_add_{t}_option"),
            "schema",
            "Add an option to a select or stage attribute",
        ))
        .body("OptionCreate")
        .reply(201, "Added", Some("OptionResponse"), &[]),
    );
    out.push(
        option_param(name_param(op(
            "patch",
            format!("{attribute}/options/{{option}}"),
            format!("schema_update_{t}_option"),
            "schema",
            "Change an option",
        )))
        .body("OptionPatch")
        .reply(200, "Changed", Some("OptionResponse"), &[]),
    );
    out.push(
        option_param(name_param(op(
            "delete",
            format!("{attribute}/options/{{option}}"),
            format!("schema_remove_{t}_option"),
            "schema",
            "Remove an option (stored values stay)",
        )))
        .reply(204, "Removed", None, &[]),
    );
}

/// Operations, health, token exchange and admin routes.
fn fixed(out: &mut Vec<Op>) {
    out.push(op("get", "/health", "health", "operations", "Liveness: the process answers").public().reply(
        200,
        "Alive",
        Some("Liveness"),
        &[],
    ));
    out.push(op("get", "/ready", "ready", "operations", "Readiness: the database answers").public().reply(
        200,
        "Ready",
        Some("Readiness"),
        &[],
    ));
    out.push(
        op("get", "/api/v1/health", "v1_health", "operations", "v1 health (the v1 API's own body)").public().reply(
            200,
            "Healthy",
            Some("HealthV1"),
            &[],
        ),
    );
    out.push(
        op("get", "/api/v2/health", "v2_health", "operations", "v2 health (the v2 API's own body)").public().reply(
            200,
            "Healthy",
            Some("HealthV2"),
            &[],
        ),
    );
    let mut exchange = op(
        "post",
        "/api/v1/auth/token",
        "auth_exchange",
        "auth",
        "Exchange an API key for a JWT of up to one hour (client credentials)",
    )
    .public()
    .reply(200, "A bearer token", Some("TokenResponse"), &[]);
    exchange.body["requestBody"] = json!({"required": true, "content": {
        "application/json": {"schema": reference("TokenRequest")},
        "application/x-www-form-urlencoded": {"schema": reference("TokenRequestForm")}}});
    out.push(exchange);
    let mut page =
        op("get", "/docs", "docs_page", "operations", "The interactive API reference (Swagger UI, served offline)")
            .public()
            .shared("IfNoneMatch")
            .reply(304, "Not modified", None, &[]);
    page.body["responses"]["200"] = json!({"description": "The HTML page", "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
        "content": {"text/html": {"schema": {"type": "string"}}}});
    out.push(page);
    let mut metrics = op("get", "/metrics", "metrics", "operations", "Prometheus metrics (text format 0.0.4)")
        .public()
        .describe("Requests by route template, method and status, latency histograms, requests in flight, 429 answers and database pool figures; the names are in docs/OPERATIONS.md. Public unless the server sets `CORRAL_METRICS_TOKEN` (then `Authorization: Bearer <that token>`, else 401); not served here when `CORRAL_METRICS_LISTEN` moves it to a listener of its own.");
    metrics.body["responses"]["200"] = json!({"description": "The metrics", "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
        "content": {"text/plain": {"schema": {"type": "string"}}}});
    out.push(metrics);
    let assets = crate::routes::docs::asset_names();
    let mut asset = op("get", "/docs/assets/{file}", "docs_asset", "operations", "A file of the API reference page")
        .public()
        .param(
            "file",
            "path",
            json!({"type": "string", "enum": assets.iter().map(|(name, _)| *name).collect::<Vec<_>>()}),
            "the file",
        )
        .query(
            "v",
            json!({"type": "string"}),
            "the content hash the page links with (cached for a year when it matches)",
        )
        .shared("IfNoneMatch")
        .reply(304, "Not modified", None, &[]);
    let mut content = serde_json::Map::new();
    for (_, media_type) in &assets {
        content.insert((*media_type).to_owned(), json!({"schema": {"type": "string"}}));
    }
    asset.body["responses"]["200"] = json!({"description": "The file", "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}}, "content": content});
    out.push(asset);
    let mut document = op(
        "get",
        "/openapi.json",
        "openapi_document",
        "operations",
        "This document: the base one, or the caller tenant's with credentials",
    )
    .reply(200, "An OpenAPI 3.1 document", Some("OpenApiDocument"), &[]);
    // Credentials are optional here: they select the tenant's document.
    document.body["security"] = json!([{}, {"bearer": []}, {"api_key": []}]);
    out.push(document);
    out.push(op("get", "/api/v1/manifest", "v1_manifest", "v1", "The v1 resources").reply(
        200,
        "Resources",
        Some("Manifest"),
        &[],
    ));
    out.push(op("get", "/api/admin/api-keys", "admin_list_api_keys", "admin", "List API keys").reply(
        200,
        "Keys, without secrets",
        Some("ApiKeyList"),
        &[],
    ));
    out.push(
        op("post", "/api/admin/api-keys", "admin_create_api_key", "admin", "Create an API key (the key is shown once)")
            .body("ApiKeyCreate")
            .reply(201, "Created", Some("ApiKey"), &[]),
    );
    out.push(
        op("delete", "/api/admin/api-keys/{id}", "admin_revoke_api_key", "admin", "Revoke an API key")
            .param("id", "path", json!({"type": "string", "pattern": "^[0-9a-f]{16}$"}), "the key id")
            .reply(204, "Revoked", None, &[]),
    );
    // `wh_` and a UUIDv7 in hex (crates/corral-http/src/routes/webhooks.rs); any other id is 404.
    let wh_id =
        |o: Op| o.param("id", "path", json!({"type": "string", "pattern": "^wh_[0-9a-f]{32}$"}), "the subscription id");
    out.push(op("get", "/api/admin/webhooks", "admin_list_webhooks", "admin", "List webhook subscriptions").reply(
        200,
        "Subscriptions, without secrets",
        Some("WebhookList"),
        &[],
    ));
    out.push(
        op(
            "post",
            "/api/admin/webhooks",
            "admin_create_webhook",
            "admin",
            "Create a webhook subscription (the secret is shown once)",
        )
        .body("WebhookCreate")
        .reply(201, "Created", Some("WebhookCreated"), &[]),
    );
    out.push(
        wh_id(op("get", "/api/admin/webhooks/{id}", "admin_get_webhook", "admin", "A webhook subscription")).reply(
            200,
            "The subscription",
            Some("Webhook"),
            &[],
        ),
    );
    out.push(
        wh_id(op(
            "patch",
            "/api/admin/webhooks/{id}",
            "admin_update_webhook",
            "admin",
            "Change, enable or disable a webhook subscription",
        ))
        .body("WebhookPatch")
        .reply(200, "Changed", Some("Webhook"), &[]),
    );
    out.push(
        wh_id(op(
            "delete",
            "/api/admin/webhooks/{id}",
            "admin_delete_webhook",
            "admin",
            "Delete a webhook subscription and its delivery log",
        ))
        .reply(204, "Deleted", None, &[]),
    );
    out.push(
        wh_id(op(
            "get",
            "/api/admin/webhooks/{id}/deliveries",
            "admin_webhook_deliveries",
            "admin",
            "The newest 100 deliveries, newest first",
        ))
        .reply(200, "Delivery log", Some("WebhookDeliveryList"), &[]),
    );
    out.push(
        wh_id(op(
            "post",
            "/api/admin/webhooks/{id}/replay",
            "admin_replay_webhook",
            "admin",
            "Deliver again from an event on",
        ))
        .body("WebhookReplay")
        .reply(202, "Replay scheduled", None, &[]),
    );
    out.push(op("get", "/api/admin/users", "admin_list_users", "admin", "List users").reply(
        200,
        "Users",
        Some("AdminUserList"),
        &[],
    ));
    out.push(op("post", "/api/admin/users", "admin_create_user", "admin", "Add a user").body("AdminUserCreate").reply(
        201,
        "Added",
        Some("AdminUser"),
        &[],
    ));
    out.push(
        op("patch", "/api/admin/users/{id}", "admin_update_user", "admin", "Change a user")
            .id("user")
            .body("AdminUserPatch")
            .reply(200, "Changed", Some("AdminUser"), &[]),
    );
    out.push(op("get", "/api/admin/settings", "admin_get_settings", "admin", "Tenant settings").reply(
        200,
        "Settings",
        Some("Settings"),
        &[],
    ));
    out.push(
        op("patch", "/api/admin/settings", "admin_update_settings", "admin", "Change tenant settings")
            .body("SettingsPatch")
            .reply(200, "Settings", Some("Settings"), &[]),
    );
}

/// `GET …/{id}/_history` (v2) or `…/{id}/history` (v1): a record's change events, newest first.
fn history_op(path: String, id: String, tag: &str, what: &str, schema: &str) -> Op {
    let archived_flag = if tag == "v1" { "include_deleted" } else { "include_archived" };
    op("get", path, id, tag, format!("The change history of a {what}, newest first"))
        .describe(&format!("Every change event of the record (docs/API.md, Field history): per field old → new, actor, request id, time. An archived record's history needs `{archived_flag}=true`, as reading the record does; a purged record has none."))
        .id(what)
        .query(archived_flag, json!({"type": "boolean"}), "also when archived")
        .query("cursor", json!({"type": "string", "minLength": 1}), "the next_cursor of the previous page")
        .query("limit", json!({"type": "integer", "minimum": 1, "maximum": crate::routes::changes::MAX_LIMIT}), "events per page (default 100)")
        .reply(200, "One page of events", Some(schema), &[])
}

/// The change feed, in both dialects.
fn change_feeds(out: &mut Vec<Op>) {
    for (path, id, tag, schema, types) in [
        ("/api/v2/_changes", "v2_changes", "v2", "ChangeFeed", "account,contact"),
        ("/api/v1/crm/changes", "v1_changes", "v1", "ChangeFeedV1", "accounts,contacts (or account,contact)"),
    ] {
        // Only the names the feed knows (an unknown one is 400 invalid_query_parameter), either
        // spelling in both dialects, spaces and empty items ignored, at least one name.
        let name = "(accounts?|contacts?)";
        let pattern = format!("^( *,)* *{name} *(,( *| *{name} *))*$");
        out.push(
            op("get", path, id, tag, "The change feed: every change of the tenant's records, oldest first")
                .describe("Ordered, resumable and gap-free (docs/API.md, Change feed). Resume from `next_cursor`, which is always present; a cursor past the retention period is 410 cursor_expired. Reading a type needs its read scope.")
                .query("after", json!({"type": "string", "minLength": 1}), "a next_cursor; without it the feed starts at the oldest retained event")
                .query("types", json!({"type": "string", "pattern": pattern}), &format!("record types, comma separated: {types}; default every type the caller may read"))
                .query("limit", json!({"type": "integer", "minimum": 1, "maximum": crate::routes::changes::MAX_LIMIT}), "events per page (default 100)")
                .reply(200, "One page of events", Some(schema), &[]),
        );
    }
}

/// `POST /api/v2/{type}/_duplicates` (docs/API.md, "Duplicate candidates").
fn duplicates_op(rt: RecordType, out: &mut Vec<Op>) {
    let (p, t) = (stem(rt), rt.api_name());
    out.push(
        op("post", format!("/api/v2/{t}/_duplicates"), format!("v2_duplicates_{t}"), "v2", format!("Find duplicate {t}s"))
            .describe("Groups of likely duplicates among the active records the filters select, each with a score (0..1) and reason codes; send `cursor` alone or with the same body. A page may hold fewer groups than `limit` and still have a `next_cursor`. See docs/API.md, Duplicate candidates.")
            .body(&format!("{p}Duplicates"))
            .reply(200, "One page of candidate groups", Some(&format!("{p}DuplicatesResult")), &[]),
    );
}

/// Every path of the document, typed for the given schemas.
pub fn paths(account: &TenantSchema, contact: &TenantSchema) -> Map<String, Json> {
    let mut ops = Vec::new();
    fixed(&mut ops);
    change_feeds(&mut ops);
    v1_collection(RecordType::Account, "accounts", account, &mut ops);
    v1_collection(RecordType::Contact, "contacts", contact, &mut ops);
    v2_record_type(RecordType::Account, account, &mut ops);
    v2_record_type(RecordType::Contact, contact, &mut ops);
    v2_record_type(RecordType::User, &TenantSchema::builtin("tenant", RecordType::User), &mut ops);
    duplicates_op(RecordType::Account, &mut ops);
    duplicates_op(RecordType::Contact, &mut ops);
    let mut paths = Map::new();
    for o in ops {
        let o = o.finish();
        let item = paths.entry(o.path).or_insert_with(|| json!({}));
        item[o.method] = o.body;
    }
    paths
}
