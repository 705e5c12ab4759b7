//! [`Records`]: one record type's operations, `client.accounts()` and `client.contacts()`.
//!
//! CRUD is on v1 documents (`/api/v1/crm/{accounts|contacts}`), the flat shape most
//! integrations store and the `customer.accounts.*` namespace of the v1 manifest. Querying
//! (`_query`), asserting (`_assert`), sub-resources and relationships exist only in v2, so
//! those methods speak v2 and return [`RecordV2`]s. Ids are accepted in either spelling
//! (`acc-<uuid>` or the bare UUID).

use crate::client::{Client, Request};
use crate::error::Result;
use crate::model::{Account, AssertOutcome, Asserted, Contact, Page, RecordV2};
use crate::paging::{self, ItemStream};
use crate::query::{ListParams, Query};
use crate::relationships::Relationship;
use crate::sub_resources::{ContactItems, Domains};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::marker::PhantomData;

/// A v1 document type: [`Account`] or [`Contact`].
pub trait Document: DeserializeOwned + Serialize + Send + 'static {
    /// The v1 collection (`accounts`).
    const COLLECTION: &'static str;
    /// The v2 record type (`account`).
    const RECORD_TYPE: &'static str;
}

/// `{"data": [...], "next_cursor", "total"?, "total_is_estimate"?}`.
#[derive(Deserialize)]
struct V1List<T> {
    data: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
    #[serde(default)]
    total: Option<i64>,
    #[serde(default)]
    total_is_estimate: Option<bool>,
}

/// `{"data": [...], "next_cursor", "meta"?: {"total", "total_is_estimate"}}`.
#[derive(Deserialize)]
pub(crate) struct V2List<T> {
    data: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
    #[serde(default)]
    meta: Option<V2Meta>,
}

#[derive(Deserialize, Default)]
struct V2Meta {
    #[serde(default)]
    total: Option<i64>,
    #[serde(default)]
    total_is_estimate: Option<bool>,
}

impl<T> V2List<T> {
    pub(crate) fn into_page(self) -> Page<T> {
        let meta = self.meta.unwrap_or_default();
        Page {
            items: self.data,
            next_cursor: self.next_cursor,
            total: meta.total,
            total_is_estimate: meta.total_is_estimate,
        }
    }
}

/// `{"data": X}`.
#[derive(Deserialize)]
pub(crate) struct Data<T> {
    pub data: T,
}

/// Runs `_query` for `record_type`.
pub(crate) async fn query_page<T: DeserializeOwned>(
    client: &Client,
    record_type: &str,
    query: &Query,
) -> Result<Page<T>> {
    let list: V2List<T> = client.json(Request::post(&["api", "v2", record_type, "_query"]).json(query)?).await?;
    Ok(list.into_page())
}

/// Streams every match of `query` for `record_type`.
pub(crate) fn query_stream<T: DeserializeOwned + Send + 'static>(
    client: Client,
    record_type: &'static str,
    query: Query,
) -> ItemStream<T> {
    paging::items(move |cursor: Option<String>| {
        let (client, body) = (client.clone(), cursor.map_or_else(|| query.clone(), |c| query.continuation(c)));
        async move { query_page(&client, record_type, &body).await }
    })
}

/// The operations on one record type. Get one with [`Client::accounts`] or
/// [`Client::contacts`].
pub struct Records<D> {
    client: Client,
    _type: PhantomData<fn() -> D>,
}

impl<D> Clone for Records<D> {
    fn clone(&self) -> Self {
        Records { client: self.client.clone(), _type: PhantomData }
    }
}

impl<D> std::fmt::Debug for Records<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("type", &std::any::type_name::<D>()).finish()
    }
}

impl<D: Document> Records<D> {
    pub(crate) fn new(client: Client) -> Self {
        Records { client, _type: PhantomData }
    }

    fn collection(&self) -> [&'static str; 4] {
        ["api", "v1", "crm", D::COLLECTION]
    }

    /// One page of documents (newest first unless sorted otherwise).
    pub async fn list(&self, params: &ListParams) -> Result<Page<D>> {
        self.list_pairs(params.pairs()).await
    }

    async fn list_pairs(&self, pairs: Vec<(String, String)>) -> Result<Page<D>> {
        let list: V1List<D> = self.client.json(Request::get(&self.collection()).query(pairs)).await?;
        Ok(Page {
            items: list.data,
            next_cursor: list.next_cursor,
            total: list.total,
            total_is_estimate: list.total_is_estimate,
        })
    }

    /// Every document the list matches, page after page (`params.limit` per request).
    pub fn stream(&self, params: ListParams) -> ItemStream<D> {
        let this = self.clone();
        paging::items(move |cursor: Option<String>| {
            let this = this.clone();
            let pairs = cursor.map_or_else(|| params.pairs(), |c| params.continuation(c));
            async move { this.list_pairs(pairs).await }
        })
    }

    /// An active document (`404 record_not_found` when archived or missing).
    pub async fn get(&self, id: &str) -> Result<D> {
        let [a, b, c, d] = self.collection();
        self.client.json(Request::get(&[a, b, c, d, id])).await
    }

    /// A document, archived or not.
    pub async fn get_including_archived(&self, id: &str) -> Result<D> {
        let [a, b, c, d] = self.collection();
        self.client.json(Request::get(&[a, b, c, d, id]).param("include_deleted", true)).await
    }

    /// Creates a document from a typed struct, a [`Patch`](crate::Patch) or any JSON object.
    pub async fn create(&self, document: &impl Serialize) -> Result<D> {
        self.client.json(Request::post(&self.collection()).json(document)?).await
    }

    /// Creates once per `key` (`Idempotency-Key`): a retry with the same key and body gets
    /// the first response back; the same key with another body is `idempotency_key_reused`.
    pub async fn create_idempotent(&self, document: &impl Serialize, key: &str) -> Result<D> {
        let path = self.collection();
        self.client.json(Request::post(&path).json(document)?.header("idempotency-key", key)).await
    }

    /// PATCH: changes the fields sent. With `if_match: Some(version)` it applies only if
    /// the document is still at that version (else `412 precondition_failed`).
    pub async fn update(&self, id: &str, patch: &impl Serialize, if_match: Option<i64>) -> Result<D> {
        let [a, b, c, d] = self.collection();
        self.client.json(Request::patch(&[a, b, c, d, id]).json(patch)?.if_match(if_match)).await
    }

    /// PUT: replaces every writable field; fields not sent are cleared.
    pub async fn replace(&self, id: &str, document: &impl Serialize, if_match: Option<i64>) -> Result<D> {
        let [a, b, c, d] = self.collection();
        self.client.json(Request::new(reqwest::Method::PUT, &[a, b, c, d, id]).json(document)?.if_match(if_match)).await
    }

    /// Archives (soft-deletes) and returns the archived document.
    pub async fn archive(&self, id: &str) -> Result<D> {
        let [a, b, c, d] = self.collection();
        self.client.json(Request::delete(&[a, b, c, d, id])).await
    }

    /// Restores an archived document (an active one is returned unchanged).
    pub async fn restore(&self, id: &str) -> Result<D> {
        let [a, b, c, d] = self.collection();
        self.client.json(Request::post(&[a, b, c, d, id, "restore"])).await
    }

    /// Deletes for good (admin).
    pub async fn purge(&self, id: &str) -> Result<()> {
        let [a, b, c, d] = self.collection();
        self.client.send(Request::delete(&[a, b, c, d, id]).param("purge", true)).await.map(drop)
    }

    /// One page of a v2 `_query`.
    pub async fn query(&self, query: &Query) -> Result<Page<RecordV2>> {
        query_page(&self.client, D::RECORD_TYPE, query).await
    }

    /// Every match of a v2 `_query`, page after page.
    pub fn query_stream(&self, query: Query) -> ItemStream<RecordV2> {
        query_stream(self.client.clone(), D::RECORD_TYPE, query)
    }

    /// The v2 record (every attribute as an envelope, custom ones included).
    pub async fn get_record(&self, id: &str) -> Result<RecordV2> {
        let data: Data<RecordV2> = self.client.json(Request::get(&["api", "v2", D::RECORD_TYPE, id])).await?;
        Ok(data.data)
    }

    /// `_assert`: updates the record the match keys find with `attributes` (v2 names), or
    /// creates one with the match values as its primary domain / email. Keys: account `id`,
    /// `domain_name`; contact `id`, `primary_email`, `contact_emails`.
    pub async fn assert(&self, keys: &[(&str, &str)], attributes: &impl Serialize) -> Result<Asserted> {
        let keys: Map<String, Value> = keys.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        let body =
            json!({"match": keys, "attributes": serde_json::to_value(attributes).map_err(crate::Error::Encode)?});
        let reply = self.client.send(Request::post(&["api", "v2", D::RECORD_TYPE, "_assert"]).json(&body)?).await?;
        #[derive(Deserialize)]
        struct Answer {
            data: RecordV2,
            #[serde(default)]
            meta: Map<String, Value>,
        }
        let answer: Answer = reply.json()?;
        let outcome = match answer.meta.get("action").and_then(Value::as_str) {
            Some("created") => AssertOutcome::Created,
            Some(_) => AssertOutcome::Updated,
            None if reply.status == 201 => AssertOutcome::Created,
            None => AssertOutcome::Updated,
        };
        Ok(Asserted { record: answer.data, outcome })
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

impl Records<Account> {
    /// `_assert` by domain: the account holding `domain`, or a new one with it as primary.
    pub async fn assert_by_domain(&self, domain: &str, attributes: &impl Serialize) -> Result<Asserted> {
        self.assert(&[("domain_name", domain)], attributes).await
    }

    /// The account's domains (`POST`/`PATCH`/`DELETE …/attribute/domains`).
    pub fn domains(&self, account_id: &str) -> Domains {
        Domains::new(self.client().clone(), account_id)
    }

    /// The account's `contacts` relationship.
    pub fn contacts(&self, account_id: &str) -> Relationship {
        Relationship::new(self.client().clone(), "account", account_id, "contacts")
    }
}

impl Records<Contact> {
    /// `_assert` by email: the contact with that primary email, or a new one with it.
    pub async fn assert_by_email(&self, email: &str, attributes: &impl Serialize) -> Result<Asserted> {
        self.assert(&[("primary_email", email)], attributes).await
    }

    /// The contact's emails (`…/attribute/contact_emails`).
    pub fn emails(&self, contact_id: &str) -> ContactItems<crate::model::ContactEmail> {
        ContactItems::new(self.client().clone(), contact_id)
    }

    /// The contact's phone numbers (`…/attribute/contact_phone_numbers`).
    pub fn phones(&self, contact_id: &str) -> ContactItems<crate::model::ContactPhone> {
        ContactItems::new(self.client().clone(), contact_id)
    }

    /// The contact's `accounts` relationship.
    pub fn accounts(&self, contact_id: &str) -> Relationship {
        Relationship::new(self.client().clone(), "contact", contact_id, "accounts")
    }
}
