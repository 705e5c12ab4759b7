//! A typed async Rust client for Corral's HTTP API.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use corral_client::{Account, Auth, Client, Filter, Patch, Query};
//! let client = Client::new("http://127.0.0.1:8080", Auth::bearer(std::env::var("TOKEN")?))?;
//! let acme = client.accounts().create(&Account { name: Some("Initrode".into()), domain: Some("initrode.com".into()), ..Default::default() }).await?;
//! let software = client.accounts().query(&Query::new().filter(Filter::field("industry").eq("software"))).await?;
//! client.accounts().update(&acme.id, &Patch::new().set("lifecycle_stage", "engaged"), Some(acme.version)).await?;
//! # let _ = software; Ok(()) }
//! ```
//!
//! (The README's "Rust client in five lines"; `tests/quickstart.rs` runs the whole README
//! quickstart through this client against the real server.)
//!
//! # What it covers
//!
//! - [`Client`]: base URL, [`Auth`] (bearer token or `X-Api-Key`), one connection pool.
//! - [`Records`] (`client.accounts()`, `client.contacts()`): v1 document CRUD (`list`,
//!   `stream`, `get`, `create`, `update` with `If-Match`, `replace`, `archive`, `restore`,
//!   `purge`), v2 `query` / `query_stream` with the [`Filter`] builder, `assert` (by domain
//!   or email), sub-resources ([`Domains`], [`ContactItems`]) and [`Relationship`]s.
//! - [`Users`] (read-only), [`Schema`] (custom attributes), [`ApiKeys`].
//! - [`Error`]: the server's error body with its stable [`ErrorCode`], or a transport /
//!   decoding error. Pagination is a `futures` stream ([`ItemStream`]) over cursors.
//!
//! # Why hand-written rather than generated from `openapi.json`
//!
//! - **Two dialects.** The same record is a flat v1 document on one route and a map of
//!   typed value envelopes on another; ids have two spellings; lists and queries page with
//!   different bodies. A generator sees unrelated schemas; here one [`Records`] handle
//!   offers both, picking the dialect each operation exists in (CRUD on v1 documents, the
//!   `customer.accounts.*` shape the v1 manifest describes; query/assert/sub-resources/
//!   relationships on v2).
//! - **Tenant-specific attributes.** Custom attributes differ per tenant and change at run
//!   time; the OpenAPI document can only describe them as free-form objects. The typed
//!   structs here carry the built-in fields plus `custom_fields` and a flattened `extra`
//!   map, so no tenant's data is lost and nothing needs regenerating.
//! - **Semantics a schema cannot express.** PATCH's null-clears versus absent-keeps
//!   ([`Patch`]), `If-Match` versions read from `ETag`, `201` vs `200` meaning created vs
//!   already there ([`Written`], [`Asserted`]), cursors that continue alone ([`ItemStream`]).
//! - **Generated Rust from OpenAPI 3.1 is poor.** The usual Rust generators target 3.0 and
//!   handle 3.1's nullable unions (`type: [T, "null"]`), value envelopes and free-form
//!   objects badly, producing large, loosely typed modules. The API is small enough that a
//!   hand-written client is shorter and reads like `docs/API.md`.
//! - **No drift on what matters.** Error codes are `corral_core::ErrorCode` and filter
//!   operators `corral_core::filter::Op`, the server's own tables; the test suite drives
//!   this client against the real router, on SQLite and (with `CORRAL_TEST_DATABASE_URL`)
//!   PostgreSQL. It targets the running server's behaviour, not the OpenAPI text.
//!
//! # HTTPS
//!
//! The client is built without TLS to keep its dependencies small (Corral itself serves
//! plain HTTP, usually behind a TLS-terminating proxy). To reach an `https://` URL, enable a
//! TLS feature of `reqwest` 0.13 in your own crate (`reqwest = { version = "0.13",
//! default-features = false, features = ["rustls"] }`; Cargo unifies features, so this
//! client's `reqwest` gains it) or pass your own `reqwest::Client` to
//! [`ClientBuilder::http_client`].

pub mod admin;
pub mod client;
pub mod error;
pub mod model;
pub mod paging;
pub mod patch;
pub mod query;
pub mod records;
pub mod relationships;
pub mod sub_resources;
pub mod users;

pub use admin::{ApiKey, ApiKeys, AttributeOption, AttributeSchema, NewApiKey, NewAttribute, Schema};
pub use client::{Auth, Client, ClientBuilder};
pub use corral_core::{ErrorCode, RecordType};
pub use error::{ApiError, Error, Result};
pub use futures_util::{Stream, StreamExt, TryStreamExt};
pub use model::{
    Account, Address, AssertOutcome, Asserted, AttributeValue, Contact, ContactEmail, ContactPhone, Domain, Edge,
    Envelope, Page, RecordV2, User, Written,
};
pub use paging::ItemStream;
pub use patch::Patch;
pub use query::{Count, FieldRef, Filter, ListParams, Op, Query};
pub use records::{Document, Records};
pub use relationships::{EdgeAttributes, Relationship};
pub use sub_resources::{ContactItem, ContactItems, Domains, ItemOptions, ItemPatch};
pub use users::Users;
