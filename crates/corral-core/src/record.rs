//! The record model: server stamps, field values, account domains, and how a validated write
//! is applied to a record (create, patch, replace) with "nothing changed" detection.

use crate::error::{CoreError, CoreResult};
use crate::ids::{RecordId, RecordType};
use crate::schema::{ACCOUNT_NAME, FieldDef, fields};
use crate::timestamp::Timestamp;
use crate::value::Value;
use serde_json::{Map, Value as Json};

/// Who is writing: the token's tenant, subject and app scope (SPEC §2, §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub tenant: String,
    /// The token's `sub`, stamped into `created_by` / `updated_by` / `deleted_by`.
    pub subject: String,
    /// The caller's app scope: stamped on create, and the only app whose records it sees.
    pub app: Option<String>,
}

/// Server-stamped fields every record carries (SPEC §4.1).
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
            tenant_id: actor.tenant.clone(),
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

/// A domain of an account (SPEC §7.6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountDomain {
    pub domain_name: String,
    pub is_primary: bool,
    /// When the domain was added; "removing the primary promotes the oldest remaining".
    pub added_at: i64,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_type: RecordType,
    pub meta: RecordMeta,
    /// One value per [`fields`] entry of the record type.
    pub values: Vec<Value>,
    /// Account domains, oldest first.
    pub domains: Vec<AccountDomain>,
    /// Custom attribute values by api_name.
    pub custom: Map<String, Json>,
}

/// A validated write, independent of the dialect it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordWrite {
    /// New values by field index; `Value::Null` (or an empty array) clears.
    pub values: Vec<(usize, Value)>,
    /// `Some(Some(d))` makes `d` the primary domain, replacing the current primary;
    /// `Some(None)` removes the primary domain (SPEC §4.2, v1 `domain`).
    pub primary_domain: Option<Option<String>>,
    /// Replacement custom values.
    pub custom: Option<Map<String, Json>>,
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
        Record { record_type, meta, values, domains: Vec::new(), custom: Map::new() }
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

    /// Applies `write` and reports whether anything changed. Stamps are not touched here;
    /// the caller bumps them only when this returns true.
    pub fn apply(&mut self, write: &RecordWrite, now: Timestamp) -> CoreResult<bool> {
        let before = (self.values.clone(), self.domains.clone(), self.custom.clone());
        for (index, value) in &write.values {
            self.values[*index] = value.clone();
        }
        if let Some(primary) = &write.primary_domain {
            set_primary_domain(&mut self.domains, primary.as_deref(), now);
        }
        if let Some(custom) = &write.custom {
            self.custom = custom.clone();
        }
        self.check_required()?;
        Ok((&self.values, &self.domains, &self.custom) != (&before.0, &before.1, &before.2))
    }

    /// An account needs a name; without one it takes its primary domain (SPEC §4.2).
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

/// Makes `new` the primary domain, replacing the current primary (v1 `domain` semantics):
/// the old primary is removed unless it is `new`; `new` is added, or promoted if it was a
/// secondary. With `None` the primary is removed and the oldest remaining domain promoted.
pub fn set_primary_domain(domains: &mut Vec<AccountDomain>, new: Option<&str>, now: Timestamp) {
    if domains.iter().any(|d| d.is_primary && Some(d.domain_name.as_str()) == new) {
        return;
    }
    domains.retain(|d| !d.is_primary);
    match new {
        Some(name) => match domains.iter_mut().find(|d| d.domain_name == name) {
            Some(existing) => existing.is_primary = true,
            None => domains.push(AccountDomain { domain_name: name.to_owned(), is_primary: true, added_at: now.0 }),
        },
        None => {
            if let Some(oldest) = domains.iter_mut().min_by_key(|d| d.added_at) {
                oldest.is_primary = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, primary: bool, at: i64) -> AccountDomain {
        AccountDomain { domain_name: name.into(), is_primary: primary, added_at: at }
    }

    #[test]
    fn v1_domain_writes_replace_the_primary() {
        let mut ds = vec![d("a.com", true, 1), d("b.com", false, 2)];
        set_primary_domain(&mut ds, Some("c.com"), Timestamp(3));
        assert_eq!(ds, vec![d("b.com", false, 2), d("c.com", true, 3)]);
        set_primary_domain(&mut ds, Some("b.com"), Timestamp(4));
        assert_eq!(ds, vec![d("b.com", true, 2)]);
        set_primary_domain(&mut ds, Some("b.com"), Timestamp(5));
        assert_eq!(ds, vec![d("b.com", true, 2)]);
        let mut ds = vec![d("a.com", true, 1), d("c.com", false, 3), d("b.com", false, 2)];
        set_primary_domain(&mut ds, None, Timestamp(4));
        assert_eq!(ds, vec![d("c.com", false, 3), d("b.com", true, 2)]);
    }

    #[test]
    fn a_nameless_account_takes_its_domain_or_is_refused() {
        let actor = Actor { tenant: "t".into(), subject: "s".into(), app: None };
        let mut r = Record::new(RecordType::Account, RecordMeta::new(&actor, Timestamp(1)));
        let err = r.apply(&RecordWrite::default(), Timestamp(1)).unwrap_err();
        assert_eq!(err.details["field"], "name");
        let w = RecordWrite { primary_domain: Some(Some("acme.com".into())), ..Default::default() };
        assert!(r.apply(&w, Timestamp(2)).unwrap());
        assert_eq!(r.values[ACCOUNT_NAME], Value::Text("acme.com".into()));
        assert!(!r.apply(&w, Timestamp(3)).unwrap(), "same write twice changes nothing");
    }
}
