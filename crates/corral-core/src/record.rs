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
    /// v2 `address` of an account: replaces (or with `None` removes) the first of the
    /// account's addresses, keeping the others.
    pub first_address: Option<Option<crate::value::Address>>,
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

/// Adds a domain (domains sub-resource); it becomes primary when the account has none.
/// Returns false when the account already has it.
pub fn add_domain(domains: &mut Vec<AccountDomain>, name: &str, now: Timestamp) -> bool {
    if domains.iter().any(|d| d.domain_name == name) {
        return false;
    }
    let is_primary = !domains.iter().any(|d| d.is_primary);
    domains.push(AccountDomain { domain_name: name.to_owned(), is_primary, added_at: now.0 });
    true
}

/// Promotes a domain (demoting the old primary), or with `false` leaves the account without
/// a primary if it was the primary. Returns whether anything changed.
pub fn set_domain_primary(domains: &mut [AccountDomain], name: &str, primary: bool) -> CoreResult<bool> {
    let target = domains.iter().position(|d| d.domain_name == name).ok_or_else(CoreError::record_not_found)?;
    if domains[target].is_primary == primary {
        return Ok(false);
    }
    for (i, d) in domains.iter_mut().enumerate() {
        d.is_primary = if primary { i == target } else { d.is_primary && i != target };
    }
    Ok(true)
}

/// Removes a domain; removing the primary promotes the oldest remaining one.
pub fn remove_domain(domains: &mut Vec<AccountDomain>, name: &str, now: Timestamp) -> CoreResult<()> {
    let target = domains.iter().position(|d| d.domain_name == name).ok_or_else(CoreError::record_not_found)?;
    if domains[target].is_primary {
        set_primary_domain(domains, None, now);
    } else {
        domains.remove(target);
    }
    Ok(())
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
    fn sub_resource_domain_operations() {
        let mut ds = Vec::new();
        assert!(add_domain(&mut ds, "a.com", Timestamp(1)));
        assert!(!add_domain(&mut ds, "a.com", Timestamp(2)));
        assert!(add_domain(&mut ds, "b.com", Timestamp(3)));
        assert_eq!(ds, vec![d("a.com", true, 1), d("b.com", false, 3)]);
        assert!(set_domain_primary(&mut ds, "b.com", true).unwrap());
        assert_eq!(ds, vec![d("a.com", false, 1), d("b.com", true, 3)]);
        assert!(set_domain_primary(&mut ds, "b.com", false).unwrap());
        assert!(ds.iter().all(|x| !x.is_primary));
        assert!(set_domain_primary(&mut ds, "c.com", true).is_err());
        assert!(add_domain(&mut ds, "c.com", Timestamp(4)));
        assert!(ds[2].is_primary, "with no primary, a new domain becomes primary");
        remove_domain(&mut ds, "c.com", Timestamp(5)).unwrap();
        assert_eq!(ds, vec![d("a.com", true, 1), d("b.com", false, 3)]);
        assert!(remove_domain(&mut ds, "zzz.com", Timestamp(5)).is_err());
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
