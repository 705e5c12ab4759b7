-- Substring search (`q`, `contains` / `starts_with` / `ends_with` on the searched text fields) is
-- narrowed by an FTS5 trigram index (docs/API.md, "Queries"). One row per searched value lives in
-- search_values, keyed by an INTEGER PRIMARY KEY that VACUUM never renumbers; search_fts is an
-- external-content FTS5 table over it. Triggers keep both in step with every write, so no write
-- path can forget them. The index only narrows: the LIKE predicate is still evaluated.
CREATE TABLE search_values (
    key         INTEGER PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    value       TEXT    NOT NULL
);
CREATE INDEX search_values_by_record ON search_values (tenant_id, record_type, record_id, field);
CREATE VIRTUAL TABLE search_fts USING fts5 (value, content = 'search_values', content_rowid = 'key', tokenize = 'trigram');

CREATE TRIGGER search_values_ai AFTER INSERT ON search_values BEGIN
    INSERT INTO search_fts (rowid, value) VALUES (new.key, new.value);
END;
CREATE TRIGGER search_values_ad AFTER DELETE ON search_values BEGIN
    INSERT INTO search_fts (search_fts, rowid, value) VALUES ('delete', old.key, old.value);
END;

-- Accounts: name (display_name), legal_name, website (official_website).
CREATE TRIGGER accounts_search_ai AFTER INSERT ON accounts BEGIN
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    SELECT new.tenant_id, 'account', new.id, f, v
    FROM (SELECT 'name' AS f, new.name AS v UNION ALL SELECT 'legal_name', new.legal_name UNION ALL SELECT 'website', new.website)
    WHERE v IS NOT NULL;
END;
CREATE TRIGGER accounts_search_au AFTER UPDATE OF name, legal_name, website ON accounts BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'account' AND record_id = old.id
        AND field IN ('name', 'legal_name', 'website');
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    SELECT new.tenant_id, 'account', new.id, f, v
    FROM (SELECT 'name' AS f, new.name AS v UNION ALL SELECT 'legal_name', new.legal_name UNION ALL SELECT 'website', new.website)
    WHERE v IS NOT NULL;
END;
CREATE TRIGGER accounts_search_ad AFTER DELETE ON accounts BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'account' AND record_id = old.id
        AND field IN ('name', 'legal_name', 'website');
END;

-- Contacts: display_name, first_name, last_name.
CREATE TRIGGER contacts_search_ai AFTER INSERT ON contacts BEGIN
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    SELECT new.tenant_id, 'contact', new.id, f, v
    FROM (SELECT 'display_name' AS f, new.display_name AS v UNION ALL SELECT 'first_name', new.first_name UNION ALL SELECT 'last_name', new.last_name)
    WHERE v IS NOT NULL;
END;
CREATE TRIGGER contacts_search_au AFTER UPDATE OF display_name, first_name, last_name ON contacts BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'contact' AND record_id = old.id
        AND field IN ('display_name', 'first_name', 'last_name');
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    SELECT new.tenant_id, 'contact', new.id, f, v
    FROM (SELECT 'display_name' AS f, new.display_name AS v UNION ALL SELECT 'first_name', new.first_name UNION ALL SELECT 'last_name', new.last_name)
    WHERE v IS NOT NULL;
END;
CREATE TRIGGER contacts_search_ad AFTER DELETE ON contacts BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'contact' AND record_id = old.id
        AND field IN ('display_name', 'first_name', 'last_name');
END;

-- Domains and emails live in their key tables (all rows, released or not, as the filter reads them).
CREATE TRIGGER account_domains_search_ai AFTER INSERT ON account_domains BEGIN
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    VALUES (new.tenant_id, 'account', new.account_id, 'domain', new.domain);
END;
CREATE TRIGGER account_domains_search_au AFTER UPDATE OF tenant_id, account_id, domain ON account_domains BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'account' AND record_id = old.account_id
        AND field = 'domain' AND value = old.domain;
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    VALUES (new.tenant_id, 'account', new.account_id, 'domain', new.domain);
END;
CREATE TRIGGER account_domains_search_ad AFTER DELETE ON account_domains BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'account' AND record_id = old.account_id
        AND field = 'domain' AND value = old.domain;
END;
CREATE TRIGGER contact_emails_search_ai AFTER INSERT ON contact_emails BEGIN
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    VALUES (new.tenant_id, 'contact', new.contact_id, 'email_key', new.email_key);
END;
CREATE TRIGGER contact_emails_search_au AFTER UPDATE OF tenant_id, contact_id, email_key ON contact_emails BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'contact' AND record_id = old.contact_id
        AND field = 'email_key' AND value = old.email_key;
    INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
    VALUES (new.tenant_id, 'contact', new.contact_id, 'email_key', new.email_key);
END;
CREATE TRIGGER contact_emails_search_ad AFTER DELETE ON contact_emails BEGIN
    DELETE FROM search_values WHERE tenant_id = old.tenant_id AND record_type = 'contact' AND record_id = old.contact_id
        AND field = 'email_key' AND value = old.email_key;
END;

-- Existing records (the insert triggers above fill search_fts).
INSERT INTO search_values (tenant_id, record_type, record_id, field, value)
SELECT tenant_id, 'account', id, 'name', name FROM accounts WHERE name IS NOT NULL
UNION ALL SELECT tenant_id, 'account', id, 'legal_name', legal_name FROM accounts WHERE legal_name IS NOT NULL
UNION ALL SELECT tenant_id, 'account', id, 'website', website FROM accounts WHERE website IS NOT NULL
UNION ALL SELECT tenant_id, 'contact', id, 'display_name', display_name FROM contacts WHERE display_name IS NOT NULL
UNION ALL SELECT tenant_id, 'contact', id, 'first_name', first_name FROM contacts WHERE first_name IS NOT NULL
UNION ALL SELECT tenant_id, 'contact', id, 'last_name', last_name FROM contacts WHERE last_name IS NOT NULL
UNION ALL SELECT tenant_id, 'account', account_id, 'domain', domain FROM account_domains
UNION ALL SELECT tenant_id, 'contact', contact_id, 'email_key', email_key FROM contact_emails;
