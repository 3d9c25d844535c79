-- Row Level Security, grants and who may call what. Runs last (pgrx
-- `finalize`), after every table, view and function exists, so that none
-- is left out.

-- A role sees the tenants it may select (audience.tenant_access), its own
-- grants, and rows of its current tenant only; audience_admin everything.
-- Policies read the tenant through (SELECT …) so it is computed once per
-- query, and only when the role does not see every tenant.
ALTER TABLE audience.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audience.tenants
    USING ((SELECT audience.sees_all_tenants())
           OR EXISTS (SELECT FROM audience.tenant_access g WHERE g.tenant_id IS NULL OR g.tenant_id = tenants.id));
COMMENT ON POLICY tenant_isolation ON audience.tenants IS 'A role sees the tenants it may select; audience_admin all';

ALTER TABLE audience.tenant_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY grants_of_role ON audience.tenant_access
    USING ((SELECT audience.sees_all_tenants()) OR pg_catalog.pg_has_role(role, 'MEMBER'))
    WITH CHECK ((SELECT audience.sees_all_tenants()));
COMMENT ON POLICY grants_of_role ON audience.tenant_access IS 'A role sees the grants it holds, directly or through membership; audience_admin sees and makes all';

-- Every other table with a tenant_id column: rows of the current tenant only.
DO $policies$
DECLARE
    scoped regclass;
BEGIN
    FOR scoped IN
        SELECT c.oid::regclass FROM pg_class c
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
         WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind = 'r'
           AND c.oid <> 'audience.tenant_access'::regclass
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

-- Applications read every table and write contacts and events directly
-- (SPEC 2 and 5), each only in the columns that are theirs: scores,
-- activity times and event counts follow from events and fit rules. The
-- rest (segments and their members, rules, settings, history) changes
-- only through the API, which keeps it consistent.
GRANT USAGE ON SCHEMA audience TO audience_user, audience_reader;
REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA audience FROM audience_user;
GRANT SELECT ON ALL TABLES IN SCHEMA audience TO audience_user, audience_reader;
GRANT INSERT (tenant_id, id, email, first_name, last_name, company, job_title, phone, phone_type, country, city,
              status, lead_status, source, assigned_to, reachability, tags, attributes, created_at),
      UPDATE (tenant_id, email, first_name, last_name, company, job_title, phone, phone_type, country, city,
              status, lead_status, source, assigned_to, reachability, tags, attributes, created_at),
      DELETE
   ON audience.contacts TO audience_user;
GRANT INSERT (tenant_id, contact_id, kind, campaign, url, occurred_at, props), DELETE ON audience.events TO audience_user;
GRANT INSERT, UPDATE ON audience.tenants TO audience_admin;
GRANT INSERT, DELETE ON audience.tenant_access TO audience_admin;

-- Who may call what. Nothing is executable by PUBLIC. The API of SPEC.md
-- is granted by role; everything else (trigger functions, and the helpers
-- that triggers and the API call, which take any tenant's id or bypass
-- the rules) is reachable only through it: API functions and triggers
-- that call such helpers run as the extension's owner, with a fixed
-- search_path, and work on the tenant current_tenant() checked for the
-- session's role. tests/pg_regress/sql/catalog.sql holds the same lists.
-- (Re-run by upgrade scripts: every statement here is idempotent.)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA audience FROM PUBLIC;
DO $access$
DECLARE
    -- Reads, and what policies, column defaults, generated columns,
    -- trigger conditions and views evaluate as the caller.
    reads text[] := ARRAY[
        'current_tenant', 'use_tenant', 'sees_all_tenants', 'membership_channel',
        'uuidv7', 'fold', 'tag_keys', 'restoring', 'importing_normalised_rows',
        'normalize_email', 'normalize_country', 'normalize_phone', 'normalize_tags', 'coerce_attributes',
        'custom_field_name', 'field_type', 'standard_fields', 'writable_fields', 'search_terms',
        'check_event_kind', 'rule_in', 'rule_out', 'rule_to_json', 'rule_from_json', 'rule_is_time_relative',
        'preview', 'explain', 'count', 'members', 'recipients', 'in_segment', 'segments_of', 'batches',
        'snapshot_members', 'search', 'export_csv', 'export_contact', 'score_tier', 'tier_of', 'live_members', 'rule_matches',
        'breakdown', 'overlap', 'pair_overlaps', 'describe', 'segment_member_ids', 'segment_names', 'may_select_tenant'];
    writes text[] := ARRAY[
        'upsert_contact', 'define_field', 'tag', 'untag', 'tag_segment', 'rename_tag', 'forget_contact',
        'create_segment', 'create_list', 'create_query_segment', 'add_to_list', 'remove_from_list', 'update_segment',
        'duplicate_segment', 'drop_segment', 'refresh', 'snapshot',
        'track', 'set_score', 'set_score_reset', 'set_tiers', 'recompute_scores', 'set_fit_score',
        'drop_fit_score', 'set_score_decay', 'apply_decay', 'import_csv', 'import_csv_file', 'import_xlsx',
        'import_xlsx_file', 'purge_forgotten',
        'publish_segment', 'unpublish_segment'];
    -- The scheduled job refreshes every tenant, as the role that scheduled it.
    administration text[] := ARRAY['create_tenant', 'grant_tenant', 'revoke_tenant', 'refresh_all_tenants',
                                   'schedule_refresh'];
    -- Those that call internal helpers or write what applications may
    -- not (hold_tenants and tenant_contacts_dropped say so where they are
    -- created).
    as_owner text[] := ARRAY[
        'create_tenant', 'grant_tenant', 'revoke_tenant', 'refresh_all_tenants', 'define_field', 'set_tiers',
        'forget_contact', 'purge_forgotten', 'tag', 'untag', 'search',
        'create_segment', 'create_list', 'create_query_segment', 'add_to_list', 'remove_from_list', 'update_segment',
        'duplicate_segment', 'drop_segment', 'members', 'count', 'in_segment', 'segments_of', 'batches',
        'breakdown', 'overlap', 'pair_overlaps', 'describe', 'segment_member_ids', 'segment_names',
        'snapshot', 'tag_segment', 'refresh', 'set_score', 'set_score_reset', 'set_score_decay',
        'apply_decay', 'recompute_scores', 'set_fit_score', 'drop_fit_score', 'import_csv', 'import_csv_file',
        'import_xlsx', 'import_xlsx_file',
        'rules_changed', 'events_inserted', 'events_deleted', 'contacts_changed', 'segments_dropped',
        'default_scoring_rules', 'publish_segment', 'unpublish_segment', 'fields_published', 'publications_dropped'];
    f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS signature, p.proname::text AS name, p.prosecdef
               FROM pg_proc p WHERE p.pronamespace = 'audience'::regnamespace LOOP
        IF f.name = ANY (reads) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO audience_user, audience_reader', f.signature);
        ELSIF f.name = ANY (writes) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO audience_user', f.signature);
        ELSIF f.name = ANY (administration) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO audience_admin', f.signature);
        END IF;
        IF f.name = ANY (as_owner) AND NOT f.prosecdef THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f.signature);
        END IF;
    END LOOP;
END
$access$;

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
COMMENT ON FUNCTION audience.fold(text) IS 'Text case-folded (Unicode default case folding), as every comparison of tags, names, rule values and search terms sees it';
COMMENT ON FUNCTION audience.tag_keys(text[]) IS 'Tags case-folded (audience.fold), as tag conditions compare them and the GIN index holds them';
COMMENT ON FUNCTION audience.custom_field_name(text) IS 'The canonical name of a custom field; raises on a malformed or standard name';
COMMENT ON FUNCTION audience.field_type(text) IS 'The canonical spelling of a custom field type; raises on an unknown type';
COMMENT ON FUNCTION audience.coerce_attributes(jsonb, jsonb) IS 'Custom field values checked against a field catalogue and converted to their stored form';
COMMENT ON FUNCTION audience.standard_fields() IS 'The standard contact columns, in table order';
COMMENT ON FUNCTION audience.writable_fields() IS 'The standard contact columns a caller may set by name (scores and activity times follow from events)';
COMMENT ON FUNCTION audience.score_tier(integer) IS 'hot, warm or cold for a score, by the current tenant''s thresholds (50 and 20 by default)';
COMMENT ON FUNCTION audience.tier_of(integer, integer, integer) IS 'hot, warm or cold for a score, by given hot and warm thresholds (50 and 20 when null)';
COMMENT ON FUNCTION audience.upsert_contact(jsonb) IS 'Inserts or updates a contact by email; keys are standard fields or custom field names; returns its id';
COMMENT ON FUNCTION audience.search_terms(text) IS 'The terms of an audience.search query as JSON';
COMMENT ON FUNCTION audience.lock_rules(uuid, boolean) IS 'Takes the tenant''s rules for this transaction: exclusively to change membership rules, shared to maintain membership by them';
COMMENT ON FUNCTION audience.lock_bulk_writes(uuid) IS 'Takes the tenant''s bulk writes for this transaction: one import or multi-row event statement of a tenant at a time';
COMMENT ON FUNCTION audience.intersections(integer[], integer[], uuid[]) IS 'For members given as parallel arrays of set numbers and contact ids, the contacts in both sets for every pair of sets';
COMMENT ON FUNCTION audience.check_no_cycle(uuid, uuid, uuid[]) IS 'Raises 42P17 when a segment would refer to itself through the segments its new rule refers to';
COMMENT ON FUNCTION audience.apply_memberships(uuid, uuid[], uuid[], uuid[], uuid[], uuid[], boolean) IS 'Adds and removes stored members of several segments in one write (segments: those written; entered_to/entered and exited_from/exited: parallel arrays of segment and contact; known_new: every pair moves, as the caller computed them holding the segments or created the contacts), logs the changes, keeps member_count and announces each segment''s changes on the tenant''s membership_channel; returns the changes per segment';
COMMENT ON FUNCTION audience.merged_segments(integer[], integer[], integer[]) IS 'A contact''s segment numbers (audience.contact_segments) after it enters and leaves the given segments, ascending';
COMMENT ON FUNCTION audience.merged_since(integer[], timestamptz[], integer[], integer[], timestamptz) IS 'When a contact entered each of its segments after it enters (at now) and leaves the given segments: added_at beside merged_segments';
COMMENT ON FUNCTION audience.maintain_membership(text, text[], text[]) IS 'Brings stored membership of the given contacts of a tenant up to date (for triggers)';
COMMENT ON FUNCTION audience.forget_kept_rules() IS 'Makes every backend read the tenants'' rules again once the current transaction commits (for triggers)';
COMMENT ON FUNCTION audience.refresh(text) IS 'Re-evaluates dynamic and query segments (one, or all when null), applying only the difference; returns how many memberships changed';
COMMENT ON FUNCTION audience.create_query_segment(text, text, text) IS 'Creates a query segment: its members are the contact ids a single read-only SELECT returns, run as the defining role (its grants and Row Level Security), brought up to date by refresh; returns its id';
COMMENT ON FUNCTION audience.live_members(audience.rule) IS 'Ids of the contacts matching a rule now';
COMMENT ON FUNCTION audience.segment_member_ids(uuid) IS 'Ids of the members of the current tenant''s segment with that id, now (what published views read)';
COMMENT ON FUNCTION audience.segment_names(uuid) IS 'The names of the segments a contact is in now, as an array';
COMMENT ON FUNCTION audience.segments_of(uuid) IS 'The names of the segments a contact is in now';
COMMENT ON FUNCTION audience.rule_matches(uuid, audience.rule) IS 'Whether one contact matches a rule now';
COMMENT ON FUNCTION audience.campaign_sent(text) IS 'Re-evaluates, for every contact, the segments and fit rules that read the tenant''s last campaign (for triggers)';
COMMENT ON FUNCTION audience.check_fit_rule(audience.rule) IS 'Raises unless the rule can be a fit rule of the current tenant (known fields, does not read the score)';
COMMENT ON FUNCTION audience.maintain_fit(text, text[]) IS 'Sets fit_score of contacts (all when null) to the points of the fit rules they match; returns how many changed';
COMMENT ON FUNCTION audience.importing_normalised_rows() IS 'Whether the importer of this transaction is writing rows it has already normalised (the contacts trigger then skips them)';
COMMENT ON FUNCTION audience.import_contacts(text, bytea, text, jsonb) IS 'Runs an import of csv or workbook data, or of a csv_file or workbook_file path, for the current tenant, records its report in audience.imports and returns it (audience.run_import calls it)';
COMMENT ON FUNCTION audience.import_rows(bytea, jsonb) IS 'Runs a CSV import and returns its id (what import_csv of releases before 0.2.0 calls)';
COMMENT ON FUNCTION audience.export_csv(text, text[]) IS 'The members of a segment as CSV with a header: standard fields, tags and custom fields (all when columns is null), as import_csv reads them';
COMMENT ON FUNCTION audience.rule_is_time_relative(audience.rule) IS 'Whether a rule''s truth changes with the passing of time (within, before … ago)';
COMMENT ON FUNCTION audience.rule_segments(audience.rule) IS 'Ids of the segments a rule refers to';
COMMENT ON FUNCTION audience.rule_rename_segment(audience.rule, text, text) IS 'The rule with references to one segment renamed';
