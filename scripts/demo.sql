-- The demo: a tenant, the sample audience, a first look at it, and segments.
\pset footer off
CREATE EXTENSION IF NOT EXISTS audience;
SELECT audience.create_tenant('acme') IS NOT NULL AS "created tenant acme";
SELECT audience.use_tenant('acme') IS NOT NULL AS "using tenant acme";
-- Applications log in as a role granted audience_user and their tenants;
-- this one lands in acme. An analyst reads acme and writes nothing.
CREATE ROLE app LOGIN IN ROLE audience_user;
ALTER ROLE app SET audience.tenant = 'acme';
CREATE ROLE analyst LOGIN IN ROLE audience_reader;
ALTER ROLE analyst SET audience.tenant = 'acme';
SELECT audience.grant_tenant('app', 'acme') AS "granted acme to app",
       audience.grant_tenant('analyst', 'acme') AS "granted acme to analyst";

SELECT audience.define_field('Industry', 'text') AS industry,
       audience.define_field('Budget', 'number') AS budget,
       audience.define_field('Signed Up', 'date') AS signed_up;

-- The CRM export as a customer hands it over: loose headers, tags split by
-- ';', local phone formats, and three bad rows that the report explains.
\set sample :datadir '/sample_audience.csv'
\echo Importing the sample audience (a CRM export with a few defects)
SELECT rows, inserted, updated, rejected, segment FROM audience.import_csv(pg_read_binary_file(:'sample'), '{"segment": "CRM export"}');
SELECT e->>'line' AS line, e->>'column' AS column, e->>'value' AS value, e->>'message' AS message
  FROM audience.imports i, jsonb_array_elements(i.errors) e ORDER BY (e->>'line')::int;

\echo
\echo Tenants
SELECT name, created_at::date FROM audience.tenants;
\echo Contacts by country
SELECT country, count(*) AS contacts FROM audience.contacts GROUP BY country ORDER BY 2 DESC LIMIT 10;
\echo A few contacts, normalised
SELECT email, first_name, last_name, phone, phone_type, country, tags, attributes
  FROM audience.contacts ORDER BY email LIMIT 5;
\echo Tags
SELECT * FROM audience.tag_summary;
\echo Custom fields
SELECT name, type, label FROM audience.fields ORDER BY name;
\echo 'Search: industry:SaaS country:CA tag:VIP'
SELECT email, company, city FROM audience.search('industry:SaaS country:CA tag:VIP') LIMIT 5;

\echo Segments: membership is computed once and kept in step by triggers
SELECT audience.create_segment('Hot leads in Canada', 'country = ''CA'' and lead_status = ''hot''') IS NOT NULL AS "Hot leads in Canada",
       audience.create_segment('Reachable VIPs', 'tag ''VIP'' and not tag ''Invalid_Phone''') IS NOT NULL AS "Reachable VIPs",
       audience.create_segment('Big SaaS budgets', 'industry = ''SaaS'' and custom.budget > 1000000') IS NOT NULL AS "Big SaaS budgets",
       audience.create_segment('Signed up this year', 'signed_up >= ''2026-01-01''') IS NOT NULL AS "Signed up this year",
       audience.create_list('Webinar guests') IS NOT NULL AS "Webinar guests";
SELECT audience.add_to_list('Webinar guests', ARRAY(SELECT id FROM audience.search('tag:"Webinar 2025" country:DE'))) AS "added to Webinar guests";
SELECT audience.preview('in segment ''Reachable VIPs'' and in segment ''Hot leads in Canada''') AS "preview: reachable VIPs among hot Canadian leads";
\echo A hot Canadian lead goes cold: the segment follows in the same statement
SELECT audience.count('Hot leads in Canada') AS "Hot leads in Canada before";
UPDATE audience.contacts SET lead_status = 'cold'
 WHERE id = (SELECT id FROM audience.members('Hot leads in Canada') ORDER BY email LIMIT 1);
SELECT name, kind, members, rule FROM audience.segment_overview;

\echo Engagement: 12,000 events in one INSERT; scores, activity and status follow per statement
CREATE TEMP TABLE sample_events (email text, kind text, campaign text, url text, occurred_at timestamptz);
\set events :datadir '/sample_events.csv'
COPY sample_events FROM :'events' WITH (FORMAT csv, HEADER true);
SELECT audience.create_segment('Opened the last campaign', 'opened last campaign') IS NOT NULL AS "Opened the last campaign",
       audience.create_segment('Pricing visitors', 'visited ''/pricing'' at least 2 times') IS NOT NULL AS "Pricing visitors";
INSERT INTO audience.events (contact_id, kind, campaign, url, occurred_at)
SELECT c.id, e.kind, e.campaign, e.url, e.occurred_at
  FROM sample_events e JOIN audience.contacts c ON c.email = audience.normalize_email(e.email);
SELECT audience.set_fit_score('SaaS fit', 'industry = ''SaaS''', 15) AS "contacts given SaaS fit points";
SELECT * FROM audience.score_distribution;
\echo The top leads
SELECT email, score, fit_score, engagement_score, audience.score_tier(score) AS tier, status, last_activity_at::date
  FROM audience.contacts ORDER BY score DESC, email LIMIT 5;
\echo Scores move with each tracked event
SELECT min(email) AS lead FROM audience.contacts WHERE status = 'active' AND score < 20 \gset
SELECT email, score, audience.score_tier(score) AS tier FROM audience.contacts WHERE email = :'lead';
SELECT audience.track(:'lead', 'visited', url => 'https://example.com/pricing') AS "tracked visit",
       audience.track(:'lead', 'replied') AS "tracked reply";
SELECT email, score, audience.score_tier(score) AS tier FROM audience.contacts WHERE email = :'lead';
SELECT name, kind, members FROM audience.segment_overview;

\echo
\echo What an analyst sees, as the read-only role analyst (granted acme)
SET ROLE analyst;
SET audience.tenant = 'acme';
SELECT * FROM audience.breakdown('Everyone', 'country') LIMIT 6;
SELECT * FROM audience.breakdown('Pricing visitors', 'tier');
SELECT * FROM audience.overlap('Reachable VIPs', 'Pricing visitors');
SELECT audience.describe('Pricing visitors') AS "describe('Pricing visitors')";
RESET ROLE;
