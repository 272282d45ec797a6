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
export ROUNDS=${ROUNDS:-3} PASSES=${PASSES:-1}
PHOTOS=${PHOTOS:-10}
# shellcheck source=bench/common.sh
. bench/common.sh
export HARNESS=$SHARED/bench/imaging/harness
for tool in heif-enc avifenc; do
    command -v "$tool" >/dev/null || { echo "heif-decode.sh: needs $tool (apt-get install libheif-examples libavif-bin)" >&2; exit 1; }
done
build_examples bench
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
