#!/usr/bin/env bash
# Crash test: a 1M-row import is killed (pg_terminate_backend) and a bulk
# event insert is cut off by an immediate server shutdown (crash recovery on
# restart), each in the middle. Afterwards nothing of either statement is
# visible, scores equal a recompute, stored membership equals the rules,
# and imports work again.
#   tests/crash/run.sh CLUSTER_DIR PORT [ROWS]
source "$(dirname "$0")/../../scripts/lib.sh"
DIR=$1 PORT=$2 ROWS=${3:-1000000}
BIN=$("$PG_CONFIG" --bindir)
HERE=$(cd "$(dirname "$0")" && pwd)
psql_() { as_pg "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
[ "$(id -u)" = 0 ] && chown postgres "$work"

psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS crash" -c "CREATE DATABASE crash"
psql_ -d crash -v rows="$ROWS" -v csv="$work/contacts.csv" -f "$HERE/setup.sql" >/dev/null
psql_ -d crash -f "$HERE/state.sql" >"$work/before.txt"

# wait_for QUERY: polls until QUERY returns true (at most 5 minutes).
wait_for() {
    local i
    for ((i = 0; i < 3000; i++)); do
        [ "$(psql_ -d crash -c "$1" 2>/dev/null)" = t ] && return 0
        sleep 0.1
    done
    echo "gave up waiting for: $1" >&2
    exit 1
}
# compare STEP: the state must be what it was before the interrupted statement.
compare() {
    psql_ -d crash -f "$HERE/state.sql" >"$work/after.txt"
    if ! diff -u "$work/before.txt" "$work/after.txt"; then
        echo "$1 left something behind or broke an invariant (files in $work)" >&2
        exit 1
    fi
}

say "crash: terminating a $ROWS-row import in the middle"
psql_ -d crash -c "SET audience.tenant = 'crash'" \
    -c "SELECT audience.import_csv(pg_read_binary_file('$work/contacts.csv'), '{\"segment\": \"Big import\", \"tags\": [\"bulk\"]}')" \
    >"$work/import.txt" 2>&1 &
import_pid=$!
wait_for "SELECT EXISTS (SELECT FROM audience.import_progress WHERE rows_done >= least(100000, $ROWS / 4))"
psql_ -d crash -c "SELECT pg_terminate_backend(pid) FROM audience.import_progress" >/dev/null
if wait "$import_pid"; then
    echo "the import finished before it could be interrupted" >&2
    exit 1
fi
compare "the terminated import"

say "crash: immediate shutdown during a bulk event insert"
psql_ -d crash -c "SET audience.tenant = 'crash'" \
    -c "INSERT INTO audience.events (contact_id, kind, campaign, url, occurred_at)
        SELECT c.id, (ARRAY['opened', 'clicked', 'visited', 'replied'])[1 + i % 4], 'crash-' || i % 3,
               CASE WHEN i % 4 = 2 THEN '/pricing' END, now() - make_interval(hours => i)
          FROM audience.contacts c, generate_series(1, 50) i" >"$work/events.txt" 2>&1 &
events_pid=$!
wait_for "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'INSERT INTO audience.events%' AND now() - query_start > interval '2 seconds')"
as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null
if wait "$events_pid"; then
    echo "the event insert finished before the shutdown" >&2
    exit 1
fi
as_pg env -u RUST_BACKTRACE "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
compare "the event insert cut off by the crash"

say "crash: imports work afterwards"
head -n 1001 "$work/contacts.csv" >"$work/small.csv"
report=$(psql_ -d crash -c "SET audience.tenant = 'crash'" \
    -c "SELECT rows || ' ' || inserted FROM audience.import_csv(pg_read_binary_file('$work/small.csv'), '{\"segment\": \"Big import\", \"tags\": [\"bulk\"]}')")
[ "$report" = "1000 1000" ] || { echo "the import after the crash reported '$report'" >&2; exit 1; }
psql_ -d crash -c "SET audience.tenant = 'crash'" -c "SELECT audience.recompute_scores() = 0 AND audience.count('Big import') = 1000
        AND NOT EXISTS (SELECT FROM audience.segments s WHERE s.kind = 'dynamic' AND s.member_count <> audience.preview(s.rule))" | grep -qx t \
    || { echo "invariants broken after the import that followed the crash" >&2; exit 1; }
echo "crash: interrupted import and event insert left nothing behind; invariants hold"
rm -rf "$work"
