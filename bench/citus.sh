#!/usr/bin/env bash
# The extension on a Citus cluster (a coordinator and two workers on this
# machine) against one server, on the same data: 20 tenants of 50k
# contacts with five dynamic segments each. pgbench runs track() and
# upsert_contact() at the coordinator, over every tenant, and an import
# goes into one tenant; prints each with one server's figure and the ratio.
#
#   bench/citus.sh [--tenants N] [--contacts N] [--seconds N]
#
# Needs an installed Citus, or CITUS_ARCHIVE naming the archive to build.
source "$(dirname "$0")/../scripts/lib.sh"

TENANTS=20
CONTACTS=50000
SECONDS_RUN=30
while [ $# -gt 0 ]; do
    case $1 in
        --tenants) TENANTS=$2; shift 2 ;;
        --contacts) CONTACTS=$2; shift 2 ;;
        --seconds) SECONDS_RUN=$2; shift 2 ;;
        *) echo "usage: bench/citus.sh [--tenants N] [--contacts N] [--seconds N]" >&2; exit 2 ;;
    esac
done
BASE=${BENCH_CITUS_DIR:-/tmp/audience-bench-citus}
PORT=${BENCH_CITUS_PORT:-54351}
SINGLE_PORT=$((PORT + 3))
BIN=$("$PG_CONFIG" --bindir)
TUNING=("shared_buffers = '2GB'" "work_mem = '64MB'" "max_wal_size = '8GB'" "synchronous_commit = off")

ensure_tools
ensure_citus || exit 1
say "building and installing the extension (release)"
install_extension --release >/dev/null
trap 'stop_citus "$BASE"; stop_cluster "$BASE/single"' EXIT
start_cluster "$BASE/single" "$SINGLE_PORT" "listen_addresses = 'localhost'" "${TUNING[@]}"
as_pg "$BIN/psql" -h localhost -p "$SINGLE_PORT" -U postgres -X -q -d postgres -c "CREATE DATABASE bench"
start_citus "$BASE" "$PORT" bench "${TUNING[@]}"

psql_at() { local port=$1; shift; as_pg "$BIN/psql" -h localhost -p "$port" -U postgres -X -q -A -t -v ON_ERROR_STOP=1 -d bench "$@"; }
setup() {
    local port=$1
    psql_at "$port" -c "CREATE EXTENSION IF NOT EXISTS audience"
    [ "$port" = "$PORT" ] && psql_at "$port" -c "SELECT count(*) FROM audience.distribute()" >/dev/null
    psql_at "$port" -c "SELECT count(audience.create_tenant('t' || i)) FROM generate_series(1, $TENANTS) i" >/dev/null
    # Each tenant's contacts in a statement of its own, as a tenant's import
    # would write them; then five segments each.
    for ((i = 1; i <= TENANTS; i++)); do
        psql_at "$port" -c "SET audience.tenant = 't$i'" -c "
            INSERT INTO audience.contacts (tenant_id, email, first_name, country, lead_status, reachability, tags)
            SELECT audience.current_tenant(), 'user' || n || '@t$i.example', 'User ' || n,
                   (ARRAY['US', 'DE', 'FR', 'CA', 'GB'])[1 + n % 5], (ARRAY['new', 'hot', 'cold'])[1 + n % 3],
                   n % 101, ARRAY[(ARRAY['VIP', 'Newsletter', 'Buyer'])[1 + n % 3]]
              FROM generate_series(1, $CONTACTS) n" \
            -c "SELECT count(audience.create_segment(s.name, s.rule::audience.rule)) FROM (VALUES
                    ('Americans', 'country = ''US'''), ('Hot', 'lead_status = ''hot'''),
                    ('Reachable VIPs', 'tag ''VIP'' and reachability >= 50'),
                    ('Engaged', 'score >= 5'), ('Clickers', 'clicked at least 1 times')) s(name, rule)" >/dev/null
    done
    psql_at "$port" -c "ANALYZE"
}
say "loading $TENANTS tenants of $CONTACTS contacts on one server and on the cluster"
setup "$SINGLE_PORT"
setup "$PORT"

scripts=$(mktemp -d)
# Each transaction picks a tenant and one of its contacts.
pick="\\set t random(1, $TENANTS)
\\set n random(1, $CONTACTS)
SELECT audience.use_tenant('t' || :t);"
cat >"$scripts/track.sql" <<SQL
$pick
SELECT audience.track('user' || :n || '@t' || :t || '.example', 'clicked', '2026-12-news');
SQL
cat >"$scripts/upsert.sql" <<SQL
$pick
SELECT audience.upsert_contact(jsonb_build_object('email', 'user' || :n || '@t' || :t || '.example',
                                                  'city', 'Berlin', 'lead_status', (ARRAY['new', 'hot'])[1 + :n % 2]));
SQL
[ "$(id -u)" = 0 ] && chown -R postgres "$scripts"
tps() {
    as_pg "$BIN/pgbench" -h localhost -p "$1" -U postgres -n -c 8 -j 2 -T "$SECONDS_RUN" -f "$2" bench 2>&1 \
        | awk '/^tps/ { print $3; exit }'
}
report() { printf '%-44s %10s %10s %7.2fx\n' "$1" "$2" "$3" "$(awk "BEGIN { print $2 / $3 }")"; }
printf '%-44s %10s %10s %8s\n' "" "Citus" "one server" "ratio"
for name in track upsert; do
    report "pgbench $name, 8 clients, TPS" "$(tps "$PORT" "$scripts/$name.sql")" "$(tps "$SINGLE_PORT" "$scripts/$name.sql")"
done

# An import of 100k new contacts into one tenant, as CSV.
csv="$scripts/import.csv"
{ echo "email,first_name,country,tags"; for ((n = 1; n <= 100000; n++)); do echo "new$n@t1.example,New $n,DE,Buyer"; done; } >"$csv"
chmod a+r "$csv"
import_seconds() {
    local start
    start=$(date +%s.%N)
    psql_at "$1" -c "SET audience.tenant = 't1'" -c "SELECT inserted FROM audience.import_csv(pg_read_binary_file('$csv'))" >/dev/null
    awk "BEGIN { print $(date +%s.%N) - $start }"
}
report "import of 100k contacts into one tenant, s" "$(import_seconds "$PORT")" "$(import_seconds "$SINGLE_PORT")"
rm -rf "$scripts"
