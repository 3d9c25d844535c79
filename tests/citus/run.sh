#!/usr/bin/env bash
# The extension on a Citus cluster: a coordinator and two workers on
# throwaway ports, the extension created at the coordinator and
# distributed by audience.distribute(); then the pg_regress scenarios that
# apply run at the coordinator as an application role, and the same
# scenario runs on one server and on the cluster and must print the same.
# Uses an installed Citus, or builds one from the archive in CITUS_ARCHIVE;
# without either it says so and skips.
#   tests/citus/run.sh
source "$(dirname "$0")/../../scripts/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${CITUS_DIR:-/tmp/audience-citus}
PORT=${CITUS_PORT:-54341}
SINGLE_PORT=$((PORT + 3))
BIN=$("$PG_CONFIG" --bindir)
CITUS_PACKAGES=(liblz4-dev libzstd-dev libssl-dev libkrb5-dev libcurl4-openssl-dev autoconf make gcc)

# Builds and installs Citus from the archive in CITUS_ARCHIVE (about 4
# minutes on 2 cores), when PostgreSQL has no Citus yet.
ensure_citus() {
    [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] && return 0
    if [ -z "${CITUS_ARCHIVE:-}" ] || [ ! -f "$CITUS_ARCHIVE" ]; then
        echo "Citus is not installed and CITUS_ARCHIVE names no archive: skipping the Citus tests"
        exit 0
    fi
    local missing=() package build
    for package in "${CITUS_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (to build Citus)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    say "building Citus from $CITUS_ARCHIVE (a few minutes, once)"
    build=$(mktemp -d)
    tar -xzf "$CITUS_ARCHIVE" -C "$build"
    (cd "$build"/citus-* && ./configure --quiet PG_CONFIG="$PG_CONFIG" >/dev/null \
        && make -s -j"$(nproc)" >/dev/null && as_root make -s install >/dev/null)
    rm -rf "$build"
}

psql_() { local port=$1; shift; as_pg "$BIN/psql" -h localhost -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }

ensure_citus
install_extension
nodes=("$BASE/coordinator" "$BASE/worker1" "$BASE/worker2")
single="$BASE/single"
trap 'for dir in "${nodes[@]}" "$single"; do stop_cluster "$dir"; done' EXIT
for i in 0 1 2; do
    start_cluster "${nodes[$i]}" $((PORT + i)) "listen_addresses = 'localhost'" \
        "shared_preload_libraries = 'citus'" "max_connections = 200"
    psql_ $((PORT + i)) -U postgres -d postgres -c "CREATE DATABASE audience"
    psql_ $((PORT + i)) -U postgres -d audience -c "CREATE EXTENSION citus"
done
psql_ "$PORT" -U postgres -d audience \
    -c "SELECT citus_set_coordinator_host('localhost', $PORT)" \
    -c "SELECT citus_add_node('localhost', $((PORT + 1)))" \
    -c "SELECT citus_add_node('localhost', $((PORT + 2)))" \
    -c "CREATE EXTENSION audience" \
    -c "SELECT * FROM audience.distribute()" >/dev/null

say "Citus: pg_regress scenarios at the coordinator"
work=$(mktemp -d)
cp -r "$HERE/." "$work"/
[ "$(id -u)" = 0 ] && chown -R postgres "$work"
status=0
as_pg "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" --use-existing \
    --host=localhost --port="$PORT" --user=postgres --dbname=audience \
    --inputdir="$work" --outputdir="$work" --schedule="$work/schedule" || status=$?
if [ $status -ne 0 ]; then
    cat "$work/regression.diffs" 2>/dev/null | head -200
    echo "Citus tests failed; results in $work" >&2
    exit $status
fi
rm -rf "$work"

say "Citus: the demo and more of the API print the same as on one server"
start_cluster "$single" "$SINGLE_PORT" "listen_addresses = 'localhost'"
psql_ "$SINGLE_PORT" -U postgres -d postgres -c "CREATE DATABASE audience"
for i in 0 1 2; do
    psql_ $((PORT + i)) -U postgres -d postgres -c "CREATE DATABASE demo"
    psql_ $((PORT + i)) -U postgres -d demo -c "CREATE EXTENSION citus"
done
# A tenant reaches the workers, whose copies of the policies and views ask
# for it, as a setting of the role (or SET LOCAL): the superuser that runs
# the demo selects acme so.
psql_ "$PORT" -U postgres -d demo \
    -c "SELECT citus_set_coordinator_host('localhost', $PORT)" \
    -c "SELECT citus_add_node('localhost', $((PORT + 1)))" \
    -c "SELECT citus_add_node('localhost', $((PORT + 2)))" \
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
rm -rf "$data"
echo "Citus: every scenario passed"
