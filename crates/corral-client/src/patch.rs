//! [`Patch`]: a partial write body that can also *clear* fields.
//!
//! A typed document skips unset fields when serialised, so it cannot say "set this to
//! null". A `Patch` says exactly what to change: `set` a value, `clear` one (null), or
//! change one custom attribute (`custom` / `clear_custom`, inside v1 `custom_fields`, where
//! a PATCH changes only the keys sent). The same builder serves v2 bodies (asserts):
//! there, custom attributes are top-level, so use `set` with their api_name.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A partial write: the fields to set or clear, nothing else.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    fields: Map<String, Value>,
}

impl Patch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `field` (any JSON value: text, number, list, object).
    pub fn set(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(field.to_owned(), value.into());
        self
    }

    /// Sets `field` to any serialisable value (an [`Address`](crate::Address), a list of them).
    pub fn set_serialized(mut self, field: &str, value: &impl Serialize) -> Result<Self, serde_json::Error> {
        self.fields.insert(field.to_owned(), serde_json::to_value(value)?);
        Ok(self)
    }

    /// Clears `field` (sends `null`).
    pub fn clear(self, field: &str) -> Self {
        self.set(field, Value::Null)
    }

    /// Sets a custom attribute in v1 `custom_fields`.
    pub fn custom(mut self, api_name: &str, value: impl Into<Value>) -> Self {
        let entry = self.fields.entry("custom_fields").or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Value::Object(map) = entry {
            map.insert(api_name.to_owned(), value.into());
        }
        self
    }

    /// Clears a custom attribute in v1 `custom_fields`.
    pub fn clear_custom(self, api_name: &str) -> Self {
        self.custom(api_name, Value::Null)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The body as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.fields
    }
}

impl Serialize for Patch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(s)
    }
}

impl From<Map<String, Value>> for Patch {
    fn from(fields: Map<String, Value>) -> Self {
        Patch { fields }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_set_clear_and_nest_custom_fields() {
        let p =
            Patch::new().set("lifecycle_stage", "engaged").clear("industry").custom("seats", 10).clear_custom("tier");
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"lifecycle_stage": "engaged", "industry": null, "custom_fields": {"seats": 10, "tier": null}})
        );
    }
}
