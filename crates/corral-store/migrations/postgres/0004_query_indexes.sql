-- PostgreSQL twin of sqlite/0004_query_indexes.sql.

CREATE TABLE record_tags (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    record_type TEXT COLLATE "C" NOT NULL,
    record_id   TEXT COLLATE "C" NOT NULL,
    tag_key     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, record_type, record_id, tag_key)
);
CREATE INDEX record_tags_by_tag ON record_tags (tenant_id, record_type, tag_key);
INSERT INTO record_tags SELECT accounts.tenant_id, 'account', accounts.id, lower(t COLLATE "C") FROM accounts, jsonb_array_elements_text(accounts.tags::jsonb) AS t ON CONFLICT DO NOTHING;
INSERT INTO record_tags SELECT contacts.tenant_id, 'contact', contacts.id, lower(t COLLATE "C") FROM contacts, jsonb_array_elements_text(contacts.tags::jsonb) AS t ON CONFLICT DO NOTHING;

CREATE INDEX accounts_industry_employees ON accounts (tenant_id, lower(industry), employee_count, id);
CREATE INDEX accounts_industry_created ON accounts (tenant_id, lower(industry), created_at, id);
-- Stage equality with the default newest-first order, served by one index.
DROP INDEX accounts_stage;
CREATE INDEX accounts_stage_created ON accounts (tenant_id, lifecycle_stage, created_at, id);
CREATE INDEX contacts_stage_created ON contacts (tenant_id, stage, created_at, id);
CREATE INDEX contacts_primary_email ON contacts (tenant_id, lower(primary_email));
