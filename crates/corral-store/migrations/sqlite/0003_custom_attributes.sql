-- Per-tenant custom attributes (docs/CONTRACT.md §6) and per-tenant option lists of select and stage
-- attributes (a built-in stage attribute without a row uses the default stages).

CREATE TABLE custom_attributes (
    tenant_id   TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    api_name    TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    archived_at INTEGER,
    PRIMARY KEY (tenant_id, record_type, api_name)
);

CREATE TABLE attribute_options (
    tenant_id   TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    api_name    TEXT    NOT NULL,
    options     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, record_type, api_name)
);
