//! Attribute sub-resources (v2 `…/{id}/attribute/{name}`): an account's [`Domains`], a
//! contact's emails and phone numbers ([`ContactItems`]). Each has one primary item; adding
//! something the record already has answers with the item and `created: false`. Every
//! write takes an optional `If-Match` version of the parent record and reports the parent's
//! new version.

use crate::client::{Client, Request};
use crate::error::{Error, Result};
use crate::model::{ContactEmail, ContactPhone, Domain, RecordV2, Written};
use crate::records::Data;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::marker::PhantomData;

/// Decodes the items of a list attribute of a v2 record.
fn items_of<T: DeserializeOwned>(record: &RecordV2, attribute: &str) -> Result<Vec<T>> {
    record
        .values(attribute)
        .into_iter()
        .map(|v| T::deserialize(v).map_err(|source| Error::Decode { status: 200, source, body: v.to_string() }))
        .collect()
}

/// An account's domains. Get one with [`Records::domains`](crate::Records::domains).
#[derive(Debug, Clone)]
pub struct Domains {
    client: Client,
    account_id: String,
}

impl Domains {
    pub(crate) fn new(client: Client, account_id: &str) -> Self {
        Domains { client, account_id: account_id.to_owned() }
    }

    /// The account's domains, primary first.
    pub async fn list(&self) -> Result<Vec<Domain>> {
        let data: Data<RecordV2> = self.client.json(Request::get(&["api", "v2", "account", &self.account_id])).await?;
        items_of(&data.data, "domains")
    }

    /// Adds a domain (normalised by the server). A domain held by another active account is
    /// `409 domain_already_linked`.
    pub async fn add(&self, domain: &str, if_match: Option<i64>) -> Result<Written<Domain>> {
        let path = ["api", "v2", "account", &self.account_id, "attribute", "domains"];
        let reply =
            self.client.send(Request::post(&path).json(&json!({"domain_name": domain}))?.if_match(if_match)).await?;
        let data: Data<Domain> = reply.json()?;
        Ok(Written { item: data.data, created: reply.status == 201, record_version: reply.version })
    }

    /// Makes `domain` the primary (`true`) or a secondary domain.
    pub async fn set_primary(&self, domain: &str, is_primary: bool, if_match: Option<i64>) -> Result<Written<Domain>> {
        let path = ["api", "v2", "account", &self.account_id, "attribute", "domains", domain];
        let request = Request::patch(&path).json(&json!({"is_primary": is_primary}))?.if_match(if_match);
        let reply = self.client.send(request).await?;
        let data: Data<Domain> = reply.json()?;
        Ok(Written { item: data.data, created: false, record_version: reply.version })
    }

    /// Removes a domain; removing the primary promotes the oldest remaining one.
    pub async fn remove(&self, domain: &str, if_match: Option<i64>) -> Result<()> {
        let path = ["api", "v2", "account", &self.account_id, "attribute", "domains", domain];
        self.client.send(Request::delete(&path).if_match(if_match)).await.map(drop)
    }
}

/// A kind of contact item: [`ContactEmail`] or [`ContactPhone`].
pub trait ContactItem: DeserializeOwned + Send + 'static {
    /// The sub-resource (`contact_emails`).
    const SUB_RESOURCE: &'static str;
    /// The field holding the value (`email`).
    const VALUE_KEY: &'static str;
}

impl ContactItem for ContactEmail {
    const SUB_RESOURCE: &'static str = "contact_emails";
    const VALUE_KEY: &'static str = "email";
}

impl ContactItem for ContactPhone {
    const SUB_RESOURCE: &'static str = "contact_phone_numbers";
    const VALUE_KEY: &'static str = "phone_number";
}

/// How to add an item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemOptions {
    /// Make it the primary (demotes the previous one).
    pub is_primary: bool,
    /// `WORK`, `PERSONAL`, `MOBILE` (any case).
    pub labels: Vec<String>,
    /// The parent contact's version, as a precondition.
    pub if_match: Option<i64>,
}

/// What to change on an item; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemPatch {
    /// The new email or phone number.
    pub value: Option<String>,
    pub is_primary: Option<bool>,
    pub labels: Option<Vec<String>>,
}

/// `{"data": {"id", "envelope": {...item}}}`.
#[derive(Deserialize)]
struct ItemBody<T> {
    envelope: T,
}

/// A contact's emails or phone numbers. Get one with
/// [`Records::emails`](crate::Records::emails) or [`Records::phones`](crate::Records::phones).
pub struct ContactItems<T> {
    client: Client,
    contact_id: String,
    _kind: PhantomData<fn() -> T>,
}

impl<T> Clone for ContactItems<T> {
    fn clone(&self) -> Self {
        ContactItems { client: self.client.clone(), contact_id: self.contact_id.clone(), _kind: PhantomData }
    }
}

impl<T> std::fmt::Debug for ContactItems<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactItems").field("contact_id", &self.contact_id).finish_non_exhaustive()
    }
}

impl<T: ContactItem> ContactItems<T> {
    pub(crate) fn new(client: Client, contact_id: &str) -> Self {
        ContactItems { client, contact_id: contact_id.to_owned(), _kind: PhantomData }
    }

    /// The contact's items.
    pub async fn list(&self) -> Result<Vec<T>> {
        let data: Data<RecordV2> = self.client.json(Request::get(&["api", "v2", "contact", &self.contact_id])).await?;
        items_of(&data.data, T::SUB_RESOURCE)
    }

    async fn write(&self, request: Request<'_>, created_on_201: bool) -> Result<Written<T>> {
        let reply = self.client.send(request).await?;
        let data: Data<ItemBody<T>> = reply.json()?;
        Ok(Written {
            item: data.data.envelope,
            created: created_on_201 && reply.status == 201,
            record_version: reply.version,
        })
    }

    /// Adds an email or phone number (emails are unique per tenant: `409 conflict`).
    pub async fn add(&self, value: &str, options: &ItemOptions) -> Result<Written<T>> {
        let path = ["api", "v2", "contact", &self.contact_id, "attribute", T::SUB_RESOURCE];
        let body = json!({T::VALUE_KEY: value, "is_primary": options.is_primary, "labels": options.labels});
        self.write(Request::post(&path).json(&body)?.if_match(options.if_match), true).await
    }

    /// Changes an item (by its id).
    pub async fn update(&self, item_id: &str, patch: &ItemPatch, if_match: Option<i64>) -> Result<Written<T>> {
        let path = ["api", "v2", "contact", &self.contact_id, "attribute", T::SUB_RESOURCE, item_id];
        let mut body = Map::new();
        if let Some(v) = &patch.value {
            body.insert(T::VALUE_KEY.into(), json!(v));
        }
        if let Some(p) = patch.is_primary {
            body.insert("is_primary".into(), json!(p));
        }
        if let Some(l) = &patch.labels {
            body.insert("labels".into(), json!(l));
        }
        self.write(Request::patch(&path).json(&Value::Object(body))?.if_match(if_match), false).await
    }

    /// Removes an item; removing the primary promotes the oldest remaining one.
    pub async fn remove(&self, item_id: &str, if_match: Option<i64>) -> Result<()> {
        let path = ["api", "v2", "contact", &self.contact_id, "attribute", T::SUB_RESOURCE, item_id];
        self.client.send(Request::delete(&path).if_match(if_match)).await.map(drop)
    }
}
