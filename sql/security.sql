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

-- Comments on what is written in Rust (pgrx emits none), so that \df+
-- explains these too.
COMMENT ON TYPE audience.rule IS 'A segment rule in the audience rule language; its text form is canonical';
COMMENT ON FUNCTION audience.rule_in(cstring) IS 'Input of audience.rule: parses and checks the rule text';
COMMENT ON FUNCTION audience.rule_out(audience.rule) IS 'Output of audience.rule: the canonical rule text';
COMMENT ON FUNCTION audience.rule_to_json(audience.rule) IS 'The JSON form of a rule, for condition-builder UIs';
COMMENT ON FUNCTION audience.rule_from_json(jsonb) IS 'A rule from its JSON form';
COMMENT ON FUNCTION audience.preview(audience.rule) IS 'How many of the current tenant''s contacts match the rule now';
COMMENT ON FUNCTION audience.explain(audience.rule) IS 'The SQL the rule runs as for the current tenant, with its bound values';
COMMENT ON FUNCTION audience.uuidv7() IS 'A new time-ordered UUID (version 7: the first 48 bits are the creation time in milliseconds), the default of contact ids';
COMMENT ON FUNCTION audience.normalize_email(text) IS 'The email trimmed and lower-cased; raises 22P02 when it is not an email address';
COMMENT ON FUNCTION audience.normalize_country(text) IS 'An ISO 3166-1 alpha-2 code from a code or an English country name; raises 22P02 otherwise';
COMMENT ON FUNCTION audience.normalize_phone(text, text) IS '{number, type}: E.164 and mobile/landline/voip/unknown when the phone parses (read in the given country), else as given and unknown';
COMMENT ON FUNCTION audience.normalize_tags(text[]) IS 'Tags trimmed, without empty ones and without case-insensitive duplicates';
COMMENT ON FUNCTION audience.tag_keys(text[]) IS 'Tags folded to lower case, as tag conditions compare them and the GIN index holds them';
COMMENT ON FUNCTION audience.custom_field_name(text) IS 'The canonical name of a custom field; raises on a malformed or standard name';
COMMENT ON FUNCTION audience.field_type(text) IS 'The canonical spelling of a custom field type; raises on an unknown type';
COMMENT ON FUNCTION audience.coerce_attributes(jsonb, jsonb) IS 'Custom field values checked against a field catalogue and converted to their stored form';
COMMENT ON FUNCTION audience.standard_fields() IS 'The standard contact columns, in table order';
COMMENT ON FUNCTION audience.writable_fields() IS 'The standard contact columns a caller may set by name (scores and activity times follow from events)';
COMMENT ON FUNCTION audience.upsert_contact(jsonb) IS 'Inserts or updates a contact by email; keys are standard fields or custom field names; returns its id';
COMMENT ON FUNCTION audience.search_terms(text) IS 'The terms of an audience.search query as JSON';
COMMENT ON FUNCTION audience.maintain_membership(text, text[], text[]) IS 'Brings stored membership of the given contacts of a tenant up to date (for triggers)';
COMMENT ON FUNCTION audience.forget_kept_rules() IS 'Makes every backend read the tenants'' rules again once the current transaction commits (for triggers)';
COMMENT ON FUNCTION audience.refresh(text) IS 'Re-evaluates dynamic segments (one, or all when null), applying only the difference; returns how many memberships changed';
COMMENT ON FUNCTION audience.live_members(audience.rule) IS 'Ids of the contacts matching a rule now';
COMMENT ON FUNCTION audience.rule_matches(uuid, audience.rule) IS 'Whether one contact matches a rule now';
COMMENT ON FUNCTION audience.campaign_sent(text) IS 'Re-evaluates, for every contact, the segments and fit rules that read the tenant''s last campaign (for triggers)';
COMMENT ON FUNCTION audience.check_fit_rule(audience.rule) IS 'Raises unless the rule can be a fit rule of the current tenant (known fields, does not read the score)';
COMMENT ON FUNCTION audience.maintain_fit(text, text[]) IS 'Sets fit_score of contacts (all when null) to the points of the fit rules they match; returns how many changed';
COMMENT ON FUNCTION audience.importing_normalised_rows() IS 'Whether the importer of this transaction is writing rows it has already normalised (the contacts trigger then skips them)';
COMMENT ON FUNCTION audience.import_rows(bytea, jsonb) IS 'Runs a CSV import for the current tenant and records its report in audience.imports; returns the import id (audience.import_csv calls it)';
COMMENT ON FUNCTION audience.export_csv(text, text[]) IS 'The members of a segment as CSV with a header: standard fields, tags and custom fields (all when columns is null), as import_csv reads them';
COMMENT ON FUNCTION audience.rule_is_time_relative(audience.rule) IS 'Whether a rule''s truth changes with the passing of time (within, before … ago)';
COMMENT ON FUNCTION audience.rule_segments(audience.rule) IS 'Ids of the segments a rule refers to';
COMMENT ON FUNCTION audience.rule_rename_segment(audience.rule, text, text) IS 'The rule with references to one segment renamed';
