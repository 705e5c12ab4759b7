-- Corral schema v1 (PostgreSQL). Same tables, columns and indexes as the SQLite schema:
-- timestamps are UTC epoch milliseconds (BIGINT), ids canonical UUID text, arrays and objects
-- JSON text. Text columns use the "C" collation so comparisons and ORDER BY are byte-wise,
-- exactly as in SQLite. tenant_id leads every key.

CREATE TABLE accounts (
    tenant_id          TEXT COLLATE "C"    NOT NULL,
    id                 TEXT COLLATE "C"    NOT NULL,
    app_id             TEXT COLLATE "C",
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    created_by         TEXT COLLATE "C"    NOT NULL,
    updated_by         TEXT COLLATE "C"    NOT NULL,
    deleted_at         BIGINT,
    deleted_by         TEXT COLLATE "C",
    schema_version     BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    source             TEXT COLLATE "C",
    source_type        TEXT COLLATE "C",
    name               TEXT COLLATE "C",
    legal_name         TEXT COLLATE "C",
    industry           TEXT COLLATE "C",
    sub_industry       TEXT COLLATE "C",
    website            TEXT COLLATE "C",
    websites           TEXT NOT NULL DEFAULT '[]',
    phone              TEXT COLLATE "C",
    linkedin_url       TEXT COLLATE "C",
    x_url              TEXT COLLATE "C",
    facebook_url       TEXT COLLATE "C",
    zoominfo_url       TEXT COLLATE "C",
    addresses          TEXT NOT NULL DEFAULT '[]',
    annual_revenue     TEXT COLLATE "C",
    annual_revenue_num DOUBLE PRECISION,
    employee_count     BIGINT,
    lifecycle_stage    TEXT COLLATE "C",
    lead_source        TEXT COLLATE "C",
    health_score       TEXT COLLATE "C",
    owner_id           TEXT COLLATE "C",
    parent_account_id  TEXT COLLATE "C",
    description        TEXT COLLATE "C",
    last_activity_at   BIGINT,
    first_contacted_at BIGINT,
    tags               TEXT NOT NULL DEFAULT '[]',
    domains            TEXT NOT NULL DEFAULT '[]',
    custom_fields      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX accounts_created ON accounts (tenant_id, created_at, id);
CREATE INDEX accounts_updated ON accounts (tenant_id, updated_at, id);
CREATE INDEX accounts_owner ON accounts (tenant_id, owner_id);
CREATE INDEX accounts_parent ON accounts (tenant_id, parent_account_id);
CREATE INDEX accounts_stage ON accounts (tenant_id, lifecycle_stage);
CREATE INDEX accounts_industry ON accounts (tenant_id, lower(industry));

-- One row per domain of an account. `released` is true while the account is archived, which
-- frees the domain for other accounts (docs/CONTRACT.md §5.3).
CREATE TABLE account_domains (
    tenant_id  TEXT COLLATE "C"    NOT NULL,
    account_id TEXT COLLATE "C"    NOT NULL,
    domain     TEXT COLLATE "C"    NOT NULL,
    is_primary BOOLEAN NOT NULL,
    added_at   BIGINT NOT NULL,
    released   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (tenant_id, account_id, domain)
);
CREATE UNIQUE INDEX account_domains_claimed ON account_domains (tenant_id, domain) WHERE NOT released;
CREATE INDEX account_domains_by_domain ON account_domains (tenant_id, domain);

CREATE TABLE users (
    tenant_id      TEXT COLLATE "C"    NOT NULL,
    id             TEXT COLLATE "C"    NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    created_by     TEXT COLLATE "C"    NOT NULL,
    updated_by     TEXT COLLATE "C"    NOT NULL,
    version        BIGINT NOT NULL,
    email          TEXT COLLATE "C",
    email_key      TEXT COLLATE "C",
    display_name   TEXT COLLATE "C",
    is_active      BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, email_key) WHERE email_key IS NOT NULL;
CREATE INDEX users_created ON users (tenant_id, created_at, id);

-- API keys: only a SHA-256 of the (256-bit random) secret is stored.
CREATE TABLE api_keys (
    id          TEXT COLLATE "C"    NOT NULL PRIMARY KEY,
    tenant_id   TEXT COLLATE "C"    NOT NULL,
    app         TEXT COLLATE "C",
    name        TEXT COLLATE "C",
    scopes      TEXT COLLATE "C"    NOT NULL,
    secret_hash TEXT COLLATE "C"    NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT COLLATE "C"    NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE tenant_settings (
    tenant_id  TEXT COLLATE "C"    NOT NULL PRIMARY KEY,
    settings   TEXT COLLATE "C"    NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Stored first responses of POSTs sent with an Idempotency-Key (docs/CONTRACT.md §5.2).
CREATE TABLE idempotency_keys (
    tenant_id    TEXT COLLATE "C"    NOT NULL,
    key          TEXT COLLATE "C"    NOT NULL,
    request_hash TEXT COLLATE "C"    NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT COLLATE "C"    NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
