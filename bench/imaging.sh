#!/usr/bin/env bash
# Imaging speed, one core, in process, same run: Resizer's imaging pipeline
# (resizer-imaging, `examples/bench.rs`) against Pillow-SIMD `thumbnail()` and
# libvips 8.18 `thumbnail_buffer` (pyvips-binary), the peers of
# shared/bench/imaging/RESULTS.md, on the shared corpus. Prints images per
# CPU-second (median of the rounds), p50/p99 ms, the ratios, output bytes, and
# SSIM against a float Lanczos3 reference of ours and the peers' outputs.
#
#   bench/imaging.sh              # all sets and tasks, 3 interleaved rounds
#   ROUNDS=1 bench/imaging.sh     # quicker
#   SETS="jpeg-256k" TASKS="fit320" bench/imaging.sh
#
# Peers are installed by shared/bench/imaging/setup-peers.sh into $BENCH_WORK
# (default /tmp/imgbench), idempotently. Every process is pinned to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${RESIZER_SHARED:-$PWD/../shared}
export BENCH_WORK=${BENCH_WORK:-/tmp/imgbench}
export ROUNDS=${ROUNDS:-3}
export SETS=${SETS:-jpeg-256k jpeg-1m png webp}
export TASKS=${TASKS:-fit320 half}
export IMAGING=$SHARED/bench/imaging
scripts/setup.sh --build-only
bash "$IMAGING/setup-peers.sh" >&2
cargo build --release --locked -q -p resizer-imaging --example bench --example quality
export TARGET_DIR
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec python3 bench/imaging.py
