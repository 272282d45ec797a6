#!/usr/bin/env bash
# The distributed mode on one machine, loopback only:
#   3 × nats-server (JetStream cluster), PostgreSQL, `resizer identity`,
#   2 × `resizer api` behind HAProxy (health-checked on /readyz), 2 × `resizer worker`,
#   `aggregator` and its standby `aggregator-2` (one active, by a lease), and Garage
#   (S3-compatible) holding the usage archive, which the aggregators write and
#   identity and the API nodes read.
#
#   deploy/cluster.sh up              # start everything; prints public_url=, admin_url=, admin_token=
#   deploy/cluster.sh down            # stop exactly what `up` started
#   deploy/cluster.sh up-queue        # the three nats-servers alone (bench/queue-latency.sh)
#   deploy/cluster.sh status          # components, pids, alive or not
#   deploy/cluster.sh kill NAME       # kill -9 one component (nats-1..3, api-1..2, worker-1..2, identity, aggregator, aggregator-2, haproxy, postgres, garage)
#   deploy/cluster.sh pause NAME      # SIGSTOP (a GC-pause-like stall)
#   deploy/cluster.sh resume NAME     # SIGCONT
#   deploy/cluster.sh start NAME      # (re)start one component, e.g. after `kill`
#   deploy/cluster.sh stop NAME       # SIGTERM (drain) and wait, or a fast shutdown for postgres
#   deploy/cluster.sh restart NAME    # SIGTERM (drain), then start again
#   deploy/cluster.sh addr NAME       # the component's own loopback address (127.0.0.11 upwards)
#
# Faults a process cannot see (root, nftables, cgroup v2; docs/reliability.md):
#   deploy/cluster.sh net cut "A B" "C D|rest"  # no packet between the two groups, both ways
#   deploy/cluster.sh net drop A B              # packets from A to B are lost, B to A pass
#   deploy/cluster.sh net heal                  # remove every network fault
#   deploy/cluster.sh net show
#   deploy/cluster.sh disk fill|free NAME       # fill / empty the size-limited filesystem under
#                                               # an API node's data (usage log) or a NATS store
#   deploy/cluster.sh skew NAME SECONDS         # jump an API node's or aggregator's wall clock
#                                               # (libfaketime; 0 to undo); monotonic time is kept
#
# Settings (environment): RESIZER_CLUSTER_DIR (state, default /tmp/resizer-cluster),
# RESIZER_CLUSTER_PORT_BASE (default 18000: public URL on base+80), RESIZER_BIN (default:
# builds target/release/resizer), WORKER_THREADS (imaging threads per worker, default 1),
# RESIZER_CLUSTER_DISK_MB (size of each API node's and NATS server's data filesystem when
# run as root, default 256), NATS_GOMAXPROCS (scheduler threads per nats-server,
# default a third of the cores, at least 1), NATS_ROUTE_POOL (the servers' route `pool_size`;
# unset: NATS's default; a measurement knob, docs/benchmarks.md), NATS_SYS_PASSWORD (adds a `sys` user to the
# servers' system account; unset by default), STORAGE_SAMPLE_MS (how often the aggregators
# sample stored originals into the usage roll-ups, default 300000), VARIANT_BALANCE (uri, the
# default: variant URLs on a consistent-hash ring; roundrobin, for comparison),
# SINGLE_REPLICA_CONSUMERS (true: the job streams' consumers have one replica and the
# workers replace a failed one, ADR 0009; default false: Raft-replicated consumers).
set -euo pipefail
# Secrets, logs and data of the cluster are the operator's alone: files 0600, directories 0700.
umask 077
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${RESIZER_CLUSTER_DIR:-/tmp/resizer-cluster}
BASE=${RESIZER_CLUSTER_PORT_BASE:-18000}
WORKER_THREADS=${WORKER_THREADS:-1}
SINGLE_REPLICA_CONSUMERS=${SINGLE_REPLICA_CONSUMERS:-false}
NATS_SERVER=${NATS_SERVER:-$("$ROOT/scripts/tools-dir.sh")/venv/bin/nats-server}
COMPONENTS="postgres garage nats-1 nats-2 nats-3 identity api-1 api-2 worker-1 worker-2 aggregator aggregator-2 haproxy"
DISK_MB=${RESIZER_CLUSTER_DISK_MB:-256}
NATS_GOMAXPROCS=${NATS_GOMAXPROCS:-$((($(nproc) + 2) / 3))}

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# One loopback address per component, in COMPONENTS order from 127.0.0.11: network
# faults can then be aimed at pairs of components as if they were hosts.
index_of() {
    local i=0 c
    for c in $COMPONENTS; do
        i=$((i + 1))
        [ "$c" = "$1" ] && { echo "$i"; return 0; }
    done
    die "unknown component $1 (one of: $COMPONENTS)"
}
addr() { echo "127.0.0.$((10 + $(index_of "$1")))"; }

nats_port() { echo $((BASE + $1)); }          # client ports base+1..3
route_port() { echo $((BASE + 10 + $1)); }    # cluster routes base+11..13
mon_port() { echo $((BASE + 20 + $1)); }      # monitoring base+21..23
PG_PORT=$((BASE + 30))
IDENTITY_PORT=$((BASE + 40))
api_port() { echo $((BASE + 50 + $1)); }      # public base+51..52
internal_port() { echo $((BASE + 60 + $1)); } # internal base+61..62
worker_port() { echo $((BASE + 70 + $1)); }   # metrics base+71..72
aggregator_port() { echo $((BASE + 75 + $1)); } # metrics base+76..77
PUBLIC_PORT=$((BASE + 80))
STATS_PORT=$((BASE + 81))
GARAGE_S3_PORT=$((BASE + 90))
GARAGE_RPC_PORT=$((BASE + 91))
NATS_URLS="nats://$(addr nats-1):$(nats_port 1),nats://$(addr nats-2):$(nats_port 2),nats://$(addr nats-3):$(nats_port 3)"
pid_of() { cat "$DIR/$1.pid" 2>/dev/null || true; }
# The operator console's fleet view (on the identity service): every resizer
# process of the cluster, by the listener that serves its /metrics.
fleet_list() {
    echo "api-1=http://$(addr api-1):$(api_port 1),api-2=http://$(addr api-2):$(api_port 2),\
worker-1=http://$(addr worker-1):$(worker_port 1),worker-2=http://$(addr worker-2):$(worker_port 2),\
aggregator=http://$(addr aggregator):$(aggregator_port 1),aggregator-2=http://$(addr aggregator-2):$(aggregator_port 2)"
}
s3_field() { sed -n "s/^$1=//p" "$DIR/garage.env"; }   # from garage.sh's output
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# Waits until a URL answers 200, or fails after $2 seconds.
wait_http() {
    local url=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 10; i++)); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "timed out waiting for $url"
}

# Starts a command in the background as component $1 (in its cgroup), logging to $DIR/$1.log.
launch() {
    local name=$1
    shift
    alive "$name" && { log "$name is already running"; return 0; }
    setsid sh -c "$JOIN_CGROUP" "$(cgroup_procs "$name")" "$@" \
        >>"$DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/$name.pid"
}

# `sh -c` body: join the cgroup whose cgroup.procs is $0 (if any), then exec "$@".
JOIN_CGROUP='if [ -n "$0" ]; then echo $$ >"$0"; fi; exec "$@"'

cgroup_procs() { if faults_on; then echo "$CGROUP2/$CG_NAME/$1/cgroup.procs"; fi; }

# Runs a command inside component $1's cgroup when faults are set up (children
# inherit it: pg_ctl's postmaster, garage.sh's server).
in_cgroup() {
    local procs
    procs=$(cgroup_procs "$1")
    shift
    sh -c "$JOIN_CGROUP" "$procs" "$@"
}

# --- Faults -------------------------------------------------------------------
# The source address of a loopback connection is 127.0.0.1 whoever opens it, so the
# rules tell the connecting component by its cgroup: every component runs in its own
# cgroup v2 group, and the first packet of each connection marks it (conntrack) with
# the opener's id. A rule then drops packets by (opener, listener's address,
# direction): both directions of both openers for a cut, one for a one-way loss.
# Everything lives in one table, created by `up` and deleted by `down`.
TABLE=resizer_chaos_$BASE
CG_NAME=resizer-cluster-$BASE
CGROUP2=""
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGROUP2=/sys/fs/cgroup
elif [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then CGROUP2=/sys/fs/cgroup/unified; fi
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n1 || true)

faults_on() { [ -f "$DIR/faults" ]; }
mark_of() { echo $(((BASE << 8) | $(index_of "$1"))); }

faults_setup() {
    faults_teardown
    if [ "$(id -u)" -ne 0 ] || ! command -v nft >/dev/null 2>&1 || [ -z "$CGROUP2" ]; then
        log "network faults unavailable (need root, nftables and cgroup v2)"
        return 0
    fi
    local c
    for c in $COMPONENTS; do mkdir -p "$CGROUP2/$CG_NAME/$c"; done
    # nft resolves cgroup paths under /sys/fs/cgroup; a hybrid host mounts v2 below it.
    [ "$CGROUP2" = /sys/fs/cgroup ] || ln -sfn "$CGROUP2/$CG_NAME" "/sys/fs/cgroup/$CG_NAME"
    {
        echo "table inet $TABLE {"
        echo "  set cut_original { type mark . ipv4_addr; }"
        echo "  set cut_reply { type mark . ipv4_addr; }"
        echo "  chain output { type filter hook output priority 0; policy accept;"
        for c in $COMPONENTS; do
            echo "    ct state new socket cgroupv2 level 2 \"$CG_NAME/$c\" ct mark set $(mark_of "$c")"
        done
        echo "    ct direction original ct mark . ct original ip daddr @cut_original counter drop"
        echo "    ct direction reply ct mark . ct original ip daddr @cut_reply counter drop"
        echo "  }"
        echo "}"
    } | nft -f -
    touch "$DIR/faults"
}

faults_teardown() {
    command -v nft >/dev/null 2>&1 && nft delete table inet "$TABLE" 2>/dev/null || true
    [ -L "/sys/fs/cgroup/$CG_NAME" ] && rm -f "/sys/fs/cgroup/$CG_NAME"
    if [ -n "$CGROUP2" ] && [ -d "$CGROUP2/$CG_NAME" ]; then
        rmdir "$CGROUP2/$CG_NAME"/* "$CGROUP2/$CG_NAME" 2>/dev/null || true
    fi
    rm -f "$DIR/faults"
}

# Expands a group ("a b", "a,b" or "rest" = every component not in $2).
members() {
    local c out=""
    if [ "$1" = rest ]; then
        for c in $COMPONENTS; do [[ " ${2//,/ } " == *" $c "* ]] || out+="$c "; done
    else
        for c in ${1//,/ }; do index_of "$c" >/dev/null; out+="$c "; done
    fi
    echo "$out"
}

# Packets sent by $1 to $2 are dropped: in $1's connections to $2, and in the
# answers $1 sends on $2's connections to it.
drop_one_way() {
    nft add element inet "$TABLE" cut_original "{ $(mark_of "$1") . $(addr "$2") }"
    nft add element inet "$TABLE" cut_reply "{ $(mark_of "$2") . $(addr "$1") }"
}

net() {
    faults_on || die "network faults are not set up (see cluster.log: need root, nftables, cgroup v2)"
    local a b
    case "${1:-}" in
    cut)
        for a in $(members "${2:?group}" ""); do
            for b in $(members "${3:?group|rest}" "$2"); do
                drop_one_way "$a" "$b"
                drop_one_way "$b" "$a"
            done
        done
        ;;
    drop) drop_one_way "${2:?from}" "${3:?to}" ;;
    heal) nft flush set inet "$TABLE" cut_original && nft flush set inet "$TABLE" cut_reply ;;
    show) nft list table inet "$TABLE" ;;
    *) die "net cut|drop|heal|show" ;;
    esac
}

# A size-limited filesystem under a component's data (root only), so a full disk
# can be made and undone without touching the machine's.
data_mount() {
    local dir=$1
    mkdir -p "$dir"
    faults_on || return 0
    mountpoint -q "$dir" || mount -t tmpfs -o "size=${DISK_MB}m,mode=0700" tmpfs "$dir"
}

disk() {
    local dir="$DIR/${2:?name}"
    mountpoint -q "$dir" || die "$2 has no size-limited filesystem (API nodes and NATS servers, as root)"
    case "${1:-}" in
    fill)
        # Whatever is left, then the last blocks, until the filesystem refuses.
        fallocate -l "$(df --output=avail -B1 "$dir" | tail -n1)" "$dir/.ballast" 2>/dev/null || true
        dd if=/dev/zero of="$dir/.ballast-tail" bs=4k status=none 2>/dev/null || true
        ;;
    free) rm -f "$dir/.ballast" "$dir/.ballast-tail" ;;
    *) die "disk fill|free NAME" ;;
    esac
}

# Wall-clock offsets for the roles that stamp time (API nodes, aggregators):
# libfaketime re-reads the file every second, so `skew` jumps a live process.
faketime_env() {
    [ -n "$FAKETIME_LIB" ] || return 0
    [ -f "$DIR/$1.faketime" ] || echo "+0" >"$DIR/$1.faketime"
    echo LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$DIR/$1.faketime" \
        FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME_DONT_RESET=1
}

skew() {
    local name=${1:?name} secs=${2:?seconds}
    [ -f "$DIR/$name.faketime" ] || die "$name runs without libfaketime (API nodes and aggregators)"
    case "$secs" in -*) ;; *) secs="+$secs" ;; esac
    echo "$secs" >"$DIR/$name.faketime"
}

resizer_env() {
    # Settings every resizer role shares; none of them is a secret.
    echo RESIZER_QUEUE__NATS_URL="$NATS_URLS" \
        RESIZER_QUEUE__REPLICAS=3 \
        RESIZER_QUEUE__SINGLE_REPLICA_CONSUMERS="$SINGLE_REPLICA_CONSUMERS" \
        RESIZER_IDENTITY__URL="http://$(addr identity):$IDENTITY_PORT" \
        RESIZER_LOG="${RESIZER_LOG:-info}"
}

# PostgreSQL keeps its data across restarts, fsyncs, and wants a password
# (scripts/test-postgres.sh with RESIZER_PG_DURABLE=1).
pg_url() {
    echo "postgres://resizer:$(cat "$DIR/pg/password")@$(addr postgres):$PG_PORT/postgres"
}

# A generated secret of the cluster (0600 by the umask), created on first use.
secret() {
    [ -s "$DIR/$1" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/$1"
    cat "$DIR/$1"
}

# NATS users, one per role, each denied what its role never does. Nobody may
# subscribe to the raw subjects (job descriptors carry job tokens; pull
# consumers deliver to inboxes), delete or purge streams, or write the lease
# but the aggregators; only API nodes publish jobs and usage; only workers
# take jobs, only aggregators take usage.
nats_authorization() {
    # NATS wildcards match whole tokens only: per-stream subjects are listed.
    local j q='"' jobs_create="" jobs_take=""
    for j in 0 1 2; do
        jobs_create+="$q\$JS.API.STREAM.CREATE.RESIZER_JOBS_$j$q, "
        jobs_take+="$q\$JS.API.CONSUMER.MSG.NEXT.RESIZER_JOBS_$j.>$q, $q\$JS.ACK.RESIZER_JOBS_$j.>$q, "
    done
    local admin_ops='"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.CONSUMER.DELETE.>", "$JS.API.STREAM.MSG.DELETE.>"'
    # With single-replica consumers the workers replace a failed job consumer
    # themselves (ADR 0009): they may delete the job streams' consumers, no other.
    local worker_admin_ops=$admin_ops
    if [ "$SINGLE_REPLICA_CONSUMERS" = true ]; then
        worker_admin_ops='"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.CONSUMER.DELETE.RESIZER_USAGE.>", "$JS.API.CONSUMER.DELETE.KV_RESIZER_LEASES.>", "$JS.API.STREAM.MSG.DELETE.>"'
    fi
    local lease='"$KV.>", "$JS.API.STREAM.CREATE.KV_RESIZER_LEASES"'
    local usage_take='"$JS.API.STREAM.CREATE.RESIZER_USAGE", "$JS.API.CONSUMER.MSG.NEXT.RESIZER_USAGE.>", "$JS.ACK.RESIZER_USAGE.>", "$JS.API.CONSUMER.CREATE.RESIZER_USAGE.>", "$JS.API.CONSUMER.DURABLE.CREATE.RESIZER_USAGE.>"'
    cat <<EOF
authorization {
  users: [
    { user: api, password: "$(secret nats-api)", permissions: {
        publish: { deny: [$admin_ops, $lease, ${jobs_take%, }, "\$JS.API.CONSUMER.MSG.NEXT.RESIZER_USAGE.>"] },
        subscribe: { deny: ["resizer.>", "\$KV.>"] } } }
    { user: worker, password: "$(secret nats-worker)", permissions: {
        publish: { deny: [$worker_admin_ops, $lease, $usage_take, "resizer.>"] },
        subscribe: { deny: ["resizer.>", "\$KV.>"] } } }
    { user: aggregator, password: "$(secret nats-aggregator)", permissions: {
        publish: { deny: [$admin_ops, ${jobs_create}${jobs_take%, }, "resizer.>"] },
        subscribe: { deny: ["resizer.>"] } } }
  ]
}
EOF
}

# Off unless NATS_SYS_PASSWORD is set: a `sys` user in the system account, which sees
# the servers' own traffic (Raft's $NRG.>), for measuring it (bench/cluster-cost.sh TAP=1).
nats_system_account() {
    [ -n "${NATS_SYS_PASSWORD:-}" ] || return 0
    echo "accounts { SYS: { users: [ { user: sys, password: \"$NATS_SYS_PASSWORD\" } ] } }"
    echo "system_account: SYS"
}

nats_env() {
    echo RESIZER_QUEUE__NATS_USER="$1" RESIZER_QUEUE__NATS_PASSWORD="$(secret "nats-$1")"
}

# Least privilege: each role gets only the secrets it uses.
usage_env() {
    # The usage store and archive: read by identity (admin queries) and API nodes
    # (/v1/usage), written by the aggregators. Workers never see them.
    echo RESIZER_USAGE__DATABASE_URL="$(pg_url)" \
        RESIZER_USAGE__ARCHIVE_S3_ENDPOINT="$(s3_field endpoint)" \
        RESIZER_USAGE__ARCHIVE_S3_REGION="$(s3_field region)" \
        RESIZER_USAGE__ARCHIVE_S3_BUCKET="$(s3_field bucket)" \
        RESIZER_USAGE__ARCHIVE_S3_ACCESS_KEY_ID="$(s3_field access_key_id)" \
        RESIZER_USAGE__ARCHIVE_S3_SECRET_ACCESS_KEY="$(s3_field secret_access_key)"
}

cluster_secret_env() {
    # Identity's feed and the API nodes' job tokens; workers prove each job with its
    # own token instead.
    echo RESIZER_CLUSTER_SECRET="$(cat "$DIR/cluster-secret")"
}

start_one() {
    local name=$1 n
    case "$name" in
    postgres)
        in_cgroup postgres env RESIZER_PG_DURABLE=1 RESIZER_TEST_PG_DIR="$DIR/pg" RESIZER_TEST_PG_PORT=$PG_PORT \
            RESIZER_TEST_PG_HOST="$(addr postgres)" "$ROOT/scripts/test-postgres.sh" start >/dev/null
        # pg_ctl daemonizes; its pid lives in postmaster.pid.
        head -n1 "$DIR/pg/data/postmaster.pid" >"$DIR/postgres.pid"
        ;;
    garage)
        in_cgroup garage env GARAGE_HOST="$(addr garage)" \
            "$ROOT/scripts/garage.sh" start "$DIR/garage" "$GARAGE_S3_PORT" "$GARAGE_RPC_PORT" >"$DIR/garage.env"
        cp "$DIR/garage/pid" "$DIR/garage.pid"
        ;;
    nats-*)
        n=${name#nats-}
        data_mount "$DIR/$name"
        cat >"$DIR/$name.conf" <<EOF
server_name: $name
listen: $(addr "$name"):$(nats_port "$n")
http: $(addr "$name"):$(mon_port "$n")
jetstream {
  store_dir: "$DIR/$name"
  # fsync every write before acknowledging it (the default syncs every 2 minutes):
  # a usage record leaves the API node's log once the stream acknowledged it, so an
  # acknowledged write must survive all three servers losing power at once.
  sync_interval: always
  max_memory_store: 256MB
  max_file_store: 2GB
}
$(nats_authorization)
$(nats_system_account)
cluster {
  name: resizer
  listen: $(addr "$name"):$(route_port "$n")${NATS_ROUTE_POOL:+
  pool_size: $NATS_ROUTE_POOL}
  authorization { user: route, password: "$(secret nats-route)" }
  routes: [
    nats-route://route:$(secret nats-route)@$(addr nats-1):$(route_port 1)
    nats-route://route:$(secret nats-route)@$(addr nats-2):$(route_port 2)
    nats-route://route:$(secret nats-route)@$(addr nats-3):$(route_port 3)
  ]
}
EOF
        # Three servers share this machine's cores: each gets its share as Go's
        # scheduler threads, not all of them (ADR 0009: idle Go threads spinning for
        # work cost a third of the servers' CPU here).
        launch "$name" env GOMAXPROCS="$NATS_GOMAXPROCS" "$NATS_SERVER" -c "$DIR/$name.conf"
        ;;
    identity)
        mkdir -p "$DIR/identity"
        launch identity env $(resizer_env) $(usage_env) $(cluster_secret_env) \
            RESIZER_ADMIN_TOKEN="$(cat "$DIR/admin-token")" \
            RESIZER_IDENTITY__DATABASE_URL="$(pg_url)" \
            RESIZER_CONSOLE__FLEET="$(fleet_list)" \
            RESIZER_ADMIN_LISTEN="$(addr identity):$IDENTITY_PORT" RESIZER_DATA_DIR="$DIR/identity" \
            "$RESIZER_BIN" identity
        wait_http "http://$(addr identity):$IDENTITY_PORT/healthz" 30
        ;;
    api-*)
        n=${name#api-}
        data_mount "$DIR/$name"
        launch "$name" env $(resizer_env) $(usage_env) $(cluster_secret_env) $(nats_env api) \
            $(faketime_env "$name") RESIZER_DELIVERY__DATABASE_URL="$(pg_url)" \
            RESIZER_LISTEN="$(addr "$name"):$(api_port "$n")" \
            RESIZER_API__INTERNAL_LISTEN="$(addr "$name"):$(internal_port "$n")" \
            RESIZER_DATA_DIR="$DIR/$name" \
            "$RESIZER_BIN" api
        wait_http "http://$(addr "$name"):$(api_port "$n")/readyz" 60
        ;;
    worker-*)
        n=${name#worker-}
        launch "$name" env $(resizer_env) $(nats_env worker) \
            RESIZER_WORKER__API_NODES="http://$(addr api-1):$(internal_port 1),http://$(addr api-2):$(internal_port 2)" \
            RESIZER_LISTEN="$(addr "$name"):$(worker_port "$n")" \
            RESIZER_NODE__NAME="$name" RESIZER_WORKER__THREADS="$WORKER_THREADS" \
            "$RESIZER_BIN" worker
        wait_http "http://$(addr "$name"):$(worker_port "$n")/healthz" 60
        ;;
    aggregator | aggregator-2)
        n=1
        [ "$name" = aggregator-2 ] && n=2
        mkdir -p "$DIR/$name"
        # Aggregators also sample stored originals (read from the originals index) into the roll-ups.
        launch "$name" env $(resizer_env) $(usage_env) $(nats_env aggregator) \
            $(faketime_env "$name") RESIZER_DELIVERY__DATABASE_URL="$(pg_url)" \
            RESIZER_USAGE__STORAGE_SAMPLE_MS="${STORAGE_SAMPLE_MS:-300000}" \
            RESIZER_LISTEN="$(addr "$name"):$(aggregator_port "$n")" \
            RESIZER_NODE__NAME="$name" \
            RESIZER_DATA_DIR="$DIR/$name" \
            "$RESIZER_BIN" aggregator
        wait_http "http://$(addr "$name"):$(aggregator_port "$n")/healthz" 60
        ;;
    haproxy)
        # HAProxy's own answers keep the contract: JSON errors with a code, marked as
        # the edge's. A node that died mid-answer (502) is a 503 to retry.
        haproxy_error 503 503 "Service Unavailable" dependency_unavailable "no API node could take the request; retry shortly"
        haproxy_error 502 503 "Service Unavailable" dependency_unavailable "the API node went away before answering; retry shortly"
        haproxy_error 504 504 "Gateway Timeout" deadline_exceeded "the API node did not answer in time"
        cat >"$DIR/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    # Also HAProxy's pause before retrying a refused connection (min(this, 1 s)).
    timeout connect 200ms
    timeout client 30s
    timeout server 30s
    timeout http-request 30s
    # A request refused at connect (node down or draining) is sent to the other node.
    # One connection per request on both sides. Server side: a draining node refuses
    # new ones at once, so no request is ever written to a connection it is closing.
    # Client side: when a node dies mid-request, HAProxy answers 502 (our JSON 503)
    # only on a connection's first request; on a reused keep-alive connection it
    # closes silently instead, which left a client with no answer at all (chaos soak).
    retries 2
    option redispatch
    option httpclose
    errorfile 502 $DIR/haproxy-502.http
    errorfile 503 $DIR/haproxy-503.http
    errorfile 504 $DIR/haproxy-504.http
frontend public
    bind $(addr haproxy):$PUBLIC_PORT
    # Variant URLs go to one node per path (its variant cache), the rest to the least busy.
    use_backend variants if { path_beg /v1/img/ }
    default_backend api
backend api
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    # A node marked down keeps its open sessions: a draining node finishes them.
    # Checks every 250 ms, every 100 ms once one failed: a node that turns not-ready
    # (cut off from NATS, disk full, draining) stops getting requests within ~0.35 s.
    default-server inter 250ms fastinter 100ms fall 2 rise 2
    server api-1 $(addr api-1):$(api_port 1) check
    server api-2 $(addr api-2):$(api_port 2) check
backend variants
    # The path without the query: every size of an original on one node; a consistent
    # ring, so a node leaving moves only its own share (ADR 0012).
$(variant_balance)
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 250ms fastinter 100ms fall 2 rise 2
    server api-1 $(addr api-1):$(api_port 1) check
    server api-2 $(addr api-2):$(api_port 2) check
listen stats
    bind $(addr haproxy):$STATS_PORT
    stats enable
    stats uri /
EOF
        launch haproxy haproxy -db -f "$DIR/haproxy.cfg"
        wait_http "http://$(addr haproxy):$PUBLIC_PORT/healthz" 30
        ;;
    *) die "unknown component $name (one of: $COMPONENTS)" ;;
    esac
}

# How HAProxy spreads variant URLs: a consistent hash of the path (the default), or
# VARIANT_BALANCE=roundrobin, for comparison only (bench/delivery-cluster.sh).
variant_balance() {
    case "${VARIANT_BALANCE:-uri}" in
    uri) printf '    balance uri path-only\n    hash-type consistent\n' ;;
    roundrobin) printf '    balance roundrobin\n' ;;
    *) die "VARIANT_BALANCE is uri or roundrobin, not $VARIANT_BALANCE" ;;
    esac
}

# HAProxy's answer for its status $1: status $2 with the contract's error body.
haproxy_error() {
    local body="{\"error\":{\"code\":\"$4\",\"message\":\"$5\"}}"
    printf 'HTTP/1.1 %s %s\r\ncontent-type: application/json\r\ncache-control: no-store\r\nretry-after: 1\r\nx-resizer-edge: haproxy\r\ncontent-length: %s\r\nconnection: close\r\n\r\n%s' \
        "$2" "$3" "${#body}" "$body" >"$DIR/haproxy-$1.http"
}

stop_one() {
    local name=$1 sig=${2:-TERM} p i
    if [ "$name" = postgres ]; then
        RESIZER_PG_DURABLE=1 RESIZER_TEST_PG_DIR="$DIR/pg" RESIZER_TEST_PG_PORT=$PG_PORT "$ROOT/scripts/test-postgres.sh" stop
        rm -f "$DIR/postgres.pid"
        return
    fi
    p=$(pid_of "$name")
    [ -n "$p" ] || return 0
    kill -CONT "$p" 2>/dev/null || true
    kill "-$sig" "$p" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$p" 2>/dev/null || true
    rm -f "$DIR/$name.pid"
}

resolve_bin() {
    if [ -z "${RESIZER_BIN:-}" ]; then
        (cd "$ROOT" && cargo build --release --locked -q -p resizer)
        RESIZER_BIN=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/resizer
    fi
    [ -x "$RESIZER_BIN" ] || die "no resizer binary at $RESIZER_BIN"
}

case "${1:-}" in
up)
    "$ROOT/scripts/setup.sh"
    resolve_bin
    mkdir -p "$DIR"
    # Traversable (PostgreSQL runs as its own user below it), not listable; every
    # file in it is 0600 by the umask above.
    chmod 711 "$DIR"
    [ -s "$DIR/cluster-secret" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/cluster-secret"
    [ -s "$DIR/admin-token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/admin-token"
    echo "$RESIZER_BIN" >"$DIR/resizer-bin"
    faults_setup
    start_one postgres
    start_one garage
    for n in 1 2 3; do start_one "nats-$n"; done
    for n in 1 2 3; do wait_http "http://$(addr "nats-$n"):$(mon_port "$n")/healthz" 30; done
    start_one identity
    for c in api-1 api-2 worker-1 worker-2 aggregator aggregator-2 haproxy; do start_one "$c"; done
    echo "public_url=http://$(addr haproxy):$PUBLIC_PORT"
    echo "admin_url=http://$(addr identity):$IDENTITY_PORT"
    echo "admin_token=$(cat "$DIR/admin-token")"
    ;;
up-queue)
    mkdir -p "$DIR"
    chmod 711 "$DIR"
    echo "${RESIZER_BIN:-}" >"$DIR/resizer-bin"
    for n in 1 2 3; do start_one "nats-$n"; done
    for n in 1 2 3; do wait_http "http://$(addr "nats-$n"):$(mon_port "$n")/healthz" 30; done
    ;;
down)
    [ -d "$DIR" ] || exit 0
    for c in haproxy worker-1 worker-2 api-1 api-2 aggregator aggregator-2 identity nats-1 nats-2 nats-3 postgres garage; do stop_one "$c"; done
    faults_teardown
    for c in $COMPONENTS; do mountpoint -q "$DIR/$c" && umount "$DIR/$c"; done
    rm -rf "$DIR"
    ;;
status)
    for c in $COMPONENTS; do
        if alive "$c"; then echo "$c running pid=$(pid_of "$c")"; else echo "$c stopped"; fi
    done
    ;;
kill) alive "${2:?name}" || die "$2 is not running"; kill -9 "$(pid_of "$2")"; rm -f "$DIR/$2.pid" ;;
pause) alive "${2:?name}" || die "$2 is not running"; kill -STOP "$(pid_of "$2")" ;;
resume) alive "${2:?name}" || die "$2 is not running"; kill -CONT "$(pid_of "$2")" ;;
start)
    RESIZER_BIN=$(cat "$DIR/resizer-bin")
    start_one "${2:?name}"
    ;;
stop) stop_one "${2:?name}" TERM ;;
restart)
    RESIZER_BIN=$(cat "$DIR/resizer-bin")
    stop_one "${2:?name}" TERM
    start_one "$2"
    ;;
addr) addr "${2:?name}" ;;
net) shift; net "$@" ;;
disk) disk "${2:-}" "${3:-}" ;;
skew) skew "${2:-}" "${3:-}" ;;
*)
    sed -n '2,36p' "$0" >&2
    exit 2
    ;;
esac
