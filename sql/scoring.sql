--------------------------------------------------------------------------
-- Lead scoring: engagement points from events, fit points from rules.
--
-- A contact's score is fit_score + engagement_score (a generated column).
-- engagement_score is the sum of the points of the contact's events after
-- its latest reset event, each event's points decayed by its age as of the
-- tenant's last audience.apply_decay. Triggers on audience.events keep it
-- equal to what audience.recompute_scores computes from the history.
--------------------------------------------------------------------------
CREATE TABLE audience.scoring_rules (
    tenant_id   uuid    NOT NULL DEFAULT audience.current_tenant()
                        REFERENCES audience.tenants (id) ON DELETE CASCADE,
    kind        text    NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
    url_pattern text    CHECK (btrim(url_pattern) <> ''),
    points      integer NOT NULL DEFAULT 0 CHECK (points BETWEEN -10000 AND 10000),
    reset       boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE audience.scoring_rules IS 'Per-tenant points per event kind (and url part); reset rules set engagement points back to 0';
COMMENT ON COLUMN audience.scoring_rules.url_pattern IS 'When set, the rule applies to events whose url contains it, in any case';
COMMENT ON COLUMN audience.scoring_rules.points IS 'Points an event earns; an event earns the points of every rule it matches';
SELECT pg_catalog.pg_extension_config_dump('audience.scoring_rules', '');
CREATE UNIQUE INDEX scoring_rules_kind ON audience.scoring_rules (tenant_id, kind, (coalesce(audience.fold(url_pattern), '')));
COMMENT ON INDEX audience.scoring_rules_kind IS 'One rule per tenant, kind and url pattern';

CREATE FUNCTION audience.default_scoring_rules() RETURNS trigger
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
CREATE TRIGGER default_scoring_rules AFTER INSERT ON audience.tenants
    FOR EACH ROW WHEN (NOT audience.restoring()) EXECUTE FUNCTION audience.default_scoring_rules();

-- Points of one event, shrunk by decay_percent for every full period of
-- its age at `decayed_at`. Ages and periods are compared in seconds: a
-- period subtracted from a timestamp depends on the session's time zone
-- (60 days across a change of summer time are an hour more or less), and
-- a score must not. Inlined into the queries below (STABLE: declared
-- IMMUTABLE it was run as a separate query for every statement).
CREATE FUNCTION audience.decayed_points(points integer, occurred_at timestamptz, decayed_at timestamptz,
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

-- Engagement of contacts (all of the tenant's when null) from their whole
-- event history.
CREATE FUNCTION audience.engagement_history(tenant uuid, contacts uuid[] DEFAULT NULL)
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

-- Sets engagement of contacts (all of the tenant's when null) from their
-- history; returns how many contacts changed. The history is computed once,
-- before the update: as a subquery of it, on tables not yet analysed (an
-- import, then a new scoring rule), the planner chose to recompute it once
-- per contact.
CREATE FUNCTION audience.rescore(tenant uuid, contacts uuid[] DEFAULT NULL) RETURNS bigint
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

CREATE FUNCTION audience.recompute_scores() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    RETURN audience.rescore(tenant) + audience.maintain_fit(tenant::text, NULL);
END
$$;
COMMENT ON FUNCTION audience.recompute_scores() IS 'Rebuilds every score of the current tenant from its event history and fit rules; returns how many contacts changed';

--------------------------------------------------------------------------
-- Events move scores, activity times and status, per statement
--------------------------------------------------------------------------
-- JIT compiling the per-statement queries cost more than running them.
-- Generic plans: planned for each statement's values, the scoring query
-- took longer to plan than one event (a track()) takes to score
-- (2,700 against 6,400 track() a second). audience.distribute() resets it:
-- Citus needs the values.
CREATE FUNCTION audience.events_inserted() RETURNS trigger
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

CREATE FUNCTION audience.events_deleted() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    touched record;
BEGIN
    FOR touched IN
        SELECT o.tenant_id, array_agg(DISTINCT o.contact_id) AS contacts, bool_or(o.kind = 'sent') AS sends
          FROM old_rows o GROUP BY o.tenant_id
    LOOP
        PERFORM audience.rescore(touched.tenant_id, touched.contacts);
        IF touched.sends THEN
            PERFORM audience.campaign_sent(touched.tenant_id::text);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audience.events_deleted() IS 'Statement trigger: contacts whose events were deleted get scores and segment membership from their remaining history';

CREATE FUNCTION audience.events_are_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'audience.events is append-only'
        USING ERRCODE = 'feature_not_supported',
              HINT = 'Delete the wrong event and insert a corrected one; scores follow both.';
END
$$;
COMMENT ON FUNCTION audience.events_are_append_only() IS 'Trigger: refuses updates of recorded events';

CREATE TRIGGER rules_before_events BEFORE INSERT OR DELETE ON audience.events
    FOR EACH STATEMENT WHEN (NOT audience.restoring()) EXECUTE FUNCTION audience.rules_for_statement();
CREATE TRIGGER scoring_after_insert AFTER INSERT ON audience.events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT WHEN (NOT audience.restoring())
    EXECUTE FUNCTION audience.events_inserted();
CREATE TRIGGER scoring_after_delete AFTER DELETE ON audience.events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION audience.events_deleted();
CREATE TRIGGER append_only BEFORE UPDATE ON audience.events
    FOR EACH STATEMENT EXECUTE FUNCTION audience.events_are_append_only();

-- audience.check_event_kind(text) is in Rust (src/api/scoring.rs).
COMMENT ON FUNCTION audience.check_event_kind(text) IS 'The kind trimmed and lower-cased; raises 22023 when it is not a word';

CREATE FUNCTION audience.track(email text, kind text, campaign text DEFAULT NULL, url text DEFAULT NULL,
                               occurred_at timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
    checked text := audience.check_event_kind(kind);
    contact uuid;
    recorded bigint;
BEGIN
    SELECT c.id INTO contact FROM audience.contacts c
     WHERE c.tenant_id = tenant AND c.email = audience.normalize_email(track.email);
    IF contact IS NULL THEN
        RAISE EXCEPTION 'unknown contact "%"', track.email
            USING ERRCODE = 'undefined_object', HINT = 'audience.upsert_contact adds a contact.';
    END IF;
    INSERT INTO audience.events (tenant_id, contact_id, kind, campaign, url, occurred_at)
    VALUES (tenant, contact, checked, campaign, url, coalesce(track.occurred_at, now()))
    RETURNING id INTO recorded;
    RETURN recorded;
END
$$;
COMMENT ON FUNCTION audience.track(text, text, text, text, timestamptz) IS 'Records an event for the contact with that email; its score, activity and segments follow; returns the event id';

--------------------------------------------------------------------------
-- Changing the scoring plan rescores the tenant
--------------------------------------------------------------------------
CREATE FUNCTION audience.set_score(kind text, points integer, url_pattern text DEFAULT NULL) RETURNS void
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

CREATE FUNCTION audience.set_score_reset(kind text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
    checked text := audience.check_event_kind(kind);
BEGIN
    DELETE FROM audience.scoring_rules r WHERE r.tenant_id = tenant AND r.kind = checked AND r.url_pattern IS NULL;
    INSERT INTO audience.scoring_rules (tenant_id, kind, points, reset) VALUES (tenant, checked, 0, true);
    PERFORM audience.rescore(tenant);
END
$$;
COMMENT ON FUNCTION audience.set_score_reset(text) IS 'Events of a kind set engagement points back to 0; rescores the tenant';

CREATE FUNCTION audience.set_score_decay(percent integer, every interval DEFAULT '30 days') RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    IF percent IS NULL OR percent NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'decay must be a percentage between 0 and 100, not %', coalesce(percent::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF every IS NULL OR every < interval '1 hour' THEN
        RAISE EXCEPTION 'a decay period must be at least one hour, not %', coalesce(every::text, 'null')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO audience.settings (tenant_id, decay_percent, decay_every) VALUES (tenant, percent, every)
    ON CONFLICT (tenant_id) DO UPDATE SET decay_percent = EXCLUDED.decay_percent, decay_every = EXCLUDED.decay_every;
    PERFORM audience.rescore(tenant);
END
$$;
COMMENT ON FUNCTION audience.set_score_decay(integer, interval) IS 'Engagement points lose percent for every full period of age, counted at each audience.apply_decay (0 turns decay off)';

CREATE FUNCTION audience.apply_decay() RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    tenant uuid := audience.current_tenant();
BEGIN
    INSERT INTO audience.settings (tenant_id, decayed_at) VALUES (tenant, now())
    ON CONFLICT (tenant_id) DO UPDATE SET decayed_at = EXCLUDED.decayed_at;
    RETURN audience.rescore(tenant);
END
$$;
COMMENT ON FUNCTION audience.apply_decay() IS 'Ages engagement points to now by the tenant''s decay setting; returns how many contacts changed';

--------------------------------------------------------------------------
-- Fit points: rules over contact fields, kept correct as contacts change
--------------------------------------------------------------------------
CREATE TABLE audience.fit_rules (
    tenant_id  uuid          NOT NULL DEFAULT audience.current_tenant()
                             REFERENCES audience.tenants (id) ON DELETE CASCADE,
    name       text          NOT NULL CHECK (btrim(name) <> ''),
    rule       audience.rule NOT NULL,
    points     integer       NOT NULL CHECK (points BETWEEN -10000 AND 10000),
    created_at timestamptz   NOT NULL DEFAULT now()
);
COMMENT ON TABLE audience.fit_rules IS 'Per-tenant fit rules: contacts matching the rule get the points in fit_score';
SELECT pg_catalog.pg_extension_config_dump('audience.fit_rules', '');
CREATE TRIGGER rules_changed AFTER INSERT OR DELETE OR UPDATE ON audience.fit_rules
    FOR EACH STATEMENT EXECUTE FUNCTION audience.rules_changed();
ALTER TABLE audience.fit_rules ENABLE ALWAYS TRIGGER rules_changed;
CREATE UNIQUE INDEX fit_rules_name ON audience.fit_rules (tenant_id, audience.fold(name));
COMMENT ON INDEX audience.fit_rules_name IS 'Fit rule names are unique per tenant, in any case';

CREATE FUNCTION audience.set_fit_score(name text, rule audience.rule, points integer) RETURNS bigint
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

CREATE FUNCTION audience.drop_fit_score(name text) RETURNS bigint
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

--------------------------------------------------------------------------
-- Views
--------------------------------------------------------------------------
CREATE VIEW audience.score_distribution WITH (security_invoker = true) AS
WITH thresholds AS (
    SELECT coalesce(s.hot_score, 50) AS hot, coalesce(s.warm_score, 20) AS warm
      FROM (SELECT audience.current_tenant() AS tenant) me
      LEFT JOIN audience.settings s ON s.tenant_id = me.tenant
), counted AS (
    SELECT CASE WHEN c.score >= th.hot THEN 'hot' WHEN c.score >= th.warm THEN 'warm' ELSE 'cold' END AS tier,
           count(*) AS contacts, min(c.score) AS min_score, max(c.score) AS max_score
      FROM audience.contacts c CROSS JOIN thresholds th
     WHERE c.tenant_id = audience.current_tenant()
     GROUP BY 1
)
SELECT t.tier, coalesce(c.contacts, 0) AS contacts, c.min_score, c.max_score
  FROM (VALUES (1, 'hot'), (2, 'warm'), (3, 'cold')) t(rank, tier)
  LEFT JOIN counted c ON c.tier = t.tier
 ORDER BY t.rank;
COMMENT ON VIEW audience.score_distribution IS 'How many of the current tenant''s contacts are in each score tier, with the score range';

--------------------------------------------------------------------------
-- Scheduled maintenance of every tenant: refresh, decay, purge
--------------------------------------------------------------------------
CREATE FUNCTION audience.refresh_all_tenants() RETURNS bigint
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

CREATE FUNCTION audience.schedule_refresh(cron text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    job bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add pg_cron to shared_preload_libraries, run CREATE EXTENSION pg_cron, then call this again; or run SELECT audience.refresh_all_tenants() from another scheduler.';
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
        USING 'audience-refresh', cron, 'SELECT audience.refresh_all_tenants()';
    RETURN job;
END
$$;
COMMENT ON FUNCTION audience.schedule_refresh(text) IS 'Schedules audience.refresh_all_tenants() with pg_cron (job "audience-refresh"); returns the job id';
