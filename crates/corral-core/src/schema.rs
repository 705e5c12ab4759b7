//! The built-in schema registry: every attribute of every record type, with its names in both
//! dialects, its value type, its storage column and what callers may do with it.
//!
//! Validation, both dialects' codecs, the store's column lists, filters and sorts all read
//! these tables, so a field is described exactly once. Per-tenant custom attributes and
//! stage edits (docs/CONTRACT.md §6) layer on top of this in a later step.

use crate::ids::{RecordId, RecordType, derived_id};

/// How a value is typed (docs/CONTRACT.md §4, §7). `is_array` lives on the field, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// ≤ 1 000 characters.
    String,
    /// ≤ 100 000 characters.
    LongText,
    Url,
    PhoneNumber,
    Email,
    /// An integer ≥ 0.
    Number,
    /// An exact decimal amount in USD.
    Currency,
    Boolean,
    Timestamp,
    /// One of a fixed list of strings.
    Enum(&'static [&'static str]),
    /// A stage of the record type's stage list, stored by api_name.
    Stage,
    /// An id of a record of the given type.
    Reference(RecordType),
    /// A decimal number (custom attributes).
    Percent,
    /// A calendar date, `YYYY-MM-DD` (custom attributes).
    Date,
    /// One of the attribute's own options, stored by api_name (custom attributes).
    Select,
    /// `{label?, street_one, street_two, city, state, country, zip_code}`.
    Address,
}

impl ValueType {
    /// The v2 `value_type` name.
    pub fn api_name(self, record_type: RecordType) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Enum(_) => "enum",
            ValueType::LongText => "long_text",
            ValueType::Url => "url",
            ValueType::PhoneNumber => "phone_number",
            ValueType::Email => "email",
            ValueType::Number => "number",
            ValueType::Currency => "currency",
            ValueType::Boolean => "boolean",
            ValueType::Timestamp => "timestamp",
            ValueType::Stage => match record_type {
                RecordType::Contact => "contact_stage",
                _ => "account_stage",
            },
            ValueType::Reference(_) => "record_reference",
            ValueType::Address => "address",
            ValueType::Percent => "percent",
            ValueType::Date => "date",
            ValueType::Select => "select",
        }
    }
}

/// `source_type` values (docs/CONTRACT.md §4.1).
pub const SOURCE_TYPES: &[&str] = &["frontend", "backend", "server", "system", "api"];

/// A client-writable field of a record type.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    /// The v2 attribute name.
    pub api_name: &'static str,
    /// The v1 document field name.
    pub v1_name: &'static str,
    pub display_name: &'static str,
    pub value_type: ValueType,
    pub is_array: bool,
    /// The storage column. Currency also has `<column>_num` for comparisons and sorting.
    pub column: &'static str,
    /// Value given on create (and by a v1 PUT) when the client sends none.
    pub default: Option<&'static str>,
    pub sortable: bool,
}

const fn field(
    api_name: &'static str,
    v1_name: &'static str,
    display_name: &'static str,
    value_type: ValueType,
) -> FieldDef {
    FieldDef {
        api_name,
        v1_name,
        display_name,
        value_type,
        is_array: false,
        column: v1_name,
        default: None,
        sortable: !matches!(value_type, ValueType::LongText | ValueType::Address),
    }
}

const fn array(mut f: FieldDef) -> FieldDef {
    f.is_array = true;
    f.sortable = false;
    f
}

const fn with_default(mut f: FieldDef, default: &'static str) -> FieldDef {
    f.default = Some(default);
    f
}

use ValueType as T;

/// Client-writable fields common to every record type.
const SOURCE: FieldDef = with_default(field("source", "source", "Source", T::String), "edm");
const SOURCE_TYPE: FieldDef =
    with_default(field("source_type", "source_type", "Source type", T::Enum(SOURCE_TYPES)), "api");

/// Index of the account name (`name` / `display_name`) in [`ACCOUNT_FIELDS`].
pub const ACCOUNT_NAME: usize = 2;

/// The account's writable fields (docs/CONTRACT.md §4.2), in v2 attribute order. Domains are managed
/// separately (they are a sub-resource with their own uniqueness rule).
pub static ACCOUNT_FIELDS: &[FieldDef] = &[
    SOURCE,
    SOURCE_TYPE,
    field("display_name", "name", "Name", T::String),
    field("legal_name", "legal_name", "Legal name", T::String),
    field("industry", "industry", "Industry", T::String),
    field("sub_industry", "sub_industry", "Sub-industry", T::String),
    FieldDef { column: "website", ..field("official_website", "website", "Official website", T::Url) },
    array(field("websites", "websites", "Websites", T::Url)),
    field("phone", "phone", "Phone", T::PhoneNumber),
    field("linkedin_url", "linkedin_url", "LinkedIn URL", T::Url),
    field("x_url", "x_url", "X URL", T::Url),
    field("facebook_url", "facebook_url", "Facebook URL", T::Url),
    field("zoominfo_url", "zoominfo_url", "ZoomInfo URL", T::Url),
    array(field("address", "addresses", "Addresses", T::Address)),
    field("estimated_annual_revenue", "annual_revenue", "Estimated annual revenue", T::Currency),
    field("employee_count", "employee_count", "Employee count", T::Number),
    field("current_stage_id", "lifecycle_stage", "Lifecycle stage", T::Stage),
    field("lead_source", "lead_source", "Lead source", T::String),
    field("health_score", "health_score", "Health score", T::String),
    field("owner_user_id", "owner_id", "Owner", T::Reference(RecordType::User)),
    field("parent_account_id", "parent_account_id", "Parent account", T::Reference(RecordType::Account)),
    field("description", "description", "Description", T::LongText),
    field("last_activity_at", "last_activity_at", "Last activity at", T::Timestamp),
    field("first_contacted_at", "first_contacted_at", "First contacted at", T::Timestamp),
    array(field("tags", "tags", "Tags", T::String)),
];

/// Index of the contact fields the display name is computed from, in [`CONTACT_FIELDS`].
pub const CONTACT_FIRST_NAME: usize = 2;
pub const CONTACT_LAST_NAME: usize = 3;
pub const CONTACT_DISPLAY_NAME: usize = 5;

/// The contact's writable fields (docs/CONTRACT.md §4.3), in v2 attribute order. Emails, phone numbers
/// and the primary account are managed separately (items with one primary; an edge).
pub static CONTACT_FIELDS: &[FieldDef] = &[
    SOURCE,
    SOURCE_TYPE,
    field("first_name", "first_name", "First name", T::String),
    field("last_name", "last_name", "Last name", T::String),
    field("middle_name", "middle_name", "Middle name", T::String),
    field("display_name", "display_name", "Name", T::String),
    FieldDef { column: "job_title", ..field("title", "job_title", "Title", T::String) },
    field("department", "department", "Department", T::String),
    field("seniority", "seniority", "Seniority", T::String),
    field("decision_role", "decision_role", "Decision role", T::String),
    field("stage", "stage", "Stage", T::Stage),
    field("owner_user_id", "owner_id", "Owner", T::Reference(RecordType::User)),
    field("linkedin_url", "linkedin_url", "LinkedIn URL", T::Url),
    field("reports_to_contact_id", "reports_to_contact_id", "Reports to", T::Reference(RecordType::Contact)),
    field("last_interaction_at", "last_interaction_at", "Last interaction at", T::Timestamp),
    field("opted_in", "opted_in", "Opted in", T::Boolean),
    field("opted_in_at", "opted_in_at", "Opted in at", T::Timestamp),
    field("address", "address", "Address", T::Address),
    array(field("tags", "tags", "Tags", T::String)),
];

/// The writable fields of a record type.
pub fn fields(record_type: RecordType) -> &'static [FieldDef] {
    match record_type {
        RecordType::Account => ACCOUNT_FIELDS,
        RecordType::Contact => CONTACT_FIELDS,
        // Users are a directory (crate `corral-store`'s `users`), not field-driven records.
        RecordType::User => &[],
    }
}

/// Looks a field up by its v1 name.
pub fn field_by_v1_name(record_type: RecordType, name: &str) -> Option<(usize, &'static FieldDef)> {
    fields(record_type).iter().enumerate().find(|(_, f)| f.v1_name == name)
}

/// Looks a field up by its v2 attribute name.
pub fn field_by_api_name(record_type: RecordType, name: &str) -> Option<(usize, &'static FieldDef)> {
    fields(record_type).iter().enumerate().find(|(_, f)| f.api_name == name)
}

/// A server-stamped v2 attribute every record has: (api_name, display name, value_type).
pub static V2_META_ATTRIBUTES: &[(&str, &str, &str)] = &[
    ("id", "ID", "uuid"),
    ("organization_id", "Organization", "uuid"),
    ("app_id", "App", "string"),
    ("created_at", "Created at", "timestamp"),
    ("updated_at", "Updated at", "timestamp"),
    ("created_by_user_id", "Created by", "record_reference"),
    ("updated_by_user_id", "Updated by", "record_reference"),
    ("archived_at", "Archived at", "timestamp"),
    ("archived_by_user_id", "Archived by", "record_reference"),
    ("schema_version", "Schema version", "number"),
    ("version", "Version", "number"),
];

/// Server-stamped columns every record has, by v1 name, with whether they sort.
pub static META_COLUMNS: &[(&str, &str, bool)] = &[
    // (v1 name, column, sortable)
    ("id", "id", true),
    ("created_at", "created_at", true),
    ("updated_at", "updated_at", true),
    ("deleted_at", "deleted_at", true),
    ("version", "version", true),
    ("app_id", "app_id", true),
    ("created_by", "created_by", true),
    ("updated_by", "updated_by", true),
];

/// One stage of a stage list (docs/CONTRACT.md §4.2, §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub id: RecordId,
    pub api_name: String,
    pub display_value: String,
    pub color: String,
}

const ACCOUNT_STAGES: &[(&str, &str, &str)] = &[
    ("prospect", "Prospect", "#94a3b8"),
    ("target_account", "Target account", "#60a5fa"),
    ("engaged", "Engaged", "#a78bfa"),
    ("opportunity", "Opportunity", "#f59e0b"),
    ("customer", "Customer", "#22c55e"),
    ("churned", "Churned", "#ef4444"),
];

const CONTACT_STAGES: &[(&str, &str, &str)] = &[
    ("new", "New", "#94a3b8"),
    ("working", "Working", "#60a5fa"),
    ("qualified", "Qualified", "#22c55e"),
    ("customer", "Customer", "#16a34a"),
    ("unqualified", "Unqualified", "#ef4444"),
];

/// The default stage list of a record type in a tenant. Stage ids are derived from
/// (tenant, record type, api_name), so they are stable without being stored.
pub fn default_stages(tenant: &str, record_type: RecordType) -> Vec<Stage> {
    let table = match record_type {
        RecordType::Account => ACCOUNT_STAGES,
        RecordType::Contact => CONTACT_STAGES,
        RecordType::User => &[],
    };
    table
        .iter()
        .map(|(api_name, display, color)| Stage {
            id: derived_id(&["stage", tenant, record_type.api_name(), api_name]),
            api_name: (*api_name).to_owned(),
            display_value: (*display).to_owned(),
            color: (*color).to_owned(),
        })
        .collect()
}

/// Finds a stage by api_name, id (any spelling) or display value (case-insensitive).
pub fn resolve_stage<'a>(stages: &'a [Stage], input: &str) -> Option<&'a Stage> {
    let input = input.trim();
    stages
        .iter()
        .find(|s| s.api_name == input)
        .or_else(|| uuid::Uuid::try_parse(input).ok().and_then(|u| stages.iter().find(|s| s.id.0 == u)))
        .or_else(|| stages.iter().find(|s| s.display_value.eq_ignore_ascii_case(input)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_unique_in_both_dialects() {
        for rt in RecordType::ALL {
            let fs = fields(rt);
            for (i, a) in fs.iter().enumerate() {
                for b in &fs[i + 1..] {
                    assert_ne!(a.api_name, b.api_name);
                    assert_ne!(a.v1_name, b.v1_name);
                    assert_ne!(a.column, b.column);
                }
                assert!(!META_COLUMNS.iter().any(|(v1, _, _)| *v1 == a.v1_name));
            }
        }
        assert_eq!(ACCOUNT_FIELDS[ACCOUNT_NAME].v1_name, "name");
        assert_eq!(CONTACT_FIELDS[CONTACT_FIRST_NAME].v1_name, "first_name");
        assert_eq!(CONTACT_FIELDS[CONTACT_LAST_NAME].v1_name, "last_name");
        assert_eq!(CONTACT_FIELDS[CONTACT_DISPLAY_NAME].v1_name, "display_name");
    }

    #[test]
    fn stages_resolve_by_api_name_id_or_display_value() {
        let stages = default_stages("t1", RecordType::Account);
        let target = &stages[1];
        assert_eq!(resolve_stage(&stages, "target_account"), Some(target));
        assert_eq!(resolve_stage(&stages, &target.id.canonical()), Some(target));
        assert_eq!(resolve_stage(&stages, "target ACCOUNT"), Some(target));
        assert_eq!(resolve_stage(&stages, "nope"), None);
        assert_ne!(default_stages("t2", RecordType::Account)[1].id, target.id);
    }
}
