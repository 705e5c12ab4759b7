//! The export row (docs/API.md, `corral export` and `_export`): one record as flat plain
//! values under the names an import reads back.
//!
//! Columns: `id`, the primary `domain` (accounts) or `email` and `phone` (contacts), the
//! built-in fields by v1 name, then the tenant's custom attributes by api name (sorted).
//! Values are the plain form of the v2 attribute values: amounts as decimal strings, options
//! by api name, references by id, addresses as objects, arrays as arrays. A row is written
//! straight from the record into the output buffer, with no JSON tree per record.

use crate::custom::{CustomAttribute, TenantSchema, from_stored};
use crate::ids::{RecordId, RecordType};
use crate::record::Record;
use crate::schema::{FieldDef, ValueType, fields};
use crate::timestamp::Timestamp;
use crate::value::{Address, Value};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value as Json;
use std::borrow::Cow;

/// Where one column's value comes from.
#[derive(Debug, Clone)]
enum Source {
    Id,
    PrimaryDomain,
    PrimaryEmail,
    PrimaryPhone,
    /// A built-in field, by its position in the record's values.
    Field(usize),
    /// A custom attribute of the tenant's schema.
    Custom(CustomAttribute),
}

/// The columns of one record type's export in one tenant.
#[derive(Debug, Clone)]
pub struct Columns {
    record_type: RecordType,
    columns: Vec<(String, Source)>,
    /// Column indexes in the byte order of their names: NDJSON objects have sorted keys,
    /// as every object Corral writes.
    sorted: Vec<usize>,
}

impl Columns {
    /// The export columns of `rt` with the tenant's custom attributes.
    pub fn new(rt: RecordType, schema: &TenantSchema) -> Self {
        let mut columns: Vec<(String, Source)> = vec![("id".into(), Source::Id)];
        match rt {
            RecordType::Account => columns.push(("domain".into(), Source::PrimaryDomain)),
            _ => {
                columns.push(("email".into(), Source::PrimaryEmail));
                columns.push(("phone".into(), Source::PrimaryPhone));
            }
        }
        columns.extend(fields(rt).iter().enumerate().map(|(i, f)| (f.v1_name.to_owned(), Source::Field(i))));
        let mut custom: Vec<&CustomAttribute> = schema.custom.iter().collect();
        custom.sort_by(|a, b| a.api_name.cmp(&b.api_name));
        columns.extend(custom.into_iter().map(|def| (def.api_name.clone(), Source::Custom(def.clone()))));
        let mut sorted: Vec<usize> = (0..columns.len()).collect();
        sorted.sort_by(|&a, &b| columns[a].0.cmp(&columns[b].0));
        sorted.dedup_by(|a, b| columns[*a].0 == columns[*b].0);
        Columns { record_type: rt, columns, sorted }
    }

    /// The column names, in CSV order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(name, _)| name.as_str())
    }

    /// The record type these columns describe.
    pub fn record_type(&self) -> RecordType {
        self.record_type
    }

    /// A record's values, in CSV order (`null` for unset).
    pub fn values(&self, record: &Record) -> Vec<Json> {
        self.columns
            .iter()
            .map(|(_, source)| serde_json::to_value(value(record, source)).unwrap_or(Json::Null))
            .collect()
    }

    /// A record's CSV cells, in column order: text as is, arrays `;`-joined, other values
    /// as JSON, unset as empty.
    pub fn cells<'a>(&self, record: &'a Record) -> Vec<Cow<'a, str>> {
        self.columns.iter().map(|(_, source)| value(record, source).cell()).collect()
    }

    /// Appends a record as one NDJSON line: an object with the set values (unset ones and
    /// empty arrays left out), keys sorted, values serialised from the record in place.
    pub fn write_ndjson(&self, record: &Record, out: &mut Vec<u8>) {
        let entries: Vec<(&str, Plain<'_>)> = self
            .sorted
            .iter()
            .map(|&i| (self.columns[i].0.as_str(), value(record, &self.columns[i].1)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        struct Line<'a>(&'a [(&'a str, Plain<'a>)]);
        impl Serialize for Line<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (*k, v)))
            }
        }
        serde_json::to_writer(&mut *out, &Line(&entries)).expect("writing to memory cannot fail");
        out.push(b'\n');
    }
}

/// A CSV cell of a JSON value: text as is, arrays `;`-joined, other values as JSON, unset as
/// empty.
pub fn csv_cell(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Array(items) => items.iter().map(csv_cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// One column's plain value, borrowed from the record where it can be (a row is written
/// without copying its text into JSON values first).
#[derive(Debug)]
enum Plain<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Bool(bool),
    /// A percent: a JSON number.
    Number(f64),
    /// An amount: a decimal string.
    Decimal(&'a Decimal),
    Time(Timestamp),
    Id(RecordId),
    Texts(&'a [String]),
    /// Reference ids (an unreadable one reads as the nil id).
    Ids(RecordType, &'a [String]),
    Address(&'a Address),
    Addresses(&'a [Address]),
    EmptyList,
    /// A custom attribute's value, made from its stored JSON.
    Owned(Json),
}

impl<'a> Plain<'a> {
    /// Unset: left out of NDJSON lines.
    fn is_empty(&self) -> bool {
        match self {
            Plain::Null | Plain::EmptyList => true,
            Plain::Texts(l) | Plain::Ids(_, l) => l.is_empty(),
            Plain::Addresses(l) => l.is_empty(),
            Plain::Owned(j) => j.is_null() || j.as_array().is_some_and(Vec::is_empty),
            _ => false,
        }
    }

    fn cell(self) -> Cow<'a, str> {
        match self {
            Plain::Null | Plain::EmptyList => Cow::Borrowed(""),
            Plain::Text(s) => Cow::Borrowed(s),
            Plain::Int(n) => Cow::Owned(n.to_string()),
            Plain::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Plain::Number(_) | Plain::Address(_) => Cow::Owned(serde_json::to_string(&self).unwrap_or_default()),
            Plain::Decimal(d) => Cow::Owned(d.to_string()),
            Plain::Time(t) => Cow::Owned(t.to_rfc3339()),
            Plain::Id(id) => Cow::Owned(id.canonical()),
            Plain::Texts(items) => Cow::Owned(items.join(";")),
            Plain::Ids(rt, items) => {
                Cow::Owned(items.iter().map(|i| reference(rt, i).canonical()).collect::<Vec<_>>().join(";"))
            }
            Plain::Addresses(list) => {
                Cow::Owned(list.iter().map(|a| sorted(a).to_string()).collect::<Vec<_>>().join(";"))
            }
            Plain::Owned(j) => Cow::Owned(csv_cell(&j)),
        }
    }
}

impl Serialize for Plain<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Plain::Null => s.serialize_unit(),
            Plain::Text(t) => s.serialize_str(t),
            Plain::Int(n) => s.serialize_i64(*n),
            Plain::Bool(b) => s.serialize_bool(*b),
            Plain::Number(f) => s.serialize_f64(*f),
            Plain::Decimal(d) => s.collect_str(d),
            Plain::Time(t) => s.serialize_str(&t.to_rfc3339()),
            Plain::Id(id) => s.collect_str(&id.0.hyphenated()),
            Plain::Texts(items) => s.collect_seq(items.iter()),
            Plain::Ids(rt, items) => s.collect_seq(items.iter().map(|i| reference(*rt, i).0.hyphenated())),
            // Through a JSON value: its keys sorted, as every object Corral writes.
            Plain::Address(a) => sorted(a).serialize(s),
            Plain::Addresses(list) => s.collect_seq(list.iter().map(sorted)),
            Plain::EmptyList => s.collect_seq(std::iter::empty::<()>()),
            Plain::Owned(j) => j.serialize(s),
        }
    }
}

/// An address as a JSON object (keys sorted).
fn sorted(a: &Address) -> Json {
    serde_json::to_value(a).unwrap_or(Json::Null)
}

fn reference(rt: RecordType, raw: &str) -> RecordId {
    RecordId::parse(rt, raw).unwrap_or(RecordId(uuid::Uuid::nil()))
}

fn value<'a>(record: &'a Record, source: &Source) -> Plain<'a> {
    match source {
        Source::Id => Plain::Id(record.meta.id),
        Source::PrimaryDomain => record.primary_domain().map_or(Plain::Null, Plain::Text),
        Source::PrimaryEmail => record.primary_email().map_or(Plain::Null, Plain::Text),
        Source::PrimaryPhone => record.primary_phone().map_or(Plain::Null, Plain::Text),
        Source::Field(i) => {
            let f: &FieldDef = &record.fields()[*i];
            // The account's address list exports as its first address, as v2 shows it.
            let is_array = f.is_array && !crate::v2::is_first_of_list(record.record_type, f);
            record.values.get(*i).map_or(Plain::Null, |v| plain(f.value_type, is_array, v))
        }
        Source::Custom(def) => match record.custom.get(&def.api_name) {
            // Made from the stored JSON here, so kept as JSON (custom values are few).
            Some(stored) => Plain::Owned(
                serde_json::to_value(plain(def.value_type, def.is_array, &from_stored(def, stored)))
                    .unwrap_or(Json::Null),
            ),
            None if def.is_array => Plain::EmptyList,
            None => Plain::Null,
        },
    }
}

/// The plain value of a value of this shape (what the v2 attribute's `value` names).
fn plain(vt: ValueType, is_array: bool, v: &Value) -> Plain<'_> {
    match v {
        Value::Null | Value::Match { .. } if is_array => Plain::EmptyList,
        Value::Null | Value::Match { .. } => Plain::Null,
        Value::Text(s) => Plain::Text(s),
        Value::Int(n) => Plain::Int(*n),
        Value::Decimal(d) if vt == ValueType::Percent => {
            d.to_string().parse().ok().filter(|f: &f64| f.is_finite()).map_or(Plain::Null, Plain::Number)
        }
        Value::Decimal(d) => Plain::Decimal(d),
        Value::Bool(b) => Plain::Bool(*b),
        Value::Time(t) => Plain::Time(*t),
        Value::Ref(id) => Plain::Id(*id),
        Value::List(items) => match vt {
            ValueType::Reference(rt) => Plain::Ids(rt, items),
            _ => Plain::Texts(items),
        },
        Value::Addresses(list) if is_array => Plain::Addresses(list),
        Value::Addresses(list) => list.first().map_or(Plain::Null, Plain::Address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::{RenderContext, render};
    use serde_json::{Map, json};

    /// The reference: a record's v2 envelope flattened (how exports were written before
    /// rows were rendered from the record itself).
    fn flattened(envelope: &Json) -> Json {
        match envelope {
            Json::Array(items) => Json::Array(items.iter().map(flattened).filter(|v| !v.is_null()).collect()),
            Json::Object(o) => match o.get("value") {
                Some(Json::Object(v)) => {
                    for key in ["amount", "api_name", "related_record_id"] {
                        if let Some(k) = v.get(key) {
                            return k.clone();
                        }
                    }
                    Json::Object(v.clone())
                }
                Some(v) => v.clone(),
                None => Json::Null,
            },
            other => other.clone(),
        }
    }

    fn via_envelope(record: &Record, schema: &TenantSchema, columns: &Columns) -> Map<String, Json> {
        let v2 = render(record, &RenderContext { schema, only: None });
        let attrs = &v2["attributes"];
        let mut doc = Map::new();
        for (name, source) in &columns.columns {
            let v = match source {
                Source::Id => v2["id"].clone(),
                Source::PrimaryDomain => json!(record.primary_domain()),
                Source::PrimaryEmail => flattened(&attrs["primary_email"]),
                Source::PrimaryPhone => flattened(&attrs["primary_phone_number"]),
                Source::Field(i) => flattened(&attrs[record.fields()[*i].api_name]),
                Source::Custom(def) => flattened(&attrs[def.api_name.as_str()]),
            };
            if !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)) {
                doc.insert(name.clone(), v);
            }
        }
        doc
    }

    /// A schema with a custom attribute of every shape, and a record with every attribute
    /// set (`full`) or only a name (`sparse`).
    fn fixture(rt: RecordType, full: bool) -> (TenantSchema, Record) {
        use crate::record::{Actor, ActorKind, RecordMeta};
        use crate::v2::{WriteMode, parse_write};
        let mut schema = TenantSchema::builtin("t", rt);
        for def in [
            json!({"api_name": "zz_regions", "value_type": "string", "is_array": true}),
            json!({"api_name": "aa_seats", "value_type": "number"}),
            json!({"api_name": "m_tier", "value_type": "select", "options": [{"api_name": "gold"}, {"api_name": "silver"}]}),
            json!({"api_name": "m_tiers", "value_type": "select", "is_array": true, "options": [{"api_name": "gold"}, {"api_name": "silver"}]}),
            json!({"api_name": "c_budget", "value_type": "currency"}),
            json!({"api_name": "c_share", "value_type": "percent"}),
            json!({"api_name": "c_vip", "value_type": "boolean"}),
            json!({"api_name": "c_renewal", "value_type": "timestamp"}),
            json!({"api_name": "c_partner", "value_type": "record_reference", "target": "account"}),
            json!({"api_name": "c_partners", "value_type": "record_reference", "target": "account", "is_array": true}),
        ] {
            schema.custom.push(crate::custom::parse_definition(rt, &def, &[]).unwrap());
        }
        let other = crate::ids::RecordId::generate().canonical();
        let custom = json!({"zz_regions": ["emea", "apac"], "aa_seats": 3, "m_tier": "gold", "m_tiers": ["gold", "silver"],
            "c_budget": "1500.50", "c_share": 12.5, "c_vip": true, "c_renewal": "2026-01-02T03:04:05Z",
            "c_partner": other, "c_partners": [other]});
        let mut attributes = match (rt, full) {
            (RecordType::Account, true) => {
                json!({"display_name": "Acme", "tags": ["a", "b"], "current_stage_id": "customer",
                "estimated_annual_revenue": "10.25", "employee_count": 12, "address": {"city": "Oslo"},
                "owner_user_id": other})
            }
            (RecordType::Account, false) => json!({"display_name": "Acme"}),
            (_, true) => json!({"first_name": "Jo", "last_name": "Doe", "primary_email": "jo@acme.com",
                "primary_phone_number": "+4712345678", "owner_user_id": other}),
            (_, false) => json!({"first_name": "Jo"}),
        };
        if full {
            for (k, v) in custom.as_object().unwrap() {
                attributes[k] = v.clone();
            }
        }
        let write = parse_write(rt, &json!({"attributes": attributes}), WriteMode::Create, &schema).unwrap();
        let actor = Actor::new("t", "s", None, ActorKind::User);
        let mut record = Record::new(rt, RecordMeta::new(&actor, crate::Timestamp(0)));
        record.apply(&write, crate::Timestamp(0)).unwrap();
        if rt == RecordType::Account && full {
            record.domains =
                vec![crate::record::AccountDomain { domain_name: "acme.com".into(), is_primary: true, added_at: 0 }];
        }
        (schema, record)
    }

    #[test]
    fn rows_are_the_flattened_v2_envelopes() {
        for (rt, full) in [
            (RecordType::Account, true),
            (RecordType::Account, false),
            (RecordType::Contact, true),
            (RecordType::Contact, false),
        ] {
            let (schema, record) = fixture(rt, full);
            let columns = Columns::new(rt, &schema);
            let mut line = Vec::new();
            columns.write_ndjson(&record, &mut line);
            let direct: Json = serde_json::from_slice(&line).expect("a JSON line");
            let reference = Json::Object(via_envelope(&record, &schema, &columns));
            assert_eq!(direct, reference, "{rt:?}");
            // Byte for byte: the same key order, nested objects included.
            assert_eq!(String::from_utf8_lossy(&line), format!("{reference}\n"));
            if full {
                assert_eq!(direct["aa_seats"], 3, "{direct}");
                assert_eq!(direct["c_budget"], "1500.5", "{direct}");
                assert_eq!(direct["m_tiers"], json!(["gold", "silver"]), "{direct}");
            }
            let values = columns.values(&record);
            assert_eq!(values.len(), columns.names().count());
            let cells: Vec<String> = columns.cells(&record).into_iter().map(|c| c.into_owned()).collect();
            assert_eq!(cells, values.iter().map(csv_cell).collect::<Vec<_>>(), "{rt:?}");
            assert!(line.ends_with(b"\n") && line.iter().filter(|&&b| b == b'\n').count() == 1);
            let text = String::from_utf8(line).unwrap();
            let keys: Vec<&str> = direct.as_object().unwrap().keys().map(String::as_str).collect();
            let mut positions: Vec<usize> = keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap()).collect();
            let unsorted = positions.clone();
            positions.sort_unstable();
            assert_eq!(positions, unsorted, "keys in sorted order: {text}");
        }
    }

    #[test]
    fn csv_cells_join_arrays_and_leave_unset_empty() {
        assert_eq!(csv_cell(&json!(["a", "b"])), "a;b");
        assert_eq!(csv_cell(&Json::Null), "");
        assert_eq!(csv_cell(&json!(12)), "12");
        assert_eq!(csv_cell(&json!({"city": "Oslo"})), r#"{"city":"Oslo"}"#);
    }
}
