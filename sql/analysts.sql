-- For analysts in psql: a segment's members broken down by a field, the
-- overlap of segments, and a readable summary. All of them read members
-- through audience.member_source, the one membership read path, so a
-- change of how membership is stored reaches them unchanged.

CREATE FUNCTION audience.breakdown(segment text, field text)
RETURNS TABLE (value text, contacts bigint, share numeric, bar text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
    wanted text := lower(btrim(coalesce(field, '')));
    custom text := regexp_replace(lower(btrim(coalesce(field, ''))), '^custom\.', '');
    grouped text;
    joined text := '';
    per_tag boolean := wanted IN ('tag', 'tags');
    known text;
BEGIN
    -- What to group by is built from names checked here, never from the
    -- caller's text.
    IF per_tag THEN
        grouped := 't.tag';
        joined := 'LEFT JOIN LATERAL unnest(c.tags) t(tag) ON true';
    ELSIF wanted = 'tier' THEN
        -- The tenant's settings joined once, not looked up per member.
        grouped := 'audience.tier_of(c.score, st.hot_score, st.warm_score)';
        joined := 'LEFT JOIN audience.settings st ON st.tenant_id = $1';
    ELSIF wanted = ANY (audience.standard_fields()) AND wanted NOT IN ('tags', 'attributes') THEN
        grouped := format('c.%I::text', wanted);
    ELSIF EXISTS (SELECT FROM audience.fields f WHERE f.tenant_id = found.tenant_id AND f.name = custom) THEN
        grouped := format('c.attributes ->> %L', custom);
    ELSE
        SELECT string_agg(f.name, ', ' ORDER BY f.name) INTO known FROM audience.fields f WHERE f.tenant_id = found.tenant_id;
        RAISE EXCEPTION 'unknown field "%" for a breakdown', field
            USING ERRCODE = 'undefined_object',
                  HINT = format('Break down by tag, tier, a standard field (%s) or a custom field (%s).',
                                array_to_string(array_remove(array_remove(audience.standard_fields(), 'tags'), 'attributes'), ', '),
                                coalesce(known, 'none'));
    END IF;
    -- Each member once in the source: joined, not probed, as a query
    -- written by hand would be.
    RETURN QUERY EXECUTE format($query$
        WITH groups AS (
            SELECT %1$s AS value, count(*) AS contacts
              FROM %2$s members JOIN audience.contacts c ON c.tenant_id = $1 AND c.id = members.id %3$s
             GROUP BY 1
        )
        SELECT g.value, g.contacts, round(g.contacts::numeric / t.members, 4),
               repeat('█', round(40 * g.contacts::numeric / t.members)::integer)
          FROM groups g, (%4$s) t
         ORDER BY g.contacts DESC, g.value NULLS LAST
    $query$, grouped, audience.member_source(found), joined,
       -- A contact holds several tags or none: count the members themselves.
       CASE WHEN NOT per_tag THEN 'SELECT sum(contacts) AS members FROM groups'
            ELSE format('SELECT count(*) AS members FROM %s members', audience.member_source(found)) END)
    USING found.tenant_id;
END
$$;
COMMENT ON FUNCTION audience.breakdown(text, text) IS 'A segment''s members grouped by a standard or custom field, tag or tier, largest first, with their share and a bar of up to 40 blocks';

CREATE FUNCTION audience.overlap(a text, b text) RETURNS TABLE (only_a bigint, in_both bigint, only_b bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    first audience.segments := audience.find_segment(a);
    second audience.segments := audience.find_segment(b);
    common bigint;
BEGIN
    -- The contacts in both, joined; those in one only follow from the
    -- segments' sizes (kept for stored membership).
    EXECUTE format('SELECT count(*) FROM %s x JOIN %s y ON y.id = x.id',
                   audience.member_source(first), audience.member_source(second)) INTO common;
    RETURN QUERY SELECT audience.count(first.name) - common, common, audience.count(second.name) - common;
END
$$;
COMMENT ON FUNCTION audience.overlap(text, text) IS 'How many contacts are only in segment a, in both, and only in segment b';

-- Every pair of the current tenant's segments with the contacts in both,
-- from one read of all their members: a join per pair would read each
-- segment once per other segment (1,225 joins for 50 segments).
CREATE FUNCTION audience.pair_overlaps() RETURNS TABLE (segment_a text, segment_b text, in_both bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    segments audience.segments[];
    numbers integer[];
    members uuid[];
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    SELECT array_agg(s ORDER BY audience.fold(s.name)) INTO segments
      FROM audience.segments s WHERE s.tenant_id = tenant;
    IF coalesce(cardinality(segments), 0) < 2 THEN
        RETURN;
    END IF;
    -- Empty arrays, not nulls, when no segment has a member: every pair
    -- is still listed, with nobody in both.
    EXECUTE format('SELECT coalesce(array_agg(u.n), ''{}''), coalesce(array_agg(u.id), ''{}'') FROM %s u',
                   audience.members_source(segments))
       INTO numbers, members;
    RETURN QUERY
    SELECT (segments[p.a]).name, (segments[p.b]).name, p.in_both
      FROM audience.intersections(ARRAY(SELECT generate_subscripts(segments, 1)), numbers, members) p
     ORDER BY p.a, p.b;
END
$$;
COMMENT ON FUNCTION audience.pair_overlaps() IS 'Every pair of the current tenant''s segments (by name) with how many contacts are in both: what segment_overlap shows';

CREATE VIEW audience.segment_overlap WITH (security_invoker = true) AS
    SELECT p.segment_a, p.segment_b, p.in_both FROM audience.pair_overlaps() p;
COMMENT ON VIEW audience.segment_overlap IS 'Every pair of the current tenant''s segments with how many contacts are in both';
COMMENT ON COLUMN audience.segment_overlap.segment_a IS 'The first segment of the pair (by name)';
COMMENT ON COLUMN audience.segment_overlap.segment_b IS 'The second segment of the pair';
COMMENT ON COLUMN audience.segment_overlap.in_both IS 'Contacts in both segments now';

CREATE FUNCTION audience.describe(segment text) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
    members bigint := audience.count(segment);
    tags text;
    tiers text;
BEGIN
    SELECT string_agg(format('%s %s', b.value, b.contacts), ', ') INTO tags
      FROM (SELECT * FROM audience.breakdown(segment, 'tag') WHERE value IS NOT NULL LIMIT 5) b;
    SELECT string_agg(format('%s %s', t.tier, coalesce(b.contacts, 0)), ', ' ORDER BY t.n) INTO tiers
      FROM unnest(ARRAY['hot', 'warm', 'cold']) WITH ORDINALITY t(tier, n)
      LEFT JOIN audience.breakdown(segment, 'tier') b ON b.value = t.tier;
    RETURN concat_ws(E'\n',
        format('Segment "%s" (%s)', found.name, CASE found.kind WHEN 'static' THEN 'static list' WHEN 'query' THEN 'query segment' ELSE found.kind END),
        CASE WHEN found.description IS NOT NULL THEN 'Description: ' || found.description END,
        CASE WHEN found.rule IS NOT NULL THEN 'Rule: ' || found.rule::text END,
        CASE WHEN found.query IS NOT NULL THEN format('Query (run as %s): %s', found.query_role, found.query) END,
        format('Members: %s', members),
        CASE WHEN found.refreshed_at IS NOT NULL
             THEN format('Last refresh: %s, took %s', found.refreshed_at, coalesce(found.refresh_duration::text, 'unknown')) END,
        'Top tags: ' || coalesce(tags, 'none'),
        'Tiers: ' || tiers,
        'Campaign size: ' || CASE WHEN members < 100 THEN 'under 100 — good for testing'
                                  WHEN members <= 1000 THEN '100 to 1,000 — a standard campaign'
                                  WHEN members <= 10000 THEN '1,000 to 10,000 — large, monitor closely'
                                  ELSE 'over 10,000 — split into several sends (audience.batches)' END);
END
$$;
COMMENT ON FUNCTION audience.describe(text) IS 'A readable summary of a segment for psql: kind, rule, members, last refresh, top tags, tier mix and campaign size guidance';
