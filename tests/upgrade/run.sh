#!/usr/bin/env bash
# Upgrades: installs each earlier release's SQL (kept here as released),
# fills it with data, runs ALTER EXTENSION audience UPDATE, and checks that
# the data is intact, the API works, an application role keeps its tenant,
# and the upgraded schema is exactly that of a fresh install of the current
# version. Runs against the caller's cluster.
#   tests/upgrade/run.sh HOST_DIR PORT
source "$(dirname "$0")/../../scripts/lib.sh"
HOST=$1 PORT=$2
BIN=$("$PG_CONFIG" --bindir)
EXTDIR="$("$PG_CONFIG" --sharedir)/extension"
RELEASES=(0.1.0 0.1.1)
for release in "${RELEASES[@]}"; do
    if [ -w "$EXTDIR" ]; then cp "$(dirname "$0")/audience--$release.sql" "$EXTDIR"/; else as_root cp "$(dirname "$0")/audience--$release.sql" "$EXTDIR"/; fi
done
psql_() { as_pg "$BIN/psql" -h "$HOST" -p "$PORT" -U postgres -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS fresh" -c "CREATE DATABASE fresh" \
      -c "DROP ROLE IF EXISTS upgrade_app" -c "CREATE ROLE upgrade_app IN ROLE audience_user"
psql_ -d fresh -c "CREATE EXTENSION audience"
psql_ -d fresh -f "$(dirname "$0")/catalog.sql" >/tmp/audience-fresh.txt
for release in "${RELEASES[@]}"; do
psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS upgraded" -c "CREATE DATABASE upgraded"
psql_ -d upgraded -v release="$release" <<'SQL'
CREATE EXTENSION audience VERSION :'release';
SELECT audience.create_tenant('old');
SET audience.tenant = 'old';
SELECT audience.define_field('budget', 'number');
SELECT rows FROM audience.import_csv(E'email,budget,tags\nann@example.com,1200,VIP\nbob@example.com,5,ΟΔΟΣ\n');
SELECT audience.track('ann@example.com', 'clicked');
SELECT audience.create_segment('Clickers', 'clicked at least 1 times');
SELECT audience.create_list('Picked');
SELECT audience.add_to_list('Picked', ARRAY(SELECT id FROM audience.contacts));
CREATE TEMP TABLE before_upgrade AS SELECT email, score, tags, attributes FROM audience.contacts;
CREATE TEMP TABLE members_before AS SELECT tenant_id, segment_id, contact_id, added_at FROM audience.segment_members;
ALTER EXTENSION audience UPDATE;
DO $check$
BEGIN
    IF (SELECT extversion FROM pg_extension WHERE extname = 'audience') <> (SELECT default_version FROM pg_available_extensions WHERE name = 'audience') THEN
        RAISE EXCEPTION 'the upgrade did not reach the current version';
    END IF;
    IF EXISTS (SELECT email, score, tags, attributes FROM audience.contacts EXCEPT SELECT * FROM before_upgrade) THEN
        RAISE EXCEPTION 'contacts changed in the upgrade';
    END IF;
    -- Stored membership moves to its new form pair for pair, with the
    -- time each contact entered.
    IF (SELECT count(*) FROM members_before) < 3
       OR EXISTS (SELECT * FROM members_before EXCEPT SELECT tenant_id, segment_id, contact_id, added_at FROM audience.segment_members)
       OR EXISTS (SELECT tenant_id, segment_id, contact_id, added_at FROM audience.segment_members EXCEPT SELECT * FROM members_before) THEN
        RAISE EXCEPTION 'stored membership changed in the upgrade';
    END IF;
    IF NOT audience.in_segment((SELECT id FROM audience.contacts WHERE email = 'bob@example.com'), 'Picked')
       OR audience.in_segment((SELECT id FROM audience.contacts WHERE email = 'bob@example.com'), 'Clickers') THEN
        RAISE EXCEPTION 'in_segment does not read the upgraded membership';
    END IF;
    IF (SELECT member_count FROM audience.segments WHERE kind = 'everyone') <> 2 THEN
        RAISE EXCEPTION 'the member count of Everyone is not the number of contacts';
    END IF;
    PERFORM audience.create_query_segment('Queried', 'SELECT id FROM audience.contacts');
    IF audience.count('Queried') <> 2 THEN
        RAISE EXCEPTION 'query segments do not work after the upgrade';
    END IF;
    -- Tags folded as this release folds them.
    IF audience.preview('tag ''οδος''') <> 1
       OR (SELECT tag_keys FROM audience.contacts WHERE email = 'bob@example.com') <> ARRAY[audience.fold('ΟΔΟΣ')] THEN
        RAISE EXCEPTION 'tags are not folded as this release folds them';
    END IF;
    PERFORM audience.track('bob@example.com', 'clicked');
    IF audience.count('Clickers') <> 2 OR audience.recompute_scores() <> 0 THEN
        RAISE EXCEPTION 'segments or scores do not follow events after the upgrade';
    END IF;
END
$check$;
-- Members of audience_user keep every existing tenant.
SET ROLE upgrade_app;
DO $check$
BEGIN
    IF (SELECT count(*) FROM audience.contacts) <> 2 THEN
        RAISE EXCEPTION 'an audience_user member lost its tenant in the upgrade';
    END IF;
END
$check$;
RESET ROLE;
SQL
# Same functions, privileges, tables, triggers, policies and comments as a
# fresh install.
psql_ -d upgraded -f "$(dirname "$0")/catalog.sql" >/tmp/audience-upgraded.txt
if ! diff -u /tmp/audience-fresh.txt /tmp/audience-upgraded.txt; then
    echo "the schema upgraded from $release differs from a fresh install" >&2
    exit 1
fi
echo "upgrade from $release: data intact, API working, schema identical to a fresh install"
done
rm -f /tmp/audience-upgraded.txt /tmp/audience-fresh.txt
