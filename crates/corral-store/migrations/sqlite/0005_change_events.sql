-- The outbox of record changes (docs/API.md "Change feed"): one row per changed record per
-- write transaction, appended in that transaction. SQLite has one writer, so the
-- autoincrement `seq` is commit order; `xid` is always 0 here (it orders PostgreSQL's feed).
CREATE TABLE record_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    xid         INTEGER NOT NULL DEFAULT 0,
    event_id    TEXT    NOT NULL,
    tenant_id   TEXT    NOT NULL,
    app_id      TEXT,
    record_type TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    actor_type  TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL,
    request_id  TEXT,
    version     INTEGER NOT NULL,
    changes     TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL
);
CREATE INDEX record_changes_feed ON record_changes (tenant_id, xid, seq);
CREATE INDEX record_changes_history ON record_changes (tenant_id, record_type, record_id, xid, seq);
CREATE INDEX record_changes_age ON record_changes (occurred_at);

-- The newest feed position retention has deleted: a cursor before it has missed events.
CREATE TABLE record_changes_pruned (
    id  INTEGER PRIMARY KEY,
    xid INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
INSERT INTO record_changes_pruned (id, xid, seq) VALUES (1, 0, 0);

-- One owner for a contact's primary account: contacts.primary_account_id. An edge's
-- is_primary is derived from it when read.
DROP INDEX account_contacts_primary;
ALTER TABLE account_contacts DROP COLUMN is_primary;
