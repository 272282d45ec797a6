#!/usr/bin/env bash
# The variant caches of two API nodes behind HAProxy, under a Zipf workload of signed variant
# URLs: HAProxy's consistent hash on the path (what deploy/cluster.sh runs) against round robin,
# in the same run, with the same originals, variants and request sequence (fixed seed).
# Each mode: deploy/cluster.sh up (VARIANT_BALANCE=uri, then roundrobin), ORIGINALS (200) small
# JPEGs made from the 256 KB corpus, WIDTHS (50) widths each = 10,000 variants, WARMUP (10,000)
# requests, then REQUESTS (20,000) measured from THREADS (16) client threads; every node's
# variant cache is CACHE_BYTES (default 4 MiB). Prints one JSON line per mode (hit ratio from
# the nodes' resizer_variant_cache_requests_total, statuses, p50/p99) and the ratio.
#
#   RESIZER_BIN=target/release/resizer bench/delivery-cluster.sh
#   CACHE_BYTES=8388608 ZIPF_S=0.9 bench/delivery-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RESIZER_SHARED:-$ROOT/../shared}
export CORPUS=${CORPUS:-$SHARED/bench/imaging/corpus/jpeg-256k}
export RESIZER_CLUSTER_DIR=${RESIZER_CLUSTER_DIR:-$(mktemp -d /tmp/resizer-delivery-cluster.XXXX)}
export RESIZER_CLUSTER_PORT_BASE=${RESIZER_CLUSTER_PORT_BASE:-18600}
export RESIZER_DELIVERY__CACHE_BYTES=${CACHE_BYTES:-4194304}
# Both modes pay the same per-tenant bounds: none that this load reaches.
export RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=1000 RESIZER_LOG=${RESIZER_LOG:-warn}
if [ -z "${RESIZER_BIN:-}" ]; then
    cargo build -q --release --locked -p resizer >&2
    RESIZER_BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/resizer
fi
export RESIZER_BIN
trap 'deploy/cluster.sh down >/dev/null 2>&1 || true' EXIT
results=()
for mode in uri roundrobin; do
    out=$(VARIANT_BALANCE=$mode deploy/cluster.sh up)
    field() { awk -F= -v k="$1" '$1==k {print substr($0, length(k) + 2)}' <<<"$out"; }
    nodes=""
    for n in 1 2; do
        nodes="$nodes${nodes:+,}http://$(deploy/cluster.sh addr api-$n):$((RESIZER_CLUSTER_PORT_BASE + 50 + n))"
    done
    line=$(PUBLIC_URL=$(field public_url) ADMIN_URL=$(field admin_url) ADMIN_TOKEN=$(field admin_token) \
        API_NODES=$nodes CLUSTER_SECRET=$(cat "$RESIZER_CLUSTER_DIR/cluster-secret") VARIANT_BALANCE=$mode \
        python3 bench/delivery_cluster.py)
    echo "$line"
    results+=("$line")
    deploy/cluster.sh down >/dev/null
done
python3 - "${results[@]}" <<'PY'
import json, sys
uri, rr = (json.loads(a) for a in sys.argv[1:3])
print(f"cache per node {int(__import__('os').environ['RESIZER_DELIVERY__CACHE_BYTES']) / uri['working_set_bytes']:.1%} of the working set; "
      f"hit ratio: consistent hash {uri['hit_ratio']:.1%}, round robin {rr['hit_ratio']:.1%} "
      f"({(uri['hit_ratio'] - rr['hit_ratio']) * 100:+.1f} points); misses {uri['misses']:.0f} vs {rr['misses']:.0f} "
      f"({rr['misses'] / max(uri['misses'], 1):.2f}x the imaging with round robin)")
PY
