//! The OpenAPI 3.1 document: served at `/openapi.json` (per tenant when the caller is
//! authenticated), printed by `corral openapi` and committed as `openapi.json` (the base
//! document, which anonymous callers get).
//!
//! The document is built from the same registry that validates and renders records: each
//! record type's `_schema` document decides its attribute envelopes, write bodies, filter
//! conditions and sort keys ([`values`], [`components`]), and a tenant's custom attributes
//! and stage or select options reach the document the moment they reach `_schema`. Paths are
//! concrete per record type and collection ([`paths`]) although the router serves them with
//! generic routes. utoipa's derive macros describe Rust types known at compile time; these
//! schemas exist only at run time, per tenant, so the document is assembled here as JSON.

mod components;
mod paths;
mod values;

use corral_core::RecordType;
use corral_core::custom::TenantSchema;
use serde_json::{Value as Json, json};

/// The document for one tenant's schemas of accounts and contacts.
pub fn document(account: &TenantSchema, contact: &TenantSchema) -> Json {
    let user = TenantSchema::builtin("tenant", RecordType::User);
    let (headers, parameters) = paths::headers_and_parameters();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Corral",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Multi-tenant CRM records server: v1 documents and v2 typed records over one store. \
                Fetched with a token, this document is typed with the caller tenant's custom attributes and options. \
                Routes, rules and error codes: docs/CONTRACT.md and docs/API.md in the repository.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "the server that serves this document"}],
        "security": [{"bearer": []}, {"api_key": []}],
        "tags": [
            {"name": "v1", "description": "Flat documents: /api/v1/crm/accounts and /api/v1/crm/contacts"},
            {"name": "v2", "description": "Typed records: attribute envelopes, _query, _assert, sub-resources, relationships"},
            {"name": "schema", "description": "The schema registry: _schema, custom attributes, options"},
            {"name": "admin", "description": "Tenant administration: API keys, users, settings"},
            {"name": "auth", "description": "Token exchange"},
            {"name": "operations", "description": "Health and readiness"},
        ],
        "paths": paths::paths(account, contact),
        "components": {
            "schemas": components::schemas(account, contact, &user),
            "headers": headers,
            "parameters": parameters,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a JWT, or an API key (crl_…) as the bearer token"},
                "api_key": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "an API key (crl_…)"},
            },
        },
    })
}

/// The base document: built-in attributes and default options, no custom attributes.
pub fn base() -> Json {
    document(
        &TenantSchema::builtin("tenant", RecordType::Account),
        &TenantSchema::builtin("tenant", RecordType::Contact),
    )
}
