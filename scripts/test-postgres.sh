#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on loopback only.
#   scripts/test-postgres.sh start   # prints `export RESIZER_TEST_DATABASE_URL=...`
#   scripts/test-postgres.sh stop
# Idempotent: `start` on a running cluster prints the URL again.
set -euo pipefail
DIR=${RESIZER_TEST_PG_DIR:-/tmp/resizer-test-pg}
PORT=${RESIZER_TEST_PG_PORT:-55432}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$PGBIN" ] || { echo "test-postgres: PostgreSQL is not installed; run scripts/setup.sh" >&2; exit 1; }

as_pg() {
    # initdb refuses to run as root; Debian's package creates the `postgres` user.
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    if [ -f "$DIR/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        :
    else
        rm -rf "$DIR"
        mkdir -p "$DIR"
        if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
        as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U resizer --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
            -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
            || { cat "$DIR/server.log" >&2; exit 1; }
    fi
    echo "export RESIZER_TEST_DATABASE_URL=postgres://resizer@127.0.0.1:$PORT/postgres"
    ;;
stop)
    if [ -d "$DIR/data" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
