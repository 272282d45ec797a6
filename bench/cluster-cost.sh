#!/usr/bin/env bash
# What one resize costs in CPU, role by role, in the distributed mode against
# `resizer serve`, under the same closed-loop load in the same run:
#
#   bench/cluster-cost.sh                  # serve, then deploy/cluster.sh; 16 connections, 15 s each
#   CONC=32 DUR=20 bench/cluster-cost.sh
#   LOAD="--rate 100" bench/cluster-cost.sh # open loop instead (resizer-bench's load arguments)
#   ONLY=cluster bench/cluster-cost.sh     # skip the serve leg (ONLY=serve skips the cluster)
#   PERF=1 PERF_TARGET=worker-1 bench/cluster-cost.sh  # also `perf record -g` one component (default nats-1)
#   TAP=1 ONLY=cluster bench/cluster-cost.sh  # also count Raft messages per request by group kind
#                                             # (bench/nats_tap.py; the tap inflates the servers' CPU)
#
# CPU is utime + stime of each process (and its children) from /proc before and after
# the measured run, divided by the answers that were 200. The NATS servers' own
# counters (/varz, /routez) give messages per request: client traffic (publishes,
# pull requests, deliveries, acks) and route traffic (Raft replication).
# Load: fit 320, JPEG q80, the 256 KB corpus; loopback only; everything it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RESIZER_SHARED:-$ROOT/../shared}
CORPUS=${CORPUS:-$SHARED/bench/imaging/corpus/jpeg-256k}
DUR=${DUR:-15}
CONC=${CONC:-16}
LOAD=${LOAD:---concurrency $CONC}
ONLY=${ONLY:-}
OUT=${OUT:-$(mktemp -d /tmp/resizer-cost.XXXX)}
PORT=${PORT:-18280}
QUERY="width=320&height=320&quality=80&format=jpeg"
export RESIZER_CLUSTER_DIR=${RESIZER_CLUSTER_DIR:-/tmp/resizer-cost-cluster}
export RESIZER_CLUSTER_PORT_BASE=${RESIZER_CLUSTER_PORT_BASE:-26000}
mkdir -p "$OUT"
if [ -n "${TAP:-}" ]; then export NATS_SYS_PASSWORD=${NATS_SYS_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}; fi
cargo build -q --release --locked -p resizer -p resizer-bench >&2
# RESIZER_BIN: another build to measure (e.g. the previous version); default this tree's.
export RESIZER_BIN=${RESIZER_BIN:-$ROOT/target/release/resizer}
BENCH=$ROOT/target/release/resizer-bench
TICK=$(getconf CLK_TCK)

SERVER=
cleanup() {
    [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
    [ "$ONLY" = serve ] || deploy/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Imaging threads' CPU (µs) from one /metrics: the part of a request that is the resize itself.
imaging_us() {
    curl -sf -H "Authorization: Bearer $2" "$1/metrics" |
        awk '/^resizer_worker_cpu_microseconds_total/ {s += $NF} END {printf "%d", s}'
}

# CPU ticks of a process and its reaped children.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

# new_key ADMIN_URL TOKEN: a tenant without a practical rate limit, and its key.
new_key() {
    local tenant
    tenant=$(curl -sf -X POST -H "Authorization: Bearer $2" -d '{"name":"cost","rate_limit_rps":1000000,"burst":1000000}' \
        "$1/admin/v1/tenants" | json_field id)
    curl -sf -X POST -H "Authorization: Bearer $2" "$1/admin/v1/tenants/$tenant/keys" | json_field secret
}

serve_leg() {
    RESIZER_ADMIN_TOKEN=cost-admin-token-0123456789 RESIZER_LOG=warn RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=256 \
        RESIZER_API__JOIN_IDENTICAL=false \
        "$RESIZER_BIN" serve --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$((PORT + 1)) --data-dir "$OUT/serve-data" \
        >"$OUT/serve.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
    local key t0 c0 c1 t1 report
    key=$(new_key http://127.0.0.1:$((PORT + 1)) cost-admin-token-0123456789)
    "$BENCH" --key "$key" --url "http://127.0.0.1:$PORT/v1/resize?$QUERY" --concurrency "$CONC" --duration 3 --warmup 0 "$CORPUS" >/dev/null 2>&1
    local i0 i1
    i0=$(imaging_us http://127.0.0.1:$PORT cost-admin-token-0123456789)
    t0=$(date +%s.%N); c0=$(ticks $SERVER)
    # shellcheck disable=SC2086 # LOAD is several arguments
    report=$("$BENCH" --key "$key" --url "http://127.0.0.1:$PORT/v1/resize?$QUERY" $LOAD --duration "$DUR" --warmup 0 --json "$CORPUS" 2>/dev/null | tail -1)
    c1=$(ticks $SERVER); t1=$(date +%s.%N)
    i1=$(imaging_us http://127.0.0.1:$PORT cost-admin-token-0123456789)
    kill $SERVER; wait $SERVER 2>/dev/null || true
    SERVER=
    echo "{\"leg\":\"serve\",\"wall\":$(python3 -c "print($t1-$t0)"),\"report\":$report,\"imaging_us\":$((i1 - i0)),\"cpu\":{\"resizer serve\":$(((c1 - c0)))}}" >"$OUT/serve.json"
}

nats_counters() {
    local n out="{"
    for n in 1 2 3; do
        local base="http://$(deploy/cluster.sh addr nats-$n):$((RESIZER_CLUSTER_PORT_BASE + 20 + n))"
        out+="\"nats-$n\":{\"varz\":$(curl -sf "$base/varz"),\"routez\":$(curl -sf "$base/routez")},"
    done
    echo "${out%,}}"
}

# The queue-client counters of the API nodes and workers, as JSON {role: metrics text}.
queue_counters() {
    local secret out="{" c port
    secret=$(cat "$RESIZER_CLUSTER_DIR/cluster-secret")
    for c in api-1:51 api-2:52 worker-1:71 worker-2:72; do
        port=$((RESIZER_CLUSTER_PORT_BASE + ${c#*:}))
        out+="\"${c%:*}\":$(curl -sf -H "Authorization: Bearer $secret" "http://$(deploy/cluster.sh addr "${c%:*}"):$port/metrics" |
            grep -E '^resizer_queue_(operations_total|receive_delay_seconds)' | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),"
    done
    echo "${out%,}}"
}

cluster_leg() {
    # The same work per request as the serve leg: no joining of identical requests.
    RESIZER_API__JOIN_IDENTICAL=false RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=256 deploy/cluster.sh up >"$OUT/cluster-up.txt"
    local public admin token key names c t0 t1 report
    public=$(sed -n 's/^public_url=//p' "$OUT/cluster-up.txt")
    admin=$(sed -n 's/^admin_url=//p' "$OUT/cluster-up.txt")
    token=$(sed -n 's/^admin_token=//p' "$OUT/cluster-up.txt")
    key=$(new_key "$admin" "$token")
    # The key reaches both API nodes through identity's feed; wait until one answers.
    for _ in $(seq 1 50); do
        curl -sf -o /dev/null -H "Authorization: Bearer $key" "$public/v1/usage" && break
        sleep 0.2
    done
    "$BENCH" --key "$key" --url "$public/v1/resize?$QUERY" --concurrency "$CONC" --duration 3 --warmup 0 "$CORPUS" >/dev/null 2>&1
    names=$(deploy/cluster.sh status | awk '$2 == "running" {print $1}')
    declare -A pid before
    for c in $names; do
        pid[$c]=$(deploy/cluster.sh status | awk -v c="$c" '$1 == c {sub("pid=", "", $3); print $3}')
    done
    nats_counters >"$OUT/nats-before.json"
    local secret w i0=0 i1=0
    secret=$(cat "$RESIZER_CLUSTER_DIR/cluster-secret")
    for w in 1 2; do i0=$((i0 + $(imaging_us "http://$(deploy/cluster.sh addr worker-$w):$((RESIZER_CLUSTER_PORT_BASE + 70 + w))" "$secret"))); done
    queue_counters >"$OUT/queue-before.json"
    t0=$(date +%s.%N)
    for c in $names; do before[$c]=$(ticks "${pid[$c]}"); done
    local perf_pid=
    if [ -n "${PERF:-}" ]; then
        perf record -q -F 999 -g -p "${pid[${PERF_TARGET:-nats-1}]}" -o "$OUT/perf.data" -- sleep $((DUR - 1)) >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local tap_pid=
    if [ -n "${TAP:-}" ]; then
        python3 bench/nats_tap.py "$(deploy/cluster.sh addr nats-1)" $((RESIZER_CLUSTER_PORT_BASE + 1)) "$NATS_SYS_PASSWORD" "$DUR" >"$OUT/tap.json" &
        tap_pid=$!
    fi
    # shellcheck disable=SC2086 # LOAD is several arguments
    report=$("$BENCH" --key "$key" --url "$public/v1/resize?$QUERY" $LOAD --duration "$DUR" --warmup 0 --json "$CORPUS" 2>/dev/null | tail -1)
    [ -z "$tap_pid" ] || wait "$tap_pid"
    local cpu="{"
    for c in $names; do cpu+="\"$c\":$(($(ticks "${pid[$c]}") - before[$c])),"; done
    t1=$(date +%s.%N)
    nats_counters >"$OUT/nats-after.json"
    for w in 1 2; do i1=$((i1 + $(imaging_us "http://$(deploy/cluster.sh addr worker-$w):$((RESIZER_CLUSTER_PORT_BASE + 70 + w))" "$secret"))); done
    queue_counters >"$OUT/queue-after.json"
    [ -z "$perf_pid" ] || wait "$perf_pid" || true
    echo "{\"leg\":\"cluster\",\"wall\":$(python3 -c "print($t1-$t0)"),\"report\":$report,\"imaging_us\":$((i1 - i0)),\"cpu\":${cpu%,}}}" >"$OUT/cluster.json"
    deploy/cluster.sh down >/dev/null 2>&1
}

[ "$ONLY" = cluster ] || serve_leg
[ "$ONLY" = serve ] || cluster_leg
python3 bench/cluster_cost.py "$OUT" "$TICK"
echo "raw data: $OUT" >&2
[ -z "${PERF:-}" ] || echo "profile: perf report -i $OUT/perf.data --no-children --sort sym -g none" >&2
