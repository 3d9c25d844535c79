-- Segments: static lists, dynamic rule-based segments and Everyone, with
-- stored membership kept in step by statement-level triggers, its change
-- log, snapshots, and the views analysts and BI tools read.

--------------------------------------------------------------------------
-- Membership change log and snapshots
--------------------------------------------------------------------------
CREATE TABLE audience.membership_log (
    tenant_id  uuid        NOT NULL DEFAULT audience.current_tenant(),
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    segment_id uuid        NOT NULL,
    change     text        NOT NULL CHECK (change IN ('entered', 'exited')),
    at         timestamptz NOT NULL DEFAULT now(),
    -- One row per segment, direction and write: a row per contact cost
    -- more than the membership change itself (~6 µs each, a third of a
    -- 100k-contact UPDATE with 50 segments).
    contacts   uuid[]      NOT NULL,
    -- No foreign key, as for contact_segments: dropping a segment removes
    -- its log through the trigger below.
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE audience.membership_log IS 'Contacts entering or leaving a segment''s stored membership, a row per segment, direction and write, forgotten contacts included until audience.purge_forgotten(); read it through audience.membership_changes';
COMMENT ON COLUMN audience.membership_log.contacts IS 'The contacts that entered or exited in this write';
-- Stored uncompressed: time-ordered ids share their leading bytes, so
-- pglz compressed them, at ~40 ns an id (a third of the log's cost).
ALTER TABLE audience.membership_log ALTER COLUMN contacts SET STORAGE EXTERNAL;
SELECT pg_catalog.pg_extension_config_dump('audience.membership_log', '');
SELECT pg_catalog.pg_extension_config_dump('audience.membership_log_id_seq', '');
CREATE INDEX membership_log_segment ON audience.membership_log (tenant_id, segment_id, at);
COMMENT ON INDEX audience.membership_log_segment IS 'Serves reading a segment''s changes since a moment';
-- No index by contact: a forgotten contact's history is hidden at once
-- and removed in bulk instead.

CREATE TABLE audience.forgotten_contacts (
    tenant_id    uuid        NOT NULL DEFAULT audience.current_tenant()
                             REFERENCES audience.tenants (id) ON DELETE CASCADE,
    contact_id   uuid        NOT NULL,
    forgotten_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id)
);
COMMENT ON TABLE audience.forgotten_contacts IS 'Contacts erased by audience.forget_contact whose membership history audience.purge_forgotten() has yet to remove; audience.membership_changes already leaves it out';
SELECT pg_catalog.pg_extension_config_dump('audience.forgotten_contacts', '');

CREATE VIEW audience.membership_changes WITH (security_invoker = true) AS
SELECT l.tenant_id, l.id, l.segment_id, c.contact_id, l.change, l.at
  FROM audience.membership_log l
 CROSS JOIN LATERAL unnest(l.contacts) AS c(contact_id)
 WHERE NOT EXISTS (SELECT FROM audience.forgotten_contacts f
                    WHERE f.tenant_id = l.tenant_id AND f.contact_id = c.contact_id);
COMMENT ON VIEW audience.membership_changes IS 'Every contact entering or leaving a segment''s stored membership, for syncing delivery and CRM systems (without forgotten contacts); the changes one write made to one segment share an id, and ids grow with time';

CREATE TABLE audience.snapshots (
    tenant_id  uuid        NOT NULL DEFAULT audience.current_tenant(),
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    segment_id uuid        NOT NULL,
    label      text,
    members    bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, segment_id) REFERENCES audience.segments (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE audience.snapshots IS 'Frozen segment memberships, e.g. the audience of a campaign send';
SELECT pg_catalog.pg_extension_config_dump('audience.snapshots', '');

CREATE TABLE audience.snapshot_members (
    tenant_id   uuid NOT NULL DEFAULT audience.current_tenant(),
    snapshot_id uuid NOT NULL,
    contact_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, snapshot_id, contact_id),
    FOREIGN KEY (tenant_id, snapshot_id) REFERENCES audience.snapshots (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE audience.snapshot_members IS 'The contacts of each snapshot; unchanged by later edits';
SELECT pg_catalog.pg_extension_config_dump('audience.snapshot_members', '');
CREATE INDEX snapshot_members_contact ON audience.snapshot_members (tenant_id, contact_id);
COMMENT ON INDEX audience.snapshot_members_contact IS 'Serves erasing a contact from snapshots';

--------------------------------------------------------------------------
-- The one write path of stored membership
--------------------------------------------------------------------------
-- Rule changes (refresh, fit rules) take a tenant's rules exclusively;
-- statements that maintain membership take them shared before reading the
-- rules, and read with a snapshot taken after the lock. Neither can then
-- evaluate a rule against data the other is changing: without it, a
-- contact written while its segment's rule changed could keep the
-- membership the old rule gave it.
-- audience.lock_rules(tenant, exclusive) and audience.lock_bulk_writes(tenant)
-- are in Rust (src/api/segments.rs), where both locks are defined.

-- Each tenant's membership changes are announced on a channel of its own,
-- named after its id, which only roles that may select the tenant see.
CREATE FUNCTION audience.membership_channel(tenant uuid DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT 'audience_membership_' || replace(coalesce(tenant, audience.current_tenant())::text, '-', '') $$;
COMMENT ON FUNCTION audience.membership_channel(uuid) IS 'The NOTIFY channel announcing a tenant''s membership changes (the current tenant''s when null): LISTEN to it, then read audience.membership_changes';

-- audience.apply_memberships(tenant, segments, entered_to, entered,
-- exited_from, exited, known_new), the one write of stored membership, is
-- in Rust (src/api/membership/storage.rs).


CREATE FUNCTION audience.apply_membership(tenant uuid, segment uuid, entered uuid[], exited uuid[],
                                         known_new boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    -- PL/pgSQL rather than SQL, here and in the API's other wrappers:
    -- Citus plans no statement of a SQL function that reads its arguments.
    RETURN (SELECT coalesce(sum(a.changes), 0)::bigint
              FROM audience.apply_memberships(tenant, ARRAY[segment],
                                              array_fill(segment, ARRAY[cardinality(entered)]), entered,
                                              array_fill(segment, ARRAY[cardinality(exited)]), exited, known_new) a);
END
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

-- Dropped segments (also with their tenant) take their membership and log.
CREATE FUNCTION audience.segments_dropped() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    dropped record;
BEGIN
    -- A tenant at a time, with the dropped segments as values: Citus keeps
    -- each statement on the tenant's worker and joins no transition table.
    FOR dropped IN
        SELECT o.tenant_id, array_agg(o.number) AS numbers, array_agg(o.id) AS ids
          FROM old_rows o GROUP BY o.tenant_id ORDER BY o.tenant_id
    LOOP
        UPDATE audience.contact_segments m
           SET segments = audience.merged_segments(m.segments, '{}', dropped.numbers),
               added_at = audience.merged_since(m.segments, m.added_at, '{}', dropped.numbers, now())
         WHERE m.tenant_id = dropped.tenant_id AND m.segments && dropped.numbers;
        DELETE FROM audience.membership_log m WHERE m.tenant_id = dropped.tenant_id AND m.segment_id = ANY (dropped.ids);
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.segments_dropped() IS 'Statement trigger: removes the stored membership and change log of dropped segments';
CREATE TRIGGER segments_dropped AFTER DELETE ON audience.segments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.segments_dropped();

--------------------------------------------------------------------------
-- Maintenance triggers: one statement, one pass per tenant
--------------------------------------------------------------------------
-- audience.contacts_changed() is in Rust (src/api/contact_changes.rs): it
-- compares a statement's old and new rows and maintains membership for
-- the rules that read what changed. Its maintenance queries hash what they
-- join, in memory, and are not JIT compiled: compiling cost more than
-- running them.
CREATE FUNCTION audience.contacts_changed() RETURNS trigger
LANGUAGE c
SET work_mem = '64MB'
SET enable_mergejoin = off
SET jit = off
AS 'MODULE_PATHNAME', 'contacts_changed_wrapper';
COMMENT ON FUNCTION audience.contacts_changed() IS 'Statement trigger: brings segment membership of the changed contacts up to date';

-- Statements on contacts and events take the current tenant's rules shared
-- before they lock a single row: audience.rules_for_statement(), in Rust
-- (src/api/segments.rs).
COMMENT ON FUNCTION audience.rules_for_statement() IS 'Statement trigger: takes the current tenant''s rules shared before a statement writes contacts or events';
CREATE TRIGGER rules_before_contacts BEFORE INSERT OR UPDATE OR DELETE ON audience.contacts
    FOR EACH STATEMENT WHEN (NOT audience.restoring()) EXECUTE FUNCTION audience.rules_for_statement();

CREATE TRIGGER segments_after_insert AFTER INSERT ON audience.contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT WHEN (NOT audience.restoring())
    EXECUTE FUNCTION audience.contacts_changed();
CREATE TRIGGER segments_after_update AFTER UPDATE ON audience.contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.contacts_changed();
CREATE TRIGGER segments_after_delete AFTER DELETE ON audience.contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.contacts_changed();

--------------------------------------------------------------------------
-- Finding segments
--------------------------------------------------------------------------
CREATE FUNCTION audience.find_segment(name text) RETURNS audience.segments
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments;
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    SELECT * INTO found FROM audience.segments s
     WHERE s.tenant_id = tenant AND audience.fold(s.name) = audience.fold(btrim(find_segment.name));
    IF found.id IS NULL THEN
        RAISE EXCEPTION 'unknown segment "%"', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'audience.segment_overview lists the segments of the current tenant.';
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION audience.find_segment(text) IS 'The current tenant''s segment of that name (any case), or 42704';

CREATE FUNCTION audience.check_segment_name(name text, except_id uuid DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    checked text := audience.checked_name('segment', check_segment_name.name);
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    IF EXISTS (SELECT FROM audience.segments s
                WHERE s.tenant_id = tenant
                  AND audience.fold(s.name) = audience.fold(checked)
                  AND s.id IS DISTINCT FROM except_id) THEN
        RAISE EXCEPTION 'segment "%" already exists', checked
            USING ERRCODE = 'unique_violation', HINT = 'Segment names are unique per tenant, in any case.';
    END IF;
    RETURN checked;
END
$$;
COMMENT ON FUNCTION audience.check_segment_name(text, uuid) IS 'The trimmed name when no other segment of the tenant has it (any case); raises 23505 otherwise';

--------------------------------------------------------------------------
-- Creating, changing and dropping segments
--------------------------------------------------------------------------
CREATE FUNCTION audience.create_segment(name text, rule audience.rule, description text DEFAULT NULL) RETURNS uuid
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
COMMENT ON FUNCTION audience.create_segment(text, audience.rule, text) IS 'Creates a dynamic segment whose members are the contacts matching the rule; returns its id';

CREATE FUNCTION audience.create_list(name text, description text DEFAULT NULL) RETURNS uuid
LANGUAGE sql VOLATILE
AS $$
    INSERT INTO audience.segments (name, kind, description)
    VALUES (audience.check_segment_name(name), 'static', description)
    RETURNING id
$$;
COMMENT ON FUNCTION audience.create_list(text, text) IS 'Creates a static list, filled with add_to_list; returns its id';

-- The static list of that name, or an error saying why it is not one.
CREATE FUNCTION audience.find_list(name text) RETURNS audience.segments
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments := audience.find_segment(name);
BEGIN
    IF found.kind <> 'static' THEN
        RAISE EXCEPTION 'segment "%" is % and not a static list', found.name, found.kind
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Contacts enter dynamic segments by matching their rule; change the rule with audience.update_segment.';
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION audience.find_list(text) IS 'The static list of that name, or 42704 / 42809';

CREATE FUNCTION audience.edit_list(name text, contacts uuid[], adding boolean) RETURNS bigint
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
     WHERE EXISTS (SELECT FROM audience.contact_segments m
                    WHERE m.tenant_id = list.tenant_id AND m.contact_id = given AND list.number = ANY (m.segments)) <> adding;
    changes := audience.apply_membership(list.tenant_id, list.id,
                                         CASE WHEN adding THEN moved ELSE '{}' END,
                                         CASE WHEN adding THEN '{}' ELSE moved END);
    IF changes > 0 THEN
        PERFORM audience.maintain_membership(list.tenant_id::text, moved::text[], ARRAY[list.id::text]);
    END IF;
    RETURN changes;
END
$$;
COMMENT ON FUNCTION audience.edit_list(text, uuid[], boolean) IS 'Adds contacts to or removes them from a static list; unknown ids fail the whole call';

CREATE FUNCTION audience.add_to_list(name text, contacts uuid[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$ BEGIN RETURN audience.edit_list(name, contacts, true); END $$;
COMMENT ON FUNCTION audience.add_to_list(text, uuid[]) IS 'Adds contacts to a static list; returns how many were not members yet';

CREATE FUNCTION audience.remove_from_list(name text, contacts uuid[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$ BEGIN RETURN audience.edit_list(name, contacts, false); END $$;
COMMENT ON FUNCTION audience.remove_from_list(text, uuid[]) IS 'Removes contacts from a static list; returns how many were members';

-- audience.check_no_cycle(tenant, segment, refs) is in Rust
-- (src/api/segments.rs): it walks the references visiting each segment once.

CREATE FUNCTION audience.update_segment(name text, new_name text DEFAULT NULL, rule audience.rule DEFAULT NULL,
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
        -- Rules refer to segments by name: rewrite the segments' and fit
        -- rules that name this one (raising, before anything is renamed,
        -- when one would grow beyond what a rule may be).
        UPDATE audience.fit_rules f
           SET rule = audience.rule_rename_segment(f.rule, segment.name, new_name)
         WHERE f.tenant_id = segment.tenant_id AND segment.id = ANY (audience.rule_segments(f.rule)::uuid[]);
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
        PERFORM audience.check_no_cycle(segment.tenant_id, segment.id, refs);
        UPDATE audience.segments s SET rule = update_segment.rule, depends_on = refs, updated_at = now()
         WHERE s.tenant_id = segment.tenant_id AND s.id = segment.id;
        -- Fit rules may not read the score through this segment either.
        PERFORM audience.check_fit_rule(f.rule) FROM audience.fit_rules f WHERE f.tenant_id = segment.tenant_id;
        PERFORM audience.refresh(coalesce(new_name, segment.name));
    END IF;
END
$$;
COMMENT ON FUNCTION audience.update_segment(text, text, audience.rule, text) IS 'Renames a segment (rules referring to it follow), changes its rule (membership follows at once) or its description';

CREATE FUNCTION audience.duplicate_segment(name text, new_name text) RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    source audience.segments := audience.find_segment(name);
    copy uuid;
BEGIN
    IF source.kind = 'static' THEN
        copy := audience.create_list(new_name, source.description);
        PERFORM audience.add_to_list(new_name, ARRAY(
            SELECT audience.member_ids(source)));
    ELSIF source.kind = 'query' THEN
        -- Defined anew, as the role that copies it.
        copy := audience.create_query_segment(new_name, source.query, source.description);
    ELSE
        copy := audience.create_segment(new_name, coalesce(source.rule, 'everyone'), source.description);
    END IF;
    RETURN copy;
END
$$;
COMMENT ON FUNCTION audience.duplicate_segment(text, text) IS 'Copies a segment under a new name: a list with its members, a dynamic segment with its rule, a query segment with its query (run as the caller)';

CREATE FUNCTION audience.drop_segment(name text) RETURNS void
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
    SELECT string_agg(d.name, ', ' ORDER BY d.name) INTO dependents
      FROM (SELECT format('segment "%s"', s.name) AS name FROM audience.segments s
             WHERE s.tenant_id = segment.tenant_id AND segment.id = ANY (s.depends_on)
            UNION ALL
            SELECT format('fit rule "%s"', f.name) FROM audience.fit_rules f
             WHERE f.tenant_id = segment.tenant_id AND segment.id = ANY (audience.rule_segments(f.rule)::uuid[])) d;
    IF dependents IS NOT NULL THEN
        RAISE EXCEPTION 'segment "%" is used by the rules of %', segment.name, dependents
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Change or drop those first (audience.update_segment, audience.drop_fit_score).';
    END IF;
    -- Contacts stay; the membership, its log and snapshots go with the segment.
    DELETE FROM audience.segments s WHERE s.tenant_id = segment.tenant_id AND s.id = segment.id;
END
$$;
COMMENT ON FUNCTION audience.drop_segment(text) IS 'Drops a segment (never its contacts); fails when another segment''s rule refers to it';

--------------------------------------------------------------------------
-- Reading membership
--------------------------------------------------------------------------
-- The one membership read path: the members of a segment now, as a
-- subquery with one row (id) per member — stored membership, except for
-- Everyone (every contact) and rules that depend on the clock (evaluated
-- live). Only this function knows how membership is stored; those who
-- read many members join the subquery, which the planner sees through
-- (a set-returning function it cannot).
CREATE FUNCTION audience.member_source(segment audience.segments) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN segment.kind = 'everyone' THEN
            format('(SELECT c.id FROM audience.contacts c WHERE c.tenant_id = %L::uuid)', segment.tenant_id)
        WHEN segment.kind = 'dynamic' AND audience.rule_is_time_relative(segment.rule) THEN
            format('(SELECT unnest(audience.live_members(%L::audience.rule))::uuid AS id)', segment.rule)
        ELSE
            format('(SELECT m.contact_id AS id FROM audience.contact_segments m WHERE m.tenant_id = %L::uuid AND m.segments @> ARRAY[%s])',
                   segment.tenant_id, segment.number)
    END
$$;
COMMENT ON FUNCTION audience.member_source(audience.segments) IS 'The one membership read path: a subquery of a segment''s members now, one row (id) per member';

-- The members of several segments at once, for those who read many: a
-- subquery of (n, id) rows, n the segment's position in `segments`.
-- Stored membership is read in one pass over the tenant's rows (a pass per
-- segment read every row once per segment); the others as member_source
-- gives them.
CREATE FUNCTION audience.members_source(segments audience.segments[]) RETURNS text
LANGUAGE sql STABLE
AS $$
    WITH listed AS (
        SELECT i AS n, segments[i] AS segment,
               segments[i].kind IN ('static', 'query')
               OR (segments[i].kind = 'dynamic' AND NOT audience.rule_is_time_relative(segments[i].rule)) AS stored
          FROM generate_subscripts(segments, 1) i
    )
    SELECT '(' || concat_ws(' UNION ALL ',
        (SELECT format('SELECT k.n, m.contact_id AS id FROM audience.contact_segments m
                         CROSS JOIN LATERAL unnest(m.segments) u(number)
                         JOIN unnest(%L::integer[], %L::integer[]) k(number, n) ON k.number = u.number
                        WHERE m.tenant_id = %L::uuid',
                       array_agg((l.segment).number), array_agg(l.n), min((l.segment).tenant_id::text))
           FROM listed l WHERE l.stored HAVING count(*) > 0),
        (SELECT string_agg(format('SELECT %s AS n, members.id FROM %s members', l.n, audience.member_source(l.segment)),
                           ' UNION ALL ')
           FROM listed l WHERE NOT l.stored)) || ')'
$$;
COMMENT ON FUNCTION audience.members_source(audience.segments[]) IS 'The members of several segments now, as one subquery of (n, id) rows, n the segment''s position in the array';

-- Its members one by one, for those who need a few.
CREATE FUNCTION audience.member_ids(segment audience.segments) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT id FROM ' || audience.member_source(segment) || ' members';
END
$$;
COMMENT ON FUNCTION audience.member_ids(audience.segments) IS 'Ids of a segment''s members at this moment';

-- One query over the tenant's contacts and its stored membership, with the
-- tenant as a value: on one server as fast as a join, and under Citus
-- routed to the tenant's worker.
CREATE FUNCTION audience.members(segment text) RETURNS SETOF audience.contacts
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
BEGIN
    RETURN QUERY EXECUTE 'SELECT c.* FROM audience.contacts c WHERE c.tenant_id = $1 AND c.id IN '
                         || audience.member_source(found)
        USING found.tenant_id;
END
$$;
COMMENT ON FUNCTION audience.members(text) IS 'The contacts in a segment now';

CREATE FUNCTION audience.recipients(segment text) RETURNS SETOF audience.contacts
LANGUAGE sql STABLE
AS $$
    SELECT * FROM audience.members(segment) c WHERE c.status = 'active'
$$;
COMMENT ON FUNCTION audience.recipients(text) IS 'A segment''s members minus the unsubscribed and bounced: who a campaign may reach';

CREATE FUNCTION audience.count(segment text) RETURNS bigint
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
BEGIN
    IF found.kind = 'dynamic' AND audience.rule_is_time_relative(found.rule) THEN
        RETURN audience.preview(found.rule);
    END IF;
    RETURN found.member_count;
END
$$;
COMMENT ON FUNCTION audience.count(text) IS 'How many contacts are in a segment now';

CREATE FUNCTION audience.in_segment(contact uuid, segment text) RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
BEGIN
    IF found.kind = 'everyone' THEN
        RETURN EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = found.tenant_id AND c.id = contact);
    ELSIF found.kind = 'dynamic' AND audience.rule_is_time_relative(found.rule) THEN
        RETURN audience.rule_matches(contact, found.rule);
    END IF;
    RETURN EXISTS (SELECT FROM audience.contact_segments m
                    WHERE m.tenant_id = found.tenant_id AND m.contact_id = contact AND found.number = ANY (m.segments));
END
$$;
COMMENT ON FUNCTION audience.in_segment(uuid, text) IS 'Whether a contact is in a segment now (an index lookup on stored membership)';

--------------------------------------------------------------------------
-- Campaign helpers
--------------------------------------------------------------------------
CREATE FUNCTION audience.snapshot(segment text, label text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
    created uuid := gen_random_uuid();
    frozen bigint;
BEGIN
    INSERT INTO audience.snapshots (tenant_id, id, segment_id, label, members)
    VALUES (found.tenant_id, created, found.id, label, 0);
    INSERT INTO audience.snapshot_members (tenant_id, snapshot_id, contact_id)
    SELECT found.tenant_id, created, id FROM audience.member_ids(found) id;
    GET DIAGNOSTICS frozen = ROW_COUNT;
    UPDATE audience.snapshots s SET members = frozen WHERE s.tenant_id = found.tenant_id AND s.id = created;
    RETURN created;
END
$$;
COMMENT ON FUNCTION audience.snapshot(text, text) IS 'Freezes a segment''s current members (e.g. for a campaign send); returns the snapshot id';

CREATE FUNCTION audience.snapshot_members(snapshot uuid) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    IF NOT EXISTS (SELECT FROM audience.snapshots s WHERE s.tenant_id = tenant AND s.id = snapshot) THEN
        RAISE EXCEPTION 'unknown snapshot %', snapshot USING ERRCODE = 'undefined_object';
    END IF;
    RETURN QUERY SELECT m.contact_id FROM audience.snapshot_members m
                  WHERE m.tenant_id = tenant AND m.snapshot_id = snapshot
                  ORDER BY m.contact_id;
END
$$;
COMMENT ON FUNCTION audience.snapshot_members(uuid) IS 'The contact ids frozen in a snapshot';

CREATE FUNCTION audience.batches(segment text, batch_size integer) RETURNS TABLE (batch integer, contact_id uuid)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', coalesce(batch_size::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT ((row_number() OVER (ORDER BY id) - 1) / batch_size + 1)::integer, id
      FROM audience.member_ids(audience.find_segment(segment)) id
     ORDER BY id;
END
$$;
COMMENT ON FUNCTION audience.batches(text, integer) IS 'Splits a segment''s members into numbered batches of batch_size for sending';

CREATE FUNCTION audience.tag_segment(segment text, tag text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    found audience.segments;
    tagged bigint;
BEGIN
    IF nullif(btrim(tag), '') IS NULL THEN
        RAISE EXCEPTION 'a tag cannot be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    found := audience.find_segment(segment);
    -- One statement over the segment's stored membership, as members()
    -- reads it.
    EXECUTE 'UPDATE audience.contacts c SET tags = c.tags || $2
              WHERE c.tenant_id = $1 AND NOT c.tag_keys @> ARRAY[audience.fold($2)] AND c.id IN '
            || audience.member_source(found)
      USING found.tenant_id, btrim(tag);
    GET DIAGNOSTICS tagged = ROW_COUNT;
    RETURN tagged;
END
$$;
COMMENT ON FUNCTION audience.tag_segment(text, text) IS 'Tags every member of a segment; returns how many contacts gained the tag';

--------------------------------------------------------------------------
-- Scheduled refresh of time-relative rules
--------------------------------------------------------------------------
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

--------------------------------------------------------------------------
-- Views
--------------------------------------------------------------------------
-- Segments that depend on the clock are counted now, as audience.count
-- counts them (by their rule: under Citus, on the worker with the rows).
CREATE VIEW audience.segment_overview WITH (security_invoker = true) AS
    SELECT s.name, s.description, s.kind,
           CASE WHEN s.kind = 'dynamic' AND audience.rule_is_time_relative(s.rule)
                THEN audience.preview(s.rule) ELSE s.member_count END AS members,
           s.created_at, s.updated_at, s.refreshed_at, s.rule::text AS rule
      FROM audience.segments s
     WHERE s.tenant_id = (SELECT audience.current_tenant())
     ORDER BY s.kind = 'everyone' DESC, lower(s.name);
COMMENT ON VIEW audience.segment_overview IS 'Every segment of the current tenant with its member count';

CREATE VIEW audience.segment_membership WITH (security_invoker = true) AS
    SELECT s.name AS segment, c.id AS contact_id, c.email, c.first_name, c.last_name, c.status,
           c.lead_status, c.score, audience.score_tier(c.score) AS tier, c.tags
      FROM audience.segment_members m
      JOIN audience.segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id
      JOIN audience.contacts c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id
     WHERE m.tenant_id = (SELECT audience.current_tenant());
COMMENT ON VIEW audience.segment_membership IS 'Stored members of every list and dynamic segment of the current tenant, one row per membership';

CREATE VIEW audience.contact_profile WITH (security_invoker = true) AS
    SELECT c.tenant_id, c.id, c.email, c.first_name, c.last_name, c.company, c.job_title, c.phone, c.phone_type,
           c.country, c.city, c.status, c.lead_status, c.source, c.assigned_to, c.score, c.reachability, c.tags,
           c.attributes, c.created_at, c.updated_at, c.last_activity_at, c.last_opened_at, c.last_clicked_at,
           c.fit_score, c.engagement_score, c.score_reset_at, c.event_count,
           audience.score_tier(c.score) AS tier,
           audience.segment_names(c.id) AS segments
      FROM audience.contacts c
     WHERE c.tenant_id = (SELECT audience.current_tenant());
COMMENT ON VIEW audience.contact_profile IS 'Contacts of the current tenant with their score tier and segments';
