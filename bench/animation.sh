#!/usr/bin/env bash
# Animated GIF resize, same run, one core each: Resizer's pipeline
# (resizer-imaging `examples/bench.rs`, FORMAT=gif|webp) against sharp
# (npm, prebuilt libvips with cgif and libimagequant), on animated GIFs made
# by sharp from the shared corpus photos (bench/sharp_animation.js make).
#
#   bench/animation.sh
#   PHOTOS=4 ROUNDS=3 bench/animation.sh
#
# Peers come from shared/bench/imaging/setup-peers.sh (into $BENCH_WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
export ROUNDS=${ROUNDS:-3} PASSES=${PASSES:-1}
PHOTOS=${PHOTOS:-8}
# shellcheck source=bench/common.sh
. bench/common.sh
command -v gifsicle >/dev/null && command -v webpinfo >/dev/null || {
    echo "animation.sh: needs gifsicle and webpinfo (scripts/setup.sh installs them)" >&2
    exit 1
}
build_examples bench
INPUTS=$(mktemp -d)
trap 'rm -rf "$INPUTS"' EXIT
export INPUTS
# shellcheck disable=SC2046
NODE_PATH="$BENCH_WORK/node/node_modules" node bench/sharp_animation.js make "$INPUTS" \
    $(find "$SHARED/bench/imaging/corpus/jpeg-256k" -name '*.jpg' | sort | head -n "$PHOTOS")
python3 bench/animation.py
