-- Nothing to change on PostgreSQL: this number moves SQLite's FTS5 index writes to commit time
-- (migrations/sqlite/0011_search_index_at_commit.sql); the pg_trgm GIN indexes here have no
-- per-statement flush. Kept so both backends count their migrations alike.
SELECT 1;
