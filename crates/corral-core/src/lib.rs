//! Corral's pure domain: ids and their spellings, timestamps, values and their coercion,
//! normalisation, the built-in schema registry, the v1 document codec, list queries, cursors
//! and the table of stable error codes. No IO happens in this crate.

pub mod change;
pub mod cursor;
pub mod custom;
pub mod error;
pub mod export;
pub mod filter;
pub mod ids;
pub mod items;
pub mod list;
pub mod normalize;
pub mod record;
pub mod schema;
pub mod tenant;
pub mod timestamp;
pub mod v1;
pub mod v2;
pub mod value;

pub use error::{CoreError, CoreResult, ErrorCode};
pub use ids::{RecordId, RecordType};
pub use record::{Actor, ActorKind, Record, RecordMeta, RecordWrite};
pub use tenant::TenantId;
pub use timestamp::Timestamp;
pub use value::Value;
