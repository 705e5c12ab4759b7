-- SQLite only (its 0012 rebuilds the side tables as WITHOUT ROWID tables); PostgreSQL's
-- tables have no hidden rowid to drop. The number is kept so both lists stay in step.
SELECT 1;
