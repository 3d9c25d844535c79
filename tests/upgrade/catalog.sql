-- Every object of the extension with its definition, in a stable order:
-- an upgraded database and a fresh install must print the same.
SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid) || coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM pg_proc p WHERE p.pronamespace = 'audience'::regnamespace AND p.prokind IN ('f', 'p') ORDER BY 1;
SELECT 'privileges ' || p.oid::regprocedure || ' ' || coalesce(array_to_string(ARRAY(SELECT a::text FROM unnest(p.proacl) a ORDER BY 1), ','), 'default')
  FROM pg_proc p WHERE p.pronamespace = 'audience'::regnamespace ORDER BY 1;
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || ' storage ' || a.attstorage::text
       || coalesce(' -- ' || col_description(a.attrelid, a.attnum), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY 1;
SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || coalesce(' ' || array_to_string(c.reloptions, ','), '')
       || CASE WHEN c.relrowsecurity THEN ' rls' ELSE '' END || coalesce(' -- ' || obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c WHERE c.relnamespace = 'audience'::regnamespace ORDER BY 1;
SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace = 'audience'::regnamespace ORDER BY 1;
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'audience'::regnamespace ORDER BY 1;
SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'audience'::regnamespace AND NOT t.tgisinternal ORDER BY 1;
SELECT 'view ' || c.oid::regclass || E'\n' || pg_get_viewdef(c.oid) FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind = 'v' ORDER BY 1;
SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
  FROM pg_policies WHERE schemaname = 'audience' ORDER BY 1;
SELECT 'column grant ' || a.attrelid::regclass || '.' || a.attname || ' '
       || array_to_string(ARRAY(SELECT g::text FROM unnest(a.attacl) g ORDER BY 1), ',')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'audience'::regnamespace AND a.attacl IS NOT NULL ORDER BY 1;
SELECT 'grant ' || c.oid::regclass || ' ' || coalesce(array_to_string(ARRAY(SELECT a::text FROM unnest(c.relacl) a ORDER BY 1), ','), '')
  FROM pg_class c WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v', 'S') ORDER BY 1;
SELECT 'type ' || t.oid::regtype || coalesce(' -- ' || obj_description(t.oid, 'pg_type'), '')
  FROM pg_type t WHERE t.typnamespace = 'audience'::regnamespace AND t.typtype IN ('b', 'c', 'e') ORDER BY 1;
SELECT 'config ' || unnest(extconfig)::regclass FROM pg_extension WHERE extname = 'audience' ORDER BY 1;
