-- Corral schema v1 (SQLite). Timestamps are UTC epoch milliseconds; ids are canonical UUID
-- text; booleans are 0/1; arrays and objects are JSON text. tenant_id leads every key.

CREATE TABLE accounts (
    tenant_id          TEXT    NOT NULL,
    id                 TEXT    NOT NULL,
    app_id             TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    created_by         TEXT    NOT NULL,
    updated_by         TEXT    NOT NULL,
    deleted_at         INTEGER,
    deleted_by         TEXT,
    schema_version     INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    source             TEXT,
    source_type        TEXT,
    name               TEXT,
    legal_name         TEXT,
    industry           TEXT,
    sub_industry       TEXT,
    website            TEXT,
    websites           TEXT    NOT NULL DEFAULT '[]',
    phone              TEXT,
    linkedin_url       TEXT,
    x_url              TEXT,
    facebook_url       TEXT,
    zoominfo_url       TEXT,
    addresses          TEXT    NOT NULL DEFAULT '[]',
    annual_revenue     TEXT,
    annual_revenue_num REAL,
    employee_count     INTEGER,
    lifecycle_stage    TEXT,
    lead_source        TEXT,
    health_score       TEXT,
    owner_id           TEXT,
    parent_account_id  TEXT,
    description        TEXT,
    last_activity_at   INTEGER,
    first_contacted_at INTEGER,
    tags               TEXT    NOT NULL DEFAULT '[]',
    domains            TEXT    NOT NULL DEFAULT '[]',
    custom_fields      TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX accounts_created ON accounts (tenant_id, created_at, id);
CREATE INDEX accounts_updated ON accounts (tenant_id, updated_at, id);
CREATE INDEX accounts_owner ON accounts (tenant_id, owner_id);
CREATE INDEX accounts_parent ON accounts (tenant_id, parent_account_id);
CREATE INDEX accounts_stage ON accounts (tenant_id, lifecycle_stage);
CREATE INDEX accounts_industry ON accounts (tenant_id, lower(industry));

-- One row per domain of an account. `released` = 1 while the account is archived, which
-- frees the domain for other accounts (docs/CONTRACT.md §5.3).
CREATE TABLE account_domains (
    tenant_id  TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    domain     TEXT    NOT NULL,
    is_primary INTEGER NOT NULL,
    added_at   INTEGER NOT NULL,
    released   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, account_id, domain)
);
CREATE UNIQUE INDEX account_domains_claimed ON account_domains (tenant_id, domain) WHERE released = 0;
CREATE INDEX account_domains_by_domain ON account_domains (tenant_id, domain);

CREATE TABLE users (
    tenant_id      TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    created_by     TEXT    NOT NULL,
    updated_by     TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    email          TEXT,
    email_key      TEXT,
    display_name   TEXT,
    is_active      INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, email_key) WHERE email_key IS NOT NULL;
CREATE INDEX users_created ON users (tenant_id, created_at, id);

-- API keys: only a SHA-256 of the (256-bit random) secret is stored.
CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    app         TEXT,
    name        TEXT,
    scopes      TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE tenant_settings (
    tenant_id  TEXT    NOT NULL PRIMARY KEY,
    settings   TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Stored first responses of POSTs sent with an Idempotency-Key (docs/CONTRACT.md §5.2).
CREATE TABLE idempotency_keys (
    tenant_id    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
