-- 0.1.1 → 0.2.0: tenants bound to roles. A session may select only the
-- tenants granted to its role (audience.grant_tenant); audience_reader
-- reads and writes nothing; functions that exist for triggers and the API
-- can no longer be called by application roles, nor can tables other than
-- contacts and events be written directly; each tenant's membership
-- changes are announced on a channel of its own.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audience_user') THEN
        CREATE ROLE audience_user NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audience_reader') THEN
        CREATE ROLE audience_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audience_admin') THEN
        CREATE ROLE audience_admin NOLOGIN;
    END IF;
END
$roles$;
GRANT audience_user TO audience_admin;
COMMENT ON ROLE audience_user IS 'audience: may use every API function and table, for the tenants granted to it (audience.grant_tenant)';
COMMENT ON ROLE audience_reader IS 'audience: may read the tables and views and call the read functions, for the tenants granted to it; writes nothing';
COMMENT ON ROLE audience_admin IS 'audience: as audience_user, for every tenant; creates tenants and grants them to roles';

-- Which roles may select which tenants. A role may select a tenant when
-- it, or a role it is a member of, holds a grant for that tenant or for
-- every tenant (tenant_id null, shown as '*'), or is a member of
-- audience_admin. Row Level Security shows a role its own grants, and
-- audience.tenants only the tenants it may select: current_tenant()
-- resolves the setting audience.tenant through both, as the session's role.
CREATE TABLE audience.tenant_access (
    tenant_id  uuid        REFERENCES audience.tenants (id) ON DELETE CASCADE,
    role       regrole     NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_access_key UNIQUE NULLS NOT DISTINCT (tenant_id, role)
);
COMMENT ON TABLE audience.tenant_access IS 'Tenant grants: the roles that may select each tenant (tenant_id null: every tenant); audience.tenant_grants shows them by name';
COMMENT ON COLUMN audience.tenant_access.tenant_id IS 'The tenant granted, or null for every tenant';
COMMENT ON COLUMN audience.tenant_access.role IS 'The role granted the tenant, and with it every member of that role';
COMMENT ON COLUMN audience.tenant_access.granted_at IS 'When the grant was made';
SELECT pg_catalog.pg_extension_config_dump('audience.tenant_access', '');
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE ON audience.tenant_access
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.tenant_access ENABLE ALWAYS TRIGGER rules_changed;

CREATE VIEW audience.tenant_grants WITH (security_invoker = true) AS
    SELECT g.role::text AS role, coalesce(t.name, '*') AS tenant, g.granted_at
      FROM audience.tenant_access g
      LEFT JOIN audience.tenants t ON t.id = g.tenant_id
     ORDER BY 1, 2;
COMMENT ON VIEW audience.tenant_grants IS 'Which role may select which tenant (''*'': every tenant); a role sees its own grants, audience_admin all';
COMMENT ON COLUMN audience.tenant_grants.role IS 'The role granted the tenant, and with it every member of that role';
COMMENT ON COLUMN audience.tenant_grants.tenant IS 'The tenant''s name, or * for every tenant';
COMMENT ON COLUMN audience.tenant_grants.granted_at IS 'When the grant was made';

COMMENT ON FUNCTION audience.current_tenant() IS 'The tenant named by the setting audience.tenant; raises when it is unset (22023) or not one the session''s role may select (42501)';

-- Tenants are resolved by current_tenant() through Row Level Security.
DROP FUNCTION audience.use_tenant(text);
DROP FUNCTION audience.resolve_tenant(text);
DROP FUNCTION audience.find_tenant(text);
DROP FUNCTION audience.create_tenant(text);

-- Names of tenants, segments and fit rules: trimmed, not empty, and at
-- most 200 characters: more than any name a person reads, and below
-- PostgreSQL's index row limit, which would refuse longer ones as 54000.
CREATE FUNCTION audience.checked_name(kind text, name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'a % needs a name', kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(btrim(name)) > 200 THEN
        RAISE EXCEPTION 'a % name has at most 200 characters, not %', kind, length(btrim(name))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN btrim(name);
END
$$;
COMMENT ON FUNCTION audience.checked_name(text, text) IS 'The name trimmed; raises 22023 when it is empty or longer than 200 characters';

CREATE FUNCTION audience.granted_tenant(tenant text) RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    found uuid;
BEGIN
    IF btrim(tenant) = '*' THEN
        RETURN NULL;
    END IF;
    IF tenant ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        SELECT t.id INTO found FROM audience.tenants t WHERE t.id = tenant::uuid;
    ELSE
        SELECT t.id INTO found FROM audience.tenants t WHERE t.name = btrim(tenant);
    END IF;
    IF found IS NULL THEN
        RAISE EXCEPTION 'unknown tenant "%"', tenant
            USING ERRCODE = 'undefined_object', HINT = 'audience.tenants lists the tenants; ''*'' grants every tenant.';
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION audience.granted_tenant(text) IS 'The id of the tenant a grant names (by name or id), null for ''*''; raises 42704 for an unknown tenant';

CREATE FUNCTION audience.grant_tenant(role regrole, tenant text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    granted uuid;
BEGIN
    IF role IS NULL OR tenant IS NULL THEN
        RAISE EXCEPTION 'grant_tenant needs a role and a tenant' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    granted := audience.granted_tenant(tenant);
    INSERT INTO audience.tenant_access (tenant_id, role) VALUES (granted, grant_tenant.role)
    ON CONFLICT ON CONSTRAINT tenant_access_key DO NOTHING;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION audience.grant_tenant(regrole, text) IS 'Lets a role (and its members) select a tenant, by name or id, or every tenant with ''*''; false when it already could (audience_admin only)';

CREATE FUNCTION audience.revoke_tenant(role regrole, tenant text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    revoked uuid := audience.granted_tenant(tenant);
BEGIN
    DELETE FROM audience.tenant_access g
     WHERE g.role = revoke_tenant.role AND g.tenant_id IS NOT DISTINCT FROM revoked;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION audience.revoke_tenant(regrole, text) IS 'Takes back a grant made by grant_tenant (''*'': the grant of every tenant); false when there was none (audience_admin only)';

CREATE FUNCTION audience.use_tenant(tenant text) RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    found uuid;
BEGIN
    -- current_tenant() checks the choice; an error undoes the setting.
    PERFORM pg_catalog.set_config('audience.tenant', tenant, false);
    found := audience.current_tenant();
    PERFORM pg_catalog.set_config('audience.tenant', found::text, false);
    RETURN found;
END
$$;
COMMENT ON FUNCTION audience.use_tenant(text) IS 'Selects the current tenant (by name or id) for the rest of the session; 42501 unless the role may select it';

CREATE FUNCTION audience.create_tenant(name text, owner regrole DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    created uuid;
BEGIN
    name := audience.checked_name('tenant', name);
    IF name = '*' THEN
        RAISE EXCEPTION 'a tenant cannot be named "*"' USING ERRCODE = 'invalid_parameter_value',
            HINT = '''*'' stands for every tenant in audience.grant_tenant.';
    END IF;
    IF EXISTS (SELECT FROM audience.tenants t WHERE t.name = create_tenant.name) THEN
        RAISE EXCEPTION 'tenant "%" already exists', name
            USING ERRCODE = 'unique_violation', HINT = 'Tenant names are unique; choose another.';
    END IF;
    INSERT INTO audience.tenants (name) VALUES (create_tenant.name) RETURNING id INTO created;
    INSERT INTO audience.segments (tenant_id, name, kind, description)
    VALUES (created, 'Everyone', 'everyone', 'Every contact of the tenant');
    IF owner IS NOT NULL THEN
        INSERT INTO audience.tenant_access (tenant_id, role) VALUES (created, owner);
    END IF;
    RETURN created;
END
$$;
COMMENT ON FUNCTION audience.create_tenant(text, regrole) IS 'Creates a tenant, grants it to owner when given, and returns its id (audience_admin only)';

-- The catalogue of custom fields is read where it is needed.
CREATE OR REPLACE FUNCTION audience.normalize_contact() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    phone text[];
BEGIN
    NEW.email := audience.normalize_email(NEW.email);
    IF NEW.email IS NULL THEN
        RAISE EXCEPTION 'a contact needs an email address' USING ERRCODE = 'not_null_violation';
    END IF;
    NEW.country := audience.normalize_country(nullif(btrim(NEW.country), ''));
    NEW.source := audience.fold(btrim(NEW.source));
    NEW.status := audience.fold(btrim(NEW.status));
    NEW.lead_status := audience.fold(btrim(NEW.lead_status));
    IF TG_OP = 'INSERT' OR NEW.phone IS DISTINCT FROM OLD.phone OR NEW.country IS DISTINCT FROM OLD.country THEN
        IF nullif(btrim(NEW.phone), '') IS NULL THEN
            NEW.phone := NULL;
            NEW.phone_type := NULL;
        ELSIF NEW.phone ~ '^\+[1-9][0-9]{6,14}$' AND NEW.phone_type IS NOT NULL
              AND (TG_OP = 'INSERT' OR NEW.phone_type IS DISTINCT FROM OLD.phone_type) THEN
            -- Normalised by the caller (imports do): parsing a phone costs
            -- ~0.1 ms, so it is not done twice.
            NULL;
        ELSE
            phone := audience.normalize_phone(NEW.phone, NEW.country);
            NEW.phone := phone[1];
            NEW.phone_type := phone[2];
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.tags IS DISTINCT FROM OLD.tags THEN
        NEW.tags := audience.normalize_tags(coalesce(NEW.tags, '{}'));
    END IF;
    IF NEW.attributes IS DISTINCT FROM '{}'::jsonb
       AND (TG_OP = 'INSERT' OR NEW.attributes IS DISTINCT FROM OLD.attributes) THEN
        NEW.attributes := audience.coerce_attributes(NEW.attributes,
            (SELECT coalesce(jsonb_object_agg(f.name, f.type), '{}') FROM audience.fields f WHERE f.tenant_id = NEW.tenant_id));
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION audience.normalize_contact() IS 'Trigger: normalises email, country, phone and tags and checks custom fields on every write';
DROP FUNCTION audience.field_catalogue(uuid);

-- Both advisory locks are defined once, in Rust.
DROP FUNCTION audience.lock_rules(uuid, boolean);
CREATE FUNCTION audience.lock_rules(tenant uuid, exclusive bool) RETURNS void
STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'lock_rules_sql_wrapper';
CREATE FUNCTION audience.lock_bulk_writes(tenant uuid) RETURNS void
STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'lock_bulk_writes_sql_wrapper';

-- Tiers in Rust: views call score_tier for every row, and it reads the
-- thresholds once per command.
CREATE OR REPLACE FUNCTION audience.score_tier(score integer) RETURNS text
STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'score_tier_wrapper';
CREATE FUNCTION audience.tier_of(score integer, hot integer, warm integer) RETURNS text
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'tier_of_wrapper';

CREATE OR REPLACE FUNCTION audience.events_inserted() RETURNS trigger
LANGUAGE plpgsql
SET work_mem = '64MB'
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    tenant uuid;
    events record;
    contacts uuid[];
    status_contacts uuid[];
    statuses text[];
BEGIN
    -- Statements of several events update their contacts in no set order,
    -- so two of them touching the same contacts could deadlock: they take
    -- the tenant's bulk writes first, as imports do, and queue instead.
    -- One lock costs less than locking each contact in a set order did
    -- (~8 ms per 1,000 contacts), and also keeps two such transactions
    -- from holding each other's segments. One event (a track()) needs none.
    IF (SELECT count(*) > 1 FROM new_rows n) THEN
        PERFORM audience.lock_bulk_writes(t.id)
           FROM (SELECT DISTINCT n.tenant_id AS id FROM new_rows n ORDER BY 1) t;
    END IF;
    -- A tenant at a time, its events as arrays: each statement below reads
    -- one tenant's rows, which Citus keeps on the tenant's worker, and
    -- Citus joins no transition table.
    FOR events IN
        SELECT n.tenant_id, array_agg(n.contact_id) AS contact_ids, array_agg(n.id) AS ids,
               array_agg(n.kind) AS kinds, array_agg(n.url) AS urls, array_agg(n.occurred_at) AS times,
               bool_or(n.kind = 'sent' AND n.campaign IS NOT NULL) AS sent
          FROM new_rows n GROUP BY n.tenant_id ORDER BY n.tenant_id
    LOOP
        tenant := events.tenant_id;
        -- Events after the contact's latest reset add their points; a reset
        -- or a back-dated event at or before it needs the contact's history.
        WITH scored AS (
            SELECT e.contact_id, e.id, e.kind, e.occurred_at,
                   coalesce(sum(r.points), 0)::integer AS points, coalesce(bool_or(r.reset), false) AS reset
              FROM unnest(events.contact_ids, events.ids, events.kinds, events.urls, events.times)
                   AS e(contact_id, id, kind, url, occurred_at)
              LEFT JOIN audience.scoring_rules r
                     ON r.tenant_id = tenant AND r.kind = e.kind
                    AND (r.url_pattern IS NULL OR strpos(audience.fold(e.url), audience.fold(r.url_pattern)) > 0)
             GROUP BY e.contact_id, e.id, e.kind, e.occurred_at
        ), per_contact AS (
            SELECT s.contact_id,
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
              LEFT JOIN audience.settings st ON st.tenant_id = tenant
             GROUP BY s.contact_id
        ), updated AS (
            UPDATE audience.contacts c
               SET engagement_score = CASE WHEN p.reset OR p.earliest <= c.score_reset_at THEN c.engagement_score
                                           ELSE c.engagement_score + p.points END,
                   event_count = c.event_count + p.events,
                   last_activity_at = greatest(c.last_activity_at, p.active),
                   last_opened_at = greatest(c.last_opened_at, p.opened),
                   last_clicked_at = greatest(c.last_clicked_at, p.clicked)
              FROM per_contact p
             WHERE c.tenant_id = tenant AND c.id = p.contact_id
            RETURNING c.id, p.reset OR p.earliest <= c.score_reset_at AS needs_history,
                      -- Unsubscribing is the contact's choice and outranks a bounce.
                      CASE WHEN p.unsubscribed AND c.status <> 'unsubscribed' THEN 'unsubscribed'
                           WHEN p.bounced AND NOT p.unsubscribed AND c.status = 'active' THEN 'bounced' END AS new_status
        )
        -- What else there is to do comes back with the update: an event
        -- statement of one row (track) runs no further query without need.
        SELECT array_agg(u.id) FILTER (WHERE u.needs_history),
               array_agg(u.id) FILTER (WHERE u.new_status IS NOT NULL),
               array_agg(u.new_status) FILTER (WHERE u.new_status IS NOT NULL)
          INTO contacts, status_contacts, statuses
          FROM updated u;

        -- Statuses in an update of their own, rarely needed: the one above
        -- sets no column the per-row normalisation trigger watches.
        IF statuses IS NOT NULL THEN
            UPDATE audience.contacts c SET status = x.status
              FROM unnest(status_contacts, statuses) x(id, status)
             WHERE c.tenant_id = tenant AND c.id = x.id;
        END IF;
        IF contacts IS NOT NULL THEN
            PERFORM audience.rescore(tenant, contacts);
        END IF;
        -- A new send changes the tenant's last campaign for everyone.
        IF events.sent THEN
            PERFORM audience.campaign_sent(tenant::text);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.events_inserted() IS 'Statement trigger: new events move their contacts'' scores, activity times, status and segment membership';

-- Stored membership becomes a row per contact (audience.contact_segments)
-- holding the numbers of its segments; audience.segment_members, the
-- table of a row per pair, becomes a view over it with the same columns.
-- Stored membership names segments by number: 4 bytes in a contact's
-- array instead of a 16-byte id.
CREATE SEQUENCE audience.segment_numbers AS integer;
COMMENT ON SEQUENCE audience.segment_numbers IS 'Numbers segments for stored membership';
SELECT pg_catalog.pg_extension_config_dump('audience.segment_numbers', '');
ALTER TABLE audience.segments ADD COLUMN number integer;
UPDATE audience.segments s SET number = n.number
  FROM (SELECT o.tenant_id, o.id, nextval('audience.segment_numbers')::integer AS number
          FROM (SELECT tenant_id, id FROM audience.segments ORDER BY tenant_id, created_at, id) o) n
 WHERE s.tenant_id = n.tenant_id AND s.id = n.id;
ALTER TABLE audience.segments ALTER COLUMN number SET DEFAULT nextval('audience.segment_numbers'),
                              ALTER COLUMN number SET NOT NULL,
                              ADD UNIQUE (tenant_id, number);
COMMENT ON COLUMN audience.segments.number IS 'The segment''s number in stored membership (audience.contact_segments)';

-- Stored membership: one row per contact that is or was in a list or
-- dynamic segment, holding the numbers of its segments. A bulk statement
-- that moves a contact between segments rewrites one narrow row, which
-- stays on its page (fillfactor) without touching an index: a row per
-- (segment, contact) cost four times the bytes, its two indexes a change
-- each, and a 100k-contact UPDATE with 50 segments 680 MB of WAL.
CREATE TABLE audience.contact_segments (
    tenant_id  uuid          NOT NULL DEFAULT audience.current_tenant(),
    contact_id uuid          NOT NULL,
    segments   integer[]     NOT NULL,
    added_at   timestamptz[] NOT NULL,
    -- No foreign key, as for events' maintenance: the maintenance triggers
    -- remove the rows of deleted contacts (logging the exits) and a
    -- trigger on segments the numbers of dropped segments.
    PRIMARY KEY (tenant_id, contact_id),
    CONSTRAINT contact_segments_parallel CHECK (cardinality(segments) = cardinality(added_at))
) WITH (fillfactor = 80);
COMMENT ON TABLE audience.contact_segments IS 'Stored membership, a row per contact: the numbers (segments.number) of the lists and dynamic segments it is in, sorted, and when it entered each';
COMMENT ON COLUMN audience.contact_segments.segments IS 'Numbers of the segments the contact is in (audience.segments.number), ascending';
COMMENT ON COLUMN audience.contact_segments.added_at IS 'When the contact entered each of those segments, in the same order';
SELECT pg_catalog.pg_extension_config_dump('audience.contact_segments', '');
INSERT INTO audience.contact_segments (tenant_id, contact_id, segments, added_at)
SELECT m.tenant_id, m.contact_id, array_agg(s.number ORDER BY s.number), array_agg(m.added_at ORDER BY s.number)
  FROM audience.segment_members m
  JOIN audience.segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id
 GROUP BY m.tenant_id, m.contact_id
 ORDER BY m.tenant_id, m.contact_id;
ALTER TABLE audience.contact_segments ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audience.contact_segments
    USING ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()))
    WITH CHECK ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()));
COMMENT ON POLICY tenant_isolation ON audience.contact_segments IS 'audience_user reads and writes rows of its current tenant only; audience_admin all';
DROP VIEW audience.segment_membership;
-- Out of the extension first, which also takes it off the tables pg_dump dumps.
ALTER EXTENSION audience DROP TABLE audience.segment_members;
DROP TABLE audience.segment_members;

CREATE VIEW audience.segment_members WITH (security_invoker = true) AS
    SELECT m.tenant_id, s.id AS segment_id, m.contact_id, u.added_at
      FROM audience.contact_segments m
     CROSS JOIN LATERAL unnest(m.segments, m.added_at) AS u(number, added_at)
      JOIN audience.segments s ON s.number = u.number AND s.tenant_id = m.tenant_id;
COMMENT ON VIEW audience.segment_members IS 'Stored membership of every list and dynamic segment, a row per (segment, contact), kept in step by triggers';
COMMENT ON COLUMN audience.segment_members.tenant_id IS 'The tenant of the segment and contact';
COMMENT ON COLUMN audience.segment_members.segment_id IS 'The segment''s id';
COMMENT ON COLUMN audience.segment_members.contact_id IS 'The contact''s id';
COMMENT ON COLUMN audience.segment_members.added_at IS 'When the contact entered the segment';

CREATE VIEW audience.segment_membership WITH (security_invoker = true) AS
    SELECT s.name AS segment, c.id AS contact_id, c.email, c.first_name, c.last_name, c.status,
           c.lead_status, c.score, audience.score_tier(c.score) AS tier, c.tags
      FROM audience.segment_members m
      JOIN audience.segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id
      JOIN audience.contacts c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id
     WHERE m.tenant_id = (SELECT audience.current_tenant());
COMMENT ON VIEW audience.segment_membership IS 'Stored members of every list and dynamic segment of the current tenant, one row per membership';

CREATE FUNCTION audience.merged_segments(segments integer[], entered integer[], exited integer[]) RETURNS integer[]
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'merged_segments_wrapper';
CREATE FUNCTION audience.merged_since(segments integer[], added_at timestamptz[], entered integer[], exited integer[],
                                      now timestamptz) RETURNS timestamptz[]
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'merged_since_wrapper';
COMMENT ON FUNCTION audience.merged_segments(integer[], integer[], integer[]) IS 'A contact''s segment numbers (audience.contact_segments) after it enters and leaves the given segments, ascending';
COMMENT ON FUNCTION audience.merged_since(integer[], timestamptz[], integer[], integer[], timestamptz) IS 'When a contact entered each of its segments after it enters (at now) and leaves the given segments: added_at beside merged_segments';
REVOKE EXECUTE ON FUNCTION audience.merged_segments(integer[], integer[], integer[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audience.merged_since(integer[], timestamptz[], integer[], integer[], timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION audience.segments_dropped() RETURNS trigger
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

CREATE OR REPLACE FUNCTION audience.in_segment(contact uuid, segment text) RETURNS boolean
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

-- A contact's segments, as one value and as rows (Rust: views call them
-- for every contact, on a Citus worker for its rows).
CREATE FUNCTION audience.segment_names(contact uuid) RETURNS text[]
STRICT STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'segment_names_wrapper';
CREATE OR REPLACE FUNCTION audience.segments_of(contact uuid) RETURNS SETOF text
STRICT STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'segments_of_wrapper';

CREATE OR REPLACE VIEW audience.contact_profile WITH (security_invoker = true) AS
    SELECT c.tenant_id, c.id, c.email, c.first_name, c.last_name, c.company, c.job_title, c.phone, c.phone_type,
           c.country, c.city, c.status, c.lead_status, c.source, c.assigned_to, c.score, c.reachability, c.tags,
           c.attributes, c.created_at, c.updated_at, c.last_activity_at, c.last_opened_at, c.last_clicked_at,
           c.fit_score, c.engagement_score, c.score_reset_at, c.event_count,
           audience.score_tier(c.score) AS tier,
           audience.segment_names(c.id) AS segments
      FROM audience.contacts c
     WHERE c.tenant_id = (SELECT audience.current_tenant());
COMMENT ON VIEW audience.contact_profile IS 'Contacts of the current tenant with their score tier and segments';

-- A channel per tenant for membership changes.
-- Each tenant's membership changes are announced on a channel of its own,
-- named after its id, which only roles that may select the tenant see.
CREATE FUNCTION audience.membership_channel(tenant uuid DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT 'audience_membership_' || replace(coalesce(tenant, audience.current_tenant())::text, '-', '') $$;
COMMENT ON FUNCTION audience.membership_channel(uuid) IS 'The NOTIFY channel announcing a tenant''s membership changes (the current tenant''s when null): LISTEN to it, then read audience.membership_changes';

-- The one write of stored membership is in Rust.
DROP FUNCTION audience.apply_memberships(uuid, uuid[], uuid[], uuid[], uuid[], uuid[], boolean);
CREATE FUNCTION audience.apply_memberships(tenant uuid, segments uuid[], entered_to uuid[], entered uuid[],
                                          exited_from uuid[], exited uuid[], known_new boolean DEFAULT false)
RETURNS TABLE (segment uuid, changes bigint)
STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'apply_memberships_wrapper';
REVOKE EXECUTE ON FUNCTION audience.apply_memberships(uuid, uuid[], uuid[], uuid[], uuid[], uuid[], boolean) FROM PUBLIC;
COMMENT ON FUNCTION audience.apply_memberships(uuid, uuid[], uuid[], uuid[], uuid[], uuid[], boolean) IS 'Adds and removes stored members of several segments in one write (segments: those written; entered_to/entered and exited_from/exited: parallel arrays of segment and contact; known_new: every pair moves, as the caller computed them holding the segments or created the contacts), logs the changes, keeps member_count and announces each segment''s changes on the tenant''s membership_channel; returns the changes per segment';

-- Integrity under odd but legal input: renames that would make a rule too
-- long are refused before anything changes, and rewrite fit rules too;
-- dropping a segment a fit rule uses is refused; the cycle check visits
-- each segment once; a fit rule may not read the score through segments;
-- one tenant's failure no longer stops the scheduled refresh of the
-- others; decay compares ages in seconds, whatever the session's time zone.
DROP FUNCTION audience.check_no_cycle(audience.segments, uuid[]);
CREATE FUNCTION audience.check_no_cycle(tenant uuid, segment uuid, refs uuid[]) RETURNS void
STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'check_no_cycle_wrapper';

-- Points of one event, shrunk by decay_percent for every full period of
-- its age at `decayed_at`. Ages and periods are compared in seconds: a
-- period subtracted from a timestamp depends on the session's time zone
-- (60 days across a change of summer time are an hour more or less), and
-- a score must not. Inlined into the queries below (STABLE: declared
-- IMMUTABLE it was run as a separate query for every statement).
CREATE OR REPLACE FUNCTION audience.decayed_points(points integer, occurred_at timestamptz, decayed_at timestamptz,
                                        percent integer, every interval) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN coalesce(percent, 0) = 0 OR decayed_at IS NULL
                  OR extract(epoch FROM decayed_at - occurred_at) < extract(epoch FROM every) THEN points
                ELSE round(points * power(1 - percent / 100.0,
                           floor(extract(epoch FROM decayed_at - occurred_at) / extract(epoch FROM every))))::integer
           END
$$;
COMMENT ON FUNCTION audience.decayed_points(integer, timestamptz, timestamptz, integer, interval) IS 'An event''s points after decay: minus percent for every full period of age at decayed_at';

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

CREATE OR REPLACE FUNCTION audience.refresh_all_tenants() RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    tenant record;
    changes bigint := 0;
    previous text := current_setting('audience.tenant', true);
BEGIN
    FOR tenant IN SELECT id, name FROM audience.tenants ORDER BY created_at LOOP
        -- One tenant's failure is logged and undone; the others go on.
        BEGIN
            PERFORM set_config('audience.tenant', tenant.id::text, true);
            changes := changes + audience.refresh();
            -- Decay ages scores at most daily: each run rescores the tenant.
            IF EXISTS (SELECT FROM audience.settings s
                        WHERE s.tenant_id = tenant.id AND s.decay_percent > 0
                          AND (s.decayed_at IS NULL OR now() - s.decayed_at >= least(s.decay_every, interval '1 day'))) THEN
                PERFORM audience.apply_decay();
            END IF;
            PERFORM audience.purge_forgotten();
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'refreshing tenant "%" failed: %', tenant.name, SQLERRM
                USING DETAIL = format('SQLSTATE %s; the other tenants were refreshed.', SQLSTATE);
        END;
    END LOOP;
    PERFORM set_config('audience.tenant', coalesce(previous, ''), true);
    RETURN changes;
END
$$;
COMMENT ON FUNCTION audience.refresh_all_tenants() IS 'Refreshes every dynamic segment of every tenant, applies due score decay and removes forgotten contacts'' history (a tenant that fails is logged as a WARNING and skipped); what schedule_refresh runs';

-- Erasing a contact takes its address out of import reports too.
CREATE OR REPLACE FUNCTION audience.forget_contact(email text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    forgotten uuid;
    address text;
BEGIN
    DELETE FROM audience.contacts c
     WHERE c.tenant_id = audience.current_tenant()
       AND c.email = audience.normalize_email(forget_contact.email)
    RETURNING c.id, c.email INTO forgotten, address;
    IF forgotten IS NULL THEN
        RETURN false;
    END IF;
    -- Events and memberships went with the contact; its history leaves
    -- audience.membership_changes now and the log at the next purge.
    INSERT INTO audience.forgotten_contacts (tenant_id, contact_id) VALUES (audience.current_tenant(), forgotten);
    DELETE FROM audience.snapshot_members m WHERE m.tenant_id = audience.current_tenant() AND m.contact_id = forgotten;
    -- Import reports quote rejected values: the address leaves them too.
    UPDATE audience.imports i
       SET errors = (SELECT jsonb_agg(CASE WHEN audience.fold(btrim(e->>'value')) = audience.fold(address)
                                           THEN jsonb_set(e, '{value}', 'null') ELSE e END ORDER BY n)
                       FROM jsonb_array_elements(i.errors) WITH ORDINALITY x(e, n))
     WHERE i.tenant_id = audience.current_tenant()
       AND EXISTS (SELECT FROM jsonb_array_elements(i.errors) e WHERE audience.fold(btrim(e->>'value')) = audience.fold(address));
    RETURN true;
END
$$;
COMMENT ON FUNCTION audience.forget_contact(text) IS 'Erases a contact and everything held on it: events, memberships, membership history, snapshots, its address in import reports; false when there was none';

-- Segment and fit rule names are at most 200 characters.
CREATE OR REPLACE FUNCTION audience.check_segment_name(name text, except_id uuid DEFAULT NULL) RETURNS text
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

CREATE OR REPLACE FUNCTION audience.set_fit_score(name text, rule audience.rule, points integer) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
    checked text := audience.checked_name('fit rule', name);
BEGIN
    IF rule IS NULL OR points IS NULL OR points NOT BETWEEN -10000 AND 10000 THEN
        RAISE EXCEPTION 'a fit rule needs a rule and points between -10000 and 10000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audience.check_fit_rule(rule);
    PERFORM audience.lock_rules(tenant, true);
    DELETE FROM audience.fit_rules f WHERE f.tenant_id = tenant AND audience.fold(f.name) = audience.fold(checked);
    INSERT INTO audience.fit_rules (tenant_id, name, rule, points) VALUES (tenant, checked, rule, points);
    RETURN audience.maintain_fit(tenant::text, NULL);
END
$$;
COMMENT ON FUNCTION audience.set_fit_score(text, audience.rule, integer) IS 'Adds points to the score of every contact matching the rule (replacing a fit rule of that name); returns how many contacts changed';

-- One case folding for every comparison of tags, names, rule values,
-- search terms and URL patterns: audience.fold, the same function in Rust
-- and SQL (lower() and Rust's to_lowercase differ outside ASCII).
CREATE FUNCTION audience.fold(text text) RETURNS text
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'fold_wrapper';
DO $folding$
DECLARE
    clash record;
BEGIN
    SELECT t.name AS tenant, string_agg(s.name, ', ') AS names INTO clash
      FROM audience.segments s JOIN audience.tenants t ON t.id = s.tenant_id
     GROUP BY t.name, s.tenant_id, audience.fold(s.name) HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'segments % of tenant "%" differ only in case', clash.names, clash.tenant
            USING ERRCODE = 'unique_violation',
                  HINT = 'Rename one of them with audience.update_segment before updating the extension.';
    END IF;
END
$folding$;
DROP INDEX audience.segments_name;
CREATE UNIQUE INDEX segments_name ON audience.segments (tenant_id, audience.fold(name));
COMMENT ON INDEX audience.segments_name IS 'Segment names are unique per tenant, case-insensitively';
DROP INDEX audience.fit_rules_name;
CREATE UNIQUE INDEX fit_rules_name ON audience.fit_rules (tenant_id, audience.fold(name));
COMMENT ON INDEX audience.fit_rules_name IS 'Fit rule names are unique per tenant, in any case';
DROP INDEX audience.scoring_rules_kind;
CREATE UNIQUE INDEX scoring_rules_kind ON audience.scoring_rules (tenant_id, kind, (coalesce(audience.fold(url_pattern), '')));
COMMENT ON INDEX audience.scoring_rules_kind IS 'One rule per tenant, kind and url pattern';

-- A rule referring to a clock-based segment is time-relative too: whether
-- a rule is depends on the current tenant's segments.
ALTER FUNCTION audience.rule_is_time_relative(audience.rule) STABLE;

-- The member count of Everyone counts every contact of its tenant, kept by
-- the contacts statement trigger (it read 0).
UPDATE audience.segments s
   SET member_count = (SELECT count(*) FROM audience.contacts c WHERE c.tenant_id = s.tenant_id)
 WHERE s.kind = 'everyone';
COMMENT ON COLUMN audience.segments.member_count IS 'How many members: of a list or dynamic segment, its stored members (kept in step with segment_members); of Everyone, every contact of the tenant';

CREATE OR REPLACE FUNCTION audience.count(segment text) RETURNS bigint
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

-- Views BI tools read use only types their drivers know: the rule as text,
-- the importing role's name as text.
DROP VIEW audience.segment_overview;
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
DROP VIEW audience.import_progress;
CREATE VIEW audience.import_progress AS
SELECT p.pid, a.usename::text AS imported_by, a.query_start AS started_at,
       p.bytes_processed AS bytes_read, p.bytes_total,
       round(100.0 * p.bytes_processed / nullif(p.bytes_total, 0), 1) AS percent,
       p.tuples_processed AS rows_done, p.tuples_excluded AS rows_rejected
  FROM pg_catalog.pg_stat_progress_copy p
  JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
 WHERE p.relid = 'audience.contacts'::regclass AND p.type = 'CALLBACK';
COMMENT ON VIEW audience.import_progress IS 'One row per running import (of any session), with bytes and rows done';
COMMENT ON COLUMN audience.contacts.tenant_id IS 'The tenant the contact belongs to';
COMMENT ON COLUMN audience.contacts.id IS 'The contact''s id (time-ordered uuid)';
COMMENT ON COLUMN audience.contacts.email IS 'Trimmed, lower-cased, validated on every write';
COMMENT ON COLUMN audience.contacts.first_name IS 'First name';
COMMENT ON COLUMN audience.contacts.last_name IS 'Last name';
COMMENT ON COLUMN audience.contacts.company IS 'Company';
COMMENT ON COLUMN audience.contacts.job_title IS 'Job title';
COMMENT ON COLUMN audience.contacts.city IS 'City';
COMMENT ON COLUMN audience.contacts.assigned_to IS 'Who owns the contact (a user of the application)';
COMMENT ON COLUMN audience.contacts.created_at IS 'When the contact was created';
COMMENT ON COLUMN audience.contacts.updated_at IS 'When the contact was last changed';
COMMENT ON COLUMN audience.contacts.last_activity_at IS 'When the contact''s latest event happened';
COMMENT ON COLUMN audience.contacts.last_opened_at IS 'When the contact last opened an email';
COMMENT ON COLUMN audience.contacts.last_clicked_at IS 'When the contact last clicked a link';
COMMENT ON COLUMN audience.contacts.phone IS 'E.164 when the number parses (read in the contact''s country), else as given';
COMMENT ON COLUMN audience.contacts.phone_type IS 'mobile, landline, voip or unknown, derived from the number';
COMMENT ON COLUMN audience.contacts.country IS 'ISO 3166-1 alpha-2, upper case';
COMMENT ON COLUMN audience.contacts.status IS 'active, unsubscribed or bounced';
COMMENT ON COLUMN audience.contacts.lead_status IS 'new, nurture, hot, warm or cold';
COMMENT ON COLUMN audience.contacts.source IS 'Where the contact came from: manual, csv_import, api, form, website, facebook or another lower-case word';
COMMENT ON COLUMN audience.contacts.score IS 'Lead score: fit_score + engagement_score, kept by triggers';
COMMENT ON COLUMN audience.contacts.fit_score IS 'Points from the tenant''s fit rules the contact matches (audience.set_fit_score)';
COMMENT ON COLUMN audience.contacts.engagement_score IS 'Points of the contact''s events since its last reset event, decayed as of the last audience.apply_decay';
COMMENT ON COLUMN audience.contacts.score_reset_at IS 'When the contact''s latest reset event (unsubscribed, by default) happened';
COMMENT ON COLUMN audience.contacts.event_count IS 'How many events the contact has; every event statement moves it, so engagement segments follow';
COMMENT ON COLUMN audience.contacts.reachability IS 'Validation/quality score, 0 to 100';
COMMENT ON COLUMN audience.contacts.tag_keys IS 'The tags folded to lower case, as tag conditions compare them: stored, so a tag condition costs no function call per contact';
COMMENT ON COLUMN audience.contacts.tags IS 'Tags; compared case-insensitively, never twice on one contact';
COMMENT ON COLUMN audience.contacts.attributes IS 'Custom field values, checked against audience.fields';

CREATE OR REPLACE FUNCTION audience.untag(contact uuid, VARIADIC tags text[]) RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    untagged text[];
BEGIN
    UPDATE audience.contacts c
       SET tags = ARRAY(SELECT t FROM unnest(c.tags) t
                         WHERE audience.fold(btrim(t)) <> ALL (audience.tag_keys(untag.tags)))
     WHERE c.tenant_id = audience.current_tenant() AND c.id = audience.require_contact(contact)
    RETURNING c.tags INTO untagged;
    RETURN untagged;
END
$$;
COMMENT ON FUNCTION audience.untag(uuid, text[]) IS 'Removes tags from a contact (case-insensitive); returns its tags';

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
       SET tags = ARRAY(SELECT CASE WHEN audience.fold(btrim(t)) = audience.fold(btrim(old)) THEN btrim(new) ELSE t END
                          FROM unnest(c.tags) WITH ORDINALITY u(t, n) ORDER BY n)
     WHERE c.tenant_id = audience.current_tenant()
       AND c.tag_keys @> ARRAY[audience.fold(btrim(old))];
    GET DIAGNOSTICS renamed = ROW_COUNT;
    RETURN renamed;
END
$$;
COMMENT ON FUNCTION audience.rename_tag(text, text) IS 'Renames a tag on every contact of the tenant (merging with an existing tag of the new name); returns how many contacts changed';

CREATE OR REPLACE FUNCTION audience.search(query text) RETURNS SETOF audience.contacts
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    terms jsonb;
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    -- Resolve every field first so an unknown one fails before any row is read.
    SELECT coalesce(jsonb_agg(CASE WHEN t->>'kind' = 'field'
                                   THEN t || jsonb_build_object('field', audience.search_field(t->>'field'))
                                   ELSE t END), '[]')
      INTO terms
      FROM jsonb_array_elements(audience.search_terms(query)) t;
    RETURN QUERY
    SELECT c.* FROM audience.contacts c
     WHERE c.tenant_id = tenant
       AND NOT EXISTS (
           SELECT FROM jsonb_array_elements(terms) t
            WHERE NOT coalesce(CASE t->>'kind'
                WHEN 'tag' THEN c.tag_keys @> ARRAY[audience.fold(btrim(t->>'value'))]
                WHEN 'word' THEN
                    strpos(audience.fold(concat_ws(' ', c.email, c.first_name, c.last_name, c.company)), audience.fold(t->>'value')) > 0
                ELSE audience.fold(CASE WHEN t->>'field' LIKE 'custom.%'
                                THEN c.attributes ->> substr(t->>'field', 8)
                                ELSE to_jsonb(c) ->> (t->>'field') END) = audience.fold(t->>'value')
            END, false))
     ORDER BY c.email;
END
$$;
COMMENT ON FUNCTION audience.search(text) IS 'Contacts matching every term: field:value (standard or custom), tag:X, and free words in email, names and company; quote values with spaces';

CREATE OR REPLACE VIEW audience.tag_summary WITH (security_invoker = true) AS
    SELECT min(t) AS tag, count(*) AS contacts
      FROM audience.contacts c, unnest(c.tags) t
     WHERE c.tenant_id = (SELECT audience.current_tenant())
     GROUP BY audience.fold(btrim(t))
     ORDER BY count(*) DESC, min(t);

CREATE OR REPLACE FUNCTION audience.find_segment(name text) RETURNS audience.segments
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

CREATE OR REPLACE FUNCTION audience.tag_segment(segment text, tag text) RETURNS bigint
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

CREATE OR REPLACE FUNCTION audience.engagement_history(tenant uuid, contacts uuid[] DEFAULT NULL)
RETURNS TABLE (contact_id uuid, points bigint, reset_at timestamptz, events bigint)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    -- PL/pgSQL, not SQL: Citus plans no statement of a SQL function that
    -- reads its arguments.
    RETURN QUERY
    WITH scored AS (
        SELECT e.contact_id, e.id, e.occurred_at,
               coalesce(sum(r.points), 0)::integer AS points, coalesce(bool_or(r.reset), false) AS reset
          FROM audience.events e
          LEFT JOIN audience.scoring_rules r
                 ON r.tenant_id = e.tenant_id AND r.kind = e.kind
                AND (r.url_pattern IS NULL OR strpos(audience.fold(e.url), audience.fold(r.url_pattern)) > 0)
         WHERE e.tenant_id = tenant AND (contacts IS NULL OR e.contact_id = ANY (contacts))
         GROUP BY e.contact_id, e.id, e.occurred_at
    ), last_reset AS (
        SELECT DISTINCT ON (s.contact_id) s.contact_id, s.occurred_at, s.id
          FROM scored s WHERE s.reset
         ORDER BY s.contact_id, s.occurred_at DESC, s.id DESC
    )
    SELECT s.contact_id,
           coalesce(sum(audience.decayed_points(s.points, s.occurred_at, st.decayed_at, st.decay_percent, st.decay_every))
                        FILTER (WHERE r.contact_id IS NULL OR (s.occurred_at, s.id) > (r.occurred_at, r.id)), 0),
           r.occurred_at,
           count(*)
      FROM scored s
      LEFT JOIN last_reset r ON r.contact_id = s.contact_id
      LEFT JOIN audience.settings st ON st.tenant_id = tenant
     GROUP BY s.contact_id, r.occurred_at;
END
$$;
COMMENT ON FUNCTION audience.engagement_history(uuid, uuid[]) IS 'Engagement points, latest reset and event count of contacts (all when null), from their event history';

CREATE OR REPLACE FUNCTION audience.set_score(kind text, points integer, url_pattern text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
    checked text := audience.check_event_kind(kind);
    pattern text := nullif(btrim(url_pattern), '');
BEGIN
    IF points IS NULL OR points NOT BETWEEN -10000 AND 10000 THEN
        RAISE EXCEPTION 'points must be between -10000 and 10000, not %', coalesce(points::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF url_pattern IS NOT NULL AND pattern IS NULL THEN
        RAISE EXCEPTION 'an empty url pattern matches every url'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass null to score every event of the kind.';
    END IF;
    DELETE FROM audience.scoring_rules r
     WHERE r.tenant_id = tenant AND r.kind = checked AND coalesce(audience.fold(r.url_pattern), '') = coalesce(audience.fold(pattern), '');
    INSERT INTO audience.scoring_rules (tenant_id, kind, url_pattern, points, reset) VALUES (tenant, checked, pattern, points, false);
    PERFORM audience.rescore(tenant);
END
$$;
COMMENT ON FUNCTION audience.set_score(text, integer, text) IS 'Points for events of a kind (whose url contains url_pattern, when given); rescores the tenant';

CREATE OR REPLACE FUNCTION audience.drop_fit_score(name text) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    PERFORM audience.lock_rules(tenant, true);
    DELETE FROM audience.fit_rules f WHERE f.tenant_id = tenant AND audience.fold(f.name) = audience.fold(btrim(drop_fit_score.name));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown fit rule "%"', name
            USING ERRCODE = 'undefined_object', HINT = 'audience.fit_rules lists them.';
    END IF;
    RETURN audience.maintain_fit(tenant::text, NULL);
END
$$;
COMMENT ON FUNCTION audience.drop_fit_score(text) IS 'Removes a fit rule and its points; returns how many contacts changed';

CREATE OR REPLACE FUNCTION audience.import_list(name text) RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    wanted text := coalesce(nullif(btrim(name), ''), 'Import ' || to_char(now(), 'YYYY-MM-DD HH24:MI:SS'));
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    IF NOT EXISTS (SELECT FROM audience.segments s
                    WHERE s.tenant_id = tenant AND audience.fold(s.name) = audience.fold(wanted)) THEN
        BEGIN
            PERFORM audience.create_list(wanted, 'Contacts imported from CSV');
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent import created it first and has committed.
        END;
    END IF;
    RETURN (audience.find_list(wanted)).name;
END
$$;
COMMENT ON FUNCTION audience.import_list(text) IS 'The static list an import adds its contacts to, created when missing';

-- Imports return their report directly (it was read back from audience.imports),
-- and read CSV text or bytes, CSV files on the server and workbooks through
-- one pipeline.
CREATE FUNCTION audience.import_contacts(form text, data bytea, path text, options jsonb)
RETURNS TABLE (import_id uuid, rows bigint, inserted bigint, updated bigint, unchanged bigint, rejected bigint, segment text, errors jsonb)
LANGUAGE c AS 'MODULE_PATHNAME', 'import_contacts_wrapper';
COMMENT ON TABLE audience.imports IS 'The report of every import';

-- Every import function runs the one pipeline through this.
CREATE FUNCTION audience.run_import(form text, data bytea, path text, options jsonb) RETURNS audience.import_report
LANGUAGE plpgsql
AS $$
DECLARE
    report audience.import_report;
BEGIN
    -- A deadlock with a concurrent writer (possible once an import spans
    -- several batches) rolls back this attempt, which frees the other
    -- writer, and the import starts over.
    FOR attempt IN 1..3 LOOP
        BEGIN
            SELECT r.* INTO report FROM audience.import_contacts(form, data, path, coalesce(options, '{}')) r;
            EXIT;
        EXCEPTION WHEN deadlock_detected THEN
            IF attempt = 3 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
    RETURN report;
END
$$;
COMMENT ON FUNCTION audience.run_import(text, bytea, text, jsonb) IS 'Runs an import (csv or workbook data, or a csv_file or workbook_file path), starting over after a deadlock (for the import functions)';

CREATE OR REPLACE FUNCTION audience.import_csv(data bytea, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('csv', data, NULL, options) $$;
COMMENT ON FUNCTION audience.import_csv(bytea, jsonb) IS 'Imports contacts from CSV bytes in the encoding option''s encoding (utf8, latin1, windows-1252); good rows are written, bad rows reported';

CREATE OR REPLACE FUNCTION audience.import_csv(data text, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(options, '{}') ? 'encoding' AND lower(options->>'encoding') NOT IN ('utf8', 'utf-8') THEN
        RAISE EXCEPTION 'text is already decoded: the encoding option applies to bytea input'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the file''s bytes, e.g. pg_read_binary_file(…) or a bytea parameter.';
    END IF;
    RETURN audience.run_import('csv', convert_to(data, 'UTF8'), NULL, options);
END
$$;
COMMENT ON FUNCTION audience.import_csv(text, jsonb) IS 'Imports contacts from CSV text; good rows are written, bad rows reported';

CREATE FUNCTION audience.import_csv_file(path text, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('csv_file', NULL, path, options) $$;
COMMENT ON FUNCTION audience.import_csv_file(text, jsonb) IS 'Imports contacts from a CSV file on the database server, read in batches (superusers and members of pg_read_server_files)';

CREATE FUNCTION audience.import_xlsx(data bytea, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('workbook', data, NULL, options) $$;
COMMENT ON FUNCTION audience.import_xlsx(bytea, jsonb) IS 'Imports contacts from a sheet of an Excel (.xlsx, .xls) or OpenDocument (.ods) workbook: the first, or the sheet option''s';

CREATE FUNCTION audience.import_xlsx_file(path text, options jsonb DEFAULT '{}') RETURNS audience.import_report
LANGUAGE sql
AS $$ SELECT audience.run_import('workbook_file', NULL, path, options) $$;
COMMENT ON FUNCTION audience.import_xlsx_file(text, jsonb) IS 'Imports contacts from a workbook file on the database server (superusers and members of pg_read_server_files)';

-- Query segments: members are the contact ids a read-only SELECT returns,
-- run as the role that defined the segment.
ALTER TABLE audience.segments
    DROP CONSTRAINT segments_kind_check,
    ADD CONSTRAINT segments_kind_check CHECK (kind IN ('static', 'dynamic', 'everyone', 'query')),
    ADD COLUMN query text,
    ADD COLUMN query_role regrole,
    ADD CONSTRAINT segments_query CHECK ((kind = 'query') = (query IS NOT NULL AND query_role IS NOT NULL));
CREATE FUNCTION audience.create_query_segment(name text, query text, description text DEFAULT NULL) RETURNS uuid
LANGUAGE c AS 'MODULE_PATHNAME', 'create_query_segment_wrapper';
COMMENT ON TABLE audience.segments IS 'Static lists, dynamic rule-based segments, query segments and the built-in Everyone segment';
COMMENT ON COLUMN audience.segments.query IS 'The SELECT of a query segment: its members are the contact ids it returns';
COMMENT ON COLUMN audience.segments.query_role IS 'The role that defined a query segment, which its query always runs as';

CREATE OR REPLACE FUNCTION audience.duplicate_segment(name text, new_name text) RETURNS uuid
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
CREATE OR REPLACE FUNCTION audience.member_ids(segment audience.segments) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY EXECUTE 'SELECT id FROM ' || audience.member_source(segment) || ' members';
END
$$;
COMMENT ON FUNCTION audience.member_ids(audience.segments) IS 'Ids of a segment''s members at this moment';
CREATE FUNCTION audience.intersections(sets integer[], numbers integer[], members uuid[])
RETURNS TABLE (a integer, b integer, in_both bigint)
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'intersections_wrapper';

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

-- Published segment views, for BI tools (SPEC 7): one view per published
-- segment in schema audience_views, security_invoker (Row Level Security
-- applies to whoever reads it), with the members' profile columns and the
-- tenant's custom fields as typed columns. A view names its segment by id
-- and reads members through audience.segment_member_ids (Rust, in
-- src/api/membership/reads.rs), so renames and rule edits leave it valid;
-- new custom fields are added to it; dropping the segment drops it. Views are created by the extension's owner, never from the
-- caller's text: names are quoted identifiers.
CREATE SCHEMA audience_views;
COMMENT ON SCHEMA audience_views IS 'Published segment views (audience.publish_segment), for BI tools';
GRANT USAGE ON SCHEMA audience_views TO audience_user, audience_reader;

CREATE TABLE audience.publications (
    tenant_id    uuid        NOT NULL DEFAULT audience.current_tenant(),
    segment_id   uuid        NOT NULL,
    view_name    text        NOT NULL UNIQUE,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, segment_id)
);
COMMENT ON TABLE audience.publications IS 'Which segment each view in audience_views shows (kept with the segment by the segments_dropped trigger)';
COMMENT ON COLUMN audience.publications.view_name IS 'The view''s name in schema audience_views';
SELECT pg_catalog.pg_extension_config_dump('audience.publications', '');

-- The members of one of the current tenant's segments, by id: what
-- published views read.
CREATE FUNCTION audience.segment_member_ids(segment uuid) RETURNS SETOF uuid
STRICT STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'segment_member_ids_wrapper';

-- The columns of a tenant's published views, in order, with their SQL over
-- contacts c and their comments: the profile, then the custom fields,
-- typed, in the order they were defined (so that a new one is added at the
-- end, where CREATE OR REPLACE VIEW may add columns). PL/pgSQL: under
-- Citus, a SQL function's query of fields could not be routed by its
-- parameter.
CREATE FUNCTION audience.published_columns(tenant uuid)
RETURNS TABLE (name text, expression text, description text, n bigint)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY
    WITH profile(name, expression, description, n) AS (VALUES ('id', 'c.id', 'The contact''s id', 1),
           ('email', 'c.email', 'Email address, lower case', 2),
           ('first_name', 'c.first_name', 'First name', 3),
           ('last_name', 'c.last_name', 'Last name', 4),
           ('company', 'c.company', 'Company', 5),
           ('job_title', 'c.job_title', 'Job title', 6),
           ('phone', 'c.phone', 'Phone number, E.164 when it parses', 7),
           ('country', 'c.country', 'ISO 3166-1 alpha-2 country code', 8),
           ('city', 'c.city', 'City', 9),
           ('status', 'c.status', 'active, unsubscribed or bounced', 10),
           ('lead_status', 'c.lead_status', 'new, nurture, hot, warm or cold', 11),
           ('source', 'c.source', 'Where the contact came from', 12),
           ('assigned_to', 'c.assigned_to', 'Owner of the contact', 13),
           ('score', 'c.score', 'Lead score: fit plus engagement points', 14),
           ('tier', 'audience.score_tier(c.score)', 'hot, warm or cold, from the score and the tenant''s thresholds', 15),
           ('reachability', 'c.reachability', 'Validation/quality score, 0 to 100', 16),
           ('tags', 'c.tags', 'Tags', 17),
           ('created_at', 'c.created_at', 'When the contact was created', 18),
           ('updated_at', 'c.updated_at', 'When the contact was last changed', 19),
           ('last_activity_at', 'c.last_activity_at', 'When the contact''s latest event happened', 20))
    SELECT p.name, p.expression, p.description, p.n::bigint FROM profile p
    UNION ALL
    -- A custom field named like a profile column, or like one with the
    -- prefix (custom_tier beside tier), gains a prefix, so that no two
    -- columns share a name: tier → custom_tier, custom_tier → custom_custom_tier.
    SELECT CASE WHEN regexp_replace(f.name, '^(custom_)+', '') IN (SELECT q.name FROM profile q)
                THEN 'custom_' || f.name ELSE f.name END,
           format('(c.attributes ->> %L)::%s', f.name, CASE f.type WHEN 'number' THEN 'numeric' ELSE f.type END),
           format('Custom field %s (%s)%s', f.name, f.type, CASE WHEN f.label IS DISTINCT FROM f.name THEN ': ' || f.label ELSE '' END),
           (SELECT count(*) FROM profile) + row_number() OVER (ORDER BY f.created_at, f.name)
      FROM audience.fields f WHERE f.tenant_id = tenant;
END
$$;
COMMENT ON FUNCTION audience.published_columns(uuid) IS 'The columns of a tenant''s published segment views, in order: name, SQL expression over contacts c, comment';

-- Creates or replaces the view `view_name` of a tenant's segment, with
-- every column commented.
CREATE FUNCTION audience.write_published_view(tenant uuid, segment uuid, view_name text, replace boolean)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    shown record;
    columns text;
    created regclass;
BEGIN
    SELECT string_agg(format('%s AS %I', p.expression, p.name), ', ' ORDER BY p.n) INTO columns
      FROM audience.published_columns(tenant) p;
    EXECUTE format($view$
        CREATE %s VIEW audience_views.%I WITH (security_invoker = true) AS
        SELECT %s
          FROM audience.contacts c
         WHERE c.tenant_id = %L::uuid
           AND c.id IN (SELECT audience.segment_member_ids(%L::uuid))
        $view$, CASE WHEN replace THEN 'OR REPLACE' ELSE '' END, view_name, columns, tenant, segment);
    created := format('audience_views.%I', view_name)::regclass;
    EXECUTE format('GRANT SELECT ON %s TO audience_user, audience_reader', created);
    EXECUTE format('COMMENT ON VIEW %s IS %L', created,
                   (SELECT format('Members of segment "%s" now, with their profile and custom fields (audience.publish_segment)', s.name)
                      FROM audience.segments s WHERE s.tenant_id = tenant AND s.id = segment));
    FOR shown IN SELECT p.name, p.description FROM audience.published_columns(tenant) p LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', created, shown.name, shown.description);
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION audience.write_published_view(uuid, uuid, text, boolean) IS 'Creates (or replaces) a published segment view with its grants and comments (for publish_segment and new custom fields)';

CREATE FUNCTION audience.publish_segment(segment text, view_name text DEFAULT NULL) RETURNS regclass
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
    wanted text := coalesce(btrim(view_name),
                            nullif(btrim(regexp_replace(lower(found.name), '[^a-z0-9]+', '_', 'g'), '_'), ''),
                            'segment_' || replace(found.id::text, '-', ''));
    existing text;
    created regclass;
BEGIN
    IF wanted = '' OR octet_length(wanted) >= 64 THEN
        RAISE EXCEPTION 'invalid view name "%"', wanted
            USING ERRCODE = 'invalid_name',
                  HINT = 'A view name is 1 to 63 bytes; it is created in schema audience_views and quoted as needed.';
    END IF;
    SELECT p.view_name INTO existing FROM audience.publications p
     WHERE p.tenant_id = found.tenant_id AND p.segment_id = found.id;
    IF existing IS NOT NULL THEN
        RAISE EXCEPTION 'segment "%" is already published as audience_views.%', found.name, quote_ident(existing)
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Unpublish it first with audience.unpublish_segment to publish it under another name.';
    END IF;
    IF to_regclass(format('audience_views.%I', wanted)) IS NOT NULL THEN
        RAISE EXCEPTION 'a view named audience_views.% exists already', quote_ident(wanted)
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Give another name: audience.publish_segment(segment, view_name).';
    END IF;
    created := audience.write_published_view(found.tenant_id, found.id, wanted, false);
    INSERT INTO audience.publications (tenant_id, segment_id, view_name) VALUES (found.tenant_id, found.id, wanted);
    RETURN created;
END
$$;
COMMENT ON FUNCTION audience.publish_segment(text, text) IS 'Publishes a segment as a view in schema audience_views (named after the segment unless given) with its members'' profile and custom fields, for BI tools; returns the view';

CREATE FUNCTION audience.unpublish_segment(segment text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    found audience.segments := audience.find_segment(segment);
    dropped text;
BEGIN
    DELETE FROM audience.publications p WHERE p.tenant_id = found.tenant_id AND p.segment_id = found.id
    RETURNING p.view_name INTO dropped;
    IF dropped IS NOT NULL THEN
        EXECUTE format('DROP VIEW IF EXISTS audience_views.%I', dropped);
    END IF;
    RETURN dropped IS NOT NULL;
END
$$;
COMMENT ON FUNCTION audience.unpublish_segment(text) IS 'Drops the published view of a segment; false when it had none';

CREATE VIEW audience.published_views WITH (security_invoker = true) AS
    SELECT s.name AS segment, p.view_name, format('audience_views.%I', p.view_name) AS qualified_name, p.published_at
      FROM audience.publications p
      JOIN audience.segments s ON s.tenant_id = p.tenant_id AND s.id = p.segment_id
     WHERE p.tenant_id = (SELECT audience.current_tenant())
     ORDER BY p.view_name;
COMMENT ON VIEW audience.published_views IS 'The current tenant''s published segment views';
COMMENT ON COLUMN audience.published_views.segment IS 'The segment the view shows';
COMMENT ON COLUMN audience.published_views.view_name IS 'The view''s name in schema audience_views';
COMMENT ON COLUMN audience.published_views.qualified_name IS 'The view''s name with its schema, quoted as needed, to select from';
COMMENT ON COLUMN audience.published_views.published_at IS 'When the segment was published';

-- A new custom field becomes a column of the tenant's published views.
CREATE FUNCTION audience.fields_published() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    -- As values: Citus joins no transition table.
    tenants uuid[] := ARRAY(SELECT DISTINCT n.tenant_id FROM new_rows n);
BEGIN
    PERFORM audience.write_published_view(p.tenant_id, p.segment_id, p.view_name, true)
       FROM audience.publications p WHERE p.tenant_id = ANY (tenants);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.fields_published() IS 'Statement trigger: new custom fields become columns of the tenant''s published views';
CREATE TRIGGER fields_published AFTER INSERT ON audience.fields
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.fields_published();

-- Dropped segments (also with their tenant) take their published views.
CREATE FUNCTION audience.publications_dropped() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    dropped text;
    -- As values: Citus joins no transition table.
    tenants uuid[] := ARRAY(SELECT o.tenant_id FROM old_rows o ORDER BY o.tenant_id, o.id);
    segments uuid[] := ARRAY(SELECT o.id FROM old_rows o ORDER BY o.tenant_id, o.id);
BEGIN
    -- Written only when there is something to drop: under Citus the
    -- publications are a copy on every node, which a trigger on a worker
    -- may read but not write.
    IF NOT EXISTS (SELECT FROM audience.publications p, unnest(tenants, segments) o(tenant_id, id)
                    WHERE p.tenant_id = o.tenant_id AND p.segment_id = o.id) THEN
        RETURN NULL;
    END IF;
    FOR dropped IN
        DELETE FROM audience.publications p USING unnest(tenants, segments) o(tenant_id, id)
         WHERE p.tenant_id = o.tenant_id AND p.segment_id = o.id
        RETURNING p.view_name
    LOOP
        EXECUTE format('DROP VIEW IF EXISTS audience_views.%I', dropped);
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.publications_dropped() IS 'Statement trigger: dropped segments take their published views';
CREATE TRIGGER publications_dropped AFTER DELETE ON audience.segments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.publications_dropped();

--------------------------------------------------------------------------
-- Column comments of the views, which BI tools show beside each column
--------------------------------------------------------------------------
COMMENT ON COLUMN audience.contact_profile.tier IS 'hot, warm or cold, from the score and the tenant''s thresholds';
COMMENT ON COLUMN audience.contact_profile.segments IS 'Names of the segments the contact is in now';
COMMENT ON COLUMN audience.segment_membership.segment IS 'The segment''s name';
COMMENT ON COLUMN audience.segment_membership.contact_id IS 'The contact''s id';
COMMENT ON COLUMN audience.segment_membership.tier IS 'hot, warm or cold, from the score and the tenant''s thresholds';
COMMENT ON COLUMN audience.segment_overview.name IS 'The segment''s name, unique per tenant in any case';
COMMENT ON COLUMN audience.segment_overview.description IS 'What the segment is for';
COMMENT ON COLUMN audience.segment_overview.kind IS 'everyone, static (a list), dynamic (a rule) or query (a SELECT)';
COMMENT ON COLUMN audience.segment_overview.members IS 'How many contacts are in it now';
COMMENT ON COLUMN audience.segment_overview.created_at IS 'When the segment was created';
COMMENT ON COLUMN audience.segment_overview.updated_at IS 'When its name, rule or description last changed';
COMMENT ON COLUMN audience.segment_overview.refreshed_at IS 'When its membership was last recomputed from its rule or query';
COMMENT ON COLUMN audience.segment_overview.rule IS 'The rule of a dynamic segment, in the rule language';
COMMENT ON COLUMN audience.tag_summary.tag IS 'The tag, as first spelled';
COMMENT ON COLUMN audience.tag_summary.contacts IS 'How many contacts hold it';
COMMENT ON COLUMN audience.score_distribution.tier IS 'hot, warm or cold';
COMMENT ON COLUMN audience.score_distribution.contacts IS 'How many contacts are in the tier';
COMMENT ON COLUMN audience.score_distribution.min_score IS 'The lowest score in the tier';
COMMENT ON COLUMN audience.score_distribution.max_score IS 'The highest score in the tier';
COMMENT ON COLUMN audience.membership_changes.tenant_id IS 'The tenant';
COMMENT ON COLUMN audience.membership_changes.id IS 'The write that made the change (shared by the changes one write made to one segment); grows with time';
COMMENT ON COLUMN audience.membership_changes.segment_id IS 'The segment entered or left';
COMMENT ON COLUMN audience.membership_changes.contact_id IS 'The contact that entered or left';
COMMENT ON COLUMN audience.membership_changes.change IS 'entered or exited';
COMMENT ON COLUMN audience.membership_changes.at IS 'When the change happened';
COMMENT ON COLUMN audience.import_progress.pid IS 'The importing backend''s process id';
COMMENT ON COLUMN audience.import_progress.imported_by IS 'The role running the import';
COMMENT ON COLUMN audience.import_progress.started_at IS 'When the import''s statement started';
COMMENT ON COLUMN audience.import_progress.bytes_read IS 'Bytes of the file read so far';
COMMENT ON COLUMN audience.import_progress.bytes_total IS 'Bytes of the whole file';
COMMENT ON COLUMN audience.import_progress.percent IS 'Share of the file read, in percent';
COMMENT ON COLUMN audience.import_progress.rows_done IS 'Rows imported so far';
COMMENT ON COLUMN audience.import_progress.rows_rejected IS 'Rows rejected so far';
-- Columns that show a contact's own column say what the table says.
DO $comments$
DECLARE
    shown record;
BEGIN
    FOR shown IN
        SELECT v.oid::regclass AS view, a.attname, col_description(t.attrelid, t.attnum) AS description
          FROM pg_class v
          JOIN pg_attribute a ON a.attrelid = v.oid AND a.attnum > 0
          JOIN pg_attribute t ON t.attrelid = 'audience.contacts'::regclass AND t.attname = a.attname
         WHERE v.oid IN ('audience.contact_profile'::regclass, 'audience.segment_membership'::regclass)
           AND col_description(v.oid, a.attnum) IS NULL
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', shown.view, shown.attname, shown.description);
    END LOOP;
END
$comments$;
ALTER TABLE audience.publications ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audience.publications
    USING ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()))
    WITH CHECK ((SELECT audience.sees_all_tenants()) OR tenant_id = (SELECT audience.current_tenant()));
COMMENT ON POLICY tenant_isolation ON audience.publications IS 'audience_user reads and writes rows of its current tenant only; audience_admin all';

-- Row Level Security of tenants and grants.
DROP POLICY tenant_isolation ON audience.tenants;
CREATE POLICY tenant_isolation ON audience.tenants
    USING ((SELECT audience.sees_all_tenants())
           OR EXISTS (SELECT FROM audience.tenant_access g WHERE g.tenant_id IS NULL OR g.tenant_id = tenants.id));
COMMENT ON POLICY tenant_isolation ON audience.tenants IS 'A role sees the tenants it may select; audience_admin all';

ALTER TABLE audience.tenant_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY grants_of_role ON audience.tenant_access
    USING ((SELECT audience.sees_all_tenants()) OR pg_catalog.pg_has_role(role, 'MEMBER'))
    WITH CHECK ((SELECT audience.sees_all_tenants()));
COMMENT ON POLICY grants_of_role ON audience.tenant_access IS 'A role sees the grants it holds, directly or through membership; audience_admin sees and makes all';

-- Applications read every table and write contacts and events directly
-- (SPEC 2 and 5), each only in the columns that are theirs: scores,
-- activity times and event counts follow from events and fit rules. The
-- rest (segments and their members, rules, settings, history) changes
-- only through the API, which keeps it consistent.
GRANT USAGE ON SCHEMA audience TO audience_user, audience_reader;
REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA audience FROM audience_user;
GRANT SELECT ON ALL TABLES IN SCHEMA audience TO audience_user, audience_reader;
GRANT INSERT (tenant_id, id, email, first_name, last_name, company, job_title, phone, phone_type, country, city,
              status, lead_status, source, assigned_to, reachability, tags, attributes, created_at),
      UPDATE (tenant_id, email, first_name, last_name, company, job_title, phone, phone_type, country, city,
              status, lead_status, source, assigned_to, reachability, tags, attributes, created_at),
      DELETE
   ON audience.contacts TO audience_user;
GRANT INSERT (tenant_id, contact_id, kind, campaign, url, occurred_at, props), DELETE ON audience.events TO audience_user;
GRANT INSERT, UPDATE ON audience.tenants TO audience_admin;
GRANT INSERT, DELETE ON audience.tenant_access TO audience_admin;

CREATE OR REPLACE FUNCTION audience.members(segment text) RETURNS SETOF audience.contacts
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

CREATE OR REPLACE FUNCTION audience.on_coordinator() RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    coordinator boolean;
BEGIN
    IF pg_catalog.to_regproc('pg_catalog.citus_is_coordinator') IS NULL THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
    RETURN coordinator;
END
$$;
COMMENT ON FUNCTION audience.on_coordinator() IS 'Whether this node runs the triggers of tenants that write other tables: always on one server, only the coordinator under Citus';

CREATE OR REPLACE FUNCTION audience.tenant_contacts_dropped() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT audience.on_coordinator() THEN
        RETURN NULL;
    END IF;
    -- As values: Citus joins no transition table.
    DELETE FROM audience.contacts c WHERE c.tenant_id = ANY (ARRAY(SELECT o.id FROM old_rows o));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.tenant_contacts_dropped() IS 'Statement trigger: deleting tenants deletes their contacts';

CREATE OR REPLACE FUNCTION audience.default_scoring_rules() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT audience.on_coordinator() THEN
        RETURN NULL;
    END IF;
    INSERT INTO audience.scoring_rules (tenant_id, kind, url_pattern, points, reset) VALUES
        (NEW.id, 'opened', NULL, 1, false),
        (NEW.id, 'clicked', NULL, 5, false),
        (NEW.id, 'replied', NULL, 10, false),
        (NEW.id, 'visited', '/pricing', 20, false),
        (NEW.id, 'bounced', NULL, -50, false),
        (NEW.id, 'unsubscribed', NULL, 0, true);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.default_scoring_rules() IS 'Trigger: gives a new tenant the default scoring plan';

CREATE OR REPLACE FUNCTION audience.may_select_tenant(tenant uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT FROM audience.tenant_access g WHERE g.tenant_id IS NULL OR g.tenant_id = tenant)
$$;
COMMENT ON FUNCTION audience.may_select_tenant(uuid) IS 'Whether the session''s role holds a grant of the tenant or of every tenant (the policy on tenants under Citus)';

CREATE OR REPLACE FUNCTION audience.distribute()
RETURNS TABLE (table_name regclass, placement text)
LANGUAGE plpgsql
AS $$
DECLARE
    -- Co-located with contacts, in the order their foreign keys need.
    tenant_tables text[] := ARRAY[
        'contacts', 'contact_segments', 'fields', 'segments', 'settings', 'events', 'scoring_rules',
        'fit_rules', 'membership_log', 'imports', 'forgotten_contacts', 'snapshots', 'snapshot_members'];
    -- A copy on every node: tenants and grants are read by every
    -- statement's policy; a published view's name is unique in the
    -- database, not per tenant.
    shared_tables text[] := ARRAY['tenants', 'tenant_access', 'publications'];
    scoped regclass;
    name text;
    command text;
    columns text;
    failure text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
              USING ERRCODE = 'feature_not_supported',
                    HINT = 'Add citus to shared_preload_libraries on every node, CREATE EXTENSION citus, add the workers with citus_add_node, then call audience.distribute().';
    END IF;
    IF NOT audience.on_coordinator() THEN
        RAISE EXCEPTION 'audience.distribute() runs at the coordinator'
              USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Tables referring to tenants stay where distribute puts them, instead
    -- of becoming Citus local tables on the way; our triggers query only
    -- the shards of their own tenant, on their own worker.
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- The same policies, without the (SELECT …) that makes one server
    -- compute the tenant once per statement: Citus refuses subqueries in
    -- policies. Once: Citus changes no policy of a table it holds.
    FOR scoped IN
        SELECT c.oid::regclass FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
         WHERE c.relnamespace = 'audience'::regnamespace AND p.polname = 'tenant_isolation'
           AND c.oid <> 'audience.tenants'::regclass
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = 'audience.contacts'::regclass)
    LOOP
        EXECUTE format('ALTER POLICY tenant_isolation ON %s
            USING (audience.sees_all_tenants() OR tenant_id = audience.current_tenant())
            WITH CHECK (audience.sees_all_tenants() OR tenant_id = audience.current_tenant())', scoped);
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = 'audience.tenants'::regclass) THEN
        ALTER POLICY tenant_isolation ON audience.tenants
            USING (audience.sees_all_tenants() OR audience.may_select_tenant(id));
        ALTER POLICY grants_of_role ON audience.tenant_access
            USING (audience.sees_all_tenants() OR pg_catalog.pg_has_role(role, 'MEMBER'))
            WITH CHECK (audience.sees_all_tenants());
    END IF;

    -- Contacts refer to their tenant by a foreign key, which Citus checks
    -- on the worker's own copy of tenants; one server checks once per
    -- statement instead (audience.hold_tenants), which here would lock the
    -- tenant on every node.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conname = 'contacts_tenant'
                      AND conrelid = 'audience.contacts'::regclass) THEN
        ALTER TABLE audience.contacts ADD CONSTRAINT contacts_tenant
            FOREIGN KEY (tenant_id) REFERENCES audience.tenants (id) ON DELETE CASCADE;
    END IF;

    FOREACH name IN ARRAY shared_tables LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = format('audience.%I', name)::regclass) THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING format('audience.%I', name);
        END IF;
        table_name := format('audience.%I', name)::regclass;
        placement := 'reference';
        RETURN NEXT;
    END LOOP;
    FOREACH name IN ARRAY tenant_tables LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = format('audience.%I', name)::regclass) THEN
            EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''tenant_id'', colocate_with => $2)'
              USING format('audience.%I', name), CASE WHEN name = 'contacts' THEN 'default' ELSE 'audience.contacts' END;
        END IF;
        table_name := format('audience.%I', name)::regclass;
        placement := 'distributed by tenant_id';
        RETURN NEXT;
    END LOOP;

    -- Citus writes every column of a new row on the shard, defaults
    -- included, where one server checks only those the statement names:
    -- the column grants of contacts and events (scores and counts follow
    -- from events) are checked at the coordinator, and the shards and the
    -- workers' copies let applications insert whole rows.
    FOREACH name IN ARRAY ARRAY['contacts', 'events'] LOOP
        SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
          FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) g
         WHERE a.attrelid = format('audience.%I', name)::regclass
           AND g.grantee = 'audience_user'::regrole AND g.privilege_type = 'INSERT';
        EXECUTE format('GRANT INSERT ON audience.%I TO audience_user', name);
        PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
        EXECUTE format('REVOKE INSERT ON audience.%I FROM audience_user', name);
        EXECUTE format('GRANT INSERT (%s) ON audience.%I TO audience_user', columns, name);
        PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
    END LOOP;

    -- Rows numbered on a worker (the membership log its triggers write)
    -- take numbers from a range of that worker's own, as Citus gives the
    -- sequences of the tables it creates.
    EXECUTE $run$SELECT string_agg(r.result, '; ') FROM pg_catalog.run_command_on_workers($cmd$
        SELECT count(pg_catalog.setval(pg_catalog.pg_get_serial_sequence(t, 'id'),
                                       (g.groupid::bigint << 48) + 1, false))
          FROM pg_catalog.pg_dist_local_group g, unnest(ARRAY['audience.events', 'audience.membership_log']) t
         WHERE pg_catalog.nextval(pg_catalog.pg_get_serial_sequence(t, 'id')) < g.groupid::bigint << 48$cmd$) r
         WHERE NOT r.success$run$ INTO failure;
    IF failure IS NOT NULL THEN
        RAISE EXCEPTION 'could not number rows on the workers: %', failure;
    END IF;

    -- Citus plans a statement that reads a parameter once it knows its
    -- value; the API then keeps custom plans (src/api/plans.rs). A tenant
    -- chosen by SET LOCAL reaches the workers, whose copies of the
    -- policies ask for it. (Citus passes both settings on to the workers.)
    EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', pg_catalog.current_database());
    EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = local', pg_catalog.current_database());
    -- Here and on the workers, whose copy of the extension Citus does not
    -- alter with ours: the events trigger plans as the database does (it
    -- plans generically on one server); and the reads of a segment an
    -- analyst calls for each row of a query over a tenant's rows (SELECT
    -- email FROM audience.contacts WHERE audience.in_segment(id, 'VIP')),
    -- which Citus runs on the tenant's worker inside its query of the
    -- shards, may query the tables there: they read the tenant's rows
    -- only, by its value, all held by that worker.
    FOREACH command IN ARRAY 'ALTER FUNCTION audience.events_inserted() RESET plan_cache_mode'::text
        || ARRAY(SELECT format('ALTER FUNCTION %s SET citus.allow_nested_distributed_execution = on', f)
                   FROM unnest(ARRAY['audience.in_segment(uuid, text)', 'audience.count(text)',
                                     'audience.members(text)', 'audience.recipients(text)',
                                     'audience.batches(text, integer)', 'audience.export_csv(text, text[])',
                                     'audience.breakdown(text, text)', 'audience.overlap(text, text)',
                                     'audience.describe(text)']) f) LOOP
        EXECUTE command;
        EXECUTE $run$SELECT string_agg(r.result, '; ') FROM pg_catalog.run_command_on_workers($1) r
                      WHERE NOT r.success$run$ INTO failure USING command;
        IF failure IS NOT NULL THEN
            RAISE EXCEPTION 'could not prepare the functions on the workers: %', failure;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION audience.distribute() IS 'Once, at a Citus coordinator after citus_add_node: makes tenants, grants and publications reference tables and distributes every tenant''s rows by tenant_id, co-located with its contacts; returns what went where';

CREATE OR REPLACE FUNCTION audience.apply_membership(tenant uuid, segment uuid, entered uuid[], exited uuid[],
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

CREATE OR REPLACE FUNCTION audience.add_to_list(name text, contacts uuid[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$ BEGIN RETURN audience.edit_list(name, contacts, true); END $$;
COMMENT ON FUNCTION audience.add_to_list(text, uuid[]) IS 'Adds contacts to a static list; returns how many were not members yet';

CREATE OR REPLACE FUNCTION audience.remove_from_list(name text, contacts uuid[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$ BEGIN RETURN audience.edit_list(name, contacts, false); END $$;
COMMENT ON FUNCTION audience.remove_from_list(text, uuid[]) IS 'Removes contacts from a static list; returns how many were members';

CREATE OR REPLACE FUNCTION audience.define_field(name text, type text, label text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    key text := audience.custom_field_name(name);
    kind text := audience.field_type(type);
    existing text;
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    SELECT f.type INTO existing FROM audience.fields f
     WHERE f.tenant_id = tenant AND f.name = key;
    IF existing IS NOT NULL AND existing <> kind THEN
        RAISE EXCEPTION 'custom field "%" already exists with type %', key, existing
            USING ERRCODE = 'unique_violation',
                  HINT = 'A field keeps its type; define a field with another name.';
    END IF;
    INSERT INTO audience.fields (name, type, label)
    VALUES (key, kind, coalesce(define_field.label, define_field.name))
    ON CONFLICT ON CONSTRAINT fields_pkey DO UPDATE SET label = EXCLUDED.label;
    RETURN key;
END
$$;
COMMENT ON FUNCTION audience.define_field(text, text, text) IS 'Defines (or relabels) a custom field of type text, number, date or boolean; returns its canonical name';

CREATE OR REPLACE FUNCTION audience.search_field(name text) RETURNS text
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    known text[];
    -- A value, not a call in the query: Citus routes by it (sql/citus.sql).
    tenant uuid := audience.current_tenant();
BEGIN
    IF name = ANY (audience.standard_fields()) AND name NOT IN ('tags', 'attributes') THEN
        RETURN name;
    END IF;
    IF EXISTS (SELECT FROM audience.fields f WHERE f.tenant_id = tenant AND f.name = search_field.name) THEN
        RETURN 'custom.' || name;
    END IF;
    SELECT array_agg(f.name ORDER BY f.name) INTO known FROM audience.fields f WHERE f.tenant_id = tenant;
    RAISE EXCEPTION 'unknown field "%" in search', name
        USING ERRCODE = 'undefined_object',
              HINT = format('Standard fields: %s. Custom fields: %s.',
                            array_to_string(array_remove(array_remove(audience.standard_fields(), 'tags'), 'attributes'), ', '),
                            coalesce(array_to_string(known, ', '), 'none'));
END
$$;
COMMENT ON FUNCTION audience.search_field(text) IS 'Resolves a search term''s field to a standard column or custom.name';

CREATE OR REPLACE FUNCTION audience.require_contact(contact uuid) RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    IF NOT EXISTS (SELECT FROM audience.contacts c
                    WHERE c.tenant_id = tenant AND c.id = contact) THEN
        RAISE EXCEPTION 'unknown contact %', contact USING ERRCODE = 'undefined_object';
    END IF;
    RETURN contact;
END
$$;
COMMENT ON FUNCTION audience.require_contact(uuid) IS 'Returns its argument when the current tenant has that contact, raises 42704 otherwise';

CREATE OR REPLACE FUNCTION audience.tag(contact uuid, VARIADIC tags text[]) RETURNS text[]
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    tagged text[];
BEGIN
    UPDATE audience.contacts c SET tags = c.tags || tag.tags
     WHERE c.tenant_id = audience.current_tenant() AND c.id = audience.require_contact(contact)
    RETURNING c.tags INTO tagged;
    RETURN tagged;
END
$$;
COMMENT ON FUNCTION audience.tag(uuid, text[]) IS 'Adds tags to a contact (case-insensitive, no duplicates); returns its tags';

CREATE OR REPLACE FUNCTION audience.export_contact(email text) RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    RETURN (SELECT jsonb_build_object(
        'contact', to_jsonb(c) - 'tenant_id' - 'tag_keys',
        'events', coalesce((SELECT jsonb_agg(to_jsonb(e) - 'tenant_id' - 'contact_id' ORDER BY e.occurred_at, e.id)
                              FROM audience.events e
                             WHERE e.tenant_id = c.tenant_id AND e.contact_id = c.id), '[]'),
        'segments', coalesce((SELECT jsonb_agg(s.name ORDER BY s.name)
                                FROM audience.segment_members m
                                JOIN audience.segments s ON s.tenant_id = m.tenant_id AND s.id = m.segment_id
                               WHERE m.tenant_id = c.tenant_id AND m.contact_id = c.id), '[]'))
      FROM audience.contacts c
     WHERE c.tenant_id = tenant
       AND c.email = audience.normalize_email(export_contact.email));
END
$$;
COMMENT ON FUNCTION audience.export_contact(text) IS 'Everything held on a person: fields, tags, custom fields, events and segments, as JSON; null when unknown';

CREATE OR REPLACE FUNCTION audience.snapshot_members(snapshot uuid) RETURNS SETOF uuid
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

CREATE OR REPLACE FUNCTION audience.rescore(tenant uuid, contacts uuid[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    changed bigint;
    history record;
BEGIN
    -- (Also Citus would run it on the worker inside the update's query,
    -- where it may not query the tenant's tables again.)
    SELECT array_agg(h.contact_id) AS ids, array_agg(h.points) AS points, array_agg(h.reset_at) AS resets,
           array_agg(h.events) AS events
      INTO history
      FROM audience.engagement_history(tenant, contacts) h;
    UPDATE audience.contacts c
       SET engagement_score = coalesce(h.points, 0), score_reset_at = h.reset_at, event_count = coalesce(h.events, 0)
      FROM audience.contacts t
      LEFT JOIN unnest(history.ids, history.points, history.resets, history.events) h(contact_id, points, reset_at, events)
             ON h.contact_id = t.id
     WHERE t.tenant_id = tenant AND (contacts IS NULL OR t.id = ANY (contacts))
       AND c.tenant_id = t.tenant_id AND c.id = t.id
       AND (c.engagement_score, c.score_reset_at, c.event_count)
           IS DISTINCT FROM (coalesce(h.points, 0)::integer, h.reset_at, coalesce(h.events, 0));
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION audience.rescore(uuid, uuid[]) IS 'Recomputes engagement points of contacts (all when null) from their event history';

-- Who may call what. Nothing is executable by PUBLIC. The API of SPEC.md
-- is granted by role; everything else (trigger functions, and the helpers
-- that triggers and the API call, which take any tenant's id or bypass
-- the rules) is reachable only through it: API functions and triggers
-- that call such helpers run as the extension's owner, with a fixed
-- search_path, and work on the tenant current_tenant() checked for the
-- session's role. tests/pg_regress/sql/catalog.sql holds the same lists.
-- (Re-run by upgrade scripts: every statement here is idempotent.)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA audience FROM PUBLIC;
DO $access$
DECLARE
    -- Reads, and what policies, column defaults, generated columns,
    -- trigger conditions and views evaluate as the caller.
    reads text[] := ARRAY[
        'current_tenant', 'use_tenant', 'sees_all_tenants', 'membership_channel',
        'uuidv7', 'fold', 'tag_keys', 'restoring', 'importing_normalised_rows',
        'normalize_email', 'normalize_country', 'normalize_phone', 'normalize_tags', 'coerce_attributes',
        'custom_field_name', 'field_type', 'standard_fields', 'writable_fields', 'search_terms',
        'check_event_kind', 'rule_in', 'rule_out', 'rule_to_json', 'rule_from_json', 'rule_is_time_relative',
        'preview', 'explain', 'count', 'members', 'recipients', 'in_segment', 'segments_of', 'batches',
        'snapshot_members', 'search', 'export_csv', 'export_contact', 'score_tier', 'tier_of', 'live_members', 'rule_matches',
        'breakdown', 'overlap', 'pair_overlaps', 'describe', 'segment_member_ids', 'segment_names', 'may_select_tenant'];
    writes text[] := ARRAY[
        'upsert_contact', 'define_field', 'tag', 'untag', 'tag_segment', 'rename_tag', 'forget_contact',
        'create_segment', 'create_list', 'create_query_segment', 'add_to_list', 'remove_from_list', 'update_segment',
        'duplicate_segment', 'drop_segment', 'refresh', 'snapshot',
        'track', 'set_score', 'set_score_reset', 'set_tiers', 'recompute_scores', 'set_fit_score',
        'drop_fit_score', 'set_score_decay', 'apply_decay', 'import_csv', 'import_csv_file', 'import_xlsx',
        'import_xlsx_file', 'purge_forgotten',
        'publish_segment', 'unpublish_segment'];
    -- The scheduled job refreshes every tenant, as the role that scheduled it.
    administration text[] := ARRAY['create_tenant', 'grant_tenant', 'revoke_tenant', 'refresh_all_tenants',
                                   'schedule_refresh'];
    -- Those that call internal helpers or write what applications may
    -- not (hold_tenants and tenant_contacts_dropped say so where they are
    -- created).
    as_owner text[] := ARRAY[
        'create_tenant', 'grant_tenant', 'revoke_tenant', 'refresh_all_tenants', 'define_field', 'set_tiers',
        'forget_contact', 'purge_forgotten', 'tag', 'untag', 'search',
        'create_segment', 'create_list', 'create_query_segment', 'add_to_list', 'remove_from_list', 'update_segment',
        'duplicate_segment', 'drop_segment', 'members', 'count', 'in_segment', 'segments_of', 'batches',
        'breakdown', 'overlap', 'pair_overlaps', 'describe', 'segment_member_ids', 'segment_names',
        'snapshot', 'tag_segment', 'refresh', 'set_score', 'set_score_reset', 'set_score_decay',
        'apply_decay', 'recompute_scores', 'set_fit_score', 'drop_fit_score', 'import_csv', 'import_csv_file',
        'import_xlsx', 'import_xlsx_file',
        'rules_changed', 'events_inserted', 'events_deleted', 'contacts_changed', 'segments_dropped',
        'default_scoring_rules', 'publish_segment', 'unpublish_segment', 'fields_published', 'publications_dropped'];
    f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS signature, p.proname::text AS name, p.prosecdef
               FROM pg_proc p WHERE p.pronamespace = 'audience'::regnamespace LOOP
        IF f.name = ANY (reads) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO audience_user, audience_reader', f.signature);
        ELSIF f.name = ANY (writes) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO audience_user', f.signature);
        ELSIF f.name = ANY (administration) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO audience_admin', f.signature);
        END IF;
        IF f.name = ANY (as_owner) AND NOT f.prosecdef THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f.signature);
        END IF;
    END LOOP;
END
$access$;

REVOKE EXECUTE ON FUNCTION audience.hold_tenants(uuid[]) FROM audience_user;
COMMENT ON FUNCTION audience.fold(text) IS 'Text case-folded (Unicode default case folding), as every comparison of tags, names, rule values and search terms sees it';
COMMENT ON FUNCTION audience.tag_keys(text[]) IS 'Tags case-folded (audience.fold), as tag conditions compare them and the GIN index holds them';
COMMENT ON FUNCTION audience.lock_rules(uuid, boolean) IS 'Takes the tenant''s rules for this transaction: exclusively to change membership rules, shared to maintain membership by them';
COMMENT ON FUNCTION audience.score_tier(integer) IS 'hot, warm or cold for a score, by the current tenant''s thresholds (50 and 20 by default)';
COMMENT ON FUNCTION audience.tier_of(integer, integer, integer) IS 'hot, warm or cold for a score, by given hot and warm thresholds (50 and 20 when null)';
COMMENT ON FUNCTION audience.segment_member_ids(uuid) IS 'Ids of the members of the current tenant''s segment with that id, now (what published views read)';
COMMENT ON FUNCTION audience.segment_names(uuid) IS 'The names of the segments a contact is in now, as an array';
COMMENT ON FUNCTION audience.segments_of(uuid) IS 'The names of the segments a contact is in now';
COMMENT ON FUNCTION audience.lock_bulk_writes(uuid) IS 'Takes the tenant''s bulk writes for this transaction: one import or multi-row event statement of a tenant at a time';
COMMENT ON FUNCTION audience.intersections(integer[], integer[], uuid[]) IS 'For members given as parallel arrays of set numbers and contact ids, the contacts in both sets for every pair of sets';
COMMENT ON FUNCTION audience.check_no_cycle(uuid, uuid, uuid[]) IS 'Raises 42P17 when a segment would refer to itself through the segments its new rule refers to';
COMMENT ON FUNCTION audience.refresh(text) IS 'Re-evaluates dynamic and query segments (one, or all when null), applying only the difference; returns how many memberships changed';
COMMENT ON FUNCTION audience.create_query_segment(text, text, text) IS 'Creates a query segment: its members are the contact ids a single read-only SELECT returns, run as the defining role (its grants and Row Level Security), brought up to date by refresh; returns its id';
COMMENT ON FUNCTION audience.import_contacts(text, bytea, text, jsonb) IS 'Runs an import of csv or workbook data, or of a csv_file or workbook_file path, for the current tenant, records its report in audience.imports and returns it (audience.run_import calls it)';
COMMENT ON FUNCTION audience.import_rows(bytea, jsonb) IS 'Runs a CSV import and returns its id (what import_csv of releases before 0.2.0 calls)';

-- Existing deployments keep working: every member of audience_user may
-- still select every tenant, until an administrator narrows it
-- (audience.revoke_tenant('audience_user', '*') and grants per role).
INSERT INTO audience.tenant_access (tenant_id, role) VALUES (NULL, 'audience_user');

-- Stored text compared by its folded form is folded again (tag_keys is
-- generated: any update of the row computes it anew), and segments
-- of tenants holding text outside ASCII are brought up to the new
-- comparisons (the triggers keep membership for the contacts updated).
UPDATE audience.contacts c
   SET tags = c.tags, source = audience.fold(c.source),
       status = audience.fold(c.status), lead_status = audience.fold(c.lead_status)
 WHERE NOT (concat_ws(' ', c.tags::text, c.source, c.status, c.lead_status) ~ '^[[:ascii:]]*$');
DO $folding$
DECLARE
    tenant record;
BEGIN
    FOR tenant IN SELECT t.id FROM audience.tenants t
                   WHERE EXISTS (SELECT FROM audience.contacts c
                                  WHERE c.tenant_id = t.id AND NOT (c::text ~ '^[[:ascii:]]*$'))
                      OR EXISTS (SELECT FROM audience.segments s
                                  WHERE s.tenant_id = t.id AND NOT (s.rule::text ~ '^[[:ascii:]]*$')) LOOP
        PERFORM set_config('audience.tenant', tenant.id::text, true);
        PERFORM audience.refresh();
    END LOOP;
END
$folding$;
