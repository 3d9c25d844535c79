#!/usr/bin/env bash
# The benchmark suite: the extension's path and a hand-written PostgreSQL
# baseline on the same data in one run, each checked to give the same
# result before its time counts. Prints one line per scenario and a summary.
#
#   bench/run.sh [--scale N] [--events N] [--only SCENARIO[,SCENARIO…]]
#
# Scenarios: preview, import, files, workbook, events, update, curve, storage,
# refresh, analysts, lookup, pgbench. (storage measures prototypes of membership storage
# and prints its own table.)
#
# A scenario whose result disagrees with its baseline makes the run exit 1.
# Timing never fails the run.
source "$(dirname "$0")/../scripts/lib.sh"

SCALE=1000000
EVENTS=3
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
        --scale) SCALE=$2; shift 2 ;;
        --events) EVENTS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        *) echo "usage: bench/run.sh [--scale N] [--events N] [--only preview|import|files|workbook|events|update|curve|storage|refresh|analysts|lookup|pgbench]" >&2; exit 2 ;;
    esac
done
BENCH_DIR=${BENCH_DIR:-/tmp/audience-bench}
BENCH_PORT=${BENCH_PORT:-54331}
REPEAT=${REPEAT:-3}
PREVIEW_RUNS=${PREVIEW_RUNS:-9}

ensure_tools
say "building and installing the extension (release)"
install_extension --release >/dev/null
start_cluster "$BENCH_DIR" "$BENCH_PORT"
trap 'stop_cluster "$BENCH_DIR"' EXIT
cat >>"$BENCH_DIR/data/postgresql.conf" <<CONF
shared_buffers = '4GB'
work_mem = '64MB'
maintenance_work_mem = '1GB'
max_wal_size = '8GB'
synchronous_commit = off
CONF
as_pg env -u RUST_BACKTRACE "$("$PG_CONFIG" --bindir)/pg_ctl" -D "$BENCH_DIR/data" -w restart >/dev/null
PSQL=("$("$PG_CONFIG" --bindir)/psql" -h "$BENCH_DIR" -p "$BENCH_PORT" -U postgres -X -q -A -t -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
PSQL+=(-d bench)
"${PSQL[@]}" -c "CREATE EXTENSION audience"

now() { date +%s.%N; }
# calc EXPRESSION: floating-point arithmetic and comparisons (1/0).
calc() { awk "BEGIN { print $1 }"; }
# sql TEXT: runs it in tenant $TENANT_NAME (default "bench"); prints the result.
sql() { "${PSQL[@]}" -c "SET audience.tenant = '${TENANT_NAME:-bench}'" -c "$1"; }
# timed TEXT [RUNS]: the best wall time of RUNS (default REPEAT) runs in
# $SECONDS_TAKEN, the result in $RESULT. Each run starts after a
# checkpoint, so that no run pays for writing pages the one before dirtied.
timed() {
    local start elapsed i
    SECONDS_TAKEN=""
    for ((i = 0; i < ${2:-$REPEAT}; i++)); do
        "${PSQL[@]}" -c "CHECKPOINT"
        start=$(now)
        RESULT=$(sql "$1")
        elapsed=$(calc "$(now) - $start")
        if [ -z "$SECONDS_TAKEN" ] || [ "$(calc "$elapsed < $SECONDS_TAKEN")" = 1 ]; then SECONDS_TAKEN=$elapsed; fi
    done
}

FAILED=0
SUMMARY=()
# report NAME EXTENSION_SECONDS BASELINE_SECONDS EXTENSION_RESULT BASELINE_RESULT
report() {
    local ratio verdict="ok"
    ratio=$(calc "$2 / $3")
    if [ "$4" != "$5" ]; then verdict="MISMATCH ($4 vs $5)"; FAILED=1; fi
    local line
    line=$(printf '%-58s %9.3fs %9.3fs %7.2fx  %s' "$1" "$2" "$3" "$ratio" "$verdict")
    echo "$line"
    SUMMARY+=("$line")
}

say "generating $SCALE contacts and about $((SCALE * EVENTS * 9 / 10)) events"
start=$(now)
"${PSQL[@]}" -v scale="$SCALE" -v events="$EVENTS" -f "$(dirname "$0")/generate.sql" >/dev/null
printf 'generated in %.1fs\n' "$(calc "$(now) - $start")"
TENANT=$(sql "SELECT audience.current_tenant()")
BASE="SELECT count(*) FROM audience.contacts c WHERE c.tenant_id = '$TENANT'"

# How many timeless dynamic segments hold other members than their rules
# select now (time-relative ones drift by design until refresh).
segments_off_their_rules() {
    # Of the current tenant only: preview() counts the current tenant's contacts.
    sql "SELECT count(*) FROM audience.segments s WHERE s.tenant_id = audience.current_tenant() AND s.kind = 'dynamic'
           AND NOT audience.rule_is_time_relative(s.rule) AND s.member_count <> audience.preview(s.rule)"
}

# make_segments FROM TO: segments FROM..TO of bench/segments.sql, ten per
# transaction, as an application would create them.
make_segments() {
    local from
    for ((from = $1; from <= $2; from += 10)); do
        sql "$(sed "s/generate_series(1, 50)/generate_series($from, $((from + 9 < $2 ? from + 9 : $2)))/" "$(dirname "$0")/segments.sql")" >/dev/null
    done
}

wants() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

if wants preview; then
    say "preview of each example rule vs the same count by hand (best of $PREVIEW_RUNS each, interleaved)"
    # Sub-second queries are timed inside one session, alternating which side
    # runs first, so that neither client start-up nor a burst of noise on the
    # machine falls on one side only.
    sql "CREATE FUNCTION bench_side_by_side(ext text, base text, runs int) RETURNS text
         LANGUAGE plpgsql AS \$f\$
         DECLARE ext_best float8; base_best float8; started timestamptz; ext_result text; base_result text;
         BEGIN
           FOR i IN 1..runs LOOP
             FOR side IN 0..1 LOOP
               started := clock_timestamp();
               IF (i + side) % 2 = 0 THEN
                 EXECUTE ext INTO ext_result;
                 ext_best := least(ext_best, extract(epoch FROM clock_timestamp() - started));
               ELSE
                 EXECUTE base INTO base_result;
                 base_best := least(base_best, extract(epoch FROM clock_timestamp() - started));
               END IF;
             END LOOP;
           END LOOP;
           RETURN concat_ws(' ', ext_best, base_best, ext_result, base_result);
         END \$f\$" >/dev/null
    while IFS='|' read -r rule baseline; do
        [ -n "$rule" ] || continue
        read -r ext base ext_result base_result < <(sql "SELECT bench_side_by_side(
            \$rule\$SELECT audience.preview(\$\$${rule}\$\$)\$rule\$, \$base\$$BASE AND ($baseline)\$base\$, $PREVIEW_RUNS)")
        report "preview: $rule" "$ext" "$base" "$ext_result" "$base_result"
    done <"$(dirname "$0")/preview_rules.txt"
    sql "DROP FUNCTION bench_side_by_side" >/dev/null
fi

# The bench audience as a CRM export: 13 columns (2 of them custom fields)
# and tags, with the headers a CRM export has, in $CSV (written once).
CSV="$BENCH_DIR/contacts.csv"
write_import_csv() {
    [ -f "$CSV" ] && return
    sql "COPY (SELECT 'imported.' || c.email AS \"Email\", first_name AS \"First Name\", last_name AS \"Last Name\",
                      company AS \"Company\", job_title AS \"Job Title\", country AS \"Country\", city AS \"City\",
                      source AS \"Source\", lead_status AS \"Lead Status\", assigned_to AS \"Assigned To\",
                      reachability AS \"Reachability\", array_to_string(tags, ';') AS \"Tags\",
                      attributes->>'industry' AS \"Industry\", attributes->>'budget' AS \"Budget\"
                 FROM audience.contacts c WHERE c.tenant_id = '$TENANT' ORDER BY c.email)
         TO '$CSV' WITH (FORMAT csv, HEADER true)" >/dev/null
    [ "$(id -u)" = 0 ] && chown postgres "$CSV"
    return 0
}
# import_tenant NAME: a new tenant with the CSV's custom fields.
import_tenant() {
    sql "SELECT audience.create_tenant('$1');
         SET audience.tenant = '$1';
         SELECT audience.define_field('industry', 'text'), audience.define_field('budget', 'number')" >/dev/null
}
# Peak private memory (RssAnon, MB) of the backend running a statement
# that contains PATTERN, sampled from /proc: start_memory_watch PATTERN
# before it, stop_memory_watch after it (prints the peak).
start_memory_watch() {
    PEAK_FILE=$(mktemp)
    (peak=0; pid=""
     while [ -z "$pid" ]; do
         pid=$("${PSQL[@]}" -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%$1%' AND query NOT LIKE '%pg_stat_activity%' LIMIT 1")
         sleep 0.1
     done
     while [ -r "/proc/$pid/status" ]; do
         kb=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
         [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb && echo "$peak" >"$PEAK_FILE"
         sleep 0.1
     done) &
    SAMPLER=$!
}
stop_memory_watch() {
    kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
    local kb
    kb=$(cat "$PEAK_FILE" 2>/dev/null)
    echo $(( ${kb:-0} / 1024 ))
    rm -f "$PEAK_FILE"
}
# import_once TENANT PATTERN CALL: audience.CALL into a new tenant, timed
# once, its peak memory in PEAK_MB (PATTERN finds its backend).
import_once() {
    import_tenant "$1"
    start_memory_watch "$2"
    TENANT_NAME=$1 timed "SELECT inserted + updated FROM audience.$3" 1
    PEAK_MB=$(stop_memory_watch)
}
MEMORY_LINES=()

if wants import; then
    say "import of the $SCALE-row CSV vs COPY into staging + INSERT … SELECT"
    write_import_csv
    import_tenant import
    sql "CREATE TABLE bench_staging (email text, first_name text, last_name text, company text, job_title text,
             country text, city text, source text, lead_status text, assigned_to text, reachability text,
             tags text, industry text, budget text);
         CREATE TABLE bench_imported (LIKE audience.contacts INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES INCLUDING CONSTRAINTS)" >/dev/null
    IMPORT_TENANT=$(sql "SELECT id FROM audience.tenants WHERE name = 'import'")
    COPY_INSERT="TRUNCATE bench_staging;
        COPY bench_staging FROM '$CSV' WITH (FORMAT csv, HEADER true);
        INSERT INTO bench_imported AS c (tenant_id, email, first_name, last_name, company, job_title, country, city, source,
                                         lead_status, assigned_to, reachability, tags, attributes)
        SELECT '$IMPORT_TENANT', lower(btrim(email)), first_name, last_name, company, job_title, country, city,
               coalesce(source, 'csv_import'), coalesce(lead_status, 'new'), assigned_to, reachability::integer,
               coalesce(string_to_array(tags, ';'), '{}'),
               jsonb_strip_nulls(jsonb_build_object('industry', industry, 'budget', budget::numeric))
          FROM bench_staging"
    start_memory_watch "audience.import_csv("
    TENANT_NAME=import timed "SELECT inserted FROM audience.import_csv(pg_read_binary_file('$CSV'), '{\"segment\": \"Imported\"}')" 1
    ext=$SECONDS_TAKEN ext_result=$RESULT
    import_memory=$(stop_memory_watch)
    timed "$COPY_INSERT; SELECT count(*) FROM bench_imported" 1; base=$SECONDS_TAKEN base_result=$RESULT
    report "import_csv of $SCALE rows vs COPY + INSERT…SELECT" "$ext" "$base" "$ext_result" "$base_result"
    # The same rows into a tenant holding the 50 dynamic segments.
    into_none=$ext
    import_tenant import50
    TENANT_NAME=import50 make_segments 1 50
    TENANT_NAME=import50 timed "SELECT inserted FROM audience.import_csv(pg_read_binary_file('$CSV'), '{\"segment\": \"Imported\"}')" 1
    report "import_csv of $SCALE rows into 50 segments vs into none" "$SECONDS_TAKEN" "$into_none" "$RESULT" "$ext_result"
    report "  … and then: segments that disagree with their rules" 1 1 \
        "$(TENANT_NAME=import50 segments_off_their_rules)" "0"
    TENANT_NAME=import timed "SELECT inserted + updated + unchanged FROM audience.import_csv(pg_read_binary_file('$CSV'), '{\"segment\": \"Imported\"}')" 1
    ext=$SECONDS_TAKEN ext_result=$RESULT
    timed "$COPY_INSERT ON CONFLICT (tenant_id, email) DO UPDATE SET first_name = EXCLUDED.first_name,
             last_name = EXCLUDED.last_name, company = EXCLUDED.company, job_title = EXCLUDED.job_title,
             country = EXCLUDED.country, city = EXCLUDED.city, source = EXCLUDED.source, lead_status = EXCLUDED.lead_status,
             assigned_to = EXCLUDED.assigned_to, reachability = EXCLUDED.reachability, tags = EXCLUDED.tags,
             attributes = EXCLUDED.attributes;
           SELECT count(*) FROM bench_imported" 1
    base=$SECONDS_TAKEN base_result=$RESULT
    report "re-import (on_conflict update) vs INSERT … ON CONFLICT DO UPDATE" "$ext" "$base" "$ext_result" "$base_result"
    MEMORY_LINES+=("$(printf 'peak backend memory (RssAnon) of import_csv: %s MB for a %s MB file' \
        "$import_memory" "$(( $(stat -c %s "$CSV") / 1048576 ))")")
    echo "${MEMORY_LINES[-1]}"
    sql "DROP TABLE bench_staging, bench_imported" >/dev/null
fi

if wants files; then
    say "import_csv_file of the $SCALE-row CSV vs import_csv of the same bytes (each into a new tenant, best of 2, alternating)"
    write_import_csv
    file_best="" bytes_best=""
    # Alternating which goes first, so that neither always meets the
    # smaller table.
    for order in "file bytes" "bytes file"; do
        for side in $order; do
            if [ "$side" = file ]; then
                import_once "from_file_${order%% *}" "audience.import_csv_file(" "import_csv_file('$CSV')"
                file_memory=$PEAK_MB ext_result=$RESULT
                [ -z "$file_best" ] || [ "$(calc "$SECONDS_TAKEN < $file_best")" = 1 ] && file_best=$SECONDS_TAKEN
            else
                import_once "from_bytes_${order%% *}" "audience.import_csv(pg_read" "import_csv(pg_read_binary_file('$CSV'))"
                bytes_memory=$PEAK_MB base_result=$RESULT
                [ -z "$bytes_best" ] || [ "$(calc "$SECONDS_TAKEN < $bytes_best")" = 1 ] && bytes_best=$SECONDS_TAKEN
            fi
        done
    done
    report "import_csv_file vs import_csv of the same $SCALE rows" "$file_best" "$bytes_best" "$ext_result" "$base_result"
    MEMORY_LINES+=("$(printf 'peak backend memory (RssAnon): import_csv_file %s MB, import_csv %s MB, for a %s MB file' \
        "$file_memory" "$bytes_memory" "$(( $(stat -c %s "$CSV") / 1048576 ))")")
    echo "${MEMORY_LINES[-1]}"
fi

if wants workbook; then
    WORKBOOK_ROWS=$(( SCALE < 200000 ? SCALE : 200000 ))
    say "import_xlsx of a $WORKBOOK_ROWS-row workbook vs import_csv of the same rows as CSV (each into a new tenant)"
    write_import_csv
    XLSX="$BENCH_DIR/contacts.xlsx" ROWS_CSV="$BENCH_DIR/contacts-$WORKBOOK_ROWS.csv"
    head -n $((WORKBOOK_ROWS + 1)) "$CSV" >"$ROWS_CSV"
    (cd "$ROOT" && cargo run -q --release -p audience-core --example csv_to_xlsx -- "$ROWS_CSV" "$XLSX")
    [ "$(id -u)" = 0 ] && chown postgres "$XLSX" "$ROWS_CSV"
    import_once from_workbook "audience.import_xlsx(" "import_xlsx(pg_read_binary_file('$XLSX'))"
    ext=$SECONDS_TAKEN ext_result=$RESULT workbook_memory=$PEAK_MB
    import_once from_csv "audience.import_csv(pg_read" "import_csv(pg_read_binary_file('$ROWS_CSV'))"
    base=$SECONDS_TAKEN base_result=$RESULT
    report "import_xlsx vs import_csv of $WORKBOOK_ROWS rows" "$ext" "$base" "$ext_result" "$base_result"
    same=$(sql "SELECT count(*) FROM (
                  SELECT email, first_name, last_name, company, job_title, country, city, lead_status, reachability, tags, attributes
                    FROM audience.contacts c JOIN audience.tenants t ON t.id = c.tenant_id WHERE t.name = 'from_workbook'
                  EXCEPT
                  SELECT email, first_name, last_name, company, job_title, country, city, lead_status, reachability, tags, attributes
                    FROM audience.contacts c JOIN audience.tenants t ON t.id = c.tenant_id WHERE t.name = 'from_csv') d")
    report "  … contacts that differ between the two" 1 1 "$same" 0
    MEMORY_LINES+=("$(printf 'peak backend memory (RssAnon) of import_xlsx: %s MB for a %s MB workbook' \
        "$workbook_memory" "$(( $(stat -c %s "$XLSX") / 1048576 ))")")
    echo "${MEMORY_LINES[-1]}"
fi

if wants events; then
    EVENT_ROWS=$SCALE
    STATEMENTS=$(( (EVENT_ROWS + 9999) / 10000 ))
    say "$EVENT_ROWS events in statements of 10k rows vs INSERT + one UPDATE per statement"
    sql "SELECT setseed(0.24);
         CREATE TABLE bench_new_events AS
         SELECT row_number() OVER () AS n, c.id AS contact_id,
                (ARRAY['sent', 'opened', 'opened', 'clicked', 'visited', 'replied'])[1 + floor(random() * 6)::int] AS kind,
                '2026-12-news'::text AS campaign,
                (ARRAY[NULL, '/pricing', '/docs'])[1 + floor(random() * 3)::int] AS url,
                now() - random() * interval '10 days' AS occurred_at
           FROM (SELECT id FROM audience.contacts WHERE tenant_id = '$TENANT' ORDER BY random() LIMIT $EVENT_ROWS) c,
                generate_series(1, 2) copy;
         CREATE TABLE bench_people (LIKE audience.contacts INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
         INSERT INTO bench_people SELECT * FROM audience.contacts WHERE tenant_id = '$TENANT';
         CREATE TABLE bench_events (LIKE audience.events INCLUDING ALL);
         ALTER TABLE bench_events ADD FOREIGN KEY (tenant_id, contact_id) REFERENCES bench_people (tenant_id, id)" >/dev/null
    "${PSQL[@]}" -c "VACUUM ANALYZE bench_people" -c "VACUUM ANALYZE audience.contacts"
    # run N FIRST: statements of 10k events from bench_new_events, rows FIRST onwards.
    ext_events() {
        echo "DO \$\$ BEGIN FOR b IN 0..$((STATEMENTS - 1)) LOOP
            INSERT INTO audience.events (contact_id, kind, campaign, url, occurred_at)
            SELECT contact_id, kind, campaign, url, occurred_at FROM bench_new_events
             WHERE n > $1 + b * 10000 AND n <= least($1 + (b + 1) * 10000, $1 + $EVENT_ROWS);
        END LOOP; END \$\$; SELECT sum(engagement_score) || '/' || sum(event_count) FROM audience.contacts WHERE tenant_id = '$TENANT'"
    }
    base_events() {
        echo "DO \$\$ BEGIN FOR b IN 0..$((STATEMENTS - 1)) LOOP
            WITH added AS (
                INSERT INTO bench_events (tenant_id, contact_id, kind, campaign, url, occurred_at)
                SELECT '$TENANT', contact_id, kind, campaign, url, occurred_at FROM bench_new_events
                 WHERE n > $1 + b * 10000 AND n <= least($1 + (b + 1) * 10000, $1 + $EVENT_ROWS)
                RETURNING contact_id, kind, url, occurred_at)
            UPDATE bench_people c
               SET engagement_score = c.engagement_score + a.points, event_count = c.event_count + a.events,
                   last_activity_at = greatest(c.last_activity_at, a.active),
                   last_opened_at = greatest(c.last_opened_at, a.opened),
                   last_clicked_at = greatest(c.last_clicked_at, a.clicked)
              FROM (SELECT contact_id,
                           sum(CASE kind WHEN 'opened' THEN 1 WHEN 'clicked' THEN 5 WHEN 'replied' THEN 10
                                         WHEN 'visited' THEN CASE WHEN url LIKE '%/pricing%' THEN 20 ELSE 0 END
                                         ELSE 0 END) AS points,
                           count(*) AS events,
                           max(occurred_at) FILTER (WHERE kind <> 'sent') AS active,
                           max(occurred_at) FILTER (WHERE kind = 'opened') AS opened,
                           max(occurred_at) FILTER (WHERE kind = 'clicked') AS clicked
                      FROM added GROUP BY contact_id) a
             WHERE c.tenant_id = '$TENANT' AND c.id = a.contact_id;
        END LOOP; END \$\$; SELECT sum(engagement_score) || '/' || sum(event_count) FROM bench_people"
    }
    timed "$(base_events 0)" 1; base=$SECONDS_TAKEN base_result=$RESULT
    timed "$(ext_events 0)" 1; ext=$SECONDS_TAKEN ext_result=$RESULT
    report "$EVENT_ROWS events, 10k per INSERT, no segments" "$ext" "$base" "$ext_result" "$base_result"
    sql "SELECT count(audience.create_segment('Event segment ' || n, rule::audience.rule))
           FROM (SELECT n, CASE n % 5
               WHEN 0 THEN format('opened at least %s times', 1 + n % 3)
               WHEN 1 THEN format('clicked within %s days', 10 + n)
               WHEN 2 THEN format('score > %s', n * 3)
               WHEN 3 THEN format('tag %L and last_activity_at within 30 days', (ARRAY['VIP','Buyer'])[1 + n % 2])
               ELSE format('country = %L and reachability >= %s', (ARRAY['US','DE'])[1 + n % 2], 30 + n)
             END AS rule FROM generate_series(1, 20) n) s" >/dev/null
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts" -c "VACUUM ANALYZE audience.contact_segments"
    timed "$(base_events "$EVENT_ROWS")" 1; base=$SECONDS_TAKEN base_result=$RESULT
    timed "$(ext_events "$EVENT_ROWS")" 1; ext=$SECONDS_TAKEN ext_result=$RESULT
    report "$EVENT_ROWS events, 10k per INSERT, 20 segments" "$ext" "$base" "$ext_result" "$base_result"
    report "  … and then: segments that disagree with their rules" 1 1 \
        "$(segments_off_their_rules)" "0"
    sql "SELECT count(audience.drop_segment(name)) FROM audience.segments WHERE name LIKE 'Event segment %'" >/dev/null
fi

# 100k contacts (all of a smaller audience), and an UPDATE of them that
# moves each in and out of two or three of the 50 segments on average.
UPDATED="tenant_id = '$TENANT' AND (hashtext(email) & 1023) < $((1024 * 100000 / SCALE < 1024 ? 1024 * 100000 / SCALE : 1024))"
UPDATE="UPDATE audience.contacts SET reachability = (reachability + 37) % 101 WHERE $UPDATED"
if wants update; then
    say "100k-row contact UPDATE with 0 and 50 dynamic segments"
    # Best of REPEAT runs on each side, as elsewhere: each run shifts
    # reachability again, moving about as many memberships as the one before.
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts"
    timed "$UPDATE"; base=$SECONDS_TAKEN
    base_rows=$(sql "SELECT count(*) FROM audience.contacts WHERE $UPDATED")
    start=$(now)
    make_segments 1 50
    printf 'created 50 dynamic segments in %.1fs\n' "$(calc "$(now) - $start")"
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts" -c "VACUUM ANALYZE audience.contact_segments"
    timed "$UPDATE"; ext=$SECONDS_TAKEN
    report "UPDATE of $base_rows contacts, 50 segments vs none" "$ext" "$base" \
        "$(segments_off_their_rules)" "0"
fi

if wants curve; then
    say "the 100k-contact UPDATE with 0, 10, 50 and 200 dynamic segments (time and WAL)"
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts"
    made=0
    for count in 0 10 50 200; do
        if [ "$count" -gt "$made" ]; then
            make_segments $((made + 1)) "$count"
            "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts" -c "VACUUM ANALYZE audience.contact_segments"
            made=$count
        fi
        timed "$UPDATE"
        [ "$count" = 0 ] && none=$SECONDS_TAKEN
        "${PSQL[@]}" -c "CHECKPOINT"
        wal=$(sql "SELECT pg_current_wal_insert_lsn()")
        sql "$UPDATE" >/dev/null
        wal=$(sql "SELECT pg_size_pretty(pg_current_wal_insert_lsn() - '$wal'::pg_lsn)")
        pairs=$(sql "SELECT count(*) FROM audience.segment_members WHERE tenant_id = '$TENANT'")
        report "UPDATE, $count segments ($pairs pairs), WAL $wal" "$SECONDS_TAKEN" "$none" \
            "$(segments_off_their_rules)" "0"
    done
fi

if wants storage; then
    say "membership storage prototypes, on the changes of the 100k-contact UPDATE with 50 segments (bench/storage.sql)"
    if [ "$(sql "SELECT count(*) FROM audience.segments WHERE tenant_id = '$TENANT' AND name = 'Segment 1'")" = 0 ]; then
        make_segments 1 50
    fi
    sql "DROP TABLE IF EXISTS bench_before, bench_after, bench_touched;
         CREATE TABLE bench_touched AS SELECT id AS contact_id FROM audience.contacts WHERE $UPDATED;
         CREATE TABLE bench_before AS SELECT * FROM audience.segment_members WHERE tenant_id = '$TENANT'" >/dev/null
    sql "$UPDATE" >/dev/null
    sql "CREATE TABLE bench_after AS SELECT m.* FROM audience.segment_members m JOIN bench_touched t USING (contact_id)" >/dev/null
    [ "$(id -u)" = 0 ] && chmod a+r "$(dirname "$0")/storage.sql"
    printf '%-34s %-8s %16s  %s\n' measure form value unit
    "${PSQL[@]}" -v ON_ERROR_STOP=1 -f "$(cd "$(dirname "$0")" && pwd)/storage.sql" | awk -F'|' '{ printf "%-34s %-8s %16s  %s\n", $1, $2, $3, $4 }'
    sql "DROP TABLE bench_before, bench_after, bench_touched" >/dev/null
fi

if wants refresh; then
    say "refresh of a time-relative segment after 1% churn vs a count by hand"
    sql "SELECT audience.create_segment('Active this half year', 'last_activity_at within 180 days')" >/dev/null
    # Age 1% of the members behind the segment's back (triggers off), as time would.
    sql "SET session_replication_role = replica;
         UPDATE audience.contacts SET last_activity_at = last_activity_at - interval '200 days'
          WHERE tenant_id = '$TENANT' AND (hashtext(email) & 1023) < 10 AND last_activity_at >= now() - interval '180 days'" >/dev/null
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts"
    timed "SELECT audience.refresh('Active this half year')" 1; ext=$SECONDS_TAKEN changes=$RESULT
    timed "$BASE AND c.last_activity_at >= now() - interval '180 days'"; base=$SECONDS_TAKEN base_result=$RESULT
    report "refresh ($changes changes) vs count(*) of the rule" "$ext" "$base" \
        "$(sql "SELECT member_count FROM audience.segments WHERE name = 'Active this half year'")" "$base_result"
fi

if wants analysts; then
    say "analysts: breakdown and overlap vs GROUP BY and join over stored membership"
    if [ "$(sql "SELECT count(*) FROM audience.segments WHERE tenant_id = '$TENANT' AND name = 'Segment 1'")" = 0 ]; then
        make_segments 1 50
        "${PSQL[@]}" -c "VACUUM ANALYZE audience.contact_segments"
    fi
    # Baselines read stored membership as it is stored (a row per contact
    # holding its segments' numbers), by hand.
    SEGMENT_NO="(SELECT number FROM audience.segments WHERE tenant_id = '$TENANT' AND name = 'Segment %s')"
    timed "SELECT string_agg(coalesce(value, '') || ':' || contacts, ',' ORDER BY value) FROM audience.breakdown('Segment 5', 'country')"
    ext=$SECONDS_TAKEN ext_result=$(md5sum <<<"$RESULT")
    timed "SELECT string_agg(coalesce(country, '') || ':' || n, ',' ORDER BY country)
             FROM (SELECT c.country, count(*) AS n FROM audience.contact_segments m
                     JOIN audience.contacts c ON c.tenant_id = m.tenant_id AND c.id = m.contact_id
                    WHERE m.tenant_id = '$TENANT' AND m.segments @> ARRAY[$(printf "$SEGMENT_NO" 5)] GROUP BY 1) s"
    base=$SECONDS_TAKEN base_result=$(md5sum <<<"$RESULT")
    report "breakdown of a segment by country" "$ext" "$base" "$ext_result" "$base_result"
    timed "SELECT in_both FROM audience.overlap('Segment 5', 'Segment 15')"; ext=$SECONDS_TAKEN ext_result=$RESULT
    timed "SELECT count(*) FROM audience.contact_segments m
            WHERE m.tenant_id = '$TENANT' AND m.segments @> ARRAY[$(printf "$SEGMENT_NO" 5), $(printf "$SEGMENT_NO" 15)]"
    base=$SECONDS_TAKEN base_result=$RESULT
    report "overlap of two segments (contacts in both)" "$ext" "$base" "$ext_result" "$base_result"
    # Every pair at once; the baseline counts pairs of each contact's stored
    # segments (Everyone, whose members are not stored, is left out of both
    # sums).
    timed "SELECT sum(in_both) FILTER (WHERE segment_a <> 'Everyone' AND segment_b <> 'Everyone') FROM audience.segment_overlap"
    ext=$SECONDS_TAKEN ext_result=$RESULT
    timed "SELECT sum(n) FROM (SELECT a, b, count(*) AS n FROM audience.contact_segments m
             CROSS JOIN LATERAL unnest(m.segments) a CROSS JOIN LATERAL unnest(m.segments) b
            WHERE m.tenant_id = '$TENANT' AND a < b GROUP BY 1, 2) p"
    base=$SECONDS_TAKEN base_result=$RESULT
    report "segment_overlap: every pair of segments (target under 5 s at 1M)" "$ext" "$base" "$ext_result" "$base_result"
    # members() of a segment of about a tenth of the contacts, against an
    # index scan of the same members kept a row per pair, by hand.
    sql "SELECT audience.create_segment('Tenth', 'reachability < 10')" >/dev/null
    sql "DROP TABLE IF EXISTS bench_pairs;
         CREATE TABLE bench_pairs AS SELECT tenant_id, segment_id, contact_id FROM audience.segment_members
          WHERE segment_id = (SELECT id FROM audience.segments WHERE tenant_id = '$TENANT' AND name = 'Tenth');
         CREATE INDEX ON bench_pairs (tenant_id, segment_id, contact_id)" >/dev/null
    "${PSQL[@]}" -c "VACUUM ANALYZE bench_pairs" -c "VACUUM ANALYZE audience.contact_segments"
    timed "SELECT count(*) || '/' || sum(hashtext(m.email)) FROM audience.members('Tenth') m"; ext=$SECONDS_TAKEN ext_result=$RESULT
    timed "SELECT count(*) || '/' || sum(hashtext(c.email)) FROM bench_pairs p
             JOIN audience.contacts c ON c.tenant_id = p.tenant_id AND c.id = p.contact_id
            WHERE p.tenant_id = '$TENANT' AND p.segment_id = (SELECT id FROM audience.segments WHERE tenant_id = '$TENANT' AND name = 'Tenth')"
    base=$SECONDS_TAKEN base_result=$RESULT
    report "members() of $(sql "SELECT member_count FROM audience.segments WHERE tenant_id = '$TENANT' AND name = 'Tenth'") vs an index scan of pairs" "$ext" "$base" "$ext_result" "$base_result"
    sql "DROP TABLE bench_pairs; SELECT audience.drop_segment('Tenth')" >/dev/null
fi

if wants lookup; then
    say "in_segment and segments_of: plans on stored membership"
    sql "SELECT audience.create_segment('Lookup', 'country = ''DE'' and reachability > 10')" >/dev/null || true
    CONTACT=$(sql "SELECT id FROM audience.contacts WHERE country = 'DE' AND reachability > 10 LIMIT 1")
    sql "EXPLAIN (COSTS OFF) SELECT EXISTS (SELECT FROM audience.contact_segments m
           WHERE m.tenant_id = '$TENANT' AND m.contact_id = '$CONTACT'
             AND (SELECT number FROM audience.segments WHERE name = 'Lookup') = ANY (m.segments))"
    timed "SELECT audience.in_segment('$CONTACT', 'Lookup')"; ext=$SECONDS_TAKEN ext_result=$RESULT
    timed "SELECT EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = '$TENANT' AND c.id = '$CONTACT' AND c.country = 'DE' AND c.reachability > 10)"; base=$SECONDS_TAKEN base_result=$RESULT
    report "in_segment (one call, psql round trip included)" "$ext" "$base" "$ext_result" "$base_result"
fi

if wants pgbench; then
    say "pgbench, 8 clients: track, upsert_contact and in_segment vs their SQL by hand"
    PGBENCH=("$("$PG_CONFIG" --bindir)/pgbench" -h "$BENCH_DIR" -p "$BENCH_PORT" -U postgres -n -c 8 -j 2 -T "${PGBENCH_SECONDS:-15}" bench)
    sql "CREATE TABLE IF NOT EXISTS bench_people (LIKE audience.contacts INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING CONSTRAINTS);
         TRUNCATE bench_people CASCADE;
         INSERT INTO bench_people SELECT * FROM audience.contacts WHERE tenant_id = '$TENANT';
         CREATE TABLE IF NOT EXISTS bench_events (LIKE audience.events INCLUDING ALL);
         SELECT audience.create_segment('Pgbench', 'country = ''US'' and reachability >= 50')" >/dev/null
    script_dir=$(mktemp -d)
    EMAIL="'user' || :n || '@' || (ARRAY['example.com', 'acme.com', 'mail.org', 'corp.io'])[1 + :n % 4]"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "SELECT audience.track($EMAIL, 'opened', '2026-12-news');" >"$script_dir/track.sql"
    printf '\\set n random(1, %s)\n%s\n%s\n' "$SCALE" \
        "INSERT INTO bench_events (tenant_id, contact_id, kind, campaign) SELECT tenant_id, id, 'opened', '2026-12-news' FROM bench_people WHERE tenant_id = '$TENANT' AND email = $EMAIL;" \
        "UPDATE bench_people SET engagement_score = engagement_score + 1, event_count = event_count + 1, last_opened_at = now(), last_activity_at = now() WHERE tenant_id = '$TENANT' AND email = $EMAIL;" >"$script_dir/track_base.sql"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "SELECT audience.upsert_contact(jsonb_build_object('email', $EMAIL, 'city', 'Berlin', 'job_title', 'Engineer ' || :n % 7));" >"$script_dir/upsert.sql"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "INSERT INTO bench_people (tenant_id, email, city, job_title) VALUES ('$TENANT', $EMAIL, 'Berlin', 'Engineer ' || :n % 7) ON CONFLICT (tenant_id, email) DO UPDATE SET city = EXCLUDED.city, job_title = EXCLUDED.job_title;" >"$script_dir/upsert_base.sql"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "SELECT audience.in_segment(c.id, 'Pgbench') FROM audience.contacts c WHERE c.tenant_id = '$TENANT' AND c.email = $EMAIL;" >"$script_dir/lookup.sql"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "SELECT c.country = 'US' AND c.reachability >= 50 FROM bench_people c WHERE c.tenant_id = '$TENANT' AND c.email = $EMAIL;" >"$script_dir/lookup_base.sql"
    # segments_of against the same question asked of today's membership
    # kept as a row per pair with an index by contact, as before 0.2.0.
    sql "DROP TABLE IF EXISTS bench_pairs;
         CREATE TABLE bench_pairs AS SELECT * FROM audience.segment_members;
         ALTER TABLE bench_pairs ADD PRIMARY KEY (tenant_id, segment_id, contact_id);
         CREATE INDEX ON bench_pairs (tenant_id, contact_id) INCLUDE (segment_id)" >/dev/null
    "${PSQL[@]}" -c "VACUUM ANALYZE bench_pairs"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "SELECT count(*) FROM audience.contacts c, audience.segments_of(c.id) WHERE c.tenant_id = '$TENANT' AND c.email = $EMAIL;" >"$script_dir/segments_of.sql"
    printf '\\set n random(1, %s)\n%s\n' "$SCALE" \
        "SELECT count(*) FROM audience.contacts c JOIN bench_pairs p ON p.tenant_id = c.tenant_id AND p.contact_id = c.id JOIN audience.segments s ON s.tenant_id = p.tenant_id AND s.id = p.segment_id WHERE c.tenant_id = '$TENANT' AND c.email = $EMAIL;" >"$script_dir/segments_of_base.sql"
    [ "$(id -u)" = 0 ] && chown -R postgres "$script_dir"
    tps() { PGOPTIONS="-c audience.tenant=bench" as_pg "${PGBENCH[@]}" -f "$1" 2>&1 | awk '/^tps/ { print $3; exit }'; }
    for pair in "track:track()" "upsert:upsert_contact()" "lookup:in_segment()" "segments_of:segments_of()"; do
        name=${pair%%:*}
        ext_tps=$(tps "$script_dir/$name.sql")
        base_tps=$(tps "$script_dir/${name}_base.sql")
        # Reported as time per transaction, so the ratio reads like the others.
        report "pgbench ${pair#*:}: $ext_tps vs $base_tps TPS" "$(calc "1 / $ext_tps")" "$(calc "1 / $base_tps")" ok ok
    done
    report "  … and then: segments that disagree with their rules" 1 1 \
        "$(segments_off_their_rules)" "0"
    sql "DROP TABLE bench_pairs" >/dev/null
    rm -rf "$script_dir"
fi

echo
printf '%-58s %10s %10s %8s\n' "scenario ($SCALE contacts)" "extension" "baseline" "ratio"
printf '%s\n' "${SUMMARY[@]}"
[ ${#MEMORY_LINES[@]} -eq 0 ] || printf '%s\n' "${MEMORY_LINES[@]}"
exit $FAILED
