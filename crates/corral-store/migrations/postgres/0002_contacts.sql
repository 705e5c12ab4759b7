-- Contacts (docs/CONTRACT.md §4.3), their unique emails, and the account <-> contact junction (§7.5).
-- PostgreSQL twin of sqlite/0002_contacts.sql (same conventions as 0001).

CREATE TABLE contacts (
    tenant_id             TEXT COLLATE "C"    NOT NULL,
    id                    TEXT COLLATE "C"    NOT NULL,
    app_id                TEXT COLLATE "C",
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    created_by            TEXT COLLATE "C"    NOT NULL,
    updated_by            TEXT COLLATE "C"    NOT NULL,
    deleted_at            BIGINT,
    deleted_by            TEXT COLLATE "C",
    schema_version        BIGINT NOT NULL,
    version               BIGINT NOT NULL,
    source                TEXT COLLATE "C",
    source_type           TEXT COLLATE "C",
    first_name            TEXT COLLATE "C",
    last_name             TEXT COLLATE "C",
    middle_name           TEXT COLLATE "C",
    display_name          TEXT COLLATE "C",
    job_title             TEXT COLLATE "C",
    department            TEXT COLLATE "C",
    seniority             TEXT COLLATE "C",
    decision_role         TEXT COLLATE "C",
    stage                 TEXT COLLATE "C",
    owner_id              TEXT COLLATE "C",
    linkedin_url          TEXT COLLATE "C",
    reports_to_contact_id TEXT COLLATE "C",
    last_interaction_at   BIGINT,
    opted_in              BOOLEAN,
    opted_in_at           BIGINT,
    address               TEXT NOT NULL DEFAULT '[]',
    tags                  TEXT NOT NULL DEFAULT '[]',
    emails                TEXT NOT NULL DEFAULT '[]',
    phones                TEXT NOT NULL DEFAULT '[]',
    primary_email         TEXT COLLATE "C",
    primary_phone         TEXT COLLATE "C",
    primary_account_id    TEXT COLLATE "C",
    custom_fields         TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contacts_created ON contacts (tenant_id, created_at, id);
CREATE INDEX contacts_updated ON contacts (tenant_id, updated_at, id);
CREATE INDEX contacts_owner ON contacts (tenant_id, owner_id);
CREATE INDEX contacts_account ON contacts (tenant_id, primary_account_id);
CREATE INDEX contacts_reports_to ON contacts (tenant_id, reports_to_contact_id);

-- One row per email of a contact, for per-tenant case-insensitive uniqueness and for
-- auto-association by email domain. `released` while the contact is archived.
CREATE TABLE contact_emails (
    tenant_id    TEXT COLLATE "C"    NOT NULL,
    contact_id   TEXT COLLATE "C"    NOT NULL,
    email_key    TEXT COLLATE "C"    NOT NULL,
    email_domain TEXT COLLATE "C"    NOT NULL,
    is_primary   BOOLEAN NOT NULL,
    added_at     BIGINT NOT NULL,
    released     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (tenant_id, contact_id, email_key)
);
CREATE UNIQUE INDEX contact_emails_claimed ON contact_emails (tenant_id, email_key) WHERE NOT released;
CREATE INDEX contact_emails_by_domain ON contact_emails (tenant_id, email_domain);

-- The account <-> contact relationship; at most one primary account per contact.
CREATE TABLE account_contacts (
    tenant_id  TEXT COLLATE "C"    NOT NULL,
    account_id TEXT COLLATE "C"    NOT NULL,
    contact_id TEXT COLLATE "C"    NOT NULL,
    role       TEXT COLLATE "C",
    is_primary BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, account_id, contact_id)
);
CREATE UNIQUE INDEX account_contacts_primary ON account_contacts (tenant_id, contact_id) WHERE is_primary;
CREATE INDEX account_contacts_by_contact ON account_contacts (tenant_id, contact_id);
