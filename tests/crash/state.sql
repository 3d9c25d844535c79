-- What must survive an interrupted statement unchanged: every row of every
-- table of the extension, column by column (a digest per table), and the
-- invariants.
\set ON_ERROR_STOP on
SET audience.tenant = 'crash';
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(md5(t::text), %L ORDER BY md5(t::text)), %L)) FROM %s t',
              c.oid::regclass, '', '', c.oid::regclass)
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind = 'r'
 ORDER BY c.oid::regclass::text \gexec
SELECT 'segments', string_agg(name || '=' || member_count, ', ' ORDER BY name) FROM audience.segments;
SELECT 'scores off a recompute', audience.recompute_scores();
SELECT 'members off their rule', count(*) FROM audience.segments s
 WHERE s.kind = 'dynamic' AND s.member_count <> audience.preview(s.rule);
