-- A tenant whose contacts, segments and lists every concurrent client
-- touches at once, and a login role that works the way applications do.
\set ON_ERROR_STOP on
CREATE EXTENSION audience;
SELECT audience.create_tenant('busy') IS NOT NULL AS created;
SET audience.tenant = 'busy';
SELECT audience.define_field('Plan', 'text');
INSERT INTO audience.contacts (email, city)
SELECT 'c' || i || '@example.com', (ARRAY['Rome', 'Oslo', 'Lima'])[1 + i % 3] FROM generate_series(1, 400) i;
SELECT audience.create_segment('Engaged Romans', 'city = ''Rome'' and score >= 10') IS NOT NULL AS created;
SELECT audience.create_segment('Clickers', 'clicked at least 2 times') IS NOT NULL AS created;
SELECT audience.create_segment('VIP or pro', 'tag ''VIP'' or plan = ''pro''') IS NOT NULL AS created;
SELECT audience.create_segment('Listed clickers', 'in segment ''Clickers'' and in segment ''Hand picked''') IS NOT NULL AS created
  FROM (SELECT audience.create_list('Hand picked')) list;
SELECT audience.create_segment('Shifting', 'reachability > 50') IS NOT NULL AS created;
SET client_min_messages = warning;
DROP ROLE IF EXISTS busy_app;
CREATE ROLE busy_app LOGIN;
GRANT audience_user TO busy_app;
ALTER ROLE busy_app SET audience.tenant = 'busy';
SELECT audience.grant_tenant('busy_app', 'busy') AS granted;
