-- 0.1.0 → 0.1.1: dumps restore as they were, trigger queries are not JIT
-- compiled, and concurrent writers queue instead of deadlocking. The insert
-- triggers stand aside in sessions with pg_dump's settings, instead of
-- normalising, scoring and counting restored rows a second time.

CREATE FUNCTION audience.restoring() RETURNS boolean
STABLE PARALLEL SAFE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'restoring_wrapper';
COMMENT ON FUNCTION audience.restoring() IS 'Whether this session is restoring a dump (pg_dump''s settings): insert triggers then leave loaded rows as they are';

-- New contacts get time-ordered ids: contacts created together sit
-- together in every index keyed by contact. Existing ids stay.
CREATE FUNCTION audience.uuidv7() RETURNS uuid
STRICT VOLATILE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'uuidv7_wrapper';
COMMENT ON FUNCTION audience.uuidv7() IS 'A new time-ordered UUID (version 7: the first 48 bits are the creation time in milliseconds), the default of contact ids';
ALTER TABLE audience.contacts ALTER COLUMN id SET DEFAULT audience.uuidv7();

-- The tenant of contacts is checked once per statement instead of once per
-- row (a quarter of the time of inserting a million contacts): the
-- contacts trigger holds the statement's tenants, and deleting a tenant
-- deletes its contacts by a trigger of its own.
ALTER TABLE audience.contacts DROP CONSTRAINT contacts_tenant_id_fkey;
-- Called by the contacts trigger with the tenants of the rows a statement
-- wrote. Runs as the extension's owner: locking rows of tenants takes a
-- privilege applications do not have, as a foreign key check would.
CREATE FUNCTION audience.hold_tenants(tenants uuid[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing uuid;
BEGIN
    -- Held until the transaction ends, as a foreign key check holds them:
    -- a tenant being deleted meanwhile takes the new contacts with it.
    PERFORM FROM audience.tenants t WHERE t.id = ANY (tenants) ORDER BY t.id FOR KEY SHARE OF t;
    SELECT w.id INTO missing FROM unnest(tenants) w(id)
     WHERE NOT EXISTS (SELECT FROM audience.tenants t WHERE t.id = w.id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', missing
              USING ERRCODE = 'foreign_key_violation',
                    HINT = 'Contacts belong to a tenant of audience.tenants; an administrator creates tenants with audience.create_tenant(name).';
    END IF;
END
$$;
COMMENT ON FUNCTION audience.hold_tenants(uuid[]) IS 'Raises 23503 unless every given tenant exists, and keeps them from being deleted until the transaction ends (for the contacts trigger)';
REVOKE EXECUTE ON FUNCTION audience.hold_tenants(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audience.hold_tenants(uuid[]) TO audience_user;

CREATE FUNCTION audience.tenant_contacts_dropped() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM audience.contacts c USING old_rows o WHERE c.tenant_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.tenant_contacts_dropped() IS 'Statement trigger: deleting tenants deletes their contacts';
CREATE TRIGGER tenant_contacts_dropped AFTER DELETE ON audience.tenants
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.tenant_contacts_dropped();

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

-- The contacts trigger in Rust: it compares a statement's old and new rows
-- itself and calls the maintenance directly. Trigger queries are not JIT
-- compiled; concurrent writers lock segments before their members and
-- contacts in id order, so they queue instead of deadlocking.
CREATE OR REPLACE FUNCTION audience.contacts_changed() RETURNS trigger
LANGUAGE c
SET work_mem = '64MB'
SET enable_mergejoin = off
SET jit = off
AS 'MODULE_PATHNAME', 'contacts_changed_wrapper';
DROP FUNCTION audience.maintain_rows(text[], text[], text[]);
-- Memberships of several segments are written in one call; the one-segment
-- function (with a new parameter: the caller may vouch that its entered
-- contacts are new) goes through it.
DROP FUNCTION audience.apply_membership(uuid, uuid, uuid[], uuid[]);
CREATE FUNCTION audience.apply_memberships(tenant uuid, segments uuid[],
                                          entered_to uuid[], entered uuid[],
                                          exited_from uuid[], exited uuid[],
                                          known_new boolean DEFAULT false)
RETURNS TABLE (segment uuid, changes bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    held uuid[];
    came_to uuid[] := '{}';
    came uuid[] := '{}';
    gone_from uuid[] := '{}';
    gone uuid[] := '{}';
BEGIN
    -- The segments' rows are locked before their members, in id order:
    -- every writer takes them so (update_segment and refresh too), so
    -- concurrent writers queue instead of deadlocking. A segment deleted
    -- in the same statement (a tenant being dropped) has no membership
    -- left to keep.
    SELECT coalesce(array_agg(h.id), '{}') INTO held
      FROM (SELECT s.id FROM audience.segments s
             WHERE s.tenant_id = tenant AND s.id = ANY (segments)
             ORDER BY s.id FOR NO KEY UPDATE) h;
    IF cardinality(entered) > 0 THEN
        IF known_new AND cardinality(held) = (SELECT count(DISTINCT s) FROM unnest(segments) s) THEN
            -- The caller vouches that none is or can meanwhile become a
            -- member: it held the segments when it found them outside, or
            -- created them in this transaction.
            came_to := entered_to;
            came := entered;
        ELSE
            -- Holding the segments, this statement sees every member other
            -- writers added, so a plain insert of those not yet members is
            -- safe; it costs a third less than ON CONFLICT DO NOTHING. The
            -- probe is a subquery per pair, always an index lookup: a join
            -- was planned as a scan of the whole segment when its
            -- statistics were stale.
            SELECT coalesce(array_agg(e.segment ORDER BY e.contact, e.segment), '{}'),
                   coalesce(array_agg(e.contact ORDER BY e.contact, e.segment), '{}')
              INTO came_to, came
              FROM (SELECT DISTINCT e.segment, e.contact
                      FROM unnest(entered_to, entered) e(segment, contact)
                     WHERE e.segment = ANY (held)
                       AND (known_new
                            OR (SELECT true FROM audience.segment_members m
                                 WHERE m.tenant_id = tenant AND m.segment_id = e.segment
                                   AND m.contact_id = e.contact) IS NULL)) e;
        END IF;
        -- In the order given: by contact, all segments in one pass, each
        -- page of the by-contact index is changed once (an insert per
        -- segment swept that index once per segment).
        INSERT INTO audience.segment_members (tenant_id, segment_id, contact_id)
        SELECT tenant, e.segment, e.contact FROM unnest(came_to, came) e(segment, contact);
    END IF;
    IF cardinality(exited) > 0 THEN
        -- Members are found by the same probe and removed by their row
        -- address: `contact_id = ANY` was planned as a scan of the whole
        -- segment when its statistics were stale.
        WITH removed AS (
            DELETE FROM audience.segment_members m
             WHERE m.ctid = ANY (ARRAY(SELECT (SELECT s.ctid FROM audience.segment_members s
                                                WHERE s.tenant_id = tenant AND s.segment_id = e.segment
                                                  AND s.contact_id = e.contact)
                                         FROM unnest(exited_from, exited) e(segment, contact)
                                        WHERE e.segment = ANY (held)))
            RETURNING m.segment_id, m.contact_id
        )
        SELECT coalesce(array_agg(r.segment_id), '{}'), coalesce(array_agg(r.contact_id), '{}')
          INTO gone_from, gone
          FROM removed r;
    END IF;
    IF cardinality(came) + cardinality(gone) = 0 THEN
        RETURN;
    END IF;
    -- Per segment: a log row for each direction, the count, one NOTIFY.
    RETURN QUERY
    WITH came_by AS (
        SELECT e.segment, array_agg(e.contact) AS contacts
          FROM unnest(came_to, came) e(segment, contact) GROUP BY e.segment
    ), gone_by AS (
        SELECT g.segment, array_agg(g.contact) AS contacts
          FROM unnest(gone_from, gone) g(segment, contact) GROUP BY g.segment
    ), per_segment AS (
        SELECT coalesce(c.segment, g.segment) AS segment,
               c.contacts AS came, coalesce(cardinality(c.contacts), 0) AS entered,
               g.contacts AS gone, coalesce(cardinality(g.contacts), 0) AS exited
          FROM came_by c FULL JOIN gone_by g ON g.segment = c.segment
    ), logged AS (
        INSERT INTO audience.membership_log (tenant_id, segment_id, change, contacts)
        SELECT tenant, p.segment, v.change, v.contacts
          FROM per_segment p
         CROSS JOIN LATERAL (VALUES ('entered', p.came), ('exited', p.gone)) v(change, contacts)
         WHERE v.contacts IS NOT NULL
         ORDER BY p.segment, v.change
    ), counted AS (
        UPDATE audience.segments s SET member_count = s.member_count + p.entered - p.exited
          FROM per_segment p
         WHERE s.tenant_id = tenant AND s.id = p.segment
    )
    SELECT n.segment, n.changes
      FROM (SELECT p.segment, (p.entered + p.exited)::bigint AS changes,
                   pg_notify('audience_membership', json_build_object(
                       'tenant', tenant, 'segment', p.segment, 'entered', p.entered, 'exited', p.exited)::text)
              FROM per_segment p
             ORDER BY p.segment) n;
END
$$;
COMMENT ON FUNCTION audience.apply_memberships(uuid, uuid[], uuid[], uuid[], uuid[], uuid[], boolean) IS 'Adds and removes stored members of several segments in one write (segments: those written; entered_to/entered and exited_from/exited: parallel arrays of segment and contact; known_new: the entered pairs are distinct (best in contact order) and none is or can meanwhile become a member: the caller locked the segments before finding them outside, or created the contacts), logs the changes, keeps member_count and sends NOTIFY audience_membership per segment; returns the changes per segment';

CREATE FUNCTION audience.apply_membership(tenant uuid, segment uuid, entered uuid[], exited uuid[],
                                         known_new boolean DEFAULT false) RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
    SELECT coalesce(sum(a.changes), 0)::bigint
      FROM audience.apply_memberships(tenant, ARRAY[segment],
                                      array_fill(segment, ARRAY[cardinality(entered)]), entered,
                                      array_fill(segment, ARRAY[cardinality(exited)]), exited, known_new) a
$$;
COMMENT ON FUNCTION audience.apply_membership(uuid, uuid, uuid[], uuid[], boolean) IS 'Adds and removes stored members of one segment through audience.apply_memberships; returns the number of changes';

-- array_agg for uuids that combines partial results, so that a query
-- collecting a few ids while scanning a whole tenant runs in parallel
-- (PostgreSQL 15's array_agg does not).
CREATE AGGREGATE audience.uuid_list(uuid) (
    SFUNC = array_append,
    STYPE = uuid[],
    COMBINEFUNC = array_cat,
    INITCOND = '{}',
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE audience.uuid_list(uuid) IS 'The ids, as array_agg collects them but in parallel; an empty array for none';
CREATE OR REPLACE FUNCTION audience.events_inserted() RETURNS trigger
LANGUAGE plpgsql
SET work_mem = '64MB'
SET jit = off
AS $$
DECLARE
    tenants uuid[];
    contacts uuid[];
    sent_to uuid[];
    status_tenants uuid[];
    status_contacts uuid[];
    statuses text[];
    tenant uuid;
BEGIN
    -- Statements of several events update their contacts in no set order,
    -- so two of them touching the same contacts could deadlock: they take
    -- the tenant's bulk writes first, as imports do, and queue instead.
    -- One lock costs less than locking each contact in a set order did
    -- (~8 ms per 1,000 contacts), and also keeps two such transactions
    -- from holding each other's segments. One event (a track()) needs none.
    IF (SELECT count(*) > 1 FROM new_rows n) THEN
        PERFORM pg_advisory_xact_lock(hashtext('audience bulk writes'), hashtext(t.id::text))
           FROM (SELECT DISTINCT n.tenant_id AS id FROM new_rows n ORDER BY 1) t;
    END IF;
    -- Events after the contact's latest reset add their points; a reset or
    -- a back-dated event at or before it needs the contact's history.
    WITH scored AS (
        SELECT e.tenant_id, e.contact_id, e.id, e.kind, e.occurred_at,
               coalesce(sum(r.points), 0)::integer AS points, coalesce(bool_or(r.reset), false) AS reset
          FROM new_rows e
          LEFT JOIN audience.scoring_rules r
                 ON r.tenant_id = e.tenant_id AND r.kind = e.kind
                AND (r.url_pattern IS NULL OR strpos(lower(e.url), lower(r.url_pattern)) > 0)
         GROUP BY e.tenant_id, e.contact_id, e.id, e.kind, e.occurred_at
    ), per_contact AS (
        SELECT s.tenant_id, s.contact_id,
               sum(audience.decayed_points(s.points, s.occurred_at, st.decayed_at, st.decay_percent, st.decay_every)) AS points,
               bool_or(s.reset) AS reset,
               min(s.occurred_at) AS earliest,
               count(*) AS events,
               max(s.occurred_at) FILTER (WHERE s.kind NOT IN ('sent', 'bounced')) AS active,
               max(s.occurred_at) FILTER (WHERE s.kind = 'opened') AS opened,
               max(s.occurred_at) FILTER (WHERE s.kind = 'clicked') AS clicked,
               bool_or(s.kind = 'unsubscribed') AS unsubscribed,
               bool_or(s.kind = 'bounced') AS bounced
          FROM scored s
          LEFT JOIN audience.settings st ON st.tenant_id = s.tenant_id
         GROUP BY s.tenant_id, s.contact_id
    ), updated AS (
        UPDATE audience.contacts c
           SET engagement_score = CASE WHEN p.reset OR p.earliest <= c.score_reset_at THEN c.engagement_score
                                       ELSE c.engagement_score + p.points END,
               event_count = c.event_count + p.events,
               last_activity_at = greatest(c.last_activity_at, p.active),
               last_opened_at = greatest(c.last_opened_at, p.opened),
               last_clicked_at = greatest(c.last_clicked_at, p.clicked)
          FROM per_contact p
         WHERE c.tenant_id = p.tenant_id AND c.id = p.contact_id
        RETURNING c.tenant_id, c.id, p.reset OR p.earliest <= c.score_reset_at AS needs_history,
                  -- Unsubscribing is the contact's choice and outranks a bounce.
                  CASE WHEN p.unsubscribed AND c.status <> 'unsubscribed' THEN 'unsubscribed'
                       WHEN p.bounced AND NOT p.unsubscribed AND c.status = 'active' THEN 'bounced' END AS new_status
    )
    -- What else there is to do comes back with the update: an event
    -- statement of one row (track) runs no further query without need.
    SELECT array_agg(u.tenant_id) FILTER (WHERE u.needs_history), array_agg(u.id) FILTER (WHERE u.needs_history),
           (SELECT array_agg(DISTINCT n.tenant_id) FROM new_rows n WHERE n.kind = 'sent' AND n.campaign IS NOT NULL),
           array_agg(u.tenant_id) FILTER (WHERE u.new_status IS NOT NULL), array_agg(u.id) FILTER (WHERE u.new_status IS NOT NULL),
           array_agg(u.new_status) FILTER (WHERE u.new_status IS NOT NULL)
      INTO tenants, contacts, sent_to, status_tenants, status_contacts, statuses
      FROM updated u;

    -- Statuses in an update of their own, rarely needed: the one above
    -- sets no column the per-row normalisation trigger watches.
    IF statuses IS NOT NULL THEN
        UPDATE audience.contacts c SET status = x.status
          FROM unnest(status_tenants, status_contacts, statuses) x(tenant_id, id, status)
         WHERE c.tenant_id = x.tenant_id AND c.id = x.id;
    END IF;

    IF tenants IS NOT NULL THEN
        FOR tenant IN SELECT DISTINCT t FROM unnest(tenants) t LOOP
            PERFORM audience.rescore(tenant, ARRAY(SELECT c FROM unnest(tenants, contacts) x(t, c) WHERE x.t = tenant));
        END LOOP;
    END IF;
    -- A new send changes the tenant's last campaign for everyone.
    IF sent_to IS NOT NULL THEN
        FOREACH tenant IN ARRAY sent_to LOOP
            PERFORM audience.campaign_sent(tenant::text);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;


-- Concurrent imports into a new list no longer fail on its name, and an
-- import that deadlocks with another writer starts over.
CREATE OR REPLACE FUNCTION audience.import_list(name text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    wanted text := coalesce(nullif(btrim(name), ''), 'Import ' || to_char(now(), 'YYYY-MM-DD HH24:MI:SS'));
BEGIN
    IF NOT EXISTS (SELECT FROM audience.segments s
                    WHERE s.tenant_id = audience.current_tenant() AND lower(s.name) = lower(wanted)) THEN
        BEGIN
            PERFORM audience.create_list(wanted, 'Contacts imported from CSV');
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent import created it first and has committed.
        END;
    END IF;
    RETURN (audience.find_list(wanted)).name;
END
$$;
CREATE OR REPLACE FUNCTION audience.import_csv(data bytea, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE plpgsql
AS $$
DECLARE
    imported uuid;
    report audience.import_report;
BEGIN
    -- A deadlock with a concurrent writer (possible once an import spans
    -- several batches) rolls back this attempt, which frees the other
    -- writer, and the import starts over.
    FOR attempt IN 1..3 LOOP
        BEGIN
            imported := audience.import_rows(data, coalesce(options, '{}'));
            EXIT;
        EXCEPTION WHEN deadlock_detected THEN
            IF attempt = 3 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    SELECT i.id, i.rows, i.inserted, i.updated, i.unchanged, i.rejected, i.segment, i.errors INTO report
      FROM audience.imports i WHERE i.tenant_id = audience.current_tenant() AND i.id = imported;
    RETURN report;
END
$$;

-- Rule changes and the writers that maintain membership by the rules take
-- the tenant's rules exclusively or shared, so no writer keeps membership
-- an old rule gave.
-- Rule changes (refresh, fit rules) take a tenant's rules exclusively;
-- statements that maintain membership take them shared before reading the
-- rules, and read with a snapshot taken after the lock. Neither can then
-- evaluate a rule against data the other is changing: without it, a
-- contact written while its segment's rule changed could keep the
-- membership the old rule gave it.
CREATE FUNCTION audience.lock_rules(tenant uuid, exclusive boolean) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(hashtext('audience rules'), hashtext(tenant::text));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(hashtext('audience rules'), hashtext(tenant::text));
    END IF;
END
$$;
COMMENT ON FUNCTION audience.lock_rules(uuid, boolean) IS 'Takes the tenant''s rules for this transaction: exclusively to change membership rules, shared to maintain membership by them';

CREATE FUNCTION audience.find_tenant(tenant text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN (SELECT id FROM audience.tenants WHERE id = tenant::uuid);
    END IF;
    RETURN (SELECT id FROM audience.tenants WHERE name = tenant);
END
$$;
COMMENT ON FUNCTION audience.find_tenant(text) IS 'The id of a tenant given by name or id; null when there is none';
CREATE OR REPLACE FUNCTION audience.resolve_tenant(tenant text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found uuid := audience.find_tenant(tenant);
BEGIN
    IF found IS NULL THEN
        RAISE EXCEPTION 'unknown tenant "%"', tenant
            USING ERRCODE = 'undefined_object',
                  HINT = 'Check the value of audience.tenant; an administrator creates tenants with audience.create_tenant(name).';
    END IF;
    RETURN found;
END
$$;
-- Statements on contacts and events take the current tenant's rules shared
-- before they lock a single row (see audience.lock_rules).
CREATE FUNCTION audience.rules_for_statement() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'rules_for_statement_wrapper';
COMMENT ON FUNCTION audience.rules_for_statement() IS 'Statement trigger: takes the current tenant''s rules shared before a statement writes contacts or events';
CREATE TRIGGER rules_before_contacts BEFORE INSERT OR UPDATE OR DELETE ON audience.contacts
    FOR EACH STATEMENT WHEN (NOT audience.restoring()) EXECUTE FUNCTION audience.rules_for_statement();

CREATE TRIGGER rules_before_events BEFORE INSERT OR DELETE ON audience.events
    FOR EACH STATEMENT WHEN (NOT audience.restoring()) EXECUTE FUNCTION audience.rules_for_statement();
CREATE OR REPLACE FUNCTION audience.create_segment(name text, rule audience.rule, description text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    created uuid;
BEGIN
    PERFORM audience.lock_rules(audience.current_tenant(), true);
    IF rule IS NULL THEN
        RAISE EXCEPTION 'a dynamic segment needs a rule' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use audience.create_list(name) for a static list.';
    END IF;
    INSERT INTO audience.segments (name, kind, rule, description, depends_on)
    VALUES (audience.check_segment_name(name), 'dynamic', rule, description,
            audience.rule_segments(rule)::uuid[])
    RETURNING id INTO created;
    PERFORM audience.refresh(name);
    RETURN created;
END
$$;
CREATE OR REPLACE FUNCTION audience.update_segment(name text, new_name text DEFAULT NULL, rule audience.rule DEFAULT NULL,
                                        description text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    segment audience.segments := audience.find_segment(name);
    refs uuid[];
BEGIN
    PERFORM audience.lock_rules(segment.tenant_id, true);
    IF segment.kind = 'everyone' AND (new_name IS NOT NULL OR rule IS NOT NULL) THEN
        RAISE EXCEPTION 'the Everyone segment cannot be renamed or given a rule' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rule IS NOT NULL AND segment.kind <> 'dynamic' THEN
        RAISE EXCEPTION 'segment "%" is a static list and has no rule', segment.name
            USING ERRCODE = 'wrong_object_type', HINT = 'Create a dynamic segment with audience.create_segment.';
    END IF;
    IF new_name IS NOT NULL AND btrim(new_name) <> segment.name THEN
        new_name := audience.check_segment_name(new_name, segment.id);
        -- Rules refer to segments by name: rewrite the rules that name this one.
        UPDATE audience.segments s
           SET rule = audience.rule_rename_segment(s.rule, segment.name, new_name), updated_at = now()
         WHERE s.tenant_id = segment.tenant_id AND segment.id = ANY (s.depends_on);
        UPDATE audience.segments s SET name = new_name, updated_at = now()
         WHERE s.tenant_id = segment.tenant_id AND s.id = segment.id;
    END IF;
    IF description IS NOT NULL THEN
        UPDATE audience.segments s SET description = update_segment.description, updated_at = now()
         WHERE s.tenant_id = segment.tenant_id AND s.id = segment.id;
    END IF;
    IF rule IS NOT NULL THEN
        refs := audience.rule_segments(rule)::uuid[];
        PERFORM audience.check_no_cycle(segment, refs);
        UPDATE audience.segments s SET rule = update_segment.rule, depends_on = refs, updated_at = now()
         WHERE s.tenant_id = segment.tenant_id AND s.id = segment.id;
        PERFORM audience.refresh(coalesce(new_name, segment.name));
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION audience.drop_segment(name text) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    segment audience.segments := audience.find_segment(name);
    dependents text;
BEGIN
    PERFORM audience.lock_rules(segment.tenant_id, true);
    IF segment.kind = 'everyone' THEN
        RAISE EXCEPTION 'the Everyone segment cannot be dropped' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('"%s"', s.name), ', ' ORDER BY s.name) INTO dependents
      FROM audience.segments s WHERE s.tenant_id = segment.tenant_id AND segment.id = ANY (s.depends_on);
    IF dependents IS NOT NULL THEN
        RAISE EXCEPTION 'segment "%" is used by the rules of %', segment.name, dependents
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Change or drop those segments first.';
    END IF;
    -- Contacts stay; the membership, its log and snapshots go with the segment.
    DELETE FROM audience.segments s WHERE s.tenant_id = segment.tenant_id AND s.id = segment.id;
END
$$;
CREATE OR REPLACE FUNCTION audience.edit_list(name text, contacts uuid[], adding boolean) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    list audience.segments := audience.find_list(name);
    unknown uuid[];
    moved uuid[];
    changes bigint;
BEGIN
    PERFORM audience.lock_rules(list.tenant_id, false);
    SELECT array_agg(DISTINCT given) INTO unknown
      FROM unnest(contacts) given
     WHERE given IS NULL OR NOT EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = list.tenant_id AND c.id = given);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION '% of the given contacts do not exist', cardinality(unknown)
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('Unknown contact ids: %s.', array_to_string(unknown[1:20], ', ', 'NULL')),
                  HINT = 'Nothing was changed; remove the unknown ids and try again.';
    END IF;
    SELECT coalesce(array_agg(DISTINCT given), '{}') INTO moved
      FROM unnest(contacts) given
     WHERE EXISTS (SELECT FROM audience.segment_members m
                    WHERE m.tenant_id = list.tenant_id AND m.segment_id = list.id AND m.contact_id = given) <> adding;
    changes := audience.apply_membership(list.tenant_id, list.id,
                                         CASE WHEN adding THEN moved ELSE '{}' END,
                                         CASE WHEN adding THEN '{}' ELSE moved END);
    IF changes > 0 THEN
        PERFORM audience.maintain_membership(list.tenant_id::text, moved::text[], ARRAY[list.id::text]);
    END IF;
    RETURN changes;
END
$$;
CREATE OR REPLACE FUNCTION audience.set_fit_score(name text, rule audience.rule, points integer) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'a fit rule needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rule IS NULL OR points IS NULL OR points NOT BETWEEN -10000 AND 10000 THEN
        RAISE EXCEPTION 'a fit rule needs a rule and points between -10000 and 10000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audience.check_fit_rule(rule);
    PERFORM audience.lock_rules(tenant, true);
    DELETE FROM audience.fit_rules f WHERE f.tenant_id = tenant AND lower(f.name) = lower(btrim(set_fit_score.name));
    INSERT INTO audience.fit_rules (tenant_id, name, rule, points) VALUES (tenant, btrim(set_fit_score.name), rule, points);
    RETURN audience.maintain_fit(tenant::text, NULL);
END
$$;
CREATE OR REPLACE FUNCTION audience.drop_fit_score(name text) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    PERFORM audience.lock_rules(tenant, true);
    DELETE FROM audience.fit_rules f WHERE f.tenant_id = tenant AND lower(f.name) = lower(btrim(drop_fit_score.name));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown fit rule "%"', name
            USING ERRCODE = 'undefined_object', HINT = 'audience.fit_rules lists them.';
    END IF;
    RETURN audience.maintain_fit(tenant::text, NULL);
END
$$;

-- Tag conditions read a stored, folded copy of the tags instead of calling
-- a function for every contact they look at.
ALTER TABLE audience.contacts ADD COLUMN tag_keys text[] GENERATED ALWAYS AS (audience.tag_keys(tags)) STORED;
COMMENT ON COLUMN audience.contacts.tag_keys IS 'The tags folded to lower case, as tag conditions compare them: stored, so a tag condition costs no function call per contact';
DROP INDEX audience.contacts_tag_keys;
CREATE INDEX contacts_tag_keys ON audience.contacts USING gin (tag_keys);
COMMENT ON INDEX audience.contacts_tag_keys IS 'Serves case-insensitive tag conditions';
CREATE OR REPLACE FUNCTION audience.export_contact(email text) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'contact', to_jsonb(c) - 'tenant_id' - 'tag_keys',
        'events', coalesce((SELECT jsonb_agg(to_jsonb(e) - 'tenant_id' - 'contact_id' ORDER BY e.occurred_at, e.id)
                              FROM audience.events e
                             WHERE e.tenant_id = c.tenant_id AND e.contact_id = c.id), '[]'),
        'segments', coalesce((SELECT jsonb_agg(s.name ORDER BY s.name)
                                FROM audience.segment_members m
                                JOIN audience.segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id
                               WHERE m.tenant_id = c.tenant_id AND m.contact_id = c.id), '[]'))
      FROM audience.contacts c
     WHERE c.tenant_id = audience.current_tenant()
       AND c.email = audience.normalize_email(export_contact.email)
$$;
CREATE OR REPLACE FUNCTION audience.rename_tag(old text, new text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    renamed bigint;
BEGIN
    IF nullif(btrim(new), '') IS NULL THEN
        RAISE EXCEPTION 'a tag cannot be renamed to an empty name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE audience.contacts c
       SET tags = ARRAY(SELECT CASE WHEN lower(btrim(t)) = lower(btrim(old)) THEN btrim(new) ELSE t END
                          FROM unnest(c.tags) WITH ORDINALITY u(t, n) ORDER BY n)
     WHERE c.tenant_id = audience.current_tenant()
       AND c.tag_keys @> ARRAY[lower(btrim(old))];
    GET DIAGNOSTICS renamed = ROW_COUNT;
    RETURN renamed;
END
$$;
CREATE OR REPLACE FUNCTION audience.search(query text) RETURNS SETOF audience.contacts
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    terms jsonb;
BEGIN
    -- Resolve every field first so an unknown one fails before any row is read.
    SELECT coalesce(jsonb_agg(CASE WHEN t->>'kind' = 'field'
                                   THEN t || jsonb_build_object('field', audience.search_field(t->>'field'))
                                   ELSE t END), '[]')
      INTO terms
      FROM jsonb_array_elements(audience.search_terms(query)) t;
    RETURN QUERY
    SELECT c.* FROM audience.contacts c
     WHERE c.tenant_id = audience.current_tenant()
       AND NOT EXISTS (
           SELECT FROM jsonb_array_elements(terms) t
            WHERE NOT coalesce(CASE t->>'kind'
                WHEN 'tag' THEN c.tag_keys @> ARRAY[lower(t->>'value')]
                WHEN 'word' THEN
                    strpos(lower(concat_ws(' ', c.email, c.first_name, c.last_name, c.company)), lower(t->>'value')) > 0
                ELSE lower(CASE WHEN t->>'field' LIKE 'custom.%'
                                THEN c.attributes ->> substr(t->>'field', 8)
                                ELSE to_jsonb(c) ->> (t->>'field') END) = lower(t->>'value')
            END, false))
     ORDER BY c.email;
END
$$;
CREATE OR REPLACE FUNCTION audience.tag_segment(segment text, tag text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    tagged bigint;
BEGIN
    IF nullif(btrim(tag), '') IS NULL THEN
        RAISE EXCEPTION 'a tag cannot be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE audience.contacts c SET tags = c.tags || btrim(tag)
     WHERE c.tenant_id = audience.current_tenant()
       AND c.id IN (SELECT audience.member_ids(audience.find_segment(segment)))
       AND NOT c.tag_keys @> ARRAY[lower(btrim(tag))];
    GET DIAGNOSTICS tagged = ROW_COUNT;
    RETURN tagged;
END
$$;

-- A contact's memberships are read from the index alone.
DROP INDEX audience.segment_members_contact;
CREATE INDEX segment_members_contact ON audience.segment_members (tenant_id, contact_id) INCLUDE (segment_id);
COMMENT ON INDEX audience.segment_members_contact IS 'Serves segments_of and per-contact maintenance, from the index alone';

-- Inlinable: its body is STABLE, so declared IMMUTABLE it was not inlined.
ALTER FUNCTION audience.decayed_points(integer, timestamptz, timestamptz, integer, interval) STABLE;

-- Backends keep the tenants they resolved and their compiled rules until a
-- change of tenants, fields, segments or fit rules invalidates them.
CREATE FUNCTION audience.forget_kept_rules() RETURNS void
STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'forget_kept_rules_wrapper';
COMMENT ON FUNCTION audience.forget_kept_rules() IS 'Makes every backend read the tenants'' rules again once the current transaction commits (for triggers)';
CREATE FUNCTION audience.rules_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM audience.forget_kept_rules();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.rules_changed() IS 'Trigger: a change of tenants, fields, segments or fit rules makes every backend read them again once it commits';
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE ON audience.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.tenants ENABLE ALWAYS TRIGGER rules_changed;
CREATE TRIGGER rules_changed AFTER INSERT OR DELETE OR UPDATE OF tenant_id, name, type ON audience.fields
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.fields ENABLE ALWAYS TRIGGER rules_changed;
CREATE TRIGGER rules_changed AFTER INSERT OR DELETE OR UPDATE OF tenant_id, id, name, kind, rule, created_at ON audience.segments
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.segments ENABLE ALWAYS TRIGGER rules_changed;
CREATE TRIGGER rules_changed AFTER INSERT OR DELETE OR UPDATE ON audience.fit_rules
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.fit_rules ENABLE ALWAYS TRIGGER rules_changed;
-- The current tenant in Rust: each backend keeps the tenants it resolved.
CREATE OR REPLACE FUNCTION audience.current_tenant() RETURNS uuid
STABLE PARALLEL SAFE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'current_tenant_wrapper';
-- Per-row normalisation on a column list instead of a condition that was
-- parsed again for every statement.
DROP TRIGGER normalize_contact_update ON audience.contacts;
CREATE TRIGGER normalize_contact_update
    BEFORE UPDATE OF email, first_name, last_name, company, job_title, phone, phone_type, country, city, status,
                     lead_status, source, assigned_to, reachability, tags, attributes, created_at, updated_at
    ON audience.contacts
    FOR EACH ROW EXECUTE FUNCTION audience.normalize_contact();
-- Event kinds checked in Rust.
CREATE OR REPLACE FUNCTION audience.check_event_kind("kind" TEXT) RETURNS TEXT
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'check_event_kind_wrapper';
-- The change log is written without an index by contact (its entries
-- landed at random places of a large index: ~5 µs of every change);
-- audience.membership_changes becomes a view that leaves out forgotten
-- contacts, whose history audience.purge_forgotten() removes in bulk.
ALTER TABLE audience.membership_changes RENAME TO membership_log;
ALTER INDEX audience.membership_changes_pkey RENAME TO membership_log_pkey;
ALTER INDEX audience.membership_changes_segment RENAME TO membership_log_segment;
ALTER SEQUENCE audience.membership_changes_id_seq RENAME TO membership_log_id_seq;
ALTER TABLE audience.membership_log RENAME CONSTRAINT membership_changes_change_check TO membership_log_change_check;
DROP INDEX audience.membership_changes_contact;
-- A row per segment, direction and write (a row per contact cost more
-- than the change itself): the rows of one write share tenant, segment,
-- direction and moment, and keep the first one's id.
ALTER TABLE audience.membership_log ADD COLUMN contacts uuid[];
UPDATE audience.membership_log l SET contacts = g.contacts
  FROM (SELECT tenant_id, min(id) AS id, array_agg(contact_id ORDER BY id) AS contacts
          FROM audience.membership_log GROUP BY tenant_id, segment_id, change, at) g
 WHERE l.tenant_id = g.tenant_id AND l.id = g.id;
DELETE FROM audience.membership_log WHERE contacts IS NULL;
ALTER TABLE audience.membership_log DROP COLUMN contact_id, ALTER COLUMN contacts SET NOT NULL,
    ALTER COLUMN contacts SET STORAGE EXTERNAL;
COMMENT ON TABLE audience.membership_log IS 'Contacts entering or leaving a segment''s stored membership, a row per segment, direction and write, forgotten contacts included until audience.purge_forgotten(); read it through audience.membership_changes';
COMMENT ON COLUMN audience.membership_log.contacts IS 'The contacts that entered or exited in this write';
CREATE TABLE audience.forgotten_contacts (
    tenant_id    uuid        NOT NULL DEFAULT audience.current_tenant()
                             REFERENCES audience.tenants (id) ON DELETE CASCADE,
    contact_id   uuid        NOT NULL,
    forgotten_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id)
);
COMMENT ON TABLE audience.forgotten_contacts IS 'Contacts erased by audience.forget_contact whose membership history audience.purge_forgotten() has yet to remove; audience.membership_changes already leaves it out';
SELECT pg_catalog.pg_extension_config_dump('audience.forgotten_contacts', '');
ALTER TABLE audience.forgotten_contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audience.forgotten_contacts
    USING ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()))
    WITH CHECK ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()));
COMMENT ON POLICY tenant_isolation ON audience.forgotten_contacts IS 'audience_user reads and writes rows of its current tenant only; audience_admin all';
CREATE VIEW audience.membership_changes WITH (security_invoker = true) AS
SELECT l.tenant_id, l.id, l.segment_id, c.contact_id, l.change, l.at
  FROM audience.membership_log l
 CROSS JOIN LATERAL unnest(l.contacts) AS c(contact_id)
 WHERE NOT EXISTS (SELECT FROM audience.forgotten_contacts f
                    WHERE f.tenant_id = l.tenant_id AND f.contact_id = c.contact_id);
COMMENT ON VIEW audience.membership_changes IS 'Every contact entering or leaving a segment''s stored membership, for syncing delivery and CRM systems (without forgotten contacts); the changes one write made to one segment share an id, and ids grow with time';
GRANT SELECT, INSERT, UPDATE, DELETE ON audience.forgotten_contacts, audience.membership_changes TO audience_user;
CREATE FUNCTION audience.purge_forgotten() RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    forgotten uuid[];
    purged bigint;
BEGIN
    WITH done AS (
        DELETE FROM audience.forgotten_contacts f WHERE f.tenant_id = audience.current_tenant()
        RETURNING f.contact_id
    )
    SELECT array_agg(contact_id) INTO forgotten FROM done;
    IF forgotten IS NULL THEN
        RETURN 0;
    END IF;
    -- One pass over the current tenant's log for all its forgotten
    -- contacts, looked up in a hash (IN over a subquery), not compared
    -- with each of them; rows left empty go.
    WITH pruned AS (
        SELECT l.id, cardinality(l.contacts) AS logged,
               ARRAY(SELECT c FROM unnest(l.contacts) c WHERE c NOT IN (SELECT unnest(forgotten))) AS kept
          FROM audience.membership_log l
         WHERE l.tenant_id = audience.current_tenant()
           AND EXISTS (SELECT FROM unnest(l.contacts) c WHERE c IN (SELECT unnest(forgotten)))
    ), shortened AS (
        UPDATE audience.membership_log l SET contacts = p.kept FROM pruned p
         WHERE l.tenant_id = audience.current_tenant() AND l.id = p.id AND cardinality(p.kept) > 0
    ), emptied AS (
        DELETE FROM audience.membership_log l USING pruned p
         WHERE l.tenant_id = audience.current_tenant() AND l.id = p.id AND cardinality(p.kept) = 0
    )
    SELECT coalesce(sum(p.logged - cardinality(p.kept)), 0) INTO purged FROM pruned p;
    RETURN purged;
END
$$;
COMMENT ON FUNCTION audience.purge_forgotten() IS 'Removes the membership history of the current tenant''s forgotten contacts from audience.membership_log (refresh_all_tenants runs it); returns the changes removed';
CREATE OR REPLACE FUNCTION audience.refresh_all_tenants() RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    tenant record;
    changes bigint := 0;
    previous text := current_setting('audience.tenant', true);
BEGIN
    FOR tenant IN SELECT id FROM audience.tenants ORDER BY created_at LOOP
        PERFORM set_config('audience.tenant', tenant.id::text, true);
        changes := changes + audience.refresh();
        -- Decay ages scores at most daily: each run rescores the tenant.
        IF EXISTS (SELECT FROM audience.settings s
                    WHERE s.tenant_id = tenant.id AND s.decay_percent > 0
                      AND (s.decayed_at IS NULL OR now() - s.decayed_at >= least(s.decay_every, interval '1 day'))) THEN
            PERFORM audience.apply_decay();
        END IF;
        PERFORM audience.purge_forgotten();
    END LOOP;
    PERFORM set_config('audience.tenant', coalesce(previous, ''), true);
    RETURN changes;
END
$$;
COMMENT ON FUNCTION audience.refresh_all_tenants() IS 'Refreshes every dynamic segment of every tenant, applies due score decay and removes forgotten contacts'' history; what schedule_refresh runs';
CREATE OR REPLACE FUNCTION audience.segments_dropped() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM audience.segment_members m USING old_rows o WHERE m.tenant_id = o.tenant_id AND m.segment_id = o.id;
    DELETE FROM audience.membership_log m USING old_rows o WHERE m.tenant_id = o.tenant_id AND m.segment_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.segments_dropped() IS 'Statement trigger: removes the stored membership and change log of dropped segments';
CREATE OR REPLACE FUNCTION audience.forget_contact(email text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    forgotten uuid;
BEGIN
    DELETE FROM audience.contacts c
     WHERE c.tenant_id = audience.current_tenant()
       AND c.email = audience.normalize_email(forget_contact.email)
    RETURNING c.id INTO forgotten;
    IF forgotten IS NULL THEN
        RETURN false;
    END IF;
    -- Events and memberships went with the contact; its history leaves
    -- audience.membership_changes now and the log at the next purge.
    INSERT INTO audience.forgotten_contacts (tenant_id, contact_id) VALUES (audience.current_tenant(), forgotten);
    DELETE FROM audience.snapshot_members m WHERE m.tenant_id = audience.current_tenant() AND m.contact_id = forgotten;
    RETURN true;
END
$$;
COMMENT ON FUNCTION audience.forget_contact(text) IS 'Erases a contact and everything held on it: events, memberships, membership history, snapshots; false when there was none';

-- Imports add the contacts they created to their list without looking
-- them up there first.
DROP FUNCTION audience.import_to_list(text, uuid[]);
CREATE FUNCTION audience.import_to_list(name text, contacts uuid[], created uuid[] DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    list audience.segments := audience.find_list(name);
    changes bigint := audience.apply_membership(list.tenant_id, list.id, contacts, '{}');
BEGIN
    IF cardinality(created) > 0 THEN
        changes := changes + audience.apply_membership(list.tenant_id, list.id, created, '{}', known_new => true);
    END IF;
    IF changes > 0 AND EXISTS (SELECT FROM audience.segments s
                                WHERE s.tenant_id = list.tenant_id AND list.id = ANY (s.depends_on)) THEN
        PERFORM audience.maintain_membership(list.tenant_id::text, (contacts || created)::text[], ARRAY[list.id::text]);
    END IF;
    RETURN changes;
END
$$;
COMMENT ON FUNCTION audience.import_to_list(text, uuid[], uuid[]) IS 'Adds contacts an import wrote to its list, those it created without looking them up (for import_csv)';

-- upsert_contact keeps its statement planned per set of columns (in Rust;
-- built and planned on every call in plpgsql, it took a fifth of the
-- call), and the list of writable columns has one source.
CREATE OR REPLACE FUNCTION audience.writable_fields() RETURNS text[]
STRICT IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'writable_fields_wrapper';
COMMENT ON FUNCTION audience.writable_fields() IS 'The standard contact columns a caller may set by name (scores and activity times follow from events)';
CREATE OR REPLACE FUNCTION audience.upsert_contact(data jsonb) RETURNS uuid
VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'upsert_contact_wrapper';
COMMENT ON FUNCTION audience.upsert_contact(jsonb) IS 'Inserts or updates a contact by email; keys are standard fields or custom field names; returns its id';
