-- Membership storage prototypes, measured on the membership changes of one
-- real bulk UPDATE (bench/run.sh --only storage). Each form starts from
-- the same stored membership (the segments' members before the UPDATE) and
-- applies the same enters and exits; what it costs in time, WAL and bytes,
-- and what its reads cost, is printed as "measure|form|value|unit" lines.
--
-- Forms:
--   rows     today's: a row per (segment, contact), two B-tree indexes
--   contact  a narrow row per contact holding its segments' numbers
--            (int2[]), keyed by (tenant_id, contact_id), fillfactor 70 so
--            that rewriting it is a HOT update
--   chunks   per segment, a sorted int4[] of per-tenant contact numbers
--            per chunk of 4,096 numbers, keyed by (tenant, segment, chunk)
--
-- Expects: bench_before (segment_members before the UPDATE), bench_after
-- (the same contacts' memberships after it) and bench_touched (the
-- contacts the UPDATE touched), made by bench/run.sh.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SET work_mem = '256MB';

CREATE TEMP TABLE measures (measure text, form text, value numeric, unit text);
CREATE FUNCTION pg_temp.wal() RETURNS pg_lsn LANGUAGE sql AS 'SELECT pg_current_wal_insert_lsn()';
CREATE FUNCTION pg_temp.note(measure text, form text, value numeric, unit text) RETURNS void
LANGUAGE sql AS 'INSERT INTO measures VALUES (measure, form, round(value, 3), unit)';

SELECT tenant_id AS tenant FROM bench_before LIMIT 1 \gset

-- Numbers every form shares: per-tenant segment numbers, per-tenant
-- contact numbers (in the order contacts were created, as a sequence
-- would give them), and the change set.
CREATE TABLE bench_segment_no AS
SELECT tenant_id, segment_id, row_number() OVER (PARTITION BY tenant_id ORDER BY segment_id)::int2 AS no
  FROM (SELECT DISTINCT tenant_id, segment_id FROM bench_before) s;
CREATE TABLE bench_contact_no AS
SELECT tenant_id, id AS contact_id, row_number() OVER (PARTITION BY tenant_id ORDER BY id)::int4 AS no
  FROM audience.contacts WHERE tenant_id = :'tenant';
CREATE UNIQUE INDEX ON bench_contact_no (tenant_id, contact_id);
CREATE TABLE bench_enters AS
SELECT a.tenant_id, a.segment_id, a.contact_id FROM bench_after a
EXCEPT SELECT b.tenant_id, b.segment_id, b.contact_id FROM bench_before b JOIN bench_touched t USING (contact_id);
CREATE TABLE bench_exits AS
SELECT b.tenant_id, b.segment_id, b.contact_id FROM bench_before b JOIN bench_touched t USING (contact_id)
EXCEPT SELECT a.tenant_id, a.segment_id, a.contact_id FROM bench_after a;
SELECT pg_temp.note('changes', 'all', (SELECT count(*) FROM bench_enters), 'enters');
SELECT pg_temp.note('changes', 'all', (SELECT count(*) FROM bench_exits), 'exits');
SELECT pg_temp.note('changes', 'all',
    (SELECT count(DISTINCT contact_id) FROM (SELECT contact_id FROM bench_enters UNION ALL SELECT contact_id FROM bench_exits) c),
    'contacts changed');
SELECT pg_temp.note('changes', 'all', (SELECT count(*) FROM bench_before), 'pairs stored');

------------------------------------------------------------------------
-- rows: today's form
------------------------------------------------------------------------
CREATE TABLE proto_rows (tenant_id uuid NOT NULL, segment_id uuid NOT NULL, contact_id uuid NOT NULL,
                         added_at timestamptz NOT NULL DEFAULT now(),
                         PRIMARY KEY (tenant_id, segment_id, contact_id));
INSERT INTO proto_rows SELECT tenant_id, segment_id, contact_id, added_at FROM bench_before ORDER BY 1, 2, 3;
CREATE INDEX ON proto_rows (tenant_id, contact_id);
VACUUM ANALYZE proto_rows;

------------------------------------------------------------------------
-- contact: a row per contact with its segments' numbers
------------------------------------------------------------------------
CREATE TABLE proto_contact (tenant_id uuid NOT NULL, contact_id uuid NOT NULL, segments int2[] NOT NULL,
                            PRIMARY KEY (tenant_id, contact_id)) WITH (fillfactor = 70);
INSERT INTO proto_contact
SELECT c.tenant_id, c.id, coalesce(array_agg(n.no ORDER BY n.no) FILTER (WHERE n.no IS NOT NULL), '{}')
  FROM audience.contacts c
  LEFT JOIN bench_before b ON b.tenant_id = c.tenant_id AND b.contact_id = c.id
  LEFT JOIN bench_segment_no n ON n.tenant_id = b.tenant_id AND n.segment_id = b.segment_id
 WHERE c.tenant_id = :'tenant'
 GROUP BY c.tenant_id, c.id ORDER BY c.tenant_id, c.id;
VACUUM ANALYZE proto_contact;

-- The new arrays of the contacts whose membership changed, as the
-- maintenance would have them after evaluating their rules.
CREATE TABLE bench_new_sets AS
SELECT t.tenant_id, t.contact_id, coalesce(array_agg(n.no ORDER BY n.no) FILTER (WHERE n.no IS NOT NULL), '{}') AS segments
  FROM (SELECT DISTINCT tenant_id, contact_id FROM (SELECT tenant_id, contact_id FROM bench_enters
                                                    UNION ALL SELECT tenant_id, contact_id FROM bench_exits) c) t
  LEFT JOIN bench_after a ON a.tenant_id = t.tenant_id AND a.contact_id = t.contact_id
  LEFT JOIN bench_segment_no n ON n.tenant_id = a.tenant_id AND n.segment_id = a.segment_id
 GROUP BY t.tenant_id, t.contact_id;

------------------------------------------------------------------------
-- chunks: per segment and chunk of 4,096 contact numbers, a sorted int4[]
------------------------------------------------------------------------
CREATE TABLE proto_chunks (tenant_id uuid NOT NULL, segment int2 NOT NULL, chunk int4 NOT NULL, members int4[] NOT NULL,
                           PRIMARY KEY (tenant_id, segment, chunk)) WITH (fillfactor = 70);
INSERT INTO proto_chunks
SELECT b.tenant_id, s.no, k.no >> 12, array_agg(k.no ORDER BY k.no)
  FROM bench_before b
  JOIN bench_segment_no s ON s.tenant_id = b.tenant_id AND s.segment_id = b.segment_id
  JOIN bench_contact_no k ON k.tenant_id = b.tenant_id AND k.contact_id = b.contact_id
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
ALTER TABLE proto_chunks ALTER COLUMN members SET STORAGE EXTERNAL;
VACUUM ANALYZE proto_chunks;
CREATE TABLE bench_chunk_changes AS
SELECT e.tenant_id, s.no AS segment, k.no >> 12 AS chunk, k.no AS member, true AS enters
  FROM bench_enters e
  JOIN bench_segment_no s ON s.tenant_id = e.tenant_id AND s.segment_id = e.segment_id
  JOIN bench_contact_no k ON k.tenant_id = e.tenant_id AND k.contact_id = e.contact_id
UNION ALL
SELECT x.tenant_id, s.no, k.no >> 12, k.no, false
  FROM bench_exits x
  JOIN bench_segment_no s ON s.tenant_id = x.tenant_id AND s.segment_id = x.segment_id
  JOIN bench_contact_no k ON k.tenant_id = x.tenant_id AND k.contact_id = x.contact_id;
VACUUM ANALYZE bench_enters, bench_exits, bench_new_sets, bench_chunk_changes;

SELECT pg_temp.note('size', 'rows', pg_total_relation_size('proto_rows'), 'bytes');
SELECT pg_temp.note('size', 'contact', pg_total_relation_size('proto_contact'), 'bytes');
SELECT pg_temp.note('size', 'chunks', pg_total_relation_size('proto_chunks'), 'bytes');
SELECT pg_temp.note('size per pair', f.form, pg_total_relation_size(f.rel)::numeric / (SELECT count(*) FROM bench_before), 'bytes')
  FROM (VALUES ('rows', 'proto_rows'::regclass), ('contact', 'proto_contact'), ('chunks', 'proto_chunks')) f(form, rel);

------------------------------------------------------------------------
-- Writing the changes of the UPDATE, after a checkpoint (so full-page
-- images count as they would), each form on its own.
------------------------------------------------------------------------
CHECKPOINT;
SELECT pg_temp.wal() AS wal_start, clock_timestamp() AS started \gset
DELETE FROM proto_rows r USING bench_exits x
 WHERE r.tenant_id = x.tenant_id AND r.segment_id = x.segment_id AND r.contact_id = x.contact_id;
INSERT INTO proto_rows (tenant_id, segment_id, contact_id)
SELECT tenant_id, segment_id, contact_id FROM bench_enters ORDER BY contact_id;
SELECT pg_temp.note('write', 'rows', extract(epoch FROM clock_timestamp() - :'started'::timestamptz), 's');
SELECT pg_temp.note('wal', 'rows', pg_temp.wal() - :'wal_start'::pg_lsn, 'bytes');

CHECKPOINT;
SELECT pg_temp.wal() AS wal_start, clock_timestamp() AS started, n_tup_hot_upd AS hot_before
  FROM pg_stat_user_tables WHERE relid = 'proto_contact'::regclass \gset
UPDATE proto_contact c SET segments = n.segments FROM bench_new_sets n
 WHERE c.tenant_id = n.tenant_id AND c.contact_id = n.contact_id;
SELECT pg_temp.note('write', 'contact', extract(epoch FROM clock_timestamp() - :'started'::timestamptz), 's');
SELECT pg_temp.note('wal', 'contact', pg_temp.wal() - :'wal_start'::pg_lsn, 'bytes');

CHECKPOINT;
SELECT pg_temp.wal() AS wal_start, clock_timestamp() AS started \gset
UPDATE proto_chunks p SET members = n.members
  FROM (SELECT p.tenant_id, p.segment, p.chunk,
               ARRAY(SELECT m FROM unnest(p.members) m
                      WHERE m <> ALL (coalesce(c.exits, '{}'))
                     UNION SELECT unnest(c.enters) ORDER BY 1) AS members
          FROM (SELECT tenant_id, segment, chunk,
                       array_agg(member) FILTER (WHERE enters) AS enters,
                       array_agg(member) FILTER (WHERE NOT enters) AS exits
                  FROM bench_chunk_changes GROUP BY 1, 2, 3) c
          JOIN proto_chunks p USING (tenant_id, segment, chunk)) n
 WHERE p.tenant_id = n.tenant_id AND p.segment = n.segment AND p.chunk = n.chunk;
SELECT pg_temp.note('write', 'chunks', extract(epoch FROM clock_timestamp() - :'started'::timestamptz), 's');
SELECT pg_temp.note('wal', 'chunks', pg_temp.wal() - :'wal_start'::pg_lsn, 'bytes');
SELECT pg_stat_force_next_flush();

-- Each form holds what segment_members holds after the UPDATE.
SELECT pg_temp.note('agrees', 'rows', count(*), 'pairs differing') FROM (
    (SELECT segment_id, contact_id FROM proto_rows EXCEPT SELECT segment_id, contact_id FROM audience.segment_members)
    UNION ALL (SELECT segment_id, contact_id FROM audience.segment_members WHERE tenant_id = :'tenant'
               EXCEPT SELECT segment_id, contact_id FROM proto_rows)) d;
SELECT pg_temp.note('agrees', 'contact', count(*), 'pairs differing') FROM (
    (SELECT n.segment_id, c.contact_id FROM proto_contact c, unnest(c.segments) s
       JOIN bench_segment_no n ON n.no = s WHERE n.tenant_id = c.tenant_id
     EXCEPT SELECT segment_id, contact_id FROM audience.segment_members)
    UNION ALL (SELECT segment_id, contact_id FROM audience.segment_members WHERE tenant_id = :'tenant'
     EXCEPT SELECT n.segment_id, c.contact_id FROM proto_contact c, unnest(c.segments) s
       JOIN bench_segment_no n ON n.no = s WHERE n.tenant_id = c.tenant_id)) d;
SELECT pg_temp.note('agrees', 'chunks', count(*), 'pairs differing') FROM (
    (SELECT n.segment_id, k.contact_id FROM proto_chunks p, unnest(p.members) m
       JOIN bench_contact_no k ON k.no = m JOIN bench_segment_no n ON true
      WHERE k.tenant_id = p.tenant_id AND n.tenant_id = p.tenant_id AND n.no = p.segment
     EXCEPT SELECT segment_id, contact_id FROM audience.segment_members)
    UNION ALL (SELECT segment_id, contact_id FROM audience.segment_members WHERE tenant_id = :'tenant'
     EXCEPT SELECT n.segment_id, k.contact_id FROM proto_chunks p, unnest(p.members) m
       JOIN bench_contact_no k ON k.no = m JOIN bench_segment_no n ON true
      WHERE k.tenant_id = p.tenant_id AND n.tenant_id = p.tenant_id AND n.no = p.segment)) d;
SELECT pg_temp.note('hot updates', 'contact', n_tup_hot_upd - :hot_before, 'of ' || (SELECT count(*) FROM bench_new_sets))
  FROM pg_stat_user_tables WHERE relid = 'proto_contact'::regclass;

------------------------------------------------------------------------
-- Reads: the member ids of the largest segment (best of 5, in ms), and the
-- segments of 2,000 contacts one at a time (each form the same contacts).
------------------------------------------------------------------------
VACUUM ANALYZE proto_rows, proto_contact, proto_chunks;
SELECT n.segment_id AS segment, n.no AS segment_no
  FROM bench_segment_no n JOIN audience.segments s ON s.id = n.segment_id
 ORDER BY s.member_count DESC LIMIT 1 \gset
CREATE FUNCTION pg_temp.best(query text, runs int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE best numeric; started timestamptz; result bigint;
BEGIN
    FOR i IN 1..runs LOOP
        started := clock_timestamp();
        EXECUTE query INTO result;
        best := least(best, extract(epoch FROM clock_timestamp() - started));
    END LOOP;
    PERFORM pg_temp.note('members of the largest segment', 'count', result, 'ids');
    RETURN best * 1000;
END $$;
SELECT pg_temp.note('members of the largest segment', 'rows', pg_temp.best(format(
    'SELECT count(*) FROM proto_rows WHERE tenant_id = %L AND segment_id = %L', :'tenant', :'segment'), 5), 'ms');
SELECT pg_temp.note('members of the largest segment', 'contact', pg_temp.best(format(
    'SELECT count(*) FROM proto_contact WHERE tenant_id = %L AND segments @> ARRAY[%s::int2]', :'tenant', :segment_no), 5), 'ms');
SELECT pg_temp.note('members of the largest segment', 'chunks', pg_temp.best(format(
    'SELECT count(*) FROM proto_chunks p, unnest(p.members) WHERE p.tenant_id = %L AND p.segment = %s', :'tenant', :segment_no), 5), 'ms');

CREATE TABLE bench_probe AS
SELECT k.tenant_id, k.contact_id, k.no FROM bench_contact_no k WHERE k.tenant_id = :'tenant' ORDER BY hashint4(k.no) LIMIT 2000;
CREATE FUNCTION pg_temp.per_contact(query text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE started timestamptz; total bigint := 0; found bigint; p record;
BEGIN
    started := clock_timestamp();
    FOR p IN SELECT * FROM bench_probe LOOP
        EXECUTE query INTO found USING p.tenant_id, p.contact_id, p.no;
        total := total + found;
    END LOOP;
    PERFORM pg_temp.note('segments of a contact', 'count', total, 'memberships of 2,000 contacts');
    RETURN extract(epoch FROM clock_timestamp() - started) * 1e6 / 2000;
END $$;
SELECT pg_temp.note('segments of a contact', 'rows', pg_temp.per_contact(
    'SELECT count(*) FROM proto_rows WHERE tenant_id = $1 AND contact_id = $2'), 'µs');
SELECT pg_temp.note('segments of a contact', 'contact', pg_temp.per_contact(
    'SELECT cardinality(segments) FROM proto_contact WHERE tenant_id = $1 AND contact_id = $2'), 'µs');
SELECT pg_temp.note('segments of a contact', 'chunks', pg_temp.per_contact(
    'SELECT count(*) FROM proto_chunks WHERE tenant_id = $1 AND chunk = $3 >> 12 AND $3 = ANY (members)'), 'µs');

SELECT measure || '|' || form || '|' || value || '|' || unit FROM measures;
DROP TABLE proto_rows, proto_contact, proto_chunks, bench_segment_no, bench_contact_no, bench_enters, bench_exits,
           bench_new_sets, bench_chunk_changes, bench_probe;
