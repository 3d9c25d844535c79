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
-- The largest rule and segment name the API accepts, a fit rule using a
-- segment, non-ASCII tags and a tenant grant must all load again.
SELECT audience.create_tenant('edge') IS NOT NULL AS created;
DO $role$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'durable_app') THEN
        CREATE ROLE durable_app;
    END IF;
END
$role$;
SELECT audience.grant_tenant('durable_app', 'edge');
SET audience.tenant = 'edge';
INSERT INTO audience.contacts (email, tags) VALUES ('e1@example.com', '{İzmir, ΟΔΟΣ}'), ('e2@example.com', '{}');
SELECT audience.create_list(repeat('L', 200)) IS NOT NULL AS created;
SELECT audience.add_to_list(repeat('L', 200), ARRAY(SELECT id FROM audience.contacts WHERE email = 'e1@example.com'));
SELECT audience.create_segment('Largest', (SELECT string_agg(format('in segment %L', repeat('L', 200)), ' or ')
                                             FROM generate_series(1, 290))::audience.rule) IS NOT NULL AS created;
DO $check$
BEGIN
    IF (SELECT length(rule::text) FROM audience.segments WHERE name = 'Largest') < 60000 THEN
        RAISE EXCEPTION 'the largest rule was not stored';
    END IF;
END
$check$;
SELECT audience.set_fit_score('Edge fit', 'in segment ''Largest''', 3) >= 0 AS fit;
-- A published view, and a query segment, come back with the dump.
SELECT audience.publish_segment('Largest', 'largest view') IS NOT NULL AS published;
SELECT audience.create_query_segment('Queried', 'SELECT id FROM contacts WHERE tags <> ''{}''') IS NOT NULL AS queried;
