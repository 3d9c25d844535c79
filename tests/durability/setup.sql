-- A database with something in every table of the extension, for the dump
-- and restore check.
\set ON_ERROR_STOP on
CREATE EXTENSION audience;
SELECT audience.create_tenant('north') IS NOT NULL AS created, audience.create_tenant('south') IS NOT NULL AS created;
SET audience.tenant = 'north';
SELECT audience.define_field('Industry', 'text'), audience.define_field('Budget', 'number'), audience.define_field('Signed Up', 'date');
SELECT audience.create_segment('Big SaaS budgets', 'industry = ''SaaS'' and custom.budget > 1000000') IS NOT NULL AS created;
SELECT rows FROM audience.import_csv(pg_read_binary_file(:'datadir' || '/sample_audience.csv'), '{"segment": "CRM export"}');
CREATE TEMP TABLE sample_events (email text, kind text, campaign text, url text, occurred_at timestamptz);
COPY sample_events FROM :'events' WITH (FORMAT csv, HEADER true);
INSERT INTO audience.events (contact_id, kind, campaign, url, occurred_at)
SELECT c.id, e.kind, e.campaign, e.url, e.occurred_at
  FROM sample_events e JOIN audience.contacts c ON c.email = audience.normalize_email(e.email);
SELECT audience.create_segment('Clicked pricing', 'clicked ''/pricing'' at least 1 times') IS NOT NULL AS created;
SELECT audience.create_segment('Engaged Canadians', 'in segment ''Clicked pricing'' and country = ''CA''') IS NOT NULL AS created;
SELECT audience.set_fit_score('SaaS fit', 'industry = ''SaaS''', 15) >= 0 AS fit;
SELECT audience.set_score('webinar', 12);
SELECT audience.set_tiers(60, 25);
SELECT audience.snapshot('Clicked pricing', 'November send') IS NOT NULL AS snapshot;
SET audience.tenant = 'south';
INSERT INTO audience.contacts (email, country, tags) VALUES ('s1@example.com', 'DE', '{VIP}'), ('s2@example.com', 'FR', '{}');
SELECT audience.track('s1@example.com', 'replied');
SELECT audience.create_list('Partners') IS NOT NULL AS created;
SELECT audience.add_to_list('Partners', ARRAY(SELECT id FROM audience.contacts WHERE tenant_id = audience.current_tenant()));
