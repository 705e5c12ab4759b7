-- The outbox of record changes (docs/API.md "Change feed"): one row per changed record per
-- write transaction, appended in that transaction. `xid` is the writing transaction's id:
-- the feed orders by (xid, seq) and serves only transactions older than every running one
-- (pg_snapshot_xmin), so a transaction that commits late is never skipped.
CREATE TABLE record_changes (
    seq         BIGSERIAL PRIMARY KEY,
    xid         BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id    TEXT COLLATE "C" NOT NULL,
    tenant_id   TEXT COLLATE "C" NOT NULL,
    app_id      TEXT COLLATE "C",
    record_type TEXT COLLATE "C" NOT NULL,
    record_id   TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    actor_type  TEXT COLLATE "C" NOT NULL,
    actor_id    TEXT COLLATE "C" NOT NULL,
    request_id  TEXT COLLATE "C",
    version     BIGINT NOT NULL,
    changes     TEXT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX record_changes_feed ON record_changes (tenant_id, xid, seq);
CREATE INDEX record_changes_history ON record_changes (tenant_id, record_type, record_id, xid, seq);
CREATE INDEX record_changes_age ON record_changes (occurred_at);

-- The newest feed position retention has deleted: a cursor before it has missed events.
CREATE TABLE record_changes_pruned (
    id  INTEGER PRIMARY KEY,
    xid BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
INSERT INTO record_changes_pruned (id, xid, seq) VALUES (1, 0, 0);

-- One owner for a contact's primary account: contacts.primary_account_id. An edge's
-- is_primary is derived from it when read.
DROP INDEX account_contacts_primary;
ALTER TABLE account_contacts DROP COLUMN is_primary;
