//! Handlers, one module per resource family. Handlers are thin: check permission, parse with
//! the core codecs, call the store, render.

pub mod admin;
pub mod bulk;
pub mod changes;
pub mod docs;
pub mod duplicates;
pub mod export;
pub mod health;
pub mod merge;
pub mod relationships;
pub mod schema_admin;
pub mod shared;
pub mod token;
pub mod v1_records;
pub mod v2_records;
pub mod webhooks;
