//! List queries: which records, in which order, continuing from where (docs/CONTRACT.md §5.4, §7.4, §8).
//!
//! A [`ListQuery`] is what a client asked for, by field name in its dialect; it is also
//! what cursors carry. [`ListQuery::resolve`] turns it into a [`Plan`]: one resolved filter
//! tree ([`crate::filter`]) and sort columns, which the store compiles to SQL.

use crate::custom::TenantSchema;
use crate::error::{CoreError, CoreResult, ErrorCode};
use crate::filter::{self, Cond, Filter, Kind, Op, Schemas, SortKey, Target};
use crate::ids::RecordType;
use crate::schema::{META_COLUMNS, field_by_v1_name};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Default and largest v1 page sizes.
pub const V1_DEFAULT_LIMIT: usize = 50;
pub const V1_MAX_LIMIT: usize = 500;
/// Default and largest v2 `_query` page sizes.
pub const V2_DEFAULT_LIMIT: usize = 50;
pub const V2_MAX_LIMIT: usize = 200;
/// Sort keys a client may give (the id tie-breaker comes on top).
pub const MAX_SORT_KEYS: usize = 3;

/// The dialect a query was written in: it decides field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    V1,
    V2,
}

/// A client's list query, by field name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub dialect: Dialect,
    /// Filters, ANDed (v1 parameters become leaves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// v1 `q`: a case-insensitive search over the record type's names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
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

/// A sealed cursor's content: the record type, the query and the last row's sort-key
/// values (id last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorState {
    #[serde(rename = "t")]
    pub record_type: String,
    #[serde(rename = "q")]
    pub query: ListQuery,
    #[serde(rename = "a")]
    pub after: Vec<Json>,
}

/// One resolved sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortColumn {
    pub column: SortKey,
    pub descending: bool,
}

/// A query checked against the registry, ready for SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub filter: Option<Cond>,
    /// Sort keys, ending with the `id` tie-breaker.
    pub sort: Vec<SortColumn>,
    pub include_deleted: bool,
}

impl ListRequest {
    /// Parses v1 list parameters (docs/CONTRACT.md §8): `limit`, `cursor`, `sort`, `include_deleted`, `q`,
    /// `field=value` and `field[op]=value`. Unknown parameters → `invalid_query_parameter`.
    pub fn from_v1_params(params: &[(String, String)]) -> CoreResult<Self> {
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
                "q" => {
                    any_query_param = true;
                    query.q = Some(value.trim().to_owned()).filter(|q| !q.is_empty());
                }
                param => {
                    any_query_param = true;
                    query.filters.push(v1_leaf(param, value)?);
                }
            }
        }
        Ok(ListRequest { query: any_query_param.then_some(query), limit, cursor })
    }
}

/// `field=value` or `field[op]=value` as a filter leaf (still named in v1).
fn v1_leaf(param: &str, raw: &str) -> CoreResult<Filter> {
    let (field, op) = match param.split_once('[') {
        Some((field, rest)) => {
            let op = rest.strip_suffix(']').and_then(Op::parse).ok_or_else(|| {
                CoreError::new(ErrorCode::InvalidFilterOperator, format!("unknown operator in `{param}`"))
                    .with("parameter", param)
            })?;
            (field, op)
        }
        None => (param, Op::Eq),
    };
    let list = || {
        // The same bound as a v2 list (docs/API.md "Queries"), counted before anything is built.
        if raw.split(',').nth(crate::filter::MAX_IN_VALUES).is_some() {
            return Err(CoreError::invalid_query_parameter(
                param,
                format!("at most {} values in a list", crate::filter::MAX_IN_VALUES),
            ));
        }
        Ok(Json::Array(raw.split(',').map(|v| Json::String(v.trim().to_owned())).collect()))
    };
    let (op, value) = match op {
        Op::In | Op::NotIn | Op::Between => (op, list()?),
        Op::Exists | Op::NotExists => {
            let wanted = parse_bool(param, raw)?;
            let op = if wanted == (op == Op::Exists) { Op::Exists } else { Op::NotExists };
            (op, Json::Null)
        }
        other => (other, Json::String(raw.to_owned())),
    };
    Ok(Filter::Leaf { field: field.to_owned(), operator: op.name().to_owned(), value })
}

/// The one parser of boolean query parameters (`purge`, `include_deleted`, `exists`, boolean
/// filters): `true|false|1|0`, any case. Anything else, the empty value included, is refused:
/// a destructive flag such as `?purge=` must never be read as a yes.
/// A number in a query string is the text of a JSON number (`5`, `-0.25`, `1e-05`): read as
/// one, so a v1 parameter takes every spelling of the number its document allows, where a v2
/// body's string spelling of a number is the narrower one `corral_core::filter` states.
fn query_number(value: &Json, value_type: crate::schema::ValueType, label: &str) -> CoreResult<Json> {
    use crate::schema::ValueType;
    let Json::String(s) = value else { return Ok(value.clone()) };
    // JSON's number grammar, nothing around it: `+5`, ` 5` or `.5` are refused.
    let number = serde_json::from_str::<serde_json::Number>(s).ok();
    Ok(match value_type {
        ValueType::Number => Json::Number(
            number
                .filter(serde_json::Number::is_i64)
                .ok_or_else(|| CoreError::invalid_query_parameter(label, "expected a whole number"))?,
        ),
        ValueType::Currency | ValueType::Percent => {
            Json::Number(number.ok_or_else(|| CoreError::invalid_query_parameter(label, "expected a number"))?)
        }
        _ => value.clone(),
    })
}

/// A boolean query parameter: `true` or `false`, spelled as JSON spells them (what the OpenAPI
/// document's `boolean` says; `1`, `0` or `TRUE` are refused, found by probing the document).
pub fn parse_bool(name: &str, value: &str) -> CoreResult<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(CoreError::invalid_query_parameter(name, "expected true or false")),
    }
}

fn parse_sort(value: &str) -> CoreResult<Vec<(String, bool)>> {
    let mut keys = Vec::new();
    // Exactly the document's form: `field` or `-field`, comma-separated, none empty.
    for part in value.split(',') {
        let (name, desc) = match part.strip_prefix('-') {
            Some(n) => (n, true),
            None => (part, false),
        };
        if name.is_empty() {
            return Err(CoreError::invalid_query_parameter("sort", "expected field or -field, comma-separated"));
        }
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

/// The v2 name of a v1 field, for the fields the two dialects name differently.
fn v2_name(rt: RecordType, v1: &str) -> Option<&'static str> {
    match (rt, v1) {
        (RecordType::Account, "domain") => Some("domains"),
        (RecordType::Contact, "email") => Some("primary_email"),
        (RecordType::Contact, "phone") => Some("primary_phone_number"),
        (_, "id" | "created_at" | "updated_at" | "version" | "app_id") => {
            META_COLUMNS.iter().find(|m| m.0 == v1).map(|m| m.0)
        }
        (_, "deleted_at") => Some("archived_at"),
        _ => field_by_v1_name(rt, v1).map(|(_, f)| f.api_name),
    }
}

/// v1-only filters on server-stamped text and the primary account.
fn v1_only(rt: RecordType, field: &str, label: &str, operator: &str, value: &Json) -> Option<CoreResult<Cond>> {
    let column = match (rt, field) {
        (_, "created_by") => "created_by",
        (_, "updated_by") => "updated_by",
        (RecordType::Contact, "account_id") => "primary_account_id",
        _ => return None,
    };
    Some((|| {
        let op = Op::parse(operator)
            .filter(|o| matches!(o, Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Exists | Op::NotExists))
            .ok_or_else(|| {
                CoreError::new(
                    ErrorCode::InvalidFilterOperator,
                    format!("operator `{operator}` does not apply to `{label}`"),
                )
                .with("field", label)
            })?;
        let text = |j: &Json| -> CoreResult<Value> {
            let s = j.as_str().unwrap_or_default();
            // The document's bounds: something besides white space, at most 1,000 characters,
            // no comma (it separates list items) and no NUL (PostgreSQL cannot hold one: a 500).
            if s.trim().is_empty() || s.chars().count() > crate::normalize::MAX_STRING_CHARS || s.contains([',', '\0'])
            {
                return Err(CoreError::invalid_query_parameter(
                    label,
                    "expected 1-1000 characters, not only spaces, without commas or NUL",
                ));
            }
            if column == "primary_account_id" {
                let id = crate::ids::RecordId::parse(RecordType::Account, s)
                    .ok_or_else(|| CoreError::invalid_query_parameter(label, "expected an account id"))?;
                return Ok(Value::Text(id.canonical()));
            }
            Ok(Value::Text(s.to_owned()))
        };
        let values = match value {
            Json::Null => Vec::new(),
            Json::Array(items) => items.iter().map(text).collect::<CoreResult<_>>()?,
            other => vec![text(other)?],
        };
        Ok(Cond::Cmp { target: Target::Column(column), kind: Kind::Exact, op, values })
    })())
}

/// The fields `q` searches (docs/CONTRACT.md §8).
fn search_fields(rt: RecordType) -> &'static [&'static str] {
    match rt {
        RecordType::Account => &["display_name", "legal_name", "domains", "official_website"],
        RecordType::Contact => &["display_name", "first_name", "last_name", "contact_emails"],
        RecordType::User => &[],
    }
}

/// v1 filter errors are about query parameters: 400 `invalid_query_parameter`, except an
/// operator the field does not take (422 `invalid_filter_operator`).
fn as_parameter_error(e: CoreError, field: &str) -> CoreError {
    match e.code {
        ErrorCode::InvalidFilterOperator => e,
        _ => {
            let reason = e.details.get("reason").and_then(Json::as_str).map(str::to_owned).unwrap_or(e.message);
            CoreError::invalid_query_parameter(field, reason)
        }
    }
}

/// One v1 filter on field `field` of `rt` (errors name the parameter as given, `label`).
fn v1_cond(
    rt: RecordType,
    field: &str,
    label: &str,
    operator: &str,
    value: &Json,
    schema: &TenantSchema,
) -> CoreResult<Cond> {
    if let Some(cond) = v1_only(rt, field, label, operator, value) {
        return cond;
    }
    // Custom attributes are `custom_fields.<api_name>` in v1.
    let custom = field.strip_prefix("custom_fields.").filter(|c| schema.custom(c).is_some());
    let name = match custom {
        Some(custom) => custom,
        None => v2_name(rt, field).ok_or_else(|| {
            CoreError::invalid_query_parameter(label, "unknown parameter or field that cannot be filtered")
        })?,
    };
    let value_type = filter::value_type(rt, name, schema);
    let value = match (value, value_type) {
        // Query strings carry text; booleans arrive as "true" / "false".
        (Json::String(s), Some(crate::schema::ValueType::Boolean)) => Json::Bool(parse_bool(label, s)?),
        (Json::Array(items), Some(vt)) => {
            Json::Array(items.iter().map(|i| query_number(i, vt, label)).collect::<CoreResult<_>>()?)
        }
        (v, Some(vt)) => query_number(v, vt, label)?,
        (v, None) => v.clone(),
    };
    filter::resolve_leaf(rt, name, label, operator, &value, schema).map_err(|e| as_parameter_error(e, label))
}

impl ListQuery {
    /// The default order: newest first.
    pub fn default_sort() -> Vec<(String, bool)> {
        vec![("created_at".to_owned(), true)]
    }

    /// Checks the query against the tenant's schemas (the record type's, and the other
    /// record type's for relationship filters) and resolves names to columns and values.
    pub fn resolve<'a>(&self, rt: RecordType, schemas: impl Into<Schemas<'a>>) -> CoreResult<Plan> {
        let schemas: Schemas<'a> = schemas.into();
        let schema = schemas.own;
        let mut conds = Vec::with_capacity(self.filters.len() + 1);
        for f in &self.filters {
            conds.push(match (self.dialect, f) {
                (Dialect::V2, f) => filter::resolve(rt, f, schemas)?,
                (Dialect::V1, Filter::Leaf { field, operator, value }) => {
                    match filter::split_relation(rt, field, true).map_err(|e| as_parameter_error(e, field))? {
                        // `account.industry=…`: the v1 field of the related record type.
                        Some((relation, name)) => {
                            let related = filter::related_schema(relation, field, schemas)
                                .map_err(|e| as_parameter_error(e, field))?;
                            let cond = v1_cond(relation.target(), name, field, operator, value, related)?;
                            Cond::Related { relation, cond: Box::new(cond) }
                        }
                        None => v1_cond(rt, field, field, operator, value, schema)?,
                    }
                }
                (Dialect::V1, _) => return Err(CoreError::invalid_cursor()),
            });
        }
        if let Some(q) = &self.q {
            let leaves = search_fields(rt)
                .iter()
                .map(|f| {
                    filter::resolve(
                        rt,
                        &Filter::Leaf {
                            field: (*f).to_owned(),
                            operator: "contains".into(),
                            value: Json::String(q.clone()),
                        },
                        schema,
                    )
                })
                .collect::<CoreResult<Vec<_>>>()
                .map_err(|e| as_parameter_error(e, "q"))?;
            conds.push(Cond::Or(leaves));
        }
        let keys = if self.sort.is_empty() { Self::default_sort() } else { self.sort.clone() };
        let mut sort = Vec::with_capacity(keys.len() + 1);
        for (name, descending) in &keys {
            let column = self.sort_column(rt, name, schema).ok_or_else(|| match self.dialect {
                Dialect::V1 => CoreError::invalid_query_parameter("sort", format!("cannot sort by `{name}`")),
                Dialect::V2 => CoreError::new(ErrorCode::InvalidFilterField, format!("cannot sort by `{name}`"))
                    .with("field", name.as_str()),
            })?;
            if !column.is_id() {
                sort.push(SortColumn { column, descending: *descending });
            }
        }
        // The id breaks ties, in the direction of the last key, so the order is total.
        let descending = keys.last().is_some_and(|(_, d)| *d);
        sort.push(SortColumn { column: SortKey::Column("id"), descending });
        let filter = match conds.len() {
            0 => None,
            1 => conds.pop(),
            _ => Some(Cond::And(conds)),
        };
        Ok(Plan { filter, sort, include_deleted: self.include_deleted })
    }

    fn sort_column(&self, rt: RecordType, name: &str, schema: &TenantSchema) -> Option<SortKey> {
        match self.dialect {
            Dialect::V2 => filter::sort_key(rt, name, schema),
            Dialect::V1 => {
                if let Some((_, column, sortable)) = META_COLUMNS.iter().find(|(n, _, _)| *n == name) {
                    return sortable.then_some(SortKey::Column(column));
                }
                if let Some(custom) = name.strip_prefix("custom_fields.") {
                    return filter::sort_key(rt, custom, schema);
                }
                let api = v2_name(rt, name)?;
                filter::sort_key(rt, api, schema)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    fn schema() -> TenantSchema {
        TenantSchema::builtin("t", RecordType::Account)
    }

    #[test]
    fn v1_value_lists_are_capped_like_v2() {
        let values = |n: usize| (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>().join(",");
        for op in ["in", "not_in"] {
            let param = format!("industry[{op}]");
            let ok = ListRequest::from_v1_params(&params(&[(&param, &values(filter::MAX_IN_VALUES))]));
            assert!(ok.is_ok(), "{op}: {ok:?}");
            let err =
                ListRequest::from_v1_params(&params(&[(&param, &values(filter::MAX_IN_VALUES + 1))])).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidQueryParameter, "{op}");
            assert_eq!(err.details["parameter"], param.as_str());
        }
    }

    #[test]
    fn v1_parameters_parse_and_refuse_unknowns() {
        let r = ListRequest::from_v1_params(&params(&[
            ("limit", "10"),
            ("sort", "-updated_at,name"),
            ("industry", "software"),
            ("employee_count[gte]", "5"),
        ]))
        .unwrap();
        assert_eq!(r.limit, 10);
        let q = r.query.unwrap();
        assert_eq!(q.sort, vec![("updated_at".to_owned(), true), ("name".to_owned(), false)]);
        assert_eq!(q.filters.len(), 2);
        assert!(q.resolve(RecordType::Account, &schema()).is_ok());
        for bad in [("limit", "0"), ("limit", "501"), ("include_deleted", "maybe")] {
            let e = ListRequest::from_v1_params(&params(&[bad])).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidQueryParameter, "{bad:?}");
        }
        for bad in [("bogus", "1"), ("addresses", "x"), ("employee_count", "many")] {
            let q = ListRequest::from_v1_params(&params(&[bad])).unwrap().query.unwrap();
            assert_eq!(
                q.resolve(RecordType::Account, &schema()).unwrap_err().code,
                ErrorCode::InvalidQueryParameter,
                "{bad:?}"
            );
        }
        let q = ListRequest::from_v1_params(&params(&[("industry[gt]", "x")])).unwrap().query.unwrap();
        assert_eq!(q.resolve(RecordType::Account, &schema()).unwrap_err().code, ErrorCode::InvalidFilterOperator);
        assert_eq!(
            ListRequest::from_v1_params(&params(&[("industry[like]", "x")])).unwrap_err().code,
            ErrorCode::InvalidFilterOperator
        );
        let only_cursor = ListRequest::from_v1_params(&params(&[("cursor", "abc")])).unwrap();
        assert_eq!((only_cursor.query, only_cursor.cursor.as_deref()), (None, Some("abc")));
    }

    #[test]
    fn resolution_adds_the_id_tie_breaker() {
        let q = ListQuery { sort: vec![("name".into(), false)], ..Default::default() };
        let plan = q.resolve(RecordType::Account, &schema()).unwrap();
        assert_eq!(plan.sort.last().unwrap(), &SortColumn { column: SortKey::Column("id"), descending: false });
        let default = ListQuery::default().resolve(RecordType::Account, &schema()).unwrap();
        assert_eq!(
            default.sort,
            vec![
                SortColumn { column: SortKey::Column("created_at"), descending: true },
                SortColumn { column: SortKey::Column("id"), descending: true }
            ]
        );
        let bad = ListQuery { sort: vec![("tags".into(), false)], ..Default::default() };
        assert_eq!(bad.resolve(RecordType::Account, &schema()).unwrap_err().code, ErrorCode::InvalidQueryParameter);
    }
}
