-- Odd but legal input must not break a tenant, the scheduled job or
-- dumps: renames that would make a rule too long, segments that fit rules
-- use, deep webs of segment references, decay in another time zone, and
-- fit rules that would read the score through a segment.
\set SHOW_CONTEXT never
CREATE ROLE integrity_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('integrity', 'integrity_app') IS NOT NULL AS created;
SET ROLE integrity_app;
SET audience.tenant = 'integrity';

-- A rename that would make a referring rule longer than a rule may be is
-- refused before anything changes; the tenant keeps working.
SELECT audience.create_list('a') IS NOT NULL AS list;
SELECT audience.create_segment('Refs', (SELECT string_agg('in segment ''a''', ' or ') FROM generate_series(1, 1000))::audience.rule) IS NOT NULL AS refs;
SELECT audience.update_segment('a', new_name => repeat('L', 70));
\echo :SQLSTATE
SELECT name FROM audience.segments WHERE kind = 'static';
SELECT length(rule::text) AS refs_length FROM audience.segments WHERE name = 'Refs';
INSERT INTO audience.contacts (email) VALUES ('still@writes.test');
SELECT audience.update_segment('a', new_name => 'b');
SELECT length(rule::text) AS renamed_length FROM audience.segments WHERE name = 'Refs';
SELECT audience.drop_segment('Refs');
-- Names are the extension's to limit, not the index's: 200 characters.
SELECT audience.create_list(repeat('n', 201));
\echo :SQLSTATE
SELECT audience.create_list(repeat('n', 200)) IS NOT NULL AS longest_name;
SELECT audience.set_fit_score(repeat('n', 201), 'everyone', 1);
\echo :SQLSTATE
-- Nor can JSON nest a rule deeper than its text may be.
SELECT audience.rule_from_json((SELECT repeat('{"not": ', 101) || '{"tag": "x"}' || repeat('}', 101))::jsonb);
\echo :SQLSTATE

-- Columns the triggers own, and tables only the API writes, are not
-- written directly: scores keep equal to a recompute, membership to rules.
\set VERBOSITY terse
UPDATE audience.contacts SET engagement_score = 999 WHERE email = 'still@writes.test';
UPDATE audience.contacts SET fit_score = 5, event_count = 0, score_reset_at = now();
UPDATE audience.contacts SET last_activity_at = now(), last_opened_at = now(), last_clicked_at = now();
INSERT INTO audience.contacts (email, engagement_score) VALUES ('rich@writes.test', 1000);
INSERT INTO audience.segment_members (segment_id, contact_id)
SELECT s.id, c.id FROM audience.segments s, audience.contacts c WHERE s.name = 'b';
INSERT INTO audience.contact_segments (contact_id, segments, added_at)
SELECT c.id, ARRAY[s.number], ARRAY[now()] FROM audience.segments s, audience.contacts c WHERE s.name = 'b';
UPDATE audience.contact_segments SET segments = '{}', added_at = '{}';
UPDATE audience.segments SET member_count = 7;
UPDATE audience.segments SET rule = 'everyone' WHERE name = 'b';
INSERT INTO audience.segments (name, kind, rule) VALUES ('planted', 'dynamic', 'everyone');
INSERT INTO audience.scoring_rules (kind, points) VALUES ('opened', 1000);
INSERT INTO audience.fit_rules (name, rule, points) VALUES ('planted', 'everyone', 1000);
UPDATE audience.settings SET hot_score = 0;
INSERT INTO audience.fields (name, type) VALUES ('planted', 'number');
DELETE FROM audience.membership_log;
INSERT INTO audience.imports (id, rows, inserted, updated, unchanged, rejected) VALUES (gen_random_uuid(), 1, 1, 0, 0, 0);
\set VERBOSITY default
SELECT audience.recompute_scores() AS wrong_scores, count(*) AS members FROM audience.segment_members;

-- Segments that fit rules use: renames rewrite the fit rule, drops are
-- refused.
SELECT audience.create_list('Tmp') IS NOT NULL AS list;
SELECT audience.set_fit_score('f', 'in segment ''Tmp''', 1);
SELECT audience.drop_segment('Tmp');
\echo :SQLSTATE
SELECT audience.update_segment('Tmp', new_name => 'Temporary');
SELECT name, rule FROM audience.fit_rules;
INSERT INTO audience.contacts (email) VALUES ('after.rename@writes.test');
SELECT audience.drop_fit_score('f');
SELECT audience.drop_segment('Temporary');

-- A fit rule may not read the score through segments, at any depth.
SELECT audience.create_segment('HighScore', 'score >= 10') IS NOT NULL AS high;
SELECT audience.create_segment('NotHigh', 'not in segment ''HighScore''') IS NOT NULL AS not_high;
SELECT audience.set_fit_score('x', 'not in segment ''HighScore''', 10);
\echo :SQLSTATE
SELECT audience.set_fit_score('x', 'in segment ''NotHigh''', 10);
\echo :SQLSTATE
SELECT audience.create_segment('Plain', 'city = ''Oslo''') IS NOT NULL AS plain;
SELECT audience.set_fit_score('oslo', 'in segment ''Plain''', 5);
SELECT audience.update_segment('Plain', rule => 'score > 5');
\echo :SQLSTATE
SELECT rule FROM audience.segments WHERE name = 'Plain';
SELECT audience.upsert_contact('{"email": "oslo@writes.test", "city": "Oslo"}') IS NOT NULL AS upserted;
SELECT email, fit_score FROM audience.contacts WHERE city = 'Oslo';
SELECT audience.drop_fit_score('oslo');

-- References that branch and rejoin 40 levels deep (2^40 ways down) are
-- checked visiting each segment once.
SELECT audience.create_list('D0') IS NOT NULL AND audience.create_list('D1') IS NOT NULL AS lists;
DO $deep$
BEGIN
    FOR n IN 2..40 LOOP
        PERFORM audience.create_segment('D' || n, format('in segment %L or in segment %L', 'D' || (n - 1), 'D' || (n - 2))::audience.rule);
    END LOOP;
END
$deep$;
SELECT audience.create_segment('T', 'everyone') IS NOT NULL AS t;
SELECT audience.update_segment('T', rule => 'in segment ''D40''');
SELECT audience.update_segment('D3', rule => 'in segment ''D5''');
\echo :SQLSTATE
SELECT audience.update_segment('D2', rule => 'in segment ''T''');
\echo :SQLSTATE

-- Decay ages points the same way in every time zone.
SET TimeZone = 'Europe/Berlin';
SELECT audience.upsert_contact('{"email": "tz@writes.test"}') IS NOT NULL AS upserted;
SELECT audience.set_score_decay(50, '60 days');
RESET ROLE;
UPDATE audience.settings SET decayed_at = '2026-12-01 12:00+00' WHERE tenant_id = audience.current_tenant();
SET ROLE integrity_app;
SELECT audience.recompute_scores() >= 0 AS rescored;
-- 60 days and half an hour before the decay, across the end of summer time.
INSERT INTO audience.events (contact_id, kind, occurred_at)
SELECT id, 'clicked', timestamptz '2026-12-01 12:00+00' - interval '1440 hours 30 minutes'
  FROM audience.contacts WHERE email = 'tz@writes.test';
SELECT engagement_score AS berlin FROM audience.contacts WHERE email = 'tz@writes.test';
SELECT audience.recompute_scores() AS wrong_in_berlin;
SET TimeZone = 'UTC';
SELECT audience.recompute_scores() AS wrong_in_utc;
SET TimeZone = 'America/Los_Angeles';
SELECT audience.recompute_scores() AS wrong_in_los_angeles;
RESET TimeZone;
RESET ROLE;

-- One tenant's failure does not stop the scheduled refresh of the others:
-- a fit rule broken behind the API's back fails its tenant alone.
SET audience.tenant = 'integrity';
SELECT audience.set_fit_score('broken', 'everyone', 1);
UPDATE audience.fit_rules SET rule = 'in segment ''Gone''' WHERE name = 'broken';
SELECT audience.create_tenant('integrity_other', 'integrity_app') IS NOT NULL AS other;
SET audience.tenant = 'integrity_other';
INSERT INTO audience.contacts (email) VALUES ('aging@other.test');
SELECT audience.create_segment('Last hour', 'created_at within 1 hours') IS NOT NULL AS created;
-- The contact ages behind the triggers' back: stored membership is stale.
SET session_replication_role = replica;
UPDATE audience.contacts SET created_at = now() - interval '2 hours' WHERE email = 'aging@other.test';
RESET session_replication_role;
SELECT member_count AS stale FROM audience.segments WHERE tenant_id = audience.current_tenant() AND name = 'Last hour';
RESET audience.tenant;
SELECT audience.refresh_all_tenants() >= 0 AS refreshed;
SET audience.tenant = 'integrity_other';
SELECT member_count AS refreshed FROM audience.segments WHERE tenant_id = audience.current_tenant() AND name = 'Last hour';
SET audience.tenant = 'integrity';
DELETE FROM audience.fit_rules WHERE tenant_id = audience.current_tenant() AND name = 'broken';
RESET audience.tenant;

-- A segment that refers to a clock-based segment changes with the clock
-- too: every read path reads it live, and the scheduled refresh brings its
-- stored members and the fit points that depend on it up to date.
SET audience.tenant = 'integrity_other';
INSERT INTO audience.contacts (email) VALUES ('young@other.test');
SELECT audience.create_segment('New1h', 'created_at within 1 hours') IS NOT NULL AS new1h,
       audience.create_segment('InNew1h', 'in segment ''New1h''') IS NOT NULL AS in_new1h,
       audience.create_segment('NotInNew1h', 'not in segment ''InNew1h''') IS NOT NULL AS not_in;
SELECT audience.set_fit_score('fresh', 'in segment ''InNew1h''', 5) AS fit;
SELECT email, fit_score FROM audience.contacts WHERE email LIKE '%@other.test' ORDER BY email;
SET session_replication_role = replica;
UPDATE audience.contacts SET created_at = now() - interval '2 hours' WHERE email = 'young@other.test';
RESET session_replication_role;
SET ROLE integrity_app;
SELECT c.email, audience.in_segment(c.id, 'New1h') AS new1h, audience.in_segment(c.id, 'InNew1h') AS in_new1h,
       audience.in_segment(c.id, 'NotInNew1h') AS not_in, array(SELECT audience.segments_of(c.id)) AS segments
  FROM audience.contacts c ORDER BY email;
SELECT audience.count('InNew1h') AS count_in, audience.count('NotInNew1h') AS count_not_in,
       (SELECT count(*) FROM audience.members('InNew1h')) AS members_in,
       audience.preview('in segment ''InNew1h''') AS preview_in;
SELECT name, members FROM audience.segment_overview WHERE name LIKE '%New1h' ORDER BY name;
RESET ROLE;
SELECT audience.refresh_all_tenants() >= 0 AS refreshed;
SELECT name, member_count FROM audience.segments
 WHERE tenant_id = audience.current_tenant() AND name LIKE '%New1h' ORDER BY name;
SELECT email, fit_score FROM audience.contacts WHERE email LIKE '%@other.test' ORDER BY email;
RESET audience.tenant;

-- Everyone's member count counts every contact of its tenant, through
-- inserts, imports, deletes and moves between tenants.
CREATE VIEW everyone_counts AS
    SELECT t.name AS tenant, s.member_count,
           (SELECT count(*) FROM audience.contacts c WHERE c.tenant_id = t.id) AS contacts
      FROM audience.tenants t JOIN audience.segments s ON s.tenant_id = t.id AND s.kind = 'everyone'
     WHERE t.name LIKE 'integrity%' ORDER BY t.name;
SELECT * FROM everyone_counts;
SET ROLE integrity_app;
SET audience.tenant = 'integrity_other';
INSERT INTO audience.contacts (email) VALUES ('one@other.test'), ('two@other.test');
SELECT inserted FROM audience.import_csv(E'email\nthree@other.test\none@other.test\n');
DELETE FROM audience.contacts WHERE email = 'two@other.test';
SELECT audience.count('Everyone') AS everyone, (SELECT members FROM audience.segment_overview WHERE kind = 'everyone') AS overview;
RESET ROLE;
UPDATE audience.contacts SET tenant_id = (SELECT id FROM audience.tenants WHERE name = 'integrity')
 WHERE email = 'three@other.test';
SELECT * FROM everyone_counts;
DROP VIEW everyone_counts;
RESET audience.tenant;

-- Imports: a NUL character or year 0 rejects its row alone (and is
-- reported), the last valid row of an email wins, and erasing a contact
-- takes its address out of the import reports.
SET ROLE integrity_app;
SET audience.tenant = 'integrity';
SELECT audience.define_field('signed_up', 'date');
SELECT rows, inserted, rejected, jsonb_pretty(errors) AS errors
  FROM audience.import_csv(E'email,city,tags,created_at,signed_up\nnul@writes.test,Ro\\000me,,,\ntags@writes.test,,V\\000IP,,\nyear@writes.test,,,0000-01-01,\nzero@writes.test,,,,0000-01-01\ndup@writes.test,Rome,,,\ndup@writes.test,Oslo,,,2026-01-02\nDUP@writes.test,Lima,,nope,\n'::bytea,
                           '{"segment": "Imported"}');
SELECT email, city, attributes FROM audience.contacts WHERE email LIKE '%@writes.test' AND city IS NOT NULL ORDER BY email;
SELECT audience.preview('signed_up < ''2026-06-01''') AS signed_up_before_june;
SELECT audience.forget_contact('dup@writes.test');
SELECT count(*) AS mentions FROM audience.imports i, jsonb_array_elements(i.errors) e WHERE e->>'value' ILIKE 'dup@writes.test';
-- A rule's JSON says everyone only with true.
SELECT audience.rule_from_json('{"everyone": false}');
\echo :SQLSTATE
-- JSON nested deeper than any reader's limit is too complex, not an
-- internal error.
SELECT audience.rule_from_json((SELECT repeat('{"not": ', 200) || '{"tag": "x"}' || repeat('}', 200))::jsonb);
\echo :SQLSTATE

-- One case folding everywhere: rules, search, tags, names, uniqueness.
SELECT audience.upsert_contact('{"email": "fold@writes.test", "city": "ΟΔΟΣ", "tags": ["İzmir", "ΟΔΟΣ"]}') IS NOT NULL AS folded_contact;
SELECT tags, tag_keys FROM audience.contacts WHERE email = 'fold@writes.test';
SELECT audience.preview('tag ''οδος''') AS tag_rule, audience.preview('tag ''İZMIR''') AS dotted_capital,
       audience.preview('city = ''ΟΔΟΣ''') AS city_exact, audience.preview('city = ''οδος''') AS city_final_sigma;
SELECT count(*) AS search_tag FROM audience.search('tag:οδος');
SELECT count(*) AS search_city FROM audience.search('city:οδος');
SELECT audience.untag(c.id, 'İZMIR') AS untagged FROM audience.contacts c WHERE email = 'fold@writes.test';
SELECT audience.rename_tag('οδος', 'Street') AS renamed;
SELECT tags, tag_keys FROM audience.contacts WHERE email = 'fold@writes.test';
SELECT audience.create_list('ΟΔΟΣ') IS NOT NULL AS list;
SELECT audience.create_list('οδος');
\echo :SQLSTATE
SELECT audience.add_to_list('ΟΔΟΣ', ARRAY(SELECT id FROM audience.contacts WHERE email = 'fold@writes.test')) AS added;
SELECT audience.preview('in segment ''οδος''') AS in_folded_list;
SELECT audience.tag_segment('οδος', 'ΣΤΑΣΗ') AS tagged_first, audience.tag_segment('ΟΔΟΣ', 'σταση') AS tagged_again;
SELECT audience.drop_segment('οδος');
RESET ROLE;
RESET audience.tenant;
