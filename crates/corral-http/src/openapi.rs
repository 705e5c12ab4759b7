//! The OpenAPI 3.1 document (served at `/openapi.json`, printed by `corral openapi`).
//!
//! Paths and operations come from the `#[utoipa::path]` annotation on each handler, collected
//! by the router ([`crate::router`]). Component schemas are generated here from the same code
//! that validates and renders: the v1 JSON Schemas from the registry, the error body from the
//! table of error codes. Nothing in the document is written twice.

use corral_core::custom::TenantSchema;
use corral_core::{ErrorCode, RecordType, v1};
use serde_json::{Map, Value as Json, json};

fn object(properties: Json, required: &[&str]) -> Json {
    json!({"type": "object", "properties": properties, "required": required})
}

fn v1_document(rt: RecordType) -> Json {
    let mut schema = v1::json_schema(rt, &TenantSchema::builtin("tenant", rt));
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        obj.remove("$id");
        obj.insert("description".into(), json!("Custom fields depend on the tenant: see GET /api/v1/schemas/{type}."));
    }
    schema
}

/// Every component schema the operations refer to.
fn schemas() -> Map<String, Json> {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let envelope = object(json!({"value_type": {"type": "string"}, "value": {}}), &["value_type", "value"]);
    let record_data = object(
        json!({
            "id": {"type": "string", "format": "uuid"},
            "record_type": {"type": "string", "enum": ["account", "contact", "user"]},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "attributes": {"type": "object", "additionalProperties": {"oneOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Envelope"}}
            ]}},
        }),
        &["id", "record_type", "created_at", "updated_at", "attributes"],
    );
    let edge_item = object(
        json!({
            "related_record_id": {"type": "string", "format": "uuid"},
            "related_record_type": {"type": "string"},
            "through": {"type": "object", "properties": {"attributes": {"type": "object", "properties": {
                "role": {"$ref": "#/components/schemas/Envelope"}, "is_primary": {"$ref": "#/components/schemas/Envelope"}}}}},
        }),
        &["related_record_id", "related_record_type", "through"],
    );
    let parent = object(json!({"id": {"type": "string"}, "record_type": {"type": "string"}}), &["id", "record_type"]);
    let nullable_string = json!({"type": ["string", "null"]});
    let api_key = object(
        json!({
            "id": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "app": nullable_string, "name": nullable_string,
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"},
            "key": {"type": "string", "description": "crl_<id>_<secret>; only in the create response"},
        }),
        &["id", "scopes", "created_at"],
    );
    let user = object(
        json!({"id": {"type": "string"}, "email": nullable_string, "display_name": nullable_string, "is_active": {"type": "boolean"},
               "created_at": {"type": "string"}, "updated_at": {"type": "string"}, "version": {"type": "integer"}}),
        &["id", "is_active", "version"],
    );
    let settings = object(
        json!({"auto_associate_contacts": {"type": "boolean"}, "rate_limit_per_second": {"type": ["integer", "null"]}}),
        &[],
    );
    let option = object(
        json!({"id": {"type": "string"}, "api_name": {"type": "string"}, "display_value": {"type": "string"}, "color": {"type": "string"}}),
        &["api_name"],
    );
    let data = |inner: Json| object(json!({"data": inner}), &["data"]);
    let list_of = |inner: Json| object(json!({"data": {"type": "array", "items": inner}}), &["data"]);
    let entries = [
        (
            "Error",
            object(
                json!({"error": object(json!({
                "code": {"type": "string", "enum": codes}, "message": {"type": "string"},
                "details": {"type": "object"}, "request_id": {"type": "string"}}),
                &["code", "message", "details", "request_id"])}),
                &["error"],
            ),
        ),
        ("AccountV1", v1_document(RecordType::Account)),
        ("ContactV1", v1_document(RecordType::Contact)),
        (
            "V1Document",
            json!({"oneOf": [{"$ref": "#/components/schemas/AccountV1"}, {"$ref": "#/components/schemas/ContactV1"}]}),
        ),
        (
            "V1List",
            object(
                json!({"data": {"type": "array", "items": {"$ref": "#/components/schemas/V1Document"}},
                   "next_cursor": nullable_string, "has_more": {"type": "boolean"}}),
                &["data", "next_cursor", "has_more"],
            ),
        ),
        ("Envelope", envelope),
        ("RecordV2", data(record_data.clone())),
        (
            "RecordV2Write",
            object(json!({"attributes": {"type": "object", "description": "attribute values, raw or enveloped"}}), &[]),
        ),
        (
            "QueryV2",
            object(
                json!({"filters": {"type": "array", "items": {"type": "object"}, "description": "conditions and and/or/not groups (docs/CONTRACT.md §7.4)"},
                   "sort": {"type": "array", "maxItems": 3, "items": object(json!({"field": {"type": "string"}, "direction": {"type": "string", "enum": ["asc", "desc"]}}), &["field"])},
                   "limit": {"type": "integer", "minimum": 1, "maximum": 200}, "cursor": nullable_string,
                   "include_archived": {"type": "boolean"}, "count": {"type": ["string", "null"], "enum": ["exact", "estimated", null]},
                   "fields": {"type": ["array", "null"], "items": {"type": "string"}}}),
                &[],
            ),
        ),
        (
            "QueryV2Result",
            object(
                json!({"data": {"type": "array", "items": record_data.clone()}, "next_cursor": nullable_string,
                   "meta": object(json!({"total": {"type": "integer"}, "total_is_estimate": {"type": "boolean"}}), &["total", "total_is_estimate"])}),
                &["data", "next_cursor"],
            ),
        ),
        (
            "AssertV2",
            object(
                json!({"match": {"type": "object", "description": "id, domain_name (account); id, primary_email, contact_emails (contact)"},
            "attributes": {"type": "object"}}),
                &["match"],
            ),
        ),
        (
            "AssertV2Result",
            object(
                json!({"data": record_data.clone(), "meta": object(json!({"action": {"type": "string", "enum": ["created", "updated"]}}), &["action"])}),
                &["data", "meta"],
            ),
        ),
        (
            "SchemaV2",
            json!({"type": "object", "description": "GET /api/v2/_schema/{record_type} (docs/CONTRACT.md §6)"}),
        ),
        (
            "CustomAttributeWrite",
            object(
                json!({"api_name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}, "display_name": {"type": "string"},
                   "description": {"type": "string"}, "value_type": {"type": "string"}, "is_array": {"type": "boolean"},
                   "is_required_on_create": {"type": "boolean"}, "target": {"type": "string"},
                   "options": {"type": "array", "items": {"$ref": "#/components/schemas/Option"}}}),
                &["api_name", "value_type"],
            ),
        ),
        ("CustomAttribute", data(json!({"type": "object"}))),
        ("Option", option.clone()),
        ("OptionResponse", data(option)),
        (
            "DomainItem",
            data(object(
                json!({"domain_name": {"type": "string"}, "is_primary": {"type": "boolean"}}),
                &["domain_name", "is_primary"],
            )),
        ),
        (
            "ContactItem",
            data(object(json!({"id": {"type": "string"}, "envelope": {"type": "object"}}), &["id", "envelope"])),
        ),
        (
            "ItemWrite",
            object(
                json!({"domain_name": {"type": "string"}, "email": {"type": "string"}, "phone_number": {"type": "string"},
            "is_primary": {"type": "boolean"}, "labels": {"type": "array", "items": {"type": "string", "enum": ["WORK", "PERSONAL", "MOBILE"]}}}),
                &[],
            ),
        ),
        (
            "Edge",
            object(
                json!({"parent": parent.clone(), "api_name": {"type": "string"}, "item": edge_item.clone()}),
                &["parent", "api_name", "item"],
            ),
        ),
        (
            "EdgeList",
            object(
                json!({"parent": parent, "api_name": {"type": "string"}, "items": {"type": "array", "items": edge_item}, "next_cursor": nullable_string}),
                &["parent", "api_name", "items", "next_cursor"],
            ),
        ),
        (
            "EdgeWrite",
            object(
                json!({"related_record_id": {"type": "string"}, "related_record_match": {"type": "object"},
            "role": nullable_string, "is_primary": {"type": ["boolean", "null"]}}),
                &[],
            ),
        ),
        (
            "TokenRequest",
            object(
                json!({"grant_type": {"type": "string", "enum": ["client_credentials"]},
            "client_id": {"type": "string"}, "client_secret": {"type": "string"}}),
                &["grant_type", "client_id", "client_secret"],
            ),
        ),
        (
            "TokenResponse",
            object(
                json!({"access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"}}),
                &["access_token", "token_type", "expires_in"],
            ),
        ),
        (
            "ApiKeyWrite",
            object(
                json!({"scopes": {"type": "array", "items": {"type": "string"}}, "app": {"type": "string"},
            "name": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}}),
                &["scopes"],
            ),
        ),
        ("ApiKey", data(api_key.clone())),
        ("ApiKeyList", list_of(api_key)),
        (
            "UserWrite",
            object(
                json!({"email": {"type": "string"}, "display_name": {"type": "string"}, "is_active": {"type": "boolean"}}),
                &[],
            ),
        ),
        ("User", data(user.clone())),
        ("UserList", list_of(user)),
        ("Settings", data(settings.clone())),
        ("SettingsWrite", settings),
        ("JsonSchema", json!({"type": "object", "description": "a JSON Schema 2020-12 document"})),
        ("Manifest", object(json!({"resources": {"type": "array", "items": {"type": "object"}}}), &["resources"])),
        ("Health", json!({"type": "object"})),
    ];
    entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Completes the document the router collected: info, servers, security schemes and the
/// component schemas, as JSON.
pub fn document(collected: utoipa::openapi::OpenApi) -> Json {
    let mut doc = serde_json::to_value(&collected).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "Corral", "version": env!("CARGO_PKG_VERSION"),
        "description": "Multi-tenant CRM records server: v1 documents and v2 typed records over one store.",
    });
    let components = doc.as_object_mut().expect("an object").entry("components").or_insert_with(|| json!({}));
    components["schemas"] = Json::Object(schemas());
    components["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "description": "a JWT or an API key (crl_…)"},
        "api_key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    });
    doc
}
