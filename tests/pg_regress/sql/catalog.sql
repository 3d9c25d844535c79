-- Every object of the extension explains itself (\dx+, \df+, \d+), every
-- table holding user data is dumped by pg_dump, and every table has Row
-- Level Security. Each query lists what breaks the rule: expected empty.
SELECT 'function ' || p.oid::regprocedure AS undocumented
  FROM pg_proc p
 WHERE p.pronamespace = 'audience'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT 'relation ' || c.oid::regclass
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v', 'i') AND obj_description(c.oid, 'pg_class') IS NULL
   AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = c.oid)
UNION ALL
SELECT 'type ' || t.oid::regtype
  FROM pg_type t
 WHERE t.typnamespace = 'audience'::regnamespace AND t.typtype = 'b' AND t.typcategory <> 'A' AND obj_description(t.oid, 'pg_type') IS NULL
ORDER BY 1;

-- What BI tools read: every column of every view is commented and of a
-- type their drivers know (no extension type such as audience.rule).
SELECT c.oid::regclass || '.' || a.attname AS view_column_unexplained, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace IN ('audience'::regnamespace, 'audience_views'::regnamespace) AND c.relkind = 'v'
   AND (col_description(c.oid, a.attnum) IS NULL
        OR format_type(a.atttypid, a.atttypmod) NOT IN ('text', 'numeric', 'integer', 'bigint', 'boolean', 'date',
                                                        'timestamp with time zone', 'uuid', 'text[]', 'jsonb'))
 ORDER BY 1;

SELECT c.oid::regclass AS not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'S')
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'audience')::oid[])
 ORDER BY 1;

SELECT c.oid::regclass AS without_row_security
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
 ORDER BY 1;

-- What application roles may use is exactly the documented API (docs/):
-- each function, table, view and type either is listed here for
-- audience_user and (when marked) audience_reader, or neither role can
-- use it; what they can use explains itself. Expected empty.
CREATE TEMP TABLE documented (kind text, name text, reader boolean);
INSERT INTO documented VALUES
    -- Reading, and what policies, defaults, generated columns, trigger
    -- conditions and views evaluate as the caller.
    ('function', 'current_tenant', true), ('function', 'use_tenant', true), ('function', 'sees_all_tenants', true),
    ('function', 'membership_channel', true), ('function', 'uuidv7', true), ('function', 'fold', true), ('function', 'tag_keys', true),
    ('function', 'restoring', true), ('function', 'importing_normalised_rows', true),
    ('function', 'normalize_email', true), ('function', 'normalize_country', true), ('function', 'normalize_phone', true),
    ('function', 'normalize_tags', true), ('function', 'coerce_attributes', true), ('function', 'custom_field_name', true),
    ('function', 'field_type', true), ('function', 'standard_fields', true), ('function', 'writable_fields', true),
    ('function', 'search_terms', true), ('function', 'check_event_kind', true), ('function', 'rule_in', true),
    ('function', 'rule_out', true), ('function', 'rule_to_json', true), ('function', 'rule_from_json', true),
    ('function', 'rule_is_time_relative', true), ('function', 'preview', true), ('function', 'explain', true),
    ('function', 'count', true), ('function', 'members', true), ('function', 'recipients', true),
    ('function', 'in_segment', true), ('function', 'segments_of', true), ('function', 'batches', true),
    ('function', 'snapshot_members', true), ('function', 'search', true), ('function', 'export_csv', true),
    ('function', 'export_contact', true), ('function', 'score_tier', true), ('function', 'tier_of', true), ('function', 'live_members', true),
    ('function', 'rule_matches', true), ('function', 'breakdown', true), ('function', 'overlap', true), ('function', 'pair_overlaps', true),
    ('function', 'describe', true), ('function', 'segment_member_ids', true), ('function', 'segment_names', true),
    ('function', 'may_select_tenant', true),
    -- Writing.
    ('function', 'upsert_contact', false), ('function', 'define_field', false), ('function', 'tag', false),
    ('function', 'untag', false), ('function', 'tag_segment', false), ('function', 'rename_tag', false),
    ('function', 'forget_contact', false), ('function', 'create_segment', false), ('function', 'create_list', false), ('function', 'create_query_segment', false),
    ('function', 'add_to_list', false), ('function', 'remove_from_list', false), ('function', 'update_segment', false),
    ('function', 'duplicate_segment', false), ('function', 'drop_segment', false), ('function', 'refresh', false),
    ('function', 'snapshot', false), ('function', 'track', false),
    ('function', 'set_score', false), ('function', 'set_score_reset', false), ('function', 'set_tiers', false),
    ('function', 'recompute_scores', false), ('function', 'set_fit_score', false), ('function', 'drop_fit_score', false),
    ('function', 'set_score_decay', false), ('function', 'apply_decay', false), ('function', 'import_csv', false),
    ('function', 'import_csv_file', false), ('function', 'import_xlsx', false), ('function', 'import_xlsx_file', false),
    ('function', 'purge_forgotten', false), ('function', 'publish_segment', false), ('function', 'unpublish_segment', false),
    -- Tables and views: readers read them all (Row Level Security scopes
    -- them); audience_user also writes the tables, but tenants and grants.
    ('relation', 'tenants', true), ('relation', 'tenant_access', true), ('relation', 'tenant_grants', true),
    ('relation', 'fields', true), ('relation', 'contacts', true), ('relation', 'settings', true),
    ('relation', 'events', true), ('relation', 'segments', true), ('relation', 'segment_members', true),
    ('relation', 'contact_segments', true),
    ('relation', 'membership_log', true), ('relation', 'membership_changes', true),
    ('relation', 'forgotten_contacts', true), ('relation', 'snapshots', true), ('relation', 'snapshot_members', true),
    ('relation', 'scoring_rules', true), ('relation', 'fit_rules', true), ('relation', 'imports', true),
    ('relation', 'import_progress', true), ('relation', 'tag_summary', true), ('relation', 'segment_overview', true),
    ('relation', 'segment_membership', true), ('relation', 'contact_profile', true),
    ('relation', 'score_distribution', true), ('relation', 'segment_overlap', true),
    ('relation', 'publications', true), ('relation', 'published_views', true),
    ('type', 'rule', true), ('type', 'import_report', true);

WITH objects AS (
    SELECT 'function' AS kind, p.proname::text AS name, p.oid::regprocedure::text AS object,
           obj_description(p.oid, 'pg_proc') AS comment,
           has_function_privilege('audience_user', p.oid, 'EXECUTE') AS by_user,
           has_function_privilege('audience_reader', p.oid, 'EXECUTE') AS by_reader
      FROM pg_proc p WHERE p.pronamespace = 'audience'::regnamespace
    UNION ALL
    SELECT 'relation', c.relname, c.oid::regclass::text, obj_description(c.oid, 'pg_class'),
           has_table_privilege('audience_user', c.oid, 'SELECT, INSERT, UPDATE, DELETE'),
           has_table_privilege('audience_reader', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
      FROM pg_class c WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v', 'S')
    UNION ALL
    SELECT 'type', t.typname, t.oid::regtype::text, obj_description(t.oid, 'pg_type'),
           has_type_privilege('audience_user', t.oid, 'USAGE'), has_type_privilege('audience_reader', t.oid, 'USAGE')
      FROM pg_type t LEFT JOIN pg_class r ON r.oid = t.typrelid
     WHERE t.typnamespace = 'audience'::regnamespace AND t.typcategory <> 'A' AND coalesce(r.relkind, 'c') = 'c'
)
SELECT o.object,
       CASE WHEN d.name IS NULL THEN 'usable by application roles but not documented'
            WHEN NOT o.by_user THEN 'documented but audience_user cannot use it'
            WHEN o.by_reader <> d.reader THEN CASE WHEN d.reader THEN 'a read audience_reader cannot use'
                                                   ELSE 'a write audience_reader can use' END
            ELSE 'documented without a comment' END AS problem
  FROM objects o LEFT JOIN documented d ON d.kind = o.kind AND d.name = o.name
 WHERE (o.by_user OR o.by_reader) AND d.name IS NULL
    OR d.name IS NOT NULL AND (NOT o.by_user OR o.by_reader <> d.reader OR o.comment IS NULL)
UNION ALL
SELECT d.kind || ' ' || d.name, 'documented but missing' FROM documented d
 WHERE NOT EXISTS (SELECT FROM objects o WHERE o.kind = d.kind AND o.name = d.name)
ORDER BY 1;

-- Functions that run as the extension's owner fix their search_path.
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'audience'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']
 ORDER BY 1;

-- audience_reader writes no table or view.
SELECT c.oid::regclass AS written_by_reader
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v')
   AND has_table_privilege('audience_reader', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
 ORDER BY 1;

-- Distributing needs Citus, and says how to get there.
\set SHOW_CONTEXT never
SELECT * FROM audience.distribute();
\set SHOW_CONTEXT errors
