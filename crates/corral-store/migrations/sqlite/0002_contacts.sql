-- Contacts (docs/CONTRACT.md §4.3), their unique emails, and the account <-> contact junction (§7.5).

CREATE TABLE contacts (
    tenant_id             TEXT    NOT NULL,
    id                    TEXT    NOT NULL,
    app_id                TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    created_by            TEXT    NOT NULL,
    updated_by            TEXT    NOT NULL,
    deleted_at            INTEGER,
    deleted_by            TEXT,
    schema_version        INTEGER NOT NULL,
    version               INTEGER NOT NULL,
    source                TEXT,
    source_type           TEXT,
    first_name            TEXT,
    last_name             TEXT,
    middle_name           TEXT,
    display_name          TEXT,
    job_title             TEXT,
    department            TEXT,
    seniority             TEXT,
    decision_role         TEXT,
    stage                 TEXT,
    owner_id              TEXT,
    linkedin_url          TEXT,
    reports_to_contact_id TEXT,
    last_interaction_at   INTEGER,
    opted_in              INTEGER,
    opted_in_at           INTEGER,
    address               TEXT    NOT NULL DEFAULT '[]',
    tags                  TEXT    NOT NULL DEFAULT '[]',
    emails                TEXT    NOT NULL DEFAULT '[]',
    phones                TEXT    NOT NULL DEFAULT '[]',
    primary_email         TEXT,
    primary_phone         TEXT,
    primary_account_id    TEXT,
    custom_fields         TEXT    NOT NULL DEFAULT '{}',
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
    tenant_id    TEXT    NOT NULL,
    contact_id   TEXT    NOT NULL,
    email_key    TEXT    NOT NULL,
    email_domain TEXT    NOT NULL,
    is_primary   INTEGER NOT NULL,
    added_at     INTEGER NOT NULL,
    released     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, contact_id, email_key)
);
CREATE UNIQUE INDEX contact_emails_claimed ON contact_emails (tenant_id, email_key) WHERE released = 0;
CREATE INDEX contact_emails_by_domain ON contact_emails (tenant_id, email_domain);

-- The account <-> contact relationship; at most one primary account per contact.
CREATE TABLE account_contacts (
    tenant_id  TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    contact_id TEXT    NOT NULL,
    role       TEXT,
    is_primary INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, account_id, contact_id)
);
CREATE UNIQUE INDEX account_contacts_primary ON account_contacts (tenant_id, contact_id) WHERE is_primary = 1;
CREATE INDEX account_contacts_by_contact ON account_contacts (tenant_id, contact_id);
