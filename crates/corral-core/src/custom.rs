//! Per-tenant custom attributes and the tenant's view of the schema (docs/CONTRACT.md §6).
//!
//! A [`TenantSchema`] is what validation and both codecs need about one record type in one
//! tenant: its stage options and its active custom attributes. Custom values are stored in
//! a canonical JSON form ([`to_stored`] / [`from_stored`]) and rendered per dialect.

use crate::error::{CoreError, CoreResult, ErrorCode};
use crate::ids::{RecordId, RecordType};
use crate::normalize;
use crate::schema::{Stage, ValueType, default_stages};
use crate::timestamp::Timestamp;
use crate::value::{Spec, Value};
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json, json};
use std::str::FromStr;

/// Most custom attributes per record type per tenant.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 200;

/// A custom attribute definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomAttribute {
    pub api_name: String,
    pub display_name: String,
    pub description: Option<String>,
    pub value_type: ValueType,
    pub is_array: bool,
    pub is_required_on_create: bool,
    /// Options of a `select` attribute.
    pub options: Vec<Stage>,
}

impl CustomAttribute {
    /// The shape coercion checks values against.
    pub fn spec(&self) -> Spec<'_> {
        Spec { name: &self.api_name, value_type: self.value_type, is_array: self.is_array, options: &self.options }
    }

    /// The stored definition (options are stored with the other attributes' options).
    pub fn to_json(&self, rt: RecordType) -> Json {
        let mut j = json!({
            "api_name": self.api_name, "display_name": self.display_name, "description": self.description,
            "value_type": self.value_type.api_name(rt), "is_array": self.is_array,
            "is_required_on_create": self.is_required_on_create, "is_unique": false,
        });
        if let ValueType::Reference(target) = self.value_type {
            j["target"] = json!(target.api_name());
        }
        j
    }

    /// Reads a stored definition back.
    pub fn from_json(rt: RecordType, j: &Json, options: Vec<Stage>) -> Option<CustomAttribute> {
        let value_type = value_type(j["value_type"].as_str()?, j["target"].as_str(), rt).ok()?;
        Some(CustomAttribute {
            api_name: j["api_name"].as_str()?.to_owned(),
            display_name: j["display_name"].as_str()?.to_owned(),
            description: j["description"].as_str().map(str::to_owned),
            value_type,
            is_array: j["is_array"].as_bool().unwrap_or(false),
            is_required_on_create: j["is_required_on_create"].as_bool().unwrap_or(false),
            options,
        })
    }
}

/// The value types a custom attribute may have (docs/CONTRACT.md §6).
fn value_type(name: &str, target: Option<&str>, _rt: RecordType) -> CoreResult<ValueType> {
    Ok(match name {
        "string" => ValueType::String,
        "long_text" => ValueType::LongText,
        "number" => ValueType::Number,
        "percent" => ValueType::Percent,
        "currency" => ValueType::Currency,
        "boolean" => ValueType::Boolean,
        "timestamp" => ValueType::Timestamp,
        "date" => ValueType::Date,
        "email" => ValueType::Email,
        "url" => ValueType::Url,
        "phone_number" => ValueType::PhoneNumber,
        "select" => ValueType::Select,
        "record_reference" => {
            let target = target.and_then(RecordType::from_api_name).ok_or_else(|| {
                CoreError::invalid_value("target", "a record_reference needs a target: account, contact or user")
            })?;
            ValueType::Reference(target)
        }
        other => {
            return Err(CoreError::invalid_value(
                "value_type",
                format!("`{other}` is not a custom attribute value type"),
            ));
        }
    })
}

/// Arrays hold text-like values only (strings, emails, URLs, phones, select options, references).
fn arrays_allowed(vt: ValueType) -> bool {
    matches!(
        vt,
        ValueType::String
            | ValueType::Email
            | ValueType::Url
            | ValueType::PhoneNumber
            | ValueType::Select
            | ValueType::Reference(_)
    )
}

fn valid_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn string_field(obj: &Map<String, Json>, key: &str) -> CoreResult<Option<String>> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => {
            normalize::bounded(s, normalize::MAX_STRING_CHARS).map(Some).map_err(|r| CoreError::invalid_value(key, r))
        }
        Some(_) => Err(CoreError::invalid_value(key, "expected a string")),
    }
}

/// A display name: absent is `None`; present, it must have a visible character (an empty or
/// blank one would leave the attribute without a label; the document's pattern says the same).
fn display_name_field(obj: &Map<String, Json>, key: &str) -> CoreResult<Option<String>> {
    match string_field(obj, key)? {
        Some(s) if s.trim().is_empty() => Err(CoreError::invalid_value(key, "cannot be empty")),
        other => Ok(other),
    }
}

/// A flag: absent is `false`; sent, it must be `true` or `false` (`null` too is refused, as the
/// OpenAPI document says; found by schemathesis).
fn flag(obj: &Map<String, Json>, key: &str) -> CoreResult<bool> {
    match obj.get(key) {
        None => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(CoreError::invalid_value(key, "expected true or false")),
    }
}

/// Parses a `POST …/attributes` body. `reserved` are the record type's built-in names.
pub fn parse_definition(rt: RecordType, body: &Json, reserved: &[&str]) -> CoreResult<CustomAttribute> {
    let obj =
        body.as_object().ok_or_else(|| CoreError::new(ErrorCode::InvalidJson, "the body must be a JSON object"))?;
    const KEYS: &[&str] = &[
        "api_name",
        "display_name",
        "description",
        "value_type",
        "is_array",
        "is_required_on_create",
        "is_unique",
        "options",
        "target",
    ];
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(CoreError::unknown_field(k));
    }
    let api_name = string_field(obj, "api_name")?.ok_or_else(|| CoreError::required_missing("api_name"))?;
    if !valid_api_name(&api_name) {
        return Err(CoreError::invalid_value("api_name", "must match ^[a-z][a-z0-9_]{0,62}$"));
    }
    if reserved.contains(&api_name.as_str()) {
        return Err(CoreError::invalid_value("api_name", format!("`{api_name}` is a built-in attribute of {rt}")));
    }
    let type_name = string_field(obj, "value_type")?.ok_or_else(|| CoreError::required_missing("value_type"))?;
    // `target` names a record type whenever it is sent (the document's enum), not only on a
    // record_reference, where it is required (docs/API.md, custom attributes).
    let target = match obj.get("target") {
        None => None,
        Some(Json::String(t)) if RecordType::from_api_name(t).is_some() => Some(t.as_str()),
        Some(_) => return Err(CoreError::invalid_value("target", "must be account, contact or user")),
    };
    let value_type = value_type(&type_name, target, rt)?;
    let is_array = flag(obj, "is_array")?;
    if is_array && !arrays_allowed(value_type) {
        return Err(CoreError::invalid_value("is_array", format!("arrays of {type_name} are not supported")));
    }
    if flag(obj, "is_unique")? {
        return Err(CoreError::invalid_value("is_unique", "unique custom attributes are not supported yet"));
    }
    let options = match (value_type, obj.get("options")) {
        (ValueType::Select, Some(Json::Array(items))) if !items.is_empty() => {
            let mut options: Vec<Stage> = Vec::new();
            for item in items {
                let option = parse_option(item)?;
                if options.iter().any(|o| o.api_name == option.api_name) {
                    return Err(CoreError::invalid_value(
                        "options",
                        format!("option `{}` appears twice", option.api_name),
                    ));
                }
                options.push(option);
            }
            options
        }
        (ValueType::Select, _) => {
            return Err(CoreError::invalid_value("options", "a select attribute needs at least one option"));
        }
        (_, None | Some(Json::Null)) => Vec::new(),
        (_, Some(_)) => return Err(CoreError::invalid_value("options", "only select attributes have options")),
    };
    Ok(CustomAttribute {
        display_name: display_name_field(obj, "display_name")?.unwrap_or_else(|| api_name.clone()),
        api_name,
        description: string_field(obj, "description")?,
        value_type,
        is_array,
        is_required_on_create: flag(obj, "is_required_on_create")?,
        options,
    })
}

/// Applies a `PATCH …/attributes/{api_name}` body: display name and description.
pub fn patch_definition(def: &mut CustomAttribute, body: &Json) -> CoreResult<()> {
    let obj =
        body.as_object().ok_or_else(|| CoreError::new(ErrorCode::InvalidJson, "the body must be a JSON object"))?;
    for key in obj.keys() {
        match key.as_str() {
            "display_name" => {
                def.display_name =
                    display_name_field(obj, key)?.ok_or_else(|| CoreError::invalid_value(key, "cannot be empty"))?
            }
            "description" => def.description = string_field(obj, key)?,
            "api_name" | "value_type" | "is_array" | "target" | "is_unique" | "is_required_on_create" => {
                return Err(CoreError::field_not_updatable(key));
            }
            other => return Err(CoreError::unknown_field(other)),
        }
    }
    Ok(())
}

/// Parses an option `{"api_name", "display_value"?, "color"?}` (a new option gets a new id).
pub fn parse_option(body: &Json) -> CoreResult<Stage> {
    let obj = body
        .as_object()
        .ok_or_else(|| CoreError::invalid_value("options", "an option is an object with an api_name"))?;
    if let Some(k) = obj.keys().find(|k| !["api_name", "display_value", "color"].contains(&k.as_str())) {
        return Err(CoreError::unknown_field(k));
    }
    let api_name = string_field(obj, "api_name")?.ok_or_else(|| CoreError::required_missing("api_name"))?;
    if !valid_api_name(&api_name) {
        return Err(CoreError::invalid_value("api_name", "must match ^[a-z][a-z0-9_]{0,62}$"));
    }
    Ok(Stage {
        id: RecordId::generate(),
        display_value: string_field(obj, "display_value")?.unwrap_or_else(|| api_name.clone()),
        color: string_field(obj, "color")?.unwrap_or_else(|| DEFAULT_OPTION_COLOR.to_owned()),
        api_name,
    })
}

/// The color of an option created without one.
pub const DEFAULT_OPTION_COLOR: &str = "#94a3b8";

/// Applies an option PATCH (`display_value`, `color`); `null` puts back what a create without
/// the key gives (the api_name as display value, the default color).
pub fn patch_option(option: &mut Stage, body: &Json) -> CoreResult<()> {
    let obj =
        body.as_object().ok_or_else(|| CoreError::new(ErrorCode::InvalidJson, "the body must be a JSON object"))?;
    for key in obj.keys() {
        match key.as_str() {
            "display_value" => {
                option.display_value = string_field(obj, key)?.unwrap_or_else(|| option.api_name.clone())
            }
            "color" => option.color = string_field(obj, key)?.unwrap_or_else(|| DEFAULT_OPTION_COLOR.to_owned()),
            "api_name" => return Err(CoreError::field_not_updatable(key)),
            other => return Err(CoreError::unknown_field(other)),
        }
    }
    Ok(())
}

/// One record type as one tenant sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSchema {
    pub record_type: RecordType,
    /// The stage options of the record type's stage attribute.
    pub stages: Vec<Stage>,
    /// Active custom attributes, in creation order.
    pub custom: Vec<CustomAttribute>,
}

impl TenantSchema {
    /// The built-in schema: default stages, no custom attributes.
    pub fn builtin(tenant: &str, rt: RecordType) -> Self {
        TenantSchema { record_type: rt, stages: default_stages(tenant, rt), custom: Vec::new() }
    }

    pub fn custom(&self, api_name: &str) -> Option<&CustomAttribute> {
        self.custom.iter().find(|c| c.api_name == api_name)
    }
}

/// A stored option list (`[{id, api_name, display_value, color}]`).
pub fn options_from_json(j: &Json) -> Vec<Stage> {
    j.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|o| {
                    Some(Stage {
                        id: RecordId(uuid::Uuid::try_parse(o["id"].as_str()?).ok()?),
                        api_name: o["api_name"].as_str()?.to_owned(),
                        display_value: o["display_value"].as_str()?.to_owned(),
                        color: o["color"].as_str().unwrap_or(DEFAULT_OPTION_COLOR).to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn options_to_json(options: &[Stage]) -> Json {
    Json::Array(options.iter().map(|o| json!({"id": o.id.canonical(), "api_name": o.api_name, "display_value": o.display_value, "color": o.color})).collect())
}

/// The canonical stored form of a custom value (`Null` when cleared).
pub fn to_stored(v: &Value) -> Json {
    match v {
        Value::Null | Value::Match { .. } | Value::Addresses(_) => Json::Null,
        Value::Text(s) => json!(s),
        Value::Int(n) => json!(n),
        Value::Decimal(d) => json!(d.to_string()),
        Value::Bool(b) => json!(b),
        Value::Time(t) => json!(t.to_rfc3339()),
        Value::Ref(id) => json!(id.canonical()),
        Value::List(items) => json!(items),
    }
}

/// A stored custom value read back as a [`Value`] of the attribute's type.
pub fn from_stored(def: &CustomAttribute, j: &Json) -> Value {
    if def.is_array {
        let items =
            j.as_array().map(|a| a.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        return Value::List(items);
    }
    match (def.value_type, j) {
        (_, Json::Null) => Value::Null,
        (ValueType::Number, Json::Number(n)) => n.as_i64().map(Value::Int).unwrap_or(Value::Null),
        (ValueType::Currency | ValueType::Percent, Json::String(s)) => {
            Decimal::from_str(s).map(Value::Decimal).unwrap_or(Value::Null)
        }
        (ValueType::Boolean, Json::Bool(b)) => Value::Bool(*b),
        (ValueType::Timestamp, Json::String(s)) => Timestamp::parse(s).map(Value::Time).unwrap_or(Value::Null),
        (ValueType::Reference(rt), Json::String(s)) => RecordId::parse(rt, s).map(Value::Ref).unwrap_or(Value::Null),
        (_, Json::String(s)) => Value::Text(s.clone()),
        _ => Value::Null,
    }
}

/// Coerces a client value for custom attribute `def` (errors name it `name`) into `write`.
pub fn coerce_into(
    def: &CustomAttribute,
    name: &str,
    json: &Json,
    write: &mut crate::record::RecordWrite,
) -> CoreResult<()> {
    let spec = Spec { name, ..def.spec() };
    let value = crate::value::coerce_spec(&spec, json)?;
    if let ValueType::Reference(target) = def.value_type {
        let ids: Vec<RecordId> = match &value {
            Value::Ref(id) => vec![*id],
            Value::List(items) => items.iter().filter_map(|i| RecordId::parse(target, i)).collect(),
            Value::Match { .. } => return Err(CoreError::invalid_value(name, "custom references take record ids")),
            _ => Vec::new(),
        };
        write.custom_refs.extend(ids.into_iter().map(|id| (name.to_owned(), target, id)));
    }
    write.custom.push((def.api_name.clone(), to_stored(&value)));
    Ok(())
}

/// On create, every `is_required_on_create` custom attribute must get a value.
pub fn check_required(
    schema: &TenantSchema,
    write: &crate::record::RecordWrite,
    name: impl Fn(&str) -> String,
) -> CoreResult<()> {
    for def in schema.custom.iter().filter(|d| d.is_required_on_create) {
        let given = write.custom.iter().any(|(k, v)| k == &def.api_name && !v.is_null() && v != &json!([]));
        if !given {
            return Err(CoreError::required_missing(&name(&def.api_name)));
        }
    }
    Ok(())
}

/// The v1 `custom_fields` object of a record: the values of its active custom attributes.
pub fn v1_values(record: &crate::record::Record, schema: &TenantSchema) -> Json {
    let mut out = Map::new();
    for def in &schema.custom {
        if let Some(stored) = record.custom.get(&def.api_name) {
            let value = from_stored(def, stored);
            out.insert(def.api_name.clone(), crate::value::to_v1_json_of(def.value_type, def.is_array, &value));
        }
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Json) -> CoreResult<CustomAttribute> {
        parse_definition(RecordType::Account, &body, &["display_name", "tags"])
    }

    #[test]
    fn definitions_are_validated() {
        let d = parse(json!({"api_name": "tier", "value_type": "select", "options": [{"api_name": "gold"}, {"api_name": "silver", "display_value": "Silver"}]})).unwrap();
        assert_eq!(d.options.len(), 2);
        assert_eq!(d.options[0].display_value, "gold");
        let r = parse(json!({"api_name": "csm", "value_type": "record_reference", "target": "user", "is_array": true}))
            .unwrap();
        assert_eq!(r.value_type, ValueType::Reference(RecordType::User));
        for (body, field) in [
            (json!({"api_name": "Tier", "value_type": "string"}), "api_name"),
            (json!({"api_name": "tags", "value_type": "string"}), "api_name"),
            (json!({"api_name": "x", "value_type": "money"}), "value_type"),
            (json!({"api_name": "x", "value_type": "select"}), "options"),
            (json!({"api_name": "x", "value_type": "string", "options": [{"api_name": "a"}]}), "options"),
            (json!({"api_name": "x", "value_type": "record_reference"}), "target"),
            (json!({"api_name": "x", "value_type": "record_reference", "target": "deal"}), "target"),
            (json!({"api_name": "x", "value_type": "string", "target": "deal"}), "target"),
            (json!({"api_name": "x", "value_type": "string", "target": null}), "target"),
            (json!({"api_name": "x", "value_type": "string", "target": 5}), "target"),
            (json!({"api_name": "x", "value_type": "number", "is_array": true}), "is_array"),
            (json!({"api_name": "x", "value_type": "string", "is_unique": true}), "is_unique"),
        ] {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.details["field"], field, "{body}");
        }
        assert_eq!(parse(json!({"value_type": "string"})).unwrap_err().code, ErrorCode::FieldRequiredMissing);
        assert_eq!(
            parse(json!({"api_name": "x", "value_type": "string", "colour": 1})).unwrap_err().code,
            ErrorCode::UnknownField
        );
    }

    #[test]
    fn stored_values_round_trip() {
        let def = parse(json!({"api_name": "arr", "value_type": "currency"})).unwrap();
        let v = Value::Decimal(Decimal::new(12345, 2));
        assert_eq!(from_stored(&def, &to_stored(&v)), v);
        let def = parse(json!({"api_name": "when", "value_type": "timestamp"})).unwrap();
        let v = Value::Time(Timestamp(1_700_000_000_123));
        assert_eq!(from_stored(&def, &to_stored(&v)), v);
        let stored =
            CustomAttribute::from_json(RecordType::Account, &def.to_json(RecordType::Account), Vec::new()).unwrap();
        assert_eq!(stored, def);
    }
}
