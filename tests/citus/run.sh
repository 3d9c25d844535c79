#!/usr/bin/env bash
# The extension on a Citus cluster: a coordinator and two workers on
# throwaway ports, the extension created at the coordinator and
# distributed by audience.distribute(). Then: the pg_regress scenarios of
# this folder at the coordinator; the demo and a scenario of more of the
# API (same.sql) on one server and on the cluster, which must print the
# same; and the application's single-tenant work (routed.sql), every
# command of which must go to the tenant's worker. Uses an installed
# Citus, or builds one from the archive in CITUS_ARCHIVE; without either
# it says so and skips.
#   tests/citus/run.sh
source "$(dirname "$0")/../../scripts/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${CITUS_DIR:-/tmp/audience-citus}
PORT=${CITUS_PORT:-54341}
SINGLE_PORT=$((PORT + 3))
BIN=$("$PG_CONFIG" --bindir)

ensure_citus || { echo "skipping the Citus tests"; exit 0; }
install_extension
single="$BASE/single"
trap 'stop_citus "$BASE"; stop_cluster "$single"' EXIT
start_citus "$BASE" "$PORT" audience

psql_() { local port=$1; shift; as_pg "$BIN/psql" -h localhost -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_ "$PORT" -U postgres -d audience -c "CREATE EXTENSION audience" -c "SELECT * FROM audience.distribute()" >/dev/null

say "Citus: pg_regress scenarios at the coordinator"
run_regress "$HERE" localhost "$PORT"

say "Citus: the demo and more of the API print the same as on one server"
start_cluster "$single" "$SINGLE_PORT" "listen_addresses = 'localhost'"
psql_ "$SINGLE_PORT" -U postgres -d postgres -c "CREATE DATABASE audience"
citus_database "$PORT" demo
# A tenant reaches the workers, whose copies of the policies and views ask
# for it, as a setting of the role (or SET LOCAL): the superuser that runs
# the demo selects acme so.
psql_ "$PORT" -U postgres -d demo \
    -c "CREATE EXTENSION audience" \
    -c "SELECT * FROM audience.distribute()" \
    -c "ALTER ROLE postgres IN DATABASE demo SET audience.tenant = 'acme'" >/dev/null
data=$(mktemp -d)
cp "$ROOT"/data/sample_*.csv "$data"/
chmod -R a+rX "$data"
run_demo() {
    local port=$1 database=$2 out=$3
    as_pg env PGOPTIONS=-cclient_min_messages=warning "$BIN/psql" -h localhost -p "$port" -U postgres -d "$database" \
        -X -q -v ON_ERROR_STOP=1 -v datadir="$data" -v sample="$data/sample_audience.csv" \
        -f "$ROOT/scripts/demo.sql" -f "$HERE/same.sql" 2>&1 \
        | sed -e 's/Last refresh: .*, took .*/Last refresh: (time of the run)/' >"$out"
}
run_demo "$SINGLE_PORT" audience "$data/single.out" || { tail -20 "$data/single.out"; echo "the scenario failed on one server" >&2; exit 1; }
run_demo "$PORT" demo "$data/citus.out" || { tail -20 "$data/citus.out"; echo "the scenario failed on Citus" >&2; exit 1; }
if ! diff -u "$data/single.out" "$data/citus.out"; then
    echo "the Citus cluster answered differently from one server (files in $data)" >&2
    exit 1
fi
echo "Citus: $(grep -c . "$data/citus.out") lines of the demo and scenario, as on one server"

say "Citus: a tenant's work stays on the tenant's worker"
worker=$(psql_ "$PORT" -U postgres -d demo -At -c "SELECT p.nodeport FROM pg_dist_shard_placement p
    WHERE p.shardid = get_shard_id_for_distribution_column('audience.contacts', (SELECT id FROM audience.tenants WHERE name = 'acme'))")
# The role's setting reaches the workers' connections too, which log what
# the triggers there send.
psql_ "$PORT" -U postgres -d demo -c "ALTER ROLE app IN DATABASE demo SET citus.log_remote_commands = on"
as_pg "$BIN/psql" -h localhost -p "$PORT" -U app -d demo -X -q -v ON_ERROR_STOP=1 -f "$HERE/routed.sql" >"$data/routed.out" 2>&1 \
    || { cat "$data/routed.out"; echo "the application's work failed on Citus" >&2; exit 1; }
sent=$(grep -c "on server .*@localhost:" "$data/routed.out" || true)
elsewhere=$(grep "on server .*@localhost:" "$data/routed.out" | grep -vc "@localhost:$worker " || true)
if [ "$sent" -eq 0 ] || [ "$elsewhere" -ne 0 ]; then
    grep -B1 "on server" "$data/routed.out" | grep -v "@localhost:$worker " | head -20 || true
    echo "$elsewhere of $sent commands went to another node than acme's worker ($worker)" >&2
    exit 1
fi
echo "Citus: $sent commands, all to acme's worker"

say "Citus: a new segment and a contact written meanwhile wait for each other"
# The segment's creation holds the tenant's rules on the tenant's worker,
# where the contact's triggers take them: the contact's maintenance waits,
# then reads the new rule. Each alone would miss the other.
app() { as_pg "$BIN/psql" -h localhost -p "$PORT" -U app -d demo -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
app -c "BEGIN" -c "SELECT audience.create_segment('Late arrivals', 'city = ''Latecomer''') IS NOT NULL" \
    -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
creation=$!
sleep 0.7
app -c "SELECT audience.upsert_contact('{\"email\": \"late@example.com\", \"city\": \"Latecomer\"}') IS NOT NULL" >/dev/null
wait $creation
members=$(app -c "SELECT audience.count('Late arrivals')")
if [ "$members" != 1 ]; then
    echo "a contact written while its segment was created is missing from it ($members members)" >&2
    exit 1
fi
echo "Citus: the contact written meanwhile is in the new segment"
rm -rf "$data"
echo "Citus: every scenario passed"
