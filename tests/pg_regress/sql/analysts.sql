-- For analysts: breakdowns, overlaps and descriptions of segments, as an
-- application role and as a reader.
\set SHOW_CONTEXT never
CREATE ROLE analysts_app LOGIN IN ROLE audience_user;
CREATE ROLE analysts_reader LOGIN IN ROLE audience_reader;
SELECT audience.create_tenant('analysts', 'analysts_app') IS NOT NULL AS created;
SELECT audience.grant_tenant('analysts_reader', 'analysts');
SET ROLE analysts_app;
SET audience.tenant = 'analysts';
SELECT audience.define_field('industry', 'text');
INSERT INTO audience.contacts (email, country, tags, attributes)
SELECT 'p' || g || '@example.com', (ARRAY['US', 'US', 'DE', 'CA'])[1 + g % 4],
       CASE WHEN g % 3 = 0 THEN '{VIP}'::text[] WHEN g % 5 = 0 THEN '{Buyer,VIP}' ELSE '{}' END,
       CASE WHEN g % 2 = 0 THEN '{"industry": "SaaS"}'::jsonb ELSE '{}' END
  FROM generate_series(1, 40) g;
SELECT audience.track('p1@example.com', 'replied') > 0 AND audience.track('p1@example.com', 'visited', url => '/pricing') > 0
       AND audience.track('p2@example.com', 'replied') > 0 AS tracked;
SELECT audience.create_segment('Americans', 'country = ''US''', 'Contacts in the US') IS NOT NULL AS created;
SELECT audience.create_segment('VIPs', 'tag ''VIP''') IS NOT NULL AS created;
SELECT audience.create_list('Picked') IS NOT NULL AS created;
SELECT audience.add_to_list('Picked', ARRAY(SELECT id FROM audience.contacts WHERE email IN ('p1@example.com', 'p2@example.com', 'p3@example.com')));
RESET ROLE;

SET ROLE analysts_reader;
SET audience.tenant = 'analysts';
SELECT * FROM audience.breakdown('Americans', 'tag');
SELECT * FROM audience.breakdown('Everyone', 'Country');
SELECT * FROM audience.breakdown('VIPs', 'custom.industry');
SELECT * FROM audience.breakdown('Picked', 'tier');
SELECT * FROM audience.breakdown('Americans', 'shoe size');
\echo :SQLSTATE
SELECT * FROM audience.breakdown('Nope', 'country');
\echo :SQLSTATE
SELECT * FROM audience.overlap('Americans', 'VIPs');
SELECT * FROM audience.overlap('Picked', 'Everyone');
SELECT * FROM audience.overlap('Americans', 'Nope');
\echo :SQLSTATE
SELECT * FROM audience.segment_overlap;
SELECT regexp_replace(audience.describe('Americans'), 'Last refresh: [^\n]*', 'Last refresh: …') AS described;
SELECT audience.describe('Picked') AS described;
RESET ROLE;
-- A tenant without contacts still has every pair, with nobody in both.
SELECT audience.create_tenant('analysts_empty', 'analysts_app') IS NOT NULL AS created;
SET ROLE analysts_app;
SET audience.tenant = 'analysts_empty';
SELECT audience.create_list('Empty list') IS NOT NULL AS list;
SELECT * FROM audience.segment_overlap;
RESET ROLE;
RESET audience.tenant;
