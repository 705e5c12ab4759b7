//! [`TenantId`]: the tenant a caller acts in (docs/CONTRACT.md §3).
//!
//! A newtype rather than a bare string so that every layer that needs the tenant (store
//! calls, rate limits, logs) says so in its signature and cannot be handed a subject, an app
//! slug or a record id by mistake. It derefs to `str` for SQL parameters and formatting.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// A tenant id, as carried by a token's `tenant_id` claim or an API key's row.
///
/// Corral does not mint tenant ids: any string a valid credential names is one (the HTTP layer
/// refuses empty ones, NUL characters and more than 255 bytes before building one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> Self {
        TenantId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for TenantId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for TenantId {
    fn from(s: String) -> Self {
        TenantId(s)
    }
}

impl From<&str> for TenantId {
    fn from(s: &str) -> Self {
        TenantId(s.to_owned())
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> Self {
        t.0
    }
}

impl From<&TenantId> for String {
    fn from(t: &TenantId) -> Self {
        t.0.clone()
    }
}

impl PartialEq<str> for TenantId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TenantId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for TenantId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_reads_as_its_string() {
        let t = TenantId::new("acme");
        assert_eq!(t, "acme");
        assert_eq!(t.len(), 4);
        assert_eq!(format!("{t}"), "acme");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"acme\"");
        let mut set = std::collections::HashSet::new();
        set.insert(t.clone());
        assert!(set.contains("acme"));
        assert_eq!(String::from(t), "acme");
    }
}
