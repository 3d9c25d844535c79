-- After scripts/demo.sql: more of the API on the demo's tenant, run on one
-- server and on a Citus cluster, which must print the same (run.sh).
\pset footer off
SELECT audience.use_tenant('acme') IS NOT NULL AS "using acme";

\echo Stored membership equals the rules, scores equal a recompute
SELECT audience.refresh() AS "memberships a refresh changes",
       audience.recompute_scores() AS "scores a recompute changes";

\echo The same file imported again: every row an update
SELECT rows, inserted, updated, rejected FROM audience.import_csv(pg_read_binary_file(:'sample'), '{"segment": "Imported again"}');
\echo Exports of segments, without the times of this run
-- (Called for each row of a query over the tenant's segments: on Citus,
-- on the tenant's worker.)
SELECT md5(audience.export_csv(s.name, ARRAY['email', 'first_name', 'last_name', 'country', 'phone', 'tags', 'industry', 'budget']))
       AS export, s.name
  FROM audience.segment_overview s ORDER BY s.name;
SELECT audience.export_contact(min(email)) - 'contact' - 'events' AS "export of a person" FROM audience.contacts;

\echo Tags, lists and snapshots
SELECT audience.rename_tag('Buyer', 'Customer') AS renamed,
       audience.tag_segment('Pricing visitors', 'pricing') AS tagged;
SELECT * FROM audience.tag_summary LIMIT 5;
SELECT audience.remove_from_list('Webinar guests', ARRAY(SELECT id FROM audience.members('Webinar guests') ORDER BY email LIMIT 2)) AS removed;
SELECT audience.snapshot('Pricing visitors', 'launch') AS snapshot \gset
SELECT count(*) AS "snapshot members" FROM audience.snapshot_members(:'snapshot');
SELECT * FROM audience.segments_of((SELECT min(id::text)::uuid FROM audience.members('Pricing visitors')));

\echo Rules over custom fields, changed and dropped
SELECT audience.create_segment('Budget over 500k', 'custom.budget > 500000') IS NOT NULL AS created;
SELECT audience.update_segment('Budget over 500k', rule => 'custom.budget > 900000') IS NOT NULL AS updated;
SELECT audience.count('Budget over 500k') AS "budget over 900k";
SELECT audience.set_tiers(40, 10) IS NULL AS "tiers set";
SELECT * FROM audience.breakdown('Budget over 500k', 'tier');
SELECT audience.drop_segment('Budget over 500k') IS NULL AS dropped;

\echo Query segments, fit points, decay
SELECT audience.create_query_segment('French leads', $$SELECT id FROM audience.contacts WHERE country = 'FR'$$) IS NOT NULL AS created;
SELECT audience.count('French leads') AS "French leads";
SELECT audience.set_fit_score('French SaaS', 'industry = ''SaaS'' and country = ''FR''', 5) AS "given fit points";
SELECT count(*) AS batches FROM audience.batches('French leads', 25) GROUP BY batch ORDER BY batch LIMIT 1;
SELECT audience.duplicate_segment('Pricing visitors', 'Pricing visitors again') IS NOT NULL AS duplicated;
SELECT audience.set_score_decay(10, '30 days') IS NULL AS "decay set", audience.apply_decay() >= 0 AS decayed;

\echo Segments of the clock, published views and the profile, read where the rows are
SELECT audience.create_segment('Added this month', 'created_at within 30 days') IS NOT NULL AS created;
SELECT count(*) AS "added this month", count(*) FILTER (WHERE audience.in_segment(id, 'Added this month')) AS "in it"
  FROM audience.members('Added this month');
SELECT audience.publish_segment('Pricing visitors') AS published, audience.publish_segment('Added this month') AS published;
SELECT count(*) AS rows, count(DISTINCT email) AS emails, min(tier) AS tier, min(industry) AS industry
  FROM audience_views.pricing_visitors;
SELECT count(*) AS rows FROM audience_views.added_this_month;
SELECT email, tier, segments FROM audience.contact_profile ORDER BY email LIMIT 4;
SELECT segments, count(*) FROM audience.contact_profile GROUP BY segments ORDER BY count(*) DESC, segments LIMIT 4;
SELECT audience.unpublish_segment('Added this month') AS unpublished;
\echo The other views BI tools read
SELECT segment, count(*) AS members, count(DISTINCT tier) AS tiers FROM audience.segment_membership
 GROUP BY segment ORDER BY segment;
SELECT count(*) AS memberships FROM audience.segment_members;
SELECT * FROM audience.segment_overlap ORDER BY segment_a, segment_b LIMIT 6;
SELECT * FROM audience.score_distribution ORDER BY tier;
SELECT s.name, m.change, count(*) FROM audience.membership_changes m JOIN audience.segments s ON s.id = m.segment_id
 GROUP BY s.name, m.change ORDER BY s.name, m.change LIMIT 8;
SELECT segment, view_name, qualified_name FROM audience.published_views ORDER BY view_name;
SELECT count(*) AS "imports running" FROM audience.import_progress;
\echo Reads called for each row of a query over the tenant's rows
SELECT name, audience.count(name) AS counted, members FROM audience.segment_overview ORDER BY name;
SELECT name, (audience.overlap(name, 'Pricing visitors')).in_both AS "also pricing visitors",
       length(audience.describe(name)) > 0 AS described
  FROM audience.segment_overview ORDER BY name;
SELECT b.batch, count(*) AS contacts
  FROM (SELECT (audience.batches(name, 20)).batch FROM audience.segment_overview WHERE name = 'Pricing visitors') b
 GROUP BY b.batch ORDER BY b.batch;
SELECT count(*) AS recipients
  FROM (SELECT (audience.recipients(name)).email FROM audience.segment_overview WHERE name = 'Webinar guests') r;
SELECT count(*) FILTER (WHERE audience.in_segment(id, 'Pricing visitors')) AS "pricing visitors",
       count(*) FILTER (WHERE audience.in_segment(id, 'Added this month')) AS "added this month"
  FROM audience.contacts;

\echo Events deleted and a person forgotten: scores and segments follow
DELETE FROM audience.events WHERE kind = 'bounced';
SELECT audience.forget_contact(min(email)) AS forgotten FROM audience.members('Pricing visitors');
SELECT name, members FROM audience.segment_overview ORDER BY name;
SELECT audience.refresh() AS "memberships a refresh changes",
       audience.recompute_scores() AS "scores a recompute changes";
SELECT count(*) AS contacts, sum(score) AS scores, sum(event_count) AS events,
       count(*) FILTER (WHERE status = 'bounced') AS bounced
  FROM audience.contacts;

\echo As the application role: its tenant, its writes
SET ROLE app;
SELECT count(*) AS "contacts app sees" FROM audience.contacts;
SELECT audience.upsert_contact('{"email": "new.lead@example.com", "country": "Canada", "lead_status": "hot"}') IS NOT NULL AS upserted;
SELECT audience.track('new.lead@example.com', 'clicked', 'launch') AS tracked;
UPDATE audience.contacts SET city = 'Toronto' WHERE email = 'new.lead@example.com';
SELECT email, country, city, score, audience.score_tier(score) AS tier FROM audience.contacts WHERE email = 'new.lead@example.com';
SELECT id AS lead FROM audience.contacts WHERE email = 'new.lead@example.com' \gset
SELECT * FROM audience.segments_of(:'lead');
RESET ROLE;
