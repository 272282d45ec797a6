#!/usr/bin/env bash
# Attack on single-replica consumers (ADR 0009, fourth addendum): deploy/cluster.sh with
# SINGLE_REPLICA_CONSUMERS=true, then the NATS server holding most job consumers is cut off from
# the other two servers (clients still reach it) for 20 s under 30 requests/s open loop through
# HAProxy. Prints where each consumer lives before, during and after, the load's JSON summary
# (statuses, p99) and the workers' replacement log lines.
#
#   bench/partition-consumers.sh
#   SINGLE_REPLICA_CONSUMERS=false bench/partition-consumers.sh   # replicated consumers, same fault
#
# Needs root, nftables and cgroup v2 (deploy/cluster.sh net). Loopback only; the fault is healed
# and the cluster stopped on exit.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-${RESIZER_SHARED:-$ROOT/../shared}/bench/imaging/corpus/jpeg-256k}
export RESIZER_CLUSTER_DIR=${RESIZER_CLUSTER_DIR:-/tmp/resizer-partition}
export RESIZER_CLUSTER_PORT_BASE=${RESIZER_CLUSTER_PORT_BASE:-26800}
export SINGLE_REPLICA_CONSUMERS=${SINGLE_REPLICA_CONSUMERS:-true}
cargo build -q --release --locked -p resizer -p resizer-bench >&2
export RESIZER_BIN=$ROOT/target/release/resizer
trap 'deploy/cluster.sh net heal >/dev/null 2>&1; deploy/cluster.sh down >/dev/null 2>&1' EXIT
up=$(deploy/cluster.sh up) || exit 1
field() { sed -n "s/^$1=//p" <<<"$up"; }
public=$(field public_url); admin=$(field admin_url); token=$(field admin_token)
jf() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
tenant=$(curl -sf -X POST -H "Authorization: Bearer $token" -d '{"name":"partition","rate_limit_rps":100000,"burst":100000}' "$admin/admin/v1/tenants" | jf id)
key=$(curl -sf -X POST -H "Authorization: Bearer $token" "$admin/admin/v1/tenants/$tenant/keys" | jf secret)
for _ in $(seq 1 50); do curl -sf -o /dev/null -H "Authorization: Bearer $key" "$public/v1/usage" && break; sleep 0.2; done
# Each job consumer as "server stream consumer host".
consumers() {
    for n in 1 2 3; do
        curl -s "http://$(deploy/cluster.sh addr nats-$n):$((RESIZER_CLUSTER_PORT_BASE + 20 + n))/jsz?streams=true&consumers=true" |
            python3 -c "
import json, sys
for a in json.load(sys.stdin).get('account_details', []):
    for s in a.get('stream_detail', []):
        if s['name'].startswith('RESIZER_JOBS'):
            for c in s.get('consumer_detail', []):
                print('nats-$n', s['name'], c['name'], c['cluster'].get('leader'))"
    done
}
consumers
victim=$(consumers | awk '{print $4}' | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')
others=$(for n in 1 2 3; do [ "nats-$n" = "$victim" ] || printf 'nats-%s ' "$n"; done)
echo "cutting $victim from ${others% }"
target/release/resizer-bench --key "$key" --url "$public/v1/resize?width=320&height=320&quality=80&format=jpeg" \
    --rate 30 --duration 40 --warmup 0 --json "$CORPUS" >"$RESIZER_CLUSTER_DIR/load.json" 2>/dev/null &
load=$!
sleep 5
deploy/cluster.sh net cut "$victim" "${others% }"
sleep 12
echo "--- during the cut"; consumers
sleep 8
deploy/cluster.sh net heal
wait $load
tail -1 "$RESIZER_CLUSTER_DIR/load.json"
echo "--- after"; consumers
grep -h "replaced\|pulling from" "$RESIZER_CLUSTER_DIR"/worker-*.log | cut -c1-200
