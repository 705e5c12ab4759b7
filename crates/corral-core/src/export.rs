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
use crate::v2::{Out, value_json_of};
use crate::value::Value;
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
        self.columns.iter().map(|(_, source)| value(record, source).to_json()).collect()
    }

    /// A record's CSV cells, in column order: text as is, arrays `;`-joined, other values
    /// as JSON, unset as empty.
    pub fn cells<'a>(&self, record: &'a Record) -> Vec<Cow<'a, str>> {
        self.columns.iter().map(|(_, source)| cell(value(record, source))).collect()
    }

    /// Appends a record as one NDJSON line: an object with the set values (unset ones and
    /// empty arrays left out), keys sorted, values serialised from the record in place.
    pub fn write_ndjson(&self, record: &Record, out: &mut Vec<u8>) {
        let entries: Vec<(&str, Out<'_>)> = self
            .sorted
            .iter()
            .map(|&i| (self.columns[i].0.as_str(), value(record, &self.columns[i].1)))
            .filter(|(_, v)| !is_empty(v))
            .collect();
        struct Line<'a>(&'a [(&'a str, Out<'a>)]);
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

/// Unset: left out of NDJSON lines.
fn is_empty(v: &Out<'_>) -> bool {
    match v {
        Out::Null | Out::EmptyList => true,
        Out::Texts(l) => l.is_empty(),
        Out::Addresses(l) => l.is_empty(),
        Out::Json(j) => j.is_null() || j.as_array().is_some_and(Vec::is_empty),
        _ => false,
    }
}

/// A CSV cell: text as is, arrays `;`-joined, other values as JSON, unset as empty.
fn cell(v: Out<'_>) -> Cow<'_, str> {
    match v {
        Out::Null | Out::EmptyList => Cow::Borrowed(""),
        Out::Text(s) => Cow::Borrowed(s),
        Out::Int(n) => Cow::Owned(n.to_string()),
        Out::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Out::DecimalText(d) => Cow::Owned(d.to_string()),
        Out::Time(t) => Cow::Owned(t.to_rfc3339()),
        Out::Id(id) => Cow::Owned(id.canonical()),
        Out::Texts(items) => Cow::Owned(items.join(";")),
        Out::Json(j) => Cow::Owned(csv_cell(&j)),
        other => Cow::Owned(csv_cell(&other.to_json())),
    }
}

fn value<'a>(record: &'a Record, source: &Source) -> Out<'a> {
    match source {
        Source::Id => Out::Id(record.meta.id),
        Source::PrimaryDomain => record.primary_domain().map_or(Out::Null, Out::Text),
        Source::PrimaryEmail => record.primary_email().map_or(Out::Null, Out::Text),
        Source::PrimaryPhone => record.primary_phone().map_or(Out::Null, Out::Text),
        Source::Field(i) => {
            let f: &FieldDef = &record.fields()[*i];
            // The account's address list exports as its first address, as v2 shows it.
            let is_array = f.is_array && !crate::v2::is_first_of_list(record.record_type, f);
            record.values.get(*i).map_or(Out::Null, |v| plain(f.value_type, is_array, v))
        }
        Source::Custom(def) => match record.custom.get(&def.api_name) {
            // Made from the stored JSON here, so kept as JSON (custom values are few). A
            // reference list's unreadable items read as the nil id, as v2 shows them.
            Some(stored) => match (from_stored(def, stored), def.value_type) {
                (Value::List(items), ValueType::Reference(rt)) => Out::Json(Json::Array(
                    items
                        .iter()
                        .map(|i| {
                            Json::String(RecordId::parse(rt, i).unwrap_or(RecordId(uuid::Uuid::nil())).canonical())
                        })
                        .collect(),
                )),
                (value, vt) => Out::Json(plain(vt, def.is_array, &value).to_json()),
            },
            None if def.is_array => Out::EmptyList,
            None => Out::Null,
        },
    }
}

/// The plain value of a value of this shape: v2's read value ([`crate::v2`]) in its plain
/// spelling, arrays as arrays.
fn plain(vt: ValueType, is_array: bool, v: &Value) -> Out<'_> {
    match v {
        Value::Null | Value::Match { .. } if is_array => Out::EmptyList,
        Value::Addresses(list) if is_array => Out::Addresses(list),
        // Options are spelled by their api_name, which is the stored value: no lookup.
        _ => value_json_of(vt, v, &[]).plain(),
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
