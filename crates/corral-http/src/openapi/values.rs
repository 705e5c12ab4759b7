//! JSON Schemas of attribute values, derived from the `_schema` document of a record type:
//! what a v2 envelope carries when read, what a write may send (raw or enveloped), and what a
//! filter condition may compare. The `_schema` entry of an attribute (value type, array-ness,
//! options, target, writability, filter operators) decides every one of them, so the
//! OpenAPI document cannot disagree with `_schema`.

use corral_core::normalize::{MAX_LONG_TEXT_CHARS, MAX_STRING_CHARS};
use serde_json::{Value as Json, json};

/// Largest array an array attribute takes (tags, websites, custom arrays).
const MAX_ARRAY_ITEMS: usize = 100;

/// Text the database can store: anything without NUL.
pub const TEXT: &str = "^[^\\u0000]*$";
/// An email address the normaliser accepts (a subset of RFC 5322 that it always takes).
pub const EMAIL: &str = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\\.[A-Za-z]{2,24}$";
/// A domain, or a URL naming one (normalised to the bare domain; `www.` dropped). The host name
/// stays within 253 characters by construction (at most five labels of up to 55 characters;
/// a subset of valid names), not by a look-ahead, which the fuzzer's generator can only meet
/// by filtering.
pub const DOMAIN: &str = "^(https?://)?(?!www\\.[^.]+$)[A-Za-z0-9]([A-Za-z0-9-]{0,53}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,53}[A-Za-z0-9])?){0,3}\\.[A-Za-z]{2,24}/?$";
/// An absolute http(s) URL that the server's URL parser (WHATWG rules) takes: a host whose
/// last label starts with a letter (one that ends in a number is read as an IPv4 address, and
/// refused unless it is one), no `xn--` label (it would have to be valid Punycode), and a port
/// of at most 65535.
pub const URL: &str = "^[Hh][Tt][Tt][Pp][Ss]?://((?![Xx][Nn]--)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*(?![Xx][Nn]--)[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?(/[A-Za-z0-9._~%!$&'()*+,;=:@-]*)*$";
/// A phone number: any text with a digit.
pub const PHONE: &str = "^[^\\u0000]*[0-9][^\\u0000]*$";
/// An RFC 3339 timestamp within the years 1000-8999 (the range stored is years 1-9999 in UTC).
pub const TIMESTAMP: &str =
    "^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// `{"type": "string", "pattern": …}` with a length limit.
pub fn text(pattern: &str, max: usize) -> Json {
    json!({"type": "string", "pattern": pattern, "maxLength": max})
}

/// One attribute as `_schema` lists it.
pub struct Attribute<'a>(pub &'a Json);

impl Attribute<'_> {
    pub fn name(&self) -> &str {
        self.0["api_name"].as_str().unwrap_or_default()
    }
    pub fn value_type(&self) -> &str {
        self.0["type_info"]["value_type"].as_str().unwrap_or_default()
    }
    pub fn is_array(&self) -> bool {
        self.0["type_info"]["is_array"].as_bool().unwrap_or(false)
    }
    pub fn writable(&self) -> bool {
        self.0["is_creatable"].as_bool().unwrap_or(false)
    }
    pub fn sortable(&self) -> bool {
        self.0["is_sortable"].as_bool().unwrap_or(false)
    }
    pub fn required_on_create(&self) -> bool {
        self.0["is_required_on_create"].as_bool().unwrap_or(false)
    }
    pub fn operators(&self) -> Vec<&str> {
        self.0["filter_operators"].as_array().map(|a| a.iter().filter_map(Json::as_str).collect()).unwrap_or_default()
    }
    pub fn target(&self) -> &str {
        self.0["type_info"]["target"].as_str().unwrap_or("account")
    }
    /// Option api_names (stages, selects, enums).
    fn option_names(&self) -> Vec<String> {
        let options = self.0["type_info"]["options"].as_array().cloned().unwrap_or_default();
        options.iter().filter_map(|o| o.as_str().or_else(|| o["api_name"].as_str()).map(str::to_owned)).collect()
    }
}

/// The v1 id prefix of a record type.
fn id_prefix(record_type: &str) -> &'static str {
    corral_core::RecordType::from_api_name(record_type).map(|t| t.v1_prefix()).unwrap_or("acc")
}

/// `schema` or `null`.
pub fn nullable(schema: Json) -> Json {
    json!({"anyOf": [schema, {"type": "null"}]})
}

fn option_object() -> Json {
    json!({"type": "object", "additionalProperties": false,
        "required": ["id", "api_name", "display_value", "color"],
        "properties": {"id": {"type": ["string", "null"]}, "api_name": {"type": "string"},
                       "display_value": {"type": "string"}, "color": {"type": ["string", "null"]}}})
}

/// An address: every part optional text.
pub fn address() -> Json {
    let part = json!({"type": ["string", "null"], "maxLength": MAX_STRING_CHARS, "pattern": TEXT});
    json!({"type": "object", "additionalProperties": false, "properties": {
        "label": part, "street_one": part, "street_two": part, "city": part,
        "state": part, "country": part, "zip_code": part}})
}

/// A sub-resource item as it appears inside a record (`domains`, `contact_emails`, …).
fn item_object(value_type: &str) -> Json {
    match value_type {
        "account_domain" => {
            json!({"type": "object", "additionalProperties": false, "required": ["domain_name", "is_primary"],
            "properties": {"domain_name": {"type": "string"}, "is_primary": {"type": "boolean"}}})
        }
        _ => {
            let key = if value_type == "contact_email" { "email" } else { "phone_number" };
            json!({"type": "object", "additionalProperties": false, "required": ["id", key, "is_primary", "labels"],
                "properties": {"id": {"type": "string"}, key: {"type": "string"}, "is_primary": {"type": "boolean"},
                               "labels": {"type": "array", "items": {"type": "string", "enum": corral_core::record::ITEM_LABELS}}}})
        }
    }
}

/// The `value` of a read envelope (without `null`).
fn read_value(attr: &Attribute<'_>) -> Json {
    match attr.value_type() {
        "uuid" => json!({"type": "string", "format": "uuid"}),
        "string" | "long_text" | "url" | "phone_number" | "email" => json!({"type": "string"}),
        "enum" => json!({"type": "string", "enum": attr.option_names()}),
        "number" => json!({"type": "integer"}),
        "percent" => json!({"type": "number"}),
        "currency" => json!({"type": "object", "additionalProperties": false, "required": ["amount", "currency_code"],
            "properties": {"amount": {"type": "string", "description": "exact decimal"}, "currency_code": {"type": "string", "enum": ["USD"]}}}),
        "boolean" => json!({"type": "boolean"}),
        "timestamp" => json!({"type": "string", "format": "date-time"}),
        "date" => json!({"type": "string", "format": "date"}),
        "account_stage" | "contact_stage" | "select" => option_object(),
        "record_reference" => json!({"type": "object", "additionalProperties": false,
            "required": ["related_record_id", "related_record_type"],
            "properties": {"related_record_id": {"type": "string", "format": "uuid"},
                           "related_record_type": {"type": "string", "enum": [attr.target()]}}}),
        "address" => address(),
        other => item_object(other),
    }
}

/// The read envelope of an attribute: `{"value_type", "value"}`, or an array of them.
fn read_envelope_inline(attr: &Attribute<'_>) -> Json {
    // `organization_id` is a uuid when the tenant id is one, else a string.
    let value_types =
        if attr.name() == "organization_id" { json!(["uuid", "string"]) } else { json!([attr.value_type()]) };
    let value = if attr.name() == "organization_id" { json!({"type": "string"}) } else { read_value(attr) };
    let envelope = |value: Json| {
        json!({"type": "object", "additionalProperties": false, "required": ["value_type", "value"],
            "properties": {"value_type": {"type": "string", "enum": value_types}, "value": value}})
    };
    if attr.is_array() { json!({"type": "array", "items": envelope(value)}) } else { envelope(nullable(value)) }
}

/// One value as a write takes it (without `null`).
fn write_scalar(attr: &Attribute<'_>) -> Json {
    match attr.value_type() {
        "string" => text(TEXT, MAX_STRING_CHARS),
        "phone_number" => text(PHONE, 64),
        "long_text" => text(TEXT, MAX_LONG_TEXT_CHARS),
        "url" => text(URL, corral_core::normalize::MAX_URL_CHARS),
        "email" => text(EMAIL, 320),
        "enum" => json!({"type": "string", "enum": attr.option_names()}),
        "number" => json!({"anyOf": [
            {"type": "integer", "minimum": 0, "maximum": corral_core::value::MAX_WHOLE_NUMBER},
            {"type": "string", "pattern": "^\\+?[0-9]{1,15}$", "description": "digits are read as the number"}
        ]}),
        "percent" => json!({"anyOf": [
            {"type": "number", "minimum": -1e15, "maximum": 1e15},
            {"type": "string", "pattern": "^[+-]?[0-9]{1,15}(\\.[0-9]{1,10})?$"}
        ]}),
        "currency" => json!({"anyOf": [
            {"type": "number", "minimum": 0, "maximum": 1e15},
            {"type": "string", "pattern": "^\\+?[0-9]{1,15}(\\.[0-9]{1,10})?$"},
            {"type": "object", "additionalProperties": false, "required": ["amount"],
             "properties": {"amount": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1e15}, {"type": "string", "pattern": "^\\+?[0-9]{1,15}(\\.[0-9]{1,10})?$"}]}, "currency_code": {"type": "string", "pattern": "^[Uu][Ss][Dd]$"}}}
        ]}),
        "boolean" => json!({"type": "boolean"}),
        "timestamp" => json!({"type": "string", "format": "date-time", "pattern": TIMESTAMP}),
        "date" => json!({"type": "string", "format": "date", "pattern": "^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}$"}),
        "account_stage" | "contact_stage" | "select" => {
            json!({"type": "string", "enum": attr.option_names(), "description": "an option's api_name (its id or display value is accepted too)"})
        }
        "record_reference" => json!({"anyOf": [
            {"type": "string", "format": "uuid", "description": format!("a {} id", attr.target())},
            {"type": "string", "pattern": format!("^{}-[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}$", id_prefix(attr.target())), "description": "the v1 spelling"},
            {"type": "object", "additionalProperties": false, "required": ["related_record_id"],
             "properties": {"related_record_id": {"type": "string", "format": "uuid"},
                            "related_record_type": {"type": "string", "enum": [attr.target()]}}},
            {"type": "object", "additionalProperties": false, "required": ["related_record_match"],
             "properties": {"related_record_match": {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "additionalProperties": {"type": "string", "minLength": 1}}}}
        ]}),
        "address" => address(),
        _ => json!({}),
    }
}

/// One item of a string array (`tags`, custom string arrays) as the normaliser takes it
/// (docs/API.md, "Tags"): at most 100 characters as sent, no NUL, and something left after
/// trimming white space (the class is Unicode's White_Space, what the server trims).
pub const TAG: &str =
    "^[^\\u0000]*[^\\u0000\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$";

/// The schema of one item of an array attribute: string arrays are tags, the rest take what
/// one value takes.
fn item_shared(attr: &Attribute<'_>) -> Json {
    if attr.value_type() == "string" { component("TagValue".to_owned()) } else { write_scalar_shared(attr) }
}

/// What a write may send for an attribute: the raw value or its envelope; `null` clears.
fn write_value_inline(attr: &Attribute<'_>) -> Json {
    let scalar = write_scalar_shared(attr);
    let raw = if attr.is_array() {
        let items = item_shared(attr);
        json!({"type": ["array", "null"], "maxItems": MAX_ARRAY_ITEMS, "items": {"anyOf": [
            items.clone(),
            // An item's envelope carries its value: an array item cannot be "no value".
            {"type": "object", "additionalProperties": false, "required": ["value_type", "value"],
             "properties": {"value_type": {"type": "string", "enum": [attr.value_type()]}, "value": items}}
        ]}})
    } else {
        nullable(scalar.clone())
    };
    if attr.is_array() {
        return raw;
    }
    json!({"anyOf": [raw, {"type": "object", "additionalProperties": false, "required": ["value_type"],
        "properties": {"value_type": {"type": "string", "enum": [attr.value_type()]}, "value": nullable(scalar)}}]})
}

/// One shape of condition a filter may put on an attribute: a kind (`Comparison`, `List`,
/// `Range`, `Presence`), its operators, and the schema of its value (none for presence).
pub struct ConditionShape {
    pub kind: &'static str,
    pub operators: Vec<&'static str>,
    pub value: Option<Json>,
}

/// The id of a `record_type` record exactly as a filter takes it (`RecordId::parse`): a uuid,
/// hyphenated or not, optionally with the type's v1 prefix (any case), white space around
/// (Unicode's White_Space, what the server trims). A path id may be looser (ID_PATTERN): a
/// malformed one names no record (404).
pub fn filter_id_pattern(record_type: corral_core::RecordType) -> String {
    const WS: &str = "[\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*";
    let prefix: String =
        record_type.v1_prefix().chars().map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c)).collect();
    format!(
        "^{WS}({prefix}-)?([0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}|[0-9a-fA-F]{{32}}){WS}$"
    )
}

/// An id of `target` as a filter takes it ([`filter_id_pattern`]).
fn id_value(target: &str) -> Json {
    let record_type = corral_core::RecordType::from_api_name(target).unwrap_or(corral_core::RecordType::Account);
    json!({"type": "string", "pattern": filter_id_pattern(record_type),
           "description": format!("a {target} id: the UUID, or its v1 spelling ({}-…)", record_type.v1_prefix())})
}

/// The value a filter compares an attribute with: what the filter compiler accepts
/// (`corral_core::filter`), which is wider than what a write accepts (negative numbers, any
/// text of up to 1,000 characters, numbers spelled as strings, an email-typed attribute
/// compared with any text). The filter-value test in the API suite probes every shape.
fn filter_value(attr: &Attribute<'_>) -> Option<Json> {
    use corral_core::filter::{DECIMAL_TEXT, MAX_DECIMAL_MAGNITUDE, WHOLE_NUMBER_TEXT};
    Some(match attr.value_type() {
        "number" => json!({"anyOf": [
            {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
            {"type": "string", "pattern": WHOLE_NUMBER_TEXT, "description": "digits are read as the number"}
        ]}),
        "currency" | "percent" => {
            let number = json!({"type": "number", "minimum": -MAX_DECIMAL_MAGNITUDE, "maximum": MAX_DECIMAL_MAGNITUDE});
            let string = json!({"type": "string", "pattern": DECIMAL_TEXT});
            json!({"anyOf": [number, string, {"type": "object", "additionalProperties": false, "required": ["amount"],
                "properties": {"amount": {"anyOf": [number, string]}}}]})
        }
        "boolean" => json!({"type": "boolean"}),
        "timestamp" => json!({"type": "string", "format": "date-time", "pattern": TIMESTAMP}),
        "date" => json!({"type": "string", "format": "date", "pattern": "^[1-8][0-9]{3}-[0-9]{2}-[0-9]{2}$"}),
        "account_domain" => text(DOMAIN, corral_core::normalize::MAX_DOMAIN_INPUT_CHARS),
        "record_reference" | "uuid" => id_value(attr.target()),
        "enum" | "account_stage" | "contact_stage" | "select" => write_scalar(attr),
        "address" => return None,
        // Text of every kind (emails too) is compared as text of at most 1,000 characters.
        _ => fragment(),
    })
}

/// What a substring operator takes, whatever the attribute's type: text of at most 1,000
/// characters.
pub fn fragment() -> Json {
    text(TEXT, MAX_STRING_CHARS)
}

/// The condition shapes of an attribute, one per value shape its operators take.
pub fn filter_conditions(attr: &Attribute<'_>) -> Vec<ConditionShape> {
    let operators = attr.operators();
    if operators.is_empty() {
        return Vec::new();
    }
    let Some(scalar) = filter_value(attr) else { return Vec::new() };
    let groups: [(&str, &[&str], Option<Json>); 5] = [
        ("Comparison", &["eq", "ne", "gt", "gte", "lt", "lte"], Some(scalar.clone())),
        ("Match", &["contains", "starts_with", "ends_with"], Some(fragment())),
        (
            "List",
            &["in", "not_in"],
            Some(
                json!({"type": "array", "minItems": 1, "maxItems": corral_core::filter::MAX_IN_VALUES, "items": scalar.clone()}),
            ),
        ),
        ("Range", &["between"], Some(json!({"type": "array", "minItems": 2, "maxItems": 2, "items": scalar}))),
        ("Presence", &["exists", "not_exists"], None),
    ];
    let mut out = Vec::new();
    for (kind, group, value) in groups {
        let ops: Vec<&'static str> = group.iter().copied().filter(|o| operators.contains(o)).collect();
        if !ops.is_empty() {
            out.push(ConditionShape { kind, operators: ops, value });
        }
    }
    out
}

/// The schema of conditions of one shape on `fields`.
pub fn condition_schema(fields: &[String], shape: &ConditionShape) -> Json {
    let mut properties =
        json!({"field": {"type": "string", "enum": fields}, "operator": {"type": "string", "enum": shape.operators}});
    let mut required = vec!["field", "operator"];
    match &shape.value {
        Some(v) => {
            properties["value"] = v.clone();
            required.push("value");
        }
        None => properties["value"] = json!({"type": "null"}),
    }
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

/// `PascalCase` of a snake_case name (dotted relationship fields too: `accounts.industry`).
pub fn pascal(name: &str) -> String {
    name.split(['_', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The value types whose schemas depend on nothing but the type (no options, no target):
/// their schemas are shared components, named after the type, instead of repeated inline.
const SHARED: &[(&str, &str)] = &[
    ("string", "String"),
    ("long_text", "LongText"),
    ("url", "Url"),
    ("phone_number", "PhoneNumber"),
    ("email", "Email"),
    ("number", "Number"),
    ("percent", "Percent"),
    ("currency", "Currency"),
    ("boolean", "Boolean"),
    ("timestamp", "Timestamp"),
    ("date", "Date"),
    ("address", "Address"),
];

fn shared_stem(attr: &Attribute<'_>) -> Option<&'static str> {
    SHARED.iter().find(|(vt, _)| *vt == attr.value_type()).map(|(_, stem)| *stem)
}

fn component(name: String) -> Json {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn write_scalar_shared(attr: &Attribute<'_>) -> Json {
    match shared_stem(attr) {
        Some(stem) => component(format!("{stem}Value")),
        None => write_scalar(attr),
    }
}

/// The read envelope of an attribute: `{"value_type", "value"}`, or an array of them.
pub fn read_envelope(attr: &Attribute<'_>) -> Json {
    match shared_stem(attr) {
        Some(stem) if attr.name() != "organization_id" => {
            component(format!("{stem}{}", if attr.is_array() { "EnvelopeList" } else { "Envelope" }))
        }
        _ => read_envelope_inline(attr),
    }
}

/// What a write may send for an attribute: the raw value or its envelope; `null` clears.
pub fn write_value(attr: &Attribute<'_>) -> Json {
    match shared_stem(attr) {
        Some(stem) => component(format!("{stem}{}", if attr.is_array() { "ListWrite" } else { "Write" })),
        None => write_value_inline(attr),
    }
}

/// A write value without envelopes (v1 documents): the value, a list of values, or `null`.
pub fn raw_write_value(attr: &Attribute<'_>) -> Json {
    let scalar = write_scalar_shared(attr);
    if attr.is_array() {
        json!({"type": ["array", "null"], "maxItems": MAX_ARRAY_ITEMS, "items": item_shared(attr)})
    } else {
        nullable(scalar)
    }
}

/// The shared value schemas [`read_envelope`], [`write_value`] and filters refer to.
pub fn shared_components() -> serde_json::Map<String, Json> {
    let mut out = serde_json::Map::new();
    for (vt, stem) in SHARED {
        for is_array in [false, true] {
            let entry = json!({"api_name": "", "type_info": {"value_type": vt, "is_array": is_array}});
            let attr = Attribute(&entry);
            let (read, write) = if is_array { ("EnvelopeList", "ListWrite") } else { ("Envelope", "Write") };
            out.insert(format!("{stem}{read}"), read_envelope_inline(&attr));
            out.insert(format!("{stem}{write}"), write_value_inline(&attr));
        }
        let entry = json!({"api_name": "", "type_info": {"value_type": vt, "is_array": false}});
        out.insert(format!("{stem}Value"), write_scalar(&Attribute(&entry)));
    }
    out.insert("TagValue".to_owned(), text(TAG, corral_core::normalize::MAX_TAG_CHARS));
    out
}
