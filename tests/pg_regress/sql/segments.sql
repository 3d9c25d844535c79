-- Segments as an application sees them: lists, dynamic segments, Everyone,
-- membership that follows every change, the change log, snapshots and
-- campaign helpers, views, and bad input.
\set SHOW_CONTEXT never
CREATE ROLE seg_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('segments_test', 'seg_app') IS NOT NULL AS created;
SET ROLE seg_app;
SET audience.tenant = 'segments_test';
SELECT audience.define_field('industry', 'text');
-- Scores follow from events and fit rules; the superuser sets them here.
RESET ROLE;
INSERT INTO audience.contacts (email, first_name, country, city, lead_status, engagement_score, tags, attributes) VALUES
    ('ann@example.com', 'Ann', 'CA', 'Toronto', 'hot', 60, '{VIP}', '{"industry": "SaaS"}'),
    ('bob@example.com', 'Bob', 'CA', 'Ottawa', 'new', 10, '{}', '{"industry": "Retail"}'),
    ('cy@example.com', 'Cy', 'US', 'Boston', 'hot', 30, '{vip}', '{}'),
    ('di@example.com', 'Di', 'DE', 'Berlin', 'cold', 0, '{Suppressed}', '{}');
SET ROLE seg_app;

-- Everyone exists from the start; dynamic segments fill at once.
SELECT name, kind, members FROM audience.segment_overview;
SELECT audience.create_segment('Canada', 'country = ''CA''', 'Contacts in Canada') IS NOT NULL AS created;
SELECT audience.create_segment('Hot Canada', 'in segment ''Canada'' and lead_status = ''hot''') IS NOT NULL AS created;
SELECT audience.create_segment('VIP', 'tag ''VIP'' and not in segment ''Suppressed list''');
\echo :SQLSTATE
SELECT audience.create_list('Suppressed list') IS NOT NULL AS created;
SELECT audience.create_segment('VIP', 'tag ''VIP'' and not in segment ''Suppressed list''') IS NOT NULL AS created;
SELECT name, kind, members, rule FROM audience.segment_overview;

-- Membership follows plain SQL writes, in the same statement.
UPDATE audience.contacts SET lead_status = 'hot' WHERE email = 'bob@example.com';
SELECT segment, email, tier FROM audience.segment_membership ORDER BY segment, email;
UPDATE audience.contacts SET country = 'US' WHERE email = 'ann@example.com';
SELECT audience.segments_of(id) AS ann_segments FROM audience.contacts WHERE email = 'ann@example.com';
SELECT audience.add_to_list('Suppressed list', ARRAY(SELECT id FROM audience.contacts WHERE email IN ('cy@example.com', 'di@example.com')));
SELECT audience.add_to_list('Suppressed list', ARRAY(SELECT id FROM audience.contacts WHERE email = 'cy@example.com'));
SELECT email FROM audience.members('VIP') ORDER BY email;
SELECT audience.remove_from_list('Suppressed list', ARRAY(SELECT id FROM audience.contacts WHERE email = 'cy@example.com'));
SELECT email FROM audience.members('vip') ORDER BY email;
SELECT audience.in_segment(id, 'VIP') AS cy_in_vip FROM audience.contacts WHERE email = 'cy@example.com';
SELECT audience.count('Everyone') AS everyone, audience.count('Canada') AS canada, audience.count('hot canada') AS hot_canada;
DELETE FROM audience.contacts WHERE email = 'bob@example.com';
SELECT name, members FROM audience.segment_overview;

-- Every change is logged (in order of statements).
SELECT s.name, c.email, m.change
  FROM audience.membership_changes m
  JOIN audience.segments s ON s.id = m.segment_id
  JOIN audience.contacts c ON c.id = m.contact_id
 ORDER BY m.at, s.name, m.change, c.email;
SELECT s.name, m.change, count(*) FROM audience.membership_changes m JOIN audience.segments s ON s.id = m.segment_id
 GROUP BY 1, 2 ORDER BY 1, 2;

-- Renaming keeps rules working; changing a rule moves membership at once.
SELECT audience.update_segment('Canada', new_name => 'Canadians', description => 'In Canada');
SELECT name, rule FROM audience.segments WHERE name IN ('Canadians', 'Hot Canada') ORDER BY name;
SELECT audience.update_segment('Canadians', rule => 'country in (''CA'', ''US'')');
SELECT name, members FROM audience.segment_overview WHERE name IN ('Canadians', 'Hot Canada');
SELECT audience.duplicate_segment('Canadians', 'North America') IS NOT NULL AS copied;
SELECT audience.duplicate_segment('Suppressed list', 'Suppressed copy') IS NOT NULL AS copied;
SELECT name, kind, members FROM audience.segment_overview;

-- Campaign helpers.
SELECT audience.snapshot('Canadians', 'November send') AS snap \gset
UPDATE audience.contacts SET country = 'DE' WHERE email = 'ann@example.com';
SELECT count(*) AS frozen FROM audience.snapshot_members(:'snap');
SELECT audience.count('Canadians') AS now_in_canadians;
SELECT batch, count(*) FROM audience.batches('Everyone', 2) GROUP BY batch ORDER BY batch;
UPDATE audience.contacts SET status = 'unsubscribed' WHERE email = 'cy@example.com';
SELECT email FROM audience.recipients('Everyone') ORDER BY email;
SELECT audience.tag_segment('Everyone', 'Newsletter 2026');
SELECT audience.tag_segment('Everyone', 'newsletter 2026');
SELECT * FROM audience.tag_summary;
SELECT email, tier, segments FROM audience.contact_profile ORDER BY email;

-- Bad input: nothing half-made.
SELECT audience.create_segment('canadians', 'everyone');
\echo :SQLSTATE
SELECT audience.create_segment('Broken', 'shoe_size = 3');
\echo :SQLSTATE
SELECT audience.create_segment('Broken', 'country =');
\echo :SQLSTATE
SELECT count(*) AS broken FROM audience.segments WHERE name = 'Broken';
SELECT audience.count('Nope');
\echo :SQLSTATE
SELECT audience.drop_segment('Canadians');
\echo :SQLSTATE
SELECT audience.update_segment('Canadians', rule => 'in segment ''Hot Canada''');
\echo :SQLSTATE
SELECT audience.add_to_list('Canadians', '{}');
\echo :SQLSTATE
SELECT audience.add_to_list('Suppressed list', ARRAY['00000000-0000-0000-0000-000000000001'::uuid]);
\echo :SQLSTATE
SELECT audience.drop_segment('Everyone');
SELECT audience.batches('Everyone', 0);
-- Scheduling the job is an administrator's: the application may not.
SELECT audience.schedule_refresh('* * * * *');
\echo :SQLSTATE
RESET ROLE;
SELECT audience.schedule_refresh('* * * * *');
\echo :SQLSTATE
SET ROLE seg_app;

-- Dropping never touches contacts.
SELECT audience.drop_segment('Hot Canada');
SELECT audience.drop_segment('Canadians');
SELECT count(*) AS contacts FROM audience.contacts;
SELECT name FROM audience.segment_overview;

-- Time-relative rules: exact at any moment, stored membership caught up
-- by refresh. A contact created 7 days minus a second ago leaves "New this
-- week" while we wait two seconds.
INSERT INTO audience.contacts (email, created_at) VALUES
    ('old@example.com', now() - interval '10 days'),
    ('leaving@example.com', now() - interval '7 days' + interval '1 second');
SELECT audience.create_segment('New this week', 'created_at within 7 days') IS NOT NULL AS created;
SELECT audience.count('New this week') AS live, member_count AS stored FROM audience.segments WHERE name = 'New this week';
SELECT pg_sleep(2);
SELECT audience.count('New this week') AS live, member_count AS stored FROM audience.segments WHERE name = 'New this week';
SELECT audience.in_segment(id, 'New this week') AS leaving_in_segment FROM audience.contacts WHERE email = 'leaving@example.com';
SELECT audience.refresh('New this week') AS changes;
SELECT audience.count('New this week') AS live, member_count AS stored FROM audience.segments WHERE name = 'New this week';
SELECT refreshed_at IS NOT NULL AS refreshed, refresh_duration IS NOT NULL AS timed FROM audience.segments WHERE name = 'New this week';

-- Forgetting a contact takes its history out of the change log at once;
-- the purge then removes it from the table underneath.
SELECT id AS cy FROM audience.contacts WHERE email = 'cy@example.com' \gset
SELECT count(*) AS cy_changes FROM audience.membership_changes WHERE contact_id = :'cy';
SELECT audience.forget_contact('cy@example.com');
SELECT count(*) AS cy_changes FROM audience.membership_changes WHERE contact_id = :'cy';
SELECT count(*) AS cy_logged FROM audience.membership_log WHERE :'cy' = ANY (contacts);
SELECT audience.purge_forgotten() AS purged;
SELECT count(*) AS cy_logged FROM audience.membership_log WHERE :'cy' = ANY (contacts);
SELECT count(*) AS pending FROM audience.forgotten_contacts;
RESET ROLE;
