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
