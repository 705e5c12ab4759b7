//! Embedded, numbered migrations, one list per backend, applied in one transaction.

use crate::db::{Conn, Dialect, SqlValue};
use crate::{StoreError, StoreResult};
use corral_core::Timestamp;

/// A migration: its number, a short name and its SQL.
pub type Migration = (i64, &'static str, &'static str);

const SQLITE: &[Migration] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "contacts", include_str!("../migrations/sqlite/0002_contacts.sql")),
    (3, "custom_attributes", include_str!("../migrations/sqlite/0003_custom_attributes.sql")),
    (4, "query_indexes", include_str!("../migrations/sqlite/0004_query_indexes.sql")),
    (5, "change_events", include_str!("../migrations/sqlite/0005_change_events.sql")),
    (6, "key_lookup_indexes", include_str!("../migrations/sqlite/0006_key_lookup_indexes.sql")),
    (7, "search_index", include_str!("../migrations/sqlite/0007_search_index.sql")),
    (8, "webhooks", include_str!("../migrations/sqlite/0008_webhooks.sql")),
    (9, "merges", include_str!("../migrations/sqlite/0009_merges.sql")),
    (10, "duplicate_keys", include_str!("../migrations/sqlite/0010_duplicate_keys.sql")),
    (11, "search_index_at_commit", include_str!("../migrations/sqlite/0011_search_index_at_commit.sql")),
    (12, "side_tables_without_rowid", include_str!("../migrations/sqlite/0012_side_tables_without_rowid.sql")),
    (13, "duplicate_keys_by_primary_key", include_str!("../migrations/sqlite/0013_duplicate_keys_by_primary_key.sql")),
];
const POSTGRES: &[Migration] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "contacts", include_str!("../migrations/postgres/0002_contacts.sql")),
    (3, "custom_attributes", include_str!("../migrations/postgres/0003_custom_attributes.sql")),
    (4, "query_indexes", include_str!("../migrations/postgres/0004_query_indexes.sql")),
    (5, "change_events", include_str!("../migrations/postgres/0005_change_events.sql")),
    (6, "key_lookup_indexes", include_str!("../migrations/postgres/0006_key_lookup_indexes.sql")),
    (7, "search_index", include_str!("../migrations/postgres/0007_search_index.sql")),
    (8, "webhooks", include_str!("../migrations/postgres/0008_webhooks.sql")),
    (9, "merges", include_str!("../migrations/postgres/0009_merges.sql")),
    (10, "duplicate_keys", include_str!("../migrations/postgres/0010_duplicate_keys.sql")),
    (11, "search_index_at_commit", include_str!("../migrations/postgres/0011_search_index_at_commit.sql")),
    (12, "side_tables_without_rowid", include_str!("../migrations/postgres/0012_side_tables_without_rowid.sql")),
    (
        13,
        "duplicate_keys_by_primary_key",
        include_str!("../migrations/postgres/0013_duplicate_keys_by_primary_key.sql"),
    ),
];

/// Applies every migration newer than the database's; refuses a database migrated by a newer
/// Corral (its schema may not be what this binary expects).
pub async fn run<C: Conn>(c: &mut C) -> StoreResult<()> {
    let migrations = match c.dialect() {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => {
            // Instances starting together must not migrate at once; SQLite's write
            // transaction already excludes other writers.
            c.execute_batch("SELECT pg_advisory_xact_lock(7306010001)").await?;
            POSTGRES
        }
    };
    c.execute_batch("CREATE TABLE IF NOT EXISTS corral_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)").await?;
    let current =
        c.query_opt("SELECT MAX(version) FROM corral_migrations", &[]).await?.and_then(|mut r| r.int(0)).unwrap_or(0);
    let latest = migrations.last().map(|m| m.0).unwrap_or(0);
    if current > latest {
        return Err(StoreError::Internal(format!(
            "database schema is at version {current}, newer than this Corral ({latest})"
        )));
    }
    for (version, name, sql) in migrations.iter().filter(|m| m.0 > current) {
        tracing::info!(version, name, "applying migration");
        c.execute_batch(sql).await?;
        c.execute(
            "INSERT INTO corral_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[SqlValue::Int(*version), SqlValue::text(*name), SqlValue::Int(Timestamp::now().millis())],
        )
        .await?;
    }
    Ok(())
}
