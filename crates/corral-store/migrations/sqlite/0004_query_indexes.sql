-- Indexes for the documented query shapes (docs/CONTRACT.md §7.4): tags as rows so that any-tag filters
-- use an index, and composite indexes for common filter + sort pairs.

CREATE TABLE record_tags (
    tenant_id   TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    tag_key     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, record_type, record_id, tag_key)
);
CREATE INDEX record_tags_by_tag ON record_tags (tenant_id, record_type, tag_key);
INSERT OR IGNORE INTO record_tags SELECT accounts.tenant_id, 'account', accounts.id, lower(json_each.value) FROM accounts, json_each(accounts.tags);
INSERT OR IGNORE INTO record_tags SELECT contacts.tenant_id, 'contact', contacts.id, lower(json_each.value) FROM contacts, json_each(contacts.tags);

-- Filter on industry, then sort: the index returns rows in order, so a page stops early.
CREATE INDEX accounts_industry_employees ON accounts (tenant_id, lower(industry), employee_count, id);
CREATE INDEX accounts_industry_created ON accounts (tenant_id, lower(industry), created_at, id);
-- Stage equality with the default newest-first order, served by one index.
DROP INDEX accounts_stage;
CREATE INDEX accounts_stage_created ON accounts (tenant_id, lifecycle_stage, created_at, id);
CREATE INDEX contacts_stage_created ON contacts (tenant_id, stage, created_at, id);
CREATE INDEX contacts_primary_email ON contacts (tenant_id, lower(primary_email));
