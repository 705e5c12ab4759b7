//! Opaque, tamper-evident pagination cursors (docs/CONTRACT.md §5.4).
//!
//! A cursor carries the query that made it and the sort-key values of the last row returned,
//! as base64url JSON, followed by an HMAC over the tenant and that payload. Altering a byte,
//! or presenting the cursor in another tenant, fails the MAC: `invalid_cursor`. Because the
//! query travels inside, a cursor can be sent alone to continue.

use crate::error::{CoreError, CoreResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Bytes of MAC kept in a cursor: 128 bits is plenty against forgery and keeps cursors short.
const MAC_LEN: usize = 16;

/// The server key cursors are sealed with.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// Derives the cursor key from the server secret, so every instance sharing the secret
    /// accepts every other instance's cursors.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
        mac.update(b"corral cursor key v1");
        CursorKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, tenant: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(&(tenant.len() as u64).to_be_bytes());
        mac.update(tenant.as_bytes());
        mac.update(payload);
        mac
    }

    /// Seals `state` for `tenant` into an opaque URL-safe string.
    pub fn seal<T: Serialize>(&self, tenant: &str, state: &T) -> String {
        let payload = serde_json::to_vec(state).expect("cursor state serialises");
        let tag = self.mac(tenant, &payload).finalize().into_bytes();
        let mut out = URL_SAFE_NO_PAD.encode(&payload);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]));
        out
    }

    /// Opens a cursor sealed for `tenant`; anything altered or foreign is `invalid_cursor`.
    pub fn open<T: DeserializeOwned>(&self, tenant: &str, token: &str) -> CoreResult<T> {
        let (payload, tag) = token.split_once('.').ok_or_else(CoreError::invalid_cursor)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| CoreError::invalid_cursor())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| CoreError::invalid_cursor())?;
        self.mac(tenant, &payload).verify_truncated_left(&tag).map_err(|_| CoreError::invalid_cursor())?;
        if tag.len() != MAC_LEN {
            return Err(CoreError::invalid_cursor());
        }
        serde_json::from_slice(&payload).map_err(|_| CoreError::invalid_cursor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn a_cursor_opens_only_unaltered_and_in_its_tenant() {
        let key = CursorKey::derive(b"secret");
        let state = json!({"q": {"sort": ["-created_at"]}, "after": [1700000000000i64, "0193"]});
        let c = key.seal("t1", &state);
        assert_eq!(key.open::<Value>("t1", &c).unwrap(), state);
        assert!(key.open::<Value>("t2", &c).is_err());
        assert!(CursorKey::derive(b"other").open::<Value>("t1", &c).is_err());
        assert!(key.open::<Value>("t1", "garbage").is_err());
        assert!(key.open::<Value>("t1", "").is_err());
        assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
    }

    proptest! {
        // Flipping any character of a cursor makes it invalid (or, rarely, decodes to the
        // very same bytes, which base64's padding bits allow): never another valid state.
        #[test]
        fn tampering_is_detected(pos in 0usize..200, ch in "[A-Za-z0-9_.-]") {
            let key = CursorKey::derive(b"secret");
            let state = json!({"after": [42, "abc"], "q": {"include_deleted": false}});
            let c = key.seal("t", &state);
            let pos = pos % c.len();
            let mut bytes = c.clone().into_bytes();
            bytes[pos] = ch.as_bytes()[0];
            let tampered = String::from_utf8(bytes).unwrap();
            match key.open::<Value>("t", &tampered) {
                Ok(v) => prop_assert_eq!(v, state),
                Err(e) => prop_assert_eq!(e.code, crate::error::ErrorCode::InvalidCursor),
            }
        }
    }
}
