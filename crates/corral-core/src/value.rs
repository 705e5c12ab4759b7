//! Attribute values: the typed in-memory form, coercion from client JSON (shared by both
//! dialects) and the v1 JSON rendering.

use crate::error::{CoreError, CoreResult};
use crate::ids::RecordId;
use crate::normalize;
use crate::schema::{FieldDef, Stage, ValueType, resolve_stage};
use crate::timestamp::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::str::FromStr;

/// Largest whole number a `number` attribute holds: 2^53 - 1, the largest integer every JSON
/// client (JavaScript included) reads exactly.
pub const MAX_WHOLE_NUMBER: i64 = 9_007_199_254_740_991;

/// A postal address (docs/CONTRACT.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub street_one: Option<String>,
    #[serde(default)]
    pub street_two: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub zip_code: Option<String>,
}

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Strings, long text, URLs, phones, emails, enums and stages (by api_name).
    Text(String),
    Int(i64),
    Decimal(Decimal),
    Bool(bool),
    Time(Timestamp),
    Ref(RecordId),
    /// String and URL arrays (tags, websites).
    List(Vec<String>),
    Addresses(Vec<Address>),
    /// A reference given as `{"related_record_match": {key: value}}`, resolved to a
    /// [`Value::Ref`] by the store inside the write transaction.
    Match {
        key: String,
        value: String,
    },
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The empty value of a field: `[]` for arrays, null otherwise.
    pub fn empty(field: &FieldDef) -> Value {
        Value::empty_of(field.is_array, field.value_type)
    }

    /// The empty value of an attribute of this shape.
    pub fn empty_of(is_array: bool, value_type: ValueType) -> Value {
        match (is_array, value_type) {
            (true, ValueType::Address) => Value::Addresses(Vec::new()),
            (true, _) => Value::List(Vec::new()),
            (false, _) => Value::Null,
        }
    }
}

/// Which dialect a value came from: errors name the field the way that dialect does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V1,
    V2,
}

/// What coercion needs to know beyond the field: the tenant's stage list and the dialect.
pub struct CoerceContext<'a> {
    pub stages: &'a [Stage],
    pub dialect: Dialect,
}

impl CoerceContext<'_> {
    /// The field's name in the caller's dialect.
    pub fn name(&self, f: &FieldDef) -> &'static str {
        match self.dialect {
            Dialect::V1 => f.v1_name,
            Dialect::V2 => f.api_name,
        }
    }
}

/// The shape of an attribute, built-in or custom: what coercion checks a value against.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// The name errors use.
    pub name: &'a str,
    pub value_type: ValueType,
    pub is_array: bool,
    /// The options of a stage or select attribute.
    pub options: &'a [Stage],
}

/// A JSON number that is a whole number, written with a fraction or not (`3` and `3.0`; JSON
/// Schema's `integer` takes both), within the range a double holds exactly.
pub fn whole_number(n: &serde_json::Number) -> Option<i64> {
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= MAX_WHOLE_NUMBER as f64).map(|f| f as i64))
}

/// Coerces client JSON into a field's value, normalising it (docs/CONTRACT.md §5.1). `null` clears the
/// field (arrays become empty).
pub fn coerce(field: &FieldDef, json: &Json, ctx: &CoerceContext<'_>) -> CoreResult<Value> {
    let spec =
        Spec { name: ctx.name(field), value_type: field.value_type, is_array: field.is_array, options: ctx.stages };
    coerce_spec(&spec, json)
}

/// [`coerce`] for any attribute shape.
pub fn coerce_spec(field: &Spec<'_>, json: &Json) -> CoreResult<Value> {
    let name = field.name;
    if json.is_null() {
        return Ok(Value::empty_of(field.is_array, field.value_type));
    }
    if field.is_array {
        let items = json.as_array().ok_or_else(|| CoreError::invalid_value(name, "expected an array"))?;
        return match field.value_type {
            ValueType::Address => {
                let list = items.iter().map(|i| address(name, i)).collect::<CoreResult<Vec<_>>>()?;
                if list.len() > 100 {
                    return Err(CoreError::invalid_value(name, "at most 100 addresses"));
                }
                Ok(Value::Addresses(list))
            }
            ValueType::String => {
                let strs = items
                    .iter()
                    .map(|i| i.as_str().ok_or_else(|| CoreError::invalid_value(name, "expected an array of strings")))
                    .collect::<CoreResult<Vec<_>>>()?;
                Ok(Value::List(normalize::tags(strs).map_err(|r| CoreError::invalid_value(name, r))?))
            }
            _ => {
                let mut out: Vec<String> = Vec::with_capacity(items.len());
                for item in items {
                    let s = match scalar(field, item)? {
                        Value::Text(s) => s,
                        Value::Ref(id) => id.canonical(),
                        _ => {
                            return Err(CoreError::invalid_value(
                                name,
                                "arrays take plain values (ids for references)",
                            ));
                        }
                    };
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
                if out.len() > 100 {
                    return Err(CoreError::invalid_value(name, "at most 100 items"));
                }
                Ok(Value::List(out))
            }
        };
    }
    scalar(field, json)
}

fn address(name: &str, json: &Json) -> CoreResult<Address> {
    // Only an object: serde would also fill the struct from an array, position by position
    // (found by schemathesis: `"address": []` was accepted).
    if !json.is_object() {
        return Err(CoreError::invalid_value(name, "expected an address object"));
    }
    let a: Address = serde_json::from_value(json.clone())
        .map_err(|e| CoreError::invalid_value(name, format!("not an address object ({e})")))?;
    for part in
        [&a.label, &a.street_one, &a.street_two, &a.city, &a.state, &a.country, &a.zip_code].into_iter().flatten()
    {
        normalize::bounded(part, normalize::MAX_STRING_CHARS).map_err(|r| CoreError::invalid_value(name, r))?;
    }
    Ok(a)
}

fn text<'a>(name: &str, json: &'a Json) -> CoreResult<&'a str> {
    json.as_str().ok_or_else(|| CoreError::invalid_value(name, "expected a string"))
}

fn scalar(field: &Spec<'_>, json: &Json) -> CoreResult<Value> {
    let name = field.name;
    let bad = |r: &str| CoreError::invalid_value(name, r);
    Ok(match field.value_type {
        ValueType::String => {
            Value::Text(normalize::bounded(text(name, json)?, normalize::MAX_STRING_CHARS).map_err(|r| bad(&r))?)
        }
        ValueType::LongText => {
            Value::Text(normalize::bounded(text(name, json)?, normalize::MAX_LONG_TEXT_CHARS).map_err(|r| bad(&r))?)
        }
        ValueType::Url => Value::Text(normalize::url(text(name, json)?).map_err(bad)?),
        ValueType::PhoneNumber => Value::Text(normalize::phone(text(name, json)?).map_err(bad)?),
        ValueType::Email => Value::Text(normalize::email(text(name, json)?).map_err(bad)?),
        ValueType::Number => {
            let n = match json {
                Json::Number(n) => whole_number(n),
                Json::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| bad("expected a whole number"))?;
            if n < 0 {
                return Err(bad("must not be negative"));
            }
            if n > MAX_WHOLE_NUMBER {
                return Err(bad("at most 9007199254740991 (2^53 - 1, exact in every JSON client)"));
            }
            Value::Int(n)
        }
        ValueType::Currency => Value::Decimal(currency(name, json)?),
        ValueType::Boolean => Value::Bool(json.as_bool().ok_or_else(|| bad("expected true or false"))?),
        ValueType::Timestamp => {
            Value::Time(Timestamp::parse(text(name, json)?).ok_or_else(|| bad("expected an RFC 3339 timestamp"))?)
        }
        ValueType::Enum(allowed) => {
            let s = text(name, json)?;
            if !allowed.contains(&s) {
                return Err(bad(&format!("must be one of: {}", allowed.join(", "))));
            }
            Value::Text(s.to_owned())
        }
        ValueType::Stage | ValueType::Select => {
            let s = text(name, json)?;
            let option = resolve_stage(field.options, s).ok_or_else(|| {
                let names: Vec<&str> = field.options.iter().map(|s| s.api_name.as_str()).collect();
                bad(&format!("unknown option; one of: {}", names.join(", ")))
            })?;
            Value::Text(option.api_name.clone())
        }
        ValueType::Percent => {
            let d = match json {
                Json::Number(n) => parse_decimal(&n.to_string()),
                Json::String(s) => parse_decimal(s.trim()),
                _ => None,
            };
            Value::Decimal(d.ok_or_else(|| bad("expected a number"))?.normalize())
        }
        ValueType::Date => {
            let s = text(name, json)?.trim();
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &format).map_err(|_| bad("expected a date as YYYY-MM-DD"))?;
            Value::Text(s.to_owned())
        }
        ValueType::Reference(target) => {
            let shapes = "expected an id, {\"related_record_id\"} or {\"related_record_match\"}";
            let s = match json {
                Json::String(s) => s.as_str(),
                Json::Object(o) if o.len() == 1 && o.contains_key("related_record_match") => {
                    return reference_match(name, &o["related_record_match"]);
                }
                Json::Object(o) if o.len() == 1 || (o.len() == 2 && o.contains_key("related_record_type")) => {
                    o.get("related_record_id").and_then(Json::as_str).ok_or_else(|| bad(shapes))?
                }
                _ => return Err(bad(shapes)),
            };
            Value::Ref(RecordId::parse(target, s).ok_or_else(|| bad(&format!("not a {target} id")))?)
        }
        ValueType::Address => Value::Addresses(vec![address(name, json)?]),
    })
}

/// `{"key": "value"}` naming one unique field of the target; which keys are unique is
/// checked when the store resolves it.
fn reference_match(name: &str, json: &Json) -> CoreResult<Value> {
    let bad = || CoreError::invalid_value(name, "related_record_match takes one {\"field\": \"value\"} pair");
    let obj = json.as_object().filter(|o| o.len() == 1).ok_or_else(bad)?;
    let (key, value) = obj.iter().next().ok_or_else(bad)?;
    let value = value.as_str().filter(|v| crate::normalize::storable(v)).ok_or_else(bad)?;
    Ok(Value::Match { key: key.clone(), value: value.to_owned() })
}

/// A currency amount: a number, a numeric string or `{"amount", "currency_code": "USD"}`.
fn currency(name: &str, json: &Json) -> CoreResult<Decimal> {
    let bad = |r: &str| CoreError::invalid_value(name, r);
    let amount = match json {
        Json::Object(o) => {
            if let Some(code) = o.get("currency_code")
                && !code.as_str().is_some_and(|c| c.eq_ignore_ascii_case("USD"))
            {
                return Err(bad("only USD amounts are stored"));
            }
            if let Some(k) = o.keys().find(|k| *k != "amount" && *k != "currency_code") {
                return Err(bad(&format!("unexpected key `{k}`")));
            }
            o.get("amount").ok_or_else(|| bad("missing amount"))?
        }
        other => other,
    };
    let parsed = match amount {
        Json::Number(n) => parse_decimal(&n.to_string()),
        Json::String(s) => parse_decimal(s.trim()),
        _ => None,
    };
    let d = parsed.ok_or_else(|| bad("expected a decimal amount"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(bad("must not be negative"));
    }
    Ok(d.normalize())
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    if s.contains(['e', 'E']) {
        // A number with more than the 28 decimal places a decimal keeps (`2.220446049250313e-16`,
        // `2.2e-311`, both valid JSON) rounds to 28 places instead of being refused (found by
        // schemathesis); only magnitudes beyond the decimal's range are refused.
        Decimal::from_scientific(s).ok().or_else(|| {
            let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
            if f.abs() < 1e-28 { Some(Decimal::ZERO) } else { Decimal::try_from(f).ok().map(|d| d.round_dp(28)) }
        })
    } else {
        Decimal::from_str(s).ok()
    }
}

/// The v1 JSON spelling of a value of `field`.
pub fn to_v1_json(field: &FieldDef, value: &Value) -> Json {
    to_v1_json_of(field.value_type, field.is_array, value)
}

/// The v1 JSON spelling of a value of an attribute of this shape.
pub fn to_v1_json_of(value_type: ValueType, is_array: bool, value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Text(s) => json!(s),
        Value::Int(n) => json!(n),
        Value::Decimal(d) => decimal_number(d),
        Value::Bool(b) => json!(b),
        Value::Time(t) => json!(t.to_rfc3339()),
        Value::Ref(id) => match value_type {
            ValueType::Reference(rt) => json!(id.v1(rt)),
            _ => json!(id.canonical()),
        },
        Value::List(items) => match value_type {
            ValueType::Reference(rt) => {
                json!(
                    items
                        .iter()
                        .map(|i| RecordId::parse(rt, i).map(|id| id.v1(rt)).unwrap_or_else(|| i.clone()))
                        .collect::<Vec<_>>()
                )
            }
            _ => json!(items),
        },
        Value::Addresses(list) if is_array => serde_json::to_value(list).unwrap_or(Json::Null),
        Value::Addresses(list) => list.first().and_then(|a| serde_json::to_value(a).ok()).unwrap_or(Json::Null),
        Value::Match { .. } => Json::Null,
    }
}

/// A decimal as a JSON number: an integer when it has no fraction, else the closest float.
fn decimal_number(d: &Decimal) -> Json {
    if d.fract().is_zero()
        && let Ok(i) = i64::try_from(d.trunc().mantissa() / 10i128.pow(d.scale()))
    {
        return json!(i);
    }
    serde_json::Number::from_f64(d.to_string().parse().unwrap_or(0.0)).map(Json::Number).unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RecordType;
    use crate::schema::{ACCOUNT_FIELDS, default_stages, field_by_v1_name};

    fn f(name: &str) -> &'static FieldDef {
        field_by_v1_name(RecordType::Account, name).unwrap().1
    }

    fn c(name: &str, j: Json) -> CoreResult<Value> {
        let stages = default_stages("t", RecordType::Account);
        coerce(f(name), &j, &CoerceContext { stages: &stages, dialect: Dialect::V1 })
    }

    #[test]
    fn currency_accepts_numbers_strings_and_objects_exactly() {
        for j in
            [json!(1500000), json!("1500000"), json!({"amount": "1500000.00", "currency_code": "USD"}), json!(1.5e6)]
        {
            assert_eq!(c("annual_revenue", j.clone()), Ok(Value::Decimal(Decimal::from(1_500_000))), "{j}");
        }
        assert_eq!(c("annual_revenue", json!("0.10")).unwrap(), Value::Decimal(Decimal::new(1, 1)));
        assert!(c("annual_revenue", json!({"amount": 1, "currency_code": "EUR"})).is_err());
        assert!(c("annual_revenue", json!("lots")).is_err());
        assert!(c("annual_revenue", json!(-1)).is_err());
        assert_eq!(to_v1_json(f("annual_revenue"), &Value::Decimal(Decimal::new(15, 1))), json!(1.5));
        assert_eq!(to_v1_json(f("annual_revenue"), &Value::Decimal(Decimal::from(7))), json!(7));
    }

    #[test]
    fn scalars_are_checked_and_normalised() {
        assert_eq!(c("employee_count", json!(12)), Ok(Value::Int(12)));
        assert_eq!(c("employee_count", json!("12")), Ok(Value::Int(12)));
        assert!(c("employee_count", json!(-1)).is_err());
        assert!(c("employee_count", json!(1.5)).is_err());
        assert!(c("website", json!("acme.com")).is_err());
        assert_eq!(c("lifecycle_stage", json!("Customer")), Ok(Value::Text("customer".into())));
        assert!(c("lifecycle_stage", json!("bogus")).is_err());
        assert!(c("source_type", json!("robot")).is_err());
        assert_eq!(c("tags", json!([" a", "A", "b"])), Ok(Value::List(vec!["a".into(), "b".into()])));
        assert_eq!(c("tags", Json::Null), Ok(Value::List(vec![])));
        assert!(c("name", json!("x".repeat(1001))).is_err());
        assert_eq!(parse_decimal("2.225073858507e-311"), Some(Decimal::ZERO));
        assert_eq!(parse_decimal("1e-320"), Some(Decimal::ZERO));
        let tiny = parse_decimal("2.220446049250313e-16").expect("a small number with 31 places");
        assert!(tiny > Decimal::ZERO && tiny < Decimal::from_str("3e-16").unwrap_or_default(), "{tiny}");
        assert!(parse_decimal("1e400").is_none());
        assert!(c("addresses", json!([{"city": "Oslo", "planet": "Earth"}])).is_err());
        assert!(c("addresses", json!([[]])).is_err());
        assert!(c("addresses", json!([["Home", "1 Main St"]])).is_err());
        let err = c("owner_id", json!("acc-0193")).unwrap_err();
        assert_eq!(err.details["field"], "owner_id");
        assert_eq!(ACCOUNT_FIELDS.len(), 25);
    }
}
