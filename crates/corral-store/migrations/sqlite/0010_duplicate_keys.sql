-- Duplicate candidates (docs/API.md, "Duplicate candidates"): the blocking keys of every active
-- account and contact (normalised name, name without legal suffix, name sketch, phone, domain,
-- name at account), computed in Rust by the write funnel (crates/corral-store/src/duplicates.rs),
-- so candidates come from index lookups instead of comparing every pair of records.
CREATE TABLE duplicate_keys (
    tenant_id   TEXT NOT NULL,
    record_type TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, record_type, kind, key, record_id)
);
-- A record's keys (for the backfill). Led by the record id, so it never looks like a way
-- to read a tenant's keys to a planner without statistics.
CREATE INDEX duplicate_keys_by_record ON duplicate_keys (record_id, tenant_id, record_type);

-- One row per key value with its number of records; only keys held by two or more records
-- (the partial index) are blocks worth reading, in (kind, key) order for the cursor.
CREATE TABLE duplicate_blocks (
    tenant_id   TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    members     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, record_type, kind, key)
);
CREATE INDEX duplicate_blocks_shared ON duplicate_blocks (tenant_id, record_type, kind, key) WHERE members > 1;

-- Existing records get their keys at startup, in batches, after the position noted here
-- (the keys are computed in Rust); the row goes once its record type is done.
CREATE TABLE duplicate_key_backfill (
    record_type TEXT NOT NULL PRIMARY KEY,
    after_tenant TEXT NOT NULL,
    after_id    TEXT NOT NULL
);
INSERT INTO duplicate_key_backfill (record_type, after_tenant, after_id) VALUES ('account', '', ''), ('contact', '', '');
