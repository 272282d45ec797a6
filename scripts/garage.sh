#!/usr/bin/env bash
# A one-node Garage (S3-compatible object store, https://garagehq.deuxfleurs.fr)
# on loopback, for the S3 archive tests and deploy/cluster.sh. Installed by
# scripts/setup.sh into $(scripts/tools-dir.sh)/garage/bin.
#
#   scripts/garage.sh start DIR S3_PORT RPC_PORT   # prints endpoint=, region=, bucket=,
#                                                  # access_key_id=, secret_access_key=
#   scripts/garage.sh stop DIR
# GARAGE_HOST (default 127.0.0.1): the loopback address both ports bind to.
#
# The bucket `resizer-archive` and a key allowed on it are created on first start;
# the key's secret is random per DIR (kept in DIR/key).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GARAGE=${GARAGE:-$("$ROOT/scripts/tools-dir.sh")/garage/bin/garage}
BUCKET=resizer-archive
HOST=${GARAGE_HOST:-127.0.0.1}
cmd=${1:?start|stop}
DIR=${2:?directory}

hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
g() { "$GARAGE" -c "$DIR/garage.toml" "$@"; }

case "$cmd" in
start)
    S3_PORT=${3:?s3 port}
    RPC_PORT=${4:?rpc port}
    [ -x "$GARAGE" ] || { echo "garage: $GARAGE missing (run scripts/setup.sh)" >&2; exit 1; }
    mkdir -p "$DIR/meta" "$DIR/data"
    [ -s "$DIR/rpc-secret" ] || hex 32 >"$DIR/rpc-secret"
    cat >"$DIR/garage.toml" <<EOF
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "$HOST:$RPC_PORT"
rpc_public_addr = "$HOST:$RPC_PORT"
rpc_secret = "$(cat "$DIR/rpc-secret")"

[s3_api]
s3_region = "garage"
api_bind_addr = "$HOST:$S3_PORT"
root_domain = ".s3.garage.localhost"
EOF
    if ! { [ -s "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; }; then
        RUST_LOG=${RUST_LOG:-warn} setsid "$GARAGE" -c "$DIR/garage.toml" server >>"$DIR/garage.log" 2>&1 </dev/null &
        echo $! >"$DIR/pid"
    fi
    for ((i = 0; i < 100; i++)); do
        g status >/dev/null 2>&1 && break
        sleep 0.1
    done
    g status >/dev/null 2>&1 || { echo "garage: did not start (see $DIR/garage.log)" >&2; exit 1; }
    if [ ! -s "$DIR/key" ]; then
        node=$(g node id -q 2>/dev/null | cut -d@ -f1)
        g layout assign -z local -c 1G "$node" >/dev/null
        g layout apply --version 1 >/dev/null
        key_id="GK$(hex 12)"
        secret=$(hex 32)
        g key import --yes -n resizer "$key_id" "$secret" >/dev/null
        g bucket create "$BUCKET" >/dev/null
        g bucket allow --read --write --owner "$BUCKET" --key "$key_id" >/dev/null
        printf '%s %s\n' "$key_id" "$secret" >"$DIR/key"
    fi
    read -r key_id secret <"$DIR/key"
    echo "endpoint=http://$HOST:$S3_PORT"
    echo "region=garage"
    echo "bucket=$BUCKET"
    echo "access_key_id=$key_id"
    echo "secret_access_key=$secret"
    ;;
stop)
    if [ -s "$DIR/pid" ]; then
        p=$(cat "$DIR/pid")
        kill "$p" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null || true
        rm -f "$DIR/pid"
    fi
    ;;
*)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
