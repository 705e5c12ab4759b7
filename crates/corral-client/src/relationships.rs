//! Relationships (v2 `…/{id}/relationship/{name}`): account `contacts` ↔ contact `accounts`,
//! one junction seen from both sides, with edge attributes `role` and `is_primary` (a
//! contact's primary account, the v1 `account_id`; setting another edge primary demotes the
//! previous one to a secondary edge).

use crate::client::{Client, Request};
use crate::error::Result;
use crate::model::{Edge, Page, Written};
use crate::paging::{self, ItemStream};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// Edge attributes to set; unset ones are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeAttributes {
    fields: Map<String, Value>,
}

impl EdgeAttributes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.fields.insert("role".into(), json!(role.into()));
        self
    }

    pub fn clear_role(mut self) -> Self {
        self.fields.insert("role".into(), Value::Null);
        self
    }

    pub fn primary(mut self, is_primary: bool) -> Self {
        self.fields.insert("is_primary".into(), json!(is_primary));
        self
    }
}

impl Serialize for EdgeAttributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(s)
    }
}

/// `{"parent", "api_name", "items", "next_cursor"}`.
#[derive(Deserialize)]
struct EdgeList {
    items: Vec<Edge>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// `{"parent", "api_name", "item"}`.
#[derive(Deserialize)]
struct EdgeBody {
    item: Edge,
}

/// One record's side of a relationship. Get one with
/// [`Records::contacts`](crate::Records::contacts) or [`Records::accounts`](crate::Records::accounts).
#[derive(Debug, Clone)]
pub struct Relationship {
    client: Client,
    record_type: &'static str,
    id: String,
    name: &'static str,
}

impl Relationship {
    pub(crate) fn new(client: Client, record_type: &'static str, id: &str, name: &'static str) -> Self {
        Relationship { client, record_type, id: id.to_owned(), name }
    }

    /// One page of edges (oldest first; only active records the caller can see), `limit` 1–200.
    pub async fn list(&self, limit: Option<u32>, cursor: Option<&str>) -> Result<Page<Edge>> {
        let path = ["api", "v2", self.record_type, &self.id, "relationship", self.name];
        let mut request = Request::get(&path);
        if let Some(limit) = limit {
            request = request.param("limit", limit);
        }
        if let Some(cursor) = cursor {
            request = request.param("cursor", cursor);
        }
        let list: EdgeList = self.client.json(request).await?;
        Ok(Page { items: list.items, next_cursor: list.next_cursor, total: None, total_is_estimate: None })
    }

    /// Every edge, page after page.
    pub fn stream(&self, limit: Option<u32>) -> ItemStream<Edge> {
        let this = self.clone();
        paging::items(move |cursor: Option<String>| {
            let this = this.clone();
            async move { this.list(limit, cursor.as_deref()).await }
        })
    }

    async fn add_body(&self, body: Value) -> Result<Written<Edge>> {
        let path = ["api", "v2", self.record_type, &self.id, "relationship", self.name];
        let reply = self.client.send(Request::post(&path).json(&body)?).await?;
        let edge: EdgeBody = reply.json()?;
        Ok(Written { item: edge.item, created: reply.status == 201, record_version: None })
    }

    /// Links the record `target_id`. An existing edge answers `created: false` and takes the
    /// attributes sent.
    pub async fn add(&self, target_id: &str, attributes: &EdgeAttributes) -> Result<Written<Edge>> {
        let mut body = attributes.fields.clone();
        body.insert("related_record_id".into(), json!(target_id));
        self.add_body(Value::Object(body)).await
    }

    /// Links the record that `field` = `value` finds (`domain_name` for accounts,
    /// `primary_email` for contacts, `id`).
    pub async fn add_matching(&self, field: &str, value: &str, attributes: &EdgeAttributes) -> Result<Written<Edge>> {
        let mut body = attributes.fields.clone();
        body.insert("related_record_match".into(), json!({ field: value }));
        self.add_body(Value::Object(body)).await
    }

    /// Changes an edge's attributes.
    pub async fn update(&self, target_id: &str, attributes: &EdgeAttributes) -> Result<Edge> {
        let path = ["api", "v2", self.record_type, &self.id, "relationship", self.name, target_id];
        let edge: EdgeBody = self.client.json(Request::patch(&path).json(attributes)?).await?;
        Ok(edge.item)
    }

    /// Removes an edge.
    pub async fn remove(&self, target_id: &str) -> Result<()> {
        let path = ["api", "v2", self.record_type, &self.id, "relationship", self.name, target_id];
        self.client.send(Request::delete(&path)).await.map(drop)
    }
}
