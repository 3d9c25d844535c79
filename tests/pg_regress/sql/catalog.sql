-- Every object of the extension explains itself (\dx+, \df+, \d+), every
-- table holding user data is dumped by pg_dump, and every table has Row
-- Level Security. Each query lists what breaks the rule: expected empty.
SELECT 'function ' || p.oid::regprocedure AS undocumented
  FROM pg_proc p
 WHERE p.pronamespace = 'audience'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT 'relation ' || c.oid::regclass
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'v', 'i') AND obj_description(c.oid, 'pg_class') IS NULL
   AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = c.oid)
UNION ALL
SELECT 'type ' || t.oid::regtype
  FROM pg_type t
 WHERE t.typnamespace = 'audience'::regnamespace AND t.typtype = 'b' AND t.typcategory <> 'A' AND obj_description(t.oid, 'pg_type') IS NULL
ORDER BY 1;

SELECT c.oid::regclass AS not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind IN ('r', 'S')
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'audience')::oid[])
 ORDER BY 1;

SELECT c.oid::regclass AS without_row_security
  FROM pg_class c
 WHERE c.relnamespace = 'audience'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
 ORDER BY 1;
