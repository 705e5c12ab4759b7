-- The FTS5 search index is written once per transaction, just before COMMIT, instead of by a
-- trigger per row (docs/PERFORMANCE.md, "Bulk import and export"). FTS5 writes its pending
-- rows out as a new index segment at every savepoint and at the end of every statement that
-- needs a statement journal, so a trigger writing search_fts made each record write flush a
-- tiny segment that automerge then kept merging (~20-30 % of a bulk import's time).
--
-- Now the search_values triggers only queue the change here, in write order; the writer
-- connection's commit (crate::sqlite, SqliteTx::commit) replays the queue into search_fts in
-- one statement and empties it, in the same transaction. Readers only ever see committed
-- data, so they never see search_values and search_fts out of step.
CREATE TABLE search_fts_queue (
    seq   INTEGER PRIMARY KEY,
    -- NULL: index the value; 'delete': remove it (FTS5's delete command for external content).
    op    TEXT,
    key   INTEGER NOT NULL,
    value TEXT    NOT NULL
);

DROP TRIGGER search_values_ai;
DROP TRIGGER search_values_ad;
CREATE TRIGGER search_values_ai AFTER INSERT ON search_values BEGIN
    INSERT INTO search_fts_queue (op, key, value) VALUES (NULL, new.key, new.value);
END;
CREATE TRIGGER search_values_ad AFTER DELETE ON search_values BEGIN
    INSERT INTO search_fts_queue (op, key, value) VALUES ('delete', old.key, old.value);
END;
