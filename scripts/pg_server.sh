#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
#   scripts/pg_server.sh start   # install PostgreSQL if missing, start a fresh server, print its URL
#   scripts/pg_server.sh url     # print the URL of the running server
#   scripts/pg_server.sh stop    # stop it and delete its data directory
#
# The server listens on 127.0.0.1 only, at $PGPORT_TEST (default 25433), with trust
# authentication for loopback connections, its unix socket inside its data directory, and a
# database `topup_test`. Its data lives in a fresh `mktemp -d` directory and is deleted by
# `stop`. It is tuned for tests, not for keeping data (fsync is off).
#
# `start` remembers the server in a state file ($TOPUP_PG_STATE, default
# ${TMPDIR:-/tmp}/topup-pg-test.state) so that `url` and `stop` find it; a second `start`
# while that server runs just prints its URL.
#
# Only the URL goes to stdout; progress and errors go to stderr.
# Exit codes: 0 ok, 1 failure, 2 usage, 3 the port is already taken by something else.
set -euo pipefail

PORT="${PGPORT_TEST:-25433}"
STATE="${TOPUP_PG_STATE:-${TMPDIR:-/tmp}/topup-pg-test.state}"
DBNAME=topup_test
PGUSER_NAME=postgres

say() { printf 'pg_server: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
    echo "usage: $0 start|stop|url   (port: PGPORT_TEST, default 25433)" >&2
    exit 2
}

url_for() { printf 'postgresql://%s@127.0.0.1:%s/%s\n' "$PGUSER_NAME" "$1" "$DBNAME"; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the server's OS user: `postgres` when we are root (the server refuses to
# run as root), otherwise ourselves.
as_pg() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u postgres -- "$@")
        else
            (cd / && su -s /bin/bash postgres -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

# The newest installed server's bin directory, e.g. /usr/lib/postgresql/15/bin.
find_bindir() {
    local found=() f
    for f in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$f" ] && found+=("${f%/postgres}")
    done
    [ "${#found[@]}" -gt 0 ] || return 1
    printf '%s\n' "${found[@]}" | sort -V | tail -n 1
}

install_postgres() {
    say "PostgreSQL server not found under /usr/lib/postgresql; installing it with apt-get"
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install PostgreSQL (apt-get install postgresql) first"
        sudo=(sudo)
    fi
    # Don't let the package create and start its own cluster on port 5432: we only need the
    # binaries. (postgresql-common reads createcluster.d; older versions ignore this file.)
    "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" |
        "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/topup-no-main-cluster.conf >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

ensure_postgres_user() {
    is_root || return 0
    id -u postgres >/dev/null 2>&1 && return 0
    say "creating the postgres OS user"
    useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
        --shell /bin/bash postgres
}

# Something (anything) accepting TCP connections on 127.0.0.1:$1?
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- state file: KEY=value lines, parsed (never sourced) ---------------------------------

S_BASE="" S_PGDATA="" S_PORT="" S_BINDIR=""

read_state() {
    S_BASE="" S_PGDATA="" S_PORT="" S_BINDIR=""
    [ -f "$STATE" ] || return 1
    local key value
    while IFS='=' read -r key value; do
        case "$key" in
            base) S_BASE="$value" ;;
            pgdata) S_PGDATA="$value" ;;
            port) S_PORT="$value" ;;
            bindir) S_BINDIR="$value" ;;
        esac
    done <"$STATE"
    [ -n "$S_BASE" ] && [ -n "$S_PGDATA" ] && [ -n "$S_PORT" ] && [ -n "$S_BINDIR" ]
}

write_state() {
    # Write beside the target and rename over it, so a planted symlink is replaced, not followed.
    local tmp
    tmp="$(mktemp "${STATE}.XXXXXX")"
    printf 'base=%s\npgdata=%s\nport=%s\nbindir=%s\n' "$1" "$2" "$3" "$4" >"$tmp"
    mv -f "$tmp" "$STATE"
}

state_running() {
    read_state || return 1
    [ -x "$S_BINDIR/pg_ctl" ] && [ -d "$S_PGDATA" ] || return 1
    as_pg "$S_BINDIR/pg_ctl" -D "$S_PGDATA" status >/dev/null 2>&1
}

# Delete a data directory this script made (and nothing else).
remove_base() {
    local base="$1"
    [ -n "$base" ] && [ -d "$base" ] || return 0
    case "$(basename "$base")" in
        topup-pg.*) rm -rf -- "$base" ;;
        *) say "not deleting $base: it does not look like one of this script's data directories" ;;
    esac
}

# A failed start: stop whatever came up and delete what was made.
START_BINDIR="" START_PGDATA="" START_BASE=""
abandon_start() {
    if [ -n "$START_PGDATA" ] && [ -f "$START_PGDATA/postmaster.pid" ]; then
        as_pg "$START_BINDIR/pg_ctl" -D "$START_PGDATA" stop -m immediate >/dev/null 2>&1 || true
    fi
    remove_base "$START_BASE"
    rm -f -- "$STATE"
}

# --- commands ------------------------------------------------------------------------------

cmd_url() {
    state_running || die "no test server running (state file: $STATE); run: $0 start"
    url_for "$S_PORT"
}

cmd_stop() {
    if ! read_state; then
        rm -f -- "$STATE"
        say "no test server to stop"
        return 0
    fi
    if [ -x "$S_BINDIR/pg_ctl" ] && [ -d "$S_PGDATA" ] &&
        as_pg "$S_BINDIR/pg_ctl" -D "$S_PGDATA" status >/dev/null 2>&1; then
        as_pg "$S_BINDIR/pg_ctl" -D "$S_PGDATA" stop -m fast -w -t 60 >/dev/null ||
            say "pg_ctl stop failed (port $S_PORT); deleting its data directory anyway"
    fi
    remove_base "$S_BASE"
    rm -f -- "$STATE"
    say "stopped the test server on port $S_PORT"
}

cmd_start() {
    if state_running; then
        [ "$S_PORT" = "$PORT" ] || say "already running on port $S_PORT (from $STATE), not $PORT"
        url_for "$S_PORT"
        return 0
    fi
    if read_state; then # stale: the server is gone but its files may be left
        remove_base "$S_BASE"
    fi
    rm -f -- "$STATE"

    if port_in_use "$PORT"; then
        say "port $PORT on 127.0.0.1 is already in use; choose another with PGPORT_TEST"
        exit 3
    fi

    local bindir
    if ! bindir="$(find_bindir)"; then
        install_postgres
        bindir="$(find_bindir)" || die "PostgreSQL installed but no /usr/lib/postgresql/*/bin/postgres"
    fi
    ensure_postgres_user

    local base
    base="$(mktemp -d "${TMPDIR:-/tmp}/topup-pg.XXXXXX")"
    if is_root; then
        chown postgres: "$base"
        if ! as_pg test -w "$base"; then # e.g. TMPDIR under /root, which postgres cannot reach
            rm -rf -- "$base"
            base="$(mktemp -d /tmp/topup-pg.XXXXXX)"
            chown postgres: "$base"
        fi
    fi
    local pgdata="$base/data" log="$base/server.log"

    # From here on, a failure removes what was made.
    START_BINDIR="$bindir" START_PGDATA="$pgdata" START_BASE="$base"
    trap abandon_start EXIT

    say "initialising $pgdata with $bindir"
    as_pg "$bindir/initdb" -D "$pgdata" -U "$PGUSER_NAME" --auth=trust --encoding=UTF8 --locale=C \
        --no-sync >"$base/initdb.log" 2>&1 || { cat "$base/initdb.log" >&2; die "initdb failed"; }

    # Trust, but only over the socket inside the data directory and over 127.0.0.1.
    as_pg tee "$pgdata/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
EOF
    local socket_dir="$pgdata"
    if [ "${#socket_dir}" -gt 90 ]; then # unix socket paths are limited to ~107 bytes
        say "data directory path too long for a unix socket; TCP only"
        socket_dir=""
    fi
    as_pg tee -a "$pgdata/postgresql.conf" >/dev/null <<EOF

# --- topup-ledger test server (scripts/pg_server.sh) ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$socket_dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    write_state "$base" "$pgdata" "$PORT" "$bindir"

    if ! as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$log" -w -t 60 start >/dev/null; then
        tail -n 20 "$log" >&2 || true
        if port_in_use "$PORT"; then
            say "port $PORT was taken while starting; choose another with PGPORT_TEST"
            exit 3
        fi
        die "the server did not start (log above)"
    fi

    local i
    for i in $(seq 1 60); do
        "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME" -d postgres && break
        [ "$i" -lt 60 ] || die "the server on port $PORT never became ready"
        sleep 0.5
    done

    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME" -d postgres \
        -c "CREATE DATABASE $DBNAME" >&2 || die "could not create database $DBNAME"

    trap - EXIT
    say "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$PORT (data: $pgdata)"
    url_for "$PORT"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    *) usage ;;
esac
