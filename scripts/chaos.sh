#!/usr/bin/env bash
# The chaos suite (crates/resizer/tests/chaos; docs/reliability.md) on a real
# cluster on loopback, every component on its own address and in its own cgroup:
#   scripts/chaos.sh ci           # the short schedule CI runs (≤ 4 minutes; also in `cargo test`)
#   scripts/chaos.sh full         # every fault once (~20 minutes)
#   scripts/chaos.sh soak [SEED]  # random faults for RESIZER_CHAOS_SOAK_SECS (3600), seeded:
#                                 # the seed is printed, and passing it replays the schedule
# Needs root (nftables rules, cgroups, tmpfs mounts); scripts/setup.sh installs the rest.
# The report table goes to RESIZER_CHAOS_REPORT (default target/chaos-<schedule>.md).
# However the run ends (Ctrl-C included), the cluster is stopped and its nftables
# table deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-ci}
case "$which" in ci | full | soak) ;; *) sed -n '2,11p' "$0" >&2; exit 2 ;; esac
scripts/setup.sh
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export RESIZER_CHAOS_SCHEDULE=$which
# RESIZER_CHAOS_PORT_BASE (default 25000) lets two runs share the machine.
export RESIZER_CHAOS_PORT_BASE=${RESIZER_CHAOS_PORT_BASE:-25000}
export RESIZER_CHAOS_DIR=$target/chaos-cluster-$RESIZER_CHAOS_PORT_BASE
export RESIZER_CHAOS_REPORT=${RESIZER_CHAOS_REPORT:-$target/chaos-$which.md}
if [ "$which" = soak ] && [ -n "${2:-}" ]; then export RESIZER_CHAOS_SEED=$2; fi
# The test's own cleanup does not run when it is interrupted; this does.
trap 'RESIZER_CLUSTER_DIR=$RESIZER_CHAOS_DIR RESIZER_CLUSTER_PORT_BASE=$RESIZER_CHAOS_PORT_BASE deploy/cluster.sh down' EXIT
cargo test --locked -p resizer --test chaos -- --nocapture
echo "chaos: report in $RESIZER_CHAOS_REPORT"
