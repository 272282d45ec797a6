#!/usr/bin/env bash
# Two builds of `resizer serve` under the same closed-loop load, alternating, in one run:
# the way to show a change did not cost throughput or p99 (ratios against the previous version).
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]      # e.g. a release build of main and of a branch
#   DUR=10 CONC=16 bench/ab.sh ...
#
# Loopback only, bounded (ROUNDS × 2 × (3 s warm-up + DUR)), each server stopped after its run.
# resizer-bench comes from this tree's release build, or RESIZER_BENCH.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 ROUNDS=${3:-2}
SHARED=${RESIZER_SHARED:-$PWD/../shared}
CORPUS=$SHARED/bench/imaging/corpus/jpeg-256k
DUR=${DUR:-10}
CONC=${CONC:-16}
PORT=${PORT:-18380}
TOKEN=ab-admin-token-0123456789
if [ -z "${RESIZER_BENCH:-}" ]; then cargo build -q --release --locked -p resizer-bench >&2; fi
BENCH=${RESIZER_BENCH:-target/release/resizer-bench}

one() {
    local label=$1 bin=$2 out server tenant key
    out=$(mktemp -d /tmp/resizer-ab.XXXX)
    RESIZER_ADMIN_TOKEN=$TOKEN RESIZER_LOG=warn RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=256 RESIZER_API__JOIN_IDENTICAL=false \
        "$bin" serve --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$((PORT + 1)) --data-dir "$out/data" \
        >"$out/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
    tenant=$(curl -sf -X POST -H "Authorization: Bearer $TOKEN" -d '{"name":"ab","rate_limit_rps":1000000}' \
        http://127.0.0.1:$((PORT + 1))/admin/v1/tenants | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    key=$(curl -sf -X POST -H "Authorization: Bearer $TOKEN" \
        http://127.0.0.1:$((PORT + 1))/admin/v1/tenants/$tenant/keys | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
    local url="http://127.0.0.1:$PORT/v1/resize?width=320&height=320&quality=80&format=jpeg"
    "$BENCH" --key "$key" --url "$url" --concurrency "$CONC" --duration 3 "$CORPUS" >/dev/null 2>&1
    echo "== $label ($bin)"
    "$BENCH" --key "$key" --url "$url" --concurrency "$CONC" --duration "$DUR" "$CORPUS" 2>&1 | tail -n 6
    kill $server; wait $server 2>/dev/null || true
    rm -rf "$out"
}

for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then one old "$OLD"; one new "$NEW"; else one new "$NEW"; one old "$OLD"; fi
done
