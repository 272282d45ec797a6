#!/usr/bin/env bash
# Delivery by URL under load: one `resizer serve` on loopback, wrk with CONC connections
# (default 16), DUR seconds (default 10) per path, in one run:
#   hit   a signed variant URL already in the variant cache
#   304   the same URL with If-None-Match (the original's metadata only)
#   miss  GET /v1/img with a new variant each request (width × quality never repeat)
#   post  POST /v1/resize of the same original with the same parameter stream
# Prints successful answers/s, all answers/s (refusals under overload included), p50/p99
# (wrk --latency, all answers) and the server's CPU per answer (from /proc/PID/stat), and the
# ratios of successful answers hit/post, 304/post, miss/post. CONC_MISS (default 4) connections
# for the miss and POST runs: enough to keep both cores resizing without overload refusals.
#
#   bench/delivery.sh            # needs wrk (Debian: apt-get install wrk)
#   RESIZER_BIN=path/to/release/resizer DUR=10 CONC=16 bench/delivery.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${RESIZER_SHARED:-$PWD/../shared}
PHOTO=${PHOTO:-$SHARED/bench/imaging/corpus/jpeg-256k/a01_BytheWater.jpg}
DUR=${DUR:-10}
CONC=${CONC:-16}
PORT=${PORT:-18480}
TOKEN=delivery-admin-token-0123456789
command -v wrk >/dev/null || { echo "bench/delivery.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
# RESIZER_BIN: a release binary already built (else this tree's is built).
if [ -z "${RESIZER_BIN:-}" ]; then
    cargo build -q --release --locked -p resizer >&2
    RESIZER_BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/resizer
fi
BIN=$RESIZER_BIN
work=$(mktemp -d /tmp/resizer-delivery.XXXX)
RESIZER_ADMIN_TOKEN=$TOKEN RESIZER_LOG=warn RESIZER_API__MAX_IN_FLIGHT_PER_TENANT=256 \
    "$BIN" serve --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$((PORT + 1)) --data-dir "$work/data" \
    >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
admin() { curl -sf -X POST -H "Authorization: Bearer $TOKEN" "$@"; }
tenant=$(admin -d '{"name":"bench","rate_limit_rps":1000000}' http://127.0.0.1:$((PORT + 1))/admin/v1/tenants | json id)
key=$(admin http://127.0.0.1:$((PORT + 1))/admin/v1/tenants/$tenant/keys | json secret)
secret=$(admin http://127.0.0.1:$((PORT + 1))/admin/v1/tenants/$tenant/signing-keys | json secret)
curl -sf -X PUT -H "Authorization: Bearer $key" --data-binary @"$PHOTO" \
    http://127.0.0.1:$PORT/v1/originals/bench/photo.jpg >/dev/null
url=$(RESIZER_SIGNING_SECRET=$secret "$BIN" sign --base-url http://127.0.0.1:$PORT --tenant "$tenant" \
    --name bench/photo.jpg width=320 format=webp)
etag=$(curl -sf -D - -o /dev/null "$url" | tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')

# Each request a variant never asked for before: widths 64..447 × qualities 40..99 (thumbnails).
cat >"$work/unique.lua" <<LUA
-- Each wrk thread walks its own share of (width, quality): no request repeats another.
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local n = 0
local body = nil
local path = os.getenv("BENCH_PATH")
local f = os.getenv("BENCH_BODY")
if f ~= nil then local h = io.open(f, "rb"); body = h:read("*all"); h:close() end
request = function()
  n = n + 1
  local k = n * 2 + (tid or 0)
  local q = string.format("width=%d&quality=%d&format=webp", 64 + (k % 384), 40 + math.floor(k / 384) % 60)
  local method = "GET"
  if body ~= nil then method = "POST" end
  return wrk.format(method, path .. "?" .. q, {["Authorization"] = "Bearer $key"}, body)
end
LUA
cpu_ticks() { awk '{print $14 + $15}' /proc/$server/stat; }
results=()
run() {
    local label=$1; shift
    local before after out rps p50 p99 ms_cpu
    before=$(cpu_ticks)
    out=$(wrk -t2 -c"$CONC" -d"${DUR}s" --latency "$@")
    after=$(cpu_ticks)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    ok=$(python3 -c "print(f'{($total - ${non2xx:-0}) / $DUR:.1f}')")
    ms_cpu=$(python3 -c "print(f'{($after - $before) * 1000 / $(getconf CLK_TCK) / ($rps * $DUR):.3f}')")
    results+=("$label $ok")
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$ok" "$rps" "$p50" "$p99" "$ms_cpu" "${non2xx:-0}"
}
echo "resizer serve, wrk -t2 -c$CONC -d${DUR}s on $(nproc) cores ($(date -u +%F)), original $(basename "$PHOTO") $(stat -c %s "$PHOTO") bytes"
echo "| path | 2xx/3xx per s | answers/s | p50 | p99 | server CPU ms / answer | refused (non-2xx/3xx) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run "hit (signed, cached)" "$url"
run "304 (If-None-Match)" -H "If-None-Match: $etag" "$url"
CONC=${CONC_MISS:-4} BENCH_PATH=/v1/img/$tenant/bench/photo.jpg run "miss (GET /v1/img, new variant each)" -s "$work/unique.lua" http://127.0.0.1:$PORT
CONC=${CONC_MISS:-4} BENCH_PATH=/v1/resize BENCH_BODY=$PHOTO run "POST /v1/resize (same stream)" -s "$work/unique.lua" http://127.0.0.1:$PORT
python3 - "${results[@]}" <<'PY'
import sys
r = {}
for item in sys.argv[1:]:
    label, rps = item.rsplit(" ", 1)
    r[label.split(" ")[0]] = float(rps)
post = r["POST"]
print(f"ratios of successful answers to POST /v1/resize's: hit {r['hit'] / post:.1f}x, 304 {r['304'] / post:.1f}x, miss {r['miss'] / post:.2f}x")
PY
