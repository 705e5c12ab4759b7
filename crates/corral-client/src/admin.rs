//! Tenant administration the client needs around records: the schema of a record type and
//! its custom attributes ([`Schema`], `schema:write`), and API keys ([`ApiKeys`], admin).

use crate::client::{Client, Request};
use crate::error::Result;
use crate::records::Data;
use corral_core::RecordType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An option of a select attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeOption {
    pub api_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_value: Option<String>,
    /// `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A new custom attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewAttribute {
    /// `^[a-z][a-z0-9_]{0,62}$`, not a built-in name.
    pub api_name: String,
    /// string, long_text, number, percent, currency, boolean, timestamp, date, email, url,
    /// phone_number, select, record_reference.
    pub value_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_array: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_required_on_create: bool,
    /// Options of a `select` attribute.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<AttributeOption>,
    /// The record type a `record_reference` points at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl NewAttribute {
    pub fn new(api_name: impl Into<String>, value_type: impl Into<String>) -> Self {
        NewAttribute { api_name: api_name.into(), value_type: value_type.into(), ..Default::default() }
    }
}

/// An attribute as `_schema` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeSchema {
    pub api_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `{"value_type", "is_array", "options"?, "target"?}`.
    #[serde(default)]
    pub type_info: Value,
    #[serde(default)]
    pub is_custom: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A record type's schema. Get one with [`Client::schema`].
#[derive(Debug, Clone)]
pub struct Schema {
    client: Client,
    record_type: RecordType,
}

impl Schema {
    pub(crate) fn new(client: Client, record_type: RecordType) -> Self {
        Schema { client, record_type }
    }

    /// `GET /api/v2/_schema/{type}`: every attribute, relationships, operators.
    pub async fn get(&self) -> Result<Value> {
        self.client.json(Request::get(&["api", "v2", "_schema", self.record_type.api_name()])).await
    }

    /// Adds a custom attribute (`schema:write`).
    pub async fn create_attribute(&self, attribute: &NewAttribute) -> Result<AttributeSchema> {
        let path = ["api", "v2", "_schema", self.record_type.api_name(), "attributes"];
        let data: Data<AttributeSchema> = self.client.json(Request::post(&path).json(attribute)?).await?;
        Ok(data.data)
    }

    /// Archives a custom attribute (its values are kept, hidden; the name stays taken).
    pub async fn archive_attribute(&self, api_name: &str) -> Result<()> {
        let path = ["api", "v2", "_schema", self.record_type.api_name(), "attributes", api_name];
        self.client.send(Request::delete(&path)).await.map(drop)
    }
}

/// A new API key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewApiKey {
    /// `accounts:read`, `contacts:write`, `admin`, …
    pub scopes: Vec<String>,
    /// An app slug: the key then sees only the records its app created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// An API key; `key` (`crl_<id>_<secret>`) only in the answer to its creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// The tenant's API keys (admin). Get one with [`Client::api_keys`].
#[derive(Debug, Clone)]
pub struct ApiKeys {
    client: Client,
}

impl ApiKeys {
    pub(crate) fn new(client: Client) -> Self {
        ApiKeys { client }
    }

    /// Creates a key; keep [`ApiKey::key`], it is not shown again.
    pub async fn create(&self, key: &NewApiKey) -> Result<ApiKey> {
        let data: Data<ApiKey> = self.client.json(Request::post(&["api", "admin", "api-keys"]).json(key)?).await?;
        Ok(data.data)
    }

    /// The tenant's keys, without secrets.
    pub async fn list(&self) -> Result<Vec<ApiKey>> {
        let data: Data<Vec<ApiKey>> = self.client.json(Request::get(&["api", "admin", "api-keys"])).await?;
        Ok(data.data)
    }

    /// Revokes a key: it stops working at once.
    pub async fn revoke(&self, id: &str) -> Result<()> {
        self.client.send(Request::delete(&["api", "admin", "api-keys", id])).await.map(drop)
    }
}
