-- The tenant isolation matrix: an application role in tenant A tries to
-- read, write, update, move and delete tenant B's rows in every table and
-- view, directly and through the API. All of it fails or sees nothing.
\set SHOW_CONTEXT never
CREATE ROLE iso_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('iso_a', 'iso_app') IS NOT NULL AS a, audience.create_tenant('iso_b') IS NOT NULL AS b;

-- Tenant B gets a row in every table, through the API.
SET audience.tenant = 'iso_b';
SELECT audience.define_field('secret', 'text');
SELECT rows FROM audience.import_csv(E'email,secret,tags\nb1@b.test,b-only,VIP\nb2@b.test,b-only,\n', '{"segment": "B list"}');
SELECT audience.track('b1@b.test', 'sent', 'b-campaign') > 0 AS tracked, audience.track('b1@b.test', 'clicked', 'b-campaign') > 0 AS tracked;
SELECT audience.create_segment('B clickers', 'clicked at least 1 times') IS NOT NULL AS created;
SELECT audience.set_fit_score('B fit', 'custom.secret = ''b-only''', 5) AS fitted;
SELECT audience.snapshot('B clickers') IS NOT NULL AS snapshot;
SELECT audience.set_tiers(70, 30);
SELECT id AS b_contact FROM audience.contacts WHERE email = 'b1@b.test' \gset
SELECT id AS b_segment FROM audience.segments WHERE name = 'B clickers' \gset
SELECT audience.current_tenant() AS b_tenant \gset
RESET audience.tenant;
SET audience.tenant = 'iso_a';
INSERT INTO audience.contacts (email) VALUES ('a1@a.test');
RESET audience.tenant;

SET iso.b_tenant = :'b_tenant';
SET ROLE iso_app;
SET audience.tenant = 'iso_a';
-- Every table with a tenant_id: B's rows are invisible, and updates,
-- deletes and moves of them touch nothing.
CREATE TEMP TABLE matrix (relation text, visible bigint, updated bigint, deleted bigint);
DO $matrix$
DECLARE
    rel regclass;
    seen bigint;
    updated bigint;
    deleted bigint;
BEGIN
    FOR rel IN SELECT c.oid::regclass FROM pg_class c
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
                WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v')
                ORDER BY 1::text
    LOOP
        EXECUTE format('SELECT count(*) FROM %s WHERE tenant_id = %L', rel, current_setting('iso.b_tenant')) INTO seen;
        updated := NULL;
        deleted := NULL;
        IF (SELECT relkind FROM pg_class WHERE oid = rel) = 'r' AND has_any_column_privilege(rel, 'UPDATE') AND rel <> 'audience.events'::regclass THEN
            EXECUTE format('UPDATE %s SET tenant_id = tenant_id WHERE tenant_id = %L', rel, current_setting('iso.b_tenant'));
            GET DIAGNOSTICS updated = ROW_COUNT;
        END IF;
        IF (SELECT relkind FROM pg_class WHERE oid = rel) = 'r' AND has_table_privilege(rel, 'DELETE') THEN
            EXECUTE format('DELETE FROM %s WHERE tenant_id = %L', rel, current_setting('iso.b_tenant'));
            GET DIAGNOSTICS deleted = ROW_COUNT;
        END IF;
        INSERT INTO matrix VALUES (rel::text, seen, updated, deleted);
    END LOOP;
END
$matrix$;
SELECT * FROM matrix ORDER BY relation;
-- The tenants table itself: B is invisible and cannot be renamed.
SELECT name FROM audience.tenants ORDER BY name;
UPDATE audience.tenants SET name = 'owned' WHERE name = 'iso_b';
\echo :SQLSTATE
-- Writing into B or moving A's rows there is refused, table by table.
INSERT INTO audience.contacts (tenant_id, email) VALUES (:'b_tenant', 'mole@a.test');
\echo :SQLSTATE
UPDATE audience.contacts SET tenant_id = :'b_tenant' WHERE email = 'a1@a.test';
\echo :SQLSTATE
INSERT INTO audience.segment_members (tenant_id, segment_id, contact_id) VALUES (:'b_tenant', :'b_segment', :'b_contact');
\echo :SQLSTATE
INSERT INTO audience.contact_segments (tenant_id, contact_id, segments, added_at) VALUES (:'b_tenant', :'b_contact', '{1}', ARRAY[now()]);
\echo :SQLSTATE
INSERT INTO audience.events (tenant_id, contact_id, kind) VALUES (:'b_tenant', :'b_contact', 'opened');
\echo :SQLSTATE
INSERT INTO audience.events (contact_id, kind) VALUES (:'b_contact', 'opened');
\echo :SQLSTATE
INSERT INTO audience.scoring_rules (tenant_id, kind, points) VALUES (:'b_tenant', 'opened', 1000);
\echo :SQLSTATE
INSERT INTO audience.fields (tenant_id, name, type) VALUES (:'b_tenant', 'planted', 'text');
\echo :SQLSTATE
-- The API with B's names and ids: unknown, empty or refused.
SELECT audience.in_segment(:'b_contact', 'B clickers');
\echo :SQLSTATE
SELECT count(*) AS members FROM audience.members('B clickers');
\echo :SQLSTATE
SELECT audience.add_to_list('B list', ARRAY[:'b_contact'::uuid]);
\echo :SQLSTATE
SELECT audience.track('b1@b.test', 'opened');
\echo :SQLSTATE
SELECT audience.export_contact('b1@b.test') IS NULL AS nothing_exported;
SELECT audience.forget_contact('b1@b.test') AS forgot;
\set VERBOSITY sqlstate
SELECT audience.tag(:'b_contact', 'owned');
\set VERBOSITY default
SELECT audience.segments_of(:'b_contact');
SELECT audience.preview('custom.secret = ''b-only''');
\echo :SQLSTATE
SELECT count(*) AS found FROM audience.search('b-only');
SELECT audience.snapshot_members(id) FROM audience.snapshots;
SELECT audience.drop_segment('B clickers');
\echo :SQLSTATE
SELECT audience.drop_fit_score('B fit');
\echo :SQLSTATE
SELECT rows, updated, rejected FROM audience.import_csv(E'email,first_name\nb1@b.test,Owned\n', '{"insert": false, "segment": "A list"}');
-- Views show A only.
SELECT name, members FROM audience.segment_overview ORDER BY name;
SELECT count(*) AS b_members FROM audience.segment_membership WHERE email LIKE '%@b.test';
SELECT count(*) AS b_profiles FROM audience.contact_profile WHERE email LIKE '%@b.test';
SELECT * FROM audience.tag_summary;
SELECT tier, contacts FROM audience.score_distribution;
-- Server files stay the superuser's.
SELECT audience.import_csv(pg_read_binary_file('/etc/passwd'));
\echo :SQLSTATE
RESET ROLE;

-- B is exactly as it was (read as the superuser, who sees every tenant).
SET audience.tenant = 'iso_b';
SELECT email, first_name, score, tags, attributes FROM audience.contacts WHERE tenant_id = audience.current_tenant() ORDER BY email;
SELECT name, member_count FROM audience.segments WHERE tenant_id = audience.current_tenant() ORDER BY name;
SELECT kind, count(*) FROM audience.events WHERE tenant_id = audience.current_tenant() GROUP BY kind ORDER BY kind;
SELECT count(*) AS rules FROM audience.scoring_rules WHERE tenant_id = audience.current_tenant();
SELECT name FROM audience.fields WHERE tenant_id = audience.current_tenant();
RESET audience.tenant;
