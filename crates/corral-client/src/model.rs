//! The values the API sends and takes, as typed structs.
//!
//! - v1 documents ([`Account`], [`Contact`]): every built-in field typed, a tenant's custom
//!   attributes in [`custom_fields`](Account::custom_fields), and any field this client does
//!   not know yet kept in `extra` (serde `flatten`), so a document read with an older client
//!   and sent back loses nothing. Every field is skipped when serialising while it is unset,
//!   so `Account { name: Some(..), ..Default::default() }` is a create body, and a document
//!   read back is a PUT body (server-stamped fields are ignored; its `version` is a
//!   precondition). To *clear* fields in a PATCH, use [`Patch`](crate::Patch).
//! - v2 records ([`RecordV2`]): attribute envelopes (`{"value_type", "value"}`), read through
//!   helpers, since which attributes exist depends on the tenant's schema.
//! - Sub-resource items, relationship edges, pages and assert outcomes.
//!
//! Timestamps are kept as the RFC 3339 text the server sends (it sorts chronologically);
//! currency amounts as JSON numbers (v1) or `{"amount": "<decimal>", "currency_code"}` (v2).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `null` read as the type's default (an empty list or map).
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A postal address (v1 `addresses` items, contact `address`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_one: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_two: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
}

/// Generates a v1 document struct: the server-stamped fields every document has, the
/// record type's own fields, `custom_fields` and `extra`.
macro_rules! document {
    (
        $(#[$doc:meta])*
        $name:ident, $collection:literal, $record_type:literal {
            $($(#[$fdoc:meta])* $field:ident : $ty:ty = $skip:literal,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// `acc-…` / `con-…`; every route also takes the bare UUID.
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub id: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub tenant_id: String,
            /// The app that created the record, for app-scoped keys and tokens.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub app_id: Option<String>,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub created_at: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub updated_at: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub created_by: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub updated_by: String,
            /// Archived (DELETE without purge).
            #[serde(default, skip_serializing_if = "is_false")]
            pub is_deleted: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub deleted_at: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub deleted_by: Option<String>,
            #[serde(default, skip_serializing_if = "is_zero")]
            pub schema_version: i64,
            /// Moves by one with every change; pass it as `if_match` to update safely. Sent
            /// in a body it is a precondition, like `If-Match`.
            #[serde(default, skip_serializing_if = "is_zero")]
            pub version: i64,
            $($(#[$fdoc])* #[serde(default, deserialize_with = "null_default", skip_serializing_if = $skip)] pub $field: $ty,)*
            /// The tenant's custom attributes that have a value (by api_name).
            #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Map::is_empty")]
            pub custom_fields: Map<String, Value>,
            /// Fields this client does not know (a newer server's), kept for round trips.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        impl crate::records::Document for $name {
            const COLLECTION: &'static str = $collection;
            const RECORD_TYPE: &'static str = $record_type;
        }

        impl $name {
            /// A custom attribute's value, if it has one.
            pub fn custom_field(&self, api_name: &str) -> Option<&Value> {
                self.custom_fields.get(api_name).filter(|v| !v.is_null())
            }
        }
    };
}

document! {
    /// An account as a v1 document (`/api/v1/crm/accounts`).
    Account, "accounts", "account" {
        /// Defaults to `edm`.
        source: Option<String> = "Option::is_none",
        /// `frontend`, `backend`, `server`, `system` or `api` (the default).
        source_type: Option<String> = "Option::is_none",
        /// Required on create (or a `domain`, which then names it).
        name: Option<String> = "Option::is_none",
        legal_name: Option<String> = "Option::is_none",
        industry: Option<String> = "Option::is_none",
        sub_industry: Option<String> = "Option::is_none",
        website: Option<String> = "Option::is_none",
        websites: Vec<String> = "Vec::is_empty",
        phone: Option<String> = "Option::is_none",
        linkedin_url: Option<String> = "Option::is_none",
        x_url: Option<String> = "Option::is_none",
        facebook_url: Option<String> = "Option::is_none",
        zoominfo_url: Option<String> = "Option::is_none",
        addresses: Vec<Address> = "Vec::is_empty",
        /// USD, an exact decimal on the server.
        annual_revenue: Option<serde_json::Number> = "Option::is_none",
        employee_count: Option<i64> = "Option::is_none",
        /// A stage api_name (`prospect`, `engaged`, …); writes also take its id or display value.
        lifecycle_stage: Option<String> = "Option::is_none",
        lead_source: Option<String> = "Option::is_none",
        health_score: Option<String> = "Option::is_none",
        /// `usr-…`
        owner_id: Option<String> = "Option::is_none",
        /// `acc-…`
        parent_account_id: Option<String> = "Option::is_none",
        description: Option<String> = "Option::is_none",
        last_activity_at: Option<String> = "Option::is_none",
        first_contacted_at: Option<String> = "Option::is_none",
        tags: Vec<String> = "Vec::is_empty",
        /// The primary domain; written normalised (`https://www.Acme.com/` → `acme.com`).
        domain: Option<String> = "Option::is_none",
        /// Every domain of the account (read-only; use [`Records::domains`](crate::Records::domains)).
        domains: Vec<String> = "Vec::is_empty",
    }
}

document! {
    /// A contact as a v1 document (`/api/v1/crm/contacts`).
    Contact, "contacts", "contact" {
        source: Option<String> = "Option::is_none",
        source_type: Option<String> = "Option::is_none",
        first_name: Option<String> = "Option::is_none",
        last_name: Option<String> = "Option::is_none",
        middle_name: Option<String> = "Option::is_none",
        /// Follows first + last name unless set to something else.
        display_name: Option<String> = "Option::is_none",
        job_title: Option<String> = "Option::is_none",
        department: Option<String> = "Option::is_none",
        seniority: Option<String> = "Option::is_none",
        decision_role: Option<String> = "Option::is_none",
        /// A stage api_name (`new`, `working`, …).
        stage: Option<String> = "Option::is_none",
        owner_id: Option<String> = "Option::is_none",
        linkedin_url: Option<String> = "Option::is_none",
        reports_to_contact_id: Option<String> = "Option::is_none",
        last_interaction_at: Option<String> = "Option::is_none",
        opted_in: Option<bool> = "Option::is_none",
        opted_in_at: Option<String> = "Option::is_none",
        address: Option<Address> = "Option::is_none",
        tags: Vec<String> = "Vec::is_empty",
        /// The primary email (unique per tenant, case-insensitively).
        email: Option<String> = "Option::is_none",
        /// The primary phone number.
        phone: Option<String> = "Option::is_none",
        /// The primary account (`acc-…`).
        account_id: Option<String> = "Option::is_none",
    }
}

/// One page of a list or query.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Continues the same list or query; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The number of matches, when the request asked for a [`Count`](crate::Count).
    pub total: Option<i64>,
    /// Whether `total` is an estimate (or a lower bound).
    pub total_is_estimate: Option<bool>,
}

impl<T> Page<T> {
    pub fn has_more(&self) -> bool {
        self.next_cursor.is_some()
    }
}

/// `{"value_type": T, "value": V}`: one v2 attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub value_type: String,
    #[serde(default)]
    pub value: Value,
}

/// A v2 attribute: one envelope, or a list of them for array attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Many(Vec<Envelope>),
    One(Envelope),
}

impl AttributeValue {
    /// The envelopes: one for a single attribute, every element of an array.
    pub fn envelopes(&self) -> &[Envelope] {
        match self {
            AttributeValue::Many(items) => items,
            AttributeValue::One(one) => std::slice::from_ref(one),
        }
    }
}

/// A v2 typed record (`/api/v2/{account|contact|user}`): attribute envelopes by api_name.
/// Built-in attributes use the v2 names (`display_name`, `current_stage_id`,
/// `domains`, `primary_email`, …); custom attributes appear under their api_name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordV2 {
    /// The bare UUID.
    pub id: String,
    pub record_type: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RecordV2 {
    /// An attribute as sent.
    pub fn attribute(&self, name: &str) -> Option<&AttributeValue> {
        self.attributes.get(name)
    }

    /// The non-null value of a single-valued attribute.
    pub fn value(&self, name: &str) -> Option<&Value> {
        match self.attributes.get(name)? {
            AttributeValue::One(e) if !e.value.is_null() => Some(&e.value),
            _ => None,
        }
    }

    /// The value of a single-valued text attribute.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.value(name).and_then(Value::as_str)
    }

    /// The values of an attribute: every element of an array, or the one value.
    pub fn values(&self, name: &str) -> Vec<&Value> {
        self.attributes
            .get(name)
            .map(|a| a.envelopes().iter().map(|e| &e.value).filter(|v| !v.is_null()).collect())
            .unwrap_or_default()
    }

    /// A single value decoded as `T`; `None` when absent, null or of another shape.
    pub fn get<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.value(name).and_then(|v| T::deserialize(v).ok())
    }

    /// The record's `version` (for `If-Match`).
    pub fn version(&self) -> Option<i64> {
        self.value("version").and_then(Value::as_i64)
    }

    /// Whether the record is archived.
    pub fn is_archived(&self) -> bool {
        self.value("archived_at").is_some()
    }

    /// An account's domain names, primary first as the server orders them.
    pub fn domain_names(&self) -> Vec<&str> {
        self.values("domains").into_iter().filter_map(|d| d["domain_name"].as_str()).collect()
    }
}

/// Whether `_assert` created the record or updated the one its match keys found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertOutcome {
    Created,
    Updated,
}

/// The answer to `_assert`.
#[derive(Debug, Clone, PartialEq)]
pub struct Asserted {
    pub record: RecordV2,
    pub outcome: AssertOutcome,
}

impl Asserted {
    pub fn created(&self) -> bool {
        self.outcome == AssertOutcome::Created
    }
}

/// The answer to a sub-resource or relationship write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    pub item: T,
    /// `true` when a POST added it (201), `false` when it was there already or was changed.
    pub created: bool,
    /// The parent record's version after the write (from `ETag`), when sent.
    pub record_version: Option<i64>,
}

/// An account domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub domain_name: String,
    pub is_primary: bool,
}

/// One of a contact's emails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEmail {
    pub id: String,
    pub email: String,
    pub is_primary: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: Vec<String>,
}

/// One of a contact's phone numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPhone {
    pub id: String,
    pub phone_number: String,
    pub is_primary: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: Vec<String>,
}

/// One edge of a relationship (account `contacts` ↔ contact `accounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The record on the other side (bare UUID).
    pub related_record_id: String,
    pub related_record_type: String,
    pub role: Option<String>,
    /// The contact's primary account (at most one per contact).
    pub is_primary: bool,
}

impl<'de> Deserialize<'de> for Edge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            related_record_id: String,
            related_record_type: String,
            #[serde(default)]
            through: Through,
        }
        #[derive(Deserialize, Default)]
        struct Through {
            #[serde(default)]
            attributes: BTreeMap<String, Envelope>,
        }
        let raw = Raw::deserialize(d)?;
        let attr = |name: &str| raw.through.attributes.get(name).map(|e| e.value.clone()).unwrap_or(Value::Null);
        Ok(Edge {
            role: attr("role").as_str().map(str::to_owned),
            is_primary: attr("is_primary").as_bool().unwrap_or(false),
            related_record_id: raw.related_record_id,
            related_record_type: raw.related_record_type,
        })
    }
}

/// A user of the tenant's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `usr-…` from the admin list, the bare UUID from v2 routes.
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub is_active: bool,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub version: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl User {
    /// A user from its v2 record.
    pub fn from_record(record: &RecordV2) -> User {
        User {
            id: record.id.clone(),
            email: record.str("email").map(str::to_owned),
            display_name: record.str("display_name").map(str::to_owned),
            is_active: record.get("is_active").unwrap_or(false),
            created_at: record.created_at.clone(),
            updated_at: record.updated_at.clone(),
            version: record.version().unwrap_or_default(),
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_default_document_serialises_to_only_what_is_set() {
        let a = Account { name: Some("Initrode".into()), tags: vec!["new".into()], ..Default::default() };
        assert_eq!(serde_json::to_value(&a).unwrap(), json!({"name": "Initrode", "tags": ["new"]}));
    }

    #[test]
    fn documents_keep_unknown_fields_and_custom_values() {
        let doc = json!({
            "id": "acc-0193aaaa-0000-7000-8000-000000000000", "tenant_id": "t", "version": 3, "name": "A",
            "tags": [], "domains": ["a.com"], "domain": "a.com", "custom_fields": {"seats": 10},
            "addresses": null, "brand_new_field": {"x": 1}, "annual_revenue": 1250.5,
        });
        let a: Account = serde_json::from_value(doc).unwrap();
        assert_eq!(a.version, 3);
        assert_eq!(a.custom_field("seats"), Some(&json!(10)));
        assert_eq!(a.extra["brand_new_field"], json!({"x": 1}));
        assert!(a.addresses.is_empty());
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(back["brand_new_field"], json!({"x": 1}));
        assert_eq!(back["annual_revenue"], json!(1250.5));
    }

    #[test]
    fn v2_records_and_edges_decode() {
        let r: RecordV2 = serde_json::from_value(json!({
            "id": "u", "record_type": "account", "created_at": "t", "updated_at": "t",
            "attributes": {
                "display_name": {"value_type": "string", "value": "Acme"},
                "version": {"value_type": "number", "value": 2},
                "archived_at": {"value_type": "timestamp", "value": null},
                "domains": [{"value_type": "account_domain", "value": {"domain_name": "acme.com", "is_primary": true}}],
                "tags": [],
            }
        }))
        .unwrap();
        assert_eq!(r.str("display_name"), Some("Acme"));
        assert_eq!(r.version(), Some(2));
        assert!(!r.is_archived());
        assert_eq!(r.domain_names(), vec!["acme.com"]);
        assert!(r.values("tags").is_empty());

        let e: Edge = serde_json::from_value(json!({
            "related_record_id": "c", "related_record_type": "contact",
            "through": {"attributes": {"role": {"value_type": "string", "value": "champion"},
                                        "is_primary": {"value_type": "boolean", "value": true}}}
        }))
        .unwrap();
        assert_eq!(e.role.as_deref(), Some("champion"));
        assert!(e.is_primary);
    }
}
