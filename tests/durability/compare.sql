-- One line per table of the extension's data: its name and a digest of its
-- rows in a stable order.
\set ON_ERROR_STOP on
SELECT format('SELECT %L, md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM %s t', c::text, c)
  FROM (SELECT unnest(extconfig)::regclass AS c FROM pg_extension WHERE extname = 'audience') tables
 WHERE (SELECT relkind FROM pg_class WHERE oid = c) = 'r'
 ORDER BY 1 \gexec
SELECT 'audience.events_id_seq', last_value FROM audience.events_id_seq;
-- And the invariants, tenant by tenant: scores equal a recompute, stored
-- membership equals the rules.
SELECT t.name, (SELECT set_config('audience.tenant', t.name, false)) IS NOT NULL AS selected,
       audience.recompute_scores() AS rescored,
       (SELECT count(*) FROM audience.segments s WHERE s.tenant_id = t.id AND s.kind = 'dynamic'
           AND s.member_count <> audience.preview(s.rule)) AS segments_off
  FROM audience.tenants t ORDER BY t.name;
-- Published views: their names, and how many rows they show.
SELECT 'audience.published ' || c.relname, (SELECT set_config('audience.tenant', 'edge', false)) IS NOT NULL,
       (SELECT count(*) FROM audience_views."largest view")
  FROM pg_class c WHERE c.relnamespace = 'audience_views'::regnamespace ORDER BY 1;
