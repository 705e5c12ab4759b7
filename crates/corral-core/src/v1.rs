//! The v1 document dialect (SPEC §8): flat JSON documents with the platform envelope.
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
/// SDK examples send them (SPEC §4.1). `version` is read as a precondition instead.
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
        Json::Number(n) => n
            .as_i64()
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

/// Renders a record as its v1 document: every field present, unset ones as `null`, arrays as
/// `[]`, `custom_fields` as an object.
pub fn render(record: &Record, schema: &TenantSchema) -> Json {
    let m = &record.meta;
    let rt = record.record_type;
    let mut doc = Map::new();
    doc.insert("id".into(), json!(m.id.v1(rt)));
    doc.insert("tenant_id".into(), json!(m.tenant_id));
    doc.insert("app_id".into(), json!(m.app_id));
    doc.insert("created_at".into(), json!(m.created_at.to_rfc3339()));
    doc.insert("updated_at".into(), json!(m.updated_at.to_rfc3339()));
    doc.insert("created_by".into(), json!(m.created_by));
    doc.insert("updated_by".into(), json!(m.updated_by));
    doc.insert("is_deleted".into(), json!(m.deleted_at.is_some()));
    doc.insert("deleted_at".into(), json!(m.deleted_at.map(|t| t.to_rfc3339())));
    doc.insert("deleted_by".into(), json!(m.deleted_by));
    doc.insert("schema_version".into(), json!(m.schema_version));
    doc.insert("version".into(), json!(m.version));
    for (field, value) in record.fields().iter().zip(&record.values) {
        doc.insert(field.v1_name.into(), to_v1_json(field, value));
    }
    if rt == RecordType::Account {
        doc.insert("domain".into(), json!(record.primary_domain()));
        let names: Vec<&str> = record.domains.iter().map(|d| d.domain_name.as_str()).collect();
        doc.insert("domains".into(), json!(names));
    }
    if rt == RecordType::Contact {
        doc.insert("email".into(), json!(record.primary_email()));
        doc.insert("phone".into(), json!(record.primary_phone()));
        doc.insert("account_id".into(), json!(record.primary_account.map(|a| a.v1(RecordType::Account))));
    }
    doc.insert("custom_fields".into(), crate::custom::v1_values(record, schema));
    Json::Object(doc)
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

    #[test]
    fn rendering_has_every_field() {
        let actor = Actor { tenant: "t".into(), subject: "s".into(), app: None };
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
