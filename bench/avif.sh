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
export ROUNDS=${ROUNDS:-2} PASSES=${PASSES:-1}
export SETS=${SETS:-jpeg-256k} TASKS=${TASKS:-fit320 half}
export OURS=${OURS:-"50:7 55:7 60:7 55:6"} PEERS=${PEERS:-"50:4 55:4"}
# shellcheck source=bench/common.sh
. bench/common.sh
export CORPUS=$SHARED/bench/imaging/corpus
build_examples bench quality
exec python3 bench/avif.py
