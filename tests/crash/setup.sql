-- A tenant with contacts, events, segments and fit points, and a CSV of
-- :rows new contacts written to :csv.
\set ON_ERROR_STOP on
CREATE EXTENSION audience;
SELECT audience.create_tenant('crash') IS NOT NULL AS created;
SET audience.tenant = 'crash';
SELECT audience.define_field('Industry', 'text');
INSERT INTO audience.contacts (email, country, city, attributes)
SELECT 'old' || i || '@example.com', (ARRAY['US', 'CA', 'DE'])[1 + i % 3], (ARRAY['Rome', 'Oslo'])[1 + i % 2],
       jsonb_build_object('industry', (ARRAY['SaaS', 'Retail'])[1 + i % 2])
  FROM generate_series(1, 20000) i;
INSERT INTO audience.events (contact_id, kind, occurred_at)
SELECT id, 'opened', now() - interval '3 days' FROM audience.contacts;
SELECT audience.create_segment('Canadians', 'country = ''CA''') IS NOT NULL AS created;
SELECT audience.create_segment('Pricing visitors', 'visited ''/pricing'' at least 2 times') IS NOT NULL AS created;
SELECT audience.create_segment('Warm', 'score >= 10') IS NOT NULL AS created;
SELECT audience.create_segment('Bulk Romans', 'tag ''bulk'' and city = ''Rome''') IS NOT NULL AS created;
SELECT audience.set_fit_score('SaaS', 'industry = ''SaaS''', 5) >= 0 AS fit;
COPY (SELECT 'new' || i || '@example.com' AS email, 'First' || i AS first_name, (ARRAY['US', 'CA', 'DE'])[1 + i % 3] AS country,
             (ARRAY['Rome', 'Oslo'])[1 + i % 2] AS city, (ARRAY['SaaS', 'Retail'])[1 + i % 2] AS industry
        FROM generate_series(1, :rows) i) TO :'csv' WITH (FORMAT csv, HEADER true);
