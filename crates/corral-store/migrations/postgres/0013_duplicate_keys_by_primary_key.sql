-- A record's duplicate keys are found by their primary key (tenant, type, kind, key, record):
-- the write path knows the keys it replaces, and the startup backfill looks up the keys it
-- computes (crates/corral-store/src/duplicates.rs). The index by record id had no reader
-- left, and cost every key written a second B-tree entry (about an eighth of a database's
-- size at one million accounts).
DROP INDEX duplicate_keys_by_record;
