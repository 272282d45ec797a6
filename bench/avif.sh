#!/usr/bin/env bash
# AVIF encode speed, size and SSIM, one core, same run: Resizer's pipeline
# (resizer-imaging `examples/bench.rs`, FORMAT=avif) at several quality:speed
# pairs against sharp (npm, prebuilt libvips + libaom) at quality:effort pairs,
# on the shared corpus; the first sharp pair is the ratio's denominator.
#
#   bench/avif.sh
#   OURS="55:7 60:6" PEERS="50:4" SETS=jpeg-256k TASKS="fit320 half" ROUNDS=3 bench/avif.sh
#
# Peers come from shared/bench/imaging/setup-peers.sh (into $BENCH_WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${RESIZER_SHARED:-$PWD/../shared}
export BENCH_WORK=${BENCH_WORK:-/tmp/imgbench}
export ROUNDS=${ROUNDS:-2} PASSES=${PASSES:-1}
export SETS=${SETS:-jpeg-256k} TASKS=${TASKS:-fit320 half}
export OURS=${OURS:-"50:7 55:7 60:7 55:6"} PEERS=${PEERS:-"50:4 55:4"}
export CORPUS=$SHARED/bench/imaging/corpus
scripts/setup.sh --build-only
bash "$SHARED/bench/imaging/setup-peers.sh" >&2
cargo build --release --locked -q -p resizer-imaging --example bench --example quality
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export TARGET_DIR
exec python3 bench/avif.py
