-- Running on a Citus cluster, distributed by tenant (README, "Growing past
-- one server"). Every key starts with tenant_id, so each tenant's rows can
-- live together on one worker; audience.distribute() makes them do so once
-- the workers are added. Citus is optional: nothing here runs without it.

-- The tenants a role may select, for the policy on tenants: Citus accepts
-- no subquery in the policies of its tables.
CREATE FUNCTION audience.may_select_tenant(tenant uuid) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT FROM audience.tenant_access g WHERE g.tenant_id IS NULL OR g.tenant_id = tenant)
$$;
COMMENT ON FUNCTION audience.may_select_tenant(uuid) IS 'Whether the session''s role holds a grant of the tenant or of every tenant (the policy on tenants under Citus)';

CREATE FUNCTION audience.distribute()
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
