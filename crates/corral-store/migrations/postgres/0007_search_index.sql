-- Substring search (`q`, `contains` / `starts_with` / `ends_with` on the searched text fields) is
-- narrowed by pg_trgm GIN indexes on exactly the expressions the compiled predicate uses
-- (docs/API.md, "Queries"). The extension is created once per database, in `public`, so every
-- schema of the database (the test suite uses one per test) shares it; the operator class is
-- named schema-qualified so the indexes do not depend on the search_path. fastupdate is off:
-- a pending list (after bulk loads) makes the planner price the index above a tenant scan.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE EXTENSION pg_trgm SCHEMA public;
    END IF;
END
$$;
CREATE INDEX accounts_search_name ON accounts USING gin (lower(name) public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX accounts_search_legal_name ON accounts USING gin (lower(legal_name) public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX accounts_search_website ON accounts USING gin (lower(website) public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX contacts_search_display_name ON contacts USING gin (lower(display_name) public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX contacts_search_first_name ON contacts USING gin (lower(first_name) public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX contacts_search_last_name ON contacts USING gin (lower(last_name) public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX account_domains_search ON account_domains USING gin (domain public.gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX contact_emails_search ON contact_emails USING gin (email_key public.gin_trgm_ops) WITH (fastupdate = off);
