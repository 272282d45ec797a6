#!/usr/bin/env bash
# A PostgreSQL cluster on loopback only.
#   scripts/test-postgres.sh start   # prints `export RESIZER_TEST_DATABASE_URL=...`
#   scripts/test-postgres.sh stop
# Idempotent: `start` on a running cluster prints the URL again.
# By default it is the tests' throwaway: trust auth, no fsync, wiped on stop and start.
# RESIZER_PG_DURABLE=1 (deploy/cluster.sh) keeps what an operator's database must:
# fsync on, password (SCRAM) auth with a generated password kept 0600 beside the data,
# and the data directory kept across stop and start.
set -euo pipefail
DIR=${RESIZER_TEST_PG_DIR:-/tmp/resizer-test-pg}
PORT=${RESIZER_TEST_PG_PORT:-55432}
# The loopback address it listens on (deploy/cluster.sh gives each component its own).
HOST=${RESIZER_TEST_PG_HOST:-127.0.0.1}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$PGBIN" ] || { echo "test-postgres: PostgreSQL is not installed; run scripts/setup.sh" >&2; exit 1; }

as_pg() {
    # initdb refuses to run as root; Debian's package creates the `postgres` user.
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

DURABLE=${RESIZER_PG_DURABLE:-0}

initialise() {
    mkdir -p "$DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
    if [ "$DURABLE" = 1 ]; then
        # The password file is read by initdb (as postgres) and by whoever builds the URL.
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/password"
        chmod 600 "$DIR/password"
        if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR/password"; fi
        as_pg "$PGBIN/initdb" -D "$DIR/data" -A scram-sha-256 -U resizer --pwfile="$DIR/password" -E UTF8 \
            >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    else
        as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U resizer --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
}

case "${1:-}" in
start)
    if [ -f "$DIR/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        :
    else
        if [ "$DURABLE" = 1 ] && [ -f "$DIR/data/PG_VERSION" ]; then
            : # an existing cluster: start it as it is
        else
            rm -rf "$DIR"
            initialise
        fi
        opts="-p $PORT -k $DIR -c listen_addresses=$HOST -c max_connections=200"
        [ "$DURABLE" = 1 ] || opts="$opts -c fsync=off"
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 -o "$opts" start >/dev/null \
            || { cat "$DIR/server.log" >&2; exit 1; }
    fi
    if [ "$DURABLE" = 1 ]; then
        echo "export RESIZER_TEST_DATABASE_URL=postgres://resizer:$(cat "$DIR/password")@$HOST:$PORT/postgres"
    else
        echo "export RESIZER_TEST_DATABASE_URL=postgres://resizer@$HOST:$PORT/postgres"
    fi
    ;;
stop)
    if [ -d "$DIR/data" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    [ "$DURABLE" = 1 ] || rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
