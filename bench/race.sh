#!/usr/bin/env bash
# The race: Resizer (embedded `serve`) against the peers users would otherwise
# pick — a minimal sharp server (libvips 8.18, npm) and thumbor (PyPI) — on the
# same machine, corpus and task: fit within 320x320, JPEG q80, the 20 "256 KB"
# corpus JPEGs. One load generator (resizer-bench) drives them all. Resizer runs
# twice: at its default (Pillow-SIMD's quality) and as `resizer-fast`, at the
# shrink-on-load both peers use by default (their quality: sharp's fastShrinkOnLoad
# and thumbor's Image.draft() both decode at the smallest DCT scale covering the
# output; SSIM 0.9710 for all three, docs/benchmarks.md).
#
#   bench/race.sh            # installs peers under $RACE_DIR (default /tmp/resizer-race), runs, stops everything
#   DUR=10 bench/race.sh     # seconds per measurement (default 8)
#   PEERS="resizer" bench/race.sh   # a subset of the contestants
#
# Loopback only, bounded in time (about 15 minutes), every server stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RESIZER_SHARED:-$ROOT/../shared}
CORPUS=$SHARED/bench/imaging/corpus/jpeg-256k
RACE=${RACE_DIR:-/tmp/resizer-race}
DUR=${DUR:-8}
mkdir -p "$RACE"

echo "== setup (idempotent)" >&2
scripts/setup.sh
[ -x "$RACE/venv/bin/thumbor" ] || { python3 -m venv "$RACE/venv" && "$RACE/venv/bin/pip" install -q thumbor==7.8.0; }
[ -d "$RACE/sharp/node_modules/sharp" ] || { mkdir -p "$RACE/sharp" && (cd "$RACE/sharp" && npm install --no-audit --no-fund --silent sharp@0.35.5 >/dev/null); }
cargo build --release --locked -p resizer -p resizer-bench >&2
BENCH=$ROOT/target/release/resizer-bench

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_http() { for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }

echo "== start the three servers" >&2
# Joining identical requests is switched off: the corpus repeats every 20 requests, and the
# peers cannot join, so joined requests would flatter Resizer.
start_resizer() { # name, public port, admin port, extra env...
  local name=$1 port=$2 admin=$3; shift 3
  local data; data=$(mktemp -d "$RACE/data.XXXX")
  env "$@" RESIZER_ADMIN_TOKEN=race-admin-token-0123 RESIZER_LOG=warn RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=256 RESIZER_API__JOIN_IDENTICAL=false \
    "$ROOT/target/release/resizer" serve --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$admin --data-dir "$data" \
    >"$RACE/$name.log" 2>&1 & PIDS+=($!)
}
start_resizer resizer 18080 18081
# The same at the peers' shrink-on-load (sharp and thumbor decode 1600 px photos at 1/4 for
# a 320 px output by default; Resizer's default keeps Pillow-SIMD's quality): their quality.
start_resizer resizer-fast 18082 18083 RESIZER_WORKER__SHRINK_ON_LOAD=fast
(cd "$RACE/sharp" && PORT=18090 NODE_PATH="$RACE/sharp/node_modules" exec node "$SHARED/bench/peers/sharp-server/server.js" >"$RACE/sharp.log" 2>&1) & PIDS+=($!)
{ cat "$SHARED/bench/peers/thumbor.conf"; echo "ENGINE_THREADPOOL_SIZE = 4"; echo "FILE_LOADER_ROOT_PATH = '$CORPUS'"; } >"$RACE/thumbor.conf"
"$RACE/venv/bin/thumbor" -i 127.0.0.1 -p 18888 -c "$RACE/thumbor.conf" -l error --processes 1 >"$RACE/thumbor.log" 2>&1 & PIDS+=($!)
new_key() { # admin port -> the key of a fresh tenant
  wait_http "http://127.0.0.1:$(( $1 - 1 ))/healthz"
  local tenant
  tenant=$(curl -sf -X POST -H 'Authorization: Bearer race-admin-token-0123' -d '{"name":"race","rate_limit_rps":1000000}' \
    "http://127.0.0.1:$1/admin/v1/tenants" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sf -X POST -H 'Authorization: Bearer race-admin-token-0123' \
    "http://127.0.0.1:$1/admin/v1/tenants/$tenant/keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'
}
KEY=$(new_key 18081)
KEY_FAST=$(new_key 18083)
FIRST=$(ls "$CORPUS" | head -n1)
for _ in $(seq 1 100); do curl -sf -o /dev/null --data-binary @"$CORPUS/$FIRST" http://127.0.0.1:18090/ && break; sleep 0.2; done
wait_http "http://127.0.0.1:18888/unsafe/fit-in/320x320/filters:quality(80)/$FIRST"

declare -A TARGET=(
  [resizer]="--key $KEY --url http://127.0.0.1:18080/v1/resize?width=320&height=320&quality=80&format=jpeg"
  [resizer-fast]="--key $KEY_FAST --url http://127.0.0.1:18082/v1/resize?width=320&height=320&quality=80&format=jpeg"
  [sharp]="--url http://127.0.0.1:18090/"
  [thumbor]="--get-template http://127.0.0.1:18888/unsafe/fit-in/320x320/filters:quality(80)/{file}"
)
OUT=$RACE/results.jsonl; : >"$OUT"
run() { # peer, label, args...
  local peer=$1 label=$2; shift 2
  echo "== $peer: $label" >&2
  # shellcheck disable=SC2086
  "$BENCH" ${TARGET[$peer]} --json "$@" "$CORPUS" | while read -r line; do
    case $line in
      "{"*) echo "{\"peer\":\"$peer\",\"label\":\"$label\",\"r\":$line}" | tee -a "$OUT" >&2 ;;
      *) echo "$peer $label: $line" | tee -a "$RACE/summary.txt" >&2 ;;
    esac
  done
}
for peer in ${PEERS:-resizer resizer-fast sharp thumbor}; do
  run "$peer" c16 --concurrency 16 --duration "$DUR" --warmup 3  # the first run on a fresh server: warm up longer
  run "$peer" rate200 --rate 200 --duration "$DUR"
  run "$peer" sweep --sweep --start 150 --step 50 --refine 3 --max 1500 --duration "$DUR" --warmup 1 --p99-bound-ms 500
done
# Overload: twice Resizer's sustained rate; excess must be refused quickly with 503.
BEST=$(python3 - "$OUT" <<'PY'
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
ok=[r["r"] for r in rows if r["peer"]=="resizer" and r["label"]=="sweep" and r["r"].get("p99_ms",1e9)<=500 and sum(v for k,v in r["r"]["statuses"].items() if not k.startswith("2"))<=0.01*max(1,sum(r["r"]["statuses"].values()))]
print(int(max(r["offered_rate"] for r in ok)) if ok else 100)
PY
)
run resizer overload2x --rate $((BEST * 2)) --duration "$DUR"

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pick(peer, label): return [r["r"] for r in rows if r["peer"] == peer and r["label"] == label]
def good(r): 
    total = sum(r["statuses"].values()) or 1
    bad = sum(v for k, v in r["statuses"].items() if not k.startswith("2"))
    return r["p99_ms"] <= 500 and bad <= 0.01 * total
print("\n== results (fit 320x320, JPEG q80, 20 corpus JPEGs of ~256 KB, whole machine)")
print(f"{'peer':12} {'best ok/s (p99<500ms)':>22} {'c16 ok/s':>9} {'c16 p99 ms':>10} {'@200/s p50':>10} {'p99':>7} {'p99.9':>7}")
best = {}
for peer in [p for p in ["resizer", "resizer-fast", "sharp", "thumbor"] if pick(p, "c16")]:
    sweep = [r for r in pick(peer, "sweep") if good(r)]
    best[peer] = max((r["ok_per_s"] for r in sweep), default=0.0)
    c16 = pick(peer, "c16")[0]; r200 = pick(peer, "rate200")[0]
    best[peer + "_c16p99"] = c16["p99_ms"]
    print(f"{peer:12} {best[peer]:22.1f} {c16['ok_per_s']:9.1f} {c16['p99_ms']:10.1f} {r200['p50_ms']:10.1f} {r200['p99_ms']:7.1f} {r200['p999_ms']:7.1f}")
for ours in [p for p in ["resizer", "resizer-fast"] if best.get(p)]:
    for peer in ["sharp", "thumbor"]:
        if best.get(peer):
            print(f"{ours} / {peer}: throughput {best[ours]/best[peer]:.2f}x, c16 p99 {best[ours + '_c16p99']:.1f} vs {best[peer + '_c16p99']:.1f} ms")
o = pick("resizer", "overload2x")
if o:
    o = o[0]
    print(f"overload at {o['offered_rate']:.0f} req/s (2x sustained): goodput {o['ok_per_s']:.1f} ok/s "
          f"({o['ok_per_s']/max(best['resizer'],1e-9)*100:.0f} % of peak), statuses {o['statuses']}, "
          f"p99 of refusals {o['refused_p99_ms']:.1f} ms")
PY
