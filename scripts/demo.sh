#!/usr/bin/env bash
# The main job: build and install the extension, start a throwaway cluster,
# load the sample audience and show what it holds.
source "$(dirname "$0")/lib.sh"

DEMO_DIR=${DEMO_DIR:-/tmp/audience-demo}
DEMO_PORT=${DEMO_PORT:-54320}

ensure_tools
say "building and installing the extension (release)"
install_extension --release
say "starting a throwaway PostgreSQL 15 cluster in $DEMO_DIR (port $DEMO_PORT)"
start_cluster "$DEMO_DIR" "$DEMO_PORT"
cp "$ROOT"/data/sample_*.csv "$DEMO_DIR"/
PSQL=("$("$PG_CONFIG" --bindir)/psql" -h "$DEMO_DIR" -p "$DEMO_PORT" -U postgres -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE audience"
say "loading the sample audience"
"${PSQL[@]}" -d audience -v datadir="$DEMO_DIR" -f "$ROOT/scripts/demo.sql"
cat <<DONE

Connect as the application role "app" (tenant acme, Row Level Security on):
    psql -h $DEMO_DIR -p $DEMO_PORT -U app audience
as the read-only analyst, who lands in acme too:
    psql -h $DEMO_DIR -p $DEMO_PORT -U analyst audience
or as the superuser, who sees every tenant's rows in the tables:
    psql -h $DEMO_DIR -p $DEMO_PORT -U postgres audience
Stop the cluster with:
    $(if [ "$(id -u)" = 0 ]; then echo "runuser -u postgres -- "; fi)$("$PG_CONFIG" --bindir)/pg_ctl -D $DEMO_DIR/data stop
DONE
