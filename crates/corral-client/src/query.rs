//! Building queries: the v2 `_query` filter tree ([`Filter`], [`Query`]) and v1 list
//! parameters ([`ListParams`]).
//!
//! ```
//! use corral_client::{Filter, Query, Count};
//! let q = Query::new()
//!     .filter(Filter::field("industry").eq("software").and(Filter::field("employee_count").gte(50)))
//!     .filter(Filter::field("tags").is_in(["enterprise", "smb"]).or(Filter::field("domains").exists()))
//!     .sort_desc("created_at")
//!     .limit(100)
//!     .count(Count::Exact)
//!     .fields(["display_name", "domains"]);
//! ```
//!
//! Operators are the server's own ([`Op`], re-exported from `corral-core`), so the 14
//! operator names cannot drift from what the server parses. Field names are v2 attribute
//! names for `_query` (`display_name`, `current_stage_id`, custom api_names) and v1 field
//! names for lists (`name`, `lifecycle_stage`, `custom_fields.<api_name>`).

pub use corral_core::filter::Op;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

/// A filter tree node: a condition, or an `and` / `or` / `not` group.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Condition {
        field: String,
        op: Op,
        value: Option<Value>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// The negation of the group's AND.
    Not(Vec<Filter>),
}

/// The field a condition is about; its methods make the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef(String);

impl FieldRef {
    /// A condition with any operator and value (`None` for `exists` / `not_exists`).
    pub fn op(self, op: Op, value: Option<Value>) -> Filter {
        Filter::Condition { field: self.0, op, value }
    }

    fn with(self, op: Op, value: impl Into<Value>) -> Filter {
        self.op(op, Some(value.into()))
    }

    fn list<V: Into<Value>>(self, op: Op, values: impl IntoIterator<Item = V>) -> Filter {
        self.with(op, Value::Array(values.into_iter().map(Into::into).collect()))
    }

    pub fn eq(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Eq, value)
    }
    /// Also matches records without a value.
    pub fn ne(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Ne, value)
    }
    pub fn is_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.list(Op::In, values)
    }
    pub fn not_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.list(Op::NotIn, values)
    }
    pub fn contains(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Contains, value)
    }
    pub fn starts_with(self, value: impl Into<Value>) -> Filter {
        self.with(Op::StartsWith, value)
    }
    pub fn ends_with(self, value: impl Into<Value>) -> Filter {
        self.with(Op::EndsWith, value)
    }
    pub fn gt(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Gt, value)
    }
    pub fn gte(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Gte, value)
    }
    pub fn lt(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Lt, value)
    }
    pub fn lte(self, value: impl Into<Value>) -> Filter {
        self.with(Op::Lte, value)
    }
    /// Inclusive on both ends.
    pub fn between(self, low: impl Into<Value>, high: impl Into<Value>) -> Filter {
        self.with(Op::Between, json!([low.into(), high.into()]))
    }
    pub fn exists(self) -> Filter {
        self.op(Op::Exists, None)
    }
    pub fn not_exists(self) -> Filter {
        self.op(Op::NotExists, None)
    }
}

impl Filter {
    /// Starts a condition on `field`.
    pub fn field(name: impl Into<String>) -> FieldRef {
        FieldRef(name.into())
    }

    /// All of `filters`.
    pub fn all(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::And(filters.into_iter().collect())
    }

    /// Any of `filters`.
    pub fn any(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::Or(filters.into_iter().collect())
    }

    /// `NOT (a AND b AND …)`: the server negates a `not` group's AND.
    pub fn not_all(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::Not(filters.into_iter().collect())
    }

    /// `self AND other` (flattening nested ANDs).
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut items) => {
                items.push(other);
                Filter::And(items)
            }
            first => Filter::And(vec![first, other]),
        }
    }

    /// `self OR other` (flattening nested ORs).
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut items) => {
                items.push(other);
                Filter::Or(items)
            }
            first => Filter::Or(vec![first, other]),
        }
    }

    /// `NOT self`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(vec![self])
    }

    /// The node as the server reads it: `{"field", "operator", "value"}` or `{"and": [...]}`.
    pub fn to_json(&self) -> Value {
        let group = |key: &str, items: &[Filter]| json!({ key: items.iter().map(Filter::to_json).collect::<Vec<_>>() });
        match self {
            Filter::Condition { field, op, value } => {
                let mut node = Map::new();
                node.insert("field".into(), json!(field));
                node.insert("operator".into(), json!(op.name()));
                if let Some(v) = value {
                    node.insert("value".into(), v.clone());
                }
                Value::Object(node)
            }
            Filter::And(items) => group("and", items),
            Filter::Or(items) => group("or", items),
            Filter::Not(items) => group("not", items),
        }
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// Whether and how to count matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// Counts with the page's own conditions.
    Exact,
    /// Bounded in cost: the planner's estimate on PostgreSQL, at most 100,000 counted on SQLite.
    Estimated,
}

impl Count {
    pub fn as_str(self) -> &'static str {
        match self {
            Count::Exact => "exact",
            Count::Estimated => "estimated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct SortKey {
    field: String,
    direction: &'static str,
}

/// A v2 `_query` body: filters (AND-ed), up to 3 sort keys, limit (1–200), count, fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Query {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    filters: Vec<Filter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sort: Vec<SortKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_archived: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

impl Query {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a top-level filter (top-level filters are AND-ed).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    pub fn sort_asc(mut self, field: impl Into<String>) -> Self {
        self.sort.push(SortKey { field: field.into(), direction: "asc" });
        self
    }

    pub fn sort_desc(mut self, field: impl Into<String>) -> Self {
        self.sort.push(SortKey { field: field.into(), direction: "desc" });
        self
    }

    /// Page size, 1–200 (default 50).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn include_archived(mut self, yes: bool) -> Self {
        self.include_archived = Some(yes);
        self
    }

    pub fn count(mut self, count: Count) -> Self {
        self.count = Some(count);
        self
    }

    /// Only these attributes in each record.
    pub fn fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.fields = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Continues after a page (`next_cursor`); streams do this for you.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The body that continues this query at `cursor`: the cursor carries the filters,
    /// sort and archive flag; the page size and fields are sent again, the count is not.
    pub(crate) fn continuation(&self, cursor: String) -> Query {
        Query { limit: self.limit, fields: self.fields.clone(), cursor: Some(cursor), ..Query::default() }
    }
}

/// v1 list parameters: `limit`, `sort`, `include_deleted`, `q`, `count` and filters
/// (`field=value`, `field[op]=value`).
///
/// ```
/// use corral_client::{ListParams, Op};
/// let p = ListParams::new().filter("industry", "software").filter_op("employee_count", Op::Gte, 50).sort("name").limit(3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pairs: Vec<(String, String)>,
    limit: Option<u32>,
}

impl ListParams {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.pairs.push((key.into(), value.to_string()));
        self
    }

    /// Page size, 1–500 (default 50).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// A comma list of fields, `-` for descending (`"-created_at"`, `"industry,name"`).
    pub fn sort(self, sort: &str) -> Self {
        self.push("sort", sort)
    }

    pub fn include_deleted(self, yes: bool) -> Self {
        self.push("include_deleted", yes)
    }

    /// Free-text search over names, domains, emails.
    pub fn q(self, text: &str) -> Self {
        self.push("q", text)
    }

    pub fn count(self, count: Count) -> Self {
        self.push("count", count.as_str())
    }

    /// `field=value` (equality; `domain`, `email`, `tags` match any element).
    pub fn filter(self, field: &str, value: impl ToString) -> Self {
        self.push(field, value)
    }

    /// `field[op]=value`; `in` / `not_in` / `between` take comma lists, `exists` `true`/`false`.
    pub fn filter_op(self, field: &str, op: Op, value: impl ToString) -> Self {
        self.push(format!("{field}[{}]", op.name()), value)
    }

    /// The query pairs of the first page.
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = self.pairs.clone();
        if let Some(limit) = self.limit {
            pairs.push(("limit".into(), limit.to_string()));
        }
        pairs
    }

    /// The query pairs that continue at `cursor` (a v1 cursor carries its query).
    pub(crate) fn continuation(&self, cursor: String) -> Vec<(String, String)> {
        let mut pairs = vec![("cursor".to_owned(), cursor)];
        if let Some(limit) = self.limit {
            pairs.push(("limit".into(), limit.to_string()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tree the builder makes is one the server's own parser accepts, unchanged.
    #[test]
    fn built_filters_parse_on_the_server_side() {
        let f = Filter::field("industry")
            .eq("software")
            .and(Filter::field("employee_count").between(10, 500))
            .and(Filter::field("tags").is_in(["a", "b"]).or(Filter::field("domains").not_exists()).not());
        let json = f.to_json();
        let parsed = corral_core::filter::Filter::parse(&json).expect("server parses it");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), json);
        for op in Op::ALL {
            let leaf = Filter::field("x").op(op, Some(json!(1))).to_json();
            assert_eq!(leaf["operator"], op.name());
            corral_core::filter::Filter::parse(&leaf).expect("server parses every operator");
        }
    }

    #[test]
    fn queries_serialise_to_the_query_body() {
        let q = Query::new().filter(Filter::field("industry").eq("software")).sort_asc("display_name").limit(2);
        assert_eq!(
            serde_json::to_value(&q).unwrap(),
            json!({"filters": [{"field": "industry", "operator": "eq", "value": "software"}],
                   "sort": [{"field": "display_name", "direction": "asc"}], "limit": 2})
        );
        let next = serde_json::to_value(q.count(Count::Exact).continuation("c1".into())).unwrap();
        assert_eq!(next, json!({"limit": 2, "cursor": "c1"}));
        assert_eq!(Filter::field("a").exists().to_json(), json!({"field": "a", "operator": "exists"}));
    }

    #[test]
    fn list_params_become_query_pairs() {
        let p = ListParams::new().filter("industry", "software").filter_op("tags", Op::In, "a,b").limit(3);
        let pairs = p.pairs();
        assert!(pairs.contains(&("tags[in]".into(), "a,b".into())));
        assert!(pairs.contains(&("limit".into(), "3".into())));
        assert_eq!(p.continuation("c".into()), vec![("cursor".into(), "c".into()), ("limit".into(), "3".into())]);
    }
}
