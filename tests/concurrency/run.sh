#!/usr/bin/env bash
# Concurrency: eight sessions of an application role upsert the same
# emails, track events, insert events in bulk, import overlapping files and
# edit tags, lists and segments at once (pgbench). Every transaction must
# succeed (no deadlock, no serialization failure reaches the client), and
# afterwards no contact is duplicated, no event is lost from its contact,
# scores equal a recompute, stored membership equals the rules and the
# change history accounts for it. Then two interleavings are forced: a
# list edit and a statement of events, each changing one of the two
# segments a third refers to; and a tenant deleted while a contact is
# written for it. Runs against the cluster the caller started.
#   tests/concurrency/run.sh HOST_DIR PORT [SECONDS]
source "$(dirname "$0")/../../scripts/lib.sh"
HOST=$1 PORT=$2 SECONDS_RUN=${3:-20}
BIN=$("$PG_CONFIG" --bindir)
HERE=$(cd "$(dirname "$0")" && pwd)
psql_() { as_pg "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -X -q -A -t -F ': ' "$@"; }
psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS busy" -c "CREATE DATABASE busy"
psql_ -d busy -f "$HERE/setup.sql" >/dev/null
work=$(mktemp -d)
cp "$HERE"/*.sql "$work"/
[ "$(id -u)" = 0 ] && chown -R postgres "$work"
status=0
as_pg "$BIN/pgbench" -h "$HOST" -p "$PORT" -U busy_app -n -c 8 -j 2 -T "$SECONDS_RUN" \
    -f "$work/upsert.sql@4" -f "$work/track.sql@4" -f "$work/events.sql@1" -f "$work/import.sql@1" -f "$work/edit.sql@2" \
    busy >"$work/pgbench.txt" 2>&1 || status=$?
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench.txt")
if [ $status -ne 0 ] || [ "${failed:-1}" != 0 ]; then
    cat "$work/pgbench.txt"
    echo "concurrent sessions failed (pgbench exit $status, $failed failed transactions)" >&2
    exit 1
fi
# One interleaving forced: a list edit holds its transaction open while a
# statement of clicks makes the same contact a clicker. "Listed clickers"
# refers to both segments; the later writer must read what the earlier
# committed, or neither puts the contact in.
app() { as_pg "$BIN/psql" -h "$HOST" -p "$PORT" -U busy_app -X -q -A -t -v ON_ERROR_STOP=1 -d busy "$@"; }
app -c "INSERT INTO audience.contacts (email) VALUES ('pair@example.com')"
app -c "BEGIN" -c "SELECT audience.add_to_list('Hand picked', ARRAY(SELECT id FROM audience.contacts WHERE email = 'pair@example.com'))" \
    -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
list_edit=$!
sleep 0.7
app -c "INSERT INTO audience.events (contact_id, kind)
        SELECT id, 'clicked' FROM audience.contacts, generate_series(1, 2) WHERE email = 'pair@example.com'"
wait $list_edit
listed=$(app -c "SELECT audience.in_segment(id, 'Listed clickers') FROM audience.contacts WHERE email = 'pair@example.com'")
if [ "$listed" != t ]; then
    echo "a contact clicked while added to a list is missing from the segment that needs both" >&2
    exit 1
fi
# A tenant deleted while a contact is written for it: the deletion waits
# for the writer to commit and takes the contact with it, as a foreign key
# would (the contacts trigger holds the tenant).
psql_ -d busy -c "SELECT audience.create_tenant('doomed', 'busy_app')" >/dev/null
app -c "SET audience.tenant = 'doomed'" -c "BEGIN" -c "INSERT INTO audience.contacts (email) VALUES ('late@example.com')" \
    -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
late_insert=$!
sleep 0.7
psql_ -d busy -c "DELETE FROM audience.tenants WHERE name = 'doomed'" >/dev/null
wait $late_insert
orphans=$(psql_ -d busy -c "SELECT count(*) FROM audience.contacts c
                             WHERE NOT EXISTS (SELECT FROM audience.tenants t WHERE t.id = c.tenant_id)")
if [ "$orphans" != 0 ]; then
    echo "a contact written while its tenant was deleted outlived the tenant" >&2
    exit 1
fi
psql_ -d busy -f "$HERE/check.sql" >"$work/check.txt"
if grep -vq ': 0$' "$work/check.txt"; then
    cat "$work/check.txt"
    echo "invariants broken after the concurrent run (files in $work)" >&2
    exit 1
fi
echo "concurrency: $(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.txt") transactions in ${SECONDS_RUN}s by 8 sessions, $(wc -l <"$work/check.txt") invariants hold"
rm -rf "$work"
