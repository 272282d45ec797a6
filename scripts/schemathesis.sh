#!/usr/bin/env bash
# Property-based attack on the HTTP API from its own OpenAPI documents:
# Schemathesis (installed by scripts/setup.sh) against a fresh `resizer serve`
# on loopback. The admin port with the admin token (its links: create a tenant
# -> issue a key -> revoke it), then the public port with a tenant key the hooks
# create through the admin API (scripts/schemathesis_hooks.py).
#
# Checks: all of Schemathesis's but `positive_data_acceptance`: the rules JSON
# Schema cannot state (a usage slice of at most 400 days, printable tenant
# names) are refused with the contract's 400, which the other checks verify
# (no 5xx, every status and body as documented, auth enforced, bad data refused).
#
#   scripts/schemathesis.sh [EXAMPLES_PER_OPERATION]   default 25; seed $RESIZER_ST_SEED (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$(scripts/tools-dir.sh)
ST="$TOOLS/venv/bin/st"
examples=${1:-25}
seed=${RESIZER_ST_SEED:-1}
cargo build -q --locked -p resizer
bin="${CARGO_TARGET_DIR:-target}/debug/resizer"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
public=127.0.0.1:$(free_port)
admin=127.0.0.1:$(free_port)
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
data=$(mktemp -d)
log="$data/serve.log"
# The brute-force throttle would answer Schemathesis's wrong-token probes with
# 429 (documented, and tested on its own): lifted here so each probe meets auth.
RESIZER_ADMIN_TOKEN=$token RESIZER_HTTP__WRONG_TOKEN_BURST=1000000 RESIZER_LOG=warn \
    "$bin" serve --data-dir "$data/data" --listen "$public" --admin-listen "$admin" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://$public/healthz" >/dev/null && break; sleep 0.1; done

# The documents themselves first: valid OpenAPI 3.1, each on its own port.
for doc in "http://$admin/openapi.json" "http://$public/openapi.json" "http://$admin/openapi/public.json"; do
    curl -sf "$doc" -o "$data/doc.json"
    "$TOOLS/venv/bin/openapi-spec-validator" "$data/doc.json" >/dev/null || {
        echo "schemathesis: $doc is not a valid OpenAPI document" >&2
        exit 1
    }
done
echo "schemathesis: both ports' documents are valid OpenAPI 3.1" >&2

common=(--checks all --exclude-checks positive_data_acceptance -n "$examples" --seed "$seed"
    --request-timeout 30 --max-failures 20 --warnings off)
status=0
echo "schemathesis: admin port" >&2
"$ST" run "http://$admin/openapi.json" -H "Authorization: Bearer $token" "${common[@]}" || status=1
echo "schemathesis: public port" >&2
RESIZER_ADMIN_URL="http://$admin" RESIZER_ADMIN_TOKEN=$token SCHEMATHESIS_HOOKS=schemathesis_hooks \
    PYTHONPATH=scripts "$ST" run "http://$public/openapi.json" "${common[@]}" ${RESIZER_ST_REPORT:+--report har --report-dir "$RESIZER_ST_REPORT"} || status=1
if grep -q 'panicked' "$log"; then
    echo "schemathesis: the server panicked:" >&2
    grep -A5 'panicked' "$log" >&2
    status=1
fi
exit $status
