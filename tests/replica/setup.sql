-- A tenant with something for every read path: contacts, events, a list,
-- dynamic and time-relative segments, a snapshot; an application role and
-- a reader granted it.
\set ON_ERROR_STOP on
CREATE EXTENSION audience;
SELECT audience.create_tenant('replicated') IS NOT NULL AS created;
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replica_reader') THEN
        CREATE ROLE replica_reader LOGIN IN ROLE audience_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replica_app') THEN
        CREATE ROLE replica_app LOGIN IN ROLE audience_user;
    END IF;
END
$roles$;
SELECT audience.grant_tenant('replica_reader', 'replicated'), audience.grant_tenant('replica_app', 'replicated');
SET audience.tenant = 'replicated';
SELECT audience.define_field('industry', 'text');
INSERT INTO audience.contacts (email, country, city, tags, attributes, created_at)
SELECT 'c' || g || '@example.com', (ARRAY['US', 'DE', 'CA'])[1 + g % 3], (ARRAY['Berlin', 'Toronto'])[1 + g % 2],
       CASE WHEN g % 4 = 0 THEN '{VIP}'::text[] ELSE '{}' END,
       jsonb_build_object('industry', (ARRAY['SaaS', 'Retail'])[1 + g % 2]),
       now() - make_interval(days => g % 10)
  FROM generate_series(1, 200) g;
INSERT INTO audience.events (contact_id, kind, campaign, occurred_at)
SELECT id, (ARRAY['opened', 'clicked'])[1 + (row_number() OVER ()) % 2], 'launch', now() - interval '2 days'
  FROM audience.contacts WHERE country = 'US';
SELECT audience.create_segment('Americans', 'country = ''US''') IS NOT NULL AS created;
SELECT audience.create_segment('This week', 'created_at within 7 days') IS NOT NULL AS created;
SELECT audience.create_segment('Recent clickers', 'clicked within 30 days and not in segment ''This week''') IS NOT NULL AS created;
SELECT audience.create_list('Picked') IS NOT NULL AS created;
SELECT audience.add_to_list('Picked', ARRAY(SELECT id FROM audience.contacts ORDER BY email LIMIT 30));
SELECT audience.snapshot('Americans', 'launch') IS NOT NULL AS snapshot;
