-- Record merges (docs/API.md "Merging records"). A merge archives each loser and keeps its id
-- as an alias of the winner, so reads, writes and references by a loser's id reach the
-- winner. record_merges logs what each merge moved, which is what _unmerge puts back.
CREATE TABLE record_merges (
    tenant_id   TEXT    NOT NULL,
    merge_id    TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    winner_id   TEXT    NOT NULL,
    -- JSON: the loser ids, in request order.
    loser_ids   TEXT    NOT NULL,
    -- JSON: what the merge moved (edges, items, references, re-pointed aliases).
    undo        TEXT    NOT NULL,
    merged_at   BIGINT  NOT NULL,
    merged_by   TEXT    NOT NULL,
    undone_at   BIGINT,
    PRIMARY KEY (tenant_id, merge_id)
);
CREATE INDEX record_merges_winner ON record_merges (tenant_id, record_type, winner_id, merged_at);

-- One row per merged-away id: the record it resolves to now (chains are kept flat: merging a
-- winner away re-points its aliases to the new winner).
CREATE TABLE record_aliases (
    tenant_id   TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    alias_id    TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    merge_id    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, record_type, alias_id)
);
CREATE INDEX record_aliases_target ON record_aliases (tenant_id, record_type, record_id);
