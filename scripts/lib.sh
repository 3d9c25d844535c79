# Shared by the scripts in this folder: installing what is missing, and
# throwaway PostgreSQL clusters that never touch the system one.
# shellcheck shell=bash

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGRX_VERSION=0.18.1
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron libclang-dev clang sudo)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# PostgreSQL refuses to run as root; root runs servers as the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# install_packages PACKAGE...: installs those Debian packages that are not.
install_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Installs the Debian packages, cargo-pgrx and pgrx's PostgreSQL 15 config,
# each only when it is missing.
ensure_tools() {
    command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
    install_packages "${APT_PACKAGES[@]}"
    if [ "$(cargo pgrx --version 2>/dev/null)" != "cargo-pgrx $PGRX_VERSION" ]; then
        say "installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -qs '^pg15' "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        cargo pgrx init --pg15 "$PG_CONFIG"
    fi
}

# Builds and installs the extension into PostgreSQL 15 (sudo when the
# PostgreSQL folders are not ours). Pass --release for an optimised build.
install_extension() {
    local sudo_flag=()
    [ -w "$("$PG_CONFIG" --pkglibdir)" ] || sudo_flag=(--sudo)
    (cd "$ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" "${sudo_flag[@]}" "$@")
}

# start_cluster DIR PORT [SETTING...]: a fresh cluster in DIR listening on
# a socket in DIR; each SETTING is a postgresql.conf line that overrides ours.
start_cluster() {
    local dir=$1 port=$2 bin
    bin=$("$PG_CONFIG" --bindir)
    stop_cluster "$dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'audience'
cron.use_background_workers = on
max_worker_processes = 16
fsync = off
CONF
    [ $# -le 2 ] || printf '%s\n' "${@:3}" >>"$dir/data/postgresql.conf"
    # A Rust backtrace setting would make the server print backtraces into
    # error details.
    as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

# stop_cluster DIR: stops the cluster in DIR if one is running there.
stop_cluster() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_pg "$("$PG_CONFIG" --bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
}

# ensure_citus: Citus in PostgreSQL, built and installed from the archive
# that CITUS_ARCHIVE names (about 4 minutes on 2 cores) when it is missing;
# says why and returns 1 when there is neither.
CITUS_PACKAGES=(liblz4-dev libzstd-dev libssl-dev libkrb5-dev libcurl4-openssl-dev autoconf make gcc)
ensure_citus() {
    [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] && return 0
    if [ -z "${CITUS_ARCHIVE:-}" ] || [ ! -f "$CITUS_ARCHIVE" ]; then
        echo "Citus is not installed and CITUS_ARCHIVE names no archive of it"
        return 1
    fi
    local build
    install_packages "${CITUS_PACKAGES[@]}"
    say "building Citus from $CITUS_ARCHIVE (a few minutes, once)"
    build=$(mktemp -d)
    tar -xzf "$CITUS_ARCHIVE" -C "$build"
    (cd "$build"/citus-* && ./configure --quiet PG_CONFIG="$PG_CONFIG" >/dev/null \
        && make -s -j"$(nproc)" >/dev/null && as_root make -s install >/dev/null)
    rm -rf "$build"
}

# start_citus BASE PORT DATABASE [SETTING...]: a throwaway Citus cluster,
# the coordinator in BASE/node0 on PORT and two workers in BASE/node1 and
# BASE/node2 on the next ports, with DATABASE made a Citus database on them
# (citus_database). Nodes talk over localhost.
start_citus() {
    local base=$1 port=$2 database=$3 i
    for i in 0 1 2; do
        start_cluster "$base/node$i" $((port + i)) "listen_addresses = 'localhost'" \
            "shared_preload_libraries = 'citus'" "max_connections = 200" "${@:4}"
    done
    citus_database "$port" "$database"
}

# citus_database PORT DATABASE: DATABASE created with the citus extension
# on the three nodes start_citus started from PORT, the workers added to
# the coordinator's.
citus_database() {
    local port=$1 database=$2 i bin
    bin=$("$PG_CONFIG" --bindir)
    for i in 0 1 2; do
        as_pg "$bin/psql" -h localhost -p $((port + i)) -U postgres -X -q -v ON_ERROR_STOP=1 -d postgres \
            -c "CREATE DATABASE $database"
        as_pg "$bin/psql" -h localhost -p $((port + i)) -U postgres -X -q -v ON_ERROR_STOP=1 -d "$database" \
            -c "CREATE EXTENSION citus"
    done
    as_pg "$bin/psql" -h localhost -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 -d "$database" \
        -c "SELECT citus_set_coordinator_host('localhost', $port)" \
        -c "SELECT citus_add_node('localhost', $((port + 1)))" \
        -c "SELECT citus_add_node('localhost', $((port + 2)))" >/dev/null
}

# stop_citus BASE: stops the nodes start_citus started in BASE.
stop_citus() {
    local i
    for i in 0 1 2; do stop_cluster "$1/node$i"; done
}

# run_regress FOLDER HOST PORT: the pg_regress scenarios of FOLDER, in the
# order of its schedule, against database audience of the cluster at
# HOST:PORT. pg_regress writes results next to the inputs: it runs on a
# copy. Prints the differences and exits when one fails.
run_regress() {
    local folder=$1 host=$2 port=$3 work status=0
    work=$(mktemp -d)
    cp -r "$folder"/. "$work"/
    [ "$(id -u)" = 0 ] && chown -R postgres "$work"
    as_pg "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" --use-existing \
        --host="$host" --port="$port" --user=postgres --dbname=audience \
        --inputdir="$work" --outputdir="$work" --schedule="$work/schedule" || status=$?
    if [ $status -ne 0 ]; then
        head -200 "$work/regression.diffs" 2>/dev/null || true
        echo "pg_regress failed; results in $work" >&2
        exit $status
    fi
    rm -rf "$work"
}
