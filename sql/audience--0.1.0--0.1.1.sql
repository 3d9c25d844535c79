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

-- Rescoring never recomputes a contact's history once per contact, even
-- on tables not yet analysed.
ALTER FUNCTION audience.rescore(uuid, uuid[]) SET enable_nestloop = off;
