-- 0.1.0 → 0.1.1: dumps restore as they were, and trigger queries are not
-- JIT compiled. The insert triggers stand
-- aside in sessions with pg_dump's settings, instead of normalising,
-- scoring and counting restored rows a second time.

CREATE FUNCTION audience.restoring() RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT current_setting('check_function_bodies') = 'off' AND current_setting('row_security') = 'off'
$$;
COMMENT ON FUNCTION audience.restoring() IS 'Whether this session is restoring a dump (pg_dump''s settings): insert triggers then leave loaded rows as they are';

DROP TRIGGER normalize_contact ON audience.contacts;
CREATE TRIGGER normalize_contact BEFORE INSERT ON audience.contacts
    FOR EACH ROW WHEN (NOT audience.importing_normalised_rows() AND NOT audience.restoring())
    EXECUTE FUNCTION audience.normalize_contact();

DROP TRIGGER segments_after_insert ON audience.contacts;
CREATE TRIGGER segments_after_insert AFTER INSERT ON audience.contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT WHEN (NOT audience.restoring())
    EXECUTE FUNCTION audience.contacts_changed();

DROP TRIGGER default_scoring_rules ON audience.tenants;
CREATE TRIGGER default_scoring_rules AFTER INSERT ON audience.tenants
    FOR EACH ROW WHEN (NOT audience.restoring()) EXECUTE FUNCTION audience.default_scoring_rules();

DROP TRIGGER scoring_after_insert ON audience.events;
CREATE TRIGGER scoring_after_insert AFTER INSERT ON audience.events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT WHEN (NOT audience.restoring())
    EXECUTE FUNCTION audience.events_inserted();

-- JIT compiling the per-statement trigger queries cost more than running them.
ALTER FUNCTION audience.contacts_changed() SET jit = off;
ALTER FUNCTION audience.events_inserted() SET jit = off;

-- Rescoring computes the history once, even on tables not yet analysed.
CREATE OR REPLACE FUNCTION audience.rescore(tenant uuid, contacts uuid[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    changed bigint;
BEGIN
    WITH history AS MATERIALIZED (
        SELECT * FROM audience.engagement_history(tenant, contacts)
    )
    UPDATE audience.contacts c
       SET engagement_score = coalesce(h.points, 0), score_reset_at = h.reset_at, event_count = coalesce(h.events, 0)
      FROM audience.contacts t
      LEFT JOIN history h ON h.contact_id = t.id
     WHERE t.tenant_id = tenant AND (contacts IS NULL OR t.id = ANY (contacts))
       AND c.tenant_id = t.tenant_id AND c.id = t.id
       AND (c.engagement_score, c.score_reset_at, c.event_count)
           IS DISTINCT FROM (coalesce(h.points, 0)::integer, h.reset_at, coalesce(h.events, 0));
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
