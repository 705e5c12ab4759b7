//! The v1 document dialect (docs/CONTRACT.md §8): flat JSON documents with the platform envelope.
//!
//! Parsing turns a client document into a dialect-free [`RecordWrite`]; rendering turns a
//! [`Record`] back into the flat document with every field present.

use crate::custom::TenantSchema;
use crate::error::{CoreError, CoreResult, ErrorCode};
use crate::ids::RecordType;
use crate::normalize;
use crate::record::{Record, RecordWrite};
use crate::schema::field_by_v1_name;
use crate::value::{CoerceContext, Value, coerce, to_v1_json};
use serde::ser::{Serialize, Serializer};
use serde_json::{Map, Value as Json, json};

/// How a v1 body is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// POST: fields not given take their defaults.
    Create,
    /// PATCH: fields not given are unchanged.
    Patch,
    /// PUT: every writable field not given is cleared (or reset to its default).
    Replace,
}

/// Server-stamped or derived fields: accepted in bodies and ignored, because the official v1
/// SDK examples send them (docs/CONTRACT.md §4.1). `version` is read as a precondition instead.
const IGNORED_ON_WRITE: &[&str] = &[
    "id",
    "tenant_id",
    "app_id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "is_deleted",
    "deleted_at",
    "deleted_by",
    "schema_version",
    "domains",
];

/// Parses a v1 document body into a write.
pub fn parse_write(
    record_type: RecordType,
    body: &Json,
    mode: WriteMode,
    schema: &TenantSchema,
) -> CoreResult<RecordWrite> {
    let obj =
        body.as_object().ok_or_else(|| CoreError::new(ErrorCode::InvalidJson, "the body must be a JSON object"))?;
    let ctx = CoerceContext { stages: &schema.stages, dialect: crate::value::Dialect::V1 };
    let mut write = RecordWrite::default();
    let mut given = vec![false; crate::schema::fields(record_type).len()];
    for (key, json) in obj {
        if IGNORED_ON_WRITE.contains(&key.as_str()) {
            continue;
        }
        if let Some((index, field)) = field_by_v1_name(record_type, key) {
            given[index] = true;
            write.values.push((index, coerce(field, json, &ctx)?));
            continue;
        }
        match key.as_str() {
            "version" => write.expected_version = expected_version(json)?,
            "domain" if record_type == RecordType::Account => {
                let primary = match json {
                    Json::Null => None,
                    Json::String(s) => Some(normalize::domain(s).map_err(|r| CoreError::invalid_value("domain", r))?),
                    _ => return Err(CoreError::invalid_value("domain", "expected a string")),
                };
                write.primary_domain = Some(primary);
            }
            "email" if record_type == RecordType::Contact => {
                write.primary_email = Some(optional_text(key, json, normalize::email)?);
            }
            "phone" if record_type == RecordType::Contact => {
                write.primary_phone = Some(optional_text(key, json, normalize::phone)?);
            }
            "account_id" if record_type == RecordType::Contact => {
                write.primary_account = Some(match json {
                    Json::Null => None,
                    Json::String(s) => Some(
                        crate::ids::RecordId::parse(RecordType::Account, s)
                            .ok_or_else(|| CoreError::invalid_value(key, "not an account id"))?,
                    ),
                    _ => return Err(CoreError::invalid_value(key, "expected an account id")),
                });
            }
            "custom_fields" => custom_fields(json, schema, &mut write)?,
            _ => return Err(CoreError::unknown_field(key)),
        }
    }
    if mode == WriteMode::Replace {
        for (index, field) in crate::schema::fields(record_type).iter().enumerate() {
            if !given[index] {
                let reset = field.default.map(|d| Value::Text(d.to_owned())).unwrap_or_else(|| Value::empty(field));
                write.values.push((index, reset));
            }
        }
        if record_type == RecordType::Account && write.primary_domain.is_none() {
            write.primary_domain = Some(None);
        }
        if record_type == RecordType::Contact {
            write.primary_email.get_or_insert(None);
            write.primary_phone.get_or_insert(None);
            write.primary_account.get_or_insert(None);
        }
        write.custom_reset = schema.custom.iter().map(|d| d.api_name.clone()).collect();
    }
    if mode == WriteMode::Create {
        crate::custom::check_required(schema, &write, |n| format!("custom_fields.{n}"))?;
    }
    Ok(write)
}

/// A nullable string normalised by `normalise`.
fn optional_text(field: &str, json: &Json, normalise: normalize::Normaliser) -> CoreResult<Option<String>> {
    match json {
        Json::Null => Ok(None),
        Json::String(s) => normalise(s).map(Some).map_err(|r| CoreError::invalid_value(field, r)),
        _ => Err(CoreError::invalid_value(field, "expected a string")),
    }
}

fn expected_version(json: &Json) -> CoreResult<Option<i64>> {
    match json {
        Json::Null => Ok(None),
        Json::Number(n) => crate::value::whole_number(n)
            .filter(|v| *v >= 1)
            .map(Some)
            .ok_or_else(|| CoreError::invalid_value("version", "expected a positive whole number")),
        _ => Err(CoreError::invalid_value("version", "expected a positive whole number")),
    }
}

/// Custom values: keys are custom attribute api_names (others are `unknown_field`); a
/// PATCH changes the keys it names, `null` clears one.
fn custom_fields(json: &Json, schema: &TenantSchema, write: &mut RecordWrite) -> CoreResult<()> {
    let obj = match json {
        Json::Null => return Ok(()),
        Json::Object(o) => o,
        _ => return Err(CoreError::invalid_value("custom_fields", "expected an object")),
    };
    for (key, value) in obj {
        let name = format!("custom_fields.{key}");
        let def = schema.custom(key).ok_or_else(|| CoreError::unknown_field(&name))?;
        crate::custom::coerce_into(def, &name, value, write)?;
    }
    Ok(())
}

/// A record's v1 document, ready to serialise: its fields sorted by name (the order of a JSON
/// object with sorted keys), written without building a map per record.
pub struct Document<'a>(Vec<(&'a str, Json)>);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, v)))
    }
}

/// A record as its v1 document: every field present, unset ones as `null`, arrays as `[]`,
/// `custom_fields` as an object (see [`render`] for a JSON value).
pub fn rendered<'a>(record: &'a Record, schema: &TenantSchema) -> Document<'a> {
    let m = &record.meta;
    let rt = record.record_type;
    let mut doc: Vec<(&'a str, Json)> = Vec::with_capacity(64);
    doc.push(("id", json!(m.id.v1(rt))));
    doc.push(("tenant_id", json!(m.tenant_id)));
    doc.push(("app_id", json!(m.app_id)));
    doc.push(("created_at", json!(m.created_at.to_rfc3339())));
    doc.push(("updated_at", json!(m.updated_at.to_rfc3339())));
    doc.push(("created_by", json!(m.created_by)));
    doc.push(("updated_by", json!(m.updated_by)));
    doc.push(("is_deleted", json!(m.deleted_at.is_some())));
    doc.push(("deleted_at", json!(m.deleted_at.map(|t| t.to_rfc3339()))));
    doc.push(("deleted_by", json!(m.deleted_by)));
    doc.push(("schema_version", json!(m.schema_version)));
    doc.push(("version", json!(m.version)));
    for (field, value) in record.fields().iter().zip(&record.values) {
        doc.push((field.v1_name, to_v1_json(field, value)));
    }
    if rt == RecordType::Account {
        doc.push(("domain", json!(record.primary_domain())));
        let names: Vec<&str> = record.domains.iter().map(|d| d.domain_name.as_str()).collect();
        doc.push(("domains", json!(names)));
    }
    if rt == RecordType::Contact {
        doc.push(("email", json!(record.primary_email())));
        doc.push(("phone", json!(record.primary_phone())));
        doc.push(("account_id", json!(record.primary_account.map(|a| a.v1(RecordType::Account)))));
    }
    doc.push(("custom_fields", crate::custom::v1_values(record, schema)));
    doc.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Document(doc)
}

/// Renders a record as its v1 document (as [`rendered`], as a JSON value).
pub fn render(record: &Record, schema: &TenantSchema) -> Json {
    serde_json::to_value(rendered(record, schema)).expect("a v1 document serialises")
}

/// The JSON Schema (2020-12) of a v1 document of `record_type` in a tenant (docs/CONTRACT.md §6):
/// every field with its type, server-stamped fields `readOnly`, custom fields included.
pub fn json_schema(record_type: RecordType, schema: &TenantSchema) -> Json {
    use crate::schema::ValueType as T;
    fn nullable(mut s: Json) -> Json {
        if let Some(t) = s.get("type").and_then(Json::as_str).map(str::to_owned) {
            s["type"] = json!([t, "null"]);
        }
        // An enum lists its values: an unset stage or select is null, so null is one of them.
        if let Some(values) = s.get_mut("enum").and_then(Json::as_array_mut) {
            values.push(Json::Null);
        }
        s
    }
    fn type_schema(vt: T, is_array: bool, stages: &[crate::schema::Stage]) -> Json {
        let one = match vt {
            T::String | T::PhoneNumber => json!({"type": "string", "maxLength": normalize::MAX_STRING_CHARS}),
            T::LongText => json!({"type": "string", "maxLength": normalize::MAX_LONG_TEXT_CHARS}),
            // No `format`: stored values are what the normalisers accept (WHATWG URLs,
            // internationalised email domains), not always RFC 3986 URIs or RFC 5322 addresses
            // (found by schemathesis; docs/API.md, "Normalisation").
            T::Url => json!({"type": "string", "description": "an absolute http(s) URL"}),
            T::Email => json!({"type": "string", "description": "an email address"}),
            T::Number => json!({"type": "integer", "minimum": 0}),
            T::Currency => json!({"type": "number", "minimum": 0, "description": "USD"}),
            T::Percent => json!({"type": "number"}),
            T::Boolean => json!({"type": "boolean"}),
            T::Timestamp => json!({"type": "string", "format": "date-time"}),
            T::Date => json!({"type": "string", "format": "date"}),
            T::Enum(values) => json!({"type": "string", "enum": values}),
            T::Stage | T::Select => {
                json!({"type": "string", "enum": stages.iter().map(|s| s.api_name.clone()).collect::<Vec<_>>()})
            }
            T::Reference(target) => {
                json!({"type": "string", "pattern": format!("^{}-[0-9a-f-]{{36}}$", target.v1_prefix())})
            }
            T::Address => json!({
                "type": "object", "additionalProperties": false,
                "properties": {"label": {"type": ["string", "null"]}, "street_one": {"type": ["string", "null"]}, "street_two": {"type": ["string", "null"]},
                               "city": {"type": ["string", "null"]}, "state": {"type": ["string", "null"]}, "country": {"type": ["string", "null"]}, "zip_code": {"type": ["string", "null"]}}
            }),
        };
        if is_array { json!({"type": "array", "items": one}) } else { nullable(one) }
    }
    let read_only = |s: Json| {
        let mut s = s;
        s["readOnly"] = json!(true);
        s
    };
    let mut props = Map::new();
    let id_pattern = format!("^{}-[0-9a-f-]{{36}}$", record_type.v1_prefix());
    props.insert("id".into(), read_only(json!({"type": "string", "pattern": id_pattern})));
    for key in ["tenant_id", "created_by", "updated_by"] {
        props.insert(key.into(), read_only(json!({"type": "string"})));
    }
    for key in ["app_id", "deleted_by"] {
        props.insert(key.into(), read_only(json!({"type": ["string", "null"]})));
    }
    for key in ["created_at", "updated_at"] {
        props.insert(key.into(), read_only(json!({"type": "string", "format": "date-time"})));
    }
    props.insert("deleted_at".into(), read_only(json!({"type": ["string", "null"], "format": "date-time"})));
    props.insert("is_deleted".into(), read_only(json!({"type": "boolean"})));
    props.insert("schema_version".into(), read_only(json!({"type": "integer"})));
    props.insert("version".into(), json!({"type": "integer", "minimum": 1, "description": "optimistic-concurrency counter; send it to write only at this version"}));
    for f in crate::schema::fields(record_type) {
        props.insert(f.v1_name.into(), type_schema(f.value_type, f.is_array, &schema.stages));
    }
    match record_type {
        RecordType::Account => {
            props.insert(
                "domain".into(),
                json!({"type": ["string", "null"], "format": "hostname", "description": "primary domain"}),
            );
            props.insert(
                "domains".into(),
                read_only(json!({"type": "array", "items": {"type": "string", "format": "hostname"}})),
            );
        }
        RecordType::Contact => {
            props.insert("email".into(), json!({"type": ["string", "null"], "description": "primary email"}));
            props.insert("phone".into(), json!({"type": ["string", "null"], "description": "primary phone"}));
            props.insert(
                "account_id".into(),
                json!({"type": ["string", "null"], "pattern": "^acc-[0-9a-f-]{36}$", "description": "primary account"}),
            );
        }
        RecordType::User => {}
    }
    let mut custom = Map::new();
    for def in &schema.custom {
        let mut s = type_schema(def.value_type, def.is_array, &def.options);
        s["title"] = json!(def.display_name);
        custom.insert(def.api_name.clone(), s);
    }
    let required: Vec<&str> =
        schema.custom.iter().filter(|d| d.is_required_on_create).map(|d| d.api_name.as_str()).collect();
    props.insert(
        "custom_fields".into(),
        json!({"type": "object", "additionalProperties": false, "properties": custom, "required": required}),
    );
    let title = match record_type {
        RecordType::Account => "Account",
        RecordType::Contact => "Contact",
        RecordType::User => "User",
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("/api/v1/schemas/{}", record_type.api_name()),
        "title": title, "type": "object", "additionalProperties": false,
        "x-cpod-domain": "customer", "properties": props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Actor, RecordMeta};
    use crate::timestamp::Timestamp;

    fn parse(body: Json, mode: WriteMode) -> CoreResult<RecordWrite> {
        parse_write(RecordType::Account, &body, mode, &TenantSchema::builtin("t", RecordType::Account))
    }

    #[test]
    fn stamps_are_ignored_and_unknown_fields_refused() {
        let w = parse(
            json!({"id": "rec_01HX", "tenant_id": "other", "created_by": "x", "name": "Acme", "version": 3}),
            WriteMode::Create,
        )
        .unwrap();
        assert_eq!(w.values.len(), 1);
        assert_eq!(w.expected_version, Some(3));
        let e = parse(json!({"name": "Acme", "colour": "red"}), WriteMode::Create).unwrap_err();
        assert_eq!((e.code, e.details["field"].as_str()), (ErrorCode::UnknownField, Some("colour")));
        let e = parse(json!({"custom_fields": {"tier": "gold"}}), WriteMode::Patch).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownField);
        assert!(parse(json!(["not", "an", "object"]), WriteMode::Create).is_err());
    }

    #[test]
    fn put_resets_what_it_does_not_mention() {
        let w = parse(json!({"name": "Acme"}), WriteMode::Replace).unwrap();
        assert_eq!(w.values.len(), crate::schema::ACCOUNT_FIELDS.len());
        assert_eq!(w.primary_domain, Some(None));
        let w = parse(json!({"domain": "https://www.Acme.com/x"}), WriteMode::Patch).unwrap();
        assert_eq!(w.primary_domain, Some(Some("acme.com".into())));
    }

    /// The document as written straight to a response is the JSON value [`render`] gives, key
    /// for key and in the same order (no field named twice), for both record types.
    #[test]
    fn direct_serialisation_matches_the_json_value() {
        let actor = Actor::new("t", "s", None, crate::record::ActorKind::User);
        for rt in [RecordType::Account, RecordType::Contact] {
            let schema = TenantSchema::builtin("t", rt);
            let body = json!({"name": "Acme", "first_name": "Jo", "email": "jo@acme.com", "domain": "acme.com", "tags": ["a"]});
            let mut body = body.as_object().unwrap().clone();
            if rt == RecordType::Account {
                body.retain(|k, _| !matches!(k.as_str(), "first_name" | "email"));
            } else {
                body.retain(|k, _| !matches!(k.as_str(), "name" | "domain"));
            }
            let write = parse_write(rt, &Json::Object(body), WriteMode::Create, &schema).unwrap();
            let mut r = Record::new(rt, RecordMeta::new(&actor, Timestamp(0)));
            r.apply(&write, Timestamp(0)).unwrap();
            let direct = serde_json::to_string(&rendered(&r, &schema)).unwrap();
            assert_eq!(direct, render(&r, &schema).to_string(), "{rt:?}");
        }
    }

    #[test]
    fn rendering_has_every_field() {
        let actor = Actor::new("t", "s", None, crate::record::ActorKind::User);
        let mut r = Record::new(RecordType::Account, RecordMeta::new(&actor, Timestamp(0)));
        r.apply(
            &parse(json!({"name": "Acme", "domain": "acme.com", "tags": ["a"]}), WriteMode::Create).unwrap(),
            Timestamp(0),
        )
        .unwrap();
        let doc = render(&r, &TenantSchema::builtin("t", RecordType::Account));
        for key in [
            "id",
            "name",
            "domain",
            "domains",
            "owner_id",
            "addresses",
            "custom_fields",
            "is_deleted",
            "source",
            "source_type",
            "annual_revenue",
        ] {
            assert!(doc.get(key).is_some(), "{key}");
        }
        assert_eq!(doc["source"], "edm");
        assert_eq!(doc["source_type"], "api");
        assert_eq!(doc["domains"], json!(["acme.com"]));
        assert_eq!(doc["addresses"], json!([]));
        assert!(doc["id"].as_str().unwrap().starts_with("acc-"));
    }
}
