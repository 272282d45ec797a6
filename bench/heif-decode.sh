#!/usr/bin/env bash
# HEIC and AVIF decode speed, same run, one core each: Resizer's pipeline
# against libvips (Debian's, through pyvips) and sharp, on photos made from
# the shared corpus by heif-enc (x265, a tool only: never linked) and
# avifenc (libaom); JPEG q80 out, fit 320 and half. Then one 12-bit AVIF.
#
#   bench/heif-decode.sh
#   PHOTOS=5 ROUNDS=2 bench/heif-decode.sh
#
# Peers come from shared/bench/imaging/setup-peers.sh (into $BENCH_WORK);
# the encoders from Debian's libheif-examples and libavif-bin.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${RESIZER_SHARED:-$PWD/../shared}
export BENCH_WORK=${BENCH_WORK:-/tmp/imgbench}
export ROUNDS=${ROUNDS:-3} PASSES=${PASSES:-1}
export HARNESS=$SHARED/bench/imaging/harness
PHOTOS=${PHOTOS:-10}
scripts/setup.sh --build-only
bash "$SHARED/bench/imaging/setup-peers.sh" >&2
for tool in heif-enc avifenc; do
    command -v "$tool" >/dev/null || { echo "heif-decode.sh: needs $tool (apt-get install libheif-examples libavif-bin)" >&2; exit 1; }
done
cargo build --release --locked -q -p resizer-imaging --example bench
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export TARGET_DIR
INPUTS=$(mktemp -d)
trap 'rm -rf "$INPUTS"' EXIT
export INPUTS
for jpg in $(find "$SHARED/bench/imaging/corpus/jpeg-256k" -name '*.jpg' | sort | head -n "$PHOTOS"); do
    stem=$(basename "$jpg" .jpg)
    heif-enc -q 80 -o "$INPUTS/$stem.heic" "$jpg" >/dev/null
    avifenc --min 10 --max 30 -s 8 -j 2 "$jpg" "$INPUTS/$stem.avif" >/dev/null
done
first=$(find "$SHARED/bench/imaging/corpus/jpeg-1m" -name '*.jpg' | sort | head -n 1)
avifenc -d 12 --min 10 --max 30 -s 8 -j 2 "$first" "$INPUTS/$(basename "$first" .jpg)-12bit.avif" >/dev/null
python3 bench/heif_decode.py
