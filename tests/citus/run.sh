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
trap 'for dir in "${nodes[@]}" "$BASE/single"; do stop_cluster "$dir"; done' EXIT
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
echo "Citus: every scenario passed"
