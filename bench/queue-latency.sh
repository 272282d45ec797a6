#!/usr/bin/env bash
# The job queue alone at the article's rate: deploy/cluster.sh's three nats-servers
# (R3, the cluster's own settings and users), the cluster's workers stopped, and
# `queue-latency` publishing open-loop and pulling through Resizer's JetStream client.
# Prints publish-ack and publish-to-receive percentiles and the servers' CPU per job.
#
#   bench/queue-latency.sh                 # 2,000 jobs/s for 10 s, 16 pulling tasks
#   RATE=4000 DUR=20 bench/queue-latency.sh
#   ARGS=--file NATS_GOMAXPROCS=2 bench/queue-latency.sh   # jobs on disk; Go's default threads
#   ARGS=--unreplicated-consumers bench/queue-latency.sh   # single-replica consumers (ADR 0009)
#   ARGS=--limits-retention bench/queue-latency.sh         # acked jobs kept, not deleted (ADR 0009)
#   ARGS="--replicas 1" bench/queue-latency.sh              # no replication at all: JetStream's floor
#   QUEUE_ONLY=1 bench/queue-latency.sh    # the three servers alone: no API node, worker,
#                                          # aggregator or their background traffic
#
# Loopback only, bounded; the cluster is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-2000}
DUR=${DUR:-10}
CONSUMERS=${CONSUMERS:-16}
export RESIZER_CLUSTER_DIR=${RESIZER_CLUSTER_DIR:-/tmp/resizer-queue-bench}
export RESIZER_CLUSTER_PORT_BASE=${RESIZER_CLUSTER_PORT_BASE:-26500}
trap 'deploy/cluster.sh down >/dev/null 2>&1 || true' EXIT
if [ "${QUEUE_ONLY:-0}" = 1 ]; then
    cargo build -q --release --locked -p resizer-bench >&2
    scripts/setup.sh >&2
    deploy/cluster.sh up-queue >/dev/null
else
    cargo build -q --release --locked -p resizer -p resizer-bench >&2
    export RESIZER_BIN=$PWD/target/release/resizer
    deploy/cluster.sh up >/dev/null
    deploy/cluster.sh stop worker-1
    deploy/cluster.sh stop worker-2
fi
D=$RESIZER_CLUSTER_DIR
servers=""
for n in 1 2 3; do servers+="nats://$(deploy/cluster.sh addr nats-$n):$((RESIZER_CLUSTER_PORT_BASE + n)),"; done
ticks() {
    local t=0 n
    for n in 1 2 3; do t=$((t + $(awk '{print $14 + $15}' "/proc/$(cat "$D/nats-$n.pid")/stat"))); done
    echo $t
}
c0=$(ticks)
QUEUE_BENCH_PUBLISHER="api:$(cat "$D/nats-api")" QUEUE_BENCH_CONSUMER="worker:$(cat "$D/nats-worker")" \
    target/release/queue-latency --servers "${servers%,}" --rate "$RATE" --duration "$DUR" --consumers "$CONSUMERS" ${ARGS:-}
c1=$(ticks)
# Warm-up (1 s) and drain (2 s) included: CPU over every job sent.
python3 -c "print(f'nats-server × 3: {($c1 - $c0) / $(getconf CLK_TCK) * 1000 / ($RATE * ($DUR + 1)):.3f} CPU ms per job')"
