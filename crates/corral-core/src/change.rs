//! Change events (docs/API.md "Change feed"): what one write did to one record — its action
//! and the fields it changed, old → new — in a form independent of the API dialect.
//!
//! Changed fields are keyed by their v2 attribute name; [`v1_name`] gives the v1 field name
//! of the same key, so one stored event serves both dialects. Values are plain JSON (the v1
//! spelling of a value, record ids as canonical uuids); an empty value (no value, an empty
//! list or object) is `null`.

use crate::ids::RecordType;
use crate::record::Record;
use crate::schema::{ValueType, field_by_api_name, fields};
use crate::value::{Value, to_v1_json};
use serde_json::{Map, Value as Json, json};

/// What a write did to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Archived,
    Restored,
    Purged,
    /// Other records were merged into this one (docs/API.md "Merging records").
    Merged,
    /// This record was merged into another and archived with a pointer to it.
    MergedInto,
    /// A merge was undone: this record, archived by it, is active again.
    Unmerged,
}

impl Action {
    /// Every action, in the order documents list them.
    pub const ALL: [Action; 8] = [
        Action::Created,
        Action::Updated,
        Action::Archived,
        Action::Restored,
        Action::Purged,
        Action::Merged,
        Action::MergedInto,
        Action::Unmerged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Archived => "archived",
            Action::Restored => "restored",
            Action::Purged => "purged",
            Action::Merged => "merged",
            Action::MergedInto => "merged_into",
            Action::Unmerged => "unmerged",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The key of a contact's primary account (v1 `account_id`): v2 shows it only as the
/// primary flag of the contact's `accounts` edge.
pub const PRIMARY_ACCOUNT: &str = "primary_account_id";

/// The key of the archived state (v1 `deleted_at`).
pub const ARCHIVED_AT: &str = "archived_at";

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn plain(value_type: ValueType, value: &Value, f: &crate::schema::FieldDef) -> Json {
    match (value_type, value) {
        (_, Value::Ref(id)) => json!(id.canonical()),
        _ => to_v1_json(f, value),
    }
}

/// Every non-empty tracked value of a record, by change key.
pub fn snapshot(record: &Record) -> Map<String, Json> {
    let mut out = Map::new();
    let mut put = |k: &str, v: Json| {
        if !is_empty(&v) {
            out.insert(k.to_owned(), v);
        }
    };
    for (f, v) in record.fields().iter().zip(&record.values) {
        put(f.api_name, plain(f.value_type, v, f));
    }
    match record.record_type {
        RecordType::Account => {
            let domains: Vec<Json> = record
                .domains
                .iter()
                .map(|d| json!({"domain_name": d.domain_name, "is_primary": d.is_primary}))
                .collect();
            put("domains", Json::Array(domains));
        }
        RecordType::Contact => {
            let items = |list: &[crate::record::ContactItem], key: &str| {
                Json::Array(
                    list.iter()
                        .map(|i| json!({"id": i.id, key: i.value, "is_primary": i.is_primary, "labels": i.labels}))
                        .collect(),
                )
            };
            put("contact_emails", items(&record.emails, "email"));
            put("contact_phone_numbers", items(&record.phones, "phone_number"));
            put(PRIMARY_ACCOUNT, json!(record.primary_account.map(|a| a.canonical())));
        }
        RecordType::User => {}
    }
    for (name, v) in &record.custom {
        put(name, v.clone());
    }
    put(ARCHIVED_AT, json!(record.meta.deleted_at.map(|t| t.to_rfc3339())));
    out
}

/// The fields that differ between two states of a record (`None`: the record does not
/// exist), as `{key: {"old", "new"}}`.
pub fn diff(before: Option<&Record>, after: Option<&Record>) -> Map<String, Json> {
    let old = before.map(snapshot).unwrap_or_default();
    let new = after.map(snapshot).unwrap_or_default();
    let mut out = Map::new();
    for key in old.keys().chain(new.keys()) {
        let (o, n) = (old.get(key).unwrap_or(&Json::Null), new.get(key).unwrap_or(&Json::Null));
        if o != n && !out.contains_key(key) {
            out.insert(key.clone(), json!({"old": o, "new": n}));
        }
    }
    out
}

/// The v1 name of a change key of record type `rt` (custom attributes as
/// `custom_fields.<name>`).
pub fn v1_name(rt: RecordType, key: &str) -> String {
    if let Some((_, f)) = field_by_api_name(rt, key) {
        return f.v1_name.to_owned();
    }
    match key {
        // Relationship changes (`accounts.<id>`, `contacts.<id>`) are spelled alike.
        "domains" => key.to_owned(),
        k if k.starts_with("accounts.") || k.starts_with("contacts.") => key.to_owned(),
        "contact_emails" => "emails".to_owned(),
        "contact_phone_numbers" => "phones".to_owned(),
        PRIMARY_ACCOUNT => "account_id".to_owned(),
        ARCHIVED_AT => "deleted_at".to_owned(),
        custom => format!("custom_fields.{custom}"),
    }
}

/// Whether `key` names a built-in field of `rt` (else a custom attribute or a list).
pub fn is_builtin_field(rt: RecordType, key: &str) -> bool {
    fields(rt).iter().any(|f| f.api_name == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Actor, ActorKind, RecordMeta, RecordWrite};
    use crate::timestamp::Timestamp;

    #[test]
    fn a_diff_names_only_what_changed_with_both_dialects_resolvable() {
        let actor = Actor::new("t", "s", None, ActorKind::User);
        let mut a = Record::new(RecordType::Account, RecordMeta::new(&actor, Timestamp(1)));
        let w = RecordWrite { primary_domain: Some(Some("acme.com".into())), ..Default::default() };
        a.apply(&w, Timestamp(1)).unwrap();
        let created = diff(None, Some(&a));
        assert_eq!(created["display_name"], json!({"old": null, "new": "acme.com"}));
        assert_eq!(created["domains"]["new"][0]["domain_name"], "acme.com");
        assert!(!created.contains_key(ARCHIVED_AT), "empty values are not changes");
        let mut b = a.clone();
        b.custom.insert("tier".into(), json!("gold"));
        b.meta.deleted_at = Some(Timestamp(5));
        let changed = diff(Some(&a), Some(&b));
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert_eq!(changed["tier"], json!({"old": null, "new": "gold"}));
        assert_eq!(v1_name(RecordType::Account, "tier"), "custom_fields.tier");
        assert_eq!(v1_name(RecordType::Account, ARCHIVED_AT), "deleted_at");
        assert_eq!(v1_name(RecordType::Contact, PRIMARY_ACCOUNT), "account_id");
        assert!(diff(Some(&a), Some(&a)).is_empty());
    }
}
