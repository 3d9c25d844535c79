-- Row Level Security and grants. Runs last (pgrx `finalize`), after every
-- table, view and function exists, so that none is left out.

-- Policies read the tenant through (SELECT …) so it is computed once per
-- query, and only when the role does not see every tenant.
ALTER TABLE audience.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audience.tenants
    USING ((SELECT audience.sees_all_tenants()) OR id = (SELECT audience.current_tenant()));
COMMENT ON POLICY tenant_isolation ON audience.tenants IS 'audience_user sees its current tenant only';

-- Every table with a tenant_id column: rows of the current tenant only.
DO $policies$
DECLARE
    scoped regclass;
BEGIN
    FOR scoped IN
        SELECT c.oid::regclass FROM pg_class c
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
         WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind = 'r'
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', scoped);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
            USING ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()))
            WITH CHECK ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()))$p$, scoped);
        EXECUTE format('COMMENT ON POLICY tenant_isolation ON %s IS %L', scoped,
                       'audience_user reads and writes rows of its current tenant only; audience_admin all');
    END LOOP;
END
$policies$;

GRANT USAGE ON SCHEMA audience TO audience_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA audience TO audience_user;
REVOKE INSERT, UPDATE, DELETE ON audience.tenants FROM audience_user;
GRANT INSERT, UPDATE ON audience.tenants TO audience_admin;
REVOKE EXECUTE ON FUNCTION audience.create_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audience.create_tenant(text) TO audience_admin;
