-- Tenants, the audience.tenant setting, roles and Row Level Security:
-- an application role selects only the tenants granted to it, and sees
-- and touches only its current tenant.
\set SHOW_CONTEXT never
CREATE EXTENSION audience;
SELECT audience.create_tenant('acme') IS NOT NULL AS acme;
SELECT audience.create_tenant('globex') IS NOT NULL AS globex;
SELECT audience.create_tenant('acme');           -- duplicate
\echo :SQLSTATE
SELECT audience.create_tenant('  ');             -- empty name
SELECT count(*) FROM audience.contacts WHERE tenant_id = audience.current_tenant();  -- no tenant set
\echo :SQLSTATE
SET audience.tenant = 'initech';
SELECT audience.current_tenant();                -- unknown tenant
\echo :SQLSTATE
RESET audience.tenant;
SELECT id AS acme_id FROM audience.tenants WHERE name = 'acme' \gset
SELECT id AS globex_id FROM audience.tenants WHERE name = 'globex' \gset

CREATE ROLE app_acme LOGIN IN ROLE audience_user;
CREATE ROLE app_globex LOGIN IN ROLE audience_user;
CREATE ROLE ops LOGIN IN ROLE audience_admin;
ALTER ROLE app_acme SET audience.tenant = 'acme';
SELECT audience.grant_tenant('app_acme', 'acme') AS granted, audience.grant_tenant('app_globex', :'globex_id') AS granted;
SELECT audience.grant_tenant('app_acme', 'acme') AS granted_again;

-- Each application writes its own tenant's data with plain SQL.
SET ROLE app_acme;
SET audience.tenant = 'acme';
SELECT audience.create_tenant('hacked');         -- only audience_admin creates tenants
SELECT name FROM audience.tenants;
SELECT audience.define_field('industry', 'text');
INSERT INTO audience.contacts (id, email, first_name, tags, attributes)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'ann@acme.test', 'Ann', '{VIP}', '{"industry": "SaaS"}'),
       ('00000000-0000-0000-0000-0000000000b1', 'bob@acme.test', 'Bob', '{Buyer}', '{}');
RESET ROLE;

SET ROLE app_globex;
SELECT audience.use_tenant('globex') IS NOT NULL AS using_globex;
SELECT audience.upsert_contact('{"email": "carol@globex.test", "first_name": "Carol", "tags": ["VIP"]}') IS NOT NULL AS upserted;
-- Nothing of acme is visible: tables, views, functions.
SELECT email FROM audience.contacts ORDER BY email;
SELECT name FROM audience.tenants;
SELECT name FROM audience.fields;
SELECT * FROM audience.tag_summary;
SELECT email FROM audience.search('ann');
SELECT audience.export_contact('ann@acme.test');
SELECT audience.forget_contact('ann@acme.test');
-- Nor can it be touched.
UPDATE audience.contacts SET first_name = 'owned' WHERE email = 'ann@acme.test';
DELETE FROM audience.contacts WHERE email LIKE '%@acme.test';
SELECT audience.tag('00000000-0000-0000-0000-0000000000a1', 'owned');
\echo :SQLSTATE
SELECT audience.untag('00000000-0000-0000-0000-0000000000a1', 'VIP');
-- Writing into acme, or moving a row there, is refused.
INSERT INTO audience.contacts (tenant_id, email)
VALUES (:'acme_id', 'mole@globex.test');
UPDATE audience.contacts SET tenant_id = :'acme_id' WHERE email = 'carol@globex.test';
RESET ROLE;

-- acme's rows are unchanged.
SET ROLE app_acme;
SET audience.tenant = 'acme';
SELECT email, first_name, tags FROM audience.contacts ORDER BY email;
-- Without a tenant, an application gets an error, not an empty result.
RESET audience.tenant;
SELECT email FROM audience.contacts;
SELECT * FROM audience.tag_summary;
SELECT audience.upsert_contact('{"email": "dan@acme.test"}');
RESET ROLE;

-- An audience_admin sees every tenant in the tables; functions and views
-- still work on the current tenant.
SET ROLE ops;
SELECT name FROM audience.tenants ORDER BY name;
SELECT email FROM audience.contacts ORDER BY email;
SELECT audience.create_tenant('initech') IS NOT NULL AS created_by_admin;
SET audience.tenant = 'globex';
SELECT * FROM audience.tag_summary;
RESET ROLE;
RESET audience.tenant;

-- A contact belongs to an existing tenant, whoever writes it; deleting a
-- tenant deletes its contacts.
SET ROLE ops;
INSERT INTO audience.contacts (tenant_id, email)
VALUES ('00000000-0000-0000-0000-00000000dead', 'ghost@nowhere.test');
\echo :SQLSTATE
UPDATE audience.contacts SET tenant_id = '00000000-0000-0000-0000-00000000dead' WHERE email = 'carol@globex.test';
\echo :SQLSTATE
RESET ROLE;
SELECT count(*) AS globex_contacts FROM audience.contacts WHERE tenant_id = :'globex_id';
DELETE FROM audience.tenants WHERE name = 'globex';
SELECT count(*) AS contacts_left, string_agg(email, ', ' ORDER BY email) AS emails FROM audience.contacts;
