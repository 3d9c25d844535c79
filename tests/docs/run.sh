#!/usr/bin/env bash
# The examples in docs/ print what the pages show (tests/docs/check.py).
# Runs against the caller's cluster; --record writes their output instead.
#   tests/docs/run.sh HOST_DIR PORT [--record]
source "$(dirname "$0")/../../scripts/lib.sh"
HOST=$1 PORT=$2
shift 2
BIN=$("$PG_CONFIG" --bindir)
PGTZ=UTC PGDATESTYLE=ISO python3 "$(dirname "$0")/check.py" "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres "$@"
