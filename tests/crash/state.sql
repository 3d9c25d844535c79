-- What must survive an interrupted statement unchanged: row counts and
-- digests of the tenant's data, and the invariants.
\set ON_ERROR_STOP on
SET audience.tenant = 'crash';
SELECT 'contacts', count(*), md5(string_agg(email || score || coalesce(array_to_string(tags, ','), ''), ',' ORDER BY email)) FROM audience.contacts;
SELECT 'events', count(*), max(id) IS NOT NULL FROM audience.events;
SELECT 'segments', string_agg(name || '=' || member_count, ', ' ORDER BY name) FROM audience.segments;
SELECT 'members', count(*) FROM audience.segment_members;
SELECT 'changes', count(*) FROM audience.membership_changes;
SELECT 'imports', count(*) FROM audience.imports;
SELECT 'fields', string_agg(name, ', ' ORDER BY name) FROM audience.fields;
SELECT 'scores off a recompute', audience.recompute_scores();
SELECT 'members off their rule', count(*) FROM audience.segments s
 WHERE s.kind = 'dynamic' AND s.member_count <> audience.preview(s.rule);
