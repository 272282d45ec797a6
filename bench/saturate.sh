#!/usr/bin/env bash
# One load run against `resizer serve`, and how much of the machine the server used:
# the server's CPU seconds (utime + stime from /proc) over the wall time, out of the
# core count. Shows idle cores at saturation, which throughput alone hides.
#
#   bench/saturate.sh                                   # 16 connections, 12 s, default settings
#   RESIZER_WORKER__PREFETCH=0 bench/saturate.sh        # any RESIZER_* setting passes through
#   LOAD="--rate 300" DUR=8 bench/saturate.sh           # resizer-bench's load arguments
#   PERF=1 bench/saturate.sh                            # also `perf record -g` the server (perf.data in $OUT)
#
# Loopback only, bounded (3 s warm-up + DUR), the server stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${RESIZER_SHARED:-$PWD/../shared}
CORPUS=$SHARED/bench/imaging/corpus/jpeg-256k
DUR=${DUR:-12}
LOAD=${LOAD:---concurrency 16}
OUT=${OUT:-$(mktemp -d /tmp/resizer-saturate.XXXX)}
PORT=${PORT:-18280}
mkdir -p "$OUT"
cargo build -q --release --locked -p resizer -p resizer-bench >&2

RESIZER_ADMIN_TOKEN=saturate-admin-token-0123 RESIZER_LOG=warn RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=256 RESIZER_API__JOIN_IDENTICAL=false \
  target/release/resizer serve --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$((PORT + 1)) --data-dir "$OUT/data" \
  >"$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
TENANT=$(curl -sf -X POST -H 'Authorization: Bearer saturate-admin-token-0123' -d '{"name":"saturate","rate_limit_rps":1000000}' \
  http://127.0.0.1:$((PORT + 1))/admin/v1/tenants | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
KEY=$(curl -sf -X POST -H 'Authorization: Bearer saturate-admin-token-0123' \
  http://127.0.0.1:$((PORT + 1))/admin/v1/tenants/$TENANT/keys | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
BENCH=(target/release/resizer-bench --key "$KEY" --url "http://127.0.0.1:$PORT/v1/resize?width=320&height=320&quality=80&format=jpeg")
"${BENCH[@]}" --concurrency 16 --duration 3 "$CORPUS" >/dev/null 2>&1   # warm-up

ticks() { awk '{print $14 + $15}' /proc/$SERVER/stat; }
t0=$(date +%s.%N); c0=$(ticks)
PERF_PID=
if [ -n "${PERF:-}" ]; then perf record -q -F 999 -g -p $SERVER -o "$OUT/perf.data" -- sleep $((DUR - 1)) >/dev/null 2>&1 & PERF_PID=$!; fi
# shellcheck disable=SC2086
"${BENCH[@]}" $LOAD --duration "$DUR" "$CORPUS" 2>/dev/null | grep -v '^\s*$' | tail -4
c1=$(ticks); t1=$(date +%s.%N)
[ -z "$PERF_PID" ] || wait "$PERF_PID" || true
python3 -c "print(f'server: {($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0):.2f} of $(nproc) cores busy')"
[ -n "${PERF:-}" ] && echo "profile: perf report -i $OUT/perf.data --no-children --sort sym -g none" || true
