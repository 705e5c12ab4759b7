-- PostgreSQL twin of sqlite/0003_custom_attributes.sql.
-- Per-tenant custom attributes (docs/CONTRACT.md §6) and per-tenant option lists of select and stage
-- attributes (a built-in stage attribute without a row uses the default stages).

CREATE TABLE custom_attributes (
    tenant_id   TEXT COLLATE "C"    NOT NULL,
    record_type TEXT COLLATE "C"    NOT NULL,
    api_name    TEXT COLLATE "C"    NOT NULL,
    definition  TEXT COLLATE "C"    NOT NULL,
    created_at  BIGINT NOT NULL,
    archived_at BIGINT,
    PRIMARY KEY (tenant_id, record_type, api_name)
);

CREATE TABLE attribute_options (
    tenant_id   TEXT COLLATE "C"    NOT NULL,
    record_type TEXT COLLATE "C"    NOT NULL,
    api_name    TEXT COLLATE "C"    NOT NULL,
    options     TEXT COLLATE "C"    NOT NULL,
    PRIMARY KEY (tenant_id, record_type, api_name)
);
