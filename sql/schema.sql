-- audience schema: tenants, contacts, custom fields, tags, search, GDPR.
-- Runs after the Rust functions exist (pgrx `finalize`), inside schema
-- `audience`. Every object is schema-qualified so the file reads alone.

--------------------------------------------------------------------------
-- Roles
--------------------------------------------------------------------------
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

--------------------------------------------------------------------------
-- Tenants and the current tenant
--------------------------------------------------------------------------
CREATE TABLE audience.tenants (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE audience.tenants IS 'Companies or workspaces; every other table is scoped to one of them';
COMMENT ON COLUMN audience.tenants.name IS 'Unique name, usable in SET audience.tenant';
SELECT pg_catalog.pg_extension_config_dump('audience.tenants', '');

-- Backends keep the tenants they resolved and their parsed and compiled
-- rules (src/api/tenants.rs, tenant_rules.rs); a committed change of
-- tenants, fields, segments or fit rules makes every backend read them
-- again, the way PostgreSQL's own caches learn of catalog changes. ENABLE ALWAYS on its triggers: a change
-- made with triggers off for replication must still reach the backends.
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

-- audience.current_tenant() is in Rust (src/api/tenants.rs): each backend
-- keeps the tenants it resolved for each role, forgotten when tenants,
-- grants or role memberships change.
COMMENT ON FUNCTION audience.current_tenant() IS 'The tenant named by the setting audience.tenant; raises when it is unset (22023) or not one the session''s role may select (42501)';

CREATE FUNCTION audience.sees_all_tenants() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.pg_has_role('audience_admin', 'MEMBER') $$;
COMMENT ON FUNCTION audience.sees_all_tenants() IS 'True for members of audience_admin, whom Row Level Security lets see every tenant';

-- Under Citus, tenants is a reference table: a copy on every node, each
-- firing the triggers that write the tenant's rows elsewhere. Those rows
-- are written once, by the copy at the coordinator (audience.distribute).
CREATE FUNCTION audience.on_coordinator() RETURNS boolean
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

-- The tenant a grant names: by name or id, '*' for every tenant (null).
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

--------------------------------------------------------------------------
-- Custom fields
--------------------------------------------------------------------------
CREATE TABLE audience.fields (
    tenant_id  uuid        NOT NULL DEFAULT audience.current_tenant()
                           REFERENCES audience.tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    type       text        NOT NULL CHECK (type IN ('text', 'number', 'date', 'boolean')),
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
COMMENT ON TABLE audience.fields IS 'Custom contact fields per tenant; values live in contacts.attributes';
COMMENT ON COLUMN audience.fields.name IS 'Canonical name: lower case, underscores (rules say custom.name)';
COMMENT ON COLUMN audience.fields.type IS 'text, number, date or boolean; values are checked on every write';
COMMENT ON COLUMN audience.fields.label IS 'Display name, e.g. the CSV header it came from';
SELECT pg_catalog.pg_extension_config_dump('audience.fields', '');
CREATE TRIGGER rules_changed AFTER INSERT OR DELETE OR UPDATE OF tenant_id, name, type ON audience.fields
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.fields ENABLE ALWAYS TRIGGER rules_changed;

CREATE FUNCTION audience.define_field(name text, type text, label text DEFAULT NULL) RETURNS text
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

--------------------------------------------------------------------------
-- Contacts
--------------------------------------------------------------------------
CREATE TABLE audience.contacts (
    -- An existing tenant, as a foreign key would check, but per statement:
    -- the contacts trigger holds the statement's tenants (hold_tenants)
    -- and deleting a tenant deletes its contacts (tenant_contacts_dropped).
    -- A foreign key checked each of a million imported rows on its own,
    -- a quarter of the time of inserting them.
    tenant_id        uuid        NOT NULL DEFAULT audience.current_tenant(),
    -- Time-ordered (see audience.uuidv7): contacts created together sit
    -- together in every index keyed by contact.
    id               uuid        NOT NULL DEFAULT audience.uuidv7(),
    email            text        NOT NULL,
    first_name       text,
    last_name        text,
    company          text,
    job_title        text,
    phone            text,
    phone_type       text        CHECK (phone_type IN ('mobile', 'landline', 'voip', 'unknown')),
    country          text        CHECK (country ~ '^[A-Z]{2}$'),
    city             text,
    status           text        NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('active', 'unsubscribed', 'bounced')),
    lead_status      text        NOT NULL DEFAULT 'new'
                                 CHECK (lead_status IN ('new', 'nurture', 'hot', 'warm', 'cold')),
    source           text        NOT NULL DEFAULT 'manual' CHECK (source ~ '^[a-z][a-z0-9_]*$'),
    assigned_to      text,
    score            integer     GENERATED ALWAYS AS (fit_score + engagement_score) STORED,
    reachability     integer     CHECK (reachability BETWEEN 0 AND 100),
    tags             text[]      NOT NULL DEFAULT '{}',
    attributes       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz,
    last_opened_at   timestamptz,
    last_clicked_at  timestamptz,
    fit_score        integer     NOT NULL DEFAULT 0,
    engagement_score integer     NOT NULL DEFAULT 0,
    score_reset_at   timestamptz,
    event_count      bigint      NOT NULL DEFAULT 0,
    tag_keys         text[]      GENERATED ALWAYS AS (audience.tag_keys(tags)) STORED,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
) WITH (fillfactor = 85);
COMMENT ON TABLE audience.contacts IS 'One row per contact of a tenant; emails are unique per tenant';
-- fillfactor: room on each page lets event statements update scores and
-- activity times as heap-only tuples, without touching the five indexes.
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
SELECT pg_catalog.pg_extension_config_dump('audience.contacts', '');

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

CREATE FUNCTION audience.tenant_contacts_dropped() RETURNS trigger
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
CREATE TRIGGER tenant_contacts_dropped AFTER DELETE ON audience.tenants
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.tenant_contacts_dropped();

CREATE INDEX contacts_tag_keys ON audience.contacts USING gin (tag_keys);
COMMENT ON INDEX audience.contacts_tag_keys IS 'Serves case-insensitive tag conditions';
CREATE INDEX contacts_attributes ON audience.contacts USING gin (attributes jsonb_path_ops);
COMMENT ON INDEX audience.contacts_attributes IS 'Serves equality on custom fields';

-- pg_dump scripts and pg_restore set both; rows they load were normalised,
-- scored and counted when first written, so the insert triggers stand
-- aside. With row_security off, a role under RLS (every audience_user)
-- cannot write at all, so no application can use this to skip checks.
COMMENT ON FUNCTION audience.restoring() IS 'Whether this session is restoring a dump (pg_dump''s settings): insert triggers then leave loaded rows as they are';

-- One normalisation for every write path: SQL INSERT/UPDATE, upsert, import.
CREATE FUNCTION audience.normalize_contact() RETURNS trigger
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

-- The importer normalises and checks rows in Rust before writing them.
CREATE TRIGGER normalize_contact BEFORE INSERT ON audience.contacts
    FOR EACH ROW WHEN (NOT audience.importing_normalised_rows() AND NOT audience.restoring())
    EXECUTE FUNCTION audience.normalize_contact();
-- Updates that set only what events and fit rules maintain (scores,
-- activity times, event counts) skip the per-row function entirely. A
-- column list rather than a WHEN condition comparing old and new values:
-- PostgreSQL parses a trigger's condition anew for every statement, and
-- that one took longer to parse than a one-row update took to run.
CREATE TRIGGER normalize_contact_update
    BEFORE UPDATE OF email, first_name, last_name, company, job_title, phone, phone_type, country, city, status,
                     lead_status, source, assigned_to, reachability, tags, attributes, created_at, updated_at
    ON audience.contacts
    FOR EACH ROW EXECUTE FUNCTION audience.normalize_contact();

-- Lead score tiers and decay: per tenant, defaults when unset.
CREATE TABLE audience.settings (
    tenant_id     uuid        PRIMARY KEY DEFAULT audience.current_tenant()
                              REFERENCES audience.tenants (id) ON DELETE CASCADE,
    hot_score     integer     NOT NULL DEFAULT 50,
    warm_score    integer     NOT NULL DEFAULT 20,
    decay_percent integer     NOT NULL DEFAULT 0 CHECK (decay_percent BETWEEN 0 AND 100),
    decay_every   interval    NOT NULL DEFAULT '30 days' CHECK (decay_every >= '1 hour'),
    decayed_at    timestamptz,
    CHECK (hot_score > warm_score)
);
COMMENT ON TABLE audience.settings IS 'Per-tenant settings: lead score tier thresholds and score decay';
COMMENT ON COLUMN audience.settings.decay_percent IS 'Engagement points lose this share for every full decay_every period of age';
COMMENT ON COLUMN audience.settings.decayed_at IS 'The moment the last audience.apply_decay measured ages from';
SELECT pg_catalog.pg_extension_config_dump('audience.settings', '');

CREATE FUNCTION audience.set_tiers(hot integer, warm integer) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF hot IS NULL OR warm IS NULL OR hot <= warm THEN
        RAISE EXCEPTION 'the hot threshold (%) must be above the warm threshold (%)', hot, warm
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO audience.settings (tenant_id, hot_score, warm_score) VALUES (audience.current_tenant(), hot, warm)
    ON CONFLICT (tenant_id) DO UPDATE SET hot_score = EXCLUDED.hot_score, warm_score = EXCLUDED.warm_score;
END
$$;
COMMENT ON FUNCTION audience.set_tiers(integer, integer) IS 'Sets the current tenant''s score thresholds for the hot and warm tiers';

-- audience.score_tier(score) and audience.tier_of(score, hot, warm) are in
-- Rust (src/api/scoring.rs, core/src/tiers.rs).

-- The contact named by id in the current tenant, or 42704.
CREATE FUNCTION audience.require_contact(contact uuid) RETURNS uuid
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

--------------------------------------------------------------------------
-- Engagement events (scoring triggers come with the scoring module)
--------------------------------------------------------------------------
CREATE TABLE audience.events (
    tenant_id   uuid        NOT NULL DEFAULT audience.current_tenant(),
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    contact_id  uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    campaign    text,
    url         text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    props       jsonb,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES audience.contacts (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE audience.events IS 'Engagement history: sent, opened, clicked, replied, visited, bounced, unsubscribed or any lower-case word';
COMMENT ON COLUMN audience.events.url IS 'Page or link; rule conditions match part of it, case-insensitively';
SELECT pg_catalog.pg_extension_config_dump('audience.events', '');
SELECT pg_catalog.pg_extension_config_dump('audience.events_id_seq', '');
CREATE INDEX events_contact ON audience.events (tenant_id, contact_id, kind, occurred_at);
COMMENT ON INDEX audience.events_contact IS 'Serves engagement conditions, per contact';
CREATE INDEX events_kind ON audience.events (tenant_id, kind, occurred_at);
COMMENT ON INDEX audience.events_kind IS 'Serves per-kind and last-campaign lookups';

--------------------------------------------------------------------------
-- Segments
--------------------------------------------------------------------------
-- Stored membership names segments by number: 4 bytes in a contact's
-- array instead of a 16-byte id.
CREATE SEQUENCE audience.segment_numbers AS integer;
COMMENT ON SEQUENCE audience.segment_numbers IS 'Numbers segments for stored membership';
SELECT pg_catalog.pg_extension_config_dump('audience.segment_numbers', '');
CREATE TABLE audience.segments (
    tenant_id        uuid        NOT NULL DEFAULT audience.current_tenant()
                                 REFERENCES audience.tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    name             text        NOT NULL CHECK (btrim(name) <> ''),
    description      text,
    kind             text        NOT NULL CHECK (kind IN ('static', 'dynamic', 'everyone', 'query')),
    rule             audience.rule CHECK ((kind = 'dynamic') = (rule IS NOT NULL)),
    member_count     bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    refreshed_at     timestamptz,
    refresh_duration interval,
    depends_on       uuid[]      NOT NULL DEFAULT '{}',
    query            text,
    query_role       regrole,
    number           integer     NOT NULL DEFAULT nextval('audience.segment_numbers'),
    PRIMARY KEY (tenant_id, id),
    -- Unique in the whole database by the sequence; keyed by tenant first,
    -- as every key is, so that Citus can distribute the table by tenant.
    UNIQUE (tenant_id, number),
    CONSTRAINT segments_query CHECK ((kind = 'query') = (query IS NOT NULL AND query_role IS NOT NULL))
);
COMMENT ON TABLE audience.segments IS 'Static lists, dynamic rule-based segments, query segments and the built-in Everyone segment';
COMMENT ON COLUMN audience.segments.rule IS 'The membership rule of a dynamic segment';
COMMENT ON COLUMN audience.segments.member_count IS 'How many members: of a list or dynamic segment, its stored members (kept in step with segment_members); of Everyone, every contact of the tenant';
COMMENT ON COLUMN audience.segments.refresh_duration IS 'How long the last refresh took';
COMMENT ON COLUMN audience.segments.query IS 'The SELECT of a query segment: its members are the contact ids it returns';
COMMENT ON COLUMN audience.segments.query_role IS 'The role that defined a query segment, which its query always runs as';
COMMENT ON COLUMN audience.segments.number IS 'The segment''s number in stored membership (audience.contact_segments)';
COMMENT ON COLUMN audience.segments.depends_on IS 'Segments its rule refers to (in segment ''…''), kept to order maintenance and guard drops';
SELECT pg_catalog.pg_extension_config_dump('audience.segments', '');
CREATE TRIGGER rules_changed AFTER INSERT OR DELETE OR UPDATE OF tenant_id, id, name, kind, rule, created_at ON audience.segments
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.segments ENABLE ALWAYS TRIGGER rules_changed;
CREATE UNIQUE INDEX segments_name ON audience.segments (tenant_id, audience.fold(name));
COMMENT ON INDEX audience.segments_name IS 'Segment names are unique per tenant, case-insensitively';

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

--------------------------------------------------------------------------
-- Tags
--------------------------------------------------------------------------
CREATE FUNCTION audience.tag(contact uuid, VARIADIC tags text[]) RETURNS text[]
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

CREATE FUNCTION audience.untag(contact uuid, VARIADIC tags text[]) RETURNS text[]
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

CREATE FUNCTION audience.rename_tag(old text, new text) RETURNS bigint
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

CREATE VIEW audience.tag_summary WITH (security_invoker = true) AS
    SELECT min(t) AS tag, count(*) AS contacts
      FROM audience.contacts c, unnest(c.tags) t
     WHERE c.tenant_id = (SELECT audience.current_tenant())
     GROUP BY audience.fold(btrim(t))
     ORDER BY count(*) DESC, min(t);
COMMENT ON VIEW audience.tag_summary IS 'Each tag of the current tenant with how many contacts hold it';

--------------------------------------------------------------------------
-- Search
--------------------------------------------------------------------------
-- The column or custom field a search term names, or 42704 with the list.
CREATE FUNCTION audience.search_field(name text) RETURNS text
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

CREATE FUNCTION audience.search(query text) RETURNS SETOF audience.contacts
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

--------------------------------------------------------------------------
-- GDPR
--------------------------------------------------------------------------
CREATE FUNCTION audience.export_contact(email text) RETURNS jsonb
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

CREATE FUNCTION audience.forget_contact(email text) RETURNS boolean
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
