//! Test support: a fresh, isolated database for each test, on SQLite always and on
//! PostgreSQL when `CORRAL_TEST_DATABASE_URL` is set (each test then gets its own schema in
//! that database). Used by the store, HTTP and CLI test suites so they run identically on both.

use crate::{DatabaseUrl, StoreError, StoreResult};
use std::path::Path;

/// The environment variable naming the PostgreSQL database tests run on.
pub const TEST_DATABASE_ENV: &str = "CORRAL_TEST_DATABASE_URL";

/// The PostgreSQL URL tests should use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var(TEST_DATABASE_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// A database URL no other test uses: a SQLite file under `dir`, or a new schema in the
/// test PostgreSQL database (selected through the connection's `search_path`).
pub async fn fresh_database(dir: &Path) -> StoreResult<String> {
    match postgres_url() {
        None => Ok(format!("sqlite://{}", dir.join("corral.db").display())),
        Some(url) => {
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| StoreError::Unavailable(format!("test database: {e}")))?;
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .map_err(|e| StoreError::Internal(format!("cannot create test schema: {e}")))?;
            let separator = if url.contains('?') { '&' } else { '?' };
            Ok(format!("{url}{separator}options=-c%20search_path%3D{schema}"))
        }
    }
}

/// [`fresh_database`], parsed.
pub async fn fresh_database_url(dir: &Path) -> StoreResult<DatabaseUrl> {
    DatabaseUrl::parse(&fresh_database(dir).await?).map_err(StoreError::Internal)
}
