-- Exact email lookups (`contact_emails eq`, v1 `?email=`) read the key index by email: the
-- partial unique index covers only unreleased emails, and a filter also matches archived
-- contacts' emails when archived records are asked for (docs/PERFORMANCE.md, "Query plans at scale").
CREATE INDEX contact_emails_by_key ON contact_emails (tenant_id, email_key);
