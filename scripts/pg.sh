#!/usr/bin/env bash
# Ensure a PostgreSQL server for tests.
#
#   scripts/pg.sh [start]   ensure a server; stdout gets exactly one line: the SQLAlchemy URL
#   scripts/pg.sh stop      stop the private cluster (if running)
#   scripts/pg.sh status    exit 0 if the private cluster is running
#
# If $LTC_TEST_PG_URL is set and connectable, it is printed and nothing else happens.
# Otherwise a private, throw-away cluster lives in <repo>/.pgdata (owned by the
# `postgres` user when run as root), listening on 127.0.0.1:${LTC_PG_PORT:-54329},
# trust auth on loopback, durability turned off for speed; database `ltc_test`.
# If the port is taken by something else and LTC_PG_PORT was not set, the next free
# port (up to +20) is used; the printed URL always tells the real one.
# Progress goes to stderr; stdout carries only the URL.
# Env: LTC_PG_STARTED_FILE=path  -> the data dir is written there when THIS call started
#      the server (scripts/test.sh uses it to stop only what it started).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
CMD="${1:-start}"
DB=ltc_test
PORT="${LTC_PG_PORT:-54329}"

say() { echo "[pg] $*" >&2; }
die() { echo "[pg] ERROR: $*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "LTC_PG_PORT must be a number, got '$PORT'"

pg_url() { echo "postgresql+psycopg://postgres@127.0.0.1:$1/$DB"; }

# --- run a command as the cluster owner (postgres refuses to run as root) ------------
AS_ROOT=0
[[ $EUID -eq 0 ]] && AS_ROOT=1
as_pg() {   # (fd 9, our lock, must not leak into the long-lived server process)
    if [[ $AS_ROOT -eq 1 ]]; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && exec 9<&- && runuser -u postgres -- "$@")
        else
            (cd / && exec 9<&- && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
        fi
    else
        "$@" 9<&-
    fi
}

# --- where the cluster lives ----------------------------------------------------------
# <repo>/.pgdata, unless (as root) the postgres user cannot reach the repo directory
# (e.g. a clone under /root): then a fixed per-checkout dir under /var/tmp.
data_dir() {
    if [[ $AS_ROOT -eq 1 ]] && id postgres >/dev/null 2>&1 \
        && ! (cd / && runuser -u postgres -- test -x "$REPO") 2>/dev/null; then
        echo "/var/tmp/ltc-pgdata-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)"
    else
        echo "$REPO/.pgdata"
    fi
}

find_bindir() {   # $1: wanted major version (optional)
    local d
    if [[ -n "${1:-}" && -x "/usr/lib/postgresql/$1/bin/initdb" ]]; then
        echo "/usr/lib/postgresql/$1/bin"; return 0
    fi
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [[ -n "$d" && -x "$d/initdb" ]] || return 1
    echo "$d"
}

is_running() { [[ -f "$1/PG_VERSION" ]] && as_pg "$BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

lock() {
    exec 9<"${BASH_SOURCE[0]}"
    flock -w 300 9 || die "another scripts/pg.sh is still running (waited 300s for its lock)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Connectivity check for an externally supplied URL.
url_works() {
    local url="$1" plain
    plain="$(printf '%s' "$url" | sed -E 's#^postgres(ql)?\+[A-Za-z0-9_]+://#postgresql://#')"
    if [[ -x "$REPO/.venv/bin/python" ]] && "$REPO/.venv/bin/python" -c 'import psycopg' 2>/dev/null; then
        timeout 20 "$REPO/.venv/bin/python" -c \
            'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=5).close()' "$plain" 2>/dev/null
    elif command -v psql >/dev/null 2>&1; then
        PGCONNECT_TIMEOUT=5 timeout 20 psql "$plain" -XqtAc 'select 1' >/dev/null 2>&1
    elif command -v pg_isready >/dev/null 2>&1; then
        timeout 20 pg_isready -q -t 5 -d "$plain"
    else
        return 1
    fi
}

DATA="$(data_dir)"

# ======================================================================================
case "$CMD" in
stop|status)
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        say "no cluster at $DATA"
        [[ "$CMD" == stop ]] && exit 0 || exit 3
    fi
    BIN="$(find_bindir "$(cat "$DATA/PG_VERSION")")" || die "no PostgreSQL binaries found"
    if [[ "$CMD" == status ]]; then
        if is_running "$DATA"; then say "running ($DATA)"; exit 0; else say "not running ($DATA)"; exit 3; fi
    fi
    lock
    if is_running "$DATA"; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null || die "pg_ctl stop failed"
        say "stopped ($DATA)"
    else
        say "not running ($DATA)"
    fi
    exit 0
    ;;
start) ;;
*) die "usage: $0 [start|stop|status]" ;;
esac

# --- 0. an already configured, working server? -------------------------------------------
if [[ -n "${LTC_TEST_PG_URL:-}" ]]; then
    if url_works "$LTC_TEST_PG_URL"; then
        say "using existing LTC_TEST_PG_URL"
        echo "$LTC_TEST_PG_URL"
        exit 0
    fi
    say "LTC_TEST_PG_URL is set but not connectable; starting the private cluster instead"
fi

lock   # one start at a time per checkout

# --- 1. server binaries ---------------------------------------------------------------------
WANT_VER=""
[[ -f "$DATA/PG_VERSION" ]] && WANT_VER="$(cat "$DATA/PG_VERSION")"
if ! BIN="$(find_bindir "$WANT_VER")"; then
    [[ $AS_ROOT -eq 1 ]] || die "PostgreSQL server not installed (no /usr/lib/postgresql/*/bin/initdb) and not root to apt-get it"
    say "PostgreSQL server not found; installing Debian package 'postgresql' (apt-get)"
    if ! { apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql >/dev/null; }; then
        die "apt-get install postgresql failed; install a PostgreSQL server or set LTC_TEST_PG_URL (or LTC_SKIP_PG=1 for scripts/test.sh)"
    fi
    BIN="$(find_bindir "$WANT_VER")" || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
fi
if [[ -n "$WANT_VER" && "$BIN" != "/usr/lib/postgresql/$WANT_VER/bin" ]]; then
    die "cluster in $DATA is PostgreSQL $WANT_VER but only $BIN is installed; remove $DATA to recreate it"
fi
if [[ $AS_ROOT -eq 1 ]]; then
    DATA="$(data_dir)"   # the postgres user may only exist since the install above
    id postgres >/dev/null 2>&1 || die "system user 'postgres' missing (normally created by the Debian postgresql package)"
fi

# --- 2. create the cluster once -------------------------------------------------------------
READY_MARK="$DATA/ltc_cluster_ready"
if [[ ! -f "$READY_MARK" ]]; then
    if [[ -f "$DATA/postmaster.pid" ]] && is_running "$DATA"; then
        die "$DATA has a running server but was never fully initialised; stop it and remove $DATA"
    fi
    say "creating cluster in $DATA ($("$BIN/postgres" --version))"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    if [[ $AS_ROOT -eq 1 ]]; then chown postgres:postgres "$DATA"; fi
    chmod 700 "$DATA"
    log="$(mktemp)"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=trust >"$log" 2>&1 \
        || { cat "$log" >&2; rm -f "$log"; die "initdb failed"; }
    rm -f "$log"

    # Unix socket inside the data dir (private); sun_path is limited to 107 bytes,
    # so with a very long path go TCP-only.
    SOCKDIR="$DATA"
    if (( ${#DATA} + 20 > 100 )); then SOCKDIR=""; fi
    # (root may write these postgres-owned files; ownership stays with postgres)
    cat >"$DATA/pg_hba.conf" <<EOF
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
host    all   all   ::1/128       trust
EOF
    cat >>"$DATA/postgresql.conf" <<EOF

# --- LTC Copilot test cluster (scripts/pg.sh): loopback only, speed over durability ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
unix_socket_permissions = 0700
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    touch "$READY_MARK"
fi

# --- 3. start if not running ----------------------------------------------------------------
if is_running "$DATA"; then
    PORT="$(sed -n 4p "$DATA/postmaster.pid")"
    say "already running on 127.0.0.1:$PORT ($DATA)"
else
    if port_in_use "$PORT"; then
        [[ -n "${LTC_PG_PORT:-}" ]] && die "port $PORT (LTC_PG_PORT) is already in use by another program"
        base=$PORT
        for ((p = base + 1; p <= base + 20; p++)); do
            if ! port_in_use "$p"; then PORT=$p; break; fi
        done
        [[ "$PORT" != "$base" ]] || die "ports $base..$((base + 20)) are all in use; set LTC_PG_PORT"
        say "port $base is busy; using $PORT"
    fi
    say "starting on 127.0.0.1:$PORT (log: $DATA/server.log)"
    if ! as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -o "-p $PORT" -w -t 60 start >/dev/null; then
        tail -n 30 "$DATA/server.log" >&2 2>/dev/null || true
        die "pg_ctl start failed (see $DATA/server.log)"
    fi
    if [[ -n "${LTC_PG_STARTED_FILE:-}" ]]; then echo "$DATA" >"$LTC_PG_STARTED_FILE"; fi
fi

# --- 4. wait until ready, create the database ------------------------------------------------
export PGCONNECT_TIMEOUT=5
for ((i = 0; i < 60; i++)); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
done
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "server on 127.0.0.1:$PORT not ready after 30s (see $DATA/server.log)"

psql_() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
if [[ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
    say "creating database $DB"
    psql_ -d postgres -c "CREATE DATABASE $DB" >/dev/null || die "CREATE DATABASE $DB failed"
fi

pg_url "$PORT"
