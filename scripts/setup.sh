#!/usr/bin/env bash
# Installs what the build and tests need beyond Rust, idempotently.
# Debian 12: a C toolchain, CMake and NASM (libjpeg-turbo 3 is built from
# source with its SIMD code; SQLite and libwebp are built by their crates).
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
command -v curl >/dev/null 2>&1 || need+=(curl)
# PostgreSQL server binaries for the identity store tests (a throwaway cluster, see test-postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)

if ((${#need[@]})); then
    echo "setup: installing ${need[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "setup: build and test dependencies present (cc, make, cmake, nasm, postgresql)" >&2
