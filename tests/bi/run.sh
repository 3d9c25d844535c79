#!/usr/bin/env bash
# BI tools: SQLAlchemy's inspector (what Superset and pandas use) reflects
# every view of schemas audience and audience_views as a BI login bound to
# one tenant — with no warning, every view and column commented — and
# selects from each without seeing a row of another tenant. Installs
# SQLAlchemy and psycopg from PyPI into a virtual environment of its own.
# Runs against the caller's cluster.
#   tests/bi/run.sh HOST_DIR PORT
source "$(dirname "$0")/../../scripts/lib.sh"
HOST=$1 PORT=$2
BIN=$("$PG_CONFIG" --bindir)
VENV=${BI_VENV:-$ROOT/target/bi-venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || {
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    }
fi
"$VENV/bin/python" -c "import sqlalchemy, psycopg" 2>/dev/null \
    || "$VENV/bin/pip" install -q --disable-pip-version-check "sqlalchemy>=2,<3" "psycopg[binary]>=3.1,<4"
psql_() { as_pg "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS bi" -c "CREATE DATABASE bi" \
      -c "DROP ROLE IF EXISTS bi_login" -c "CREATE ROLE bi_login LOGIN IN ROLE audience_reader"
psql_ -d bi >/dev/null <<'SQL'
CREATE EXTENSION audience;
SELECT audience.create_tenant('seen'), audience.create_tenant('unseen');
SELECT audience.grant_tenant('bi_login', 'seen');
ALTER ROLE bi_login IN DATABASE bi SET audience.tenant = 'seen';
SET audience.tenant = 'unseen';
SELECT audience.define_field('secret', 'text');
INSERT INTO audience.contacts (email, tags, attributes)
VALUES ('hidden@unseen.test', '{unseen-tag}', '{"secret": "unseen-value"}');
SELECT audience.create_segment('Unseen segment', 'everyone');
SELECT audience.publish_segment('Unseen segment', 'unseen view');
SET audience.tenant = 'seen';
SELECT audience.define_field('budget', 'number'), audience.define_field('signed_up', 'date');
INSERT INTO audience.contacts (email, country, tags, attributes)
VALUES ('ann@seen.test', 'DE', '{VIP}', '{"budget": 10, "signed_up": "2026-01-02"}'), ('bob@seen.test', 'US', '{}', '{}');
SELECT audience.track('ann@seen.test', 'clicked');
SELECT audience.create_segment('Germans', 'country = ''DE''');
SELECT audience.create_list('Picked');
SELECT audience.publish_segment('Germans');
SQL
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" "$(dirname "$0")/reflect.py" \
    "postgresql+psycopg://bi_login@/bi?host=$HOST&port=$PORT" unseen
