-- Bulk statements: an UPDATE of more than 50,000 contacts is maintained in
-- one pass that locks the segments it evaluates and writes only the
-- difference. Afterwards stored membership equals the rules, member counts
-- equal the stored rows, and the change log accounts for every member.
\set SHOW_CONTEXT never
CREATE ROLE bulk_app LOGIN IN ROLE audience_user;
SELECT audience.create_tenant('bulk_test', 'bulk_app') IS NOT NULL AS created;
SET ROLE bulk_app;
SET audience.tenant = 'bulk_test';
INSERT INTO audience.contacts (email, reachability, country)
SELECT 'p' || i || '@example.com', i % 101, (ARRAY['US', 'DE'])[1 + i % 2]
  FROM generate_series(1, 60000) i;
SELECT audience.create_segment('Reachable', 'reachability >= 50') IS NOT NULL AS created;
SELECT audience.create_segment('Barely reachable', 'reachability between 10 and 30') IS NOT NULL AS created;
SELECT audience.create_segment('Reachable Germans', 'in segment ''Reachable'' and country = ''DE''') IS NOT NULL AS created;

UPDATE audience.contacts SET reachability = (reachability + 37) % 101;

SELECT s.name, s.member_count, audience.preview(s.rule) AS live,
       (SELECT count(*) FROM audience.segment_members m WHERE m.segment_id = s.id) AS stored_rows,
       (SELECT count(*) FROM ((SELECT m.contact_id FROM audience.segment_members m WHERE m.segment_id = s.id
                               EXCEPT SELECT unnest(audience.live_members(s.rule))::uuid)
                              UNION ALL
                              (SELECT unnest(audience.live_members(s.rule))::uuid
                               EXCEPT SELECT m.contact_id FROM audience.segment_members m WHERE m.segment_id = s.id)) off) AS off_rule
  FROM audience.segments s WHERE s.kind = 'dynamic' ORDER BY s.name;

-- Entries minus exits in the log give the members; the UPDATE logged one
-- row per segment and direction.
SELECT s.name, sum(CASE m.change WHEN 'entered' THEN 1 ELSE -1 END) = s.member_count AS log_accounts
  FROM audience.membership_changes m JOIN audience.segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id
 WHERE s.kind = 'dynamic' GROUP BY s.name, s.member_count ORDER BY s.name;
SELECT s.name, l.change, count(*) AS log_rows, sum(cardinality(l.contacts)) AS contacts
  FROM audience.membership_log l JOIN audience.segments s ON s.tenant_id = l.tenant_id AND s.id = l.segment_id
 WHERE s.kind = 'dynamic' AND l.at = (SELECT max(l2.at) FROM audience.membership_log l2 WHERE l2.tenant_id = l.tenant_id)
 GROUP BY s.name, l.change ORDER BY s.name, l.change;
RESET ROLE;

-- Refresh of a segment holding most of the tenant: the members that no
-- longer match are looked up among the contacts that do not match, and the
-- counts tell whether anyone new matches (then the whole difference is
-- computed). Time is played forward by writing behind the triggers' back,
-- as the passing of days would.
-- (Activity times follow from events: applications cannot write them.)
RESET ROLE;
UPDATE audience.contacts
   SET last_activity_at = now() - CASE WHEN reachability < 10 THEN interval '40 days' ELSE interval '1 day' END
 WHERE tenant_id = audience.current_tenant();
SET ROLE bulk_app;
SELECT audience.create_segment('Recently active', 'last_activity_at within 30 days') IS NOT NULL AS created;
RESET ROLE;
ANALYZE audience.contacts;
SELECT id AS bulk_tenant FROM audience.tenants WHERE name = 'bulk_test' \gset
SET session_replication_role = replica;
UPDATE audience.contacts SET last_activity_at = now() - interval '40 days'
 WHERE tenant_id = :'bulk_tenant' AND reachability BETWEEN 50 AND 54;
RESET session_replication_role;
SET ROLE bulk_app;
SELECT audience.refresh('Recently active') AS changes;
SELECT s.member_count, audience.preview(s.rule) AS live,
       (SELECT count(*) FROM ((SELECT m.contact_id FROM audience.segment_members m WHERE m.segment_id = s.id
                               EXCEPT SELECT unnest(audience.live_members(s.rule))::uuid)
                              UNION ALL
                              (SELECT unnest(audience.live_members(s.rule))::uuid
                               EXCEPT SELECT m.contact_id FROM audience.segment_members m WHERE m.segment_id = s.id)) off) AS off_rule
  FROM audience.segments s WHERE s.name = 'Recently active';
-- Contacts entering and leaving at once.
RESET ROLE;
SET session_replication_role = replica;
UPDATE audience.contacts
   SET last_activity_at = now() - CASE WHEN reachability < 2 THEN interval '1 day' ELSE interval '40 days' END
 WHERE tenant_id = :'bulk_tenant' AND (reachability < 2 OR reachability = 60);
RESET session_replication_role;
SET ROLE bulk_app;
SELECT audience.refresh('Recently active') AS changes;
SELECT s.member_count, audience.preview(s.rule) AS live,
       (SELECT count(*) FROM ((SELECT m.contact_id FROM audience.segment_members m WHERE m.segment_id = s.id
                               EXCEPT SELECT unnest(audience.live_members(s.rule))::uuid)
                              UNION ALL
                              (SELECT unnest(audience.live_members(s.rule))::uuid
                               EXCEPT SELECT m.contact_id FROM audience.segment_members m WHERE m.segment_id = s.id)) off) AS off_rule
  FROM audience.segments s WHERE s.name = 'Recently active';
RESET ROLE;
