-- Every read path, as the reader role; run on the primary and on the
-- standby, the output must be the same.
\set ON_ERROR_STOP on
SET audience.tenant = 'replicated';
SELECT name, members FROM audience.segment_overview;
SELECT segment, count(*) FROM audience.segment_membership GROUP BY segment ORDER BY segment;
SELECT count(*), sum(cardinality(segments)) FROM audience.contact_profile;
SELECT * FROM audience.tag_summary;
SELECT * FROM audience.score_distribution;
SELECT count(*) FROM audience.membership_changes;
SELECT name FROM audience.tenants;
SELECT audience.count(name) FROM audience.segments ORDER BY name;
SELECT count(*) FROM audience.members('This week');
SELECT count(*) FROM audience.recipients('Americans');
SELECT count(*), max(batch) FROM audience.batches('Americans', 7);
SELECT audience.in_segment(id, 'This week'), audience.in_segment(id, 'Recent clickers') FROM audience.contacts WHERE email = 'c3@example.com';
SELECT audience.segments_of(id) FROM audience.contacts WHERE email = 'c3@example.com';
SELECT audience.preview('country = ''DE'' and tag ''VIP''');
SELECT audience.preview('clicked within 30 days');
SELECT audience.explain('industry = ''SaaS''') IS NOT NULL AS explained;
SELECT count(*) FROM audience.search('industry:SaaS city:Berlin');
SELECT md5(audience.export_csv('Americans'));
SELECT audience.export_contact('c3@example.com') -> 'segments';
SELECT count(*) FROM audience.snapshot_members((SELECT id FROM audience.snapshots));
SELECT count(*) FROM audience.live_members('created_at within 3 days');
SELECT audience.score_tier(30), audience.membership_channel() IS NOT NULL;
SELECT * FROM audience.breakdown('Americans', 'tag');
SELECT * FROM audience.breakdown('This week', 'industry');
SELECT * FROM audience.overlap('Americans', 'Recent clickers');
SELECT * FROM audience.segment_overlap;
SELECT audience.describe('This week');
