-- Tenant grants and the reader role: a role selects only the tenants
-- granted to it (directly, through a role it is a member of, or '*'); a
-- reader reads and writes nothing; no application role reaches the
-- functions that triggers and the API use inside.
\set SHOW_CONTEXT never
CREATE EXTENSION dblink;
SELECT audience.create_tenant('grant_a') IS NOT NULL AS a, audience.create_tenant('grant_b') IS NOT NULL AS b;
SELECT id AS a_id FROM audience.tenants WHERE name = 'grant_a' \gset
SELECT id AS b_id FROM audience.tenants WHERE name = 'grant_b' \gset
CREATE ROLE grants_app LOGIN IN ROLE audience_user;
CREATE ROLE grants_team NOLOGIN;
CREATE ROLE grants_member LOGIN IN ROLE audience_user, grants_team;
CREATE ROLE grants_analyst LOGIN IN ROLE audience_reader;
CREATE ROLE grants_server LOGIN IN ROLE audience_user;
CREATE ROLE grants_ops LOGIN IN ROLE audience_admin;
SELECT audience.grant_tenant('grants_app', 'grant_a') AS app, audience.grant_tenant('grants_team', :'a_id') AS team,
       audience.grant_tenant('grants_analyst', 'grant_a') AS analyst, audience.grant_tenant('grants_server', '*') AS server;
SELECT audience.grant_tenant('grants_app', 'no_such_tenant');
\echo :SQLSTATE
SELECT audience.create_tenant('*');
\echo :SQLSTATE
SELECT role, tenant FROM audience.tenant_grants WHERE role LIKE 'grants%';

-- An application server granted every tenant writes both.
SET ROLE grants_server;
SELECT name FROM audience.tenants WHERE name LIKE 'grant%' ORDER BY name;
SET audience.tenant = 'grant_b';
SELECT audience.define_field('secret', 'text');
SELECT audience.upsert_contact('{"email": "b1@grant-b.test", "secret": "b-only"}') IS NOT NULL AS b1;
SELECT audience.create_segment('Grant B secrets', 'secret = ''b-only''') IS NOT NULL AS b_segment;
SELECT audience.create_list('Grant B list') IS NOT NULL AS b_list;
SET audience.tenant = 'grant_a';
SELECT audience.upsert_contact('{"email": "a1@grant-a.test", "city": "Rome"}') IS NOT NULL AS a1;
SELECT audience.upsert_contact('{"email": "a2@grant-a.test", "city": "Oslo"}') IS NOT NULL AS a2;
SELECT audience.create_segment('Romans', 'city = ''Rome''') IS NOT NULL AS romans;
-- It may learn that a tenant does not exist; nobody else may.
SET audience.tenant = 'no_such_tenant';
SELECT audience.current_tenant();
\echo :SQLSTATE
RESET audience.tenant;
RESET ROLE;
SELECT c.id AS a_contact FROM audience.contacts c WHERE c.email = 'a1@grant-a.test' \gset
SELECT c.id AS b_contact FROM audience.contacts c WHERE c.email = 'b1@grant-b.test' \gset
SELECT s.id AS a_segment FROM audience.segments s WHERE s.name = 'Romans' \gset

-- grants_app may select A only. B by name or id, and a tenant that does
-- not exist, fail alike, with nothing to tell them apart.
SET ROLE grants_app;
SELECT name FROM audience.tenants;
SELECT role, tenant FROM audience.tenant_grants;
SET audience.tenant = 'grant_b';
SELECT count(*) FROM audience.contacts;
\echo :SQLSTATE
SET audience.tenant = :'b_id';
\set VERBOSITY sqlstate
SELECT count(*) FROM audience.contacts;
\set VERBOSITY default
SET audience.tenant = 'no_such_tenant';
SELECT count(*) FROM audience.contacts;
\echo :SQLSTATE
-- Functions that run as the extension's owner check the session's role.
SET audience.tenant = 'grant_b';
SELECT audience.count('Grant B secrets');
SELECT audience.create_list('planted');
SELECT audience.preview('everyone');
RESET audience.tenant;
SELECT audience.use_tenant('grant_b');
\echo :SQLSTATE
\set VERBOSITY sqlstate
SELECT audience.use_tenant(:'b_id');
\set VERBOSITY default
SELECT current_setting('audience.tenant', true) AS setting_unchanged;
SELECT audience.use_tenant('grant_a') = :'a_id' AS using_a;
SELECT audience.membership_channel() = 'audience_membership_' || replace(:'a_id', '-', '') AS channel_of_a;
-- Lookups and functions meant for triggers: gone, or refused for any
-- tenant, the role's own included.
\set VERBOSITY terse
SELECT audience.find_tenant('grant_b');
SELECT audience.resolve_tenant('grant_b');
SELECT audience.granted_tenant('grant_b');
SELECT audience.lock_rules(:'b_id', true);
SELECT audience.lock_bulk_writes(:'b_id');
SELECT audience.apply_membership(:'a_id', :'a_segment', ARRAY[:'a_contact'::uuid, (SELECT id FROM audience.contacts WHERE email = 'a2@grant-a.test')], '{}', true);
SELECT audience.apply_memberships(:'a_id', ARRAY[:'a_segment'::uuid], '{}', '{}', ARRAY[:'a_segment'::uuid], ARRAY[:'a_contact'::uuid]);
SELECT audience.maintain_membership(:'b_id', ARRAY['00000000-0000-0000-0000-000000000000'], NULL);
SELECT audience.maintain_fit(:'b_id', NULL);
SELECT audience.campaign_sent(:'b_id');
SELECT audience.rescore(:'b_id');
SELECT audience.hold_tenants(ARRAY[:'b_id'::uuid]);
SELECT audience.edit_list('Grant B list', ARRAY[:'b_contact'::uuid], true);
SELECT audience.import_to_list('Grant B list', ARRAY[:'b_contact'::uuid]);
SELECT audience.import_rows(convert_to(E'email\nx@grant-a.test\n', 'UTF8'), '{}');
SELECT audience.member_ids(s) FROM audience.segments s;
SELECT audience.find_segment('Romans');
SELECT audience.forget_kept_rules();
SELECT audience.refresh_all_tenants();
SELECT audience.grant_tenant('grants_app', 'grant_b');
SELECT audience.revoke_tenant('grants_server', '*');
SELECT audience.create_tenant('grants_own');
INSERT INTO audience.tenant_access (tenant_id, role) VALUES (:'b_id', 'grants_app');
UPDATE audience.tenant_access SET tenant_id = :'b_id';
\set VERBOSITY default
-- Stored membership still equals the rule.
SELECT audience.count('Romans') AS stored, audience.preview('city = ''Rome''') AS live;
RESET ROLE;

-- A's writes hold nothing of B: with A's rules and bulk writes held, B's
-- application writes at once.
SELECT dblink_connect('tenant_b', format('host=%s port=%s dbname=%s user=grants_server',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec('tenant_b', 'SET audience.tenant = ''grant_b''');
SELECT dblink_exec('tenant_b', 'SET lock_timeout = ''2s''');
SET ROLE grants_app;
SET audience.tenant = 'grant_a';
BEGIN;
SELECT audience.update_segment('Romans', rule => 'city = ''Rome'' or city = ''Oslo''');
SELECT rows FROM audience.import_csv(E'email,city\na3@grant-a.test,Rome\n', '{"segment": "Grant A import"}');
SELECT * FROM dblink('tenant_b', 'SELECT audience.upsert_contact(''{"email": "b2@grant-b.test", "secret": "b-only"}'') IS NOT NULL') AS b(upserted boolean);
SELECT * FROM dblink('tenant_b', 'SELECT audience.count(''Grant B secrets'')') AS b(members bigint);
SELECT * FROM dblink('tenant_b', 'SELECT rows FROM audience.import_csv(E''email\nb3@grant-b.test\n'', ''{"segment": "Grant B list"}'')') AS b(imported bigint);
SELECT * FROM dblink('tenant_b', 'SELECT count(*) FROM (SELECT audience.update_segment(''Grant B secrets'', rule => ''everyone'')) u') AS b(updated bigint);
COMMIT;
RESET ROLE;
SELECT dblink_disconnect('tenant_b');

-- A reader reads A through tables, views and read functions.
SET ROLE grants_analyst;
SET audience.tenant = 'grant_a';
SELECT name FROM audience.tenants;
SELECT email, city FROM audience.contacts ORDER BY email;
SELECT name, members FROM audience.segment_overview ORDER BY name;
SELECT segment, email FROM audience.segment_membership ORDER BY segment, email;
SELECT email, segments FROM audience.contact_profile ORDER BY email;
SELECT tier, contacts FROM audience.score_distribution;
SELECT count(*) AS changes FROM audience.membership_changes;
SELECT audience.count('Romans') AS members, audience.in_segment(:'a_contact', 'Romans') AS a1_in,
       audience.preview('city = ''Oslo''') AS oslo, audience.explain('city = ''Oslo''') IS NOT NULL AS explained;
SELECT email FROM audience.members('Romans') ORDER BY email;
SELECT email FROM audience.recipients('Romans') ORDER BY email;
SELECT audience.segments_of(:'a_contact');
SELECT email FROM audience.search('city:Rome') ORDER BY email;
SELECT audience.export_csv('Romans', ARRAY['email', 'city']);
SELECT count(*) AS batched FROM audience.batches('Romans', 1);
SELECT audience.export_contact('a1@grant-a.test') -> 'segments' AS segments;
-- and writes nothing, by any path.
\set VERBOSITY terse
INSERT INTO audience.contacts (email) VALUES ('r@grant-a.test');
UPDATE audience.contacts SET city = 'Paris';
DELETE FROM audience.contacts;
INSERT INTO audience.events (contact_id, kind) VALUES (:'a_contact', 'opened');
INSERT INTO audience.segments (name, kind) VALUES ('planted', 'static');
SELECT audience.upsert_contact('{"email": "r@grant-a.test"}');
SELECT audience.track('a1@grant-a.test', 'opened');
SELECT audience.tag(:'a_contact', 'planted');
SELECT audience.untag(:'a_contact', 'planted');
SELECT audience.tag_segment('Romans', 'planted');
SELECT audience.rename_tag('a', 'b');
SELECT audience.define_field('planted', 'text');
SELECT audience.create_segment('planted', 'everyone');
SELECT audience.create_list('planted');
SELECT audience.add_to_list('Grant A import', ARRAY[:'a_contact'::uuid]);
SELECT audience.remove_from_list('Grant A import', ARRAY[:'a_contact'::uuid]);
SELECT audience.update_segment('Romans', new_name => 'planted');
SELECT audience.duplicate_segment('Romans', 'planted');
SELECT audience.drop_segment('Romans');
SELECT audience.refresh();
SELECT audience.snapshot('Romans');
SELECT audience.import_csv(E'email\nr@grant-a.test\n');
SELECT audience.set_score('opened', 3);
SELECT audience.set_score_reset('opened');
SELECT audience.set_tiers(90, 10);
SELECT audience.set_fit_score('planted', 'everyone', 1);
SELECT audience.set_score_decay(10, '30 days');
SELECT audience.apply_decay();
SELECT audience.recompute_scores();
SELECT audience.forget_contact('a1@grant-a.test');
SELECT audience.purge_forgotten();
SELECT audience.schedule_refresh('* * * * *');
\set VERBOSITY default
-- Nor may it select B.
SET audience.tenant = 'grant_b';
SELECT count(*) FROM audience.contacts;
RESET ROLE;

-- Grants and memberships take effect at the next statement, in sessions
-- that already resolved the tenant too.
SET ROLE grants_member;
SET audience.tenant = 'grant_a';
SELECT count(*) AS through_team FROM audience.contacts;
RESET ROLE;
REVOKE grants_team FROM grants_member;
SET ROLE grants_member;
SELECT count(*) FROM audience.contacts;
\echo :SQLSTATE
RESET ROLE;
SELECT audience.grant_tenant('grants_member', 'grant_a') AS granted;
SET ROLE grants_member;
SELECT count(*) AS granted_directly FROM audience.contacts;
RESET ROLE;
SELECT audience.revoke_tenant('grants_member', 'grant_a') AS revoked, audience.revoke_tenant('grants_member', 'grant_a') AS revoked_again;
SET ROLE grants_member;
SELECT count(*) FROM audience.contacts;
\echo :SQLSTATE
RESET ROLE;
RESET audience.tenant;

-- A login role whose default tenant is not granted gets nowhere.
ALTER ROLE grants_app SET audience.tenant = 'grant_b';
\c - grants_app
SELECT count(*) FROM audience.contacts;
\echo :SQLSTATE
\c - postgres

-- An administrator sees every grant and tenant and may grant; B is as its
-- application left it.
SET ROLE grants_ops;
SELECT audience.grant_tenant('grants_app', 'grant_b') AS granted, audience.revoke_tenant('grants_app', 'grant_b') AS revoked;
SELECT email, attributes FROM audience.contacts WHERE tenant_id = :'b_id' ORDER BY email;
SELECT name, member_count FROM audience.segments WHERE tenant_id = :'b_id' ORDER BY name;
RESET ROLE;
DROP EXTENSION dblink;
