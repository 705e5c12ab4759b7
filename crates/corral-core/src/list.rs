//! List queries: which records, in which order, continuing from where (SPEC §5.4, §8).
//!
//! A [`ListQuery`] is what the client asked for, by field name, and is what cursors carry.
//! [`ListQuery::resolve`] checks it against the schema registry and produces a [`Plan`] of
//! columns and typed values that the store turns into SQL.

use crate::error::{CoreError, CoreResult};
use crate::ids::RecordType;
use crate::normalize;
use crate::schema::{FieldDef, META_COLUMNS, Stage, ValueType, field_by_v1_name};
use crate::value::{CoerceContext, Value, coerce};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Default and largest v1 page sizes.
pub const V1_DEFAULT_LIMIT: usize = 50;
pub const V1_MAX_LIMIT: usize = 500;
/// Sort keys a client may give (the id tie-breaker comes on top).
pub const MAX_SORT_KEYS: usize = 3;

/// A client's list query, by field name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ListQuery {
    /// Equality filters `(field, value)`, ANDed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equals: Vec<(String, String)>,
    /// Sort keys `(field, descending)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<(String, bool)>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_deleted: bool,
}

/// What a list request asked for: the query, the page size and where to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    /// The query given in the parameters, or `None` when only a cursor (and limit) came.
    pub query: Option<ListQuery>,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// A sealed cursor's content: the query and the last row's sort-key values (id last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorState {
    #[serde(rename = "q")]
    pub query: ListQuery,
    #[serde(rename = "a")]
    pub after: Vec<Json>,
}

/// How a condition reaches the data.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A column, compared case-insensitively when the value is text.
    Column(&'static str),
    /// Any element of a JSON string-array column equals the value (case-insensitive).
    AnyListItem(&'static str),
    /// Any of the account's domains equals the value.
    AnyDomain,
}

/// One resolved equality condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub target: Target,
    pub value: Value,
    /// Text compares case-insensitively (SPEC §7.4); ids and stage api_names exactly.
    pub case_insensitive: bool,
}

/// One resolved sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortColumn {
    pub column: &'static str,
    pub descending: bool,
}

/// A query checked against the registry, ready for SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub conditions: Vec<Condition>,
    /// Sort keys, ending with the `id` tie-breaker.
    pub sort: Vec<SortColumn>,
    pub include_deleted: bool,
}

impl ListRequest {
    /// Parses v1 list parameters (SPEC §8). Unknown parameters → `invalid_query_parameter`.
    pub fn from_v1_params(record_type: RecordType, params: &[(String, String)]) -> CoreResult<Self> {
        let mut query = ListQuery::default();
        let mut any_query_param = false;
        let mut limit = V1_DEFAULT_LIMIT;
        let mut cursor = None;
        for (name, value) in params {
            match name.as_str() {
                "limit" => {
                    limit =
                        value.parse::<usize>().ok().filter(|n| (1..=V1_MAX_LIMIT).contains(n)).ok_or_else(|| {
                            CoreError::invalid_query_parameter("limit", format!("expected 1 to {V1_MAX_LIMIT}"))
                        })?;
                }
                "cursor" => cursor = Some(value.clone()).filter(|c| !c.is_empty()),
                "sort" => {
                    any_query_param = true;
                    query.sort = parse_sort(value)?;
                }
                "include_deleted" => {
                    any_query_param = true;
                    query.include_deleted = parse_bool(name, value)?;
                }
                field => {
                    if field.contains('[') {
                        return Err(CoreError::invalid_query_parameter(
                            field,
                            "operator filters are not supported yet; use field=value",
                        ));
                    }
                    if !is_filterable(record_type, field) {
                        return Err(CoreError::invalid_query_parameter(
                            field,
                            "unknown parameter or field that cannot be filtered",
                        ));
                    }
                    any_query_param = true;
                    query.equals.push((field.to_owned(), value.clone()));
                }
            }
        }
        Ok(ListRequest { query: any_query_param.then_some(query), limit, cursor })
    }
}

fn parse_bool(name: &str, value: &str) -> CoreResult<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(CoreError::invalid_query_parameter(name, "expected true or false")),
    }
}

fn parse_sort(value: &str) -> CoreResult<Vec<(String, bool)>> {
    let mut keys = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, desc) = match part.strip_prefix('-') {
            Some(n) => (n, true),
            None => (part.strip_prefix('+').unwrap_or(part), false),
        };
        if keys.iter().any(|(k, _): &(String, bool)| k == name) {
            return Err(CoreError::invalid_query_parameter("sort", format!("`{name}` appears twice")));
        }
        keys.push((name.to_owned(), desc));
    }
    if keys.len() > MAX_SORT_KEYS {
        return Err(CoreError::invalid_query_parameter("sort", format!("at most {MAX_SORT_KEYS} sort keys")));
    }
    Ok(keys)
}

/// Meta fields that equality filters accept.
const FILTERABLE_META: &[&str] = &["app_id", "created_by", "updated_by"];

fn is_filterable(record_type: RecordType, name: &str) -> bool {
    FILTERABLE_META.contains(&name)
        || (record_type == RecordType::Account && name == "domain")
        || field_by_v1_name(record_type, name).is_some_and(|(_, f)| f.value_type != ValueType::Address)
}

impl ListQuery {
    /// The default v1 order: newest first.
    pub fn default_sort() -> Vec<(String, bool)> {
        vec![("created_at".to_owned(), true)]
    }

    /// Checks the query against the registry and resolves names to columns and values.
    pub fn resolve(&self, record_type: RecordType, stages: &[Stage]) -> CoreResult<Plan> {
        let ctx = CoerceContext { stages, dialect: crate::value::Dialect::V1 };
        let mut conditions = Vec::with_capacity(self.equals.len());
        for (name, raw) in &self.equals {
            conditions.push(resolve_condition(record_type, name, raw, &ctx)?);
        }
        let keys = if self.sort.is_empty() { Self::default_sort() } else { self.sort.clone() };
        let mut sort = Vec::with_capacity(keys.len() + 1);
        for (name, descending) in &keys {
            let column = sort_column(record_type, name)
                .ok_or_else(|| CoreError::invalid_query_parameter("sort", format!("cannot sort by `{name}`")))?;
            if column != "id" {
                sort.push(SortColumn { column, descending: *descending });
            }
        }
        // The id breaks ties, in the direction of the last key, so the order is total.
        let descending = keys.last().is_some_and(|(_, d)| *d);
        sort.push(SortColumn { column: "id", descending });
        Ok(Plan { conditions, sort, include_deleted: self.include_deleted })
    }
}

fn sort_column(record_type: RecordType, name: &str) -> Option<&'static str> {
    if let Some((_, column, sortable)) = META_COLUMNS.iter().find(|(n, _, _)| *n == name) {
        return sortable.then_some(*column);
    }
    let (_, f) = field_by_v1_name(record_type, name)?;
    f.sortable.then(|| sort_column_of(f))
}

/// The column a field compares and sorts by (currency by its numeric shadow column).
fn sort_column_of(f: &FieldDef) -> &'static str {
    match f.value_type {
        ValueType::Currency => "annual_revenue_num",
        _ => f.column,
    }
}

fn resolve_condition(record_type: RecordType, name: &str, raw: &str, ctx: &CoerceContext<'_>) -> CoreResult<Condition> {
    let bad = |r: &str| CoreError::invalid_query_parameter(name, r.to_owned());
    if !normalize::storable(raw) {
        return Err(bad("NUL characters are not allowed"));
    }
    if name == "domain" {
        let d = normalize::domain(raw).map_err(bad)?;
        return Ok(Condition { target: Target::AnyDomain, value: Value::Text(d), case_insensitive: false });
    }
    if FILTERABLE_META.contains(&name) {
        return Ok(Condition {
            target: Target::Column(name_to_meta_column(name)),
            value: Value::Text(raw.to_owned()),
            case_insensitive: false,
        });
    }
    let (_, f) = field_by_v1_name(record_type, name).ok_or_else(|| bad("unknown field"))?;
    if f.is_array {
        let item = raw.trim();
        if item.is_empty() {
            return Err(bad("expected a value"));
        }
        return Ok(Condition {
            target: Target::AnyListItem(f.column),
            value: Value::Text(item.to_owned()),
            case_insensitive: true,
        });
    }
    // Query strings carry text: give numbers and booleans their JSON form before coercing.
    let json = match f.value_type {
        ValueType::Number | ValueType::Currency => Json::String(raw.to_owned()),
        ValueType::Boolean => Json::Bool(parse_bool(name, raw)?),
        _ => Json::String(raw.to_owned()),
    };
    let value = coerce(f, &json, ctx)
        .map_err(|e| bad(e.details.get("reason").and_then(Json::as_str).unwrap_or("invalid value")))?;
    // References are stored as canonical id text.
    let value = match value {
        Value::Ref(id) => Value::Text(id.canonical()),
        other => other,
    };
    let case_insensitive =
        matches!(value, Value::Text(_)) && !matches!(f.value_type, ValueType::Stage | ValueType::Reference(_));
    Ok(Condition { target: Target::Column(sort_column_of(f)), value, case_insensitive })
}

fn name_to_meta_column(name: &str) -> &'static str {
    META_COLUMNS.iter().find(|(n, _, _)| *n == name).map(|(_, c, _)| *c).unwrap_or("id")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::schema::default_stages;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn v1_parameters_parse_and_refuse_unknowns() {
        let r = ListRequest::from_v1_params(
            RecordType::Account,
            &params(&[("limit", "10"), ("sort", "-updated_at,name"), ("industry", "software")]),
        )
        .unwrap();
        assert_eq!(r.limit, 10);
        let q = r.query.unwrap();
        assert_eq!(q.sort, vec![("updated_at".to_owned(), true), ("name".to_owned(), false)]);
        assert_eq!(q.equals, vec![("industry".to_owned(), "software".to_owned())]);
        for bad in [
            ("limit", "0"),
            ("limit", "501"),
            ("bogus", "1"),
            ("include_deleted", "maybe"),
            ("industry[eq]", "x"),
            ("addresses", "x"),
        ] {
            let e = ListRequest::from_v1_params(RecordType::Account, &params(&[bad])).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidQueryParameter, "{bad:?}");
        }
        let only_cursor = ListRequest::from_v1_params(RecordType::Account, &params(&[("cursor", "abc")])).unwrap();
        assert_eq!((only_cursor.query, only_cursor.cursor.as_deref()), (None, Some("abc")));
    }

    #[test]
    fn resolution_checks_fields_and_adds_the_id_tie_breaker() {
        let stages = default_stages("t", RecordType::Account);
        let q = ListQuery {
            sort: vec![("name".into(), false)],
            equals: vec![("lifecycle_stage".into(), "Customer".into()), ("domain".into(), "WWW.Acme.com".into())],
            include_deleted: false,
        };
        let plan = q.resolve(RecordType::Account, &stages).unwrap();
        assert_eq!(plan.sort.last().unwrap(), &SortColumn { column: "id", descending: false });
        assert_eq!(plan.conditions[0].value, Value::Text("customer".into()));
        assert_eq!(
            plan.conditions[1],
            Condition { target: Target::AnyDomain, value: Value::Text("acme.com".into()), case_insensitive: false }
        );
        let default = ListQuery::default().resolve(RecordType::Account, &stages).unwrap();
        assert_eq!(
            default.sort,
            vec![SortColumn { column: "created_at", descending: true }, SortColumn { column: "id", descending: true }]
        );
        for bad in [
            ListQuery { sort: vec![("tags".into(), false)], ..Default::default() },
            ListQuery { equals: vec![("employee_count".into(), "many".into())], ..Default::default() },
        ] {
            assert_eq!(bad.resolve(RecordType::Account, &stages).unwrap_err().code, ErrorCode::InvalidQueryParameter);
        }
    }
}
