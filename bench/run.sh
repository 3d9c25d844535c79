#!/usr/bin/env bash
# The benchmark suite: the extension's path and a hand-written PostgreSQL
# baseline on the same data in one run, each checked to give the same
# result before its time counts. Prints one line per scenario and a summary.
#
#   bench/run.sh [--scale N] [--events N] [--only preview|update|refresh|lookup]
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
        *) echo "usage: bench/run.sh [--scale N] [--events N] [--only preview|update|refresh|lookup]" >&2; exit 2 ;;
    esac
done
BENCH_DIR=${BENCH_DIR:-/tmp/audience-bench}
BENCH_PORT=${BENCH_PORT:-54331}
REPEAT=${REPEAT:-3}

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
# sql TEXT: runs it in tenant "bench"; prints the result.
sql() { "${PSQL[@]}" -c "SET audience.tenant = 'bench'" -c "$1"; }
# timed TEXT [RUNS]: the best wall time of RUNS (default REPEAT) runs in
# $SECONDS_TAKEN, the result in $RESULT.
timed() {
    local start elapsed i
    SECONDS_TAKEN=""
    for ((i = 0; i < ${2:-$REPEAT}; i++)); do
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

wants() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

if wants preview; then
    say "preview of each example rule vs the same count by hand"
    while IFS='|' read -r rule baseline; do
        [ -n "$rule" ] || continue
        timed "SELECT audience.preview(\$\$${rule}\$\$)"; ext=$SECONDS_TAKEN ext_result=$RESULT
        timed "$BASE AND ($baseline)"; base=$SECONDS_TAKEN base_result=$RESULT
        report "preview: $rule" "$ext" "$base" "$ext_result" "$base_result"
    done <"$(dirname "$0")/preview_rules.txt"
fi

if wants update; then
    say "100k-row contact UPDATE with 0 and 50 dynamic segments"
    UPDATE="UPDATE audience.contacts SET reachability = (reachability + 37) % 101
             WHERE tenant_id = '$TENANT' AND (hashtext(email) & 1023) < $((1024 * 100000 / SCALE < 1024 ? 1024 * 100000 / SCALE : 1024))"
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts"
    timed "$UPDATE" 1; base=$SECONDS_TAKEN
    base_rows=$(sql "$BASE AND (hashtext(email) & 1023) < $((1024 * 100000 / SCALE < 1024 ? 1024 * 100000 / SCALE : 1024))")
    start=$(now)
    sql "$(cat "$(dirname "$0")/segments.sql")" >/dev/null
    printf 'created 50 dynamic segments in %.1fs\n' "$(calc "$(now) - $start")"
    "${PSQL[@]}" -c "VACUUM ANALYZE audience.contacts" -c "VACUUM ANALYZE audience.segment_members"
    timed "$UPDATE" 1; ext=$SECONDS_TAKEN
    report "UPDATE of $base_rows contacts, 50 segments vs none" "$ext" "$base" \
        "$(sql "SELECT count(*) FROM audience.segments s WHERE s.kind = 'dynamic' AND s.member_count <> audience.preview(s.rule)")" "0"
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

if wants lookup; then
    say "in_segment and segments_of: plans on stored membership"
    sql "SELECT audience.create_segment('Lookup', 'country = ''DE'' and reachability > 10')" >/dev/null || true
    CONTACT=$(sql "SELECT id FROM audience.contacts WHERE country = 'DE' AND reachability > 10 LIMIT 1")
    sql "EXPLAIN (COSTS OFF) SELECT EXISTS (SELECT FROM audience.segment_members m
           WHERE m.tenant_id = '$TENANT' AND m.segment_id = (SELECT id FROM audience.segments WHERE name = 'Lookup')
             AND m.contact_id = '$CONTACT')"
    timed "SELECT audience.in_segment('$CONTACT', 'Lookup')"; ext=$SECONDS_TAKEN ext_result=$RESULT
    timed "SELECT EXISTS (SELECT FROM audience.contacts c WHERE c.tenant_id = '$TENANT' AND c.id = '$CONTACT' AND c.country = 'DE' AND c.reachability > 10)"; base=$SECONDS_TAKEN base_result=$RESULT
    report "in_segment (one call, psql round trip included)" "$ext" "$base" "$ext_result" "$base_result"
fi

echo
printf '%-58s %10s %10s %8s\n' "scenario ($SCALE contacts)" "extension" "baseline" "ratio"
printf '%s\n' "${SUMMARY[@]}"
exit $FAILED
