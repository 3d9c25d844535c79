#!/usr/bin/env bash
# Every test: the core's unit and property tests, the #[pg_test]s, the
# pg_regress scenarios against a throwaway cluster (then dump and restore,
# upgrade, concurrency and crash tests on it, the examples of docs/,
# SQLAlchemy reflecting every view as a BI login, and read paths on a hot
# standby of a primary of their own), a short fuzzing run, and the
# scenarios that apply on a Citus cluster (tests/citus/run.sh: an installed
# Citus, or one built from the archive CITUS_ARCHIVE names; else skipped).
# Exits non-zero on any failure. Name stages to run only those:
#   scripts/test.sh unit pg_test regress fuzz citus
source "$(dirname "$0")/lib.sh"

REGRESS_DIR=${REGRESS_DIR:-/tmp/audience-regress}
REGRESS_PORT=${REGRESS_PORT:-54329}

STAGES=("${@:-unit}")
[ $# -gt 0 ] || STAGES=(unit pg_test regress fuzz citus)
wants() { [[ " ${STAGES[*]} " == *" $1 "* ]]; }

ensure_tools
cd "$ROOT"

if wants unit; then
    say "unit and property tests (audience-core)"
    cargo test -p audience-core
fi

if wants pg_test; then
    say "#[pg_test]s"
    if [ "$(id -u)" = 0 ]; then
        mkdir -p /tmp/audience-pgdata && chown postgres /tmp/audience-pgdata
        cargo pgrx test pg15 --runas postgres --pgdata /tmp/audience-pgdata
    else
        cargo pgrx test pg15
    fi
fi

if wants fuzz; then
    say "fuzzing (short run; scripts/fuzz.sh SECONDS for longer)"
    "$ROOT/scripts/fuzz.sh" 30
fi

if wants citus; then
    say "on a Citus cluster"
    "$ROOT/tests/citus/run.sh"
fi

wants regress || { say "done"; exit 0; }
say "pg_regress"
install_extension
trap 'stop_cluster "$REGRESS_DIR"' EXIT
start_cluster "$REGRESS_DIR" "$REGRESS_PORT"
BIN=$("$PG_CONFIG" --bindir)
as_pg "$BIN/createdb" -h "$REGRESS_DIR" -p "$REGRESS_PORT" -U postgres audience
# pg_regress silently skips a test without expected output, and the
# schedule fixes the order: check that every test is listed and complete.
for sql in tests/pg_regress/sql/*.sql; do
    name=$(basename "$sql" .sql)
    grep -qE "^test:.* $name( |$)" tests/pg_regress/schedule || { echo "$name is not in tests/pg_regress/schedule" >&2; exit 1; }
    [ -f "tests/pg_regress/expected/$name.out" ] || { echo "no expected output for $name" >&2; exit 1; }
done
# Files the scenarios import from the server.
cp data/sample_audience.csv "$REGRESS_DIR"/
cargo run -q -p audience-core --example workbooks -- "$REGRESS_DIR"
run_regress tests/pg_regress "$REGRESS_DIR" "$REGRESS_PORT"

say "dump and restore"
"$ROOT/tests/durability/run.sh" "$REGRESS_DIR" "$REGRESS_PORT"
say "upgrade from the previous release"
"$ROOT/tests/upgrade/run.sh" "$REGRESS_DIR" "$REGRESS_PORT"
say "concurrent sessions"
"$ROOT/tests/concurrency/run.sh" "$REGRESS_DIR" "$REGRESS_PORT"
say "crashes in the middle of bulk statements"
"$ROOT/tests/crash/run.sh" "$REGRESS_DIR" "$REGRESS_PORT"
say "documentation examples print what docs/ shows"
"$ROOT/tests/docs/run.sh" "$REGRESS_DIR" "$REGRESS_PORT"
say "BI tools reflect every view"
"$ROOT/tests/bi/run.sh" "$REGRESS_DIR" "$REGRESS_PORT"
say "read paths on a hot standby"
"$ROOT/tests/replica/run.sh"
say "all tests passed"
