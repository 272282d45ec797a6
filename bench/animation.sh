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
SHARED=${RESIZER_SHARED:-$PWD/../shared}
export BENCH_WORK=${BENCH_WORK:-/tmp/imgbench}
export ROUNDS=${ROUNDS:-3} PASSES=${PASSES:-1}
PHOTOS=${PHOTOS:-8}
scripts/setup.sh --build-only
bash "$SHARED/bench/imaging/setup-peers.sh" >&2
command -v gifsicle >/dev/null && command -v webpinfo >/dev/null || {
    echo "animation.sh: needs gifsicle and webpinfo (scripts/setup.sh installs them)" >&2
    exit 1
}
cargo build --release --locked -q -p resizer-imaging --example bench
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export TARGET_DIR
INPUTS=$(mktemp -d)
trap 'rm -rf "$INPUTS"' EXIT
export INPUTS
# shellcheck disable=SC2046
NODE_PATH="$BENCH_WORK/node/node_modules" node bench/sharp_animation.js make "$INPUTS" \
    $(find "$SHARED/bench/imaging/corpus/jpeg-256k" -name '*.jpg' | sort | head -n "$PHOTOS")
python3 bench/animation.py
