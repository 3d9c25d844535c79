-- After the storm: one line per invariant, each naming how many rows break it.
\set ON_ERROR_STOP on
SET audience.tenant = 'busy';
SELECT 'duplicate contacts', count(*) - count(DISTINCT email) FROM audience.contacts;
SELECT 'events not counted on their contact', count(*) FROM audience.contacts c
 WHERE c.event_count <> (SELECT count(*) FROM audience.events e WHERE e.contact_id = c.id);
SELECT 'scores off a recompute', audience.recompute_scores();
SELECT 'members off their rule', count(*) FROM audience.segments s, LATERAL (
    (SELECT contact_id::text FROM audience.segment_members m WHERE m.segment_id = s.id
     EXCEPT SELECT unnest(audience.live_members(s.rule)))
    UNION ALL
    (SELECT unnest(audience.live_members(s.rule))
     EXCEPT SELECT contact_id::text FROM audience.segment_members m WHERE m.segment_id = s.id)) off
 WHERE s.kind = 'dynamic';
SELECT 'counts off their members', count(*) FROM audience.segments s
 WHERE s.kind <> 'everyone' AND s.member_count <> (SELECT count(*) FROM audience.segment_members m WHERE m.segment_id = s.id);
SELECT 'members off their change history', count(*) FROM (
    SELECT DISTINCT ON (segment_id, contact_id) segment_id, contact_id, change
      FROM audience.membership_changes ORDER BY segment_id, contact_id, id DESC) last
  FULL JOIN audience.segment_members m USING (segment_id, contact_id)
 WHERE (m.contact_id IS NULL) <> (last.change IS DISTINCT FROM 'entered');
SELECT 'imported contacts missing from their list', count(*) FROM audience.contacts c
 WHERE 'imported' = ANY (c.tags) AND NOT audience.in_segment(c.id, 'Imported');
