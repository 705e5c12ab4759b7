//! Filter trees (docs/CONTRACT.md §7.4): the AST clients send, its limits, and its resolution against the
//! schema into typed conditions the store compiles to SQL with one recursive function.
//!
//! Semantics every backend (and the reference evaluator in the tests) follows:
//! - a comparison never matches a missing value, except `ne`, `not_in` and `not_exists`,
//!   which are the negations of `eq`, `in` and `exists`;
//! - text compares case-insensitively; `contains` / `starts_with` / `ends_with` are
//!   substring tests on the lower-cased text;
//! - on array attributes a condition holds when any element satisfies it, and `ne` /
//!   `not_in` hold when no element equals the value(s);
//! - a relationship field (`accounts.industry`, `contacts.primary_email`,
//!   `parent_account.industry`, `primary_account.industry`; docs/API.md "Filters across
//!   relationships") holds when ANY related record that is active and visible to the caller
//!   satisfies the condition on the related record's attribute; one hop only.

use crate::custom::TenantSchema;
use crate::error::{CoreError, CoreResult, ErrorCode};
use crate::ids::RecordType;
use crate::normalize;
use crate::schema::{FieldDef, ValueType, field_by_api_name, resolve_stage};
use crate::timestamp::Timestamp;
use crate::value::{Spec, Value, coerce_spec};
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Most nesting levels, nodes, and values in one `in` list.
pub const MAX_DEPTH: usize = 8;
pub const MAX_NODES: usize = 100;
pub const MAX_IN_VALUES: usize = 1_000;

/// The 14 operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    Exists,
    NotExists,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Eq,
        Op::Ne,
        Op::In,
        Op::NotIn,
        Op::Contains,
        Op::StartsWith,
        Op::EndsWith,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Between,
        Op::Exists,
        Op::NotExists,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Between => "between",
            Op::Exists => "exists",
            Op::NotExists => "not_exists",
        }
    }

    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// A filter tree as the client sent it (also what cursors carry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    And {
        and: Vec<Filter>,
    },
    Or {
        or: Vec<Filter>,
    },
    Not {
        not: Vec<Filter>,
    },
    Leaf {
        field: String,
        operator: String,
        #[serde(default, skip_serializing_if = "Json::is_null")]
        value: Json,
    },
}

fn bad_filter(reason: impl Into<String>) -> CoreError {
    CoreError::invalid_value("filters", reason)
}

impl Filter {
    /// Parses one node: `{"field", "operator", "value"}`, `{"and": [...]}`, `{"or": [...]}`
    /// or `{"not": node | [...]}`.
    pub fn parse(json: &Json) -> CoreResult<Filter> {
        let obj = json.as_object().ok_or_else(|| bad_filter("a filter is an object"))?;
        let list = |j: &Json| -> CoreResult<Vec<Filter>> {
            match j {
                Json::Array(items) => items.iter().map(Filter::parse).collect(),
                other => Ok(vec![Filter::parse(other)?]),
            }
        };
        if obj.len() == 1 {
            if let Some(j) = obj.get("and") {
                return Ok(Filter::And { and: list(j)? });
            }
            if let Some(j) = obj.get("or") {
                return Ok(Filter::Or { or: list(j)? });
            }
            if let Some(j) = obj.get("not") {
                return Ok(Filter::Not { not: list(j)? });
            }
        }
        if let Some(k) = obj.keys().find(|k| !["field", "operator", "value"].contains(&k.as_str())) {
            return Err(bad_filter(format!("unexpected key `{k}` in a filter")));
        }
        let field = obj.get("field").and_then(Json::as_str).ok_or_else(|| bad_filter("a condition needs a field"))?;
        let operator =
            obj.get("operator").and_then(Json::as_str).ok_or_else(|| bad_filter("a condition needs an operator"))?;
        Ok(Filter::Leaf {
            field: field.to_owned(),
            operator: operator.to_owned(),
            value: obj.get("value").cloned().unwrap_or(Json::Null),
        })
    }

    /// Checks depth, node count and `in` list sizes.
    pub fn check_limits(filters: &[Filter]) -> CoreResult<()> {
        fn walk(f: &Filter, depth: usize, nodes: &mut usize) -> CoreResult<()> {
            *nodes += 1;
            if depth > MAX_DEPTH {
                return Err(bad_filter(format!("filters nest at most {MAX_DEPTH} levels")));
            }
            if *nodes > MAX_NODES {
                return Err(bad_filter(format!("at most {MAX_NODES} filter nodes")));
            }
            match f {
                Filter::And { and: c } | Filter::Or { or: c } | Filter::Not { not: c } => {
                    c.iter().try_for_each(|x| walk(x, depth + 1, nodes))
                }
                Filter::Leaf { value, .. } => match value {
                    Json::Array(items) if items.len() > MAX_IN_VALUES => {
                        Err(bad_filter(format!("at most {MAX_IN_VALUES} values in a list")))
                    }
                    _ => Ok(()),
                },
            }
        }
        let mut nodes = 0;
        filters.iter().try_for_each(|f| walk(f, 1, &mut nodes))
    }
}

/// Where a condition's values live.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A scalar column.
    Column(&'static str),
    /// A JSON text array column (tags, websites): any element.
    List(&'static str),
    /// Any of the account's domains.
    Domains,
    /// Any of the contact's emails (matching keys).
    Emails,
    /// A custom attribute's value in the record's custom values (any element for arrays).
    Custom { name: String, is_array: bool },
}

/// What a list sorts by: a column, or a custom attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Column(&'static str),
    Custom { name: String, kind: Kind },
}

impl SortKey {
    pub fn is_id(&self) -> bool {
        *self == SortKey::Column("id")
    }
}

/// How values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Case-insensitive text.
    Text,
    /// Exact text (ids, api_names, normalised domains and email keys).
    Exact,
    Int,
    Real,
    Bool,
}

/// A resolved filter: typed conditions over columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp {
        target: Target,
        kind: Kind,
        op: Op,
        values: Vec<Value>,
    },
    /// Some related record (active, in the caller's tenant and app scope) satisfies `cond`,
    /// which is resolved against the related record type and never holds a `Related` itself.
    Related {
        relation: Relation,
        cond: Box<Cond>,
    },
}

/// A relationship a filter can follow, one hop (docs/API.md "Filters across relationships").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// A contact's linked accounts (any edge of `account_contacts`, primary or not).
    Accounts,
    /// A contact's primary account (`contacts.primary_account_id`, v1 `account_id`).
    PrimaryAccount,
    /// An account's linked contacts (any edge of `account_contacts`).
    Contacts,
    /// An account's parent account (`parent_account_id`).
    ParentAccount,
}

impl Relation {
    pub const ALL: [Relation; 4] =
        [Relation::Accounts, Relation::PrimaryAccount, Relation::Contacts, Relation::ParentAccount];

    /// The field prefix in v2 (`accounts.industry`).
    pub fn name(self) -> &'static str {
        match self {
            Relation::Accounts => "accounts",
            Relation::PrimaryAccount => "primary_account",
            Relation::Contacts => "contacts",
            Relation::ParentAccount => "parent_account",
        }
    }

    /// The field prefix in v1: the v1 reference field without `_id` for the to-one
    /// relations (`account_id` → `account.`), the relationship name for the to-many ones.
    pub fn v1_name(self) -> &'static str {
        match self {
            Relation::PrimaryAccount => "account",
            other => other.name(),
        }
    }

    /// The record type the relation starts from.
    pub fn source(self) -> RecordType {
        match self {
            Relation::Accounts | Relation::PrimaryAccount => RecordType::Contact,
            Relation::Contacts | Relation::ParentAccount => RecordType::Account,
        }
    }

    /// The record type the relation leads to.
    pub fn target(self) -> RecordType {
        match self {
            Relation::Accounts | Relation::PrimaryAccount | Relation::ParentAccount => RecordType::Account,
            Relation::Contacts => RecordType::Contact,
        }
    }

    /// The relations of `rt`.
    pub fn of(rt: RecordType) -> impl Iterator<Item = Relation> {
        Relation::ALL.into_iter().filter(move |r| r.source() == rt)
    }

    /// The relation of `rt` a field prefix names in `dialect`.
    pub fn parse(rt: RecordType, prefix: &str, v1: bool) -> Option<Relation> {
        Relation::of(rt).find(|r| if v1 { r.v1_name() == prefix } else { r.name() == prefix })
    }
}

/// The schemas a filter resolves against: its own record type's, and the other record
/// type's for relationship fields (accounts ↔ contacts). Without the other one, relationship
/// fields to it are unknown fields.
#[derive(Debug, Clone, Copy)]
pub struct Schemas<'a> {
    pub own: &'a TenantSchema,
    pub other: Option<&'a TenantSchema>,
}

impl<'a> Schemas<'a> {
    pub fn new(own: &'a TenantSchema, other: &'a TenantSchema) -> Self {
        Schemas { own, other: Some(other) }
    }

    /// The schema of record type `rt`, if known.
    pub fn of(&self, rt: RecordType) -> Option<&'a TenantSchema> {
        if self.own.record_type == rt { Some(self.own) } else { self.other.filter(|s| s.record_type == rt) }
    }
}

impl<'a> From<&'a TenantSchema> for Schemas<'a> {
    fn from(own: &'a TenantSchema) -> Self {
        Schemas { own, other: None }
    }
}

/// Splits a relationship field (`accounts.industry`) into its relation and the related
/// record's attribute; `None` when the field names no relation of `rt`. Two hops
/// (`accounts.contacts.title`) are `invalid_filter_field`: filters follow one relationship.
pub fn split_relation(rt: RecordType, field: &str, v1: bool) -> CoreResult<Option<(Relation, &str)>> {
    let Some((prefix, rest)) = field.split_once('.') else { return Ok(None) };
    let Some(relation) = Relation::parse(rt, prefix, v1) else { return Ok(None) };
    let hops = rest.split_once('.').map(|(p, _)| p);
    if hops.is_some_and(|p| Relation::parse(relation.target(), p, v1).is_some()) {
        return Err(CoreError::new(
            ErrorCode::InvalidFilterField,
            format!("`{field}` follows two relationships; filters follow one"),
        )
        .with("field", field));
    }
    Ok(Some((relation, rest)))
}

/// What a filterable attribute is: where its values live and how they compare.
struct Attribute {
    target: Target,
    kind: Kind,
    value_type: ValueType,
    is_array: bool,
}

fn kind_of(vt: ValueType) -> Kind {
    match vt {
        ValueType::Number | ValueType::Timestamp => Kind::Int,
        ValueType::Currency | ValueType::Percent => Kind::Real,
        ValueType::Boolean => Kind::Bool,
        ValueType::Stage | ValueType::Select | ValueType::Reference(_) | ValueType::Enum(_) => Kind::Exact,
        _ => Kind::Text,
    }
}

/// The column a field compares and sorts by (currency by its numeric shadow column).
pub fn compare_column(f: &FieldDef) -> &'static str {
    match f.value_type {
        ValueType::Currency => "annual_revenue_num",
        _ => f.column,
    }
}

/// Server-stamped v2 attributes that can be filtered and sorted, with their columns.
const META: &[(&str, &str, ValueType)] = &[
    ("id", "id", ValueType::Reference(RecordType::Account)),
    ("created_at", "created_at", ValueType::Timestamp),
    ("updated_at", "updated_at", ValueType::Timestamp),
    ("archived_at", "deleted_at", ValueType::Timestamp),
    ("version", "version", ValueType::Number),
    ("app_id", "app_id", ValueType::String),
];

/// How a custom attribute's values compare in filters and sorts (the store indexes it by
/// the same kind).
pub fn custom_kind(def: &crate::custom::CustomAttribute) -> Kind {
    match def.value_type {
        // Stored as canonical RFC 3339 / ISO dates: text order is time order.
        ValueType::Timestamp | ValueType::Date => Kind::Exact,
        vt if def.is_array && kind_of(vt) != Kind::Text => Kind::Exact,
        vt => kind_of(vt),
    }
}

fn attribute(rt: RecordType, name: &str, schema: &TenantSchema) -> Option<Attribute> {
    if let Some(def) = schema.custom(name) {
        let kind = custom_kind(def);
        let target = Target::Custom { name: def.api_name.clone(), is_array: def.is_array };
        return Some(Attribute { target, kind, value_type: def.value_type, is_array: def.is_array });
    }
    // The user directory has its own columns and no archive or app scope.
    if rt == RecordType::User {
        let (target, kind, value_type) = match name {
            "id" => (Target::Column("id"), Kind::Exact, ValueType::Reference(RecordType::User)),
            "email" => (Target::Column("email_key"), Kind::Text, ValueType::Email),
            "display_name" => (Target::Column("display_name"), Kind::Text, ValueType::String),
            "is_active" => (Target::Column("is_active"), Kind::Bool, ValueType::Boolean),
            "created_at" | "updated_at" => (
                Target::Column(if name == "created_at" { "created_at" } else { "updated_at" }),
                Kind::Int,
                ValueType::Timestamp,
            ),
            "version" => (Target::Column("version"), Kind::Int, ValueType::Number),
            _ => return None,
        };
        return Some(Attribute { target, kind, value_type, is_array: false });
    }
    if let Some((_, column, vt)) = META.iter().find(|(n, _, _)| *n == name) {
        // A record's own id is a reference to its own type (`con-…` on contacts).
        let vt = if name == "id" { ValueType::Reference(rt) } else { *vt };
        let kind = if name == "id" || name == "app_id" { Kind::Exact } else { kind_of(vt) };
        return Some(Attribute { target: Target::Column(column), kind, value_type: vt, is_array: false });
    }
    match (rt, name) {
        (RecordType::Account, "domains") => {
            return Some(Attribute {
                target: Target::Domains,
                kind: Kind::Exact,
                value_type: ValueType::String,
                is_array: true,
            });
        }
        (RecordType::Contact, "contact_emails") => {
            return Some(Attribute {
                target: Target::Emails,
                kind: Kind::Exact,
                value_type: ValueType::Email,
                is_array: true,
            });
        }
        (RecordType::Contact, "primary_email") => {
            return Some(Attribute {
                target: Target::Column("primary_email"),
                kind: Kind::Text,
                value_type: ValueType::Email,
                is_array: false,
            });
        }
        (RecordType::Contact, "primary_phone_number") => {
            return Some(Attribute {
                target: Target::Column("primary_phone"),
                kind: Kind::Text,
                value_type: ValueType::PhoneNumber,
                is_array: false,
            });
        }
        _ => {}
    }
    let (_, f) = field_by_api_name(rt, name)?;
    match (f.is_array, f.value_type) {
        (_, ValueType::Address) => None,
        (true, vt) => {
            Some(Attribute { target: Target::List(f.column), kind: Kind::Text, value_type: vt, is_array: true })
        }
        (false, vt) => Some(Attribute {
            target: Target::Column(compare_column(f)),
            kind: kind_of(vt),
            value_type: vt,
            is_array: false,
        }),
    }
}

/// The value type a filter on attribute `name` of `rt` compares (none when it cannot be
/// filtered).
pub fn value_type(rt: RecordType, name: &str, schema: &TenantSchema) -> Option<ValueType> {
    attribute(rt, name, schema).map(|a| a.value_type)
}

/// The operators an attribute of this shape accepts (what `_schema` lists).
/// The operators `_query` takes on attribute `name` of `rt` (none when it cannot be
/// filtered): `_schema` lists exactly these, so the two never disagree.
pub fn operators(rt: RecordType, name: &str, schema: &TenantSchema) -> &'static [&'static str] {
    attribute(rt, name, schema).map(|a| allowed(&a)).unwrap_or(&[])
}

fn allowed(a: &Attribute) -> &'static [&'static str] {
    let vt = match (a.target.clone(), a.value_type) {
        (Target::Domains, _) => "account_domain",
        (Target::Custom { is_array: true, .. }, _) => "string",
        (_, ValueType::Reference(_)) => "record_reference",
        (_, ValueType::Stage) => "account_stage",
        (_, vt) => vt.api_name(RecordType::Account),
    };
    crate::v2::filter_operators(vt)
}

/// A whole number spelled as a string in a filter (`"42"`): the OpenAPI document states this
/// pattern and [`whole_text`] checks it, so the two cannot drift.
pub const WHOLE_NUMBER_TEXT: &str = "^[+-]?[0-9]{1,18}$";
/// A decimal spelled as a string in a filter (`"1250.50"`), checked by [`decimal_text`].
pub const DECIMAL_TEXT: &str = "^[+-]?[0-9]{1,15}(\\.[0-9]{1,10})?$";
/// Largest magnitude a currency or percent filter value may have (what a write stores).
pub const MAX_DECIMAL_MAGNITUDE: f64 = 1e15;

/// Digits only, between `min` and `max` of them.
fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `s` matches [`WHOLE_NUMBER_TEXT`].
pub fn whole_text(s: &str) -> bool {
    digits(s.strip_prefix(['+', '-']).unwrap_or(s), 1, 18)
}

/// `s` matches [`DECIMAL_TEXT`].
pub fn decimal_text(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole, 1, 15) && digits(fraction, 1, 10),
        None => digits(unsigned, 1, 15),
    }
}

/// One value of a condition, typed for comparison. What each attribute type takes is what
/// the OpenAPI document's filter schemas state (a test probes every documented condition
/// shape against this function through `_query`): text of at most 1,000 characters without
/// NUL, options and enums by name, ids in either spelling, numbers in range.
fn typed(name: &str, label: &str, a: &Attribute, op: Op, json: &Json, schema: &TenantSchema) -> CoreResult<Value> {
    let bad = |r: &str| CoreError::invalid_value(label, r);
    if json.is_null() {
        return Err(bad("a value is required"));
    }
    // A substring operator takes a fragment of text, whatever the attribute's type: text and
    // domains / emails compare lower-cased, enums as stored.
    if matches!(op, Op::Contains | Op::StartsWith | Op::EndsWith) {
        let s = json.as_str().ok_or_else(|| bad("expected a string"))?;
        let s = normalize::bounded(s, normalize::MAX_STRING_CHARS).map_err(|r| bad(&r))?;
        return Ok(Value::Text(match (&a.target, a.kind) {
            (Target::Domains | Target::Emails, _) => s.trim().to_ascii_lowercase(),
            (_, Kind::Text) => s.to_ascii_lowercase(),
            _ => s,
        }));
    }
    let value = match (a.kind, json) {
        (Kind::Text, Json::String(s)) => {
            Value::Text(normalize::bounded(s, normalize::MAX_STRING_CHARS).map_err(|r| bad(&r))?.to_ascii_lowercase())
        }
        (Kind::Text, _) => return Err(bad("expected a string")),
        (Kind::Exact, Json::String(s)) => Value::Text(exact(name, a, s, schema).map_err(|r| bad(&r))?),
        (Kind::Exact, _) => return Err(bad("expected a string")),
        (Kind::Int, _) if a.value_type == ValueType::Timestamp => match json {
            Json::String(s) => {
                Value::Int(Timestamp::parse(s).ok_or_else(|| bad("expected an RFC 3339 timestamp"))?.millis())
            }
            _ => return Err(bad("expected an RFC 3339 timestamp")),
        },
        (Kind::Int, Json::Number(n)) => {
            Value::Int(crate::value::whole_number(n).ok_or_else(|| bad("expected a whole number"))?)
        }
        (Kind::Int, Json::String(s)) if whole_text(s) => {
            Value::Int(s.parse().map_err(|_| bad("expected a whole number"))?)
        }
        (Kind::Int, _) => return Err(bad("expected a whole number, or a string of at most 18 digits")),
        (Kind::Real, _) => {
            let amount = match json {
                Json::Object(o) if o.len() == 1 && o.contains_key("amount") => &o["amount"],
                Json::Object(_) => return Err(bad("an amount object takes `amount` only")),
                other => other,
            };
            match amount {
                Json::Number(n) if n.as_f64().is_some_and(|f| f.abs() <= MAX_DECIMAL_MAGNITUDE) => {}
                Json::Number(_) => return Err(bad("at most 10^15 in magnitude")),
                Json::String(s) if decimal_text(s) => {}
                _ => return Err(bad("expected a number, or a decimal string such as \"1250.50\"")),
            }
            let spec = Spec { name: label, value_type: ValueType::Percent, is_array: false, options: &[] };
            match coerce_spec(&spec, amount)? {
                Value::Decimal(d) => Value::Decimal(d),
                _ => return Err(bad("expected a number")),
            }
        }
        (Kind::Bool, Json::Bool(b)) => Value::Bool(*b),
        (Kind::Bool, _) => return Err(bad("expected true or false")),
    };
    Ok(value)
}

/// The comparison text of a string value of an exactly-compared attribute (`eq`, `in`, ranges).
fn exact(name: &str, a: &Attribute, s: &str, schema: &TenantSchema) -> Result<String, String> {
    let custom = matches!(a.target, Target::Custom { .. });
    Ok(match (&a.target, a.value_type) {
        (_, ValueType::Timestamp) if custom => {
            Timestamp::parse(s).ok_or("expected an RFC 3339 timestamp")?.to_rfc3339()
        }
        (_, ValueType::Select) if custom => {
            let def = schema.custom(name).ok_or("unknown attribute")?;
            resolve_stage(&def.options, s).ok_or("unknown option")?.api_name.clone()
        }
        (_, ValueType::Date) if custom => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(s, &format).map_err(|_| "expected a date as YYYY-MM-DD")?;
            s.to_owned()
        }
        // A domain (or a URL naming one), normalised as a write normalises it; an email is
        // not a domain here, although a URL's user part would be dropped.
        (Target::Domains, _) if s.contains('@') => return Err("expected a domain, not an email".into()),
        (Target::Domains, _) => normalize::domain(s)?,
        (Target::Emails, _) => normalize::email_key(normalize::bounded(s, normalize::MAX_STRING_CHARS)?.trim()),
        (_, ValueType::Stage) => resolve_stage(&schema.stages, s).ok_or("unknown stage")?.api_name.clone(),
        (_, ValueType::Enum(allowed)) => {
            if !allowed.contains(&s) {
                return Err(format!("must be one of: {}", allowed.join(", ")));
            }
            s.to_owned()
        }
        // Parsed like every id (trimmed; the target type's v1 prefix or none), so a filter
        // takes what the OpenAPI document's id pattern describes (found by schemathesis).
        (_, ValueType::Reference(target)) => crate::RecordId::parse(target, s).ok_or("expected an id")?.canonical(),
        _ => normalize::bounded(s, normalize::MAX_STRING_CHARS)?,
    })
}

/// Resolves a filter tree against the record type's schema: unknown fields are
/// `invalid_filter_field`, operators the attribute does not take `invalid_filter_operator`,
/// bad values `field_value_invalid`. Relationship fields resolve against the related record
/// type's schema (`schemas.other` for accounts ↔ contacts).
pub fn resolve<'a>(rt: RecordType, filter: &Filter, schemas: impl Into<Schemas<'a>>) -> CoreResult<Cond> {
    resolve_in(rt, filter, schemas.into())
}

fn resolve_in(rt: RecordType, filter: &Filter, schemas: Schemas<'_>) -> CoreResult<Cond> {
    let all = |nodes: &[Filter]| nodes.iter().map(|f| resolve_in(rt, f, schemas)).collect::<CoreResult<Vec<_>>>();
    Ok(match filter {
        Filter::And { and } => Cond::And(all(and)?),
        Filter::Or { or } => Cond::Or(all(or)?),
        Filter::Not { not } => Cond::Not(Box::new(Cond::And(all(not)?))),
        Filter::Leaf { field, operator, value } => match split_relation(rt, field, false)? {
            Some((relation, name)) => {
                let schema = related_schema(relation, field, schemas)?;
                let cond = resolve_leaf(relation.target(), name, field, operator, value, schema)?;
                Cond::Related { relation, cond: Box::new(cond) }
            }
            None => resolve_leaf(rt, field, field, operator, value, schemas.own)?,
        },
    })
}

/// The schema a relationship field resolves against.
pub fn related_schema<'a>(relation: Relation, field: &str, schemas: Schemas<'a>) -> CoreResult<&'a TenantSchema> {
    schemas.of(relation.target()).ok_or_else(|| unknown_field(field, relation.source()))
}

fn unknown_field(field: &str, rt: RecordType) -> CoreError {
    CoreError::new(ErrorCode::InvalidFilterField, format!("`{field}` cannot be filtered on {rt}")).with("field", field)
}

/// One condition on attribute `name` of `rt`; errors name the field as the client wrote it
/// (`label`, e.g. `accounts.industry`).
pub fn resolve_leaf(
    rt: RecordType,
    name: &str,
    label: &str,
    operator: &str,
    value: &Json,
    schema: &TenantSchema,
) -> CoreResult<Cond> {
    let a = attribute(rt, name, schema).ok_or_else(|| unknown_field(label, rt))?;
    let op = Op::parse(operator).filter(|op| allowed(&a).contains(&op.name())).ok_or_else(|| {
        CoreError::new(ErrorCode::InvalidFilterOperator, format!("operator `{operator}` does not apply to `{label}`"))
            .with("field", label)
            .with("operator", operator)
            .with("allowed", allowed(&a).to_vec())
    })?;
    let one = |v: &Json| typed(name, label, &a, op, v, schema);
    let values = match op {
        Op::Exists | Op::NotExists => {
            if !value.is_null() {
                return Err(CoreError::invalid_value(label, "exists and not_exists take no value"));
            }
            Vec::new()
        }
        Op::In | Op::NotIn => {
            let items = value
                .as_array()
                .filter(|i| !i.is_empty())
                .ok_or_else(|| CoreError::invalid_value(label, "expected a non-empty array"))?;
            items.iter().map(one).collect::<CoreResult<_>>()?
        }
        Op::Between => {
            let pair = value
                .as_array()
                .filter(|i| i.len() == 2)
                .ok_or_else(|| CoreError::invalid_value(label, "between takes [low, high]"))?;
            pair.iter().map(one).collect::<CoreResult<_>>()?
        }
        _ => vec![one(value)?],
    };
    Ok(Cond::Cmp { target: a.target, kind: a.kind, op, values })
}

/// What a v2 attribute sorts by, if it is sortable.
pub fn sort_key(rt: RecordType, name: &str, schema: &TenantSchema) -> Option<SortKey> {
    let a = attribute(rt, name, schema)?;
    match a.target {
        Target::Column(c) if !a.is_array => {
            let sortable = field_by_api_name(rt, name).is_none_or(|(_, f)| f.sortable);
            sortable.then_some(SortKey::Column(c))
        }
        Target::Custom { name, is_array: false } if a.value_type != ValueType::LongText => {
            Some(SortKey::Custom { name, kind: a.kind })
        }
        _ => None,
    }
}

/// Decimal values compare as floating point against the numeric shadow columns.
pub fn real(v: &Value) -> Option<f64> {
    match v {
        Value::Decimal(d) => d.to_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> TenantSchema {
        TenantSchema::builtin("t", RecordType::Account)
    }

    fn resolve_json(j: Json) -> CoreResult<Cond> {
        resolve(RecordType::Account, &Filter::parse(&j)?, &schema())
    }

    #[test]
    fn trees_parse_and_round_trip_through_json() {
        let j = json!({"or": [{"field": "employee_count", "operator": "gte", "value": 500}, {"not": {"field": "tags", "operator": "in", "value": ["partner"]}}]});
        let f = Filter::parse(&j).unwrap();
        let back: Filter = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(matches!(resolve_json(j).unwrap(), Cond::Or(_)));
    }

    #[test]
    fn errors_have_the_spec_codes() {
        let code = |j: Json| resolve_json(j).unwrap_err().code;
        assert_eq!(code(json!({"field": "nope", "operator": "eq", "value": 1})), ErrorCode::InvalidFilterField);
        assert_eq!(code(json!({"field": "address", "operator": "eq", "value": "x"})), ErrorCode::InvalidFilterField);
        assert_eq!(
            code(json!({"field": "industry", "operator": "gt", "value": "x"})),
            ErrorCode::InvalidFilterOperator
        );
        assert_eq!(
            code(json!({"field": "industry", "operator": "like", "value": "x"})),
            ErrorCode::InvalidFilterOperator
        );
        assert_eq!(
            code(json!({"field": "employee_count", "operator": "eq", "value": "many"})),
            ErrorCode::FieldValueInvalid
        );
        assert_eq!(
            code(json!({"field": "industry", "operator": "exists", "value": "x"})),
            ErrorCode::FieldValueInvalid
        );
        assert_eq!(
            code(json!({"field": "employee_count", "operator": "between", "value": [1]})),
            ErrorCode::FieldValueInvalid
        );
        assert_eq!(
            code(json!({"field": "industry", "operator": "between", "value": ["a", "b"]})),
            ErrorCode::InvalidFilterOperator
        );
        assert_eq!(
            code(json!({"field": "current_stage_id", "operator": "eq", "value": "married"})),
            ErrorCode::FieldValueInvalid
        );
    }

    #[test]
    fn values_are_held_to_their_documented_spellings() {
        let ok = |j: Json| resolve_json(j.clone()).unwrap_or_else(|e| panic!("{j}: {e:?}"));
        let refused = |j: Json| assert!(resolve_json(j.clone()).is_err(), "{j} was accepted");
        let leaf = |field: &str, op: &str, value: Json| json!({"field": field, "operator": op, "value": value});
        // Numbers spelled as strings: the exact patterns the OpenAPI document states.
        ok(leaf("employee_count", "eq", json!("-42")));
        ok(leaf("employee_count", "eq", json!("+42")));
        refused(leaf("employee_count", "eq", json!(" 42")));
        refused(leaf("employee_count", "eq", json!("1234567890123456789")));
        ok(leaf("estimated_annual_revenue", "gt", json!("1250.50")));
        ok(leaf("estimated_annual_revenue", "gt", json!({"amount": 10})));
        ok(leaf("estimated_annual_revenue", "gt", json!(-1e15)));
        refused(leaf("estimated_annual_revenue", "gt", json!(-1_000_000_000_000_001.0)));
        refused(leaf("estimated_annual_revenue", "gt", json!("1e3")));
        refused(leaf("estimated_annual_revenue", "gt", json!({"amount": 10, "x": 1})));
        // Enums by value; text of every kind bounded; a fragment is any text.
        ok(leaf("source_type", "eq", json!("api")));
        refused(leaf("source_type", "eq", json!("API")));
        ok(leaf("source_type", "contains", json!("AP")));
        refused(leaf("app_id", "eq", json!("a\u{0}b")));
        refused(leaf("industry", "contains", json!("x".repeat(1_001))));
        // Domains: not an email; ids: the record type's own v1 prefix.
        refused(leaf("domains", "eq", json!("jo@acme.com")));
        ok(leaf("domains", "contains", json!("@acme")));
        let id = "0b6d3c38-7f0e-4f4b-9a51-6c6f0d1c2e3a";
        ok(leaf("id", "eq", json!(format!("acc-{id}"))));
        refused(leaf("id", "eq", json!(format!("con-{id}"))));
        let contact = TenantSchema::builtin("t", RecordType::Contact);
        let parsed = Filter::parse(&leaf("id", "eq", json!(format!("con-{id}")))).unwrap();
        assert!(resolve(RecordType::Contact, &parsed, &contact).is_ok(), "a contact's id takes con-");
    }

    #[test]
    fn relationship_fields_resolve_against_the_related_schema_one_hop() {
        let accounts = schema();
        let contacts = TenantSchema::builtin("t", RecordType::Contact);
        let on = |rt: RecordType, j: Json| {
            let (own, other) = if rt == RecordType::Account { (&accounts, &contacts) } else { (&contacts, &accounts) };
            resolve(rt, &Filter::parse(&j).unwrap(), Schemas::new(own, other))
        };
        let leaf = |field: &str, op: &str| json!({"field": field, "operator": op, "value": "x"});
        let c = on(RecordType::Contact, leaf("accounts.industry", "eq")).unwrap();
        assert!(matches!(c, Cond::Related { relation: Relation::Accounts, ref cond }
            if matches!(**cond, Cond::Cmp { target: Target::Column("industry"), .. })));
        assert!(matches!(
            on(RecordType::Account, leaf("contacts.title", "contains")).unwrap(),
            Cond::Related { relation: Relation::Contacts, .. }
        ));
        assert!(matches!(
            on(RecordType::Account, leaf("parent_account.industry", "eq")).unwrap(),
            Cond::Related { relation: Relation::ParentAccount, .. }
        ));
        let code = |rt, j| on(rt, j).unwrap_err().code;
        for (rt, field) in [
            (RecordType::Contact, "accounts.contacts.title"),
            (RecordType::Contact, "accounts.nope"),
            (RecordType::Contact, "contacts.title"),
            (RecordType::Account, "parent_account.parent_account.industry"),
        ] {
            assert_eq!(code(rt, leaf(field, "eq")), ErrorCode::InvalidFilterField, "{field}");
        }
        assert_eq!(code(RecordType::Contact, leaf("accounts.industry", "gt")), ErrorCode::InvalidFilterOperator);
        // Without the other type's schema, its fields cannot be resolved.
        let alone = resolve(RecordType::Contact, &Filter::parse(&leaf("accounts.industry", "eq")).unwrap(), &contacts);
        assert_eq!(alone.unwrap_err().code, ErrorCode::InvalidFilterField);
    }

    #[test]
    fn limits_are_enforced() {
        let mut deep = json!({"field": "industry", "operator": "eq", "value": "x"});
        for _ in 0..8 {
            deep = json!({"and": [deep]});
        }
        assert!(Filter::check_limits(&[Filter::parse(&deep).unwrap()]).is_err());
        let wide: Vec<Filter> = (0..101)
            .map(|_| Filter::parse(&json!({"field": "industry", "operator": "eq", "value": "x"})).unwrap())
            .collect();
        assert!(Filter::check_limits(&wide).is_err());
        let many = Filter::parse(&json!({"field": "industry", "operator": "in", "value": vec!["x"; 1001]})).unwrap();
        assert!(Filter::check_limits(&[many]).is_err());
    }
}
