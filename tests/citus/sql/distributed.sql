-- The extension on a Citus cluster, distributed by audience.distribute()
-- (tests/citus/run.sh called it once after adding the two workers).

-- Tenants, grants and publications are reference tables; every other table
-- is distributed by tenant_id, all in one co-location group with contacts.
SELECT logicalrelid AS table_name, partmethod, partkey IS NULL AS no_key
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'audience.%' ORDER BY 1::text;
SELECT count(DISTINCT colocationid) AS colocation_groups
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'audience.%' AND partmethod = 'h';
-- It can be called again: what is placed stays placed.
SELECT count(*) FROM audience.distribute();

-- Tenants are made at the coordinator; the copies of tenants on the
-- workers do not write a second set of default scoring rules.
SELECT audience.create_tenant('north') IS NOT NULL AS created, audience.create_tenant('south') IS NOT NULL AS created;
SELECT t.name, count(r.*) AS scoring_rules
  FROM audience.tenants t LEFT JOIN audience.scoring_rules r ON r.tenant_id = t.id
 GROUP BY t.name ORDER BY t.name;

-- Contacts written through the API and by SQL: the triggers run on the
-- tenant's worker, and the Everyone segment counts them.
SET audience.tenant = 'north';
SELECT audience.upsert_contact('{"email": "Ann@Example.com", "first_name": "Ann", "country": "Germany"}') IS NOT NULL AS upserted;
SELECT audience.upsert_contact('{"email": "bob@example.com", "country": "fr", "phone": "+49 30 1234567"}') IS NOT NULL AS upserted;
SELECT audience.upsert_contact('{"email": "ann@example.com", "last_name": "Lee"}') IS NOT NULL AS upserted;
INSERT INTO audience.contacts (tenant_id, email, tags)
SELECT id, 'c' || n || '@example.com', ARRAY['Bulk'] FROM audience.tenants, generate_series(1, 50) n WHERE name = 'north';
UPDATE audience.contacts SET city = 'Berlin' WHERE tenant_id = (SELECT id FROM audience.tenants WHERE name = 'north') AND email LIKE 'c1%';
DELETE FROM audience.contacts WHERE tenant_id = (SELECT id FROM audience.tenants WHERE name = 'north') AND email LIKE 'c2%';
SELECT email, first_name, last_name, country, phone, tags FROM audience.contacts
 WHERE tenant_id = (SELECT id FROM audience.tenants WHERE name = 'north') AND email NOT LIKE 'c%' ORDER BY email;
SELECT t.name, count(c.id) AS contacts, s.member_count AS everyone
  FROM audience.segments s
  JOIN audience.tenants t ON t.id = s.tenant_id
  LEFT JOIN audience.contacts c ON c.tenant_id = s.tenant_id
 WHERE s.kind = 'everyone'
 GROUP BY t.name, s.member_count ORDER BY t.name;

-- Single-tenant statements run on one worker: each plan has one task.
-- (A helper of this session only, which Citus need not know of.)
SET client_min_messages = error;
CREATE FUNCTION pg_temp.tasks(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        IF line ~ 'Task Count' THEN
            RETURN btrim(line);
        END IF;
    END LOOP;
    RETURN 'no distributed plan';
END
$$;
RESET client_min_messages;
SELECT id AS north FROM audience.tenants WHERE name = 'north' \gset
SELECT pg_temp.tasks(format('SELECT * FROM audience.contacts WHERE tenant_id = %L', :'north')) AS contacts_of_a_tenant;
SELECT pg_temp.tasks(format('UPDATE audience.contacts SET city = NULL WHERE tenant_id = %L', :'north')) AS update_of_a_tenant;
SELECT pg_temp.tasks(format('INSERT INTO audience.events (tenant_id, contact_id, kind) SELECT tenant_id, id, ''opened'' FROM audience.contacts WHERE tenant_id = %L', :'north')) AS events_of_a_tenant;
SELECT pg_temp.tasks(format('SELECT count(*) FROM audience.contacts c JOIN audience.contact_segments m ON m.tenant_id = c.tenant_id AND m.contact_id = c.id WHERE c.tenant_id = %L', :'north')) AS membership_join;
SELECT pg_temp.tasks('SELECT count(*) FROM audience.contacts') AS every_tenant;

-- A role bound by Row Level Security reads the tables directly with the
-- tenant chosen per transaction (or as a setting of the role, as
-- run.sh's demo does): the workers evaluate the policies, and a
-- session's SET stays at the coordinator, which the error says.
CREATE ROLE citus_reader LOGIN IN ROLE audience_reader;
SELECT audience.grant_tenant('citus_reader', 'north') AS granted;
SET ROLE citus_reader;
SET audience.tenant = 'north';
\set SHOW_CONTEXT never
SELECT count(*) FROM audience.contacts;
BEGIN;
SET LOCAL audience.tenant = 'north';
SELECT count(*) AS north_contacts FROM audience.contacts;
COMMIT;
RESET ROLE;
