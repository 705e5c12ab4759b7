//! Record types and record ids, with their three spellings (docs/CONTRACT.md §4).
//!
//! Internally an id is a UUIDv7. v2 spells it as the canonical UUID, v1 as `acc-<uuid>`,
//! `con-<uuid>`, `usr-<uuid>`. Every input accepts any spelling: canonical, prefixed, upper
//! case, or the 32-hex simple form.

use std::fmt;
use uuid::Uuid;

/// The three built-in record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    Account,
    Contact,
    User,
}

impl RecordType {
    pub const ALL: [RecordType; 3] = [RecordType::Account, RecordType::Contact, RecordType::User];

    /// The v2 api name (`account`, `contact`, `user`).
    pub fn api_name(self) -> &'static str {
        match self {
            RecordType::Account => "account",
            RecordType::Contact => "contact",
            RecordType::User => "user",
        }
    }

    /// The v1 id prefix, without the dash.
    pub fn v1_prefix(self) -> &'static str {
        match self {
            RecordType::Account => "acc",
            RecordType::Contact => "con",
            RecordType::User => "usr",
        }
    }

    pub fn from_api_name(name: &str) -> Option<Self> {
        RecordType::ALL.into_iter().find(|t| t.api_name() == name)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

/// A record id: a time-ordered UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub Uuid);

impl RecordId {
    /// A fresh time-ordered id.
    pub fn generate() -> Self {
        RecordId(Uuid::now_v7())
    }

    /// Parses any spelling of an id of `record_type`: canonical or simple UUID, optionally
    /// prefixed with the type's v1 prefix. A prefix of another type does not parse.
    pub fn parse(record_type: RecordType, input: &str) -> Option<Self> {
        let s = input.trim();
        let bare = match s.split_once('-') {
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case(record_type.v1_prefix()) => rest,
            _ => s,
        };
        // `Uuid::try_parse` also accepts braced and urn forms; only plain hex forms are ids here.
        if !(bare.len() == 36 || bare.len() == 32) {
            return None;
        }
        Uuid::try_parse(bare).ok().map(RecordId)
    }

    /// The canonical (v2) spelling.
    pub fn canonical(&self) -> String {
        self.0.hyphenated().to_string()
    }

    /// The v1 spelling, e.g. `acc-0193…`.
    pub fn v1(&self, record_type: RecordType) -> String {
        format!("{}-{}", record_type.v1_prefix(), self.0.hyphenated())
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Namespace for ids derived from names (users from non-UUID `sub`s, default stage ids).
const CORRAL_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b4d_4e7a_8c11_2f5e_0d9a_7b31);

/// The user id of a token subject: the `sub` itself when it is a UUID, else a stable UUIDv5
/// of (tenant, sub) (docs/CONTRACT.md §4.4).
pub fn user_id_for_subject(tenant: &str, sub: &str) -> RecordId {
    match RecordId::parse(RecordType::User, sub) {
        Some(id) => id,
        None => derived_id(&["user", tenant, sub]),
    }
}

/// A stable UUIDv5 of the given parts (joined unambiguously).
pub fn derived_id(parts: &[&str]) -> RecordId {
    let mut name = Vec::new();
    for p in parts {
        name.extend_from_slice(&(p.len() as u32).to_be_bytes());
        name.extend_from_slice(p.as_bytes());
    }
    RecordId(Uuid::new_v5(&CORRAL_NAMESPACE, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_to_the_same_id() {
        let id = RecordId::generate();
        let canon = id.canonical();
        for s in [
            canon.clone(),
            canon.to_uppercase(),
            id.v1(RecordType::Account),
            id.v1(RecordType::Account).to_uppercase(),
            id.0.simple().to_string(),
            format!(" {canon} "),
        ] {
            assert_eq!(RecordId::parse(RecordType::Account, &s), Some(id), "{s}");
        }
    }

    #[test]
    fn wrong_prefix_and_garbage_do_not_parse() {
        let id = RecordId::generate();
        assert_eq!(RecordId::parse(RecordType::Account, &id.v1(RecordType::Contact)), None);
        for s in ["", "acc-", "acc-123", "not-an-id", "{00000000-0000-0000-0000-000000000000}"] {
            assert_eq!(RecordId::parse(RecordType::Account, s), None, "{s}");
        }
    }

    #[test]
    fn subject_ids_are_stable_and_uuid_subjects_are_kept() {
        let a = user_id_for_subject("t1", "alice@example.com");
        assert_eq!(a, user_id_for_subject("t1", "alice@example.com"));
        assert_ne!(a, user_id_for_subject("t2", "alice@example.com"));
        let id = RecordId::generate();
        assert_eq!(user_id_for_subject("t1", &id.canonical()), id);
    }
}
