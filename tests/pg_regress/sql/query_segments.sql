-- Query segments: members are the contact ids a read-only SELECT returns,
-- run as the role that defined the segment, refreshed like any segment,
-- usable in rules; anything else is refused, with nothing created.
\set SHOW_CONTEXT never
CREATE ROLE query_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('queries', 'query_app') IS NOT NULL AS created;
SET ROLE query_app;
SET audience.tenant = 'queries';
SELECT audience.define_field('budget', 'number');
INSERT INTO audience.contacts (email, country, attributes) VALUES
    ('big@q.test', 'DE', '{"budget": 5000}'), ('small@q.test', 'DE', '{"budget": 10}'),
    ('bigus@q.test', 'US', '{"budget": 2000}');
-- Names resolve in schema audience first, whoever runs the query.
SELECT audience.create_query_segment('Big budgets',
    $$SELECT id FROM contacts WHERE (attributes->>'budget')::numeric >= 1000$$, 'Budget of 1000 or more') IS NOT NULL AS created;
SELECT name, kind, members FROM audience.segment_overview ORDER BY name;
SELECT email FROM audience.members('Big budgets') ORDER BY email;
SELECT regexp_replace(audience.describe('Big budgets'), 'Last refresh: [^\n]*', 'Last refresh: (when), took (how long)') AS describe;
-- Usable in rules.
SELECT audience.create_segment('Big in DE', 'in segment ''Big budgets'' and country = ''DE''') IS NOT NULL AS rule_on_query;
SELECT email FROM audience.members('Big in DE') ORDER BY email;
-- Brought up to date by refresh; segments referring to it follow.
UPDATE audience.contacts SET attributes = '{"budget": 9000}' WHERE email = 'small@q.test';
SELECT audience.count('Big budgets') AS before_refresh;
SELECT audience.refresh('Big budgets') AS changes;
SELECT audience.count('Big budgets') AS after_refresh, audience.count('Big in DE') AS big_in_de;
SELECT s.name, ch.change FROM audience.membership_changes ch
  JOIN audience.segments s ON s.id = ch.segment_id JOIN audience.contacts c ON c.id = ch.contact_id
 WHERE c.email = 'small@q.test' ORDER BY s.name;

-- Refused, with nothing created: not one SELECT, writing, other columns.
SELECT audience.create_query_segment('Bad', 'DELETE FROM audience.contacts RETURNING id');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'SELECT id FROM audience.contacts; SELECT id FROM audience.contacts');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'SELECT id, email FROM audience.contacts');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'SELECT email FROM audience.contacts');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'SELECT id FROM audience.contacts FOR UPDATE');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'SELECT id INTO TEMP stolen FROM audience.contacts');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'WITH gone AS (DELETE FROM audience.contacts RETURNING id) SELECT id FROM gone');
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', $$SELECT audience.upsert_contact('{"email": "sneaky@q.test"}')$$);
\echo :SQLSTATE
SELECT audience.create_query_segment('Bad', 'SELECT id FROM nowhere');
\echo :SQLSTATE
SELECT audience.create_query_segment('Big budgets', 'SELECT id FROM audience.contacts');
\echo :SQLSTATE
SELECT count(*) AS bad_segments FROM audience.segments WHERE name = 'Bad';
SELECT count(*) AS contacts FROM audience.contacts;

-- The query runs as the role that defined it, never as whoever refreshes
-- it (here the scheduled job, as a superuser).
SELECT audience.create_query_segment('Defined by query_app',
    $$SELECT id FROM contacts WHERE current_user = 'query_app'$$) IS NOT NULL AS created;
SELECT audience.duplicate_segment('Big budgets', 'Big budgets copy') IS NOT NULL AS copied;
RESET ROLE;
SELECT audience.refresh_all_tenants() >= 0 AS refreshed;
SET audience.tenant = 'queries';
SELECT name, member_count, query_role FROM audience.segments
 WHERE tenant_id = audience.current_tenant() AND kind = 'query' ORDER BY name;
-- Under the definer's tenant grants: once they no longer allow the
-- tenant, its segments cannot be refreshed.
SELECT audience.revoke_tenant('query_app', 'queries') AS revoked;
SELECT audience.refresh('Big budgets');
\echo :SQLSTATE
SELECT audience.grant_tenant('query_app', 'queries') AS granted;
SELECT audience.drop_segment('Big in DE'), audience.drop_segment('Big budgets');
SELECT count(*) AS memberships_left FROM audience.segment_members m
 WHERE m.tenant_id = audience.current_tenant()
   AND NOT EXISTS (SELECT FROM audience.segments s WHERE s.tenant_id = m.tenant_id AND s.id = m.segment_id);
RESET audience.tenant;
