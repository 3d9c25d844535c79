#!/usr/bin/env bash
# Hot standby: analysts and BI tools may be pointed at a streaming replica,
# so every read path must work there (it may write nothing, take no row
# lock and assign no transaction id). A primary and a standby on throwaway
# clusters: the data goes in on the primary, and once the standby has
# replayed it every read path runs on both as a reader role and must give
# the same output.
#   tests/replica/run.sh
source "$(dirname "$0")/../../scripts/lib.sh"
PRIMARY=${REPLICA_PRIMARY_DIR:-/tmp/audience-primary} PRIMARY_PORT=${REPLICA_PRIMARY_PORT:-54335}
STANDBY=${REPLICA_STANDBY_DIR:-/tmp/audience-standby} STANDBY_PORT=${REPLICA_STANDBY_PORT:-54336}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$("$PG_CONFIG" --bindir)
trap 'stop_cluster "$STANDBY"; stop_cluster "$PRIMARY"' EXIT
start_cluster "$PRIMARY" "$PRIMARY_PORT"
psql_() { local dir=$1 port=$2; shift 2; as_pg "$BIN/psql" -h "$dir" -p "$port" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
psql_ "$PRIMARY" "$PRIMARY_PORT" -U postgres -d postgres -c "CREATE DATABASE audience"
psql_ "$PRIMARY" "$PRIMARY_PORT" -U postgres -d audience -f "$HERE/setup.sql" >/dev/null

# The standby: a base backup that follows the primary's WAL.
stop_cluster "$STANDBY"
rm -rf "$STANDBY"
mkdir -p "$STANDBY"
[ "$(id -u)" = 0 ] && chown postgres "$STANDBY"
as_pg "$BIN/pg_basebackup" -h "$PRIMARY" -p "$PRIMARY_PORT" -U postgres -D "$STANDBY/data" -R -X stream
sed -i -e "s/^port = .*/port = $STANDBY_PORT/" -e "s#^unix_socket_directories = .*#unix_socket_directories = '$STANDBY'#" \
    -e "/^shared_preload_libraries/d" -e "/^cron\./d" "$STANDBY/data/postgresql.conf"
as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$BIN/pg_ctl" -D "$STANDBY/data" -l "$STANDBY/server.log" -w start >/dev/null
[ "$(psql_ "$STANDBY" "$STANDBY_PORT" -U postgres -d audience -c "SELECT pg_is_in_recovery()")" = t ] || { echo "the standby is not in recovery" >&2; exit 1; }
# A write after the backup, to be replayed too.
psql_ "$PRIMARY" "$PRIMARY_PORT" -U replica_app -d audience -c "SET audience.tenant = 'replicated'" \
    -c "SELECT audience.track('c3@example.com', 'clicked', 'launch')" >/dev/null
target=$(psql_ "$PRIMARY" "$PRIMARY_PORT" -U postgres -d audience -c "SELECT pg_current_wal_lsn()")
for ((i = 0; i < 300; i++)); do
    [ "$(psql_ "$STANDBY" "$STANDBY_PORT" -U postgres -d audience -c "SELECT pg_last_wal_replay_lsn() >= '$target'")" = t ] && break
    sleep 0.1
done

work=$(mktemp -d)
psql_ "$PRIMARY" "$PRIMARY_PORT" -U replica_reader -d audience -f "$HERE/reads.sql" >"$work/primary.txt"
if ! psql_ "$STANDBY" "$STANDBY_PORT" -U replica_reader -d audience -f "$HERE/reads.sql" >"$work/standby.txt"; then
    echo "a read path failed on the hot standby" >&2
    exit 1
fi
if ! diff -u "$work/primary.txt" "$work/standby.txt"; then
    echo "the hot standby answered differently from the primary (files in $work)" >&2
    exit 1
fi
echo "hot standby: $(grep -c . "$work/standby.txt") lines of every read path, as on the primary"
rm -rf "$work"
