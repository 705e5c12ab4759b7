//! The v2 typed-record dialect (docs/CONTRACT.md §7.1–§7.3, §6): records as typed value envelopes,
//! writes as raw or enveloped attribute values, and the `_schema` document.

use crate::custom::{CustomAttribute, TenantSchema};
use crate::error::{CoreError, CoreResult, ErrorCode};
use crate::ids::{RecordId, RecordType, user_id_for_subject};
use crate::record::{Record, RecordWrite};
use crate::schema::{FieldDef, Stage, V2_META_ATTRIBUTES, ValueType, field_by_api_name, fields};
use crate::value::{CoerceContext, Dialect, Value, coerce};
use rust_decimal::Decimal;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value as Json, json};
use std::borrow::Cow;

/// How a v2 body is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    Patch,
}

/// `{"value_type": T, "value": V}`.
pub fn envelope(value_type: &str, value: Json) -> Json {
    json!({"value_type": value_type, "value": value})
}

/// Whether the account's `address` attribute is the v2 single view of the v1 `addresses` list.
pub(crate) fn is_first_of_list(rt: RecordType, f: &FieldDef) -> bool {
    rt == RecordType::Account && f.value_type == ValueType::Address && f.is_array
}

const DOMAINS_HINT: &str = "an account's domains are managed through the `domains` sub-resource \
     (`POST /api/v2/account/{id}/attribute/domains`), or set by `_assert` with match `domain_name`";

/// Why an item-list attribute cannot be written in a record body, and where it is written.
fn item_list_hint(rt: RecordType, key: &str) -> String {
    match (rt, key) {
        (RecordType::Account, _) => format!("`{key}` cannot be written in a record body: {DOMAINS_HINT}"),
        (_, "contact_emails") => format!(
            "`{key}` cannot be written in a record body: a contact's emails are managed through the \
             `contact_emails` sub-resource (`POST /api/v2/contact/{{id}}/attribute/contact_emails`); \
             set the primary one with `primary_email`, or `_assert` with match `primary_email`"
        ),
        _ => format!(
            "`{key}` cannot be written in a record body: a contact's phone numbers are managed through \
             the `contact_phone_numbers` sub-resource \
             (`POST /api/v2/contact/{{id}}/attribute/contact_phone_numbers`); set the primary one with \
             `primary_phone_number`"
        ),
    }
}

/// Parses `{"attributes": {...}}` into a write. Server-stamped attributes are refused
/// (`field_not_creatable` / `field_not_updatable`); so is `domains`, which has its own
/// sub-resource, and `domain_name`, which is no attribute at all.
pub fn parse_write(rt: RecordType, body: &Json, mode: WriteMode, schema: &TenantSchema) -> CoreResult<RecordWrite> {
    let obj =
        body.as_object().ok_or_else(|| CoreError::new(ErrorCode::InvalidJson, "the body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "attributes") {
        return Err(CoreError::unknown_field(k));
    }
    let attributes = match obj.get("attributes") {
        None | Some(Json::Null) => return Ok(RecordWrite::default()),
        Some(Json::Object(a)) => a,
        Some(_) => return Err(CoreError::invalid_value("attributes", "expected an object of attribute values")),
    };
    let ctx = CoerceContext { stages: &schema.stages, dialect: Dialect::V2 };
    let mut write = RecordWrite::default();
    for (key, raw) in attributes {
        let stamped = V2_META_ATTRIBUTES.iter().any(|(name, _, _)| name == key);
        let item_list = matches!(
            (rt, key.as_str()),
            (RecordType::Account, "domains") | (RecordType::Contact, "contact_emails" | "contact_phone_numbers")
        );
        if stamped || item_list {
            let mut err = match mode {
                WriteMode::Create => CoreError::field_not_creatable(key),
                WriteMode::Patch => CoreError::field_not_updatable(key),
            };
            if item_list {
                err.message = item_list_hint(rt, key);
            }
            return Err(err);
        }
        if rt == RecordType::Contact && matches!(key.as_str(), "primary_email" | "primary_phone_number") {
            let (value_type, normalise): (&str, crate::normalize::Normaliser) = match key.as_str() {
                "primary_email" => ("email", crate::normalize::email),
                _ => ("phone_number", crate::normalize::phone),
            };
            let value = match unwrap_as(key, value_type, raw)? {
                Json::Null => None,
                Json::String(s) => Some(normalise(&s).map_err(|r| CoreError::invalid_value(key, r))?),
                _ => return Err(CoreError::invalid_value(key, "expected a string")),
            };
            match key.as_str() {
                "primary_email" => write.primary_email = Some(value),
                _ => write.primary_phone = Some(value),
            }
            continue;
        }
        let Some((index, f)) = field_by_api_name(rt, key) else {
            let def = schema.custom(key).ok_or_else(|| match (rt, key.as_str()) {
                (RecordType::Account, "domain_name") => {
                    let mut err = CoreError::unknown_field(key);
                    err.message = format!("unknown field `domain_name`: {DOMAINS_HINT}");
                    err
                }
                _ => CoreError::unknown_field(key),
            })?;
            let json = unwrap_custom(rt, def, raw)?;
            crate::custom::coerce_into(def, key, &json, &mut write)?;
            continue;
        };
        let json = unwrap(rt, f, raw)?;
        if is_first_of_list(rt, f) {
            let single = FieldDef { is_array: false, ..*f };
            write.first_address = Some(match coerce(&single, &json, &ctx)? {
                Value::Addresses(mut list) => list.pop(),
                _ => None,
            });
            continue;
        }
        write.values.push((index, coerce(f, &json, &ctx)?));
    }
    if mode == WriteMode::Create {
        crate::custom::check_required(schema, &write, str::to_owned)?;
    }
    Ok(write)
}

/// [`unwrap`] for a custom attribute.
fn unwrap_custom(rt: RecordType, def: &CustomAttribute, raw: &Json) -> CoreResult<Json> {
    let vt = def.value_type.api_name(rt);
    match raw {
        Json::Array(items) if def.is_array => {
            Ok(Json::Array(items.iter().map(|i| unwrap_as(&def.api_name, vt, i)).collect::<CoreResult<_>>()?))
        }
        other => unwrap_as(&def.api_name, vt, other),
    }
}

/// The v2 value type name of a field.
fn type_name(rt: RecordType, f: &FieldDef) -> &'static str {
    f.value_type.api_name(rt)
}

/// Strips an envelope, checking its `value_type` is `expected`; raw values pass through.
fn unwrap_as(name: &str, expected: &str, item: &Json) -> CoreResult<Json> {
    match item {
        Json::Object(o) if o.contains_key("value_type") => {
            if let Some(k) = o.keys().find(|k| *k != "value_type" && *k != "value") {
                return Err(CoreError::invalid_value(name, format!("unexpected envelope key `{k}`")));
            }
            if o["value_type"].as_str() != Some(expected) {
                return Err(CoreError::invalid_value(name, format!("envelope value_type must be `{expected}`")));
            }
            Ok(o.get("value").cloned().unwrap_or(Json::Null))
        }
        other => Ok(other.clone()),
    }
}

/// Strips envelopes (one per array element for arrays), checking their `value_type`.
fn unwrap(rt: RecordType, f: &FieldDef, raw: &Json) -> CoreResult<Json> {
    let one = |item: &Json| unwrap_as(f.api_name, type_name(rt, f), item);
    match raw {
        Json::Array(items) if f.is_array && !is_first_of_list(rt, f) => {
            Ok(Json::Array(items.iter().map(one).collect::<CoreResult<_>>()?))
        }
        other => one(other),
    }
}

/// What rendering needs besides the record.
pub struct RenderContext<'a> {
    pub schema: &'a TenantSchema,
    /// `?fields=` / `"fields"`: only these attributes.
    pub only: Option<&'a [String]>,
}

/// One attribute's read `value`, borrowed from the record where it can be and serialised in
/// place: the JSON a client reads, without building a `serde_json::Value` tree (and copying
/// its text) per attribute of every record of a page. Objects are written with their keys
/// sorted, as every object Corral writes. Export rows ([`crate::export`]) write the same
/// values in their [`Out::plain`] spelling.
#[derive(Debug)]
pub(crate) enum Out<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Bool(bool),
    Number(f64),
    Time(crate::timestamp::Timestamp),
    Id(RecordId),
    /// `{"amount": "…", "currency_code": "USD"}`.
    Amount(&'a Decimal),
    /// A stage or select option: `{"api_name", "color", "display_value", "id"}`.
    Option(&'a Stage),
    /// An option value no longer among the options: itself, without id or color.
    UnknownOption(&'a str),
    /// `{"related_record_id", "related_record_type"}`.
    Ref(RecordId, RecordType),
    Texts(&'a [String]),
    /// An amount as its decimal string (the plain spelling of [`Out::Amount`]).
    DecimalText(&'a Decimal),
    /// A list of addresses (objects).
    Addresses(&'a [crate::value::Address]),
    /// An array attribute without values.
    EmptyList,
    /// Anything else (domains, contact items, custom values).
    Json(Json),
}

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Null => s.serialize_unit(),
            Out::Text(t) => s.serialize_str(t),
            Out::Int(n) => s.serialize_i64(*n),
            Out::Bool(b) => s.serialize_bool(*b),
            Out::Number(f) => s.serialize_f64(*f),
            Out::Time(t) => s.serialize_str(&t.to_rfc3339()),
            Out::Id(id) => s.collect_str(&id.0.hyphenated()),
            Out::Amount(d) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("amount", &d.to_string())?;
                map.serialize_entry("currency_code", "USD")?;
                map.end()
            }
            Out::Option(st) => {
                let mut map = s.serialize_map(Some(4))?;
                map.serialize_entry("api_name", &st.api_name)?;
                map.serialize_entry("color", &st.color)?;
                map.serialize_entry("display_value", &st.display_value)?;
                map.serialize_entry("id", &Out::Id(st.id))?;
                map.end()
            }
            Out::UnknownOption(name) => {
                let mut map = s.serialize_map(Some(4))?;
                map.serialize_entry("api_name", name)?;
                map.serialize_entry("color", &())?;
                map.serialize_entry("display_value", name)?;
                map.serialize_entry("id", &())?;
                map.end()
            }
            Out::Ref(id, rt) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("related_record_id", &Out::Id(*id))?;
                map.serialize_entry("related_record_type", rt.api_name())?;
                map.end()
            }
            Out::Texts(items) => s.collect_seq(items.iter()),
            Out::DecimalText(d) => s.collect_str(d),
            // Through a JSON value: its keys sorted.
            Out::Addresses(list) => s.collect_seq(list.iter().map(|a| json!(a))),
            Out::EmptyList => s.collect_seq(std::iter::empty::<()>()),
            Out::Json(j) => j.serialize(s),
        }
    }
}

impl<'a> Out<'a> {
    /// The same value as a JSON tree (for values made on the spot, such as custom ones).
    pub(crate) fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// The plain spelling export rows use: an amount as its decimal string, an option by its
    /// api_name, a reference by its id; everything else as it is.
    pub(crate) fn plain(self) -> Out<'a> {
        match self {
            Out::Amount(d) => Out::DecimalText(d),
            Out::Option(st) => Out::Text(&st.api_name),
            Out::UnknownOption(name) => Out::Text(name),
            Out::Ref(id, _) => Out::Id(id),
            other => other,
        }
    }
}

/// The read `value` of one field value.
fn value_json<'a>(f: &FieldDef, v: &'a Value, stages: &'a [Stage]) -> Out<'a> {
    value_json_of(f.value_type, v, stages)
}

/// The read `value` of a value of type `vt`; `options` resolve stage and select values.
pub(crate) fn value_json_of<'a>(vt: ValueType, v: &'a Value, stages: &'a [Stage]) -> Out<'a> {
    match v {
        Value::Null | Value::Match { .. } => Out::Null,
        Value::Text(s) if matches!(vt, ValueType::Stage | ValueType::Select) => {
            match stages.iter().find(|st| &st.api_name == s) {
                Some(st) => Out::Option(st),
                None => Out::UnknownOption(s),
            }
        }
        Value::Text(s) => Out::Text(s),
        Value::Int(n) => Out::Int(*n),
        Value::Decimal(d) if vt == ValueType::Percent => {
            d.to_string().parse().ok().filter(|f: &f64| f.is_finite()).map_or(Out::Null, Out::Number)
        }
        Value::Decimal(d) => Out::Amount(d),
        Value::Bool(b) => Out::Bool(*b),
        Value::Time(t) => Out::Time(*t),
        Value::Ref(id) => match vt {
            ValueType::Reference(rt) => Out::Ref(*id, rt),
            _ => Out::Id(*id),
        },
        Value::List(items) => Out::Texts(items),
        Value::Addresses(list) => list.first().map_or(Out::Null, |a| Out::Json(json!(a))),
    }
}

/// One rendered attribute: an envelope `{"value": V, "value_type": T}`, or a list of them
/// (array attributes). Serialised straight to the output: a page of records is written
/// without building a JSON tree per attribute (docs/PERFORMANCE.md, rendering).
#[derive(Debug)]
enum Attr<'a> {
    One(&'static str, Out<'a>),
    Many(&'static str, Vec<Out<'a>>),
}

/// `{"value": V, "value_type": T}` with borrowed parts (keys in the order a JSON object
/// with sorted keys has, as every other object in a response).
struct Envelope<'a, 'b>(&'static str, &'b Out<'a>);

impl Serialize for Envelope<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("value", self.1)?;
        map.serialize_entry("value_type", self.0)?;
        map.end()
    }
}

impl Serialize for Attr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Attr::One(vt, value) => Envelope(vt, value).serialize(s),
            Attr::Many(vt, values) => s.collect_seq(values.iter().map(|v| Envelope(vt, v))),
        }
    }
}

/// A record in the v2 dialect, ready to serialise: `{"attributes", "created_at", "id",
/// "record_type", "updated_at"}` with every schema attribute present (or the `only` ones).
pub struct RenderedRecord<'a> {
    record: &'a Record,
    /// Sorted by name.
    attributes: Vec<(Cow<'a, str>, Attr<'a>)>,
}

impl Serialize for RenderedRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Attributes<'b>(&'b [(Cow<'b, str>, Attr<'b>)]);
        impl Serialize for Attributes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), v)))
            }
        }
        let m = &self.record.meta;
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("attributes", &Attributes(&self.attributes))?;
        map.serialize_entry("created_at", &m.created_at.to_rfc3339())?;
        map.serialize_entry("id", &Out::Id(m.id))?;
        map.serialize_entry("record_type", self.record.record_type.api_name())?;
        map.serialize_entry("updated_at", &m.updated_at.to_rfc3339())?;
        map.end()
    }
}

/// The attributes of a record, every schema attribute present, sorted by name.
fn attributes<'a>(record: &'a Record, ctx: &RenderContext<'a>) -> Vec<(Cow<'a, str>, Attr<'a>)> {
    let rt = record.record_type;
    let m = &record.meta;
    let user = |sub: &str| Out::Ref(user_id_for_subject(&m.tenant_id, sub), RecordType::User);
    let text = |t: Option<&'a str>| t.map_or(Out::Null, Out::Text);
    let mut out: Vec<(Cow<'a, str>, Attr<'a>)> = Vec::with_capacity(64);
    let mut put = |name: Cow<'a, str>, attr: Attr<'a>| {
        if ctx.only.is_none_or(|only| only.iter().any(|o| *o == name)) {
            out.push((name, attr));
        }
    };
    let organization = if uuid::Uuid::try_parse(&m.tenant_id).is_ok() { "uuid" } else { "string" };
    put("id".into(), Attr::One("uuid", Out::Id(m.id)));
    put("organization_id".into(), Attr::One(organization, Out::Text(&m.tenant_id)));
    put("app_id".into(), Attr::One("string", text(m.app_id.as_deref())));
    put("created_at".into(), Attr::One("timestamp", Out::Time(m.created_at)));
    put("updated_at".into(), Attr::One("timestamp", Out::Time(m.updated_at)));
    put("created_by_user_id".into(), Attr::One("record_reference", user(&m.created_by)));
    put("updated_by_user_id".into(), Attr::One("record_reference", user(&m.updated_by)));
    put("archived_at".into(), Attr::One("timestamp", m.deleted_at.map_or(Out::Null, Out::Time)));
    put("archived_by_user_id".into(), Attr::One("record_reference", m.deleted_by.as_deref().map_or(Out::Null, user)));
    put("schema_version".into(), Attr::One("number", Out::Int(m.schema_version)));
    put("version".into(), Attr::One("number", Out::Int(m.version)));
    let stages = &ctx.schema.stages;
    for (f, v) in record.fields().iter().zip(&record.values) {
        let vt = type_name(rt, f);
        let rendered = match v {
            _ if is_first_of_list(rt, f) => Attr::One(vt, value_json(f, v, stages)),
            Value::List(items) => Attr::Many(
                vt,
                items
                    .iter()
                    .map(|i| match f.value_type {
                        ValueType::Stage | ValueType::Select => {
                            stages.iter().find(|st| &st.api_name == i).map_or(Out::UnknownOption(i), Out::Option)
                        }
                        _ => Out::Text(i),
                    })
                    .collect(),
            ),
            Value::Addresses(list) if f.is_array => Attr::Many(vt, list.iter().map(|a| Out::Json(json!(a))).collect()),
            _ if f.is_array => Attr::Many(vt, Vec::new()),
            _ => Attr::One(vt, value_json(f, v, stages)),
        };
        put(f.api_name.into(), rendered);
    }
    if rt == RecordType::Account {
        let domains = record
            .domains
            .iter()
            .map(|d| Out::Json(json!({"domain_name": d.domain_name, "is_primary": d.is_primary})))
            .collect();
        put("domains".into(), Attr::Many("account_domain", domains));
    }
    if rt == RecordType::Contact {
        let items = |list: &[crate::record::ContactItem], vt: &'static str, key: &str| {
            let rendered = list
                .iter()
                .map(|i| Out::Json(json!({"id": i.id, key: i.value, "is_primary": i.is_primary, "labels": i.labels})))
                .collect();
            Attr::Many(vt, rendered)
        };
        put("primary_email".into(), Attr::One("email", text(record.primary_email())));
        put("contact_emails".into(), items(&record.emails, "contact_email", "email"));
        put("primary_phone_number".into(), Attr::One("phone_number", text(record.primary_phone())));
        put("contact_phone_numbers".into(), items(&record.phones, "contact_phone_number", "phone_number"));
    }
    for def in &ctx.schema.custom {
        let vt = def.value_type.api_name(rt);
        let value = record.custom.get(&def.api_name).map(|j| crate::custom::from_stored(def, j)).unwrap_or(Value::Null);
        let rendered = match (&value, def.is_array) {
            (Value::List(items), true) => {
                let item = |i: &String| match def.value_type {
                    ValueType::Reference(target) => Value::Ref(
                        crate::ids::RecordId::parse(target, i).unwrap_or(crate::ids::RecordId(uuid::Uuid::nil())),
                    ),
                    _ => Value::Text(i.clone()),
                };
                // Made from the stored JSON here: kept as JSON (custom values are few).
                Attr::Many(
                    vt,
                    items
                        .iter()
                        .map(|i| Out::Json(value_json_of(def.value_type, &item(i), &def.options).to_json()))
                        .collect(),
                )
            }
            (_, true) => Attr::Many(vt, Vec::new()),
            _ => Attr::One(vt, Out::Json(value_json_of(def.value_type, &value, &def.options).to_json())),
        };
        put(Cow::Borrowed(def.api_name.as_str()), rendered);
    }
    // Byte-wise by name, as a JSON object with sorted keys (the order every client has seen).
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A record as `{"id", "record_type", "created_at", "updated_at", "attributes"}`, to serialise
/// into a response (see [`render`] for a JSON value).
pub fn rendered<'a>(record: &'a Record, ctx: &RenderContext<'a>) -> RenderedRecord<'a> {
    RenderedRecord { record, attributes: attributes(record, ctx) }
}

/// A record as `{"id", "record_type", "created_at", "updated_at", "attributes"}`.
pub fn render(record: &Record, ctx: &RenderContext<'_>) -> Json {
    serde_json::to_value(rendered(record, ctx)).expect("a rendered record serialises")
}

/// Every attribute name a record type renders in a tenant (for checking `?fields=`).
pub fn attribute_names_in(rt: RecordType, schema: &TenantSchema) -> Vec<String> {
    let mut names: Vec<String> = attribute_names(rt).into_iter().map(str::to_owned).collect();
    names.extend(schema.custom.iter().map(|c| c.api_name.clone()));
    names
}

/// Every built-in attribute name a record type renders.
pub fn attribute_names(rt: RecordType) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = match rt {
        RecordType::User => USER_ATTRIBUTES.iter().map(|a| a.0).collect(),
        _ => V2_META_ATTRIBUTES.iter().map(|a| a.0).collect(),
    };
    names.extend(fields(rt).iter().map(|f| f.api_name));
    if rt == RecordType::Account {
        names.push("domains");
    }
    if rt == RecordType::Contact {
        names.extend(["primary_email", "contact_emails", "primary_phone_number", "contact_phone_numbers"]);
    }
    names
}

/// Attributes of a directory user: (api_name, display name, value_type).
pub static USER_ATTRIBUTES: &[(&str, &str, &str)] = &[
    ("id", "ID", "uuid"),
    ("organization_id", "Organization", "uuid"),
    ("email", "Email", "email"),
    ("display_name", "Name", "string"),
    ("is_active", "Active", "boolean"),
    ("created_at", "Created at", "timestamp"),
    ("updated_at", "Updated at", "timestamp"),
    ("version", "Version", "number"),
];

/// Filter operators by value type (docs/CONTRACT.md §7.4), as `_schema` lists them.
pub fn filter_operators(value_type: &str) -> &'static [&'static str] {
    const TEXT: &[&str] = &["eq", "ne", "in", "not_in", "contains", "starts_with", "ends_with", "exists", "not_exists"];
    const ORDERED: &[&str] = &["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"];
    const IDENTITY: &[&str] = &["eq", "ne", "in", "not_in", "exists", "not_exists"];
    const FLAG: &[&str] = &["eq", "ne", "exists", "not_exists"];
    match value_type {
        "string" | "long_text" | "url" | "phone_number" | "email" | "enum" | "account_domain" => TEXT,
        "number" | "currency" | "timestamp" | "percent" | "date" => ORDERED,
        "boolean" => FLAG,
        "address" => &[],
        _ => IDENTITY,
    }
}

#[allow(clippy::too_many_arguments)]
fn attribute_schema(
    api_name: &str,
    display_name: &str,
    value_type: &str,
    is_array: bool,
    writable: bool,
    is_unique: bool,
    is_sortable: bool,
    extra: Option<(&str, Json)>,
) -> Json {
    let operators = filter_operators(value_type);
    let mut type_info = json!({"value_type": value_type, "is_array": is_array});
    if let Some((k, v)) = extra {
        type_info[k] = v;
    }
    json!({
        "api_name": api_name, "display_name": display_name, "description": null, "type_info": type_info,
        "is_creatable": writable, "is_updatable": writable, "is_required_on_create": false,
        "is_unique": is_unique, "is_custom": false, "is_sortable": is_sortable,
        "is_filterable": !operators.is_empty(), "filter_operators": operators,
    })
}

/// The relationships of a record type (docs/CONTRACT.md §7.5): account `contacts` ↔ contact `accounts`.
fn relationships(rt: RecordType) -> Json {
    let (name, display, other, inverse) = match rt {
        RecordType::Account => ("contacts", "Contacts", "contact", "accounts"),
        RecordType::Contact => ("accounts", "Accounts", "account", "contacts"),
        RecordType::User => return json!([]),
    };
    json!([{
        "api_name": name, "display_name": display, "related_object_api_name": other,
        "related_object_relationship_api_name": inverse, "is_array": true,
        "is_creatable": true, "is_updatable": true, "is_custom": false,
    }])
}

/// `GET /api/v2/_schema/{rt}` (docs/CONTRACT.md §6), not wrapped in `data`.
pub fn schema_document(rt: RecordType, schema: &TenantSchema) -> Json {
    let stages = &schema.stages;
    let mut attributes = Vec::new();
    if rt == RecordType::User {
        for (name, display, vt) in USER_ATTRIBUTES {
            let sortable = !matches!(*vt, "boolean");
            attributes.push(attribute_schema(
                name,
                display,
                vt,
                false,
                false,
                *name == "email" || *name == "id",
                sortable,
                None,
            ));
        }
    } else {
        for (name, display, vt) in V2_META_ATTRIBUTES {
            let target = (*vt == "record_reference").then(|| ("target", json!("user")));
            let sortable = matches!(*name, "id" | "created_at" | "updated_at" | "archived_at" | "version");
            attributes.push(attribute_schema(name, display, vt, false, false, *name == "id", sortable, target));
        }
        for f in fields(rt) {
            let vt = type_name(rt, f);
            let is_array = f.is_array && !is_first_of_list(rt, f);
            let extra = match f.value_type {
                ValueType::Reference(target) => Some(("target", json!(target.api_name()))),
                ValueType::Stage => Some((
                    "options",
                    Json::Array(
                        stages
                            .iter()
                            .map(|s| json!({"id": s.id.canonical(), "api_name": s.api_name, "display_value": s.display_value, "color": s.color}))
                            .collect(),
                    ),
                )),
                ValueType::Enum(values) => Some(("options", json!(values))),
                _ => None,
            };
            attributes.push(attribute_schema(f.api_name, f.display_name, vt, is_array, true, false, f.sortable, extra));
        }
        if rt == RecordType::Account {
            attributes.push(attribute_schema("domains", "Domains", "account_domain", true, false, true, false, None));
        }
        if rt == RecordType::Contact {
            attributes.push(attribute_schema("primary_email", "Email", "email", false, true, true, true, None));
            attributes.push(attribute_schema(
                "contact_emails",
                "Emails",
                "contact_email",
                true,
                false,
                true,
                false,
                None,
            ));
            attributes.push(attribute_schema(
                "primary_phone_number",
                "Phone",
                "phone_number",
                false,
                true,
                false,
                true,
                None,
            ));
            attributes.push(attribute_schema(
                "contact_phone_numbers",
                "Phone numbers",
                "contact_phone_number",
                true,
                false,
                false,
                false,
                None,
            ));
        }
    }
    for def in &schema.custom {
        let vt = def.value_type.api_name(rt);
        let mut type_info = json!({"value_type": vt, "is_array": def.is_array});
        if let ValueType::Reference(target) = def.value_type {
            type_info["target"] = json!(target.api_name());
        }
        if def.value_type == ValueType::Select {
            type_info["options"] = crate::custom::options_to_json(&def.options);
        }
        attributes.push(json!({
            "api_name": def.api_name, "display_name": def.display_name, "description": def.description,
            "type_info": type_info, "is_creatable": true, "is_updatable": true,
            "is_required_on_create": def.is_required_on_create, "is_unique": false, "is_custom": true,
            "is_sortable": !def.is_array && def.value_type != ValueType::LongText, "is_filterable": true,
            "filter_operators": filter_operators(if def.is_array { "string" } else { vt }),
        }));
    }
    // What filters take is decided by the filter compiler; `_schema` reports it.
    for entry in &mut attributes {
        let name = entry["api_name"].as_str().unwrap_or_default().to_owned();
        let operators = crate::filter::operators(rt, &name, schema);
        entry["filter_operators"] = json!(operators);
        entry["is_filterable"] = json!(!operators.is_empty());
        entry["is_sortable"] = json!(crate::filter::sort_key(rt, &name, schema).is_some());
    }
    let (display, description) = match rt {
        RecordType::Account => ("Account", "A company: a customer, prospect or partner."),
        RecordType::Contact => ("Contact", "A person, usually at an account."),
        RecordType::User => ("User", "A member of the tenant's user directory; read-only here."),
    };
    json!({
        "api_name": rt.api_name(), "display_name": display, "description": description,
        "is_custom": false, "is_junction": false, "supports_custom_fields": rt != RecordType::User,
        "attributes": attributes, "relationships": relationships(rt),
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

    /// The record as written straight to a response is the JSON value [`render`] gives, key
    /// for key and in the same order (sorted keys), for both record types, custom attributes
    /// (single and array, named to sort among the built-in ones) and `fields`.
    #[test]
    fn direct_serialisation_matches_the_json_value() {
        let actor = Actor::new("t", "s", None, crate::record::ActorKind::User);
        for rt in [RecordType::Account, RecordType::Contact] {
            let mut schema = TenantSchema::builtin("t", rt);
            for def in [
                json!({"api_name": "zz_regions", "value_type": "string", "is_array": true}),
                json!({"api_name": "aa_seats", "value_type": "number"}),
                json!({"api_name": "m_stage", "value_type": "select", "options": [{"api_name": "gold"}]}),
            ] {
                schema.custom.push(crate::custom::parse_definition(rt, &def, &[]).unwrap());
            }
            let body = if rt == RecordType::Contact {
                json!({"attributes": {"first_name": "Jo", "primary_email": "jo@acme.com", "aa_seats": 3, "zz_regions": ["x"]}})
            } else {
                json!({"attributes": {"display_name": "Acme", "tags": ["a", "b"], "zz_regions": ["emea", "apac"], "aa_seats": 3, "m_stage": "gold"}})
            };
            let write = parse_write(rt, &body, WriteMode::Create, &schema).unwrap();
            let mut record = Record::new(rt, RecordMeta::new(&actor, Timestamp(0)));
            record.apply(&write, Timestamp(0)).unwrap();
            let only = vec!["tags".to_owned(), "aa_seats".to_owned(), "id".to_owned()];
            for only in [None, Some(only.as_slice())] {
                let ctx = RenderContext { schema: &schema, only };
                let direct = serde_json::to_string(&rendered(&record, &ctx)).unwrap();
                let value = render(&record, &ctx);
                assert_eq!(direct, value.to_string(), "{rt:?}");
                assert_eq!(value["attributes"]["aa_seats"]["value"], 3, "{value}");
            }
        }
    }

    #[test]
    fn raw_and_enveloped_values_are_the_same_write() {
        let raw = parse(
            json!({"attributes": {"display_name": "Acme", "tags": ["a"], "employee_count": 5}}),
            WriteMode::Create,
        )
        .unwrap();
        let enveloped = parse(
            json!({"attributes": {
                "display_name": {"value_type": "string", "value": "Acme"},
                "tags": [{"value_type": "string", "value": "a"}],
                "employee_count": {"value_type": "number", "value": 5}
            }}),
            WriteMode::Create,
        )
        .unwrap();
        assert_eq!(raw, enveloped);
        let e = parse(json!({"attributes": {"display_name": {"value_type": "number", "value": 1}}}), WriteMode::Create)
            .unwrap_err();
        assert_eq!((e.code, e.details["field"].as_str()), (ErrorCode::FieldValueInvalid, Some("display_name")));
    }

    #[test]
    fn stamped_and_foreign_attributes_are_refused() {
        for (body, mode, code) in [
            (json!({"attributes": {"id": "x"}}), WriteMode::Create, ErrorCode::FieldNotCreatable),
            (json!({"attributes": {"version": 3}}), WriteMode::Patch, ErrorCode::FieldNotUpdatable),
            (json!({"attributes": {"domains": []}}), WriteMode::Patch, ErrorCode::FieldNotUpdatable),
            (json!({"attributes": {"domain_name": "acme.com"}}), WriteMode::Create, ErrorCode::UnknownField),
            (json!({"attributes": {"name": "v1 spelling"}}), WriteMode::Create, ErrorCode::UnknownField),
            (json!({"attrs": {}}), WriteMode::Create, ErrorCode::UnknownField),
        ] {
            assert_eq!(parse(body.clone(), mode).unwrap_err().code, code, "{body}");
        }
    }

    #[test]
    fn references_accept_ids_objects_and_matches() {
        let id = crate::ids::RecordId::generate();
        for v in [json!(id.canonical()), json!({"related_record_id": id.canonical()})] {
            let w = parse(json!({"attributes": {"owner_user_id": v}}), WriteMode::Patch).unwrap();
            assert_eq!(w.values[0].1, Value::Ref(id));
        }
        let w = parse(
            json!({"attributes": {"owner_user_id": {"related_record_match": {"email": "a@b.com"}}}}),
            WriteMode::Patch,
        )
        .unwrap();
        assert_eq!(w.values[0].1, Value::Match { key: "email".into(), value: "a@b.com".into() });
        assert!(
            parse(
                json!({"attributes": {"owner_user_id": {"related_record_id": "x", "related_record_match": {}}}}),
                WriteMode::Patch
            )
            .is_err()
        );
    }

    #[test]
    fn every_attribute_renders_with_its_type() {
        let actor = Actor::new("t", "s", None, crate::record::ActorKind::User);
        let schema = TenantSchema::builtin("t", RecordType::Account);
        let mut r = Record::new(RecordType::Account, RecordMeta::new(&actor, Timestamp(0)));
        let w = parse(json!({"attributes": {"display_name": "Acme", "current_stage_id": "customer", "estimated_annual_revenue": 10, "address": {"city": "Oslo"}}}), WriteMode::Create).unwrap();
        r.apply(&w, Timestamp(0)).unwrap();
        let doc = render(&r, &RenderContext { schema: &schema, only: None });
        let attrs = doc["attributes"].as_object().unwrap();
        assert_eq!(attrs.len(), attribute_names(RecordType::Account).len());
        assert_eq!(attrs["display_name"], json!({"value_type": "string", "value": "Acme"}));
        assert_eq!(attrs["current_stage_id"]["value"]["api_name"], "customer");
        assert_eq!(attrs["estimated_annual_revenue"]["value"], json!({"amount": "10", "currency_code": "USD"}));
        assert_eq!(attrs["address"]["value"]["city"], "Oslo");
        assert_eq!(attrs["tags"], json!([]));
        assert_eq!(attrs["owner_user_id"], json!({"value_type": "record_reference", "value": null}));
        assert_eq!(attrs["source_type"]["value_type"], "enum");
        let only = ["display_name".to_owned()];
        let doc = render(&r, &RenderContext { schema: &schema, only: Some(&only) });
        assert_eq!(doc["attributes"].as_object().unwrap().len(), 1);
    }
}
