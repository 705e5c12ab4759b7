//! The record model: server stamps, field values, account domains, and how a validated write
//! is applied to a record (create, patch, replace) with "nothing changed" detection.

use crate::error::{CoreError, CoreResult};
use crate::ids::{RecordId, RecordType};
use crate::schema::{ACCOUNT_NAME, FieldDef, fields};
use crate::tenant::TenantId;
use crate::timestamp::Timestamp;
use crate::value::Value;
use serde_json::{Map, Value as Json};

/// Who is writing: the token's tenant, subject and app scope (docs/CONTRACT.md §2, §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub tenant: TenantId,
    /// The token's `sub`, stamped into `created_by` / `updated_by` / `deleted_by`.
    pub subject: String,
    /// The caller's app scope: stamped on create, and the only app whose records it sees.
    pub app: Option<String>,
    /// What kind of credential `subject` names (recorded on change events).
    pub kind: ActorKind,
    /// The request the write belongs to, when it came over HTTP (recorded on change events).
    pub request_id: Option<String>,
}

impl Actor {
    /// A caller of `kind` outside any request (CLI, tests, background work).
    pub fn new(tenant: impl Into<TenantId>, subject: impl Into<String>, app: Option<String>, kind: ActorKind) -> Self {
        Actor { tenant: tenant.into(), subject: subject.into(), app, kind, request_id: None }
    }
}

/// The kind of caller behind a write: a token's subject, an API key, or Corral itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    ApiKey,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> ActorKind {
        match s {
            "api_key" => ActorKind::ApiKey,
            "system" => ActorKind::System,
            _ => ActorKind::User,
        }
    }
}

/// Server-stamped fields every record carries (docs/CONTRACT.md §4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordMeta {
    pub id: RecordId,
    pub tenant_id: String,
    pub app_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub updated_by: String,
    pub deleted_at: Option<Timestamp>,
    pub deleted_by: Option<String>,
    pub schema_version: i64,
    pub version: i64,
}

/// The schema version records are written under today.
pub const SCHEMA_VERSION: i64 = 1;

impl RecordMeta {
    /// Stamps for a record created now by `actor`.
    pub fn new(actor: &Actor, now: Timestamp) -> Self {
        RecordMeta {
            id: RecordId::generate(),
            tenant_id: actor.tenant.to_string(),
            app_id: actor.app.clone(),
            created_at: now,
            updated_at: now,
            created_by: actor.subject.clone(),
            updated_by: actor.subject.clone(),
            deleted_at: None,
            deleted_by: None,
            schema_version: SCHEMA_VERSION,
            version: 1,
        }
    }

    /// Records a write that changed the record.
    pub fn touch(&mut self, actor: &Actor, now: Timestamp) {
        // Keep updated_at strictly increasing so sync cursors on it never miss a write.
        self.updated_at = if now > self.updated_at { now } else { Timestamp(self.updated_at.0 + 1) };
        self.updated_by = actor.subject.clone();
        self.version += 1;
    }
}

/// A domain of an account (docs/CONTRACT.md §7.6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountDomain {
    pub domain_name: String,
    pub is_primary: bool,
    /// When the domain was added; "removing the primary promotes the oldest remaining".
    pub added_at: i64,
}

/// A contact email or phone number (docs/CONTRACT.md §4.3, §7.6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactItem {
    pub id: String,
    /// The normalised email, or the trimmed phone number.
    pub value: String,
    pub is_primary: bool,
    #[serde(default)]
    pub labels: Vec<String>,
    pub added_at: i64,
}

impl ContactItem {
    /// An item added now (not yet primary).
    pub fn new(value: &str, labels: Vec<String>, now: Timestamp) -> Self {
        ContactItem {
            id: RecordId::generate().canonical(),
            value: value.to_owned(),
            is_primary: false,
            labels,
            added_at: now.0,
        }
    }
}

impl crate::items::ListItem for ContactItem {
    /// Emails match case-insensitively (docs/CONTRACT.md §5.1); phones as given.
    fn key(&self) -> String {
        self.value.to_lowercase()
    }
    fn is_primary(&self) -> bool {
        self.is_primary
    }
    fn set_primary(&mut self, primary: bool) {
        self.is_primary = primary;
    }
    fn added_at(&self) -> i64 {
        self.added_at
    }
}

/// Labels a contact email or phone may carry.
pub const ITEM_LABELS: &[&str] = &["WORK", "PERSONAL", "MOBILE"];

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_type: RecordType,
    pub meta: RecordMeta,
    /// One value per [`fields`] entry of the record type.
    pub values: Vec<Value>,
    /// Account domains, oldest first.
    pub domains: Vec<AccountDomain>,
    /// Contact emails and phone numbers, oldest first.
    pub emails: Vec<ContactItem>,
    pub phones: Vec<ContactItem>,
    /// A contact's primary account (its primary `accounts` edge).
    pub primary_account: Option<RecordId>,
    /// Custom attribute values by api_name.
    pub custom: Map<String, Json>,
}

/// A validated write, independent of the dialect it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordWrite {
    /// New values by field index; `Value::Null` (or an empty array) clears.
    pub values: Vec<(usize, Value)>,
    /// `Some(Some(d))` makes `d` the primary domain, replacing the current primary;
    /// `Some(None)` removes the primary domain (docs/CONTRACT.md §4.2, v1 `domain`).
    pub primary_domain: Option<Option<String>>,
    /// v2 `address` of an account: replaces (or with `None` removes) the first of the
    /// account's addresses, keeping the others.
    pub first_address: Option<Option<crate::value::Address>>,
    /// Contacts: `Some(Some(e))` makes `e` the primary email (replacing the current one),
    /// `Some(None)` removes it. Likewise for the primary phone.
    pub primary_email: Option<Option<String>>,
    pub primary_phone: Option<Option<String>>,
    /// Contacts (v1 `account_id`): the primary account; `Some(None)` removes the edge.
    pub primary_account: Option<Option<RecordId>>,
    /// Custom values to set, in their stored form; `null` clears one.
    pub custom: Vec<(String, Json)>,
    /// Custom attributes cleared before `custom` is applied (a v1 PUT clears them all).
    pub custom_reset: Vec<String>,
    /// Custom references that must resolve: (attribute, target type, id).
    pub custom_refs: Vec<(String, RecordType, RecordId)>,
    /// v1 body `version`: the write applies only at this version (else `version_conflict`).
    pub expected_version: Option<i64>,
}

impl Record {
    /// A new record of `record_type` with every field empty or at its default.
    pub fn new(record_type: RecordType, meta: RecordMeta) -> Self {
        let values = fields(record_type)
            .iter()
            .map(|f| f.default.map(|d| Value::Text(d.to_owned())).unwrap_or_else(|| Value::empty(f)))
            .collect();
        Record {
            record_type,
            meta,
            values,
            domains: Vec::new(),
            emails: Vec::new(),
            phones: Vec::new(),
            primary_account: None,
            custom: Map::new(),
        }
    }

    pub fn fields(&self) -> &'static [FieldDef] {
        fields(self.record_type)
    }

    pub fn is_deleted(&self) -> bool {
        self.meta.deleted_at.is_some()
    }

    /// The primary domain, if any.
    pub fn primary_domain(&self) -> Option<&str> {
        self.domains.iter().find(|d| d.is_primary).map(|d| d.domain_name.as_str())
    }

    /// A contact's primary email, if any.
    pub fn primary_email(&self) -> Option<&str> {
        self.emails.iter().find(|e| e.is_primary).map(|e| e.value.as_str())
    }

    /// A contact's primary phone number, if any.
    pub fn primary_phone(&self) -> Option<&str> {
        self.phones.iter().find(|e| e.is_primary).map(|e| e.value.as_str())
    }

    /// Everything a write can change, for "did anything change" checks.
    fn changeable(&self) -> impl PartialEq + '_ {
        (&self.values, &self.domains, &self.emails, &self.phones, &self.primary_account, &self.custom)
    }

    /// Applies `write` and reports whether anything changed. Stamps are not touched here;
    /// the caller bumps them only when this returns true.
    pub fn apply(&mut self, write: &RecordWrite, now: Timestamp) -> CoreResult<bool> {
        let before = self.clone();
        for (index, value) in &write.values {
            self.values[*index] = value.clone();
        }
        if let Some(first) = &write.first_address
            && let Some(Value::Addresses(list)) = self
                .fields()
                .iter()
                .position(|f| f.is_array && f.value_type == crate::schema::ValueType::Address)
                .map(|i| &mut self.values[i])
        {
            match (first, list.is_empty()) {
                (Some(a), true) => list.push(a.clone()),
                (Some(a), false) => list[0] = a.clone(),
                (None, false) => {
                    list.remove(0);
                }
                (None, true) => {}
            }
        }
        if let Some(primary) = &write.primary_domain {
            crate::items::replace_primary(&mut self.domains, primary.as_deref().map(|d| AccountDomain::new(d, now)));
        }
        if let Some(email) = &write.primary_email {
            crate::items::replace_primary(
                &mut self.emails,
                email.as_deref().map(|e| ContactItem::new(e, Vec::new(), now)),
            );
        }
        if let Some(phone) = &write.primary_phone {
            crate::items::replace_primary(
                &mut self.phones,
                phone.as_deref().map(|p| ContactItem::new(p, Vec::new(), now)),
            );
        }
        if let Some(account) = write.primary_account {
            self.primary_account = account;
        }
        for name in &write.custom_reset {
            self.custom.remove(name);
        }
        for (name, value) in &write.custom {
            if value.is_null() {
                self.custom.remove(name);
            } else {
                self.custom.insert(name.clone(), value.clone());
            }
        }
        self.derive(&before);
        self.check_required()?;
        Ok(self.changeable() != before.changeable())
    }

    /// A contact's display name follows its first and last name unless the client set a
    /// different one (docs/CONTRACT.md §4.3: computed when blank).
    fn derive(&mut self, before: &Record) {
        if self.record_type != RecordType::Contact {
            return;
        }
        use crate::schema::{CONTACT_DISPLAY_NAME, CONTACT_FIRST_NAME, CONTACT_LAST_NAME};
        let composed = |r: &Record| {
            let part = |i: usize| r.values[i].as_text().map(str::trim).unwrap_or("").to_owned();
            let name = format!("{} {}", part(CONTACT_FIRST_NAME), part(CONTACT_LAST_NAME)).trim().to_owned();
            (!name.is_empty()).then_some(name)
        };
        let current =
            self.values[CONTACT_DISPLAY_NAME].as_text().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        if current.is_none() || current == composed(before) {
            self.values[CONTACT_DISPLAY_NAME] = composed(self).map(Value::Text).unwrap_or(Value::Null);
        }
    }

    /// An account needs a name; without one it takes its primary domain (docs/CONTRACT.md §4.2).
    fn check_required(&mut self) -> CoreResult<()> {
        if self.record_type != RecordType::Account {
            return Ok(());
        }
        let blank = match &self.values[ACCOUNT_NAME] {
            Value::Text(s) => s.trim().is_empty(),
            _ => true,
        };
        if blank {
            match self.primary_domain() {
                Some(d) => self.values[ACCOUNT_NAME] = Value::Text(d.to_owned()),
                None => {
                    return Err(CoreError::required_missing(fields(self.record_type)[ACCOUNT_NAME].v1_name));
                }
            }
        }
        Ok(())
    }
}

impl crate::items::ListItem for AccountDomain {
    fn key(&self) -> String {
        self.domain_name.clone()
    }
    fn is_primary(&self) -> bool {
        self.is_primary
    }
    fn set_primary(&mut self, primary: bool) {
        self.is_primary = primary;
    }
    fn added_at(&self) -> i64 {
        self.added_at
    }
}

impl AccountDomain {
    /// A domain added now (not yet primary).
    pub fn new(domain_name: &str, now: Timestamp) -> Self {
        AccountDomain { domain_name: domain_name.to_owned(), is_primary: false, added_at: now.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nameless_account_takes_its_domain_or_is_refused() {
        let actor = Actor::new("t", "s", None, ActorKind::User);
        let mut r = Record::new(RecordType::Account, RecordMeta::new(&actor, Timestamp(1)));
        let err = r.apply(&RecordWrite::default(), Timestamp(1)).unwrap_err();
        assert_eq!(err.details["field"], "name");
        let w = RecordWrite { primary_domain: Some(Some("acme.com".into())), ..Default::default() };
        assert!(r.apply(&w, Timestamp(2)).unwrap());
        assert_eq!(r.values[ACCOUNT_NAME], Value::Text("acme.com".into()));
        assert!(!r.apply(&w, Timestamp(3)).unwrap(), "same write twice changes nothing");
    }
}
