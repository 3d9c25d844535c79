#!/usr/bin/env bash
# Dump and restore: a database with data in every table, dumped with
# pg_dump and restored with plain psql into a fresh database, must hold the
# same rows, and its scores and memberships must still equal what the
# rules compute. Runs against the cluster the caller started.
#   tests/durability/run.sh HOST_DIR PORT
source "$(dirname "$0")/../../scripts/lib.sh"
HOST=$1 PORT=$2
BIN=$("$PG_CONFIG" --bindir)
work=$(mktemp -d)
[ "$(id -u)" = 0 ] && chown postgres "$work"
cp "$ROOT"/data/sample_*.csv "$work"/
psql_() { as_pg "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -X -q -A -t "$@"; }
psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS durable" -c "DROP DATABASE IF EXISTS restored" -c "CREATE DATABASE durable" -c "CREATE DATABASE restored"
psql_ -d durable -v datadir="$work" -v events="$work/sample_events.csv" -f "$(dirname "$0")/setup.sql" >/dev/null
as_pg "$BIN/pg_dump" -h "$HOST" -p "$PORT" -U postgres -f "$work/dump.sql" durable
psql_ -d restored -v ON_ERROR_STOP=1 -f "$work/dump.sql" >/dev/null
psql_ -d durable -f "$(dirname "$0")/compare.sql" >"$work/before.txt"
psql_ -d restored -f "$(dirname "$0")/compare.sql" >"$work/after.txt"
if ! diff -u "$work/before.txt" "$work/after.txt"; then
    echo "the restored database differs from the dumped one (files in $work)" >&2
    exit 1
fi
if grep -vqE '\|t\|0\|0$|^audience\.' "$work/after.txt"; then
    cat "$work/after.txt"
    echo "scores or memberships disagree with their rules after the restore" >&2
    exit 1
fi
echo "dump and restore: $(grep -c '^audience\.' "$work/after.txt") tables identical, invariants hold"
rm -rf "$work"
